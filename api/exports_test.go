package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/city-eyes/cityeyes/internal/testenv"
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

// exportTexts are fields that CSV and JSON must escape, or leave alone, with care.
func exportTexts() []string {
	texts := []string{"", " ", "plain", `\.`, `\.x`, "a,b", `say "hi"`, "\"", "line\nbreak", "cr\rlf\r\n", "\r", "\n",
		" lead", "\tlead", "\u00a0nbsp", "\u0085nel", "\u3000ideographic", "trail ", "=1+1", "+44", "-2", "@SUM(A1)",
		"\t=1", "\r=1", "'quoted", "Hauptstraße", "坑洼", "\u2028\u2029", "ctl\x00\x01\x1f\x7f", "bad\xff\xfeutf8",
		"\xc3", "back\\slash", "<b>&amp;</b>", "emoji 🕳️"}
	// And random strings over the characters that matter, the same ones every run.
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", " ", ",", "\"", "\r", "\n", "\t", "=", "+", "-", "@", "\\", ".", "'", "é", "坑", "\u2028", "\xff", "\x01"}
	for range 2000 {
		var b strings.Builder
		for range rng.IntN(8) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		texts = append(texts, b.String())
	}
	return texts
}

// TestAppendCSVField: the export's CSV writer writes every field exactly as encoding/csv
// does (with UseCRLF), and neutralises exactly the text that would start a formula.
func TestAppendCSVField(t *testing.T) {
	for _, text := range exportTexts() {
		for _, safe := range []bool{false, true} {
			want := text
			if safe && text != "" && strings.ContainsRune("=+-@\t\r", rune(text[0])) {
				want = "'" + text
			}
			var sb strings.Builder
			w := csv.NewWriter(&sb)
			w.UseCRLF = true
			if err := w.Write([]string{want, "x"}); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			got := string(append(appendCSVField(nil, []byte(text), safe), ",x\r\n"...))
			if got != sb.String() {
				t.Errorf("%q (safe %v): %q, encoding/csv writes %q", text, safe, got, sb.String())
			}
		}
	}
}

// TestAppendJSON: strings and numbers of the GeoJSON export are valid JSON in UTF-8 that
// read back as encoding/json's own encoding does.
func TestAppendJSON(t *testing.T) {
	for _, text := range exportTexts() {
		got := appendJSONString(nil, []byte(text))
		want, _ := json.Marshal(text)
		var g, w string
		if !utf8.Valid(got) {
			t.Errorf("%q: %q is not UTF-8, which JSON must be", text, got)
		}
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%q: %s: %v", text, got, err)
		}
		if err := json.Unmarshal(want, &w); err != nil || g != w {
			t.Errorf("%q: %s reads back as %q, encoding/json's %s as %q", text, got, g, want, w)
		}
	}
	for _, f := range []float64{0, -0.5, 0.5, 40.6439502, -74.0151994, 1e-7, -1.5e-9, 123456789.125, 1e21, 180, -90} {
		want, _ := json.Marshal(f)
		if got := appendJSONFloat(nil, f); string(got) != string(want) {
			t.Errorf("%v: %s, encoding/json writes %s", f, got, want)
		}
	}
}

// BenchmarkExportCSV measures what an export costs per case, without HTTP: n cases of a
// city (CITYEYES_BENCH_EXPORT_CASES, default 20000) read from the database and written as
// CSV (or GeoJSON) to io.Discard, on the embedded SQLite or, with the environment of
// make servers, PostgreSQL. docs/benchmarks.md has figures.
func BenchmarkExportCSV(b *testing.B) { benchmarkExport(b, writeCSV) }

// BenchmarkExportGeoJSON is BenchmarkExportCSV's GeoJSON.
func BenchmarkExportGeoJSON(b *testing.B) { benchmarkExport(b, writeGeoJSON) }

func benchmarkExport(b *testing.B, write func(io.Writer, *models.ExportCursor, bool) error) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("CITYEYES_BENCH_EXPORT_CASES")); err == nil && v > 0 {
		n = v
	}
	db := testenv.DB(b)
	testenv.City(b, db)
	t0 := time.Now()
	seedExportCases(b, db, n)
	b.Logf("seeded %d cases in %v", n, time.Since(t0))
	ctx := context.Background()
	out := &countingWriter{}
	runs := 0
	for b.Loop() {
		runs++
		cur, err := db.ExportCases(ctx, models.ExportFilter{JurisdictionID: "testville"})
		if err != nil {
			b.Fatal(err)
		}
		if err := write(out, cur, false); err != nil {
			b.Fatal(err)
		}
		cur.Close()
	}
	if out.lines < int64(n*runs) {
		b.Fatalf("%d lines written for %d cases", out.lines, n*runs)
	}
	b.ReportMetric(float64(n*runs)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(out.bytes)/float64(n*runs), "B/row")
}

