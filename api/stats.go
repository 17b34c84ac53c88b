package api

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/models"
)

// statsRoutes mounts the routes of supervisors' KPIs, lists and exports. Supervisors and
// administrators of a city see its figures: both answer for it, and nothing here is more
// than either already sees. Case handlers have their queue. Personal data in the exports
// is the supervisors' alone (exports.go).
func (s *Server) statsRoutes(app *fiber.App, v1 fiber.Router) {
	boss := s.auth(models.RoleSupervisor, models.RoleAdmin)
	v1.Get("/stats", boss, s.stats)
	v1.Get("/stats/overdue", boss, s.overdueList)
	v1.Get("/stats/breaching", boss, s.breachingList)
	v1.Get("/stats/hotspots", boss, s.hotspots)
	v1.Get("/exports/cases.csv", boss, s.exportCSV)
	v1.Get("/exports/cases.geojson", boss, s.exportGeoJSON)
}

// StatsGroup is one group's KPIs (docs/kpis.md defines each).
type StatsGroup struct {
	Key                     string   `json:"key"`
	Name                    string   `json:"name"`
	Received                int64    `json:"received"`
	Dispatched              int64    `json:"dispatched"`
	Closed                  int64    `json:"closed"`
	Backlog                 int64    `json:"backlog"`
	Overdue                 int64    `json:"overdue"`
	Due                     int64    `json:"due"`
	ClosedOnTime            int64    `json:"closed_on_time"`
	Reopened                int64    `json:"reopened"`
	Ratings                 int64    `json:"ratings"`
	ReceivedClosed          int64    `json:"received_closed"`
	OnTimeRate              *float64 `json:"on_time_rate"`
	ClosureRate             *float64 `json:"closure_rate"`
	ReworkRate              *float64 `json:"rework_rate"`
	HoursToCloseP50         *float64 `json:"hours_to_close_p50"`
	HoursToCloseP90         *float64 `json:"hours_to_close_p90"`
	HoursToFirstResponseP50 *float64 `json:"hours_to_first_response_p50"`
	Satisfaction            *float64 `json:"satisfaction"`
}

// StatsResponse is a city's KPIs over a period, per group and in total.
type StatsResponse struct {
	Jurisdiction string       `json:"jurisdiction"`
	From         time.Time    `json:"from"`
	To           time.Time    `json:"to"`
	GroupBy      string       `json:"group_by"`
	GeneratedAt  time.Time    `json:"generated_at"`
	Groups       []StatsGroup `json:"groups"`
	Total        StatsGroup   `json:"total"`
}

// StatsCase is a case in the overdue and about-to-breach lists.
type StatsCase struct {
	ID           string    `json:"id"`
	Number       string    `json:"number"`
	Category     string    `json:"category"`
	Department   *string   `json:"department"`
	Area         *string   `json:"area"`
	Status       string    `json:"status"`
	DueAt        time.Time `json:"due_at"`
	HoursOverdue *float64  `json:"hours_overdue,omitempty"`
	HoursLeft    *float64  `json:"hours_left,omitempty"`
	Lat          float64   `json:"lat"`
	Lon          float64   `json:"lon"`
}

// StatsCases is a list of cases.
type StatsCases struct {
	Cases []StatsCase `json:"cases"`
}

