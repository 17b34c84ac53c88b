package workflows

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// TaskFoldStats keeps supervisors' KPIs quick to read (models/rollup.go): it builds the
// rollup of a city that has none (a new city, a database from before it, a city moved to
// another time zone) and folds the case changes waiting into it.
const TaskFoldStats = "stats:fold"

// foldBatch bounds one fold's transaction; a run folds batches until none is left.
const foldBatch = 5000

// statsTasks lists the periodic task that keeps the KPI rollup.
func (w *Worker) statsTasks() []Periodic {
	// Every half minute: the KPIs read the changes not yet folded as well, so this is for
	// their speed only; a few hundred changes a minute keep that read short.
	return []Periodic{{Cron: "@every 30s", Type: TaskFoldStats, Handler: w.handleFoldStats, Unique: 25 * time.Second}}
}

func (w *Worker) handleFoldStats(ctx context.Context, _ *asynq.Task) error { return w.KeepStats(ctx) }

// KeepStats builds the rollups of the cities without one and folds every waiting change.
func (w *Worker) KeepStats(ctx context.Context) error {
	db := w.cfg.DB
	unbuilt, err := db.StatsUnbuilt(ctx)
	if err != nil {
		return err
	}
	for _, id := range unbuilt {
		if err := db.RebuildStats(ctx, id); err != nil {
			return fmt.Errorf("build the KPI rollup of %s: %w", id, err)
		}
	}
	for {
		n, err := db.FoldStats(ctx, foldBatch)
		if err != nil || n < foldBatch {
			return err
		}
	}
}
