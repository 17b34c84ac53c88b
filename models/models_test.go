package models_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
)

var ctx = context.Background()

// fixture is a test city with one citizen.
type fixture struct {
	db       *models.DB
	citizen  *models.User
	pothole  *models.Category
	roads    *models.Department
	parks    *models.Department
	areas    *models.AreaIndex
	handlers map[string]*models.User
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := testenv.DB(t)
	testenv.City(t, db)
	f := &fixture{db: db, handlers: map[string]*models.User{}}
	var err error
	if f.citizen, _, err = db.RegisterDevice(ctx, models.DeviceRegistration{DeviceID: "device-0001", Platform: "android", PushToken: "tok-1", Locale: "en"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if f.pothole, err = db.CategoryByCode(ctx, "testville", "pothole"); err != nil {
		t.Fatal(err)
	}
	if f.roads, err = db.DepartmentByCode(ctx, "testville", "ROADS"); err != nil {
		t.Fatal(err)
	}
	if f.parks, err = db.DepartmentByCode(ctx, "testville", "PARKS"); err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"roads@test.example", "parks@test.example", "boss@test.example"} {
		u, err := db.StaffByEmail(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		f.handlers[strings.Split(e, "@")[0]] = u
	}
	if f.areas, err = db.LoadAreaIndex(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) newCase(t *testing.T, lat, lon float64, key string) *models.Case {
	t.Helper()
	loc, ok := f.areas.Locate(lat, lon)
	if !ok {
		t.Fatalf("%v,%v is in no city", lat, lon)
	}
	c, err := f.db.CreateCase(ctx, models.NewCase{ID: models.NewID(), ReporterID: f.citizen.ID, JurisdictionID: loc.JurisdictionID,
		CategoryID: f.pothole.ID, AreaID: loc.AreaID, Description: "hole", Lat: lat, Lon: lon,
		Attributes: map[string]any{"depth": "deep"}, IdempotencyKey: key, Fingerprint: "fp-" + key}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func actor(u *models.User) models.Actor {
	a := models.Actor{ID: &u.ID, Role: u.Role}
	if u.JurisdictionID != nil {
		a.JurisdictionID = *u.JurisdictionID
	}
	if u.DepartmentID != nil {
		a.DepartmentID = *u.DepartmentID
	}
	return a
}

func (f *fixture) route(t *testing.T, c *models.Case) *models.Case {
	t.Helper()
	dept, err := f.db.RouteFor(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: models.ActionRoute, Actor: models.SystemActor,
		DepartmentID: &dept}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAreaIndexLocates(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name     string
		lat, lon float64
		area     string
		ok       bool
	}{
		{"west", testenv.WestLat, testenv.WestLon, "west", true},
		{"east", testenv.EastLat, testenv.EastLon, "east", true},
		{"outside", 10, 10, "", false},
		{"south of both", -0.5, 0.5, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, ok := f.areas.Locate(tt.lat, tt.lon)
			if ok != tt.ok || loc.AreaCode != tt.area {
				t.Fatalf("Locate(%v, %v) = %+v, %v; want area %q, %v", tt.lat, tt.lon, loc, ok, tt.area, tt.ok)
			}
			if ok && loc.JurisdictionID != "testville" {
				t.Fatalf("jurisdiction %q", loc.JurisdictionID)
			}
		})
	}
}

// TestRouting checks the order of DESIGN.md: the rule for category × area, else the
// category's department, else the triage desk.
func TestRouting(t *testing.T) {
	f := newFixture(t)
	west := f.newCase(t, testenv.WestLat, testenv.WestLon, "k1")
	east := f.newCase(t, testenv.EastLat, testenv.EastLon, "k2")
	if got := f.route(t, west); got.Status != models.StatusDispatched || *got.DepartmentID != f.roads.ID || got.DueAt == nil {
		t.Errorf("west pothole: status %s dept %v due %v; want dispatched to ROADS with a deadline", got.Status, got.DepartmentID, got.DueAt)
	}
	if got := f.route(t, east); *got.DepartmentID != f.parks.ID {
		t.Errorf("east pothole went to %v; the routing rule sends it to PARKS", *got.DepartmentID)
	}
	other, err := f.db.CategoryByCode(ctx, "testville", "other")
	if err != nil {
		t.Fatal(err)
	}
	c := f.newCase(t, testenv.WestLat, testenv.WestLon, "k3")
	c.CategoryID = other.ID
	dept, err := f.db.RouteFor(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	desk, _ := f.db.DepartmentByCode(ctx, "testville", "DESK")
	if dept != desk.ID {
		t.Errorf("a category without department routes to %s, want the triage desk %s", dept, desk.ID)
	}
}

func TestCreateCaseIsAtomicAndIdempotent(t *testing.T) {
	f := newFixture(t)
	c := f.newCase(t, testenv.WestLat, testenv.WestLon, "same-key")
	if c.Number != "TESTVILLE-000001" || c.Version != 1 || c.Status != models.StatusSubmitted {
		t.Fatalf("new case: %+v", c)
	}
	evs, err := f.db.Timeline(ctx, c.ID, false)
	if err != nil || len(evs) != 1 || evs[0].Type != models.ActionSubmit {
		t.Fatalf("timeline %+v, %v", evs, err)
	}
	pending, _ := f.db.PendingOutbox(ctx)
	if pending != 1 {
		t.Fatalf("outbox has %d pending rows, want the route task", pending)
	}
	// The same key and content: the first case, nothing new written.
	again := models.NewCase{ID: models.NewID(), ReporterID: f.citizen.ID, JurisdictionID: "testville", CategoryID: f.pothole.ID,
		Description: "hole", IdempotencyKey: "same-key", Fingerprint: "fp-same-key"}
	_, err = f.db.CreateCase(ctx, again, time.Now())
	var replay *models.ErrReplay
	if !errors.As(err, &replay) || replay.CaseID != c.ID {
		t.Fatalf("replay: %v, want ErrReplay of %s", err, c.ID)
	}
	// The same key, other content: a conflict, nothing written.
	again.ID, again.Fingerprint = models.NewID(), "other"
	if _, err = f.db.CreateCase(ctx, again, time.Now()); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("reused key: %v, want conflict", err)
	}
	if _, err := f.db.Case(ctx, again.ID); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("a refused case was written: %v", err)
	}
	if pending, _ := f.db.PendingOutbox(ctx); pending != 1 {
		t.Fatalf("outbox has %d pending rows after refused writes, want 1", pending)
	}
}

// TestOnlyOneHandlerAccepts races handlers accepting the same case: exactly one wins, the
// others get a conflict, and the timeline has one accept.
func TestOnlyOneHandlerAccepts(t *testing.T) {
	f := newFixture(t)
	c := f.route(t, f.newCase(t, testenv.WestLat, testenv.WestLon, "race"))
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = f.db.Transition(ctx, models.Change{CaseID: c.ID, Version: c.Version, Action: models.ActionAccept,
				Actor: actor(f.handlers["roads"])}, time.Now())
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, models.ErrConflict):
			t.Errorf("a losing accept failed with %v, want a conflict", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d accepts succeeded, want exactly 1", wins)
	}
	evs, _ := f.db.Timeline(ctx, c.ID, false)
	var types []models.Action
	for _, e := range evs {
		types = append(types, e.Type)
	}
	if diff := cmp.Diff([]models.Action{models.ActionSubmit, models.ActionRoute, models.ActionAccept}, types); diff != "" {
		t.Fatalf("timeline (-want +got):\n%s", diff)
	}
}

func TestTransitionRules(t *testing.T) {
	f := newFixture(t)
	c := f.route(t, f.newCase(t, testenv.WestLat, testenv.WestLon, "rules"))
	roads, parks, boss := actor(f.handlers["roads"]), actor(f.handlers["parks"]), actor(f.handlers["boss"])
	reporter := models.Actor{ID: &f.citizen.ID, Role: models.RoleCitizen}
	tests := []struct {
		name   string
		change models.Change
		want   error // nil: allowed
		status models.Status
	}{
		{"other department may not accept", models.Change{Action: models.ActionAccept, Actor: parks}, models.ErrForbidden, ""},
		{"reporter may not accept", models.Change{Action: models.ActionAccept, Actor: reporter}, models.ErrForbidden, ""},
		{"cannot start before accepting", models.Change{Action: models.ActionStart, Actor: roads}, models.ErrConflict, ""},
		{"stale version", models.Change{Action: models.ActionAccept, Actor: roads, Version: 1}, models.ErrConflict, ""},
		{"accept", models.Change{Action: models.ActionAccept, Actor: roads}, nil, models.StatusAccepted},
		{"internal comment keeps status", models.Change{Action: models.ActionComment, Actor: roads, Note: "crew booked"}, nil, models.StatusAccepted},
		{"start", models.Change{Action: models.ActionStart, Actor: roads}, nil, models.StatusInProgress},
		{"reporter cannot confirm before resolve", models.Change{Action: models.ActionConfirm, Actor: reporter}, models.ErrConflict, ""},
		{"close needs a resolution", models.Change{Action: models.ActionClose, Actor: roads}, models.ErrInvalid, ""},
		{"resolve", models.Change{Action: models.ActionResolve, Actor: roads}, nil, models.StatusResolved},
		{"supervisor of the city may comment", models.Change{Action: models.ActionComment, Actor: boss, Note: "ok", Public: true}, nil, models.StatusResolved},
		{"confirm", models.Change{Action: models.ActionConfirm, Actor: reporter, Rating: 5}, nil, models.StatusClosed},
		{"nothing after closing", models.Change{Action: models.ActionReopen, Actor: reporter}, models.ErrConflict, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.change.CaseID = c.ID
			got, ev, err := f.db.Transition(ctx, tt.change, time.Now())
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("got %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.status || ev.ToStatus != tt.status || ev.Seq != got.Version {
				t.Fatalf("status %s, event to %s seq %d, version %d", got.Status, ev.ToStatus, ev.Seq, got.Version)
			}
		})
	}
	final, _ := f.db.Case(ctx, c.ID)
	if final.Resolution != models.ResolutionFixed || final.ClosedAt == nil || final.FirstResponseAt == nil {
		t.Fatalf("closed case: resolution %q closed_at %v first_response_at %v", final.Resolution, final.ClosedAt, final.FirstResponseAt)
	}
	public, _ := f.db.Timeline(ctx, c.ID, true)
	for _, e := range public {
		if e.Note == "crew booked" {
			t.Fatal("the internal note is in the public timeline")
		}
	}
}

func TestRejectGoesToTriageAndReopenToSameDepartment(t *testing.T) {
	f := newFixture(t)
	roads, boss := actor(f.handlers["roads"]), actor(f.handlers["boss"])
	c := f.route(t, f.newCase(t, testenv.WestLat, testenv.WestLon, "triage"))
	c, _, err := f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: models.ActionReject, Actor: roads, Note: "not ours"}, time.Now())
	if err != nil || c.Status != models.StatusTriage || c.DueAt != nil {
		t.Fatalf("reject: %v, %+v", err, c)
	}
	c, _, err = f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: models.ActionDispatch, Actor: boss, DepartmentID: &f.roads.ID}, time.Now())
	if err != nil || c.Status != models.StatusDispatched || *c.DepartmentID != f.roads.ID {
		t.Fatalf("dispatch from triage: %v, %+v", err, c)
	}
	for _, a := range []models.Action{models.ActionAccept, models.ActionResolve} {
		if c, _, err = f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: a, Actor: roads}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	c, _, err = f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: models.ActionReopen,
		Actor: models.Actor{ID: &f.citizen.ID, Role: models.RoleCitizen}}, time.Now())
	if err != nil || c.Status != models.StatusDispatched || *c.DepartmentID != f.roads.ID || c.ResolvedAt != nil {
		t.Fatalf("reopen: %v, %+v", err, c)
	}
}

