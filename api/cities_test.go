package api

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/internal/testenv"
)

// TestTwoCitiesStayApart loads two cities on one deployment, files a case in each (the point
// selects the city), and checks that staff, queues, queue counts, cases, stats, exports,
// administration and Open311 (jurisdiction_id selects the city) never show one city the
// other's.
func TestTwoCitiesStayApart(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	testenv.Apply(t, h.db, testenv.OtherCityYAML)
	idx, err := h.db.LoadAreaIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.cfgAreas(idx)

	citizen := h.citizen("device-two-cities")
	file := func(key string, lat, lon float64, answers map[string]any) Report {
		t.Helper()
		resp, body := h.json("POST", "/v1/reports", citizen, ReportJSON{Category: "pothole", Description: "hole in " + key,
			Lat: &lat, Lon: &lon, Attributes: answers}, "Idempotency-Key", key)
		if resp.StatusCode != 201 {
			t.Fatalf("report in %s: %d %s", key, resp.StatusCode, body)
		}
		var r Report
		_ = json.Unmarshal(body, &r)
		h.route(r.ID)
		return r
	}
	// The same category code asks different questions in each city.
	here := file("testville", testenv.WestLat, testenv.WestLon, map[string]any{"depth": "deep"})
	there := file("otherville", 43.4674, 11.8851, nil)
	if c, _ := h.db.Case(ctx, there.ID); c.JurisdictionID != "otherville" {
		t.Fatalf("the Tuscan point went to %s", c.JurisdictionID)
	}

	type city struct {
		id, mine, theirs       string // the city, its case number, the other city's case number
		admin, boss, handler   string // tokens
		staffMine, staffTheirs string
		caseMine, caseTheirs   string
	}
	cities := []city{
		{id: "testville", mine: here.Number, theirs: there.Number, caseMine: here.ID, caseTheirs: there.ID,
			admin: h.staff("admin@test.example", "admin-pass"), boss: h.staff("boss@test.example", "boss-pass"),
			handler: h.staff("roads@test.example", "roads-pass"), staffMine: "@test.example", staffTheirs: "@other.example"},
		{id: "otherville", mine: there.Number, theirs: here.Number, caseMine: there.ID, caseTheirs: here.ID,
			admin: h.staff("admin@other.example", "other-admin"), boss: h.staff("boss@other.example", "other-boss"),
			handler: h.staff("roads@other.example", "other-roads"), staffMine: "@other.example", staffTheirs: "@test.example"},
	}
	for _, c := range cities {
		t.Run(c.id, func(t *testing.T) {
			reads := []struct {
				what, path, token, mine, theirs string
			}{
				{"staff", "/v1/admin/staff", c.admin, c.staffMine, c.staffTheirs},
				{"configuration", "/v1/admin/config", c.admin, `"id":"` + c.id + `"`, c.staffTheirs},
				{"supervisor's queue", "/v1/queue", c.boss, c.mine, c.theirs},
				{"handler's queue", "/v1/queue", c.handler, c.mine, c.theirs},
				{"stats", "/v1/stats?group_by=department", c.boss, `"jurisdiction":"` + c.id + `"`, ""},
				{"overdue list", "/v1/stats/overdue", c.boss, "", c.theirs},
				{"CSV export", "/v1/exports/cases.csv", c.boss, c.mine, c.theirs},
				{"GeoJSON export", "/v1/exports/cases.geojson", c.boss, c.mine, c.theirs},
			}
			for _, r := range reads {
				resp, body := h.do("GET", r.path, r.token, nil, "")
				if resp.StatusCode != 200 {
					t.Fatalf("%s: %d %s", r.what, resp.StatusCode, body)
				}
				if r.mine != "" && !strings.Contains(string(body), r.mine) {
					t.Errorf("%s does not show its own %q: %s", r.what, r.mine, body)
				}
				if r.theirs != "" && strings.Contains(string(body), r.theirs) {
					t.Errorf("%s shows the other city's %q: %s", r.what, r.theirs, body)
				}
			}
			var counts QueueCounts
			_, body := h.do("GET", "/v1/queue/counts", c.boss, nil, "")
			_ = json.Unmarshal(body, &counts)
			var open int64
			for _, n := range counts.Statuses {
				open += n
			}
			if open != 1 {
				t.Errorf("queue counts %+v, want the city's one case", counts)
			}
			var stats StatsResponse
			period := url.Values{"group_by": {"department"}, "from": {h.now.Add(-time.Hour).UTC().Format(time.RFC3339)}, "to": {h.now.Add(time.Hour).UTC().Format(time.RFC3339)}}
			_, body = h.do("GET", "/v1/stats?"+period.Encode(), c.boss, nil, "")
			_ = json.Unmarshal(body, &stats)
			if stats.Total.Received != 1 {
				t.Errorf("stats received %d, want the city's one case: %s", stats.Total.Received, body)
			}
			for _, token := range []string{c.boss, c.handler} {
				if resp, body := h.do("GET", "/v1/cases/"+c.caseTheirs, token, nil, ""); resp.StatusCode != 404 {
					t.Errorf("the other city's case: %d %s, want 404", resp.StatusCode, body)
				}
				if resp, _ := h.do("GET", "/v1/cases/"+c.caseMine, token, nil, ""); resp.StatusCode != 200 {
					t.Errorf("own case: %d", resp.StatusCode)
				}
			}
			resp, body := h.json("POST", "/v1/cases/"+c.caseTheirs+"/actions", c.boss, ActionRequest{Action: "comment", Note: "not mine"})
			if resp.StatusCode != 404 {
				t.Errorf("acting on the other city's case: %d %s", resp.StatusCode, body)
			}

			// Open311: jurisdiction_id selects the city.
			q := url.Values{"jurisdiction_id": {c.id}}
			_, body = h.o311("GET", "/open311/v2/requests.json", q)
			if !strings.Contains(string(body), c.caseMine) || strings.Contains(string(body), c.caseTheirs) {
				t.Errorf("Open311 requests of %s: %s", c.id, body)
			}
			_, body = h.o311("GET", "/open311/v2/services.json", q)
			var services []map[string]any
			_ = json.Unmarshal(body, &services)
			want := map[string]int{"testville": 3, "otherville": 1}[c.id]
			if len(services) != want {
				t.Errorf("Open311 services of %s: %d, want %d: %s", c.id, len(services), want, body)
			}
			if resp, body := h.o311("GET", "/open311/v2/requests/"+c.caseTheirs+".json", q); resp.StatusCode != 404 {
				t.Errorf("Open311 request of the other city through %s: %d %s", c.id, resp.StatusCode, body)
			}
		})
	}
}
