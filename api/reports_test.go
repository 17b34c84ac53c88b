package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/city-eyes/cityeyes/internal/testenv"
)

// TestSubmitRefusesBadInput sends each kind of bad report: each is refused with a problem
// of the right status and type, and leaves no case and no photo behind.
func TestSubmitRefusesBadInput(t *testing.T) {
	corrupt := append([]byte{}, testenv.PhotoJPEG[:20]...)
	corrupt = append(corrupt, bytes.Repeat([]byte{0x00}, 4000)...)
	oversized := append(append([]byte{}, testenv.PhotoJPEG...), bytes.Repeat([]byte{0xAB}, testPhotoLimit)...)
	heic := append([]byte{0, 0, 0, 0x18}, []byte("ftypheic\x00\x00\x00\x00mif1heic")...)
	heic = append(heic, bytes.Repeat([]byte{1}, 600)...)
	many := goodReport()
	for range 7 {
		many = append(many, photo(testenv.PhotoJPEG))
	}
	withoutDepth := []part{field("category", "pothole"), field("description", "hole"), field("lat", "0.5"), field("lon", "-0.5"), photo(testenv.PhotoJPEG)}
	replace := func(name, value string) []part {
		ps := goodReport(photo(testenv.PhotoJPEG))
		for i, p := range ps {
			if p.name == name {
				ps[i] = field(name, value)
			}
		}
		return ps
	}
	tests := []struct {
		name   string
		body   []byte
		ctype  string
		status int
		typ    string
	}{
		{"malformed JSON", []byte(`{"category": "pothole", "lat": `), "application/json", 400, "malformed-json"},
		{"malformed multipart", []byte("--xyz\r\nContent-Disposition: form-data; name=\"category\"\r\n\r\npothole\r\n--xy"), "multipart/form-data; boundary=xyz", 400, "malformed-multipart"},
		{"plain text body", []byte("pothole at 5th"), "text/plain", 415, "unsupported-body"},
		{"missing lat", nil, "", 422, "invalid-location"},
		{"lat NaN", nil, "", 422, "invalid-location"},
		{"lat 91", nil, "", 422, "invalid-location"},
		{"lat text", nil, "", 422, "invalid-location"},
		{"outside every city", nil, "", 422, "outside-service-area"},
		{"unknown category", nil, "", 422, "unknown-category"},
		{"description too long", nil, "", 422, "description-too-long"},
		{"not an image", nil, "", 415, "unsupported-photo-type"},
		{"HEIC photo", nil, "", 415, "unsupported-photo-type"},
		{"corrupted photo", nil, "", 422, "corrupt-photo"},
		{"oversized photo", nil, "", 413, "photo-too-large"},
		{"too many photos", nil, "", 422, "too-many-photos"},
		{"required answer missing", nil, "", 422, "invalid-attribute"},
		{"answer not in the list", nil, "", 422, "invalid-attribute"},
		{"JSON with unknown media ids", []byte(`{"category":"pothole","lat":0.5,"lon":-0.5,"attributes":{"depth":"deep"},"media_ids":["x"]}`), "application/json", 422, "unknown-media"},
	}
	bodies := map[string][]part{
		"missing lat":             {field("category", "pothole"), field("lon", "-0.5"), field("attr.depth", "deep"), photo(testenv.PhotoJPEG)},
		"lat NaN":                 replace("lat", "NaN"),
		"lat 91":                  replace("lat", "91"),
		"lat text":                replace("lat", "north"),
		"outside every city":      replace("lat", "-45"),
		"unknown category":        replace("category", "dragon"),
		"description too long":    replace("description", strings.Repeat("é", 4001)),
		"not an image":            goodReport(photo([]byte("this is not a photo, just text\n"))),
		"HEIC photo":              goodReport(photo(heic)),
		"corrupted photo":         goodReport(photo(testenv.PhotoJPEG), photo(corrupt)),
		"oversized photo":         goodReport(photo(testenv.PhotoJPEG), photo(oversized)),
		"too many photos":         many,
		"required answer missing": withoutDepth,
		"answer not in the list":  replace("attr.depth", "bottomless"),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			token := h.citizen("device-bad-input")
			body, ctype := tt.body, tt.ctype
			if body == nil {
				body, ctype = form(bodies[tt.name]...)
			}
			resp, data := h.do("POST", "/v1/reports", token, body, ctype, "Idempotency-Key", "k-"+tt.name)
			var p Problem
			_ = json.Unmarshal(data, &p)
			if resp.StatusCode != tt.status || p.Type != "urn:cityeyes:problem:"+tt.typ || p.Detail == "" {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, data, tt.status, tt.typ)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			h.nothingWritten()
		})
	}
}

