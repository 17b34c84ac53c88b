package models_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
)

// lineOf is the 1-based line of the first occurrence of sub in text.
func lineOf(t *testing.T, text, sub string) int {
	t.Helper()
	i := strings.Index(text, sub)
	if i < 0 {
		t.Fatalf("%q not in the text", sub)
	}
	return strings.Count(text[:i], "\n") + 1
}

// snapshot is what a city's configuration looks like in the database, to show that a refused
// configuration left nothing behind.
func snapshot(t *testing.T, db *models.DB) string {
	t.Helper()
	js, err := db.Jurisdictions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, j := range js {
		cfg, err := db.ExportCityConfig(context.Background(), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		y, err := models.MarshalCityConfigYAML(cfg)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s\n%s", j.ID, j.ConfigHash, y)
	}
	return b.String()
}

// TestCityConfigBadInputNamesTheLine: each bad input of issue 8 is refused with the line (or
// the GeoJSON feature) it is on, and a change carrying it applies nothing, not even its good
// parts.
func TestCityConfigBadInputNamesTheLine(t *testing.T) {
	const bowTie = "[[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]"
	tests := []struct {
		name, from, to string
		mark           string // text on the offending line of the changed file
		want           []string
	}{
		{"routing rule naming an unknown department", "{category: pothole, area: east, department: PARKS}", "{category: pothole, area: east, department: NOPE}",
			"department: NOPE", []string{`routing[0] (pothole in east): department "NOPE" is not one of the departments`}},
		{"negative SLA", "sla_hours: 48", "sla_hours: -5", "sla_hours: -5", []string{"categories[0] (pothole): sla_hours -5 is negative"}},
		{"handler without a department", "role: handler, department: PARKS, ", "role: handler, ", "parks@test.example",
			[]string{"staff[1] (parks@test.example): a handler needs a department"}},
		{"self-intersecting polygon", "[[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]", bowTie, bowTie,
			[]string{"areas: feature 1 (east): self-intersecting"}},
		{"unclosed polygon", "[[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]", "[[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0.5]]]", "[0, 0.5]",
			[]string{"areas: feature 1 (east): polygon 0 ring 0 is not closed"}},
		{"self-intersecting boundary", "timezone: Europe/London}", "timezone: Europe/London,\n  boundary: {type: Polygon, coordinates: " + bowTie + "}}", "boundary:",
			[]string{"jurisdiction.boundary: self-intersecting"}},
		{"two rules for one category and area", "routing:\n", "routing:\n  - {category: pothole, area: east, department: ROADS}\n", "department: PARKS}",
			[]string{"routing[1] (pothole in east): routing[0] already routes pothole in east"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db := testenv.DB(t)
			testenv.City(t, db)
			before := snapshot(t, db)
			// The change also renames a department: a good part that must not be applied either.
			y := strings.Replace(testenv.CityYAML, tt.from, tt.to, 1)
			y = strings.Replace(y, "name: Triage desk", "name: Front desk", 1)
			if !strings.Contains(y, tt.to) || !strings.Contains(y, "Front desk") {
				t.Fatalf("the test's replacement of %q did not apply", tt.from)
			}
			_, err := models.ParseCityConfig([]byte(y), nil)
			if !errors.Is(err, models.ErrInvalid) {
				t.Fatalf("got %v, want an invalid-config error", err)
			}
			line := lineOf(t, y, tt.mark)
			for _, w := range tt.want {
				if want := fmt.Sprintf("line %d: %s", line, w); !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not say %q", err, want)
				}
			}
			if got := snapshot(t, db); got != before {
				t.Fatalf("the database changed:\n%s", cmp.Diff(before, got))
			}
			_ = ctx
		})
	}
}

