package models_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
)

// timers returns the case timers due by at, as the relay would hand them over.
func (f *fixture) timers(t *testing.T, at time.Time) []models.TimerPayload {
	t.Helper()
	var out []models.TimerPayload
	_, err := f.db.ClaimOutbox(ctx, at, 100, time.Hour, func(o models.Outbox) error {
		if o.TaskType == models.TaskTimer {
			var p models.TimerPayload
			if err := json.Unmarshal([]byte(o.Payload), &p); err != nil {
				return err
			}
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fire runs a timer as the worker does: the change it calls for, or nothing if stale.
func (f *fixture) fire(t *testing.T, p models.TimerPayload, now time.Time) *models.CaseEvent {
	t.Helper()
	ch, err := f.db.TimerChange(ctx, p, now)
	if err != nil {
		t.Fatal(err)
	}
	if ch == nil {
		return nil
	}
	_, ev, err := f.db.Transition(ctx, *ch, now)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func kinds(ps []models.TimerPayload) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Kind)
	}
	return out
}

// TestDeadlineTimers: routing sets a deadline with a reminder and a breach; the breach
// escalates (priority up, supervisors told) and schedules the next level; a transfer makes
// the old timers stale.
func TestDeadlineTimers(t *testing.T) {
	f := newFixture(t)
	start := time.Now()
	c := f.route(t, f.newCase(t, testenv.WestLat, testenv.WestLon, "timers"))
	if c.DueAt == nil || c.DueAt.Sub(start) < 47*time.Hour || c.DueAt.Sub(start) > 49*time.Hour {
		t.Fatalf("due %v: the test city counts around the clock, a pothole has 48 h", c.DueAt)
	}
	ts := f.timers(t, start.Add(100*time.Hour))
	if got := kinds(ts); len(got) != 2 || got[0] != models.TimerRemind || got[1] != models.TimerBreach {
		t.Fatalf("timers %v, want a reminder and a breach", got)
	}
	if ev := f.fire(t, ts[0], start.Add(40*time.Hour)); ev == nil || ev.Type != models.ActionRemind || ev.Public {
		t.Fatalf("reminder: %+v", ev)
	}
	// A breach timer that fires early (a clock jump back) does nothing.
	if ev := f.fire(t, ts[1], start.Add(time.Hour)); ev != nil {
		t.Fatalf("a breach before the deadline acted: %+v", ev)
	}
	ev := f.fire(t, ts[1], c.DueAt.Add(time.Minute))
	if ev == nil || ev.Type != models.ActionEscalate {
		t.Fatalf("breach: %+v", ev)
	}
	after, _ := f.db.Case(ctx, c.ID)
	if after.EscalationLevel != 1 || after.Priority != 1 {
		t.Fatalf("after a breach: level %d priority %d", after.EscalationLevel, after.Priority)
	}
	// The same breach again (a retry) does nothing.
	if ev := f.fire(t, ts[1], c.DueAt.Add(2*time.Minute)); ev != nil {
		t.Fatalf("a repeated breach acted: %+v", ev)
	}
	next := f.timers(t, start.Add(1000*time.Hour))
	if len(next) != 1 || next[0].Kind != models.TimerBreach || next[0].Level != 2 {
		t.Fatalf("after level 1: %+v, want the level 2 breach", next)
	}
	// Supervisors hear of the escalation in their inbox.
	boss := f.handlers["boss"]
	if _, err := f.db.RecordNotifications(ctx, ev, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	inbox, _, _ := f.db.Inbox(ctx, boss.ID, "", 10)
	if len(inbox) != 1 || inbox[0].EventType != models.ActionEscalate {
		t.Fatalf("supervisor's inbox: %+v", inbox)
	}
	// A transfer restarts the clock: the level 2 timer is stale.
	_, _, err := f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: models.ActionTransfer, Actor: actor(f.handlers["roads"]),
		DepartmentID: &f.parks.ID}, c.DueAt.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if ev := f.fire(t, next[0], c.DueAt.Add(100*time.Hour)); ev != nil {
		t.Fatalf("a timer of the old deadline acted after the transfer: %+v", ev)
	}
	moved, _ := f.db.Case(ctx, c.ID)
	if moved.EscalationLevel != 0 || moved.DueAt == nil || !moved.DueAt.After(*c.DueAt) {
		t.Fatalf("after transfer: level %d due %v", moved.EscalationLevel, moved.DueAt)
	}
}

// TestDeferPausesTheClock: a deferral keeps the working time left, and resuming gives it
// back from the moment work can start again.
func TestDeferPausesTheClock(t *testing.T) {
	f := newFixture(t)
	start := time.Now().UTC().Truncate(time.Second)
	c := f.newCase(t, testenv.WestLat, testenv.WestLon, "defer")
	dept, _ := f.db.RouteFor(ctx, c)
	c, _, err := f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: models.ActionRoute, Actor: models.SystemActor, DepartmentID: &dept}, start)
	if err != nil {
		t.Fatal(err)
	}
	roads := actor(f.handlers["roads"])
	until := start.Add(72 * time.Hour)
	at := start.Add(8 * time.Hour) // 40 of the 48 hours left
	if _, _, err := f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: models.ActionDefer, Actor: roads, Until: &until}, at); !errors.Is(err, models.ErrInvalid) {
		t.Fatalf("defer without a reason: %v", err)
	}
	d, _, err := f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: models.ActionDefer, Actor: roads, Until: &until, Note: "waiting for the gas company"}, at)
	if err != nil {
		t.Fatal(err)
	}
	if d.DueAt != nil || d.DeferredUntil == nil || d.RemainingSecs == nil || *d.RemainingSecs != 40*3600 {
		t.Fatalf("deferred: due %v until %v remaining %v", d.DueAt, d.DeferredUntil, d.RemainingSecs)
	}
	var resume *models.TimerPayload
	for _, p := range f.timers(t, until.Add(time.Hour)) {
		if p.Kind == models.TimerResume {
			resume = &p
		}
	}
	if resume == nil {
		t.Fatal("no resume timer")
	}
	if ev := f.fire(t, *resume, until); ev == nil || ev.Type != models.ActionResume {
		t.Fatalf("resume: %+v", ev)
	}
	r, _ := f.db.Case(ctx, c.ID)
	if r.DueAt == nil || !r.DueAt.Equal(until.Add(40*time.Hour)) || r.DeferredUntil != nil {
		t.Fatalf("resumed: due %v, want %v", r.DueAt, until.Add(40*time.Hour))
	}
}

