// Package metrics is what a service process tells Prometheus about its
// work: tasks by state and the queue behind them (read from the database,
// so every process of a hosting reports the same), and what this process
// copied, how long its appends took, why tasks failed and how many
// sessions it holds at each old server.
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mailmigrate/internal/store"
)

// Metrics are one process's metrics; a nil *Metrics records nothing, so
// that code paths without metrics (the CLI, tests) need no checks.
type Metrics struct {
	reg      *prometheus.Registry
	messages prometheus.Counter
	bytes    prometheus.Counter
	appends  prometheus.Histogram
	failures *prometheus.CounterVec
	sessions *prometheus.GaugeVec
	throttle *prometheus.CounterVec
}

// New makes the metrics of a process whose tasks are in db.
func New(db *sql.DB) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(),
		messages: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailmigrate_messages_copied_total",
			Help: "Messages this process copied into the hosting."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailmigrate_bytes_copied_total",
			Help: "Bytes of messages this process copied into the hosting."}),
		appends: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mailmigrate_append_seconds",
			Help:    "Time of one APPEND command into the hosting (one message, or a folder's batch with MULTIAPPEND), from the command to its answer.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailmigrate_task_failures_total",
			Help: "Tasks that ended failed or paused, by the kind of failure (auth, connect, over_quota, ...)."}, []string{"kind"}),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mailmigrate_source_sessions",
			Help: "Copies this process runs now, by old server."}, []string{"host"}),
		throttle: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailmigrate_source_throttled_total",
			Help: "Throttling answers of old servers, by server and answer: wait (a command refused with a backoff, such as Exchange's \"Request is throttled\", or a connection cap) or slow_down (an OK [THROTTLED])."}, []string{"host", "answer"}),
	}
	m.reg.MustRegister(m.messages, m.bytes, m.appends, m.failures, m.sessions, m.throttle, &taskCollector{db: db},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Copied counts what a run copied.
func (m *Metrics) Copied(messages int, bytes int64) {
	if m == nil {
		return
	}
	m.messages.Add(float64(messages))
	m.bytes.Add(float64(bytes))
}

// Appended observes one APPEND command's time.
func (m *Metrics) Appended(took time.Duration) {
	if m == nil {
		return
	}
	m.appends.Observe(took.Seconds())
}

// Failed counts a task that ended with a failure of kind.
func (m *Metrics) Failed(kind string) {
	if m == nil {
		return
	}
	m.failures.WithLabelValues(kind).Inc()
}

// Session counts a copy from host starting (+1) or ending (-1).
func (m *Metrics) Session(host string, delta int) {
	if m == nil {
		return
	}
	m.sessions.WithLabelValues(host).Add(float64(delta))
}

// Throttled counts a throttling answer of an old server: "wait" or
// "slow_down".
func (m *Metrics) Throttled(host, answer string) {
	if m == nil {
		return
	}
	m.throttle.WithLabelValues(host, answer).Inc()
}

// taskCollector reads the tasks by state when Prometheus asks: the
// database is the truth every process shares.
type taskCollector struct{ db *sql.DB }

var (
	tasksDesc = prometheus.NewDesc("mailmigrate_tasks", "Mailboxes (tasks) by state, in the whole database.", []string{"state"}, nil)
	queueDesc = prometheus.NewDesc("mailmigrate_queue_depth", "Mailboxes waiting to be copied.", nil, nil)
)

func (c *taskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tasksDesc
	ch <- queueDesc
}

func (c *taskCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := c.db.QueryContext(ctx, `SELECT state, count(*) FROM task GROUP BY state`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(tasksDesc, err)
		return
	}
	defer rows.Close()
	queued := 0
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(tasksDesc, err)
			return
		}
		if state == store.StateQueued {
			queued = n
		}
		ch <- prometheus.MustNewConstMetric(tasksDesc, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(queued))
}
