// Package workflows runs everything that happens after a request has been answered: the
// relay that hands outbox rows to the task queue (Asynq), and the task handlers that route
// a case to its department, tell everyone concerned of each change, keep its deadlines, and
// make the stripped versions of its photos.
//
// Every task may run twice (a retry, a relay that handed a row over again after Redis lost
// it, two workers): each handler first checks whether its outbox row is already done, makes
// its change conditional on the state it expects, and marks the row done in the same
// transaction as its effect.
package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/notifications"
	"github.com/city-eyes/cityeyes/storage"
)

// Config is what the workers need.
type Config struct {
	DB    *models.DB
	Redis asynq.RedisConnOpt
	// Store holds the photos the photo task reads and writes.
	Store storage.Store
	// Push sends pushes; nil leaves notifications in the inbox only (FCM not configured).
	Push   notifications.Sender
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RelayInterval is how often the relay looks for outbox rows (default 100 ms).
	RelayInterval time.Duration
	// Lease is how long after its due time an enqueued row waits for its task to finish
	// before the relay hands it over again (default 30 s).
	Lease time.Duration
	// Concurrency is the number of tasks run at once (default 10).
	Concurrency int
	// ShutdownTimeout is how long tasks in flight may take to finish once Run's context is
	// cancelled (default 10 s); tasks still running then are handed back to the queue.
	ShutdownTimeout time.Duration
	// MetricsRefresh is how often at most the metrics read from the database are read
	// again (default 10 s); see RegisterMetrics.
	MetricsRefresh time.Duration
	// PhotoPixels bounds the pixels the photo tasks hold decoded at once, and so their
	// memory (default DefaultPhotoPixels; photos.go).
	PhotoPixels int
}

// Worker runs the relay and the task handlers.
type Worker struct {
	cfg       Config
	client    *asynq.Client
	metrics   *metrics
	inspector *asynq.Inspector    // set by RegisterMetrics
	decodes   *semaphore.Weighted // pixels being decoded by photo tasks (photos.go)
}

// New builds a worker from its configuration.
func New(cfg Config) *Worker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RelayInterval <= 0 {
		cfg.RelayInterval = 100 * time.Millisecond
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = slog.New(models.RequestIDHandler(cfg.Logger.Handler()))
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.MetricsRefresh <= 0 {
		cfg.MetricsRefresh = 10 * time.Second
	}
	if cfg.PhotoPixels <= 0 {
		cfg.PhotoPixels = DefaultPhotoPixels
	}
	m := newMetrics()
	if cfg.Push != nil {
		cfg.Push = countingSender{Sender: cfg.Push, pushes: m.pushes}
	}
	return &Worker{cfg: cfg, client: asynq.NewClient(cfg.Redis), metrics: m, decodes: semaphore.NewWeighted(int64(cfg.PhotoPixels))}
}

// RegisterMetrics adds the workers' metrics to reg (see ops.go).
func (w *Worker) RegisterMetrics(reg prometheus.Registerer) error {
	return w.registerMetrics(reg, w.cfg.MetricsRefresh)
}

// Run runs the relay and the task server until ctx is cancelled, then lets tasks in flight
// finish and returns.
func (w *Worker) Run(ctx context.Context) error {
	srv := asynq.NewServer(w.cfg.Redis, asynq.Config{
		Concurrency:     w.cfg.Concurrency,
		ShutdownTimeout: w.cfg.ShutdownTimeout,
		// A report should be routed well within a second of its acceptance; Asynq's
		// default is to look for new tasks once a second when the queues are empty.
		TaskCheckInterval:        50 * time.Millisecond,
		DelayedTaskCheckInterval: time.Second,
		Logger:                   asynqLogger{w.cfg.Logger},
		LogLevel:                 asynq.WarnLevel,
		// Retries back off quickly at first: most failures here are a dependency that is
		// briefly away.
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			d := time.Duration(1<<min(n, 8)) * time.Second
			return min(d, 5*time.Minute)
		},
	})
	if err := srv.Start(w.Mux()); err != nil {
		return fmt.Errorf("start task server: %w", err)
	}
	sched, err := w.startScheduler()
	if err != nil {
		srv.Shutdown()
		return err
	}
	defer sched.Shutdown()
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		w.relay(ctx)
	}()
	<-ctx.Done()
	<-relayDone
	srv.Shutdown()
	if w.inspector != nil {
		_ = w.inspector.Close()
	}
	return w.client.Close()
}

