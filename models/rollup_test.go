package models_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/models"
)

// randomCity runs n cases through random lifecycles between late May and late June 2026, each
// action at a random time after the one before, and returns their ids. Actions the lifecycle
// refuses at that moment are skipped; the test fails if too few were taken for the figures
// to mean anything.
func randomCity(t *testing.T, f *fixture, n int, seed uint64) []string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	start := time.Date(2026, 5, 25, 0, 0, 0, 0, time.UTC)
	citizen, boss := actor(f.citizen), actor(f.handlers["boss"])
	var ids []string
	taken := 0
	for i := range n {
		at := start.Add(time.Duration(rng.Int64N(int64(25 * 24 * time.Hour))))
		lon, handler := -0.5, actor(f.handlers["roads"])
		if rng.IntN(3) == 0 {
			lon, handler = 0.5, actor(f.handlers["parks"])
		}
		loc, _ := f.areas.Locate(0.5, lon)
		c, err := f.db.CreateCase(ctx, models.NewCase{ID: models.NewID(), ReporterID: f.citizen.ID, JurisdictionID: "testville",
			CategoryID: f.pothole.ID, AreaID: loc.AreaID, Description: "random case", Lat: 0.5, Lon: lon}, at)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
		if i%7 == 0 {
			continue // never routed
		}
		dept, err := f.db.RouteFor(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		at = at.Add(time.Minute)
		if _, _, err := f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: models.ActionRoute, Actor: models.SystemActor, DepartmentID: &dept}, at); err != nil {
			t.Fatal(err)
		}
		for range rng.IntN(9) {
			at = at.Add(time.Duration(30+rng.IntN(40*60)) * time.Minute)
			until := at.Add(20 * time.Hour)
			ch := []models.Change{
				{Action: models.ActionAccept, Actor: handler},
				{Action: models.ActionStart, Actor: handler},
				{Action: models.ActionResolve, Actor: handler},
				{Action: models.ActionConfirm, Actor: citizen, Rating: rng.IntN(6)},
				{Action: models.ActionReopen, Actor: citizen},
				{Action: models.ActionTimeout, Actor: models.SystemActor},
				{Action: models.ActionClose, Actor: boss, Resolution: models.ResolutionInvalid},
				{Action: models.ActionRate, Actor: citizen, Rating: 1 + rng.IntN(5)},
				{Action: models.ActionDefer, Actor: handler, Note: "parts", Until: &until},
				{Action: models.ActionResume, Actor: models.SystemActor},
			}[rng.IntN(10)]
			ch.CaseID = c.ID
			if _, _, err := f.db.Transition(ctx, ch, at); err == nil {
				taken++
			}
		}
	}
	if taken < n {
		t.Fatalf("only %d actions taken on %d cases", taken, n)
	}
	return ids
}

