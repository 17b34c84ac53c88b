package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/city-eyes/cityeyes/internal/testenv"
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
