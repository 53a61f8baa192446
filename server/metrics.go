package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tallyvn/tally/projections"
)

// metrics holds tally's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg *prometheus.Registry

	events      *prometheus.CounterVec
	batchSize   prometheus.Histogram
	commit      prometheus.Histogram
	lag         prometheus.Histogram
	pending     prometheus.Gauge
	appliedSeq  prometheus.Gauge
	httpReqs    *prometheus.CounterVec
	httpLatency *prometheus.HistogramVec
	sseClients  prometheus.Gauge
	sseDropped  prometheus.Counter
	sseRefused  prometheus.Counter
	// refusals and refusalsLost count the gateway's 422 refusals recorded
	// for officials, and those the full log could not keep.
	refusals     prometheus.Counter
	refusalsLost prometheus.Counter
	// groupCommit is the number of minutes stored together per commit of
	// the gateway's group committer, by kind (atomic batch or each).
	groupCommit *prometheus.HistogramVec
}

func newMetrics(parts *projections.Parts) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_events_total",
			Help: "Minutes events folded, by outcome (applied, stale, duplicate, rejected).",
		}, []string{"outcome"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tally_fold_batch_events",
			Help:    "Events per fold batch (one Pebble commit).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tally_fold_commit_seconds",
			Help:    "Latency of the fsynced Pebble commit of a fold batch.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tally_fold_lag_seconds",
			Help:    "Time from JetStream storing an event to the fold committing it.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_consumer_pending_messages",
			Help: "Events in the stream not yet delivered to the fold.",
		}),
		appliedSeq: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_applied_sequence",
			Help: "Stream sequence of the last event folded and committed.",
		}),
		groupCommit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tally_gateway_commit_minutes",
			Help:    "Minutes of concurrent submissions stored together per commit: kind atomic is one JetStream atomic batch (a few fsyncs whatever its size), kind each is fewer minutes published one by one.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}, []string{"kind"}),
		httpReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tally_http_request_duration_seconds",
			Help:    "HTTP request latency by route (for SSE: the connection's lifetime).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 3, 12),
		}, []string{"route"}),
		sseClients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_sse_clients",
			Help: "Server-sent-event clients connected.",
		}),
		sseRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_sse_refused_total",
			Help: "Event streams refused with 503: the server's cap or the client's (one remote IP address) was reached.",
		}),
		sseDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_sse_coalesced_total",
			Help: "Result updates a lagging SSE client skipped because a newer value of the same result replaced them.",
		}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_gateway_refusals_total",
			Help: "Minutes the gateway refused (422) and recorded for GET /api/v1/rejections.",
		}),
		refusalsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_gateway_refusals_unrecorded_total",
			Help: "Minutes the gateway refused (422) but could not record: the refusal log was full.",
		}),
	}
	reg.MustRegister(m.events, m.batchSize, m.commit, m.lag, m.pending, m.appliedSeq,
		m.httpReqs, m.httpLatency, m.sseClients, m.sseDropped, m.sseRefused, m.refusals, m.refusalsLost, m.groupCommit,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		pebbleCollector{parts: parts}, progressCollector{parts: parts}, buildInfoGauge())
	for _, o := range []projections.Outcome{projections.Applied, projections.Stale, projections.Duplicate, projections.Rejected} {
		m.events.WithLabelValues(o.String()) // export zeros from the start
	}
	return m
}

// batch records a committed fold batch.
// batch records a committed batch; applied and pending are the sums over
// the partitions.
func (m *metrics) batch(b *projections.BatchInfo, applied, pending uint64) {
	for o, n := range b.Outcomes {
		if n > 0 && projections.Outcome(o) != projections.Skipped {
			m.events.WithLabelValues(projections.Outcome(o).String()).Add(float64(n))
		}
	}
	m.batchSize.Observe(float64(len(b.Times)))
	m.commit.Observe(b.Commit.Seconds())
	for _, t := range b.Times {
		m.lag.Observe(b.Done.Sub(t).Seconds())
	}
	m.pending.Set(float64(pending))
	m.appliedSeq.Set(float64(applied))
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// instrument counts and times requests of one route.
func (m *metrics) instrument(route string, h http.HandlerFunc) http.HandlerFunc {
	latency := m.httpLatency.WithLabelValues(route)
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(sw, r)
		latency.Observe(time.Since(start).Seconds())
		m.httpReqs.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
	}
}

