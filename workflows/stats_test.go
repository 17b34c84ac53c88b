package workflows_test

import (
	"testing"

	"github.com/city-eyes/cityeyes/models"
)

// TestKeepStats runs the periodic task of the KPI rollup: the first run builds the city's
// rollup, every run folds what changed since, a run with nothing to do changes nothing, and
// the KPIs read the same before and after each run.
func TestKeepStats(t *testing.T) {
	sc := newRetentionScene(t)
	reporter, _, err := sc.db.RegisterDevice(ctx, models.DeviceRegistration{DeviceID: "stats-1", Platform: "ios"}, sc.now)
	if err != nil {
		t.Fatal(err)
	}
	q := models.StatsQuery{JurisdictionID: "testville", From: sc.now.AddDate(0, 0, -1), To: sc.now.AddDate(0, 0, 1), GroupBy: models.GroupDepartment}
	read := func() models.KPIs {
		t.Helper()
		q.Now = sc.now
		st, err := sc.db.Stats(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return st.Total
	}
	keep := func(wantPending int64) {
		t.Helper()
		if n, err := sc.db.StatsPending(ctx); err != nil || n != wantPending {
			t.Fatalf("changes waiting before the run: %d, %v; want %d", n, err, wantPending)
		}
		if err := sc.worker.KeepStats(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := sc.db.StatsPending(ctx); err != nil || n != 0 {
			t.Fatalf("changes waiting after the run: %d, %v", n, err)
		}
		if unbuilt, err := sc.db.StatsUnbuilt(ctx); err != nil || len(unbuilt) != 0 {
			t.Fatalf("cities without a rollup after the run: %v, %v", unbuilt, err)
		}
	}
	c := sc.report(t, reporter.ID, "pothole", "one", nil, false)
	sc.runTasks(t, true)
	keep(3) // submitted (+1), routed (-1, +1); the run builds the rollup from the cases
	if got := read(); got.Received != 1 || got.Dispatched != 1 {
		t.Fatalf("after the first run: received %d, dispatched %d", got.Received, got.Dispatched)
	}
	keep(0)
	sc.act(t, models.Change{CaseID: c.ID, Action: models.ActionClose, Actor: sc.boss, Resolution: models.ResolutionInvalid})
	before := read()
	keep(2)
	if after := read(); after.Closed != 1 || after.Received != before.Received || after.Closed != before.Closed {
		t.Fatalf("closed before the fold %+v, after %+v", before, after)
	}
}
