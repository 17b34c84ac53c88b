package workflows_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/workflows"
)

// TestDigests runs the digest tasks' handler with a chosen clock: each supervisor gets one
// inbox entry and one push per period, however often it runs; the period is the city's last
// whole day (or week) once it is past 07:00 there.
func TestDigests(t *testing.T) {
	f := newFixture(t)
	boss, err := f.db.StaffByEmail(ctx, "boss@test.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.SetDevice(ctx, boss.ID, models.DeviceRegistration{DeviceID: "boss-phone-1", Platform: "android", PushToken: "tok-boss", Locale: "en"}, f.now); err != nil {
		t.Fatal(err)
	}
	// A case received on Tuesday 2 June 2026 (London, BST), routed at once.
	reporter, _, _ := f.db.RegisterDevice(ctx, models.DeviceRegistration{DeviceID: "wf-device-2", Platform: "ios"}, f.now)
	cat, _ := f.db.CategoryByCode(ctx, "testville", "pothole")
	idx, _ := f.db.LoadAreaIndex(ctx)
	loc, _ := idx.Locate(testenv.WestLat, testenv.WestLon)
	at := time.Date(2026, 6, 2, 10, 0, 0, 0, time.UTC)
	c, err := f.db.CreateCase(ctx, models.NewCase{ID: models.NewID(), ReporterID: reporter.ID, JurisdictionID: "testville",
		CategoryID: cat.ID, AreaID: loc.AreaID, Description: "hole", Lat: testenv.WestLat, Lon: testenv.WestLon}, at)
	if err != nil {
		t.Fatal(err)
	}
	dept, _ := f.db.RouteFor(ctx, c)
	if _, _, err := f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: models.ActionRoute, Actor: models.SystemActor, DepartmentID: &dept}, at); err != nil {
		t.Fatal(err)
	}
	run := func(typ string, at time.Time) {
		t.Helper()
		f.now = at
		if err := f.worker.Mux().ProcessTask(ctx, asynq.NewTask(typ, nil)); err != nil {
			t.Fatal(err)
		}
	}
	received := func(d models.Digest) int64 {
		var f models.DigestFigures
		if err := json.Unmarshal([]byte(d.Figures), &f); err != nil {
			t.Fatal(err)
		}
		return f.Received
	}
	digests := func() []models.Digest {
		t.Helper()
		ds, err := f.db.UserDigests(ctx, boss.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}

	// Wednesday 09:30 in London: Tuesday's digest, twice over.
	wed := time.Date(2026, 6, 3, 8, 30, 0, 0, time.UTC)
	run(workflows.TaskDigestDaily, wed)
	run(workflows.TaskDigestDaily, wed.Add(time.Hour))
	ds := digests()
	if len(ds) != 1 || ds[0].Kind != models.DigestDaily || !ds[0].PeriodStart.Equal(time.Date(2026, 6, 1, 23, 0, 0, 0, time.UTC)) ||
		!ds[0].PeriodEnd.Equal(time.Date(2026, 6, 2, 23, 0, 0, 0, time.UTC)) || received(ds[0]) != 1 {
		t.Fatalf("digests %+v", ds)
	}
	msgs := f.fcm.Messages()
	var pushes []string
	for _, m := range msgs {
		if m.Token == "tok-boss" {
			pushes = append(pushes, m.Title+": "+m.Body)
			if m.Data["digest_id"] != ds[0].ID || m.Data["kind"] != "daily" {
				t.Errorf("push data %v", m.Data)
			}
		}
	}
	if len(pushes) != 1 || pushes[0] != "Daily digest: 1 received, 0 closed, none fell due; 1 open, 0 overdue." {
		t.Fatalf("pushes %q", pushes)
	}
	// Before 07:00 on Thursday, Wednesday's is not due yet: Tuesday's again, nothing new.
	run(workflows.TaskDigestDaily, time.Date(2026, 6, 4, 5, 0, 0, 0, time.UTC))
	if n := len(digests()); n != 1 {
		t.Fatalf("%d digests before 07:00", n)
	}
	// Thursday morning: Wednesday's, with its own figures.
	run(workflows.TaskDigestDaily, time.Date(2026, 6, 4, 7, 0, 0, 0, time.UTC))
	if ds := digests(); len(ds) != 2 || received(ds[0]) != 0 {
		t.Fatalf("digests %+v", ds)
	}
	// Monday 8 June, 09:00 in London: the week of 1 June, once.
	mon := time.Date(2026, 6, 8, 8, 0, 0, 0, time.UTC)
	run(workflows.TaskDigestWeekly, mon)
	run(workflows.TaskDigestWeekly, mon.Add(2*time.Hour))
	ds = digests()
	if len(ds) != 3 || ds[0].Kind != models.DigestWeekly || !ds[0].PeriodStart.Equal(time.Date(2026, 5, 31, 23, 0, 0, 0, time.UTC)) ||
		received(ds[0]) != 1 {
		t.Fatalf("weekly %+v", ds)
	}
	pushes = pushes[:0]
	for _, m := range f.fcm.Messages() {
		if m.Token == "tok-boss" {
			pushes = append(pushes, m.Title)
		}
	}
	if strings.Join(pushes, ",") != "Daily digest,Daily digest,Weekly digest" {
		t.Fatalf("pushes %v", pushes)
	}
}