// statusWriter remembers the status code; it passes Flush through for SSE.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// pebbleCollector exports the Pebble metrics that matter to an operator,
// read at scrape time.
type pebbleCollector struct{ parts *projections.Parts }

var (
	descCompactionDebt = prometheus.NewDesc("tally_pebble_compaction_debt_bytes", "Estimated bytes Pebble still has to compact.", nil, nil)
	descMemtable       = prometheus.NewDesc("tally_pebble_memtable_size_bytes", "Bytes in Pebble memtables.", nil, nil)
	descDisk           = prometheus.NewDesc("tally_pebble_disk_usage_bytes", "Bytes the projections take on disk.", nil, nil)
	descReadAmp        = prometheus.NewDesc("tally_pebble_read_amplification", "Pebble read amplification (sublevels plus memtables).", nil, nil)
)

func (pebbleCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCompactionDebt
	ch <- descMemtable
	ch <- descDisk
	ch <- descReadAmp
}

func (c pebbleCollector) Collect(ch chan<- prometheus.Metric) {
	// Summed over the partitions' stores; read amplification, the worst.
	var debt, mem, disk uint64
	readAmp := 0
	for p := range c.parts.N() {
		pm := c.parts.Store(p).Metrics()
		debt += pm.Compact.EstimatedDebt
		mem += pm.MemTable.Size
		disk += pm.DiskSpaceUsage()
		readAmp = max(readAmp, pm.ReadAmp())
	}
	ch <- prometheus.MustNewConstMetric(descCompactionDebt, prometheus.GaugeValue, float64(debt))
	ch <- prometheus.MustNewConstMetric(descMemtable, prometheus.GaugeValue, float64(mem))
	ch <- prometheus.MustNewConstMetric(descDisk, prometheus.GaugeValue, float64(disk))
	ch <- prometheus.MustNewConstMetric(descReadAmp, prometheus.GaugeValue, float64(readAmp))
}

// progressCollector exports each contest's progress, summed over the
// election's top-level areas at scrape time (label: contest only, so a few
// series per election, never one per area or station).
type progressCollector struct{ parts *projections.Parts }

var (
	descExpected  = prometheus.NewDesc("tally_stations_expected", "Stations voting in the contest.", []string{"contest"}, nil)
	descReporting = prometheus.NewDesc("tally_stations_reporting", "Stations whose current minutes in the contest are partial or final.", []string{"contest"}, nil)
	descFinal     = prometheus.NewDesc("tally_stations_final", "Stations whose current minutes in the contest are final.", []string{"contest"}, nil)
)

func (progressCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descExpected
	ch <- descReporting
	ch <- descFinal
}

func (c progressCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.parts.Election()
	for ci := range e.Contests {
		contest := e.Contests[ci].ID
		var expected, reporting, final int64
		ok := true
		for a := range e.Areas {
			if e.AreaParent(a) >= 0 || e.Expected(ci, a) == 0 {
				continue
			}
			r, err := c.parts.AreaResult(contest, e.Areas[a].ID)
			if err != nil {
				ok = false
				break
			}
			expected += int64(r.StationsExpected)
			reporting += r.StationsReporting
			final += r.StationsFinal
		}
		if !ok {
			continue // the store is closing; the next scrape tells
		}
		ch <- prometheus.MustNewConstMetric(descExpected, prometheus.GaugeValue, float64(expected), contest)
		ch <- prometheus.MustNewConstMetric(descReporting, prometheus.GaugeValue, float64(reporting), contest)
		ch <- prometheus.MustNewConstMetric(descFinal, prometheus.GaugeValue, float64(final), contest)
	}
}
