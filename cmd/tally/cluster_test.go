package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/audit"
	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// natsCluster is three nats-server processes, built from the module tally
// depends on, with JetStream (fsync on every write, as tally's embedded
// server) and cluster routes on loopback.
type natsCluster struct {
	t     *testing.T
	bin   string
	names []string
	urls  []string
	confs []string
	procs []*natsProc
}

type natsProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
}

// buildNATSServer builds nats-server into dir from the module in go.mod.
func buildNATSServer(t *testing.T, dir string) string {
	t.Helper()
	goCmd, err := goTool()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "nats-server")
	out, err := exec.Command(goCmd, "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput()
	if err != nil {
		t.Fatalf("go build nats-server: %v\n%s", err, out)
	}
	return bin
}

// startNATSCluster writes the three servers' configurations (as
// deploy/cluster/ does, on free ports) and starts them.
func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	dir := t.TempDir()
	c := &natsCluster{t: t, bin: buildNATSServer(t, dir)}
	var clientAddrs, routeAddrs []string
	for i := range 3 {
		c.names = append(c.names, fmt.Sprintf("n%d", i+1))
		clientAddrs = append(clientAddrs, freeAddr(t))
		routeAddrs = append(routeAddrs, freeAddr(t))
		c.urls = append(c.urls, "nats://"+clientAddrs[i])
	}
	for i := range 3 {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://%s", routeAddrs[j]))
			}
		}
		conf := filepath.Join(dir, c.names[i]+".conf")
		text := fmt.Sprintf(`server_name: %s
listen: %s
jetstream {
  store_dir: %q
  sync_interval: always
}
cluster {
  name: tally
  listen: %s
  routes: [%s]
}
`, c.names[i], clientAddrs[i], filepath.Join(dir, c.names[i]), routeAddrs[i], strings.Join(routes, ", "))
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		c.confs = append(c.confs, conf)
	}
	c.procs = make([]*natsProc, 3)
	for i := range 3 {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.procs {
			c.kill(i)
		}
	})
	return c
}

