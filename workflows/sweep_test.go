package workflows_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/workflows"
)

// TestSweepUploads runs the sweeper's task with a controlled clock: it removes uploads
// never attached a day after their URL expired (row and object) and objects under the
// uploads prefix that no row claims once they are an hour old; it leaves pending uploads,
// young objects and everything outside the prefix alone; and a second run removes nothing.
func TestSweepUploads(t *testing.T) {
	db := testenv.DB(t)
	store, _ := testenv.Store(t, "http://cityeyes.test")
	base := time.Now()
	clock := base
	w := workflows.New(workflows.Config{DB: db, Redis: testenv.Redis(t), Store: store, Now: func() time.Time { return clock }})
	u, _, err := db.RegisterDevice(ctx, models.DeviceRegistration{DeviceID: "sweep-device", Platform: "ios"}, base)
	if err != nil {
		t.Fatal(err)
	}
	sweepAt := base.Add(2 * time.Hour)
	put := func(key string) {
		t.Helper()
		if _, err := store.Put(ctx, key, bytes.NewReader(testenv.PhotoJPEG), int64(len(testenv.PhotoJPEG)), "image/jpeg"); err != nil {
			t.Fatal(err)
		}
	}
	reserve := func(what string, expires time.Time, uploaded bool) *models.Upload {
		t.Helper()
		up := &models.Upload{ID: models.NewID(), OwnerID: u.ID, ContentType: "image/jpeg", Size: int64(len(testenv.PhotoJPEG)),
			ExpiresAt: expires, CreatedAt: expires.Add(-models.UploadTTL)}
		up.ObjectKey = models.UploadPrefix + up.ID + ".jpg"
		if err := db.CreateUpload(ctx, up); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if uploaded {
			put(up.ObjectKey)
		}
		return up
	}
	stale := reserve("stale", sweepAt.Add(-models.UploadKeep-time.Hour), true)
	staleNeverUploaded := reserve("stale, never uploaded", sweepAt.Add(-models.UploadKeep-2*time.Hour), false)
	recent := reserve("expired, still attachable", sweepAt.Add(-time.Hour), true)
	inFlight := reserve("URL still valid", sweepAt.Add(10*time.Minute), true)
	orphan := models.UploadPrefix + models.NewID() + ".jpg"
	put(orphan)
	casePhoto := "cases/" + models.NewID() + "/" + models.NewID() + ".jpg"
	put(casePhoto)

	sweep := func(at time.Time) workflows.SweepResult {
		t.Helper()
		clock = at
		res, err := w.SweepUploads(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// Now, nothing is old enough: the orphan was written a moment ago, and no URL expired
	// a day ago.
	if res := sweep(base); res != (workflows.SweepResult{}) {
		t.Fatalf("first sweep removed %+v, want nothing", res)
	}
	// Two hours on, through the task handler as the scheduler runs it.
	clock = sweepAt
	if err := w.Mux().ProcessTask(ctx, asynq.NewTask(workflows.TaskSweepUploads, nil)); err != nil {
		t.Fatal(err)
	}
	for _, up := range []*models.Upload{stale, staleNeverUploaded} {
		if _, err := db.UploadByID(ctx, up.ID); err == nil {
			t.Fatalf("upload expired %v ago is still there", sweepAt.Sub(up.ExpiresAt))
		}
	}
	for _, up := range []*models.Upload{recent, inFlight} {
		if _, err := db.UploadByID(ctx, up.ID); err != nil {
			t.Fatalf("upload expiring at %v was removed: %v", up.ExpiresAt, err)
		}
	}
	want := []string{recent.ObjectKey, inFlight.ObjectKey}
	got := testenv.Objects(t, store, models.UploadPrefix)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("objects under the prefix after the sweep: %v, want %v", got, want)
	}
	if objs := testenv.Objects(t, store, "cases/"); len(objs) != 1 {
		t.Fatalf("the sweeper touched a case's photo: %v", objs)
	}
	// Again: nothing more to do.
	if res := sweep(sweepAt); res != (workflows.SweepResult{}) {
		t.Fatalf("second sweep removed %+v, want nothing", res)
	}
	if got := testenv.Objects(t, store, models.UploadPrefix); len(got) != 2 {
		t.Fatalf("objects after the second sweep: %v", got)
	}
}

// TestSweepCasePhotos runs the case-photo sweeper: it removes, once they are an hour old, the
// objects under cases/ that no photo row claims (the photos of a report whose process died
// before its case was committed), and leaves every photo of a case and its versions, young
// leftovers and objects outside cases/ alone; a second run removes nothing.
func TestSweepCasePhotos(t *testing.T) {
	sc := newRetentionScene(t)
	reporter, _, err := sc.db.RegisterDevice(ctx, models.DeviceRegistration{DeviceID: "sweep-cases", Platform: "ios"}, sc.now)
	if err != nil {
		t.Fatal(err)
	}
	c := sc.report(t, reporter.ID, "pothole", "kept", nil, true)
	sc.runTasks(t, false) // routes it and makes the photo's versions
	kept, err := sc.db.CaseMediaKeys(ctx, []string{c.ID})
	if err != nil || len(kept) != 1 {
		t.Fatalf("case photo keys: %v, %v", kept, err)
	}
	base := strings.TrimSuffix(kept[0], ".jpg")
	keep := []string{kept[0], base + "-display.jpg", base + "-thumb.jpg",
		models.UploadPrefix + models.NewID() + ".jpg"} // another sweeper's business
	leftovers := []string{
		"cases/" + models.NewID() + "/" + models.NewID() + ".jpg", // a case never committed
		"cases/" + c.ID + "/" + models.NewID() + ".png",           // a second photo of a report that died, same case id
	}
	for _, k := range append(keep[3:], leftovers...) {
		if _, err := sc.store.Put(ctx, k, bytes.NewReader(testenv.PhotoJPEG), int64(len(testenv.PhotoJPEG)), "image/jpeg"); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(k string) bool {
		_, err := sc.store.Stat(ctx, k)
		return err == nil
	}

	// Objects written just now are young: a report may still be streaming them.
	sc.now = time.Now()
	if n, err := sc.worker.SweepCasePhotos(ctx); err != nil || n != 0 {
		t.Fatalf("young objects: removed %d, %v; want none", n, err)
	}
	sc.now = time.Now().Add(2 * time.Hour)
	for run, want := range []int{len(leftovers), 0} {
		n, err := sc.worker.SweepCasePhotos(ctx)
		if err != nil || n != want {
			t.Fatalf("run %d: removed %d, %v; want %d", run+1, n, err, want)
		}
	}
	for _, k := range keep {
		if !exists(k) {
			t.Errorf("%s was removed", k)
		}
	}
	for _, k := range leftovers {
		if exists(k) {
			t.Errorf("leftover %s is still there", k)
		}
	}
}
