package models_test

import (
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
)

// FuzzCityConfig gives ParseCityConfig arbitrary configuration files (YAML or JSON) and an
// arbitrary GeoJSON file for the areas to name. It must never panic, and must give either a
// configuration or an ErrInvalid, never another error. A configuration it accepts must read
// the same again once written out as JSON (the digest that makes a re-apply a no-op is
// taken from that form), and must be able to place a report: areas, or a boundary.
func FuzzCityConfig(f *testing.F) {
	const squares = `{"type": "FeatureCollection", "features": [
  {"type": "Feature", "id": "a", "properties": {"name": "A"}, "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}},
  {"type": "Feature", "properties": {"code": "b"}, "geometry": {"type": "MultiPolygon", "coordinates": [[[[1, 0], [2, 0], [2, 1], [1, 0]]], [[[3, 3], [4, 3], [4, 4], [3, 3]]]]}}]}`
	f.Add([]byte(testenv.CityYAML), []byte(squares))
	f.Add([]byte(testenv.OtherCityYAML), []byte(""))
	// The city's areas from a file, in YAML and in JSON.
	fileCity := strings.Replace(testenv.CityYAML, "areas:\n  type: FeatureCollection", "areas: areas.geojson\nunused:\n  type: FeatureCollection", 1)
	fileCity = fileCity[:strings.Index(fileCity, "unused:")] + fileCity[strings.Index(fileCity, "departments:"):]
	fileCity = strings.Replace(fileCity, "{category: pothole, area: east, department: PARKS}", "{category: pothole, area: b, department: PARKS}", 1)
	f.Add([]byte(fileCity), []byte(squares))
	f.Add([]byte(`{"jurisdiction": {"id": "j", "name": "J", "timezone": "UTC", "boundary": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
  "calendar": {"working_hours": [{"days": ["mon", "fri"], "start": "08:00", "end": "24:00"}], "holidays": ["2026-12-25"]},
  "confirm_window_hours": 24, "escalation_hours": 1},
  "areas": "x.json", "departments": [{"code": "D", "name": "D"}], "triage_department": "D",
  "categories": [{"code": "c", "name": "C", "attributes": [{"code": "m", "datatype": "multivaluelist", "values": [{"key": "k", "name": "K"}]}]}],
  "staff": [{"email": "a@b", "name": "A", "role": "admin", "password": "p"}], "open311_api_keys": [{"key": "12345678", "name": "c"}]}`),
		[]byte(`{"type": "FeatureCollection", "features": [{"type": "Feature", "id": 7, "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}}]}`))
	f.Add([]byte("jurisdiction: {id: j, name: J, timezone: Local}\nareas: {type: FeatureCollection, features: [{type: Feature, geometry: null}]}\n"), []byte(""))
	f.Add([]byte("areas: ../../../etc/passwd\n"), []byte("not json"))
	f.Add([]byte("areas: [1, 2]\njurisdiction: 3\n"), []byte(""))
	if demo, err := os.ReadFile(filepath.Join("..", "cmd", "cityeyes", "demo", "nyc.yaml")); err == nil {
		f.Add(demo, []byte(squares))
	}

	f.Fuzz(func(t *testing.T, data, areas []byte) {
		readFile := func(name string) ([]byte, error) {
			if len(areas) == 0 {
				return nil, os.ErrNotExist
			}
			return areas, nil
		}
		cfg, err := models.ParseCityConfig(data, readFile)
		if err != nil {
			if cfg != nil {
				t.Fatalf("a configuration and an error: %v", err)
			}
			if !errors.Is(err, models.ErrInvalid) {
				t.Fatalf("refused with an error that is not ErrInvalid (%T): %v", err, err)
			}
			return
		}
		if cfg == nil {
			t.Fatal("no configuration and no error")
		}
		if cfg.AreaCount() == 0 && len(cfg.Jurisdiction.Boundary) == 0 {
			t.Fatal("accepted a city that no report could ever be placed in")
		}
		out, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("an accepted configuration cannot be written as JSON: %v", err)
		}
		again, err := models.ParseCityConfig(out, readFile)
		if err != nil {
			t.Fatalf("an accepted configuration, written as JSON, is refused: %v\n%s", err, out)
		}
		out2, _ := json.Marshal(again)
		if string(out) != string(out2) || again.AreaCount() != cfg.AreaCount() {
			t.Fatalf("an accepted configuration does not read the same again:\n%s\n%s", out, out2)
		}
	})
}

// everything is a category asking one question of each datatype, and required the same
// with every question required.
var everything, required = func() (*models.Category, *models.Category) {
	attrs := []models.Attribute{
		{Code: "s", Datatype: "string"},
		{Code: "t", Datatype: "text"},
		{Code: "n", Datatype: "number"},
		{Code: "d", Datatype: "datetime"},
		{Code: "one", Datatype: "singlevaluelist", Values: []models.AttributeValue{{Key: "a", Name: "A"}, {Key: "b", Name: "B"}}},
		{Code: "many", Datatype: "multivaluelist", Values: []models.AttributeValue{{Key: "x", Name: "X"}, {Key: "y", Name: "Y"}, {Key: "", Name: "Empty"}}},
	}
	b, _ := json.Marshal(attrs)
	for i := range attrs {
		attrs[i].Required = true
	}
	r, _ := json.Marshal(attrs)
	return &models.Category{ID: "everything", Code: "everything", Attributes: string(b)},
		&models.Category{ID: "required", Code: "required", Attributes: string(r)}
}()