// TestCityConfigBadFeatureInAreasFile: a bad polygon in a separate areas file is named by the
// file, its line, the feature's index and its id.
func TestCityConfigBadFeatureInAreasFile(t *testing.T) {
	geo := `{"type": "FeatureCollection", "features": [
  {"type": "Feature", "id": "north", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[[0, 1], [1, 1], [1, 2], [0, 2], [0, 1]]]}},
  {"type": "Feature", "properties": {"code": "bowtie"},
   "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}}
]}`
	y := strings.Replace(testenv.CityYAML, "areas:\n", "areas: zones/areas.geojson\nx_areas:\n", 1)
	y = y[:strings.Index(y, "x_areas:")] + y[strings.Index(y, "departments:"):]
	y = strings.Replace(y, "routing:\n  - {category: pothole, area: east, department: PARKS}\n", "", 1)
	read := func(name string) ([]byte, error) {
		if name != "zones/areas.geojson" {
			return nil, fmt.Errorf("no file %s", name)
		}
		return []byte(geo), nil
	}
	_, err := models.ParseCityConfig([]byte(y), read)
	want := "zones/areas.geojson line 4: areas: feature 1 (bowtie): self-intersecting"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
	if _, err := models.ParseCityConfig([]byte(y), func(string) ([]byte, error) {
		return []byte(strings.Replace(geo, "[[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]", "[[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]", 1)), nil
	}); err != nil {
		t.Fatalf("the mended file is refused: %v", err)
	}
}

// overlapCity is a third city whose one area covers part of testville's east area.
const overlapCity = `
jurisdiction: {id: overlapton, name: Overlapton, timezone: Europe/Paris}
areas:
  type: FeatureCollection
  features:
    - {type: Feature, id: middle, properties: {name: Middle}, geometry: {type: Polygon, coordinates: [[[0.5, 0.5], [2, 0.5], [2, 2], [0.5, 2], [0.5, 0.5]]]}}
departments: [{code: ALL, name: Everything}]
triage_department: ALL
categories: [{code: other, name: Other, group: Other, department: ALL, sla_hours: 24}]
staff: [{email: admin@overlapton.example, name: Admin, role: admin, password: overlap-pass}]
`

