package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/city-eyes/cityeyes/internal/testenv"
)

// cityText is the administrator's city's whole configuration as the API shows it, to check
// that a refused change left nothing behind.
func (h *harness) cityText(token string) string {
	h.t.Helper()
	resp, body := h.do("GET", "/v1/admin/config", token, nil, "")
	if resp.StatusCode != 200 {
		h.t.Fatalf("config: %d %s", resp.StatusCode, body)
	}
	return string(body)
}

func feature(id, coords string) map[string]any {
	var c any
	if err := json.Unmarshal([]byte(coords), &c); err != nil {
		panic(err)
	}
	return map[string]any{"type": "Feature", "id": id, "properties": map[string]any{"name": strings.ToUpper(id)},
		"geometry": map[string]any{"type": "Polygon", "coordinates": c}}
}

func collection(fs ...map[string]any) map[string]any {
	return map[string]any{"type": "FeatureCollection", "features": fs}
}

const (
	westSquare = "[[[-1, 0], [0, 0], [0, 1], [-1, 1], [-1, 0]]]"
	eastSquare = "[[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]"
)

// TestAdminBadInputIsRefusedWhole: every bad input of issue 8 sent through the admin API is
// refused with 422 naming the entry or feature, and the city's configuration is as before.
func TestAdminBadInputIsRefusedWhole(t *testing.T) {
	h := newHarness(t)
	testenv.Apply(t, h.db, testenv.OtherCityYAML)
	admin := h.adminToken()
	tests := []struct {
		name, method, path string
		body               any
		status             int
		want               string
	}{
		{"negative SLA", "POST", "/v1/admin/categories", map[string]any{"code": "bins", "name": "Bins", "group": "Streets", "sla_hours": -3},
			422, "categories[3] (bins): sla_hours -3 is negative"},
		{"rule naming an unknown department", "PUT", "/v1/admin/routing/tree/west", RuleBody{Department: "NOPE"},
			422, `routing[1] (tree in west): department "NOPE" is not one of the departments`},
		{"rules naming an unknown department", "PUT", "/v1/admin/routing", []RuleBody{{Category: "pothole", Area: "east", Department: "PARKS"}, {Category: "tree", Area: "east", Department: "GHOSTS"}},
			422, `routing[1] (tree in east): department "GHOSTS"`},
		{"self-intersecting polygon", "PUT", "/v1/admin/areas", collection(feature("west", westSquare), feature("east", "[[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]")),
			422, "areas: feature 1 (east): self-intersecting"},
		{"unclosed polygon", "POST", "/v1/admin/areas", collection(feature("north", "[[[0, 1], [1, 1], [1, 2], [0, 2]]]")),
			422, "areas: feature 2 (north): polygon 0 ring 0 is not closed"},
		{"area overlapping another city", "POST", "/v1/admin/areas", collection(feature("tuscany", "[[[11.5, 43.5], [13, 43.5], [13, 45], [11.5, 45], [11.5, 43.5]]]")),
			422, "jurisdiction testville overlaps jurisdiction otherville: area tuscany of testville and area centre of otherville share ground"},
		{"removing an area a rule names", "PUT", "/v1/admin/areas", collection(feature("west", westSquare)),
			422, `routing[0] (pothole in east): area "east" is not one of the areas`},
		{"bad time zone", "PATCH", "/v1/admin/settings", map[string]any{"timezone": "Mars/Olympus", "name": "Renamed"},
			422, `jurisdiction.timezone "Mars/Olympus"`},
		{"unknown triage desk", "PATCH", "/v1/admin/settings", map[string]any{"triage_department": "NOWHERE"},
			422, `triage_department "NOWHERE"`},
		{"department code twice", "POST", "/v1/admin/departments", DepartmentBody{Code: "ROADS", Name: "Roads again"},
			422, `departments[3]: code "ROADS" appears twice`},
		{"handler without a department", "POST", "/v1/admin/staff", map[string]any{"email": "new@test.example", "role": "handler", "password": "a-long-password"},
			422, "a handler needs a department"},
		{"retiring a category a rule names", "DELETE", "/v1/admin/categories/pothole", nil,
			422, `routing[0] (pothole in east): category "pothole" is not one of the categories`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.cityText(admin)
			var resp *http.Response
			var body []byte
			if tt.body != nil {
				resp, body = h.json(tt.method, tt.path, admin, tt.body)
			} else {
				resp, body = h.do(tt.method, tt.path, admin, nil, "")
			}
			var p Problem
			_ = json.Unmarshal(body, &p)
			if resp.StatusCode != tt.status || !strings.Contains(p.Detail, tt.want) {
				t.Fatalf("%d %s\nwant %d naming %q", resp.StatusCode, body, tt.status, tt.want)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("content type %q", ct)
			}
			if after := h.cityText(admin); after != before {
				t.Fatalf("a refused change left something:\n%s", cmp.Diff(before, after))
			}
		})
	}
}

