package workflows

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/notifications"
)

// headerRequestID is the task header that carries the id of the HTTP request that caused a
// task, from its outbox row.
const headerRequestID = "request_id"

// metrics are the workers' Prometheus metrics. The counters and the histogram count what
// this process did; the gauges read from the database and Redis describe the whole
// deployment, so every worker reports the same values (aggregate them with max, not sum).
type metrics struct {
	tasks  *prometheus.HistogramVec
	pushes *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		tasks: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cityeyes_task_duration_seconds",
			Help: "How long task handlers ran, by task type and result (ok, error, skip: a permanent failure).",
			// Most tasks take milliseconds; photo versions and pushes take longer.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"type", "result"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cityeyes_pushes_total",
			Help: "Pushes handed to FCM, by result: sent, failed (retried with the task), unregistered (token dropped).",
		}, []string{"result"}),
	}
}

// register adds the worker's metrics to reg: its own counters, the queues' depth and
// latency, and the data's gauges (cases by status, the outbox's backlog and lag, SLA
// breaches), read at scrape time at most every refresh.
func (w *Worker) registerMetrics(reg prometheus.Registerer, refresh time.Duration) error {
	for _, s := range []string{"sent", "failed", "unregistered"} {
		w.metrics.pushes.WithLabelValues(s) // every series exists from the start, at 0
	}
	w.inspector = asynq.NewInspector(w.cfg.Redis)
	return errors.Join(
		reg.Register(w.metrics.tasks),
		reg.Register(w.metrics.pushes),
		reg.Register(&queueCollector{insp: w.inspector, log: w.cfg.Logger}),
		reg.Register(&dataCollector{db: w.cfg.DB, now: w.cfg.Now, refresh: refresh, log: w.cfg.Logger}),
	)
}

// observeTask is the middleware of every task: it puts the request id of the task's
// outbox row into the context (so the handler's log lines and the outbox rows it writes
// carry it on), times the handler, and logs one line per run.
func (w *Worker) observeTask(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		ctx = models.WithRequestID(ctx, t.Headers()[headerRequestID])
		start := time.Now()
		err := next.ProcessTask(ctx, t)
		took := time.Since(start)
		result, level := "ok", slog.LevelInfo
		switch {
		case errors.Is(err, asynq.SkipRetry):
			result, level = "skip", slog.LevelError
		case err != nil:
			result, level = "error", slog.LevelWarn
		}
		w.metrics.tasks.WithLabelValues(t.Type(), result).Observe(took.Seconds())
		id, _ := asynq.GetTaskID(ctx)
		attrs := []slog.Attr{slog.String("type", t.Type()), slog.String("task", id), slog.String("result", result),
			slog.Float64("ms", float64(took.Microseconds())/1000)}
		if err != nil {
			attrs = append(attrs, slog.String("err", err.Error()))
		}
		w.cfg.Logger.LogAttrs(ctx, level, "task", attrs...)
		return err
	})
}

// countingSender counts the pushes of the sender it wraps by result.
type countingSender struct {
	notifications.Sender
	pushes *prometheus.CounterVec
}

func (s countingSender) Send(ctx context.Context, m notifications.Message) (string, error) {
	id, err := s.Sender.Send(ctx, m)
	switch {
	case errors.Is(err, notifications.ErrUnregistered):
		s.pushes.WithLabelValues("unregistered").Inc()
	case err != nil:
		s.pushes.WithLabelValues("failed").Inc()
	default:
		s.pushes.WithLabelValues("sent").Inc()
	}
	return id, err
}

// queueCollector reports each Asynq queue's depth by task state and its latency (how long
// its oldest pending task has waited), read from Redis at scrape time.
type queueCollector struct {
	insp *asynq.Inspector
	log  *slog.Logger
}

