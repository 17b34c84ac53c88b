package workflows

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
)

// TaskSweepUploads removes direct uploads never attached to a report, and objects under the
// uploads prefix that no upload row claims.
const TaskSweepUploads = "uploads:sweep"

const (
	// orphanAge is how old an object under the uploads prefix without a row must be before
	// it is removed. A row is written before its URL is handed out and removed only when a
	// report takes a copy or long after the URL expired, so a row-less object is a leftover
	// (a failed removal, a second PUT to a URL already used); the margin is for the clocks of
	// the store and the workers, and for the moment between a report's commit and its
	// removal of what it took.
	orphanAge = time.Hour
	// sweepBatch bounds the rows read and the keys looked up at once.
	sweepBatch = 500
)

// TaskSweepCasePhotos removes objects under the cases prefix that no photo row claims: the
// photos of a multipart report whose process died between streaming them and committing
// the case (a SIGKILL, a crash), which no request is left to remove.
const TaskSweepCasePhotos = "media:sweep"

// sweepTasks lists the periodic tasks of the sweeper of uploads never attached to a report and of orphan objects.
func (w *Worker) sweepTasks() []Periodic {
	return []Periodic{
		{Cron: "@every 1h", Type: TaskSweepUploads, Handler: w.handleSweepUploads, Unique: 50 * time.Minute},
		// Daily: it lists every case photo in the store, which is cheap for the store but
		// not free at millions of objects, and a leftover costs only its bytes.
		{Cron: "@every 24h", Type: TaskSweepCasePhotos, Handler: w.handleSweepCasePhotos, Unique: 23 * time.Hour},
	}
}

func (w *Worker) handleSweepCasePhotos(ctx context.Context, _ *asynq.Task) error {
	n, err := w.SweepCasePhotos(ctx)
	if n > 0 {
		w.cfg.Logger.Info("swept case photos no case claims", "objects", n)
	}
	return err
}

// casePhotoPrefix is where the API writes a case's photos: cases/<case id>/<media id>.<ext>,
// and the photo task its versions beside them: <media id>-display.jpg, <media id>-thumb.jpg.
const casePhotoPrefix = "cases/"

// SweepCasePhotos removes the objects under cases/ older than an hour whose case has no photo
// row of that name: leftovers of a report whose process died before its case was committed.
// An hour covers a report still streaming its photos. It says how many it removed; running it
// twice, or on two workers at once, removes nothing more.
func (w *Worker) SweepCasePhotos(ctx context.Context) (int, error) {
	return w.sweepUnclaimed(ctx, casePhotoPrefix, w.cfg.Now(), func(ctx context.Context, batch []string) (map[string]bool, error) {
		cases := map[string]bool{}
		for _, k := range batch {
			cases[caseOfKey(k)] = true
		}
		keys, err := w.cfg.DB.CaseMediaKeys(ctx, slices.Collect(maps.Keys(cases)))
		if err != nil {
			return nil, err
		}
		named := map[string]bool{}
		for _, k := range keys {
			named[photoBase(k)] = true
		}
		claimed := map[string]bool{}
		for _, k := range batch {
			claimed[k] = named[photoBase(k)]
		}
		return claimed, nil
	})
}

// sweepUnclaimed removes the objects under prefix older than orphanAge that claimed, asked
// about a batch of keys, does not claim, and says how many it removed. Younger objects are
// left alone: an upload or a report may still be writing them.
func (w *Worker) sweepUnclaimed(ctx context.Context, prefix string, now time.Time,
	claimed func(ctx context.Context, keys []string) (map[string]bool, error)) (int, error) {
	store := w.cfg.Store
	removed := 0
	var batch []string
	flush := func() error {
		kept, err := claimed(ctx, batch)
		if err != nil {
			return err
		}
		for _, k := range batch {
			if kept[k] {
				continue
			}
			if err := store.Delete(ctx, k); err != nil {
				return err
			}
			removed++
		}
		batch = batch[:0]
		return nil
	}
	err := store.Walk(ctx, prefix, func(o storage.Object) error {
		if o.Modified.After(now.Add(-orphanAge)) {
			return nil
		}
		batch = append(batch, o.Key)
		if len(batch) < sweepBatch {
			return nil
		}
		return flush()
	})
	if err != nil {
		return removed, err
	}
	return removed, flush()
}

// caseOfKey is the case id in cases/<case id>/<name>.
func caseOfKey(key string) string {
	rest := strings.TrimPrefix(key, casePhotoPrefix)
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// photoBase is a photo object's key without its extension and version suffix, the same for an
// original and its versions.
func photoBase(key string) string {
	base := strings.TrimSuffix(key, pathExt(key))
	for _, v := range []string{"-display", "-thumb"} {
		if b, ok := strings.CutSuffix(base, v); ok {
			return b
		}
	}
	return base
}

func (w *Worker) handleSweepUploads(ctx context.Context, _ *asynq.Task) error {
	res, err := w.SweepUploads(ctx)
	if res.Uploads+res.Orphans > 0 {
		w.cfg.Logger.Info("swept uploads", "unattached", res.Uploads, "orphans", res.Orphans)
	}
	return err
}

// SweepResult counts what a sweep removed.
type SweepResult struct {
	Uploads int // reservations never attached, with their objects
	Orphans int // objects under the uploads prefix that no reservation claimed
}

// SweepUploads removes the uploads never attached to a report whose URL expired more than
// models.UploadKeep ago (object first, then row, so a failure halfway leaves a row the next
// sweep finds again), then the objects under models.UploadPrefix older than an hour that no
// upload row claims. Running it twice, or on two workers at once, removes nothing more.
func (w *Worker) SweepUploads(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	db, store := w.cfg.DB, w.cfg.Store
	now := w.cfg.Now()
	for {
		us, err := db.StaleUploads(ctx, now.Add(-models.UploadKeep), sweepBatch)
		if err != nil {
			return res, err
		}
		for _, u := range us {
			if err := store.Delete(ctx, u.ObjectKey); err != nil {
				return res, err
			}
			if err := db.DeleteUpload(ctx, u.ID); err != nil {
				return res, err
			}
			res.Uploads++
		}
		if len(us) < sweepBatch {
			break
		}
	}

	n, err := w.sweepUnclaimed(ctx, models.UploadPrefix, now, db.UploadKeys)
	res.Orphans += n
	return res, err
}