// start starts server i (again: same configuration, same store).
func (c *natsCluster) start(i int) {
	c.t.Helper()
	p := &natsProc{cmd: exec.Command(c.bin, "-c", c.confs[i]), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr, p.cmd.Stdout = p.stderr, p.stderr
	if err := p.cmd.Start(); err != nil {
		c.t.Fatalf("start nats-server %s: %v", c.names[i], err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	c.procs[i] = p
}

// kill SIGKILLs server i, if it runs, and waits for it to exit.
func (c *natsCluster) kill(i int) {
	p := c.procs[i]
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.done
}

// URLs is the --nats list of every member.
func (c *natsCluster) URLs() string { return strings.Join(c.urls, ",") }

// waitJetStream waits until the cluster answers JetStream requests (its
// members have elected a meta leader), failing after 60 s.
func (c *natsCluster) waitJetStream(js jetstream.JetStream) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the NATS cluster did not offer JetStream within 60 s: %v\n%s", err, c.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leader returns the index of the server leading stream.
func (c *natsCluster) leader(st jetstream.Stream) int {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := st.Info(ctx)
		cancel()
		if err == nil && info.Cluster != nil {
			if i := slices.Index(c.names, info.Cluster.Leader); i >= 0 {
				return i
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no leader of the stream within 30 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *natsCluster) logs() string {
	var b strings.Builder
	for i, p := range c.procs {
		if p != nil {
			fmt.Fprintf(&b, "--- nats-server %s:\n%s\n", c.names[i], tail(p.stderr.String(), 15))
		}
	}
	return b.String()
}

// submitter sends requests one at a time to the tally nodes, at random,
// retrying a request that was not stored (a transport error, 503 or 429:
// CONTRACT §5 says nothing of it is stored twice) on the other node, as a
// load balancer would, until it is accepted. Every 202 is folded into the
// reference in order.
type submitter struct {
	t      *testing.T
	rng    *rand.Rand
	client *http.Client
	ref    *refFold
	nodes  []*serverProc
	mu     sync.Mutex // guards nodes (a node is restarted while requests go on)

	// stream, if set, is where the nodes store the minutes: the reference
	// then folds each request's minutes in the order the stream holds
	// them (storedOrder).
	stream jetstream.Stream

	requests, retries int
	// firstTry holds the latency of each request accepted at its first
	// attempt; accepted is the time of the last 202.
	firstTry []time.Duration
	accepted time.Time
}

func (s *submitter) node(i int) *serverProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes[i%len(s.nodes)]
}

func (s *submitter) setNode(i int, p *serverProc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[i] = p
}

// submit sends batch until it is accepted; during is called once the
// first attempt is under way (to inject a fault while it is in flight).
func (s *submitter) submit(batch []*minutes, during func()) {
	t := s.t
	body, err := json.Marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	s.requests++
	n := s.rng.IntN(len(s.nodes))
	start := time.Now()
	var wg sync.WaitGroup
	if during != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(s.rng.IntN(2000)) * time.Microsecond)
			during()
		}()
	}
	code, ans, resp, err := postMinutes(s.client, s.node(n).url, body)
	wg.Wait()
	first := code == http.StatusAccepted
	deadline := time.Now().Add(60 * time.Second)
	for code != http.StatusAccepted {
		if err == nil && code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests {
			t.Fatalf("request %d answered %d: %s", s.requests, code, resp)
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %d not stored after 60 s of retries: last %d %v %s", s.requests, code, err, resp)
		}
		s.retries++
		n++
		time.Sleep(10 * time.Millisecond)
		code, ans, resp, err = postMinutes(s.client, s.node(n).url, body) // identical body
	}
	s.accepted = time.Now()
	if first && during == nil {
		s.firstTry = append(s.firstTry, s.accepted.Sub(start))
	}
	if s.stream != nil && len(batch) > 1 {
		batch = s.storedOrder(batch)
	}
	seqs, _ := s.ref.submit(batch)
	if want := slices.Max(seqs); ans.Accepted != len(batch) || ans.Seq != want {
		t.Errorf("request %d (%d minutes): answer %s; want accepted %d, seq %d", s.requests, len(batch), resp, len(batch), want)
	}
}

// storedOrder returns batch with its minutes new to the stream in the
// order the stream stored them, the others after them. The contract
// promises every minutes of a 202 stored, and seq the position of the
// last, not the request's order: a request of fewer than MinAtomicBatch
// minutes is published one by one, all in flight together, and on a
// cluster they may land in another order (seen: 4 minutes of one request
// at sequences 18–21, rotated). A request cut by a failover may also have
// been stored in part, its retry (deduplicated by Nats-Msg-Id) storing the
// rest after it. The reference must fold what the nodes fold. Requests go
// one at a time, so a request's new minutes are the stream's next
// messages.
func (s *submitter) storedOrder(batch []*minutes) []*minutes {
	t := s.t
	type fresh struct {
		m   *minutes
		bin []byte // the canonical binary form, as the gateway stores it
	}
	var news []fresh
	var rest []*minutes
	seen := map[string]bool{}
	for _, m := range batch {
		k := m.key()
		if _, ok := s.ref.stored[k]; ok || seen[k] {
			rest = append(rest, m)
			continue
		}
		seen[k] = true
		body, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		d, err := events.DecodeJSONObject(body)
		if err != nil {
			t.Fatalf("minutes %s: %v", k, err)
		}
		news = append(news, fresh{m, events.AppendBinary(nil, &d.Minutes)})
	}
	ordered := make([]*minutes, 0, len(batch))
	for i := range news {
		seq := s.ref.streamSeq + uint64(i) + 1
		raw, err := s.getMsg(seq)
		if err != nil {
			t.Fatalf("read stream seq %d: %v", seq, err)
		}
		var got tally.Minutes
		if err := events.DecodeBinary(raw.Data, &got); err != nil {
			t.Fatalf("stream seq %d: %v", seq, err)
		}
		bin := events.AppendBinary(nil, &got)
		j := slices.IndexFunc(news, func(f fresh) bool { return f.m != nil && bytes.Equal(f.bin, bin) })
		if j < 0 {
			t.Fatalf("stream seq %d holds minutes that are none of request %d's new ones", seq, s.requests)
		}
		if j != i {
			t.Logf("request %d: its minutes %d is at stream seq %d, not in the request's order", s.requests, j+1, seq)
		}
		ordered = append(ordered, news[j].m)
		news[j].m = nil
	}
	return append(ordered, rest...)
}

// getMsg reads the stream's message at seq, retrying while the stream has
// no leader (the test kills it), for up to 60 s as submit retries.
func (s *submitter) getMsg(seq uint64) (*jetstream.RawStreamMsg, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		raw, err := s.stream.GetMsg(ctx, seq)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return raw, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rate describes a run of requests: minutes per second and the 50th and
// 99th percentile of the 202's latency.
type rate struct {
	minutes  int
	elapsed  time.Duration
	p50, p99 time.Duration
}

func (r rate) perSec() float64 { return float64(r.minutes) / r.elapsed.Seconds() }

func (r rate) String() string {
	return fmt.Sprintf("%d minutes in %s: %.0f minutes/s, 202 p50 %s p99 %s", r.minutes, r.elapsed.Round(time.Millisecond),
		r.perSec(), r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond))
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// measure submits batches on s (no faults) and returns the rate.
func measure(s *submitter, batches [][]*minutes) rate {
	s.firstTry = s.firstTry[:0]
	n := 0
	start := time.Now()
	for _, b := range batches {
		s.submit(b, nil)
		n += len(b)
	}
	return rate{minutes: n, elapsed: time.Since(start), p50: percentile(s.firstTry, 0.5), p99: percentile(s.firstTry, 0.99)}
}

// load sends bodies from workers concurrent clients, spread over urls,
// each retried (on a 503 or 429) until accepted, and returns the rate; the
// latencies are from a request's first attempt to its 202.
func load(t *testing.T, client *http.Client, urls []string, bodies [][]byte, perBody, workers int) rate {
	t.Helper()
	jobs := make(chan int)
	lat := make([]time.Duration, len(bodies))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failure error
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				t0 := time.Now()
				for attempt := 0; ; attempt++ {
					code, _, resp, err := postMinutes(client, urls[(w+attempt)%len(urls)], bodies[i])
					if code == http.StatusAccepted {
						break
					}
					if (err == nil && code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests) || time.Since(t0) > 60*time.Second {
						mu.Lock()
						failure = fmt.Errorf("load request %d: %d %v %s", i, code, err, resp)
						mu.Unlock()
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	for i := range bodies {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if failure != nil {
		t.Fatal(failure)
	}
	return rate{minutes: len(bodies) * perBody, elapsed: time.Since(start), p50: percentile(lat, 0.5), p99: percentile(lat, 0.99)}
}

// loadBodies makes n request bodies of per minutes each: corrections of
// generated minutes (the same counts under a higher version, so each is
// new content and valid).
func loadBodies(t *testing.T, all []*minutes, n, per int) [][]byte {
	t.Helper()
	var bodies [][]byte
	for i := range n {
		batch := make([]*minutes, per)
		for k := range batch {
			j := i*per + k
			m := all[j%len(all)].clone()
			m.Version += int64(1000 * (1 + j/len(all)))
			batch[k] = m
		}
		b, err := json.Marshal(batch)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	return bodies
}

// chunk splits minutes into requests of 1 to 5.
func chunk(rng *rand.Rand, all []*minutes) [][]*minutes {
	var out [][]*minutes
	for len(all) > 0 {
		n := min(len(all), 1+rng.IntN(5))
		out = append(out, all[:n])
		all = all[n:]
	}
	return out
}

// TestCluster runs two tally nodes against a real 3-server NATS cluster with
// the stream replicated three times, submits an election night to both over
// HTTP, kills the stream leader's server while a request is in flight and
// restarts it, SIGKILLs one tally node and restarts it, and then checks that
// nothing acknowledged was lost or stored twice and that both nodes serve
// the same results: equal to the reference fold of what was accepted, equal
// to the audit fold of the stream, and byte for byte the same projections.
//
// It also measures, in the same run, the throughput and 202 latency of
// sequential requests on the cluster against one node with the embedded
// server, and the time from killing the leader to the next 202.
func TestCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	rng := rand.New(rand.NewPCG(3, 2026))
	w := genWorld(rng)
	all, stats := genMinutes(rng, w, 12)
	batches := chunk(rng, all)
	dir := t.TempDir()
	electionFile := filepath.Join(dir, "election.json")
	writeJSONFile(t, electionFile, w.file)
	e, err := loadElection(electionFile)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	quarter := len(batches) / 4

	// One node with the embedded server: the baseline.
	single := &submitter{t: t, rng: rng, client: client, ref: newRefFold(w),
		nodes: []*serverProc{startServe(t, electionFile, filepath.Join(dir, "single"))}}
	base := measure(single, batches[:quarter])
	bodies := loadBodies(t, all, 300, 5)
	const workers = 8
	baseLoad := load(t, client, []string{single.nodes[0].url}, bodies, 5, workers)
	single.nodes[0].stop(t)

	cl := startNATSCluster(t)
	// The servers may not listen yet: connect in the background.
	nc, err := broker.Dial(cl.URLs(), "tally-cluster-test", nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cl.waitJetStream(js)
	startNode := func(name string) *serverProc {
		return startServe(t, electionFile, filepath.Join(dir, name), "--nats", cl.URLs(), "--node", name, "--replicas", "3", "--batch", "64", "--publish-timeout", "2s")
	}
	s := &submitter{t: t, rng: rng, client: client, ref: newRefFold(w), nodes: []*serverProc{startNode("a"), startNode("b")}}
	ctx := context.Background()
	st, err := js.Stream(ctx, events.StreamName(e.ID))
	if err != nil {
		t.Fatal(err)
	}
	s.stream = st
	if r := st.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("stream created with %d replicas, want 3", r)
	}
	clustered := measure(s, batches[:quarter])

	// The stream leader's server dies while a request is in flight.
	leader := cl.leader(st)
	var killed time.Time
	elected := make(chan time.Duration, 1) // when the stream had a new leader
	s.submit(batches[quarter], func() {
		killed = time.Now()
		cl.kill(leader)
		go func() {
			for time.Since(killed) < 60*time.Second {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				info, err := st.Info(ctx)
				cancel()
				if err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != cl.names[leader] {
					elected <- time.Since(killed)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			elected <- -1
		}()
	})
	failover := s.accepted.Sub(killed)
	for _, b := range batches[quarter+1 : 2*quarter] {
		s.submit(b, nil)
	}
	election := <-elected
	newLeader := cl.leader(st)
	if newLeader == leader {
		t.Fatalf("server %s was killed but still leads the stream", cl.names[leader])
	}
	cl.start(leader)

	// One tally node dies by SIGKILL while a request is in flight, and
	// comes back on its own data directory.
	for _, b := range batches[2*quarter : 3*quarter] {
		s.submit(b, nil)
	}
	victim := s.node(1)
	s.submit(batches[3*quarter], func() { victim.kill() })
	s.setNode(1, startNode("b"))
	for _, b := range batches[3*quarter+1:] {
		s.submit(b, nil)
	}

	// Both nodes catch up with the whole stream and serve what the
	// reference folded from the 202s, in order.
	for _, p := range s.nodes {
		st := waitCaughtUp(t, client, p.url)
		if st.StreamSeq != s.ref.streamSeq {
			t.Errorf("%s: stream_seq %d, but %d distinct minutes were accepted: lost or stored twice", p.url, st.StreamSeq, s.ref.streamSeq)
		}
		compareAll(t, client, p.url, s.ref, true)
	}
	if t.Failed() {
		t.Fatalf("nodes differ from the reference\n%s", cl.logs())
	}
	// Concurrent clients on both nodes, measured against the same load on
	// the single node; then both nodes catch up with the stream.
	clusterLoad := load(t, client, []string{s.nodes[0].url, s.nodes[1].url}, bodies, 5, workers)
	var final uint64
	for _, p := range s.nodes {
		final = max(final, waitCaughtUp(t, client, p.url).StreamSeq)
	}
	for i, p := range s.nodes {
		if code := p.stop(t); code != 0 {
			t.Errorf("node %d exited %d after SIGTERM; stderr:\n%s", i, code, tail(p.stderr.String(), 20))
		}
	}

	// The stream holds each accepted minutes exactly once, at the position
	// its 202 named.
	stored := map[uint64]string{}
	for k, seq := range s.ref.stored {
		stored[seq] = k
	}
	oracle := audit.New(e)
	n, _, err := audit.ReadStream(ctx, st, s.ref.streamSeq, func(seq uint64, subject string, data []byte) {
		r := oracle.Apply(seq, subject, data)
		if want, ok := stored[seq]; !ok || !sameMinutes(want, r) {
			t.Errorf("stream seq %d holds %s %s v%d, the 202s put %q there", seq, r.Station, r.Contest, r.Version, want)
		}
	})
	if err != nil || n != s.ref.streamSeq {
		t.Fatalf("read %d of %d stream messages: %v", n, s.ref.streamSeq, err)
	}
	if c := oracle.Counts(); c.Applied != s.ref.applied || c.Stale != s.ref.stale || c.Rejected != s.ref.rejected || c.Duplicates != s.ref.dupInStream {
		t.Errorf("audit fold of the stream %+v; reference of the 202s: applied %d, stale %d, rejected %d, duplicates %d",
			c, s.ref.applied, s.ref.stale, s.ref.rejected, s.ref.dupInStream)
	}

	// The audit fold of the stream agrees with each node's projections,
	// and the two nodes' projections are the same, byte for byte.
	for _, name := range []string{"a", "b"} {
		store, err := projections.Open(filepath.Join(dir, name, "projections"), e)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(ctx, e, st, store)
		store.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || rep.Checkpoint != final || rep.Compared.Units == 0 {
			t.Errorf("node %s: audit: ok %v, checkpoint %d of %d, %d differences, e.g. %v", name, rep.OK, rep.Checkpoint, final, len(rep.Differences), rep.Differences[:min(3, len(rep.Differences))])
		}
	}
	ka, va := dumpStore(t, filepath.Join(dir, "a"), e)
	kb, vb := dumpStore(t, filepath.Join(dir, "b"), e)
	if !slices.EqualFunc(ka, kb, bytes.Equal) || !slices.EqualFunc(va, vb, bytes.Equal) {
		t.Errorf("the two nodes' projections differ (%d and %d keys)", len(ka), len(kb))
	}

	t.Logf("%s; %d requests (%d retried attempts)", stats, s.requests, s.retries)
	t.Logf("one node, embedded server: %s", base)
	t.Logf("3-server cluster, R3, 2 nodes: %s", clustered)
	t.Logf("cluster/single, sequential requests: throughput %.2f, p99 %.2f", clustered.perSec()/base.perSec(), float64(clustered.p99)/float64(base.p99))
	t.Logf("one node, embedded server, %d concurrent clients: %s", workers, baseLoad)
	t.Logf("3-server cluster, R3, 2 nodes, %d concurrent clients: %s", workers, clusterLoad)
	t.Logf("cluster/single, %d concurrent clients: throughput %.2f, p99 %.2f", workers, clusterLoad.perSec()/baseLoad.perSec(), float64(clusterLoad.p99)/float64(baseLoad.p99))
	t.Logf("killed the stream leader %s: next 202 after %[4]s; stream info (polled every 10 ms, 1 s timeout) first named the new leader %[2]s after %[3]s", cl.names[leader], cl.names[newLeader],
		election.Round(time.Millisecond), failover.Round(time.Millisecond))
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// sameMinutes reports whether m is the minutes whose reference key is key.
func sameMinutes(key string, m audit.Record) bool {
	return strings.Contains(key, `"station":"`+m.Station+`"`) && strings.Contains(key, `"contest":"`+m.Contest+`"`) &&
		strings.Contains(key, fmt.Sprintf(`"version":%d`, m.Version))
}

// TestServeClusterUsage: the scale-out flags of serve refuse what cannot
// work, naming the flag and the rule, before anything starts.
func TestServeClusterUsage(t *testing.T) {
	t.Parallel()
	election := filepath.Join("testdata", "election.json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--replicas", "3"}, "--replicas 3: needs a NATS cluster (--nats)"},
		{[]string{"--replicas", "0", "--nats", "nats://127.0.0.1:1"}, "--replicas 0: want at least 1"},
		{[]string{"--node", "a.b"}, "--node: node name \"a.b\": character '.'"},
		{[]string{"--node", strings.Repeat("x", 65)}, "longer than 64"},
		{[]string{"--nats", "nats://127.0.0.1:1,,nats://127.0.0.1:2"}, "--nats: nats URL list"},
		{[]string{"--nats", "http://127.0.0.1:1"}, `scheme "http"`},
		{[]string{"--publish-timeout", "0s"}, "--publish-timeout 0s: must be positive"},
		{[]string{"--partitions", "0"}, "--partitions 0: want at least 1"},
		{[]string{"--partitions", "65"}, "--partitions 65: at most 64"},
		{[]string{"--batch", "0"}, "--batch 0: want at least 1"},
		{[]string{"--max-streams", "0", "--max-streams-per-client", "0"}, "--max-streams 0: want at least 1\ntally serve: --max-streams-per-client 0: want at least 1"},
	} {
		args := append([]string{"serve", "--election", election, "--data", t.TempDir(), "--nats-listen", "none", "--http", "127.0.0.1:0"}, tc.args...)
		res := runTally(t, 30*time.Second, nil, args...)
		if res.code != exitUsage || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("serve %q: exit %d, stderr %q; want exit %d and %q", tc.args, res.code, res.stderr, exitUsage, tc.want)
		}
	}
}