// FuzzValidateAnswers gives ValidateAnswers arbitrary answers, read the two ways intake
// reads them (a JSON object, as a JSON report's attributes; form fields, as a multipart
// report's attr.* parts and Open311's attribute[...] parameters: one value a string, a
// repeated one a list), against the test city's pothole category and categories with a
// question of every datatype, optional and required. It must never panic; it refuses with
// ErrInvalid or returns answers to questions the category asks, every required one
// answered, each normalised to its datatype, storable as JSON (in PostgreSQL too), and
// valid again as stored (normalising twice changes nothing).
func FuzzValidateAnswers(f *testing.F) {
	db := testenv.DB(f)
	testenv.City(f, db)
	pothole, err := db.CategoryByCode(ctx, "testville", "pothole")
	if err != nil {
		f.Fatal(err)
	}
	cats := []*models.Category{pothole, everything, required}

	for _, s := range []string{
		`{"depth": "deep"}`, `{"depth": "shallow", "width_cm": 35}`, `{"depth": "deep", "width_cm": "12.5"}`,
		`{"depth": ["deep"]}`, `{"depth": 1}`, `{"width_cm": null}`, `{"depth": "deep", "other": true}`, `{}`, `[]`, `null`,
		`{"s": "x", "t": "long text", "n": -1e300, "d": "2026-01-31T14:00:00+01:00", "one": "a", "many": ["x", "y"]}`,
		`{"many": "x,y,", "d": "2026-01-31T14:00:00Z", "n": "1e400"}`,
		"depth=deep&width_cm=35", "depth=deep&depth=shallow", "depth=deep&width_cm=NaN", "depth=deep&width_cm=-Inf",
		"s=%FF%FE&t=&n=0x1p-2&d=2026-02-30T00:00:00Z&one=b&many=x&many=y", "many=&one=a%00",
		`{"s": "x", "t": "y", "n": 0, "d": "2026-01-31T14:00:00Z", "one": "b", "many": []}`,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		var forms []map[string]any
		var j map[string]any
		if json.Unmarshal(data, &j) == nil && j != nil {
			forms = append(forms, j)
		}
		if q, err := url.ParseQuery(string(data)); err == nil {
			m := map[string]any{}
			for k, vs := range q {
				if len(vs) == 1 {
					m[k] = vs[0]
				} else {
					m[k] = vs
				}
			}
			forms = append(forms, m)
		}
		for _, cat := range cats {
			for _, answers := range forms {
				checkAnswers(t, cat, answers)
			}
		}
	})
}

func checkAnswers(t *testing.T, cat *models.Category, answers map[string]any) {
	t.Helper()
	got, err := models.ValidateAnswers(cat, answers)
	if err != nil {
		if !errors.Is(err, models.ErrInvalid) {
			t.Fatalf("%s %v: refused with an error that is not ErrInvalid: %v", cat.Code, answers, err)
		}
		return
	}
	attrs := models.CategoryAttributes(cat)
	byCode := map[string]models.Attribute{}
	for _, a := range attrs {
		byCode[a.Code] = a
		if _, ok := got[a.Code]; a.Required && !ok {
			t.Fatalf("%s %v: required %q has no answer in %v", cat.Code, answers, a.Code, got)
		}
	}
	for code, v := range got {
		a, ok := byCode[code]
		if !ok {
			t.Fatalf("%s %v: an answer to %q, which it does not ask", cat.Code, answers, code)
		}
		keys := make([]string, len(a.Values))
		for i, val := range a.Values {
			keys[i] = val.Key
		}
		bad := func(why string) {
			t.Fatalf("%s %v: answer to %q (%s) is %#v: %s", cat.Code, answers, code, a.Datatype, v, why)
		}
		switch a.Datatype {
		case "number":
			n, ok := v.(float64)
			if !ok || math.IsNaN(n) || math.IsInf(n, 0) {
				bad("not a finite number")
			}
		case "datetime":
			s, ok := v.(string)
			if tm, err := time.Parse(time.RFC3339, s); !ok || err != nil || tm.Location() != time.UTC {
				bad("not an RFC 3339 time in UTC")
			}
		case "singlevaluelist":
			if s, ok := v.(string); !ok || !slices.Contains(keys, s) {
				bad("not one of the keys")
			}
		case "multivaluelist":
			l, ok := v.([]string)
			if !ok || len(l) == 0 {
				bad("not a list of keys")
			}
			for _, s := range l {
				if !slices.Contains(keys, s) {
					bad("not a list of keys")
				}
			}
		default:
			// Text PostgreSQL can store in JSON: UTF-8 without NUL.
			if s, ok := v.(string); !ok || len(s) > 4000 || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				bad("not UTF-8 text without NUL of at most 4000 bytes")
			}
		}
	}
	stored, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("%s %v: the answers %#v cannot be stored as JSON: %v", cat.Code, answers, got, err)
	}
	var back map[string]any
	if err := json.Unmarshal(stored, &back); err != nil {
		t.Fatal(err)
	}
	again, err := models.ValidateAnswers(cat, back)
	if err != nil {
		t.Fatalf("%s %v: the stored answers %s are refused: %v", cat.Code, answers, stored, err)
	}
	if b, _ := json.Marshal(again); string(b) != string(stored) && !reflect.DeepEqual(again, got) {
		t.Fatalf("%s %v: normalising twice changed the answers: %s, then %s", cat.Code, answers, stored, b)
	}
}
