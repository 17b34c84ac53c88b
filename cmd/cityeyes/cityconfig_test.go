package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/city-eyes/cityeyes/api"
	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
)

// TestConfigExportRoundTrip: with the demo city (188 real neighbourhood polygons), apply →
// export → apply reports unchanged, and the export applied to an empty database exports the
// same text again.
func TestConfigExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, name := range []string{"nyc.yaml", "neighborhoods.geojson"} {
		b, err := demoFS.ReadFile("demo/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	in := newInstance(t)
	getenv := func(k string) string { return in.env[k] }
	var out bytes.Buffer
	if err := run(ctx, []string{"config", "apply", filepath.Join(dir, "nyc.yaml")}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "nyc: applied 13 departments, 46 categories, 188 areas") {
		t.Fatalf("apply said: %s", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"config", "export"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	exported := out.String()
	file := filepath.Join(dir, "exported.yaml")
	if err := os.WriteFile(file, []byte(exported), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"config", "apply", file}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "nyc: configuration unchanged\n" {
		t.Fatalf("applying the export said: %s", out.String())
	}

	other := newInstance(t)
	getenv2 := func(k string) string { return other.env[k] }
	out.Reset()
	if err := run(ctx, []string{"config", "apply", file}, getenv2, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"config", "export", "-jurisdiction", "nyc"}, getenv2, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != exported {
		t.Fatalf("the export of the export differs:\n%s", cmp.Diff(exported, out.String()))
	}

	// With two cities, which one must be said.
	second := filepath.Join(dir, "other.yaml")
	_ = os.WriteFile(second, []byte(testenv.OtherCityYAML), 0o600)
	if err := run(ctx, []string{"config", "apply", second}, getenv2, &out); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"config", "export"}, getenv2, &out); err == nil || !strings.Contains(err.Error(), "there are 2: nyc, otherville") {
		t.Fatalf("export without -jurisdiction among two cities: %v", err)
	}
}

// TestAreaChangeReachesAnotherProcess: an area added through one process's admin API is
// used by another API process on the same database once its watcher looks again (what its
// 5-second ticker does), without a restart; and a process whose configuration did not change
// keeps its index.
func TestAreaChangeReachesAnotherProcess(t *testing.T) {
	ctx := context.Background()
	url := testenv.DatabaseURL(t)
	db1, db2 := testenv.OpenDB(t, url), testenv.OpenDB(t, url)
	testenv.City(t, db1)
	store, files := testenv.Store(t, "http://cityeyes.test")
	w1, err := newAreaWatcher(ctx, db1)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := newAreaWatcher(ctx, db2)
	if err != nil {
		t.Fatal(err)
	}
	app := func(db *models.DB, w *areaWatcher) *fiber.App {
		return api.New(api.Config{DB: db, Store: store, Files: files, Areas: w.cur.Load, JWTSecret: testenv.Secret})
	}
	app1, app2 := app(db1, w1), app(db2, w2)
	call := func(a *fiber.App, method, path, token, body string) (int, string) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := a.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const north = "/v1/categories?lat=1.5&lon=0.5"
	if status, body := call(app2, "GET", north, "", ""); status != 422 {
		t.Fatalf("before: %d %s, want 422 (outside every city)", status, body)
	}
	before := w2.cur.Load()
	if err := w2.reload(ctx); err != nil || w2.cur.Load() != before {
		t.Fatalf("an unchanged configuration rebuilt the index (%v)", err)
	}

	_, login := call(app1, "POST", "/v1/auth/login", "", `{"email":"admin@test.example","password":"admin-pass"}`)
	var l struct{ Token string }
	_ = json.Unmarshal([]byte(login), &l)
	status, body := call(app1, "POST", "/v1/admin/areas", l.Token, `{"type":"FeatureCollection","features":[
		{"type":"Feature","id":"north","properties":{"name":"North"},"geometry":{"type":"Polygon","coordinates":[[[0,1],[1,1],[1,2],[0,2],[0,1]]]}}]}`)
	if status != 200 {
		t.Fatalf("adding north through process 1: %d %s", status, body)
	}
	if err := w2.reload(ctx); err != nil {
		t.Fatal(err)
	}
	if status, body := call(app2, "GET", north, "", ""); status != 200 || !strings.Contains(body, `"area":"north"`) {
		t.Fatalf("process 2 after its watcher looked: %d %s", status, body)
	}
}
