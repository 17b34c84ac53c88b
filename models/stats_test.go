package models_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/models"
)

// kpiFixture builds the hand-counted cases of TestStatsHandCounted through the lifecycle,
// each action at a chosen time. Testville's time zone is Europe/London: in June that is
// UTC+1 (BST), so a time after 23:00 UTC falls on the next local day. Pothole's SLA is 48
// hours around the clock (no calendar); a pothole in the east area goes to PARKS, in the
// west to ROADS; "other" has no department and goes to the triage desk (DESK), without a
// deadline.
func kpiFixture(t *testing.T, before ...func(*fixture)) (*fixture, map[string]*models.Case) {
	t.Helper()
	f := newFixture(t)
	for _, fn := range before {
		fn(f)
	}
	at := func(s string) time.Time {
		tm, err := time.Parse("01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return time.Date(2026, tm.Month(), tm.Day(), tm.Hour(), tm.Minute(), 0, 0, time.UTC)
	}
	other, err := f.db.CategoryByCode(ctx, "testville", "other")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]*models.Case{}
	submit := func(name, when string, lat, lon float64, cat *models.Category) {
		loc, _ := f.areas.Locate(lat, lon)
		c, err := f.db.CreateCase(ctx, models.NewCase{ID: models.NewID(), ReporterID: f.citizen.ID, JurisdictionID: "testville",
			CategoryID: cat.ID, AreaID: loc.AreaID, Description: "case " + name, Lat: lat, Lon: lon}, at(when))
		if err != nil {
			t.Fatal(err)
		}
		cases[name] = c
		dept, err := f.db.RouteFor(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: models.ActionRoute, Actor: models.SystemActor, DepartmentID: &dept}, at(when)); err != nil {
			t.Fatal(err)
		}
	}
	citizen := actor(f.citizen)
	do := func(name, when string, a models.Actor, ch models.Change) {
		t.Helper()
		ch.CaseID, ch.Actor = cases[name].ID, a
		if _, _, err := f.db.Transition(ctx, ch, at(when)); err != nil {
			t.Fatalf("%s %s at %s: %v", name, ch.Action, when, err)
		}
	}
	roads, parks, boss := actor(f.handlers["roads"]), actor(f.handlers["parks"]), actor(f.handlers["boss"])
	const wLat, wLon, eLat, eLon = 0.5, -0.5, 0.5, 0.5

	// I: received and closed before the period (rated 4 then): in nothing but its history.
	submit("I", "05-20 10:00", wLat, wLon, f.pothole)
	do("I", "05-20 11:00", roads, models.Change{Action: models.ActionAccept})
	do("I", "05-21 10:00", roads, models.Change{Action: models.ActionResolve})
	do("I", "05-21 12:00", citizen, models.Change{Action: models.ActionConfirm, Rating: 4})
	// J: received before the period, never touched: due 05-27, overdue ever since.
	submit("J", "05-25 10:00", wLat, wLon, f.pothole)
	// E: received before the period, due 06-01 10:00; the supervisor closes it as invalid at
	// 06-01 09:00 (its first response, on time); the reporter rates it 3 on 06-07.
	submit("E", "05-30 10:00", wLat, wLon, f.pothole)
	do("E", "06-01 09:00", boss, models.Change{Action: models.ActionClose, Resolution: models.ResolutionInvalid})
	do("E", "06-07 10:00", citizen, models.Change{Action: models.ActionRate, Rating: 3})
	// A: due 06-03 09:00, resolved 06-02 09:00, confirmed with 5 stars at 23:30 UTC, which is
	// 00:30 on 06-03 in London.
	submit("A", "06-01 09:00", wLat, wLon, f.pothole)
	do("A", "06-01 10:00", roads, models.Change{Action: models.ActionAccept})
	do("A", "06-02 09:00", roads, models.Change{Action: models.ActionResolve})
	do("A", "06-02 23:30", citizen, models.Change{Action: models.ActionConfirm, Rating: 5})
	// B: due 06-04 08:00, resolved late on 06-05, reopened (new deadline 06-07 12:00, sent
	// again 06-05 12:00), resolved in time on 06-06 12:00, closed by the timeout at 20:00.
	submit("B", "06-02 08:00", wLat, wLon, f.pothole)
	do("B", "06-03 08:00", roads, models.Change{Action: models.ActionAccept})
	do("B", "06-05 08:00", roads, models.Change{Action: models.ActionResolve})
	do("B", "06-05 12:00", citizen, models.Change{Action: models.ActionReopen})
	do("B", "06-05 13:00", roads, models.Change{Action: models.ActionAccept})
	do("B", "06-06 12:00", roads, models.Change{Action: models.ActionResolve})
	do("B", "06-06 20:00", models.SystemActor, models.Change{Action: models.ActionTimeout})
	// C: east, so PARKS; due 06-05 10:00, in progress ever since: overdue.
	submit("C", "06-03 10:00", eLat, eLon, f.pothole)
	do("C", "06-03 11:00", parks, models.Change{Action: models.ActionAccept})
	do("C", "06-03 12:00", parks, models.Change{Action: models.ActionStart})
	// D: deferred on 06-04 10:00 with 47 hours left, resumed 06-05 10:00 (due 06-07 09:00,
	// in the period, but deferred cases are left out of the on-time rate); closed 06-08.
	submit("D", "06-04 09:00", wLat, wLon, f.pothole)
	do("D", "06-04 09:30", roads, models.Change{Action: models.ActionAccept})
	until := at("06-05 10:00")
	do("D", "06-04 10:00", roads, models.Change{Action: models.ActionDefer, Note: "waiting for asphalt", Until: &until})
	do("D", "06-05 10:00", models.SystemActor, models.Change{Action: models.ActionResume})
	do("D", "06-08 09:00", roads, models.Change{Action: models.ActionResolve})
	do("D", "06-08 10:00", citizen, models.Change{Action: models.ActionConfirm})
	// F: no department: the triage desk, no deadline, open.
	submit("F", "06-05 10:00", wLat, wLon, other)
	// G: due 06-08 10:00 (after the period), untouched: overdue now.
	submit("G", "06-06 10:00", wLat, wLon, f.pothole)
	// H: after the period, due 06-11 11:00: 23 hours left at "now".
	submit("H", "06-09 11:00", wLat, wLon, f.pothole)
	return f, cases
}

