package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
)

// The fuzz targets share one harness per target (per fuzzing process): building the city
// for every input would leave no time to fuzz. Each input points the harness at its own t,
// and checks what it wrote by counting rows and by the keys the store was asked to write.

// recordingStore remembers every key Put or Copy was asked for, so a refused request can be checked
// to have left none of its photos behind, however far their upload got.
type recordingStore struct {
	storage.Store
	mu   sync.Mutex
	keys []string
}

func (s *recordingStore) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (storage.Object, error) {
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.mu.Unlock()
	return s.Store.Put(ctx, key, r, size, contentType)
}

func (s *recordingStore) Copy(ctx context.Context, src storage.Object, dst string) (storage.Object, error) {
	s.mu.Lock()
	s.keys = append(s.keys, dst)
	s.mu.Unlock()
	return s.Store.Copy(ctx, src, dst)
}

// take returns the keys recorded since the last call and forgets them.
func (s *recordingStore) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys
	s.keys = nil
	return k
}

// newFuzzHarness is newHarness for a fuzz target: the same app over the same backends,
// built once for the whole target, with a store that records what it is asked to write.
// h.t is nil until an input sets it.
func newFuzzHarness(f *testing.F) (*harness, *recordingStore) {
	f.Helper()
	db := testenv.DB(f)
	testenv.City(f, db)
	store, files := testenv.Store(f, "http://cityeyes.test")
	rec := &recordingStore{Store: store}
	idx, err := db.LoadAreaIndex(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	h := &harness{db: db, store: rec, spec: loadSpec(f), now: time.Now()}
	h.areas.Store(idx)
	h.app = New(Config{DB: db, Store: rec, Files: files, Areas: h.areas.Load,
		JWTSecret: testenv.Secret, Now: func() time.Time { return h.now }, MaxPhotoBytes: testPhotoLimit,
		Checks: map[string]func(context.Context) error{"database": db.Ping, "storage": store.Ping}})
	return h, rec
}

// fuzzTables are the tables a request that files something writes to.
var fuzzTables = []string{"cases", "case_events", "media", "outbox", "idempotency_keys", "open311_requests", "users"}

func (h *harness) rowCounts() map[string]int64 {
	h.t.Helper()
	out := map[string]int64{}
	for _, table := range fuzzTables {
		var n int64
		if err := h.db.SQL().QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			h.t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// wroteNothing fails the test if a request changed any row count or left an object under a
// key it had the store write.
func (h *harness) wroteNothing(what string, before map[string]int64, keys []string) {
	h.t.Helper()
	after := h.rowCounts()
	for _, table := range fuzzTables {
		if after[table] != before[table] {
			h.t.Fatalf("%s: %s went from %d to %d rows", what, table, before[table], after[table])
		}
	}
	for _, k := range keys {
		if _, err := h.store.Stat(context.Background(), k); !errors.Is(err, storage.ErrNotFound) {
			h.t.Fatalf("%s: photo object %s was left behind (stat: %v)", what, k, err)
		}
	}
}

// storedAsText fails the test if what a request filed as case id holds text PostgreSQL
// cannot store (invalid UTF-8, NUL, or NUL escaped in JSON): the embedded SQLite takes
// anything, so this is how an embedded run finds what would fail on the real database.
func (h *harness) storedAsText(id string) {
	h.t.Helper()
	arg := "?"
	if h.db.Dialect() == models.Postgres {
		arg = "$1"
	}
	reporter := "(SELECT reporter_id FROM cases WHERE id = " + arg + ")"
	for _, q := range []string{
		"SELECT * FROM cases WHERE id = " + arg,
		"SELECT * FROM case_events WHERE case_id = " + arg,
		"SELECT * FROM media WHERE case_id = " + arg,
		"SELECT * FROM open311_requests WHERE case_id = " + arg,
		"SELECT * FROM users WHERE id = " + reporter,
		"SELECT * FROM open311_contacts WHERE user_id = " + reporter,
	} {
		if bad := badText(h.db, q, id); bad != "" {
			h.t.Fatalf("%s: %s, which PostgreSQL cannot store", q, bad)
		}
	}
}

// badText runs q and describes the first text column value of its rows that is not valid
// UTF-8, has a NUL, or has a NUL escaped in JSON; "" when there is none.
func badText(db *models.DB, q string, args ...any) string {
	rows, err := db.SQL().Query(q, args...)
	if err != nil {
		return fmt.Sprintf("query failed: %v", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Sprintf("scan failed: %v", err)
		}
		for i, v := range vals {
			var text string
			switch v := v.(type) {
			case string:
				text = v
			case []byte:
				text = string(v)
			default:
				continue
			}
			if !utf8.ValidString(text) || strings.ContainsRune(text, 0) || strings.Contains(text, `\u0000`) {
				return fmt.Sprintf("column %s holds %q", cols[i], text)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Sprintf("reading rows failed: %v", err)
	}
	return ""
}

// sendable reports whether s can be sent as an HTTP header value at all (no control
// characters but tab); a client cannot send anything else, so neither does the fuzzer.
func sendable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// tinyImage encodes a small picture as JPEG or PNG, for seeds the mutator can work on.
func tinyImage(t testing.TB, w, h int, asPNG bool) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x * 50), uint8(y * 50), 90, 255})
		}
	}
	var buf bytes.Buffer
	var err error
	if asPNG {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 40})
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// formWith is form with a fixed boundary, so that seeds are the same on every run.
func formWith(boundary string, parts ...part) []byte {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.SetBoundary(boundary); err != nil {
		panic(err)
	}
	for _, p := range parts {
		if p.filename != "" {
			fw, _ := w.CreateFormFile(p.name, p.filename)
			_, _ = fw.Write(p.data)
		} else {
			_ = w.WriteField(p.name, string(p.data))
		}
	}
	_ = w.Close()
	return buf.Bytes()
}

