package api

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/models"
)

// exportFixture submits reports whose text tries formula injection, routes them, and closes
// one.
func exportFixture(t *testing.T) (*harness, []Report) {
	h := newHarness(t)
	citizen := h.citizen("device-export-1")
	var out []Report
	for i, text := range []struct{ desc, addr string }{
		{"=HYPERLINK(\"http://evil.example\",\"click\")", "+44 20 7946 0000"},
		{"@SUM(A1:A9)", "-2+3"},
		{"\t=1+1", "\rcmd|' /C calc'!A0"},
		{"Schlagloch, \"tief\"; 坑洼\nzweite Zeile", "Hauptstraße 1"},
	} {
		h.now = h.now.Add(time.Second) // oldest first
		_, r, p := h.submit(citizen, "export-"+string(rune('a'+i)), goodReport()...)
		if r.ID == "" {
			t.Fatalf("submit: %+v", p)
		}
		// Stored as is: intake would trim the leading tab and carriage return.
		q := "UPDATE cases SET description = ?, address = ? WHERE id = ?"
		if h.db.Dialect() == models.Postgres {
			q = "UPDATE cases SET description = $1, address = $2 WHERE id = $3"
		}
		if _, err := h.db.SQL().Exec(q, text.desc, text.addr, r.ID); err != nil {
			t.Fatal(err)
		}
		h.route(r.ID)
		out = append(out, r)
	}
	// The citizen has an account: name and email are personal data.
	if _, err := h.db.SQL().Exec("UPDATE users SET name = 'Ada Reporter', email = 'ada@example.org' WHERE role = 'citizen'"); err != nil {
		t.Fatal(err)
	}
	boss := h.staff("boss@test.example", "boss-pass")
	resp, body := h.json("POST", "/v1/cases/"+out[3].ID+"/actions", boss, ActionRequest{Action: "close", Resolution: "invalid"})
	if resp.StatusCode != 200 {
		t.Fatalf("close: %d %s", resp.StatusCode, body)
	}
	return h, out
}

func readCSV(t *testing.T, body []byte) [][]string {
	t.Helper()
	rest, ok := bytes.CutPrefix(body, []byte("\ufeff"))
	if !ok {
		t.Fatalf("no UTF-8 byte-order mark: %q", body[:min(20, len(body))])
	}
	recs, err := csv.NewReader(bytes.NewReader(rest)).ReadAll()
	if err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return recs
}