// The period of TestStatsHandCounted: the week of Monday 1 June 2026 in London, and now.
var (
	kpiFrom = time.Date(2026, 5, 31, 23, 0, 0, 0, time.UTC)
	kpiTo   = time.Date(2026, 6, 7, 23, 0, 0, 0, time.UTC)
	kpiNow  = time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
)

func fl(v float64) *float64 { return &v }

func fmtp(p *float64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprintf("%.4f", *p)
}

func sameP(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) < 1e-6
}

// checkKPIs compares every figure of one group.
func checkKPIs(t *testing.T, got, want models.KPIs) {
	t.Helper()
	counts := [][3]any{
		{"received", got.Received, want.Received}, {"received_closed", got.ReceivedClosed, want.ReceivedClosed},
		{"dispatched", got.Dispatched, want.Dispatched}, {"closed", got.Closed, want.Closed},
		{"backlog", got.Backlog, want.Backlog}, {"overdue", got.Overdue, want.Overdue}, {"due", got.Due, want.Due},
		{"closed_on_time", got.ClosedOnTime, want.ClosedOnTime}, {"reopened", got.Reopened, want.Reopened},
		{"ratings", got.Ratings, want.Ratings},
	}
	for _, c := range counts {
		if c[1] != c[2] {
			t.Errorf("%s %s = %v, want %v", want.Key, c[0], c[1], c[2])
		}
	}
	ps := []struct {
		name      string
		got, want *float64
		same      func(a, b *float64) bool
	}{
		{"on_time_rate", got.OnTimeRate, want.OnTimeRate, sameP}, {"closure_rate", got.ClosureRate, want.ClosureRate, sameP},
		{"rework_rate", got.ReworkRate, want.ReworkRate, sameP},
		{"hours_to_close_p50", got.HoursToCloseP50, want.HoursToCloseP50, nearHours},
		{"hours_to_close_p90", got.HoursToCloseP90, want.HoursToCloseP90, nearHours},
		{"hours_to_first_response_p50", got.HoursToFirstResponseP50, want.HoursToFirstResponseP50, nearHours},
		{"satisfaction", got.Satisfaction, want.Satisfaction, sameP},
	}
	for _, p := range ps {
		if !p.same(p.got, p.want) {
			t.Errorf("%s %s = %s, want %s", want.Key, p.name, fmtp(p.got), fmtp(p.want))
		}
	}
}

// nearHours compares a percentile of hours with the exact one: the rollup keeps hours in
// histograms, precise to models.HoursPrecision of the value or a minute.
func nearHours(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) <= max(math.Abs(*b)*models.HoursPrecision, 1.0/60)
}