// TestOverlappingCitiesAreRefused: a point may select one city only, so a second city whose
// ground overlaps the first's is refused when applied, naming both, and nothing of it stays.
// Cities that only touch along a border are fine.
func TestOverlappingCitiesAreRefused(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	testenv.City(t, db)
	before := snapshot(t, db)
	cfg, err := models.ParseCityConfig([]byte(overlapCity), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ApplyCityConfig(ctx, cfg, time.Now())
	for _, want := range []string{"jurisdiction overlapton overlaps jurisdiction testville", "area middle of overlapton", "area east of testville"} {
		if !errors.Is(err, models.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want an invalid-config error saying %q", err, want)
		}
	}
	if got := snapshot(t, db); got != before {
		t.Fatalf("the refused city left something behind:\n%s", cmp.Diff(before, got))
	}
	if _, err := db.StaffByEmail(ctx, "admin@overlapton.example"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("the refused city's staff: %v", err)
	}

	// Moved east until it only touches testville along lon 1: accepted.
	touching := strings.ReplaceAll(overlapCity, "[[[0.5, 0.5], [2, 0.5], [2, 2], [0.5, 2], [0.5, 0.5]]]", "[[[1, 0.5], [2, 0.5], [2, 2], [1, 2], [1, 0.5]]]")
	testenv.Apply(t, db, touching)
	// And a city with a boundary is compared by its boundary: one over testville's west is refused.
	bounded := strings.Replace(testenv.OtherCityYAML, "timezone: Asia/Shanghai}", "timezone: Asia/Shanghai, boundary: {type: Polygon, coordinates: [[[-0.5, 0.2], [-0.2, 0.2], [-0.2, 0.4], [-0.5, 0.4], [-0.5, 0.2]]]}}", 1)
	cfg, err = models.ParseCityConfig([]byte(bounded), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = db.ApplyCityConfig(ctx, cfg, time.Now()); err == nil || !strings.Contains(err.Error(), "boundary of otherville and area west of testville") {
		t.Fatalf("got %v, want the boundary named against testville's west area", err)
	}
}

// TestExportRoundTrip: applying an exported configuration changes nothing, and an export
// applied to an empty database exports the same text again.
func TestExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, city := range []struct{ name, yaml string }{
		{"testville", testenv.CityYAML},
		{"with boundary and calendar", strings.Replace(testenv.CityYAML, "timezone: Europe/London}",
			"timezone: Europe/London, boundary: {type: Polygon, coordinates: [[[-1, 0], [1, 0], [1, 1], [-1, 1], [-1, 0]]]},\n"+
				"  calendar: {working_hours: [{days: [mon, tue, wed, thu, fri], start: \"08:00\", end: \"17:00\"}], holidays: [\"2026-12-25\"]},\n"+
				"  confirm_window_hours: 72}", 1)},
	} {
		t.Run(city.name, func(t *testing.T) {
			db := testenv.DB(t)
			testenv.Apply(t, db, city.yaml)
			exported := export(t, db, "testville")

			cfg, err := models.ParseCityConfig(exported, nil)
			if err != nil {
				t.Fatalf("the export does not parse: %v\n%s", err, exported)
			}
			stamp, _ := db.ConfigStamp(ctx)
			res, err := db.ApplyCityConfig(ctx, cfg, time.Now())
			if err != nil || !res.Unchanged {
				t.Fatalf("applying the export: %+v, %v; want unchanged", res, err)
			}
			// The original file is still the same configuration too.
			orig, _ := models.ParseCityConfig([]byte(city.yaml), nil)
			if res, err := db.ApplyCityConfig(ctx, orig, time.Now()); err != nil || !res.Unchanged {
				t.Fatalf("applying the file again: %+v, %v; want unchanged", res, err)
			}
			if s, _ := db.ConfigStamp(ctx); s != stamp {
				t.Fatalf("config stamp moved on an unchanged apply: %s → %s", stamp, s)
			}

			fresh := testenv.DB(t)
			if _, err := fresh.ApplyCityConfig(ctx, cfg, time.Now()); err != nil {
				t.Fatal(err)
			}
			if again := export(t, fresh, "testville"); string(again) != string(exported) {
				t.Fatalf("export of the export differs:\n%s", cmp.Diff(string(exported), string(again)))
			}
		})
	}
}

func export(t *testing.T, db *models.DB, id string) []byte {
	t.Helper()
	cfg, err := db.ExportCityConfig(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	y, err := models.MarshalCityConfigYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// TestAreaLeftOutIsRetired: an area no longer in the configuration places no new report but
// keeps its id, and comes back with the same id when given again.
func TestAreaLeftOutIsRetired(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	testenv.City(t, db)
	east, err := db.AreaByCode(ctx, "testville", "east")
	if err != nil {
		t.Fatal(err)
	}
	noEast := strings.Replace(testenv.CityYAML, `    - type: Feature
      id: east
      properties: {name: East}
      geometry: {type: Polygon, coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
`, "", 1)
	noEast = strings.Replace(noEast, "  - {category: pothole, area: east, department: PARKS}\n", "", 1)
	testenv.Apply(t, db, noEast)
	idx, err := db.LoadAreaIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if loc, ok := idx.Locate(0.5, 0.5); ok {
		t.Fatalf("a retired area still places reports: %+v", loc)
	}
	testenv.City(t, db)
	idx, _ = db.LoadAreaIndex(ctx)
	if loc, ok := idx.Locate(0.5, 0.5); !ok || loc.AreaID == nil || *loc.AreaID != east.ID {
		t.Fatalf("east given again: %+v, want its old id %s", loc, east.ID)
	}
}

// TestUpdateCityConfigIsAllOrNothing: a change through UpdateCityConfig is checked like a
// file; a bad one changes nothing, a good one is what the export shows next.
func TestUpdateCityConfigIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	testenv.City(t, db)
	before := snapshot(t, db)
	_, err := db.UpdateCityConfig(ctx, "testville", func(cfg *models.CityConfig) error {
		cfg.Departments[0].Name = "Renamed"
		cfg.Routing = append(cfg.Routing, models.RoutingConfig{Category: "tree", Area: "west", Department: "NOPE"})
		return nil
	}, time.Now())
	if !errors.Is(err, models.ErrInvalid) || !strings.Contains(err.Error(), `routing[1] (tree in west): department "NOPE"`) {
		t.Fatalf("got %v", err)
	}
	if got := snapshot(t, db); got != before {
		t.Fatalf("a refused change left something:\n%s", cmp.Diff(before, got))
	}
	res, err := db.UpdateCityConfig(ctx, "testville", func(cfg *models.CityConfig) error {
		cfg.Routing = append(cfg.Routing, models.RoutingConfig{Category: "tree", Area: "west", Department: "ROADS"})
		return nil
	}, time.Now())
	if err != nil || res.Unchanged || res.Rules != 2 {
		t.Fatalf("good change: %+v, %v", res, err)
	}
	if res, err := db.UpdateCityConfig(ctx, "testville", func(*models.CityConfig) error { return nil }, time.Now()); err != nil || !res.Unchanged {
		t.Fatalf("no change: %+v, %v", res, err)
	}
}
