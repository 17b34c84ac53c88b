package models_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/models"
)

// TestUploadsAttachOnce: a case takes its uploads in its own transaction, so of two cases
// naming one upload at the same moment exactly one is created, the other is refused as a
// whole (no case, no media row), and another user's upload is never taken.
func TestUploadsAttachOnce(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	reserve := func(owner string) string {
		t.Helper()
		up := &models.Upload{ID: models.NewID(), OwnerID: owner, ContentType: "image/jpeg", Size: 10,
			ExpiresAt: now.Add(models.UploadTTL), CreatedAt: now}
		up.ObjectKey = models.UploadPrefix + up.ID + ".jpg"
		if err := f.db.CreateUpload(ctx, up); err != nil {
			t.Fatal(err)
		}
		return up.ID
	}
	newCase := func(owner, upload string) (*models.Case, error) {
		id := models.NewID()
		return f.db.CreateCase(ctx, models.NewCase{ID: id, ReporterID: owner, JurisdictionID: "testville", CategoryID: f.pothole.ID,
			Description: "hole", Lat: 0.5, Lon: -0.5, Attributes: map[string]any{"depth": "deep"}, Uploads: []string{upload},
			Media: []models.Media{{ID: upload, OwnerID: owner, Kind: models.MediaBefore, ObjectKey: "cases/" + id + "/" + upload + ".jpg",
				ContentType: "image/jpeg", Size: 10, SHA256: "x"}}}, now)
	}
	isAttached := func(err error) bool {
		var p *models.Problem
		return errors.As(err, &p) && p.Type == "media-already-attached" && errors.Is(err, models.ErrConflict)
	}

	up := reserve(f.citizen.ID)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = newCase(f.citizen.ID, up)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !isAttached(err):
			t.Fatalf("the second case: %v, want media-already-attached", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d cases took the one upload: %v", ok, errs)
	}
	if _, err := f.db.UploadByID(ctx, up); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("the attached upload is still pending: %v", err)
	}
	var cases, media int
	_ = f.db.SQL().QueryRow("SELECT COUNT(*) FROM cases").Scan(&cases)
	_ = f.db.SQL().QueryRow("SELECT COUNT(*) FROM media").Scan(&media)
	if cases != 1 || media != 1 {
		t.Fatalf("%d cases and %d media rows, want one of each", cases, media)
	}

	// Someone else's upload is not taken, and stays pending.
	other, _, err := f.db.RegisterDevice(ctx, models.DeviceRegistration{DeviceID: "device-other", Platform: "ios"}, now)
	if err != nil {
		t.Fatal(err)
	}
	theirs := reserve(other.ID)
	if _, err := newCase(f.citizen.ID, theirs); !isAttached(err) {
		t.Fatalf("another user's upload: %v", err)
	}
	if _, err := f.db.UploadByID(ctx, theirs); err != nil {
		t.Fatalf("the other user's upload after a refused case: %v", err)
	}
}