// TestStatsHandCounted checks every KPI against the fixture, counted by hand:
//
// Period [05-31 23:00Z, 06-07 23:00Z) = London's 06-01 to 06-07; now 06-10 12:00Z.
//
//	received (created in the period): A B D G (ROADS), C (PARKS), F (DESK) = 6
//	received_closed (of those, closed now): A B D (ROADS) = 3 → closure ROADS 3/4, PARKS 0/1, DESK 0/1, all 3/6
//	dispatched (last sent to its department in the period): A, B (reopen 06-05), D, G (ROADS), C (PARKS) = 5;
//	  E was sent 05-30, F went to triage (not dispatched)
//	closed (in the period): E 06-01, A 06-02, B 06-06 (ROADS) = 3; D closed 06-08, I 05-21
//	reopened (closed in the period, reopened once): B → rework 1/3
//	hours to close (ROADS, closed in the period): A 38.5, E 47, B 108 →
//	  p50 47, p90 = 47 + 0.8 × (108 − 47) = 95.8
//	due (deadline in the period, not deferred): E 06-01, A 06-03, B 06-07 12:00 (ROADS), C 06-05 (PARKS) = 4;
//	  D (due 06-07 09:00) was deferred; G is due 06-08; J 05-27
//	closed on time: E (closed 09:00 ≤ 10:00), A (resolved 06-02 ≤ 06-03), B (resolved 06-06 ≤ 06-07) = 3;
//	  C is open → on time ROADS 3/3, PARKS 0/1, all 3/4
//	first response (in the period), hours from received: A 1, B 24, D 0.5, E 47 (its close) (ROADS),
//	  C 1 (PARKS) → ROADS p50 = (1 + 24) / 2 = 12.5, PARKS 1, all [0.5 1 1 24 47] → 1
//	ratings (given in the period): A 5 (06-02), E 3 (06-07) → 2, mean 4; I's 4 was before
//	overdue (now): J, G (ROADS), C (PARKS) = 3
//	backlog (open at 06-07 23:00Z): D (closed later), G, J (ROADS), C (PARKS), F (DESK) = 5
func TestStatsHandCounted(t *testing.T) {
	// The same figures whichever way the rollup holds the fixture's changes: built from the
	// cases when first asked; every change still waiting to be folded; some folded and some
	// waiting; all folded.
	build := func(f *fixture) {
		if err := f.db.RebuildStats(ctx, "testville"); err != nil {
			t.Fatal(err)
		}
	}
	fold := func(limit int) func(*fixture) {
		return func(f *fixture) {
			if _, err := f.db.FoldStats(ctx, limit); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name          string
		before, after func(*fixture)
	}{
		{"built when asked", nil, nil},
		{"changes pending", build, nil},
		{"half folded", build, fold(40)},
		{"all folded", build, fold(100000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before []func(*fixture)
			if tc.before != nil {
				before = append(before, tc.before)
			}
			f, _ := kpiFixture(t, before...)
			if tc.after != nil {
				tc.after(f)
			}
			checkHandCounted(t, f)
		})
	}
}

func checkHandCounted(t *testing.T, f *fixture) {
	st, err := f.db.Stats(ctx, models.StatsQuery{JurisdictionID: "testville", From: kpiFrom, To: kpiTo, GroupBy: models.GroupDepartment, Now: kpiNow})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]models.KPIs{
		"ROADS": {Key: "ROADS", Received: 4, ReceivedClosed: 3, Dispatched: 4, Closed: 3, Reopened: 1, Due: 3, ClosedOnTime: 3,
			Ratings: 2, Overdue: 2, Backlog: 3, ClosureRate: fl(0.75), ReworkRate: fl(1.0 / 3), OnTimeRate: fl(1),
			HoursToCloseP50: fl(47), HoursToCloseP90: fl(95.8), HoursToFirstResponseP50: fl(12.5), Satisfaction: fl(4)},
		"PARKS": {Key: "PARKS", Received: 1, Dispatched: 1, Due: 1, Overdue: 1, Backlog: 1, ClosureRate: fl(0), OnTimeRate: fl(0),
			HoursToFirstResponseP50: fl(1)},
		"DESK": {Key: "DESK", Received: 1, Backlog: 1, ClosureRate: fl(0)},
	}
	if len(st.Groups) != 3 {
		t.Fatalf("groups %+v, want ROADS, PARKS, DESK", st.Groups)
	}
	for _, g := range st.Groups {
		w, ok := want[g.Key]
		if !ok {
			t.Fatalf("unexpected group %q", g.Key)
		}
		checkKPIs(t, g, w)
	}
	total := models.KPIs{Key: "", Received: 6, ReceivedClosed: 3, Dispatched: 5, Closed: 3, Reopened: 1, Due: 4, ClosedOnTime: 3,
		Ratings: 2, Overdue: 3, Backlog: 5, ClosureRate: fl(0.5), ReworkRate: fl(1.0 / 3), OnTimeRate: fl(0.75),
		HoursToCloseP50: fl(47), HoursToCloseP90: fl(95.8), HoursToFirstResponseP50: fl(1), Satisfaction: fl(4)}
	checkKPIs(t, st.Total, total)

	// By week: 06-01 is a Monday, so one week holding everything of the total.
	wk, err := f.db.Stats(ctx, models.StatsQuery{JurisdictionID: "testville", From: kpiFrom, To: kpiTo, GroupBy: models.GroupWeek, Now: kpiNow})
	if err != nil {
		t.Fatal(err)
	}
	if len(wk.Groups) != 1 || wk.Groups[0].Key != "2026-06-01" {
		t.Fatalf("weeks %+v", wk.Groups)
	}
	// Overdue cases due outside the period are in the total only: of the three, C's deadline
	// (06-05) is in the week.
	weekWant := total
	weekWant.Key, weekWant.Overdue = "2026-06-01", 1
	checkKPIs(t, wk.Groups[0], weekWant)
	checkKPIs(t, wk.Total, total)

	// By day, in London time (counted from the fixture's comments):
	//	day    received closed dispatched due on-time ratings overdue backlog
	//	06-01  A        E      A          E   E       -       -       2+1-1 = 2 (E and J open at the start)
	//	06-02  B        -      -          -   -       -       -       3
	//	06-03  C        A(00:30 local) C  A   A       A       -       3+1-1 = 3
	//	06-04  D        -      D          -   -       -       -       4
	//	06-05  F        -      B (reopen), C(due) -   -       C       5
	//	06-06  G        B      G          -   -       -       -       5
	//	06-07  -        -      -          B   B       E       -       5
	day, err := f.db.Stats(ctx, models.StatsQuery{JurisdictionID: "testville", From: kpiFrom, To: kpiTo, GroupBy: models.GroupDay, Now: kpiNow})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		received, closed, dispatched, due, onTime, ratings, overdue, backlog int64
	}
	days := map[string]row{
		"2026-06-01": {1, 1, 1, 1, 1, 0, 0, 2},
		"2026-06-02": {1, 0, 0, 0, 0, 0, 0, 3},
		"2026-06-03": {1, 1, 1, 1, 1, 1, 0, 3},
		"2026-06-04": {1, 0, 1, 0, 0, 0, 0, 4},
		"2026-06-05": {1, 0, 1, 1, 0, 0, 1, 5},
		"2026-06-06": {1, 1, 1, 0, 0, 0, 0, 5},
		"2026-06-07": {0, 0, 0, 1, 1, 1, 0, 5},
	}
	if len(day.Groups) != 7 {
		t.Fatalf("%d days, want 7: %+v", len(day.Groups), day.Groups)
	}
	for _, g := range day.Groups {
		w, ok := days[g.Key]
		if !ok {
			t.Fatalf("unexpected day %q", g.Key)
		}
		got := row{g.Received, g.Closed, g.Dispatched, g.Due, g.ClosedOnTime, g.Ratings, g.Overdue, g.Backlog}
		if got != w {
			t.Errorf("%s: got %+v, want %+v", g.Key, got, w)
		}
	}
	checkKPIs(t, day.Total, total)

	// Lists: overdue now, longest first (J 05-27, C 06-05, G 06-08); about to breach within
	// 24 hours: H (due 06-11 11:00).
	od, err := f.db.OverdueCases(ctx, "testville", kpiNow, 10)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range od {
		names = append(names, c.Description)
	}
	if fmt.Sprint(names) != "[case J case C case G]" {
		t.Errorf("overdue %v", names)
	}
	br, err := f.db.BreachingCases(ctx, "testville", kpiNow, 24*time.Hour, 10)
	if err != nil || len(br) != 1 || br[0].Description != "case H" {
		t.Errorf("breaching %+v, %v", br, err)
	}
	// Hotspots of the period: west has A B D F G (5), east C (1).
	hs, err := f.db.Hotspots(ctx, "testville", models.GroupArea, kpiFrom, kpiTo, 10)
	if err != nil || fmt.Sprint(hs) != "[{west West 5} {east East 1}]" {
		t.Errorf("hotspots %v, %v", hs, err)
	}
	hc, err := f.db.Hotspots(ctx, "testville", models.GroupCategory, kpiFrom, kpiTo, 1)
	if err != nil || fmt.Sprint(hc) != "[{pothole Pothole 5}]" {
		t.Errorf("hotspots by category %v, %v", hc, err)
	}
}
