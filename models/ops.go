package models

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"gorm.io/gorm"
)

// requestIDKey keys the request id in a context.
type requestIDKey struct{}

// WithRequestID returns ctx carrying the id of the HTTP request (or of the task) that the
// work done under it belongs to. Outbox rows written under it remember the id, so the tasks
// they become log it too.
func WithRequestID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID is the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// RequestIDHandler wraps a log handler so that every line logged with a context carrying a
// request id (slog's InfoContext and friends) names it as request_id: the API's lines of a
// request and the workers' lines of the tasks it caused can be found together. A handler
// wrapped already is returned as it is, so wrapping twice names the id once.
func RequestIDHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{h}
}

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// AllStatuses lists every case status, in the order of the lifecycle.
func AllStatuses() []Status {
	return []Status{StatusSubmitted, StatusDispatched, StatusTriage, StatusAccepted, StatusInProgress, StatusResolved, StatusClosed}
}

// StatusCount is the number of cases of one city in one status.
type StatusCount struct {
	JurisdictionID string
	Status         Status
	Count          int64
}

// OpsSnapshot is what operators watch of the data: cases by status, overdue cases, the
// relay's backlog and lag, and the SLA breaches so far. It is read at scrape time, so each
// part is one query over an index.
type OpsSnapshot struct {
	Cases []StatusCount
	// Overdue counts each city's working cases (dispatched, triage, accepted, in progress)
	// past their due time.
	Overdue map[string]int64
	// OutboxBacklog counts outbox rows that are due and not done.
	OutboxBacklog int64
	// OldestDue is the due time of the oldest of them; nil when there is none.
	OldestDue *time.Time
	// Escalations counts the escalation events ever written: one per SLA breach and level.
	Escalations int64
	// StatsWaiting counts the case changes not yet folded into the KPI rollup: it grows
	// when no worker runs the fold (stats:fold), and the KPIs slow down with it.
	StatsWaiting int64
}

// Ops reads the operators' snapshot at now.
func (db *DB) Ops(ctx context.Context, now time.Time) (OpsSnapshot, error) {
	now = now.UTC()
	var s OpsSnapshot
	if err := db.q(ctx).Model(&Case{}).Select("jurisdiction_id, status, COUNT(*) AS count").
		Group("jurisdiction_id, status").Scan(&s.Cases).Error; err != nil {
		return s, translate(err)
	}
	var overdue []struct {
		JurisdictionID string
		Count          int64
	}
	if err := db.q(ctx).Model(&Case{}).Select("jurisdiction_id, COUNT(*) AS count").
		Where("status IN ? AND due_at < ?", []Status{StatusDispatched, StatusTriage, StatusAccepted, StatusInProgress}, now).
		Group("jurisdiction_id").Scan(&overdue).Error; err != nil {
		return s, translate(err)
	}
	s.Overdue = map[string]int64{}
	for _, o := range overdue {
		s.Overdue[o.JurisdictionID] = o.Count
	}
	due := db.q(ctx).Model(&Outbox{}).Where("done_at IS NULL AND process_at <= ?", now)
	if err := due.Count(&s.OutboxBacklog).Error; err != nil {
		return s, translate(err)
	}
	var oldest Outbox
	err := db.q(ctx).Select("process_at").Where("done_at IS NULL AND process_at <= ?", now).
		Order("process_at").Take(&oldest).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
	case err != nil:
		return s, translate(err)
	default:
		t := oldest.ProcessAt.UTC()
		s.OldestDue = &t
	}
	if err := db.q(ctx).Model(&CaseEvent{}).Where("type = ?", ActionEscalate).Count(&s.Escalations).Error; err != nil {
		return s, translate(err)
	}
	var err2 error
	s.StatsWaiting, err2 = db.StatsPending(ctx)
	return s, err2
}