// FuzzReportIntake posts arbitrary bodies to POST /v1/reports through the real app as a
// signed-in citizen: multipart bodies (the raw bytes and the boundary the Content-Type
// names) and JSON bodies. Whatever comes in: never a 5xx nor a panic; every answer is the
// one openapi.yaml describes; an error is problem+json whose status is the response's; and
// a refused report leaves nothing behind, not a row and not a photo.
func FuzzReportIntake(f *testing.F) {
	h, rec := newFuzzHarness(f)
	const b = "fuzzboundary"
	jpg, pngImg := tinyImage(f, 4, 3, false), tinyImage(f, 3, 4, true)
	lat, lon := fmt.Sprint(testenv.WestLat), fmt.Sprint(testenv.WestLon)
	for _, parts := range [][]part{
		goodReport(),
		goodReport(photo(jpg)),
		goodReport(photo(pngImg), photo(jpg), field("attr.width_cm", "35"), field("address", "1 High Street")),
		{field("category", "pothole"), field("lat", lat), field("lon", lon), field("attr.depth", "shallow"), field("attr.depth", "deep"), photo(jpg)},
		{field("category", "tree"), field("lat", "0.5"), field("lon", "0.5"), field("description", "down"), field("attr.x", "1")},
		{field("category", "other"), field("lat", "1e3"), field("lon", "NaN"), field("description", "\xff\xfe")},
		goodReport(field("attr.width_cm", "1e999"), field("description", strings.Repeat("é", 50))),
		goodReport(photo(nil)),
		goodReport(photo([]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"))),
		goodReport(photo(jpg[:len(jpg)/2])),
		{field("", "nameless"), photo([]byte("GIF89a\x01\x00\x01\x00"))},
	} {
		f.Add(false, b, formWith(b, parts...))
	}
	f.Add(false, `"quoted; boundary"`, []byte("--quoted; boundary\r\nContent-Disposition: form-data; name=\"category\"\r\n\r\npothole\r\n--quoted; boundary--\r\n"))
	f.Add(false, "x", []byte("--x\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.jpg\"\r\n\r\n\xff\xd8\xff"))
	f.Add(false, "", []byte(""))
	for _, s := range []string{
		fmt.Sprintf(`{"category": "pothole", "description": "deep hole", "lat": %s, "lon": %s, "attributes": {"depth": "deep", "width_cm": 35}}`, lat, lon),
		fmt.Sprintf(`{"category": "pothole", "lat": %s, "lon": %s, "attributes": {"depth": "deep"}, "media_ids": ["x"]}`, lat, lon),
		`{"category": "tree", "description": "down", "lat": 0.5, "lon": 0.5, "address": "Park Lane"}`,
		`{"category": "pothole", "description": "x", "lat": 90.0000001, "lon": -180, "attributes": {"depth": ["deep"]}}`,
		`{"category": 1, "lat": "0.5", "lon": null, "attributes": []}`,
		`{"lat": 1e400}`, `[]`, `null`, `{`, ``, `{"description": "\u0000\ud800"}`,
	} {
		f.Add(true, "", []byte(s))
	}

	var token string
	f.Fuzz(func(t *testing.T, asJSON bool, boundary string, body []byte) {
		h.t = t
		if token == "" {
			token = h.citizen("fuzz-intake-device")
		}
		ctype := "application/json"
		if !asJSON {
			ctype = "multipart/form-data; boundary=" + boundary
		}
		if !sendable(ctype) {
			return
		}
		before := h.rowCounts()
		rec.take()
		resp, data := h.do("POST", "/v1/reports", token, body, ctype, "Idempotency-Key", models.NewID())
		keys := rec.take()
		if resp.StatusCode >= 500 {
			t.Fatalf("%d: %s", resp.StatusCode, data)
		}
		if resp.StatusCode < 300 {
			var r Report
			if err := json.Unmarshal(data, &r); err != nil || r.ID == "" || resp.Header.Get("Location") != "/v1/reports/"+r.ID {
				t.Fatalf("%d without a report: %v %s", resp.StatusCode, err, data)
			}
			if after := h.rowCounts(); after["cases"] != before["cases"]+1 {
				t.Fatalf("%d, but cases went from %d to %d", resp.StatusCode, before["cases"], after["cases"])
			}
			h.storedAsText(r.ID)
			return
		}
		checkProblem(t, resp, data)
		h.wroteNothing(fmt.Sprintf("refused with %d", resp.StatusCode), before, keys)
	})
}

// checkProblem checks an error response: problem+json, with the response's status.
func checkProblem(t *testing.T, resp *http.Response, data []byte) {
	t.Helper()
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/problem+json" {
		t.Fatalf("%d with Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
	var p Problem
	if err := json.Unmarshal(data, &p); err != nil || p.Status != resp.StatusCode || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Fatalf("%d with a problem that is not one: %v %s", resp.StatusCode, err, data)
	}
}

// queryEscape makes arbitrary bytes a query string a client can send: the bytes a
// request line cannot carry are percent-encoded, everything else is left as it is.
func queryEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c == 0x7f || c == '#':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// FuzzOpen311Requests sends arbitrary parameters to the Open311 requests resource, as an
// Open311 client would: GET requests.{json,xml} with a query string, and POST with an
// url-encoded or a multipart body (and a query string). Whatever comes in: never a 5xx nor a
// panic, and no failure of ours disguised as the specification's 400; every error is the
// specification's error body in the format the path asks for (never problem+json), with the
// response's status, 400, 403 or 404; every success matches its GeoReport schema; and a
// refused POST, or any GET, leaves nothing behind.
func FuzzOpen311Requests(f *testing.F) {
	h, rec := newFuzzHarness(f)
	good := goodRequest().Encode()
	for _, s := range []string{
		"", "service_code=pothole", "status=open,closed&start_date=2026-01-01T00:00:00Z", "service_request_id=1,2,abc",
		"page=2&page_size=1", "jurisdiction_id=testville&status=OPEN", "start_date=2026-01-31T14:00:00 01:00&end_date=2026-02-01",
		"jurisdiction_id=nowhere", "page_size=0&page=-1", "end_date=9999-12-31T23:59:59Z", "service_code=%zz",
	} {
		f.Add(uint8(0), true, s, []byte(nil))
		f.Add(uint8(0), false, s, []byte(nil))
	}
	for _, s := range []string{
		good,
		goodRequest("lat", "", "long", "", "attribute[width_cm]", "").Encode(),
		goodRequest("attribute[depth][]", "deep", "attribute[depth]", "").Encode(),
		goodRequest("attribute[width_cm]", "NaN").Encode(),
		goodRequest("email", "not an address", "media_url", "ftp://x").Encode(),
		goodRequest("api_key", "wrong").Encode(),
		goodRequest("lat", "0.5", "long", "0.5").Encode(),
		goodRequest("jurisdiction_id", "nowhere").Encode(),
		goodRequest("description", strings.Repeat("x", 4001)).Encode(),
		"api_key=" + testKey + "&service_code=tree&address_id=7",
		"a=%zz&b",
	} {
		f.Add(uint8(1), true, "", []byte(s))
		f.Add(uint8(1), false, "", []byte(s))
	}
	f.Add(uint8(1), true, "api_key="+testKey+"&jurisdiction_id=testville", []byte("service_code=pothole&lat=0.5&long=-0.5&attribute[depth]=deep"))
	const b = "fuzzboundary"
	jpg := tinyImage(f, 3, 3, false)
	f.Add(uint8(2), true, "api_key="+testKey, formWith(b, field("service_code", "pothole"), field("lat", "0.5"), field("long", "-0.5"),
		field("attribute[depth]", "deep"), part{name: "media", filename: "a.jpg", data: jpg}))
	f.Add(uint8(2), false, "", formWith(b, part{name: "media", filename: "a.jpg", data: jpg}, field("api_key", testKey)))
	f.Add(uint8(2), false, "", formWith(b, field("api_key", testKey), part{name: "media[]", filename: "a.png", data: []byte("\x89PNG\r\n\x1a\n")}))
	f.Add(uint8(3), false, good, []byte(nil))

	f.Fuzz(func(t *testing.T, mode uint8, asJSON bool, query string, body []byte) {
		h.t = t
		format := "xml"
		if asJSON {
			format = "json"
		}
		method, ctype := http.MethodPost, ""
		switch mode % 4 {
		case 0:
			method, body = http.MethodGet, nil
		case 1:
			ctype = "application/x-www-form-urlencoded"
		case 2:
			ctype = "multipart/form-data; boundary=" + b
		case 3: // parameters in the query string alone, as some clients send them
		}
		req := httptest.NewRequest(method, "/open311/v2/requests."+format, bytes.NewReader(body))
		req.URL.RawQuery = queryEscape(query)
		req.RequestURI = req.URL.RequestURI()
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		before := h.rowCounts()
		rec.take()
		resp, err := h.app.Test(req, -1)
		if err != nil {
			t.Fatalf("%s %s: %v", method, req.RequestURI, err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		keys := rec.take()
		what := fmt.Sprintf("%s %s -> %d", method, req.RequestURI, resp.StatusCode)

		if resp.StatusCode == http.StatusOK {
			var v any
			if format == "json" {
				schema := "requests"
				if method == http.MethodPost {
					schema = "request-created"
				}
				v = checkOpen311JSON(t, resp, data, schema)
			} else {
				if root, err := parseXMLTree(data); err != nil || root.name != "service_requests" {
					t.Fatalf("%s: not a service_requests list: %v\n%s", what, err, data)
				}
				v = checkOpen311XML(t, resp, data)
			}
			if method == http.MethodGet {
				h.wroteNothing(what, before, keys)
				return
			}
			created, _ := v.([]any)
			if len(created) != 1 {
				t.Fatalf("%s: not one request created: %s", what, data)
			}
			id, _ := created[0].(map[string]any)["service_request_id"].(string)
			h.storedAsText(id)
			return
		}
		switch resp.StatusCode {
		case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound:
		default:
			t.Fatalf("%s: not a status of the specification's errors: %s", what, data)
		}
		var errs any
		if format == "json" {
			errs = checkOpen311JSON(t, resp, data, "errors")
		} else {
			errs = checkOpen311XML(t, resp, data)
		}
		list, _ := errs.([]any)
		if len(list) == 0 {
			t.Fatalf("%s: no errors in the error body: %s", what, data)
		}
		for _, e := range list {
			m, _ := e.(map[string]any)
			code := fmt.Sprint(m["code"])
			desc, _ := m["description"].(string)
			if code != strconv.Itoa(resp.StatusCode) || desc == "" {
				t.Fatalf("%s: error %v does not say its status and what is wrong", what, e)
			}
			if strings.Contains(desc, "on our side") || strings.Contains(desc, "briefly unavailable") {
				t.Fatalf("%s: a failure of ours, answered as the specification's 400: %s", what, data)
			}
		}
		h.wroteNothing(what, before, keys)
	})
}