func TestOutboxClaimAndDone(t *testing.T) {
	f := newFixture(t)
	f.newCase(t, testenv.WestLat, testenv.WestLon, "outbox")
	now := time.Now()
	var got []models.Outbox
	n, err := f.db.ClaimOutbox(ctx, now, 10, time.Minute, func(o models.Outbox) error { got = append(got, o); return nil })
	if err != nil || n != 1 || got[0].TaskType != models.TaskRoute {
		t.Fatalf("claim: %d %v %+v", n, err, got)
	}
	var p models.RoutePayload
	if err := json.Unmarshal([]byte(got[0].Payload), &p); err != nil || p.OutboxID != got[0].ID {
		t.Fatalf("payload %s: %v", got[0].Payload, err)
	}
	// Within the lease nothing is handed over again; after it, an unfinished row is.
	if n, _ := f.db.ClaimOutbox(ctx, now.Add(30*time.Second), 10, time.Minute, func(models.Outbox) error { return nil }); n != 0 {
		t.Fatalf("claimed %d rows again within the lease", n)
	}
	if n, _ := f.db.ClaimOutbox(ctx, now.Add(2*time.Minute), 10, time.Minute, func(models.Outbox) error { return nil }); n != 1 {
		t.Fatalf("claimed %d rows after the lease, want the unfinished one again", n)
	}
	// A failed hand-over leaves the row due.
	if _, err := f.db.ClaimOutbox(ctx, now.Add(10*time.Minute), 10, time.Minute, func(models.Outbox) error { return errors.New("redis down") }); err == nil {
		t.Fatal("the hand-over error was lost")
	}
	if n, _ := f.db.ClaimOutbox(ctx, now.Add(10*time.Minute), 10, time.Minute, func(models.Outbox) error { return nil }); n != 1 {
		t.Fatal("a row whose hand-over failed was not offered again")
	}
	if err := f.db.MarkOutboxDone(ctx, got[0].ID, now); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.db.ClaimOutbox(ctx, now.Add(time.Hour), 10, time.Minute, func(models.Outbox) error { return nil }); n != 0 {
		t.Fatal("a done row was handed over")
	}
}

