package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"

	"github.com/city-eyes/cityeyes/internal/testenv"
)

// rebuild replaces the harness's app with one built from its configuration changed by
// change, for tests of what the plain harness leaves out (a dashboard, a logger).
func (h *harness) rebuild(change func(*Config)) {
	h.t.Helper()
	cfg := Config{DB: h.db, Store: h.store, Areas: h.areas.Load, JWTSecret: testenv.Secret,
		Now: func() time.Time { return h.now }, MaxPhotoBytes: testPhotoLimit,
		Checks: map[string]func(context.Context) error{"database": h.db.Ping, "storage": h.store.Ping}}
	change(&cfg)
	h.app = New(cfg)
}

// lockedBuffer is a log destination the test reads while the app writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// TestRequestID: every answer carries X-Request-ID (the caller's when it is sensible, else a
// new one); the request's log line names it, and so does the outbox row of the routing the
// report asks for, from which the worker's task takes it.
func TestRequestID(t *testing.T) {
	h := newHarness(t)
	logs := &lockedBuffer{}
	h.rebuild(func(c *Config) { c.Logger, c.AccessLog = slog.New(slog.NewJSONHandler(logs, nil)), true })
	citizen := h.citizen("request-id-device")

	cases := []struct {
		name, sent string
		kept       bool
	}{
		{"a proxy's id is kept", "edge-7f3a:9.1_x", true},
		{"none sent: a new one", "", false},
		{"too long: a new one", strings.Repeat("a", 129), false},
		{"odd characters: a new one", "id with spaces", false},
		{"a header injection attempt: a new one", "x\u00e9y", false},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var headers []string
			if c.sent != "" {
				headers = []string{"X-Request-ID", c.sent}
			}
			resp, _ := h.do("GET", "/v1/me/notifications", citizen, nil, "", headers...)
			got := resp.Header.Get("X-Request-ID")
			if c.kept && got != c.sent || !c.kept && (got == "" || got == c.sent) || seen[got] {
				t.Fatalf("sent %q, answered %q", c.sent, got)
			}
			seen[got] = true
		})
	}

	body, ctype := form(goodReport()...)
	resp, data := h.do("POST", "/v1/reports", citizen, body, ctype, "Idempotency-Key", "rid-1", "X-Request-ID", "report-req-42")
	if resp.StatusCode != 201 || resp.Header.Get("X-Request-ID") != "report-req-42" {
		t.Fatalf("report: %d %q %s", resp.StatusCode, resp.Header.Get("X-Request-ID"), data)
	}
	var rid string
	if err := h.db.SQL().QueryRow("SELECT request_id FROM outbox WHERE task_type = 'case:route'").Scan(&rid); err != nil {
		t.Fatal(err)
	}
	if rid != "report-req-42" {
		t.Fatalf("the route task's outbox row has request id %q", rid)
	}
	found := false
	for _, l := range logs.lines(t) {
		if l["msg"] == "request" && l["request_id"] == "report-req-42" {
			found = l["route"] == "/v1/reports" && l["status"] == float64(201) && l["method"] == "POST"
		}
	}
	if !found {
		t.Fatalf("no request log line names the report's request id:\n%v", logs.lines(t))
	}
}

// TestReadyzNamesEachDependency: /readyz names every dependency with its state; one the API
// needs makes it 503, one it goes on without (Redis, for an API alone) does not.
func TestReadyzNamesEachDependency(t *testing.T) {
	h := newHarness(t)
	down := func(context.Context) error { return context.DeadlineExceeded }
	up := func(context.Context) error { return nil }
	cases := []struct {
		name       string
		hard, soft map[string]func(context.Context) error
		status     int
		want       map[string]string
	}{
		{"all up", map[string]func(context.Context) error{"database": up, "storage": up},
			map[string]func(context.Context) error{"redis": up}, 200,
			map[string]string{"database": "ok", "storage": "ok", "redis": "ok"}},
		{"redis away from an API alone", map[string]func(context.Context) error{"database": up, "storage": up},
			map[string]func(context.Context) error{"redis": down}, 200,
			map[string]string{"database": "ok", "storage": "ok", "redis": "unavailable"}},
		{"storage away", map[string]func(context.Context) error{"database": up, "storage": down},
			map[string]func(context.Context) error{"redis": up}, 503,
			map[string]string{"database": "ok", "storage": "unavailable", "redis": "ok"}},
		{"database away", map[string]func(context.Context) error{"database": down, "storage": up, "redis": up},
			nil, 503, map[string]string{"database": "unavailable", "storage": "ok", "redis": "ok"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h.rebuild(func(cfg *Config) { cfg.Checks, cfg.SoftChecks = c.hard, c.soft })
			resp, body := h.do("GET", "/readyz", "", nil, "")
			var got Health
			_ = json.Unmarshal(body, &got)
			if resp.StatusCode != c.status || len(got.Checks) != len(c.want) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			for k, v := range c.want {
				if got.Checks[k] != v {
					t.Fatalf("%s is %q, want %q: %s", k, got.Checks[k], v, body)
				}
			}
		})
	}
}

