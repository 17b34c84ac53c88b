package models_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/city-eyes/cityeyes/models"
)

// TestRequestIDHandler: a line logged with a request's context names its id once, however
// often the handler was wrapped; a line without one names none.
func TestRequestIDHandler(t *testing.T) {
	var buf bytes.Buffer
	once := slog.New(models.RequestIDHandler(slog.NewJSONHandler(&buf, nil)))
	twice := slog.New(models.RequestIDHandler(once.Handler())).With("part", "api")
	ctx := models.WithRequestID(context.Background(), "req-1")
	once.InfoContext(ctx, "a")
	twice.InfoContext(ctx, "b")
	twice.InfoContext(context.Background(), "c")
	twice.Info("d")
	want := []string{"req-1", "req-1", "", ""}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	for i, line := range lines {
		if n := strings.Count(line, `"request_id"`); n > 1 {
			t.Fatalf("line %d names the request id %d times: %s", i, n, line)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if got, _ := m["request_id"].(string); got != want[i] {
			t.Fatalf("line %d: request_id %q, want %q: %s", i, got, want[i], line)
		}
	}
	if models.RequestID(models.WithRequestID(context.Background(), "")) != "" {
		t.Fatal("an empty id was kept")
	}
}
