package models

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// TaskTimer is the task type of every case timer: a deadline reminder, a breach and its
// further escalation levels, the end of a deferral, and the end of the reporter's
// confirmation window.
const TaskTimer = "case:timer"

// Timer kinds.
const (
	TimerRemind    = "remind"
	TimerBreach    = "breach"
	TimerResume    = "resume"
	TimerAutoClose = "autoclose"
)

// TimerPayload is a case timer. At is the case's state the timer was set for (its due time,
// the end of its deferral, or when it was resolved): a timer whose case has moved on since
// (transferred, deferred, reopened, closed) finds a different state and does nothing.
type TimerPayload struct {
	OutboxID string    `json:"outbox_id"`
	CaseID   string    `json:"case_id"`
	Kind     string    `json:"kind"`
	At       time.Time `json:"at"`
	Level    int       `json:"level,omitempty"`
}

// The deadline rules every city shares; the city's calendar and its escalation interval
// are its own.
const (
	// reminderShare is how much of the SLA has run when the handler is reminded.
	reminderShare = 0.8
	// MaxEscalation is the highest escalation level; each is one more step up the chain.
	MaxEscalation = 3
)

// workCalendar returns a city's working calendar.
func (db *DB) workCalendar(ctx context.Context, jurisdictionID string) (*WorkCalendar, *Jurisdiction, error) {
	j, err := db.Jurisdiction(ctx, jurisdictionID)
	if err != nil {
		return nil, nil, err
	}
	var cal Calendar
	if j.Calendar != "" {
		if err := json.Unmarshal([]byte(j.Calendar), &cal); err != nil {
			return nil, nil, fmt.Errorf("calendar of %s: %w", j.ID, err)
		}
	}
	cal.Timezone = j.Timezone
	wc, err := ParseCalendar(cal)
	if err != nil {
		return nil, nil, fmt.Errorf("calendar of %s: %w", j.ID, err)
	}
	return wc, j, nil
}

// deadlineFor is when a case of category cat dispatched at start is due, counted in its
// city's working time; nil when the category sets no deadline.
func (db *DB) deadlineFor(ctx context.Context, c *Case, start time.Time) (*time.Time, error) {
	cat, err := db.Category(ctx, c.CategoryID)
	if err != nil || cat.SLAHours <= 0 {
		return nil, err
	}
	wc, _, err := db.workCalendar(ctx, c.JurisdictionID)
	if err != nil {
		return nil, err
	}
	due := wc.Due(start, time.Duration(cat.SLAHours)*time.Hour)
	return &due, nil
}

// scheduleTimers writes the timers a change calls for, in the change's transaction: a new
// deadline gets a reminder and a breach; a breach that escalated gets the next level; a
// deferral gets its end; a resolution gets the end of the confirmation window.
func (db *DB) scheduleTimers(ctx context.Context, before, after *Case, ev *CaseEvent, now time.Time) error {
	add := func(kind string, at, processAt time.Time, level int) error {
		id := NewID()
		return db.addOutbox(ctx, id, TaskTimer, TimerPayload{OutboxID: id, CaseID: after.ID, Kind: kind, At: at.UTC(), Level: level}, processAt, now)
	}
	newDeadline := after.DueAt != nil && (before.DueAt == nil || !after.DueAt.Equal(*before.DueAt))
	if newDeadline || ev.Type == ActionEscalate {
		wc, j, err := db.workCalendar(ctx, after.JurisdictionID)
		if err != nil {
			return err
		}
		if newDeadline {
			total := wc.Elapsed(now, *after.DueAt)
			remind := wc.Due(now, time.Duration(float64(total)*reminderShare))
			if remind.After(now) && remind.Before(*after.DueAt) {
				if err := add(TimerRemind, *after.DueAt, remind, 0); err != nil {
					return err
				}
			}
			if err := add(TimerBreach, *after.DueAt, *after.DueAt, 1); err != nil {
				return err
			}
		}
		if ev.Type == ActionEscalate && after.EscalationLevel < MaxEscalation && after.DueAt != nil {
			next := wc.Due(now, time.Duration(j.EscalationHours)*time.Hour)
			if err := add(TimerBreach, *after.DueAt, next, after.EscalationLevel+1); err != nil {
				return err
			}
		}
	}
	if ev.Type == ActionDefer && after.DeferredUntil != nil {
		if err := add(TimerResume, *after.DeferredUntil, *after.DeferredUntil, 0); err != nil {
			return err
		}
	}
	if after.Status == StatusResolved && before.Status != StatusResolved && after.ResolvedAt != nil {
		j, err := db.Jurisdiction(ctx, after.JurisdictionID)
		if err != nil {
			return err
		}
		closeAt := ConfirmWindowEnd(j, *after.ResolvedAt)
		if err := add(TimerAutoClose, *after.ResolvedAt, closeAt, 0); err != nil {
			return err
		}
	}
	return nil
}

// TimerChange turns a timer that fired into the change it calls for, or nil when the case
// has moved on and the timer is stale.
func (db *DB) TimerChange(ctx context.Context, p TimerPayload, now time.Time) (*Change, error) {
	c, err := db.Case(ctx, p.CaseID)
	if err != nil {
		return nil, err
	}
	ch := &Change{CaseID: c.ID, Version: c.Version, Actor: SystemActor, CompletesOutbox: p.OutboxID}
	working := c.Status == StatusDispatched || c.Status == StatusAccepted || c.Status == StatusInProgress
	sameDue := c.DueAt != nil && c.DueAt.Equal(p.At)
	switch p.Kind {
	case TimerRemind:
		if !working || !sameDue {
			return nil, nil
		}
		ch.Action = ActionRemind
	case TimerBreach:
		if !working || !sameDue || c.EscalationLevel >= p.Level || now.Before(*c.DueAt) {
			return nil, nil
		}
		ch.Action = ActionEscalate
	case TimerResume:
		if !working || c.DeferredUntil == nil || !c.DeferredUntil.Equal(p.At) {
			return nil, nil
		}
		ch.Action = ActionResume
	case TimerAutoClose:
		if c.Status != StatusResolved || c.ResolvedAt == nil || !c.ResolvedAt.Equal(p.At) {
			return nil, nil
		}
		ch.Action = ActionTimeout
	default:
		return nil, fmt.Errorf("unknown timer kind %q", p.Kind)
	}
	return ch, nil
}

// ConfirmWindowEnd is when a reporter's window to confirm or reopen a case resolved at
// resolvedAt ends in city j: the auto-close timer is set for that moment, and feedback is
// refused from then on even if the timer has not fired yet (a busy queue may run it late).
func ConfirmWindowEnd(j *Jurisdiction, resolvedAt time.Time) time.Time {
	return resolvedAt.Add(time.Duration(j.ConfirmWindowHours) * time.Hour).UTC()
}

// checkConfirmWindow refuses the reporter's confirm or reopen of a case whose window has
// ended: the city promised its staff that a resolution stands after that long.
func (db *DB) checkConfirmWindow(ctx context.Context, c *Case, now time.Time) error {
	if c.ResolvedAt == nil {
		return nil
	}
	j, err := db.Jurisdiction(ctx, c.JurisdictionID)
	if err != nil {
		return err
	}
	end := ConfirmWindowEnd(j, *c.ResolvedAt)
	if now.Before(end) {
		return nil
	}
	return Problemf(ErrConflict, "feedback-window-closed",
		"the window to confirm or reopen case %s closed at %s (%d hours after it was resolved); the fix stands and the case is closing. If the problem is still there, report it again",
		c.Number, end.Format(time.RFC3339), j.ConfirmWindowHours)
}