func TestSubmitNeedsIdempotencyKeyAndCitizen(t *testing.T) {
	h := newHarness(t)
	body, ctype := form(goodReport(photo(testenv.PhotoJPEG))...)
	citizen := h.citizen("device-keys")
	if resp, _ := h.do("POST", "/v1/reports", citizen, body, ctype); resp.StatusCode != 400 {
		t.Fatalf("without Idempotency-Key: %d, want 400", resp.StatusCode)
	}
	if resp, _ := h.do("POST", "/v1/reports", "", body, ctype, "Idempotency-Key", "k"); resp.StatusCode != 401 {
		t.Fatalf("without a token: %d, want 401", resp.StatusCode)
	}
	boss := h.staff("boss@test.example", "boss-pass")
	if resp, _ := h.do("POST", "/v1/reports", boss, body, ctype, "Idempotency-Key", "k"); resp.StatusCode != 403 {
		t.Fatalf("as a supervisor: %d, want 403", resp.StatusCode)
	}
	h.nothingWritten()
}

// TestIdempotentSubmit: a retry (even re-encoded with another multipart boundary) returns
// the first report and stores nothing more; other content under the same key is a 409.
func TestIdempotentSubmit(t *testing.T) {
	h := newHarness(t)
	token := h.citizen("device-idem")
	resp, first, _ := h.submit(token, "key-1", goodReport(photo(testenv.PhotoJPEG))...)
	if resp.StatusCode != 201 || first.Status != "submitted" || len(first.Photos) != 1 || first.Area == nil || *first.Area != "west" {
		t.Fatalf("first: %d %+v", resp.StatusCode, first)
	}
	resp, again, _ := h.submit(token, "key-1", goodReport(photo(testenv.PhotoJPEG))...)
	if resp.StatusCode != 201 || again.ID != first.ID || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %s, want the first report %s", resp.StatusCode, again.ID, first.ID)
	}
	if objs := testenv.Objects(t, h.store, "cases/"); len(objs) != 1 {
		t.Fatalf("objects after a retry: %v, want the one photo", objs)
	}
	resp, _, p := h.submit(token, "key-1", goodReport(photo(testenv.PhotoJPEG), field("address", "elsewhere"))...)
	if resp.StatusCode != 409 || !contains(p.Type, "idempotency-key-reused") {
		t.Fatalf("other content, same key: %d %+v", resp.StatusCode, p)
	}
	// Another citizen's key space is their own.
	other := h.citizen("device-idem-2")
	if resp, r, _ := h.submit(other, "key-1", goodReport()...); resp.StatusCode != 201 || r.ID == first.ID {
		t.Fatalf("another citizen's first use of the same key: %d %s", resp.StatusCode, r.ID)
	}
}

// TestReportViews: the reporter and the case's staff see the report in full; another
// citizen sees the public view; staff of another department are refused.
func TestReportViews(t *testing.T) {
	h := newHarness(t)
	owner := h.citizen("device-owner")
	_, r, _ := h.submit(owner, "views", goodReport(photo(testenv.PhotoJPEG))...)
	h.route(r.ID)
	h.json("POST", "/v1/cases/"+r.ID+"/actions", h.staff("roads@test.example", "roads-pass"), ActionRequest{Action: "comment", Note: "internal only"})
	tests := []struct {
		name       string
		token      string
		status     int
		attributes bool
		internal   bool
	}{
		{"reporter", owner, 200, true, false},
		{"another citizen", h.citizen("device-other"), 200, false, false},
		{"handler of the department", h.staff("roads@test.example", "roads-pass"), 200, true, true},
		{"handler of another department", h.staff("parks@test.example", "parks-pass"), 403, false, false},
		{"supervisor", h.staff("boss@test.example", "boss-pass"), 200, true, true},
		{"anonymous", "", 401, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, data := h.do("GET", "/v1/reports/"+r.ID, tt.token, nil, "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, data)
			}
			if tt.status != 200 {
				return
			}
			var got Report
			_ = json.Unmarshal(data, &got)
			if (got.Attributes != nil) != tt.attributes {
				t.Errorf("attributes shown: %v, want %v", got.Attributes != nil, tt.attributes)
			}
			internal := false
			for _, e := range got.Timeline {
				internal = internal || !e.Public
			}
			if internal != tt.internal {
				t.Errorf("internal events shown: %v, want %v", internal, tt.internal)
			}
			// No worker runs here, so the stripped versions do not exist yet: only staff get
			// a link, to the original.
			if len(got.Photos) != 1 || !got.Photos[0].Processing {
				t.Fatalf("photos %+v", got.Photos)
			}
			if ph := got.Photos[0]; (ph.URL != nil) != tt.internal || (ph.OriginalURL != nil) != tt.internal {
				t.Errorf("photo links for %s: url %v original %v", tt.name, ph.URL, ph.OriginalURL)
			}
		})
	}
	if resp, _ := h.do("GET", "/v1/reports/00000000-0000-4000-8000-000000000000", owner, nil, ""); resp.StatusCode != 404 {
		t.Fatalf("unknown report: %d", resp.StatusCode)
	}
	if resp, _ := h.do("GET", "/v1/reports/not-a-uuid", owner, nil, ""); resp.StatusCode != 404 {
		t.Fatalf("malformed id: %d", resp.StatusCode)
	}
}

