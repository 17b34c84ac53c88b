package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
)

// harness is the API over the backends of this test run, with the test city loaded. Every
// exchange is checked against openapi.yaml.
type harness struct {
	t     *testing.T
	app   *fiber.App
	db    *models.DB
	store storage.Store
	spec  *specValidator
	now   time.Time
	areas atomic.Pointer[models.AreaIndex]
}

// cfgAreas swaps in a new area index, as a running server does when a city is configured.
func (h *harness) cfgAreas(idx *models.AreaIndex) { h.areas.Store(idx) }

const testPhotoLimit = 300 << 10

func newHarness(t *testing.T) *harness {
	t.Helper()
	db := testenv.DB(t)
	testenv.City(t, db)
	store, files := testenv.Store(t, "http://cityeyes.test")
	idx, err := db.LoadAreaIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, db: db, store: store, spec: loadSpec(t), now: time.Now()}
	h.areas.Store(idx)
	h.app = New(Config{DB: db, Store: store, Files: files, Areas: h.areas.Load,
		JWTSecret: testenv.Secret, Now: func() time.Time { return h.now }, MaxPhotoBytes: testPhotoLimit,
		Checks: map[string]func(context.Context) error{"database": db.Ping, "storage": store.Ping},
		// What a request leaves for after its answer is done before the test reads it.
		Background: func(f func()) { f() }})
	return h
}

// do sends one request through the app and checks the exchange against the spec.
func (h *harness) do(method, path, token string, body []byte, ctype string, headers ...string) (*http.Response, []byte) {
	h.t.Helper()
	resp, data, req := h.send(method, path, token, body, ctype, headers...)
	check := httptest.NewRequest(method, path, bytes.NewReader(body))
	check.Header = req.Header.Clone()
	h.spec.checkExchange(h.t, check, body, resp, data)
	return resp, data
}

// doUnchecked is do for requests the spec rightly does not describe (an unknown route).
func (h *harness) doUnchecked(method, path, token string, body []byte, ctype string) (*http.Response, []byte) {
	h.t.Helper()
	resp, data, _ := h.send(method, path, token, body, ctype)
	return resp, data
}

func (h *harness) send(method, path, token string, body []byte, ctype string, headers ...string) (*http.Response, []byte, *http.Request) {
	h.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.app.Test(req, -1)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, data, req
}

func (h *harness) json(method, path, token string, v any, headers ...string) (*http.Response, []byte) {
	h.t.Helper()
	b, _ := json.Marshal(v)
	return h.do(method, path, token, b, "application/json", headers...)
}

func (h *harness) citizen(deviceID string) string {
	h.t.Helper()
	resp, body := h.json("POST", "/v1/auth/device", "", DeviceRequest{DeviceID: deviceID, Platform: "android", PushToken: "tok-" + deviceID})
	if resp.StatusCode != 200 {
		h.t.Fatalf("device: %d %s", resp.StatusCode, body)
	}
	var d DeviceResponse
	_ = json.Unmarshal(body, &d)
	return d.Token
}

func (h *harness) staff(email, password string) string {
	h.t.Helper()
	resp, body := h.json("POST", "/v1/auth/login", "", LoginRequest{Email: email, Password: password})
	if resp.StatusCode != 200 {
		h.t.Fatalf("login %s: %d %s", email, resp.StatusCode, body)
	}
	var l LoginResponse
	_ = json.Unmarshal(body, &l)
	return l.Token
}

type part struct {
	name, filename string
	data           []byte
}

func form(parts ...part) ([]byte, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		if p.filename != "" {
			fw, _ := w.CreateFormFile(p.name, p.filename)
			_, _ = fw.Write(p.data)
		} else {
			_ = w.WriteField(p.name, string(p.data))
		}
	}
	_ = w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

func field(name, value string) part { return part{name: name, data: []byte(value)} }
func photo(data []byte) part        { return part{name: "photo", filename: "p.jpg", data: data} }

// goodReport is a valid pothole report in the west area, with answers.
func goodReport(extra ...part) []part {
	return append([]part{field("category", "pothole"), field("description", "deep hole"),
		field("lat", fmt.Sprint(testenv.WestLat)), field("lon", fmt.Sprint(testenv.WestLon)), field("attr.depth", "deep")}, extra...)
}

// submit posts a multipart report and decodes the answer.
func (h *harness) submit(token, key string, parts ...part) (*http.Response, Report, Problem) {
	h.t.Helper()
	body, ctype := form(parts...)
	resp, data := h.do("POST", "/v1/reports", token, body, ctype, "Idempotency-Key", key)
	var r Report
	var p Problem
	if resp.StatusCode < 300 {
		_ = json.Unmarshal(data, &r)
	} else {
		_ = json.Unmarshal(data, &p)
	}
	return resp, r, p
}

// route does what the route task does, synchronously.
func (h *harness) route(id string) {
	h.t.Helper()
	ctx := context.Background()
	c, err := h.db.Case(ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	dept, err := h.db.RouteFor(ctx, c)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, _, err := h.db.Transition(ctx, models.Change{CaseID: id, Action: models.ActionRoute, Actor: models.SystemActor,
		DepartmentID: &dept}, h.now); err != nil {
		h.t.Fatal(err)
	}
}

// nothingWritten fails the test if any case or any photo object exists.
func (h *harness) nothingWritten() {
	h.t.Helper()
	var n int64
	if err := h.db.SQL().QueryRow("SELECT COUNT(*) FROM cases").Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	if n != 0 {
		h.t.Fatalf("%d case(s) were written by a refused request", n)
	}
	if objs := testenv.Objects(h.t, h.store, "cases/"); len(objs) != 0 {
		h.t.Fatalf("orphan photo objects left behind: %v", objs)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func (h *harness) testSecret() []byte { return testenv.Secret }

func (h *harness) adminToken() string { return h.staff("admin@test.example", "admin-pass") }

// clock is the harness' clock as a Config.Now.
func (h *harness) clock() func() time.Time { return func() time.Time { return h.now } }