// TestAutoClose: a resolved case closes as fixed when the confirmation window ends, unless
// the reporter reopened it.
func TestAutoClose(t *testing.T) {
	f := newFixture(t)
	roads := actor(f.handlers["roads"])
	c := f.route(t, f.newCase(t, testenv.WestLat, testenv.WestLon, "autoclose"))
	for _, a := range []models.Action{models.ActionAccept, models.ActionResolve} {
		if _, _, err := f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: a, Actor: roads}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var closeTimer *models.TimerPayload
	for _, p := range f.timers(t, time.Now().Add(200*time.Hour)) {
		if p.Kind == models.TimerAutoClose {
			closeTimer = &p
		}
	}
	if closeTimer == nil {
		t.Fatal("no auto-close timer")
	}
	if ev := f.fire(t, *closeTimer, time.Now().Add(169*time.Hour)); ev == nil || ev.Type != models.ActionTimeout {
		t.Fatalf("auto-close: %+v", ev)
	}
	closed, _ := f.db.Case(ctx, c.ID)
	if closed.Status != models.StatusClosed || closed.Resolution != models.ResolutionFixed {
		t.Fatalf("after the window: %s %s", closed.Status, closed.Resolution)
	}
	if ev := f.fire(t, *closeTimer, time.Now().Add(170*time.Hour)); ev != nil {
		t.Fatal("the auto-close acted twice")
	}
}