func TestCategoriesForAPoint(t *testing.T) {
	h := newHarness(t)
	resp, data := h.do("GET", "/v1/categories?lat=0.5&lon=0.5", "", nil, "")
	var cl CategoryList
	_ = json.Unmarshal(data, &cl)
	if resp.StatusCode != 200 || cl.Jurisdiction.ID != "testville" || cl.Area == nil || *cl.Area != "east" || len(cl.Categories) != 3 {
		t.Fatalf("%d %s", resp.StatusCode, data)
	}
	for _, q := range []string{"lat=10&lon=10", "lat=abc&lon=1", "lon=1", "lat=95&lon=0"} {
		if resp, _ := h.do("GET", "/v1/categories?"+q, "", nil, ""); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d, want 422", q, resp.StatusCode)
		}
	}
}

// TestPositionFromThePhoto: a report without lat and lon whose photo carries GPS tags is
// placed where the photo was taken, and says so; without either, it is refused.
func TestPositionFromThePhoto(t *testing.T) {
	h := newHarness(t)
	testenv.Apply(t, h.db, testenv.OtherCityYAML)
	idx, err := h.db.LoadAreaIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h.cfgAreas(idx)
	token := h.citizen("device-gps")
	resp, r, _ := h.submit(token, "gps-1", field("category", "pothole"), field("description", "hole"), photo(testenv.PhotoJPEG))
	if resp.StatusCode != 201 || r.LocationSource != "photo_exif" || r.Area == nil || *r.Area != "centre" ||
		r.Lat < 43.467 || r.Lat > 43.468 || r.Lon < 11.885 || r.Lon > 11.886 {
		t.Fatalf("%d %+v", resp.StatusCode, r)
	}
	// The phone's position wins when it is sent.
	_, r, _ = h.submit(token, "gps-2", field("category", "pothole"), field("description", "hole"),
		field("lat", "43.5"), field("lon", "11.5"), photo(testenv.PhotoJPEG))
	if r.LocationSource != "device" || r.Lat != 43.5 {
		t.Fatalf("with a position sent: %+v", r)
	}
	// Sent after the photo, the phone's position wins too (the photo's was read, in case).
	_, r, _ = h.submit(token, "gps-4", field("category", "pothole"), field("description", "hole"),
		photo(testenv.PhotoJPEG), field("lat", "43.5"), field("lon", "11.5"))
	if r.LocationSource != "device" || r.Lat != 43.5 {
		t.Fatalf("with a position sent after the photo: %+v", r)
	}
	// A blank coordinate before the photo is no position: the photo's is read and used.
	resp, r, _ = h.submit(token, "gps-5", field("category", "pothole"), field("description", "hole"),
		field("lat", " "), photo(testenv.PhotoJPEG))
	if resp.StatusCode != 201 || r.LocationSource != "photo_exif" {
		t.Fatalf("a blank lat before the photo: %d %+v", resp.StatusCode, r)
	}
	// A photo without GPS tags gives no position.
	resp, _, p := h.submit(token, "gps-3", field("category", "pothole"), field("description", "hole"), photo(testenv.PhotoPortrait6))
	if resp.StatusCode != 422 || p.Type != "urn:cityeyes:problem:invalid-location" {
		t.Fatalf("no position anywhere: %d %+v", resp.StatusCode, p)
	}
}