// TestAdminChangesTakeEffect: changes through the admin API are what the configuration
// export shows, and a new area and rule place and route the next report.
func TestAdminChangesTakeEffect(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	testenv.Apply(t, h.db, testenv.OtherCityYAML)
	admin := h.adminToken()
	ok := func(status int, method, path string, body any) []byte {
		t.Helper()
		var resp *http.Response
		var b []byte
		if body != nil {
			resp, b = h.json(method, path, admin, body)
		} else {
			resp, b = h.do(method, path, admin, nil, "")
		}
		if resp.StatusCode != status {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return b
	}
	ok(201, "POST", "/v1/admin/departments", DepartmentBody{Code: "WATER", Name: "Water board"})
	ok(200, "PATCH", "/v1/admin/departments/WATER", DepartmentBody{Name: "Water and sewers"})
	ok(201, "POST", "/v1/admin/categories", map[string]any{"code": "leak", "name": "Water leak", "group": "Water", "department": "WATER", "sla_hours": 12,
		"attributes": []map[string]any{{"code": "gushing", "datatype": "singlevaluelist", "required": true, "description": "Is it gushing?", "values": []map[string]string{{"key": "y", "name": "Yes"}, {"key": "n", "name": "No"}}}}})
	areas := ok(200, "POST", "/v1/admin/areas", collection(feature("north", "[[[0, 1], [1, 1], [1, 2], [0, 2], [0, 1]]]")))
	if !strings.Contains(string(areas), `{"code":"north","name":"NORTH"}`) || !strings.Contains(string(areas), `"east"`) {
		t.Fatalf("areas after adding north: %s", areas)
	}
	ok(200, "PUT", "/v1/admin/routing/leak/north", RuleBody{Department: "ROADS"})
	ok(200, "PATCH", "/v1/admin/settings", map[string]any{"name": "Testville-on-Sea", "escalation_hours": 8,
		"calendar": map[string]any{"working_hours": []map[string]any{{"days": []string{"mon", "tue", "wed", "thu", "fri"}, "start": "09:00", "end": "17:00"}}}})
	var st Settings
	_ = json.Unmarshal(ok(200, "GET", "/v1/admin/settings", nil), &st)
	if st.Name != "Testville-on-Sea" || st.EscalationHours != 8 || st.Calendar == nil || st.TriageDepartment != "DESK" {
		t.Fatalf("settings: %+v", st)
	}

	// The export is what the API did, and applying it changes nothing.
	cfg, err := h.db.ExportCityConfig(ctx, "testville")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := h.db.ApplyCityConfig(ctx, cfg, h.now); err != nil || !res.Unchanged {
		t.Fatalf("applying the export after API changes: %+v %v", res, err)
	}

	// A process that reloads its index places a report in north, and the worker's routing
	// reads the new rule.
	idx, err := h.db.LoadAreaIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.cfgAreas(idx)
	citizen := h.citizen("device-admin-north")
	resp, body := h.json("POST", "/v1/reports", citizen, ReportJSON{Category: "leak", Description: "water everywhere", Lat: ptr(1.5), Lon: ptr(0.5),
		Attributes: map[string]any{"gushing": "y"}}, "Idempotency-Key", "north-1")
	if resp.StatusCode != 201 {
		t.Fatalf("report in north: %d %s", resp.StatusCode, body)
	}
	var r Report
	_ = json.Unmarshal(body, &r)
	h.route(r.ID)
	c, err := h.db.Case(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := h.db.DepartmentCode(ctx, *c.DepartmentID); code != "ROADS" {
		t.Fatalf("routed to %s, want ROADS by the new rule", code)
	}

	// Removing the rule: the next case goes to the category's default department.
	ok(204, "DELETE", "/v1/admin/routing/leak/north", nil)
	resp, body = h.json("POST", "/v1/reports", citizen, ReportJSON{Category: "leak", Description: "another leak", Lat: ptr(1.6), Lon: ptr(0.6),
		Attributes: map[string]any{"gushing": "n"}}, "Idempotency-Key", "north-2")
	_ = json.Unmarshal(body, &r)
	h.route(r.ID)
	c, _ = h.db.Case(ctx, r.ID)
	if code, _ := h.db.DepartmentCode(ctx, *c.DepartmentID); code != "WATER" {
		t.Fatalf("routed to %s, want WATER (the default) once the rule is gone", code)
	}

	// The other city's administrator sees and changes only their own city.
	other := h.staff("admin@other.example", "other-admin")
	_, body = h.do("GET", "/v1/admin/config", other, nil, "")
	if strings.Contains(string(body), "testville") || strings.Contains(string(body), "WATER") || !strings.Contains(string(body), "otherville") {
		t.Fatalf("another city's administrator sees: %s", body)
	}
	resp, body = h.json("PUT", "/v1/admin/routing/leak/north", other, RuleBody{Department: "ROADS"})
	if resp.StatusCode != 422 || !strings.Contains(string(body), `category \"leak\" is not one of the categories`) {
		t.Fatalf("another city's administrator routing testville's category: %d %s", resp.StatusCode, body)
	}
}