// HotspotItem is an area or category with the number of cases received in it.
type HotspotItem struct {
	Key   string `json:"key"`
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

// Hotspots are the areas or categories with the most cases.
type Hotspots struct {
	Items []HotspotItem `json:"items"`
}

// statsCity is the city a stats request is about: the caller's own. Asking for another
// by ?jurisdiction= is refused rather than silently answered for one's own.
func (s *Server) statsCity(c *fiber.Ctx) (*models.Jurisdiction, *time.Location, error) {
	p := caller(c)
	if j := c.Query("jurisdiction"); j != "" && j != p.JurisdictionID {
		return nil, nil, models.Problemf(models.ErrForbidden, "other-jurisdiction",
			"you may see the figures of your own city (%s) only", p.JurisdictionID)
	}
	j, err := s.db.Jurisdiction(c.UserContext(), p.JurisdictionID)
	if err != nil {
		return nil, nil, err
	}
	loc, err := time.LoadLocation(j.Timezone)
	if err != nil {
		return nil, nil, err
	}
	return j, loc, nil
}

// period reads from and to: RFC 3339 times, or dates (YYYY-MM-DD) in the city's time zone,
// a date "to" including its whole day. The default is the last 30 days; the period must
// run forwards and last at most models.MaxStatsDays days.
func (s *Server) period(c *fiber.Ctx, loc *time.Location) (time.Time, time.Time, error) {
	parse := func(name string, end bool) (time.Time, bool, error) {
		v := c.Query(name)
		if v == "" {
			return time.Time{}, false, nil
		}
		t, err := parseWhen(name, v, loc, end)
		return t, err == nil, err
	}
	from, hasFrom, err := parse("from", false)
	if err != nil {
		return from, from, err
	}
	to, hasTo, err := parse("to", true)
	if err != nil {
		return from, to, err
	}
	if !hasTo {
		to = s.now().UTC()
	}
	if !hasFrom {
		from = to.AddDate(0, 0, -30)
	}
	if !from.Before(to) {
		return from, to, models.Problemf(models.ErrInvalid, "invalid-period",
			"from (%s) must be before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if to.Sub(from) > models.MaxStatsDays*24*time.Hour+time.Hour { // an hour for a clock change
		return from, to, models.Problemf(models.ErrInvalid, "period-too-long",
			"a period is at most %d days; ask for a longer one a year at a time", models.MaxStatsDays)
	}
	return from, to, nil
}

// parseWhen reads an RFC 3339 time, or a date in the city's time zone: its start, or for
// the end of a period (end) the start of the next day, so that the day is included.
func parseWhen(name, v string, loc *time.Location, end bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	d, err := time.ParseInLocation(time.DateOnly, v, loc)
	if err != nil {
		return time.Time{}, models.Problemf(models.ErrInvalid, "invalid-period",
			"%s must be an RFC 3339 time (2026-11-02T00:00:00Z) or a date (2026-11-02), not %q", name, v)
	}
	if end {
		d = d.AddDate(0, 0, 1)
	}
	return d.UTC(), nil
}

// stats answers a city's KPIs (GET /v1/stats?from=&to=&group_by=).
func (s *Server) stats(c *fiber.Ctx) error {
	j, loc, err := s.statsCity(c)
	if err != nil {
		return err
	}
	groupBy := c.Query("group_by", models.GroupDepartment)
	if !slices.Contains(models.StatsGroupings, groupBy) {
		return models.Problemf(models.ErrInvalid, "invalid-group-by", "group_by must be one of %s, not %q",
			strings.Join(models.StatsGroupings, ", "), groupBy)
	}
	from, to, err := s.period(c, loc)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	st, err := s.db.Stats(c.UserContext(), models.StatsQuery{JurisdictionID: j.ID, From: from, To: to, GroupBy: groupBy, Now: now})
	if err != nil {
		return err
	}
	out := StatsResponse{Jurisdiction: j.ID, From: from, To: to, GroupBy: groupBy, GeneratedAt: now,
		Groups: make([]StatsGroup, 0, len(st.Groups)), Total: toStatsGroup(st.Total)}
	out.Total.Key, out.Total.Name = "total", "All"
	for _, g := range st.Groups {
		out.Groups = append(out.Groups, toStatsGroup(g))
	}
	return c.JSON(out)
}

func toStatsGroup(k models.KPIs) StatsGroup {
	return StatsGroup{Key: k.Key, Name: k.Name, Received: k.Received, Dispatched: k.Dispatched, Closed: k.Closed,
		Backlog: k.Backlog, Overdue: k.Overdue, Due: k.Due, ClosedOnTime: k.ClosedOnTime, Reopened: k.Reopened,
		Ratings: k.Ratings, ReceivedClosed: k.ReceivedClosed, OnTimeRate: k.OnTimeRate, ClosureRate: k.ClosureRate,
		ReworkRate: k.ReworkRate, HoursToCloseP50: k.HoursToCloseP50, HoursToCloseP90: k.HoursToCloseP90,
		HoursToFirstResponseP50: k.HoursToFirstResponseP50, Satisfaction: k.Satisfaction}
}

// queryInt reads an integer query parameter in [lo, hi], def when absent.
func queryInt(c *fiber.Ctx, name string, def, lo, hi int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, models.Problemf(models.ErrInvalid, "invalid-"+strings.ReplaceAll(name, "_", "-"), "%s must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

// overdueList lists the city's overdue cases now, the longest overdue first
// (GET /v1/stats/overdue?limit=).
func (s *Server) overdueList(c *fiber.Ctx) error {
	j, _, err := s.statsCity(c)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	now := s.now()
	cs, err := s.db.OverdueCases(c.UserContext(), j.ID, now, limit)
	if err != nil {
		return err
	}
	return s.statsCases(c, cs, func(sc *StatsCase) {
		h := hoursBetween(sc.DueAt, now)
		sc.HoursOverdue = &h
	})
}

// breachingList lists the city's cases whose deadline comes within the next hours, the
// soonest first (GET /v1/stats/breaching?within_hours=24&limit=).
func (s *Server) breachingList(c *fiber.Ctx) error {
	j, _, err := s.statsCity(c)
	if err != nil {
		return err
	}
	within, err := queryInt(c, "within_hours", 24, 1, 720)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	now := s.now()
	cs, err := s.db.BreachingCases(c.UserContext(), j.ID, now, time.Duration(within)*time.Hour, limit)
	if err != nil {
		return err
	}
	return s.statsCases(c, cs, func(sc *StatsCase) {
		h := hoursBetween(now, sc.DueAt)
		sc.HoursLeft = &h
	})
}

// hoursBetween is the hours from a to b, to a hundredth.
func hoursBetween(a, b time.Time) float64 {
	return math.Round(b.Sub(a).Hours()*100) / 100
}

// statsCases writes a list of cases with their codes.
func (s *Server) statsCases(c *fiber.Ctx, cs []models.Case, fill func(*StatsCase)) error {
	ctx := c.UserContext()
	out := StatsCases{Cases: make([]StatsCase, 0, len(cs))}
	for _, k := range cs {
		sc := StatsCase{ID: k.ID, Number: k.Number, Status: string(k.Status), Lat: k.Lat, Lon: k.Lon}
		if k.DueAt != nil {
			sc.DueAt = k.DueAt.UTC()
		}
		var err error
		if sc.Category, err = s.code(ctx, "category", &k.CategoryID); err != nil {
			return err
		}
		if sc.Department, err = s.codePtr(ctx, "department", k.DepartmentID); err != nil {
			return err
		}
		if sc.Area, err = s.codePtr(ctx, "area", k.AreaID); err != nil {
			return err
		}
		fill(&sc)
		out.Cases = append(out.Cases, sc)
	}
	return c.JSON(out)
}

// code is the code of a category, department or area, cached: codes do not change.
func (s *Server) code(ctx context.Context, kind string, id *string) (string, error) {
	if v, ok := s.codes.Load(*id); ok {
		return v.(string), nil
	}
	var (
		code string
		err  error
	)
	switch kind {
	case "category":
		code, err = s.db.CategoryCode(ctx, *id)
	case "department":
		code, err = s.db.DepartmentCode(ctx, *id)
	default:
		code, err = s.db.AreaCode(ctx, *id)
	}
	if err != nil {
		return "", err
	}
	s.codes.Store(*id, code)
	return code, nil
}

func (s *Server) codePtr(ctx context.Context, kind string, id *string) (*string, error) {
	if id == nil {
		return nil, nil
	}
	code, err := s.code(ctx, kind, id)
	return &code, err
}

// hotspots lists the areas or categories with the most cases received in a period
// (GET /v1/stats/hotspots?from=&to=&by=area|category&limit=).
func (s *Server) hotspots(c *fiber.Ctx) error {
	j, loc, err := s.statsCity(c)
	if err != nil {
		return err
	}
	by := c.Query("by", models.GroupArea)
	if by != models.GroupArea && by != models.GroupCategory {
		return models.Problemf(models.ErrInvalid, "invalid-by", "by must be area or category, not %q", by)
	}
	from, to, err := s.period(c, loc)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 10, 1, 100)
	if err != nil {
		return err
	}
	hs, err := s.db.Hotspots(c.UserContext(), j.ID, by, from, to, limit)
	if err != nil {
		return err
	}
	out := Hotspots{Items: make([]HotspotItem, 0, len(hs))}
	for _, h := range hs {
		out.Items = append(out.Items, HotspotItem{Key: h.Code, Name: h.Name, Count: h.Count})
	}
	return c.JSON(out)
}
