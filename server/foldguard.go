package server

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// gapGuard stands between the stream and the aggregator and checks that the
// fold's consumer delivers every message, in stream order.
//
// Why: the fold takes a message at or below its checkpoint as already
// applied, so a message that arrives after a later one is skipped for good.
// A pull consumer can deliver out of order after a disconnection: messages
// the server sent while the connection was dropping count as delivered and
// come back only after AckWait, after later ones (and an AckAll of a later
// message acknowledges them). The tests here (an external NATS server
// stopped, the TCP connection cut, both while the fold is busy) have not
// produced such a gap with nats-server 2.15, but nothing in the protocol
// rules it out, and its cost would be minutes answered 202 and never
// counted. The check costs one parse of the ack subject per message.
//
// The guard passes messages through as long as each one is the next stream
// sequence (or an already-seen one, which the fold skips). At the first
// gap it drops that message and everything after it and calls trip, which
// stops the aggregator; the server starts a new one, which recreates its
// consumer right after the checkpoint, so the lost messages are delivered
// again. The stream of an election never deletes messages (CONTRACT: the
// stream is the source of truth), so a gap can only be a lost delivery.
//
// The check belongs in projections.Aggregator, which could restart its own
// consumer; until it has it, the guard keeps the promise from outside.
type gapGuard struct {
	jetstream.Stream
	trip    func()
	tripped atomic.Bool
	// expected and got describe the gap, once tripped.
	expected, got atomic.Uint64
}

func newGapGuard(st jetstream.Stream, trip func()) *gapGuard {
	return &gapGuard{Stream: st, trip: trip}
}

// CreateOrUpdateConsumer creates the consumer and returns it wrapped, knowing
// the first sequence it must deliver.
func (g *gapGuard) CreateOrUpdateConsumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := g.Stream.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var next uint64
	switch cfg.DeliverPolicy {
	case jetstream.DeliverByStartSequencePolicy:
		next = cfg.OptStartSeq
	case jetstream.DeliverAllPolicy:
		info, err := g.Stream.Info(ctx)
		if err != nil {
			return nil, err
		}
		next = info.State.FirstSeq
		if info.State.Msgs == 0 {
			next = info.State.LastSeq + 1
		}
	default:
		return c, nil // not the fold's consumer: nothing to check
	}
	return &guardedConsumer{Consumer: c, g: g, next: next}, nil
}

type guardedConsumer struct {
	jetstream.Consumer
	g    *gapGuard
	next uint64 // the stream sequence that must come next
}

// Consume checks each message before the aggregator's handler sees it.
// REQUIRES: handler calls are serial (nats.go calls a subscription's
// handler from one goroutine), so next needs no lock.
func (c *guardedConsumer) Consume(handler jetstream.MessageHandler, opts ...jetstream.PullConsumeOpt) (jetstream.ConsumeContext, error) {
	return c.Consumer.Consume(func(m jetstream.Msg) {
		if c.g.tripped.Load() {
			return // dropped: the next consumer delivers it again
		}
		seq, ok := ackStreamSeq(m.Reply())
		switch {
		case !ok || seq < c.next: // a redelivery: the fold skips it
		case seq == c.next:
			c.next++
		default:
			c.g.expected.Store(c.next)
			c.g.got.Store(seq)
			c.g.tripped.Store(true)
			c.g.trip()
			return
		}
		handler(m)
	}, opts...)
}

// ackStreamSeq returns the stream sequence in a JetStream ack subject:
// $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
// or, with a domain and account hash after ACK, two tokens further.
func ackStreamSeq(reply string) (uint64, bool) {
	var tok [12]string
	n := 0
	for n < len(tok) {
		i := strings.IndexByte(reply, '.')
		if i < 0 {
			tok[n] = reply
			n++
			break
		}
		tok[n], reply = reply[:i], reply[i+1:]
		n++
	}
	if n < 9 || tok[0] != "$JS" || tok[1] != "ACK" {
		return 0, false
	}
	i := 5
	if n >= 11 {
		i = 7
	}
	seq, err := strconv.ParseUint(tok[i], 10, 64)
	return seq, err == nil
}