var (
	queueTasksDesc = prometheus.NewDesc("cityeyes_queue_tasks",
		"Tasks in an Asynq queue, by state (pending, active, scheduled, retry, archived).", []string{"queue", "state"}, nil)
	queueLatencyDesc = prometheus.NewDesc("cityeyes_queue_latency_seconds",
		"How long the oldest pending task of an Asynq queue has waited.", []string{"queue"}, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueTasksDesc
	ch <- queueLatencyDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	queues, err := c.insp.Queues()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueTasksDesc, err)
		return
	}
	for _, q := range queues {
		info, err := c.insp.GetQueueInfo(q)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(queueTasksDesc, err)
			continue
		}
		for state, n := range map[string]int{"pending": info.Pending, "active": info.Active,
			"scheduled": info.Scheduled, "retry": info.Retry, "archived": info.Archived} {
			ch <- prometheus.MustNewConstMetric(queueTasksDesc, prometheus.GaugeValue, float64(n), q, state)
		}
		ch <- prometheus.MustNewConstMetric(queueLatencyDesc, prometheus.GaugeValue, info.Latency.Seconds(), q)
	}
}

// dataCollector reports what the database says: cases by city and status, overdue cases,
// the outbox's backlog and lag, and the SLA breaches so far. Several scrapes within refresh
// share one reading, so a busy Prometheus (or several) cannot load the database.
type dataCollector struct {
	db      *models.DB
	now     func() time.Time
	refresh time.Duration
	log     *slog.Logger

	mu   sync.Mutex
	at   time.Time
	snap models.OpsSnapshot
	err  error
}

var (
	casesDesc = prometheus.NewDesc("cityeyes_cases",
		"Cases by city and status, now.", []string{"jurisdiction", "status"}, nil)
	overdueDesc = prometheus.NewDesc("cityeyes_cases_overdue",
		"Working cases (dispatched, triage, accepted, in progress) past their due time, by city.", []string{"jurisdiction"}, nil)
	backlogDesc = prometheus.NewDesc("cityeyes_outbox_backlog",
		"Outbox rows that are due and not done: work accepted and not yet finished by a task.", nil, nil)
	lagDesc = prometheus.NewDesc("cityeyes_outbox_lag_seconds",
		"Age of the oldest due outbox row that is not done (0 when there is none).", nil, nil)
	breachesDesc = prometheus.NewDesc("cityeyes_sla_breaches_total",
		"SLA breaches so far: escalation events in the case log, one per breach and level.", nil, nil)
	statsWaitingDesc = prometheus.NewDesc("cityeyes_stats_changes_waiting",
		"Case changes not yet folded into the KPI rollup (stats:fold runs every 30 s).", nil, nil)
)

func (c *dataCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{casesDesc, overdueDesc, backlogDesc, lagDesc, breachesDesc, statsWaitingDesc} {
		ch <- d
	}
}

func (c *dataCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.at.IsZero() || now.Sub(c.at) >= c.refresh || c.err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.snap, c.err = c.db.Ops(ctx, now)
		cancel()
		c.at = now
	}
	if c.err != nil {
		ch <- prometheus.NewInvalidMetric(casesDesc, c.err)
		return
	}
	s := c.snap
	cities := map[string]map[models.Status]int64{}
	for _, sc := range s.Cases {
		if cities[sc.JurisdictionID] == nil {
			cities[sc.JurisdictionID] = map[models.Status]int64{}
		}
		cities[sc.JurisdictionID][sc.Status] += sc.Count
	}
	// Every status of a city with cases has a series, 0 included, so a rate or a sum over
	// statuses does not jump when a status empties.
	for city, by := range cities {
		for _, st := range models.AllStatuses() {
			ch <- prometheus.MustNewConstMetric(casesDesc, prometheus.GaugeValue, float64(by[st]), city, string(st))
		}
		ch <- prometheus.MustNewConstMetric(overdueDesc, prometheus.GaugeValue, float64(s.Overdue[city]), city)
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(s.OutboxBacklog))
	lag := 0.0
	if s.OldestDue != nil {
		lag = max(0, c.at.Sub(*s.OldestDue).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag)
	ch <- prometheus.MustNewConstMetric(breachesDesc, prometheus.CounterValue, float64(s.Escalations))
	ch <- prometheus.MustNewConstMetric(statsWaitingDesc, prometheus.GaugeValue, float64(s.StatsWaiting))
}