// TestQueueByDeadlinePagesIntoCasesWithout: sorted by deadline, cases with one come first,
// then those without (a deferred case), and paging one by one crosses from one part to the
// other without losing or repeating a case.
func TestQueueByDeadlinePagesIntoCasesWithout(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	var want []string
	for i := range 3 {
		c := f.newCase(t, testenv.WestLat, testenv.WestLon, "due-"+string(rune('a'+i)))
		dept, _ := f.db.RouteFor(ctx, c)
		if _, _, err := f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: models.ActionRoute, Actor: models.SystemActor, DepartmentID: &dept}, now.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
		want = append(want, c.ID)
	}
	until := now.Add(24 * time.Hour)
	if _, _, err := f.db.Transition(ctx, models.Change{CaseID: want[0], Action: models.ActionDefer, Actor: actor(f.handlers["roads"]), Until: &until, Note: "parts"}, now); err != nil {
		t.Fatal(err)
	}
	want = append(want[1:], want[0]) // the deferred one has no deadline: last
	var got []string
	cursor := ""
	for range 10 {
		page, next, err := f.db.Queue(ctx, models.QueueFilter{JurisdictionID: "testville", DepartmentID: f.roads.ID, Sort: "due", Limit: 1, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			got = append(got, c.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != len(want) {
		t.Fatalf("paged %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("paged %v, want %v", got, want)
		}
	}
}

// TestDeadlineOnTheCityCalendar: with working hours set in the city configuration, a
// deadline counts only working time.
func TestDeadlineOnTheCityCalendar(t *testing.T) {
	db := testenv.DB(t)
	y := strings.Replace(testenv.CityYAML, "jurisdiction: {id: testville, name: Testville, timezone: Europe/London}",
		`jurisdiction:
  id: testville
  name: Testville
  timezone: Europe/London
  calendar:
    working_hours: [{days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}]
    holidays: ["2026-12-25"]`, 1)
	if y == testenv.CityYAML {
		t.Fatal("the calendar was not put into the test city")
	}
	testenv.Apply(t, db, y)
	u, _, _ := db.RegisterDevice(ctx, models.DeviceRegistration{DeviceID: "device-cal-1", Platform: "ios"}, time.Now())
	pothole, _ := db.CategoryByCode(ctx, "testville", "pothole")
	idx, _ := db.LoadAreaIndex(ctx)
	loc, _ := idx.Locate(testenv.WestLat, testenv.WestLon)
	friday := time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC) // 16:00 in London (GMT)
	c, err := db.CreateCase(ctx, models.NewCase{ID: models.NewID(), ReporterID: u.ID, JurisdictionID: "testville", CategoryID: pothole.ID,
		AreaID: loc.AreaID, Description: "x", Attributes: map[string]any{"depth": "deep"}}, friday)
	if err != nil {
		t.Fatal(err)
	}
	dept, _ := db.RouteFor(ctx, c)
	routed, _, err := db.Transition(ctx, models.Change{CaseID: c.ID, Action: models.ActionRoute, Actor: models.SystemActor, DepartmentID: &dept}, friday)
	if err != nil {
		t.Fatal(err)
	}
	// 48 working hours of 8 a day: Friday's last hour, five full days, and seven hours of
	// the Monday after.
	want := time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC)
	if routed.DueAt == nil || !routed.DueAt.Equal(want) {
		t.Fatalf("due %v, want %v", routed.DueAt, want)
	}
	bad := strings.Replace(y, `end: "17:00"`, `end: "07:00"`, 1)
	if _, err := models.ParseCityConfig([]byte(bad), nil); err == nil || !strings.Contains(err.Error(), "jurisdiction.calendar") {
		t.Fatalf("a working period that ends before it starts: %v", err)
	}
}