// countingWriter is io.Discard that counts.
type countingWriter struct{ bytes, lines int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.bytes += int64(len(p))
	w.lines += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

// seedExportCases writes n routed cases of testville, over a year, in multi-row INSERTs:
// half of them closed, some with text that CSV must quote or neutralise.
func seedExportCases(b *testing.B, db *models.DB, n int) {
	b.Helper()
	sqlDB := db.SQL()
	var catID, deptID, areaID string
	if err := sqlDB.QueryRow("SELECT id, department_id FROM categories WHERE code = 'pothole'").Scan(&catID, &deptID); err != nil {
		b.Fatal(err)
	}
	if err := sqlDB.QueryRow("SELECT id FROM areas WHERE code = 'west'").Scan(&areaID); err != nil {
		b.Fatal(err)
	}
	reporter := models.NewID()
	start := time.Now().UTC().AddDate(-1, 0, 0)
	if _, err := sqlDB.Exec("INSERT INTO users (id, role, created_at, updated_at) VALUES ($1, 'citizen', $2, $2)", reporter, start); err != nil {
		b.Fatal(err)
	}
	const cols = "id, number, jurisdiction_id, category_id, area_id, department_id, reporter_id, status, resolution, " +
		"description, lat, lon, address, due_at, dispatched_at, closed_at, attributes, supporters, created_at, updated_at, version"
	width := strings.Count(cols, ",") + 1
	tx, err := sqlDB.Begin()
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	descriptions := []string{"Deep pothole in the bus lane, about 30 cm across", "=HYPERLINK(\"x\")", "Schlagloch, \"tief\"; 坑洼"}
	for done := 0; done < n; {
		chunk := min(n-done, 25) // SQLite's driver binds $n parameters in time quadratic in their number
		var sb strings.Builder
		args := make([]any, 0, chunk*width)
		for i := range chunk {
			k := done + i
			at := start.Add(time.Duration(k) * 365 * 24 * time.Hour / time.Duration(n))
			status, resolution, closed := "dispatched", "", any(nil)
			if k%2 == 0 {
				status, resolution, closed = "closed", "fixed", at.Add(50*time.Hour)
			}
			if i > 0 {
				sb.WriteString(",")
			}
			sb.WriteString("(")
			for j := range width {
				if j > 0 {
					sb.WriteString(",")
				}
				fmt.Fprintf(&sb, "$%d", len(args)+j+1)
			}
			sb.WriteString(")")
			args = append(args, models.NewID(), fmt.Sprintf("TESTVILLE-E%07d", k), "testville", catID, areaID, deptID, reporter,
				status, resolution, descriptions[k%len(descriptions)], 0.5+float64(k%1000)/1e4, -0.5-float64(k%777)/1e4,
				"12 Main Street", at.Add(72*time.Hour), at.Add(time.Minute), closed, "{}", k%3, at, at, 1)
		}
		if _, err := tx.Exec("INSERT INTO cases ("+cols+") VALUES "+sb.String(), args...); err != nil {
			b.Fatalf("seed: %v", err)
		}
		done += chunk
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// TestExportUnrouted: a case not yet routed has no department: an empty CSV field and a
// null GeoJSON property, with its area's code and nothing else of it lost.
func TestExportUnrouted(t *testing.T) {
	h := newHarness(t)
	_, r, p := h.submit(h.citizen("device-export-2"), "export-unrouted", goodReport()...)
	if r.ID == "" {
		t.Fatalf("submit: %+v", p)
	}
	boss := h.staff("boss@test.example", "boss-pass")
	_, body := h.do("GET", "/v1/exports/cases.csv", boss, nil, "")
	recs := readCSV(t, body)
	if len(recs) != 2 {
		t.Fatalf("%d records: %s", len(recs), body)
	}
	row := map[string]string{}
	for i, c := range recs[0] {
		row[c] = recs[1][i]
	}
	if row["id"] != r.ID || row["status"] != "submitted" || row["department"] != "" || row["area"] != "west" ||
		row["category"] != "pothole" || row["dispatched_at"] != "" || row["description"] != "deep hole" || row["created_at"] == "" {
		t.Errorf("%v", row)
	}
	_, body = h.do("GET", "/v1/exports/cases.geojson", boss, nil, "")
	var fc struct {
		Features []struct {
			ID         string         `json:"id"`
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(body, &fc); err != nil || len(fc.Features) != 1 {
		t.Fatalf("%v: %s", err, body)
	}
	props := fc.Features[0].Properties
	if v, ok := props["department"]; !ok || v != nil || props["area"] != "west" || props["dispatched_at"] != nil ||
		props["priority"] != float64(0) || fc.Features[0].ID != r.ID {
		t.Errorf("%s", body)
	}
}