// TestQueueDashboard: an administrator trades a bearer token for a short-lived cookie that
// opens the Asynq dashboard in a browser; nobody else gets in, and the cookie stops working
// when it expires or the account is disabled.
func TestQueueDashboard(t *testing.T) {
	h := newHarness(t)
	redis := testenv.Redis(t)
	// A queue with a task in it, for the dashboard to show.
	client := asynq.NewClient(redis)
	defer client.Close()
	if _, err := client.Enqueue(asynq.NewTask("case:route", []byte(`{}`)), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	dash := asynqmon.New(asynqmon.Options{RootPath: "/admin/queues", RedisConnOpt: redis})
	defer dash.Close()
	h.rebuild(func(c *Config) { c.QueueDashboard = dash })
	admin := h.staff("admin@test.example", "admin-pass")

	resp, body := h.do("POST", "/v1/admin/queues/session", admin, nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("session: %d %s", resp.StatusCode, body)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "cityeyes_queues" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/admin/queues" || cookie.MaxAge != 900 {
		t.Fatalf("session cookie: %+v", cookie)
	}

	open := func(path, cookieValue string) (*http.Response, string) {
		req := httptest.NewRequest("GET", path, nil)
		if cookieValue != "" {
			req.AddCookie(&http.Cookie{Name: "cityeyes_queues", Value: cookieValue})
		}
		resp, err := h.app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		return resp, b.String()
	}
	// The browser with the cookie sees the page and its data.
	if resp, page := open("/admin/queues", cookie.Value); resp.StatusCode != 200 || !strings.Contains(page, "<html") ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("dashboard page: %d %q %.200s", resp.StatusCode, resp.Header.Get("Cache-Control"), page)
	}
	if resp, data := open("/admin/queues/api/queues", cookie.Value); resp.StatusCode != 200 || !strings.Contains(data, `"default"`) {
		t.Fatalf("dashboard data: %d %s", resp.StatusCode, data)
	}

	supervisor := h.staff("boss@test.example", "boss-pass")
	refused := []struct {
		name   string
		cookie func() string
		status int
		slug   string
	}{
		{"no cookie", func() string { return "" }, 401, "missing-queue-session"},
		{"a bearer token as the cookie", func() string { return admin }, 401, "invalid-queue-session"},
		{"a supervisor's bearer token as the cookie", func() string { return supervisor }, 401, "invalid-queue-session"},
		{"a tampered cookie", func() string { return cookie.Value[:len(cookie.Value)-2] + "xx" }, 401, "invalid-queue-session"},
		{"an expired cookie", func() string {
			h.now = h.now.Add(16 * time.Minute)
			return cookie.Value
		}, 401, "invalid-queue-session"},
		{"the cookie of an account disabled since", func() string {
			h.now = h.now.Add(-16 * time.Minute)
			if _, err := h.db.SQL().Exec("UPDATE users SET disabled = TRUE WHERE email = 'admin@test.example'"); err != nil {
				t.Fatal(err)
			}
			return cookie.Value
		}, 401, "account-disabled"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			value := c.cookie()
			for _, path := range []string{"/admin/queues", "/admin/queues/api/queues"} {
				resp, body := open(path, value)
				if resp.StatusCode != c.status || !strings.Contains(body, "urn:cityeyes:problem:"+c.slug) {
					t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
				}
			}
		})
	}
}
