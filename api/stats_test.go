package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestStatsRefusesBadInput: each bad request gets its problem, with a detail that says what
// to send instead.
func TestStatsRefusesBadInput(t *testing.T) {
	h := newHarness(t)
	boss := h.staff("boss@test.example", "boss-pass")
	cases := []struct {
		name, path string
		status     int
		typ        string
		detail     string
	}{
		{"inverted period", "/v1/stats?from=2026-06-07&to=2026-06-01", 422, "invalid-period", "must be before"},
		{"empty period", "/v1/stats?from=2026-06-01T00:00:00Z&to=2026-06-01T00:00:00Z", 422, "invalid-period", "must be before"},
		{"ten years", "/v1/stats?from=2016-01-01&to=2025-12-31", 422, "period-too-long", "at most 366 days"},
		{"ten years by day", "/v1/stats?from=2016-01-01&to=2025-12-31&group_by=day", 422, "period-too-long", "a year at a time"},
		{"only from, long ago", "/v1/stats?from=2000-01-01", 422, "period-too-long", "366"},
		{"a year and two days", "/v1/stats?from=2025-01-01&to=2026-01-02", 422, "period-too-long", "366"},
		{"not a time", "/v1/stats?from=yesterday", 422, "invalid-period", "RFC 3339"},
		{"unknown group_by", "/v1/stats?group_by=mayor", 422, "invalid-group-by", "department, category, area, day, week"},
		{"other city", "/v1/stats?jurisdiction=otherville", 403, "other-jurisdiction", "your own city"},
		{"other city's overdue", "/v1/stats/overdue?jurisdiction=otherville", 403, "other-jurisdiction", "testville"},
		{"limit too big", "/v1/stats/overdue?limit=100000", 422, "invalid-limit", "1 to 500"},
		{"limit not a number", "/v1/stats/breaching?limit=ten", 422, "invalid-limit", "whole number"},
		{"window too long", "/v1/stats/breaching?within_hours=10000", 422, "invalid-within-hours", "1 to 720"},
		{"hotspots by who", "/v1/stats/hotspots?by=department", 422, "invalid-by", "area or category"},
		{"hotspots inverted", "/v1/stats/hotspots?from=2026-06-07&to=2026-06-01", 422, "invalid-period", "before"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := h.do("GET", c.path, boss, nil, "")
			var p Problem
			_ = json.Unmarshal(body, &p)
			if resp.StatusCode != c.status || p.Type != "urn:cityeyes:problem:"+c.typ || !strings.Contains(p.Detail, c.detail) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		})
	}
	// A leap year's 366 days are allowed, by day.
	if resp, body := h.do("GET", "/v1/stats?from=2024-01-01&to=2024-12-31&group_by=day", boss, nil, ""); resp.StatusCode != 200 {
		t.Fatalf("366 days: %d %s", resp.StatusCode, body)
	} else {
		var st StatsResponse
		_ = json.Unmarshal(body, &st)
		if len(st.Groups) != 366 || st.Groups[0].Key != "2024-01-01" || st.Groups[365].Key != "2024-12-31" {
			t.Fatalf("%d days from %s", len(st.Groups), st.Groups[0].Key)
		}
	}
}

// TestStatsOverTheAPI: dates are the city's (London: BST in June), groups are every
// department by code, and a routed case is counted.
func TestStatsOverTheAPI(t *testing.T) {
	h := newHarness(t)
	h.now = time.Date(2026, 6, 3, 12, 0, 0, 0, time.UTC)
	citizen := h.citizen("device-stats-1")
	_, r, _ := h.submit(citizen, "stats-1", goodReport()...)
	h.route(r.ID)
	boss := h.staff("boss@test.example", "boss-pass")
	resp, body := h.do("GET", "/v1/stats?from=2026-06-01&to=2026-06-07", boss, nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var st StatsResponse
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Jurisdiction != "testville" || st.GroupBy != "department" ||
		!st.From.Equal(time.Date(2026, 5, 31, 23, 0, 0, 0, time.UTC)) || !st.To.Equal(time.Date(2026, 6, 7, 23, 0, 0, 0, time.UTC)) {
		t.Fatalf("period %+v", st)
	}
	var keys []string
	for _, g := range st.Groups {
		keys = append(keys, g.Key)
		if g.Key == "ROADS" && (g.Received != 1 || g.Dispatched != 1 || g.Backlog != 1 || g.Name != "Roads" || g.Due != 1 || *g.OnTimeRate != 0 || *g.ClosureRate != 0) {
			t.Errorf("ROADS %+v", g)
		}
	}
	if strings.Join(keys, ",") != "DESK,PARKS,ROADS" || st.Total.Key != "total" || st.Total.Received != 1 {
		t.Fatalf("groups %v, total %+v", keys, st.Total)
	}
	// Two days later the case is overdue (pothole: 48 hours) and listed as such; a day
	// before, it was about to breach.
	h.now = h.now.Add(49 * time.Hour)
	boss = h.staff("boss@test.example", "boss-pass") // a staff token lasts 12 hours
	_, body = h.do("GET", "/v1/stats/overdue", boss, nil, "")
	var od StatsCases
	_ = json.Unmarshal(body, &od)
	if len(od.Cases) != 1 || od.Cases[0].ID != r.ID || od.Cases[0].HoursOverdue == nil || *od.Cases[0].HoursOverdue != 1 ||
		od.Cases[0].Category != "pothole" || *od.Cases[0].Department != "ROADS" || *od.Cases[0].Area != "west" {
		t.Fatalf("overdue %s", body)
	}
	h.now = h.now.Add(-25 * time.Hour)
	boss = h.staff("boss@test.example", "boss-pass")
	_, body = h.do("GET", "/v1/stats/breaching?within_hours=25", boss, nil, "")
	var br StatsCases
	_ = json.Unmarshal(body, &br)
	if len(br.Cases) != 1 || br.Cases[0].HoursLeft == nil || *br.Cases[0].HoursLeft != 24 {
		t.Fatalf("breaching %s", body)
	}
	_, body = h.do("GET", "/v1/stats/hotspots?from=2026-06-01&to=2026-06-07", boss, nil, "")
	if !strings.Contains(string(body), `{"key":"west","name":"West","count":1}`) {
		t.Fatalf("hotspots %s", body)
	}
}