// Mux maps each task type to its handler.
func (w *Worker) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.Use(w.observeTask)
	mux.HandleFunc(models.TaskRoute, w.handleRoute)
	mux.HandleFunc(models.TaskNotify, w.handleNotify)
	mux.HandleFunc(models.TaskTimer, w.handleTimer)
	mux.HandleFunc(models.TaskPhoto, w.handlePhoto)
	for _, p := range w.periodic() {
		mux.HandleFunc(p.Type, p.Handler)
	}
	return mux
}

// Periodic is a task the workers run on a schedule rather than from the outbox: sweeping,
// digests, retention. Every worker process runs the scheduler, so each run must be safe to
// repeat; Unique keeps the workers from enqueueing the same run more than once.
type Periodic struct {
	// Cron is when it runs, in UTC: a cron spec ("0 6 * * *") or "@every 10m".
	Cron    string
	Type    string
	Handler asynq.HandlerFunc
	// Unique is the window in which only one run is enqueued, however many workers run the
	// scheduler; a little under the period.
	Unique time.Duration
}

// periodic lists the scheduled tasks; each feature lists its own in its own file.
func (w *Worker) periodic() []Periodic {
	return slices.Concat(w.sweepTasks(), w.digestTasks(), w.retentionTasks(), w.statsTasks())
}

// startScheduler enqueues the periodic tasks when they come due.
func (w *Worker) startScheduler() (*asynq.Scheduler, error) {
	sched := asynq.NewScheduler(w.cfg.Redis, &asynq.SchedulerOpts{
		Location: time.UTC,
		Logger:   asynqLogger{w.cfg.Logger},
		LogLevel: asynq.WarnLevel,
	})
	for _, p := range w.periodic() {
		if _, err := sched.Register(p.Cron, asynq.NewTask(p.Type, nil), asynq.Unique(p.Unique), asynq.MaxRetry(3)); err != nil {
			return nil, fmt.Errorf("schedule %s (%q): %w", p.Type, p.Cron, err)
		}
	}
	if err := sched.Start(); err != nil {
		return nil, fmt.Errorf("start scheduler: %w", err)
	}
	return sched, nil
}

// relay moves due outbox rows into the queue, with the outbox id as the task id, until ctx
// is cancelled.
func (w *Worker) relay(ctx context.Context) {
	t := time.NewTicker(w.cfg.RelayInterval)
	defer t.Stop()
	for {
		n, err := w.RelayOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.cfg.Logger.Warn("outbox relay", "err", err)
		}
		if n == 100 {
			continue // more may be waiting
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RelayOnce hands over one batch of due outbox rows and says how many it handed over.
func (w *Worker) RelayOnce(ctx context.Context) (int, error) {
	return w.cfg.DB.ClaimOutbox(ctx, w.cfg.Now(), 100, w.cfg.Lease, func(o models.Outbox) error {
		var headers map[string]string
		if o.RequestID != "" {
			headers = map[string]string{headerRequestID: o.RequestID}
		}
		task := asynq.NewTaskWithHeaders(o.TaskType, []byte(o.Payload), headers)
		_, err := w.client.EnqueueContext(ctx, task, asynq.TaskID(o.ID), asynq.ProcessAt(o.ProcessAt), asynq.MaxRetry(20))
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			return nil // still queued from an earlier hand-over
		}
		return err
	})
}

// handleRoute sends a submitted case to its department: the routing rule for its category
// and area, else the category's department, else the triage desk; the deadline starts now.
func (w *Worker) handleRoute(ctx context.Context, t *asynq.Task) error {
	var p models.RoutePayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("route payload: %v: %w", err, asynq.SkipRetry)
	}
	db := w.cfg.DB
	if done, err := db.OutboxDone(ctx, p.OutboxID); err != nil || done {
		return err
	}
	c, err := db.Case(ctx, p.CaseID)
	if err != nil {
		return err
	}
	if c.Status != models.StatusSubmitted {
		return db.MarkOutboxDone(ctx, p.OutboxID, w.cfg.Now()) // routed already
	}
	dept, err := db.RouteFor(ctx, c)
	if err != nil {
		return err
	}
	now := w.cfg.Now()
	_, ev, err := db.Transition(ctx, models.Change{
		CaseID: c.ID, Version: c.Version, Action: models.ActionRoute, Actor: models.SystemActor,
		DepartmentID: &dept, CompletesOutbox: p.OutboxID,
	}, now)
	if errors.Is(err, models.ErrConflict) {
		// Another run of this task got there first; its transaction marked the row done.
		return nil
	}
	if err != nil {
		return err
	}
	w.cfg.Logger.InfoContext(ctx, "case routed", "case", c.Number, "status", ev.ToStatus, "event", ev.ID)
	return nil
}

