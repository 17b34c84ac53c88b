package models

import (
	"context"
	"time"

	"gorm.io/gorm/clause"
)

// ClaimOutbox hands due outbox rows to fn, one at a time, inside a transaction that holds
// them: on PostgreSQL with FOR UPDATE SKIP LOCKED, so several relays share the work without
// taking the same row; on SQLite the write lock does the same. After fn succeeds the row is
// not offered again until lease has passed beyond its due time: if by then the task has not
// marked it done (Redis lost it, or a worker died holding it) it is handed over again, and
// the queue's task id makes a second enqueue of a task still queued a no-op.
func (db *DB) ClaimOutbox(ctx context.Context, now time.Time, limit int, lease time.Duration, fn func(Outbox) error) (int, error) {
	now = now.UTC()
	n := 0
	err := db.InTx(ctx, func(tx *DB) error {
		n = 0
		q := tx.q(ctx).Where("done_at IS NULL AND next_attempt_at <= ?", now).Order("next_attempt_at").Limit(limit)
		if db.dialect == Postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
		}
		var rows []Outbox
		if err := q.Find(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
			next := now
			if r.ProcessAt.After(next) {
				next = r.ProcessAt
			}
			err := tx.q(ctx).Model(&Outbox{}).Where("id = ?", r.ID).Updates(map[string]any{
				"enqueued_at":     now,
				"next_attempt_at": next.Add(lease),
				"attempts":        r.Attempts + 1,
			}).Error
			if err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// MarkOutboxDone records that a task finished its work; the relay will not hand it over
// again. It is meant to run in the same transaction as the task's own writes.
func (db *DB) MarkOutboxDone(ctx context.Context, id string, now time.Time) error {
	return translate(db.q(ctx).Model(&Outbox{}).Where("id = ? AND done_at IS NULL", id).
		Update("done_at", now.UTC()).Error)
}

// OutboxDone reports whether a task's work is already done (a repeated delivery).
func (db *DB) OutboxDone(ctx context.Context, id string) (bool, error) {
	var o Outbox
	if err := db.q(ctx).Select("done_at").Where("id = ?", id).Take(&o).Error; err != nil {
		return false, translate(err)
	}
	return o.DoneAt != nil, nil
}

// PendingOutbox counts outbox rows not yet done (the relay's lag, for metrics and tests).
func (db *DB) PendingOutbox(ctx context.Context) (int64, error) {
	var n int64
	err := db.q(ctx).Model(&Outbox{}).Where("done_at IS NULL").Count(&n).Error
	return n, translate(err)
}