func TestNotificationsAreRecordedOnce(t *testing.T) {
	f := newFixture(t)
	c := f.route(t, f.newCase(t, testenv.WestLat, testenv.WestLon, "notify"))
	evs, _ := f.db.Timeline(ctx, c.ID, true)
	ev := evs[len(evs)-1]
	for range 2 {
		pending, err := f.db.RecordNotifications(ctx, &ev, true, time.Now())
		if err != nil || len(pending) != 1 || *pending[0].Device.PushToken != "tok-1" {
			t.Fatalf("pending %+v, %v", pending, err)
		}
	}
	inbox, _, _ := f.db.Inbox(ctx, f.citizen.ID, "", 10)
	if len(inbox) != 1 || inbox[0].Status != models.StatusDispatched {
		t.Fatalf("inbox %+v", inbox)
	}
	pending, _ := f.db.RecordNotifications(ctx, &ev, true, time.Now())
	_ = f.db.MarkDelivery(ctx, pending[0].Delivery.ID, models.DeliverySent, "m1", "", time.Now())
	if again, _ := f.db.RecordNotifications(ctx, &ev, true, time.Now()); len(again) != 0 {
		t.Fatalf("a sent push is pending again: %+v", again)
	}
}

func TestCityConfig(t *testing.T) {
	db := testenv.DB(t)
	cfg, err := models.ParseCityConfig([]byte(testenv.CityYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := db.ApplyCityConfig(ctx, cfg, time.Now())
	if err != nil || first.Unchanged || first.Areas != 2 || first.Categories != 3 || first.StaffCreated != 5 || first.Rules != 1 {
		t.Fatalf("first apply: %+v, %v", first, err)
	}
	before, _ := db.Departments(ctx, "testville")
	second, err := db.ApplyCityConfig(ctx, cfg, time.Now())
	if err != nil || !second.Unchanged {
		t.Fatalf("second apply changed something: %+v, %v", second, err)
	}
	after, _ := db.Departments(ctx, "testville")
	if diff := cmp.Diff(before, after); diff != "" {
		t.Fatalf("departments changed on a second apply (-before +after):\n%s", diff)
	}
	// A changed file updates in place: ids stay.
	changed := strings.Replace(testenv.CityYAML, "{code: PARKS, name: Parks}", "{code: PARKS, name: Parks and Gardens}", 1)
	cfg2, err := models.ParseCityConfig([]byte(changed), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplyCityConfig(ctx, cfg2, time.Now()); err != nil {
		t.Fatal(err)
	}
	parks, _ := db.DepartmentByCode(ctx, "testville", "PARKS")
	if parks.Name != "Parks and Gardens" || parks.ID != before[1].ID {
		t.Fatalf("PARKS after change: %+v (was %+v)", parks, before[1])
	}
}

func TestCityConfigRefusesBadInput(t *testing.T) {
	tests := []struct {
		name, from, to, want string
	}{
		{"unknown department in a rule", "department: PARKS}\nstaff", "department: NOPE}\nstaff", `routing[0] (pothole in east): department "NOPE"`},
		{"negative SLA", "sla_hours: 24", "sla_hours: -1", "sla_hours -1 is negative"},
		{"handler without department", "role: handler, department: ROADS, ", "role: handler, ", "a handler needs a department"},
		{"unknown triage desk", "triage_department: DESK", "triage_department: NONE", `triage_department "NONE"`},
		{"polygon with too few points", "[[[-1, 0], [0, 0], [0, 1], [-1, 1], [-1, 0]]]", "[[[-1, 0], [0, 0], [-1, 0]]]", "feature 0 (west)"},
		{"bad time zone", "Europe/London", "Mars/Olympus", "timezone"},
		{"unknown key", "triage_department: DESK", "triage_department: DESK\nfrobnicate: 1", "frobnicate"},
		{"bad datatype", "datatype: number", "datatype: colour", `datatype "colour"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := strings.Replace(testenv.CityYAML, tt.from, tt.to, 1)
			if y == testenv.CityYAML {
				t.Fatalf("the test's replacement of %q did not apply", tt.from)
			}
			_, err := models.ParseCityConfig([]byte(y), nil)
			if !errors.Is(err, models.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an invalid-config error naming %q", err, tt.want)
			}
		})
	}
}

func TestValidateAnswers(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name    string
		answers map[string]any
		want    map[string]any
		err     string
	}{
		{"required missing", map[string]any{}, nil, `question "depth"`},
		{"not in list", map[string]any{"depth": "bottomless"}, nil, "not one of"},
		{"valid", map[string]any{"depth": "deep", "width_cm": "40"}, map[string]any{"depth": "deep", "width_cm": 40.0}, ""},
		{"number from JSON", map[string]any{"depth": "shallow", "width_cm": 12.5}, map[string]any{"depth": "shallow", "width_cm": 12.5}, ""},
		{"not a number", map[string]any{"depth": "deep", "width_cm": "wide"}, nil, "not a number"},
		{"unknown question", map[string]any{"depth": "deep", "colour": "red"}, nil, `no question "colour"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := models.ValidateAnswers(f.pothole, tt.answers)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}
