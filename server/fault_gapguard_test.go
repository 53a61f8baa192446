package server

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

type fakeMsg struct {
	jetstream.Msg
	reply string
}

func (m fakeMsg) Reply() string { return m.reply }

type fakeConsumer struct {
	jetstream.Consumer
	handler jetstream.MessageHandler
}

func (c *fakeConsumer) Consume(h jetstream.MessageHandler, _ ...jetstream.PullConsumeOpt) (jetstream.ConsumeContext, error) {
	c.handler = h
	return nil, nil
}

type fakeStream struct {
	jetstream.Stream
	cons *fakeConsumer
}

func (s *fakeStream) CreateOrUpdateConsumer(context.Context, jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	return s.cons, nil
}

func ack(seq uint64, domain bool) fakeMsg {
	if domain {
		return fakeMsg{reply: fmt.Sprintf("$JS.ACK._.ACCHASH.TALLY_x.tally-fold.1.%d.%d.1700000000000000000.0.tok", seq, seq)}
	}
	return fakeMsg{reply: fmt.Sprintf("$JS.ACK.TALLY_x.tally-fold.1.%d.%d.1700000000000000000.0", seq, seq)}
}

// TestGapGuard: the fold's consumer must deliver every stream sequence in
// order; a redelivery passes (the fold skips it), a gap stops the
// aggregator so that a new consumer starts again after the checkpoint.
func TestGapGuard(t *testing.T) {
	for _, domain := range []bool{false, true} {
		st := &fakeStream{cons: &fakeConsumer{}}
		trips := 0
		g := newGapGuard(st, func() { trips++ })
		c, err := g.CreateOrUpdateConsumer(context.Background(), jetstream.ConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 11})
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		if _, err := c.Consume(func(m jetstream.Msg) {
			seq, _ := ackStreamSeq(m.Reply())
			got = append(got, seq)
		}); err != nil {
			t.Fatal(err)
		}
		for _, seq := range []uint64{11, 12, 12, 13, 15, 16, 14} {
			st.cons.handler(ack(seq, domain))
		}
		if fmt.Sprint(got) != "[11 12 12 13]" || trips != 1 || g.expected.Load() != 14 || g.got.Load() != 15 {
			t.Errorf("domain %v: passed %v, trips %d, gap %d→%d; want [11 12 12 13], one trip at 14→15",
				domain, got, trips, g.expected.Load(), g.got.Load())
		}
	}
}