// handleNotify writes a public event into the inbox of everyone concerned and pushes it to
// each of their devices, once per device however often it runs.
func (w *Worker) handleNotify(ctx context.Context, t *asynq.Task) error {
	var p models.NotifyPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("notify payload: %v: %w", err, asynq.SkipRetry)
	}
	db := w.cfg.DB
	if done, err := db.OutboxDone(ctx, p.OutboxID); err != nil || done {
		return err
	}
	ev, err := db.Event(ctx, p.EventID)
	if err != nil {
		return err
	}
	c, err := db.Case(ctx, ev.CaseID)
	if err != nil {
		return err
	}
	pending, err := db.RecordNotifications(ctx, ev, w.cfg.Push != nil, w.cfg.Now())
	if err != nil {
		return err
	}
	var failed error
	for _, pp := range pending {
		resolution := ""
		if ev.ToStatus == models.StatusClosed {
			resolution = string(c.Resolution)
		}
		title, body, staff := notifications.StaffText(pp.Device.Locale, string(ev.Type), c.Number)
		if !staff {
			title, body = notifications.Text(pp.Device.Locale, string(ev.ToStatus), resolution, c.Number)
		}
		token := *pp.Device.PushToken
		// Recorded before the send, so that a worker dying between FCM taking the push and
		// the record below leaves the delivery in doubt, not pending: the next run sends it
		// again (at least once; the app drops a repeat by event_id) and says so.
		note := ""
		if pp.Delivery.State == models.DeliverySending {
			note = models.DeliveryResent
		}
		if err := db.MarkDelivery(ctx, pp.Delivery.ID, models.DeliverySending, "", note, w.cfg.Now()); err != nil {
			return err
		}
		id, err := w.cfg.Push.Send(ctx, notifications.Message{
			Token: token, Title: title, Body: body,
			// seq orders the pushes of one report: they may arrive out of order, and an app
			// can ignore one older than what it shows.
			Data: map[string]string{"report_id": c.ID, "status": string(ev.ToStatus), "event_id": ev.ID, "seq": strconv.Itoa(ev.Seq)},
		})
		now := w.cfg.Now()
		switch {
		case errors.Is(err, notifications.ErrUnregistered):
			// The app was uninstalled or the token rotated: stop pushing to it.
			if err := db.DropPushToken(ctx, pp.Device.ID, token, now); err != nil {
				return err
			}
			if err := db.MarkDelivery(ctx, pp.Delivery.ID, models.DeliveryDropped, "", err.Error(), now); err != nil {
				return err
			}
		case err != nil:
			failed = errors.Join(failed, err) // retried with the task; sent ones stay sent
			if note == "" {
				// FCM said no: nothing is in doubt.
				if err := db.MarkDelivery(ctx, pp.Delivery.ID, models.DeliveryPending, "", "", now); err != nil {
					return err
				}
			}
		default:
			if err := db.MarkDelivery(ctx, pp.Delivery.ID, models.DeliverySent, id, note, now); err != nil {
				return err
			}
		}
	}
	if failed != nil {
		return fmt.Errorf("push for event %s: %w", ev.ID, failed)
	}
	return db.MarkOutboxDone(ctx, p.OutboxID, w.cfg.Now())
}

// handleTimer acts on a case timer that came due: a reminder, an escalation, the end of a
// deferral or of the confirmation window. A timer whose case has moved on since it was set
// only marks itself done.
func (w *Worker) handleTimer(ctx context.Context, t *asynq.Task) error {
	var p models.TimerPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("timer payload: %v: %w", err, asynq.SkipRetry)
	}
	db := w.cfg.DB
	if done, err := db.OutboxDone(ctx, p.OutboxID); err != nil || done {
		return err
	}
	now := w.cfg.Now()
	if p.Kind == models.TimerBreach && now.Before(p.At) {
		// The queue ran it early by this worker's clock (the clocks of the workers differ,
		// or this one jumped back). Marking it done would lose the escalation: it stays
		// due, and the relay hands it over again once its lease past the deadline is over.
		w.cfg.Logger.Warn("case timer came early by this worker's clock; it will be handed over again",
			"case", p.CaseID, "kind", p.Kind, "due", p.At, "now", now)
		return nil
	}
	ch, err := db.TimerChange(ctx, p, now)
	if err != nil {
		return err
	}
	if ch == nil {
		return db.MarkOutboxDone(ctx, p.OutboxID, now)
	}
	c, ev, err := db.Transition(ctx, *ch, now)
	if errors.Is(err, models.ErrConflict) {
		return fmt.Errorf("case changed while its %s timer ran; trying again: %w", p.Kind, err)
	}
	if err != nil {
		return err
	}
	w.cfg.Logger.InfoContext(ctx, "case timer", "case", c.Number, "kind", p.Kind, "event", ev.ID)
	return nil
}

// asynqLogger sends Asynq's own log lines to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