// TestExportCSV: a header, a row per case oldest first, text that would run as a formula
// neutralised (numbers left as they are), filters, and personal data only when a supervisor
// asks.
func TestExportCSV(t *testing.T) {
	h, cases := exportFixture(t)
	boss := h.staff("boss@test.example", "boss-pass")
	resp, body := h.do("GET", "/v1/exports/cases.csv", boss, nil, "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "cases.csv") {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
	if !bytes.Contains(body, []byte("\r\n")) {
		t.Error("lines do not end in CRLF")
	}
	recs := readCSV(t, body)
	if len(recs) != 5 || strings.Join(recs[0], ",") != strings.Join(exportColumns, ",") {
		t.Fatalf("%d records, header %v", len(recs), recs[0])
	}
	col := map[string]int{}
	for i, c := range recs[0] {
		col[c] = i
	}
	want := []struct{ desc, addr string }{
		{"'=HYPERLINK(\"http://evil.example\",\"click\")", "'+44 20 7946 0000"},
		{"'@SUM(A1:A9)", "'-2+3"},
		{"'\t=1+1", "'cmd|' /C calc'!A0"}, // prefixed; a lone \r is not written in CRLF mode
		{"Schlagloch, \"tief\"; 坑洼\nzweite Zeile", "Hauptstraße 1"},
	}
	for i, w := range want {
		r := recs[i+1]
		if r[col["id"]] != cases[i].ID || r[col["description"]] != w.desc || r[col["address"]] != w.addr {
			t.Errorf("row %d: id %s description %q address %q, want %q %q", i, r[col["id"]], r[col["description"]], r[col["address"]], w.desc, w.addr)
		}
		// West: lon -0.5, a number we wrote, not text: no apostrophe.
		if r[col["lon"]] != "-0.5" || r[col["lat"]] != "0.5" || r[col["department"]] != "ROADS" || r[col["area"]] != "west" ||
			r[col["category"]] != "pothole" || r[col["dispatched_at"]] == "" || r[col["closed_at"]] != map[bool]string{true: r[col["closed_at"]], false: ""}[i == 3] {
			t.Errorf("row %d: %v", i, r)
		}
	}
	if recs[4][col["status"]] != "closed" || recs[4][col["resolution"]] != "invalid" || recs[4][col["closed_at"]] == "" {
		t.Errorf("closed row %v", recs[4])
	}
	if bytes.Contains(body, []byte("ada@example.org")) || bytes.Contains(body, []byte("Ada Reporter")) {
		t.Fatal("personal data without include=contact")
	}

	// Filters: open is every status but closed; status, category and area by code.
	for _, c := range []struct {
		query string
		rows  int
	}{
		{"status=open", 3}, {"status=closed", 1}, {"status=dispatched,closed", 4}, {"category=tree", 0},
		{"area=west&department=ROADS", 4}, {"area=east", 0}, {"from=2000-01-01&to=2000-01-02", 0},
	} {
		resp, body := h.do("GET", "/v1/exports/cases.csv?"+c.query, boss, nil, "")
		if got := len(readCSV(t, body)) - 1; resp.StatusCode != 200 || got != c.rows {
			t.Errorf("%s: %d, %d rows, want %d", c.query, resp.StatusCode, got, c.rows)
		}
	}

	// Contact details: the supervisor when asking; the administrator never.
	_, body = h.do("GET", "/v1/exports/cases.csv?include=contact", boss, nil, "")
	recs = readCSV(t, body)
	if n := len(recs[0]); recs[0][n-3] != "reporter_name" || recs[1][n-3] != "Ada Reporter" || recs[1][n-2] != "ada@example.org" {
		t.Fatalf("contact columns: %v %v", recs[0], recs[1])
	}
	resp, body = h.do("GET", "/v1/exports/cases.csv?include=contact", h.adminToken(), nil, "")
	if resp.StatusCode != 403 || !contains(string(body), "personal-data-forbidden") {
		t.Fatalf("administrator asking for contacts: %d %s", resp.StatusCode, body)
	}
	resp, body = h.do("GET", "/v1/exports/cases.csv", h.adminToken(), nil, "")
	if resp.StatusCode != 200 || len(readCSV(t, body)) != 5 || bytes.Contains(body, []byte("ada@example.org")) {
		t.Fatalf("administrator: %d %s", resp.StatusCode, body)
	}

	// Bad input.
	for _, c := range []struct{ query, typ string }{
		{"status=half-open", "invalid-status"}, {"department=NOPE", "unknown-department"},
		{"category=nope", "unknown-category"}, {"area=north", "unknown-area"}, {"include=everything", "invalid-include"},
		{"from=2026-06-07&to=2026-06-01", "invalid-period"}, {"from=soon", "invalid-period"},
	} {
		resp, body := h.do("GET", "/v1/exports/cases.csv?"+c.query, boss, nil, "")
		if resp.StatusCode != 422 || !contains(string(body), c.typ) {
			t.Errorf("%s: %d %s", c.query, resp.StatusCode, body)
		}
	}
	resp, _ = h.do("GET", "/v1/exports/cases.geojson?jurisdiction=otherville", boss, nil, "")
	if resp.StatusCode != 403 {
		t.Errorf("other city: %d", resp.StatusCode)
	}
}

// TestExportGeoJSON: a FeatureCollection of points in longitude, latitude order, with the
// case's figures as properties; status=open draws only what is open.
func TestExportGeoJSON(t *testing.T) {
	h, cases := exportFixture(t)
	boss := h.staff("boss@test.example", "boss-pass")
	resp, body := h.do("GET", "/v1/exports/cases.geojson?status=open", boss, nil, "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/geo+json" {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			Type     string `json:"type"`
			ID       string `json:"id"`
			Geometry struct {
				Type        string     `json:"type"`
				Coordinates [2]float64 `json:"coordinates"`
			} `json:"geometry"`
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(body, &fc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if fc.Type != "FeatureCollection" || len(fc.Features) != 3 {
		t.Fatalf("%s", body)
	}
	for i, f := range fc.Features {
		if f.Type != "Feature" || f.ID != cases[i].ID || f.Geometry.Type != "Point" || f.Geometry.Coordinates != [2]float64{-0.5, 0.5} ||
			f.Properties["status"] != string(models.StatusDispatched) || f.Properties["department"] != "ROADS" || f.Properties["closed_at"] != nil {
			t.Errorf("feature %d: %+v", i, f)
		}
		if _, ok := f.Properties["reporter_email"]; ok {
			t.Errorf("personal data without include=contact: %+v", f.Properties)
		}
	}
	// No case: an empty collection, still valid.
	_, body = h.do("GET", "/v1/exports/cases.geojson?area=east", boss, nil, "")
	if err := json.Unmarshal(body, &fc); err != nil || len(fc.Features) != 0 {
		t.Fatalf("%v %s", err, body)
	}
	_, body = h.do("GET", "/v1/exports/cases.geojson?include=contact&status=closed", boss, nil, "")
	if !contains(string(body), `"reporter_email":"ada@example.org"`) {
		t.Fatalf("contact: %s", body)
	}
}
