package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/city-eyes/cityeyes/internal/testenv"
)

// TestDashboardFiles serves the dashboard's page and every file it embeds, each with its
// media type and the page's content security policy, and refuses anything else.
func TestDashboardFiles(t *testing.T) {
	h := newHarness(t)
	resp, page := h.do("GET", "/dashboard", "", nil, "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /dashboard: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("Content-Security-Policy = %q", csp)
	}
	// Every file the page or a module refers to is served; every embedded file is used.
	entries, err := fs.ReadDir(dashboardFiles, "dashboard")
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	all = append(all, page...)
	for _, e := range entries {
		b, _ := dashboardFiles.ReadFile("dashboard/" + e.Name())
		all = append(all, b...)
	}
	ref := regexp.MustCompile(`(?:/dashboard/|"\./)([A-Za-z0-9_-]+\.(?:js|css|svg))`)
	refs := map[string]bool{}
	for _, m := range ref.FindAllSubmatch(all, -1) {
		refs[string(m[1])] = true
	}
	wantType := map[string]string{".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}
	for _, e := range entries {
		name := e.Name()
		if name != "index.html" && !refs[name] {
			t.Errorf("dashboard/%s is embedded but nothing refers to it", name)
		}
		resp, body := h.do("GET", "/dashboard/"+name, "", nil, "")
		ext := name[strings.LastIndex(name, "."):]
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), wantType[ext]) {
			t.Errorf("GET /dashboard/%s: %d %q", name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		want, _ := dashboardFiles.ReadFile("dashboard/" + name)
		if !bytes.Equal(body, want) {
			t.Errorf("GET /dashboard/%s: not the embedded file", name)
		}
		// Nothing comes from elsewhere: no CDN, no tile server, no web font.
		for _, u := range regexp.MustCompile(`https?://[^\s"'<>)]+`).FindAll(want, -1) {
			if !strings.HasPrefix(string(u), "http://www.w3.org/") {
				t.Errorf("dashboard/%s refers to %s: the dashboard must be served whole by City Eyes", name, u)
			}
		}
		delete(refs, name)
	}
	for name := range refs {
		t.Errorf("a dashboard file refers to %s, which is not embedded", name)
	}

	// A browser's second visit revalidates: same ETag, 304, no body.
	resp, _ = h.do("GET", "/dashboard/app.js", "", nil, "")
	tag := resp.Header.Get("ETag")
	if tag == "" {
		t.Fatal("no ETag on /dashboard/app.js")
	}
	resp, body := h.do("GET", "/dashboard/app.js", "", nil, "", "If-None-Match", tag)
	if resp.StatusCode != 304 || len(body) != 0 {
		t.Fatalf("revalidation: %d with %d bytes, want 304 and none", resp.StatusCode, len(body))
	}

	for _, bad := range []string{"/dashboard/nope.js", "/dashboard/api.go", "/dashboard/.hidden.js", "/dashboard/..%2fdashboard.go", "/dashboard/index.txt"} {
		// Unchecked: an escaped slash is not a path the spec's router can match.
		resp, body := h.doUnchecked("GET", bad, "", nil, "")
		if resp.StatusCode != 404 || !strings.Contains(string(body), "no-such-file") {
			t.Errorf("GET %s: %d %s, want a 404 no-such-file", bad, resp.StatusCode, body)
		}
	}
}

// TestAreas checks GET /v1/areas: the caller's city's areas and only those, as GeoJSON with
// codes and names, revalidated by ETag and gzipped when asked.
func TestAreas(t *testing.T) {
	h := newHarness(t)
	testenv.Apply(t, h.db, testenv.OtherCityYAML)
	type fc struct {
		Type         string          `json:"type"`
		Jurisdiction JurisdictionRef `json:"jurisdiction"`
		Features     []struct {
			Type       string `json:"type"`
			ID         string `json:"id"`
			Properties struct {
				Code string `json:"code"`
				Name string `json:"name"`
			} `json:"properties"`
			Geometry struct {
				Type        string         `json:"type"`
				Coordinates [][][2]float64 `json:"coordinates"`
			} `json:"geometry"`
		} `json:"features"`
	}
	cases := []struct {
		who, email, password string
		city                 string
		want                 []string // code=name
	}{
		{"handler", "roads@test.example", "roads-pass", "testville", []string{"east=East", "west=West"}},
		{"supervisor", "boss@test.example", "boss-pass", "testville", []string{"east=East", "west=West"}},
		{"administrator", "admin@test.example", "admin-pass", "testville", []string{"east=East", "west=West"}},
		{"supervisor of another city", "boss@other.example", "other-boss", "otherville", []string{"centre=Centre"}},
	}
	for _, c := range cases {
		t.Run(c.who, func(t *testing.T) {
			tok := h.staff(c.email, c.password)
			resp, body := h.do("GET", "/v1/areas", tok, nil, "")
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/geo+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "private") {
				t.Errorf("Cache-Control %q: the areas are for signed-in staff, not shared caches", cc)
			}
			var got fc
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			var codes []string
			for _, f := range got.Features {
				codes = append(codes, f.Properties.Code+"="+f.Properties.Name)
				if f.ID != f.Properties.Code || f.Type != "Feature" || f.Geometry.Type != "Polygon" || len(f.Geometry.Coordinates[0]) != 5 {
					t.Errorf("feature %+v", f)
				}
			}
			slices.Sort(codes)
			if got.Type != "FeatureCollection" || got.Jurisdiction.ID != c.city || !slices.Equal(codes, c.want) {
				t.Fatalf("got %s of %+v: %v, want %s: %v", got.Type, got.Jurisdiction, codes, c.city, c.want)
			}

			resp, body = h.do("GET", "/v1/areas", tok, nil, "", "If-None-Match", resp.Header.Get("ETag"))
			if resp.StatusCode != 304 || len(body) != 0 {
				t.Fatalf("revalidation: %d with %d bytes", resp.StatusCode, len(body))
			}

			resp, zipped, _ := h.send("GET", "/v1/areas", tok, nil, "", "Accept-Encoding", "gzip")
			if resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
			}
			zr, err := gzip.NewReader(bytes.NewReader(zipped))
			if err != nil {
				t.Fatal(err)
			}
			plain, _ := io.ReadAll(zr)
			var again fc
			if err := json.Unmarshal(plain, &again); err != nil || len(again.Features) != len(got.Features) {
				t.Fatalf("gzipped answer: %v, %d features", err, len(again.Features))
			}
		})
	}

	// An area the city's configuration no longer has is retired: it is off the map.
	t.Run("retired area", func(t *testing.T) {
		city := strings.Replace(testenv.CityYAML, "  - {category: pothole, area: east, department: PARKS}\n", "", 1)
		i := strings.Index(city, "    - type: Feature\n      id: east")
		j := strings.Index(city, "departments:")
		if i < 0 || j < i {
			t.Fatal("the test city's YAML changed; update this test")
		}
		testenv.Apply(t, h.db, city[:i]+city[j:])
		resp, body := h.do("GET", "/v1/areas", h.staff("boss@test.example", "boss-pass"), nil, "")
		var got fc
		if err := json.Unmarshal(body, &got); resp.StatusCode != 200 || err != nil {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if len(got.Features) != 1 || got.Features[0].ID != "west" {
			t.Fatalf("after retiring east the map has %+v, want west only", got.Features)
		}
	})
}
