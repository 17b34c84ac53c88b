package workflows

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/city-eyes/cityeyes/models"
)

// TaskRetention is the periodic task that enforces every city's retention periods
// (docs/privacy.md).
const TaskRetention = "privacy:retention"

// retentionTasks lists the periodic tasks of the retention of originals and of closed cases' personal data.
func (w *Worker) retentionTasks() []Periodic {
	// Hourly: a citizen's deleted data whose photos were still being processed is gone within
	// the hour; the periods themselves are counted in days.
	return []Periodic{{Cron: "@every 1h", Type: TaskRetention, Handler: w.handleRetention, Unique: 50 * time.Minute}}
}

// handleRetention enforces each city's retention: the originals of photos older than its
// originals period are deleted from the object store (the stripped versions stay), and
// closed cases past its closed-case period are anonymised. It also deletes the originals of
// erased citizens' photos that were still being processed when they were erased. The work
// goes in batches of models.PrivacyBatch, each its own transaction, until none is left; a
// run cut short (a deadline, a worker stopping) leaves consistent rows, and the next run
// goes on from there. Running it twice, or two at once, does the work once.
func (w *Worker) handleRetention(ctx context.Context, _ *asynq.Task) error {
	if w.cfg.Store == nil {
		return fmt.Errorf("retention needs the object store: %w", asynq.SkipRetry)
	}
	db, del := w.cfg.DB, w.cfg.Store.Delete
	now := w.cfg.Now().UTC()
	js, err := db.Jurisdictions(ctx)
	if err != nil {
		return err
	}
	for _, j := range js {
		originals, err := drain(ctx, func() (int, error) {
			return db.EraseOldOriginals(ctx, j.ID, now.AddDate(0, 0, -j.RetentionOriginalsDays), models.PrivacyBatch, del, now)
		})
		if err != nil {
			return fmt.Errorf("retention of originals in %s: %w", j.ID, err)
		}
		cases, err := drain(ctx, func() (int, error) {
			return db.AnonymiseClosedCases(ctx, j.ID, now.AddDate(0, 0, -j.RetentionClosedDays), models.PrivacyBatch, del, now)
		})
		if err != nil {
			return fmt.Errorf("retention of closed cases in %s: %w", j.ID, err)
		}
		if originals+cases > 0 {
			w.cfg.Logger.Info("retention", "jurisdiction", j.ID, "originals_deleted", originals, "cases_anonymised", cases)
		}
	}
	left, err := drain(ctx, func() (int, error) { return db.EraseLeftOriginals(ctx, models.PrivacyBatch, del, now) })
	if err != nil {
		return fmt.Errorf("originals of erased citizens: %w", err)
	}
	if left > 0 {
		w.cfg.Logger.Info("retention", "erased_citizens_originals_deleted", left)
	}
	return nil
}

// drain runs one batch after another until a batch comes back short of full.
func drain(ctx context.Context, batch func() (int, error)) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := batch()
		total += n
		if err != nil || n < models.PrivacyBatch {
			return total, err
		}
	}
}