// TestStatsRollupAgrees checks the rollup against itself and against the cases: whatever
// holds a change (waiting to be folded, folded in parts, by several folds at once, or a
// rebuild), the figures are the same; periods that start or end mid-day add up; and the
// counts and percentiles agree with what the cases say when counted here directly.
func TestStatsRollupAgrees(t *testing.T) {
	f := newFixture(t)
	if err := f.db.RebuildStats(ctx, "testville"); err != nil {
		t.Fatal(err)
	}
	ids := randomCity(t, f, 120, 7)
	now := time.Date(2026, 6, 25, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(11, 2))
	type period struct{ from, to time.Time }
	periods := []period{{time.Date(2026, 5, 31, 23, 0, 0, 0, time.UTC), time.Date(2026, 6, 14, 23, 0, 0, 0, time.UTC)}} // whole London days
	for range 4 {
		from := time.Date(2026, 5, 24, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(15 * 24 * time.Hour))))
		periods = append(periods, period{from, from.Add(time.Duration(rng.Int64N(int64(20*24*time.Hour))) + time.Hour)})
	}
	periods = append(periods, period{time.Date(2026, 6, 3, 9, 0, 0, 0, time.UTC), time.Date(2026, 6, 3, 17, 0, 0, 0, time.UTC)}) // within a day
	// Ends late in a day and early in one, and early and late.
	periods = append(periods, period{time.Date(2026, 6, 3, 20, 0, 0, 0, time.UTC), time.Date(2026, 6, 10, 5, 0, 0, 0, time.UTC)},
		period{time.Date(2026, 6, 4, 2, 0, 0, 0, time.UTC), time.Date(2026, 6, 12, 21, 0, 0, 0, time.UTC)})
	all := func(read ...func(models.StatsQuery) (*models.Stats, error)) map[string]*models.Stats {
		out := map[string]*models.Stats{}
		for i, p := range periods {
			for _, g := range models.StatsGroupings {
				q := models.StatsQuery{JurisdictionID: "testville", From: p.from, To: p.to, GroupBy: g, Now: now}
				stats := func(q models.StatsQuery) (*models.Stats, error) { return f.db.Stats(ctx, q) }
				if len(read) > 0 {
					stats = read[0]
				}
				st, err := stats(q)
				if err != nil {
					t.Fatal(err)
				}
				out[string(rune('a'+i))+g] = st
			}
		}
		return out
	}
	pending := all()
	fold := func(limit int) {
		if _, err := f.db.FoldStats(ctx, limit); err != nil {
			t.Fatal(err)
		}
	}
	compare := func(name string, got map[string]*models.Stats) {
		t.Helper()
		for k, want := range pending {
			if !reflect.DeepEqual(got[k], want) {
				t.Errorf("%s: period %s differs from the figures with every change pending:\n got %+v\nwant %+v", name, k, got[k].Total, want.Total)
			}
		}
	}
	fold(37)
	compare("a fold of 37 changes", all())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				n, err := f.db.FoldStats(ctx, 25)
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	compare("four folds at once", all())
	if err := f.db.RebuildStats(ctx, "testville"); err != nil {
		t.Fatal(err)
	}
	compare("a rebuild", all())
	// A part day at either end of a period (and the day of the backlog's moment) is read as
	// the part inside the period or as the whole day less the part outside, whichever holds
	// fewer cases; both ways give the same figures.
	for _, outside := range []bool{false, true} {
		compare(fmt.Sprintf("every part day read outside %v", outside), all(func(q models.StatsQuery) (*models.Stats, error) {
			return f.db.StatsReadingParts(ctx, q, outside)
		}))
	}

	// Counted here from the cases themselves.
	var cases []*models.Case
	for _, id := range ids {
		c, err := f.db.Case(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	in := func(t *time.Time, p period) bool { return t != nil && !t.Before(p.from) && t.Before(p.to) }
	for i, p := range periods {
		var want models.KPIs
		var close, response []float64
		for _, c := range cases {
			created := c.CreatedAt
			if in(&created, p) {
				want.Received++
			}
			if in(c.DispatchedAt, p) {
				want.Dispatched++
			}
			if in(c.ClosedAt, p) {
				want.Closed++
				close = append(close, c.ClosedAt.Sub(c.CreatedAt).Hours())
			}
			if in(c.DueAt, p) && !c.Deferred {
				want.Due++
			}
			if in(c.FirstResponseAt, p) {
				response = append(response, c.FirstResponseAt.Sub(c.CreatedAt).Hours())
			}
			if in(c.RatedAt, p) {
				want.Ratings++
			}
		}
		got := pending[string(rune('a'+i))+models.GroupDepartment].Total
		if g, w := [5]int64{got.Received, got.Dispatched, got.Closed, got.Due, got.Ratings},
			[5]int64{want.Received, want.Dispatched, want.Closed, want.Due, want.Ratings}; g != w {
			t.Errorf("period %d: received, dispatched, closed, due, ratings = %v, counted from the cases %v", i, g, w)
		}
		for _, h := range []struct {
			name string
			got  *float64
			vs   []float64
			f    float64
		}{{"hours to close p50", got.HoursToCloseP50, close, 0.5}, {"hours to close p90", got.HoursToCloseP90, close, 0.9},
			{"hours to first response p50", got.HoursToFirstResponseP50, response, 0.5}} {
			if want := exactPercentile(h.vs, h.f); !nearHours(h.got, want) {
				t.Errorf("period %d: %s = %s, exact %s", i, h.name, fmtp(h.got), fmtp(want))
			}
		}
	}

	// A period cut anywhere adds up: every count but the two states (backlog, overdue).
	for range 5 {
		p := periods[1+rng.IntN(4)]
		mid := p.from.Add(time.Duration(rng.Int64N(int64(p.to.Sub(p.from)))))
		var sum [3]models.KPIs
		for i, q := range []period{{p.from, mid}, {mid, p.to}, p} {
			st, err := f.db.Stats(ctx, models.StatsQuery{JurisdictionID: "testville", From: q.from, To: q.to, GroupBy: models.GroupArea, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			sum[i] = st.Total
		}
		a, b, whole := sum[0], sum[1], sum[2]
		if g, w := [9]int64{a.Received + b.Received, a.ReceivedClosed + b.ReceivedClosed, a.Dispatched + b.Dispatched,
			a.Closed + b.Closed, a.Reopened + b.Reopened, a.Due + b.Due, a.ClosedOnTime + b.ClosedOnTime, a.Ratings + b.Ratings, a.RatingSum + b.RatingSum},
			[9]int64{whole.Received, whole.ReceivedClosed, whole.Dispatched, whole.Closed, whole.Reopened, whole.Due,
				whole.ClosedOnTime, whole.Ratings, whole.RatingSum}; g != w {
			t.Errorf("[%s, %s) cut at %s: the halves add up to %v, the whole is %v", p.from, p.to, mid, g, w)
		}
	}
}

// exactPercentile is percentile_cont over the values, for comparison.
func exactPercentile(vs []float64, f float64) *float64 {
	if len(vs) == 0 {
		return nil
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	pos := f * float64(len(s)-1)
	lo := int(pos)
	v := s[lo]
	if lo+1 < len(s) {
		v += (pos - float64(lo)) * (s[lo+1] - s[lo])
	}
	return &v
}

// TestStatsFollowTheTimeZone: the rollup's days are the city's local days; when the city
// moves to another time zone, the next question is answered from a rollup built again.
func TestStatsFollowTheTimeZone(t *testing.T) {
	f, _ := kpiFixture(t)
	q := models.StatsQuery{JurisdictionID: "testville", From: kpiFrom, To: kpiTo, GroupBy: models.GroupDay, Now: kpiNow}
	london, err := f.db.Stats(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	// A's confirmation at 23:30 UTC on 06-02 is 06-03 in London and 06-02 in UTC.
	if london.Groups[2].Closed != 1 {
		t.Fatalf("London 06-03 closed = %d, want 1 (A)", london.Groups[2].Closed)
	}
	if _, err := f.db.UpdateCityConfig(ctx, "testville", func(cfg *models.CityConfig) error {
		cfg.Jurisdiction.Timezone = "UTC"
		if cfg.Jurisdiction.Calendar != nil {
			cfg.Jurisdiction.Calendar.Timezone = "UTC"
		}
		return nil
	}, time.Now()); err != nil {
		t.Fatal(err)
	}
	q.From, q.To = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 8, 0, 0, 0, 0, time.UTC)
	utc, err := f.db.Stats(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if utc.Groups[1].Key != "2026-06-02" || utc.Groups[1].Closed != 1 || utc.Groups[2].Closed != 0 {
		t.Errorf("UTC days: 06-02 closed %d, 06-03 closed %d; want A on 06-02", utc.Groups[1].Closed, utc.Groups[2].Closed)
	}
}

// TestStatsReadTheSmallerPart: a part day is read from the side that holds fewer cases,
// not the one shorter on the clock. Just after midnight, after a burst of reports, the
// rest of the day (nothing yet) is read, not the burst; late in a day with nothing since
// midnight but reports to come, the part so far.
func TestStatsReadTheSmallerPart(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	day := func(d, h, m int) time.Time { return time.Date(2026, 6, d, h, m, 0, 0, london) }
	for _, c := range []struct {
		name    string
		reports []time.Time
		end     time.Time
		outside bool
	}{
		{"a burst just before the end, just after midnight", []time.Time{day(3, 0, 5), day(3, 0, 10), day(3, 0, 20)}, day(3, 0, 40), true},
		{"reports late in the day after an end late in it", []time.Time{day(4, 21, 0), day(4, 22, 0)}, day(4, 20, 0), false},
		{"nothing either side: the shorter", nil, day(5, 20, 0), true},
		{"as many either side: the shorter", []time.Time{day(6, 1, 0), day(6, 23, 0)}, day(6, 4, 0), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			for _, at := range c.reports {
				if _, err := f.db.CreateCase(ctx, models.NewCase{ID: models.NewID(), ReporterID: f.citizen.ID, JurisdictionID: "testville",
					CategoryID: f.pothole.ID, Description: "a report", Lat: 0.5, Lon: -0.5}, at.UTC()); err != nil {
					t.Fatal(err)
				}
			}
			got, err := f.db.ReadsOutside(ctx, "testville", london, c.end)
			if err != nil || got != c.outside {
				t.Fatalf("read outside %v (%v), want %v", got, err, c.outside)
			}
		})
	}
}
