package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/notifications/fcmfake"
)

// A point in Sunset Park West (Brooklyn), from a real 311 street-condition report of the
// sample; the demo city routes street conditions there to DOT.
const sunsetLat, sunsetLon = "40.6439502", "-74.0151994"

// instance is one City Eyes setup: its environment, shared by the processes started on it.
type instance struct {
	t    *testing.T
	env  map[string]string
	base string
	fcm  *fcmfake.Server
}

// newInstance prepares the environment of a City Eyes deployment on the backends of this
// test run (embedded, or the real servers of make test), with pushes going to a fake FCM.
func newInstance(t *testing.T) *instance {
	t.Helper()
	fcm := fcmfake.New()
	t.Cleanup(fcm.Close)
	addr := testenv.FreeAddr(t)
	env := map[string]string{
		"CITYEYES_ADDR":           addr,
		"CITYEYES_DATA_DIR":       t.TempDir(),
		"CITYEYES_DATABASE_URL":   testenv.DatabaseURL(t),
		"CITYEYES_JWT_SECRET":     string(testenv.Secret),
		"CITYEYES_FCM_PROJECT_ID": "city-eyes-test",
		"CITYEYES_FCM_ENDPOINT":   fcm.URL(),
	}
	if testenv.Real() {
		env["CITYEYES_REDIS_URL"] = testenv.RedisURL(t)
		s3, _ := testenv.MinIO(t)
		env["CITYEYES_S3_ENDPOINT"], env["CITYEYES_S3_ACCESS_KEY"] = s3.Endpoint, s3.AccessKey
		env["CITYEYES_S3_SECRET_KEY"], env["CITYEYES_S3_BUCKET"] = s3.SecretKey, s3.Bucket
	}
	return &instance{t: t, env: env, base: "http://" + addr, fcm: fcm}
}

// start runs `cityeyes <args>` in this process, as main would, and returns a function that
// stops it (as SIGTERM would) and waits for it to exit.
func (in *instance) start(args ...string) (stop func()) {
	in.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, func(k string) string { return in.env[k] }, out) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				in.t.Errorf("cityeyes %v: %v\n%s", args, err, out.String())
			}
		case <-time.After(30 * time.Second):
			in.t.Errorf("cityeyes %v did not stop within 30 s", args)
		}
	}
	in.t.Cleanup(stop)
	if len(args) > 0 && args[0] == "worker" {
		return stop
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			in.t.Fatalf("cityeyes %v exited: %v\n%s", args, err, out.String())
		default:
		}
		resp, err := http.Get(in.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return stop
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.t.Fatalf("cityeyes %v was not ready within 30 s\n%s", args, out.String())
	return nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// call sends a request and decodes a JSON answer into out (when not nil); it returns the
// response with its body read.
func (in *instance) call(method, path, token string, body any, out any, headers ...string) *http.Response {
	in.t.Helper()
	var r io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case *multipartBody:
		r, ctype = bytes.NewReader(b.buf.Bytes()), b.ctype
	default:
		j, _ := json.Marshal(b)
		r, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, in.base+path, r)
	if err != nil {
		in.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, path, err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			in.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp
}

func (in *instance) must(resp *http.Response, status int) {
	in.t.Helper()
	if resp.StatusCode != status {
		b, _ := io.ReadAll(resp.Body)
		in.t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, b)
	}
}

type multipartBody struct {
	buf   bytes.Buffer
	ctype string
}

func reportForm(t *testing.T, fields map[string]string, photos ...[]byte) *multipartBody {
	t.Helper()
	mb := &multipartBody{}
	w := multipart.NewWriter(&mb.buf)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		_ = w.WriteField(k, fields[k])
	}
	for i, p := range photos {
		fw, _ := w.CreateFormFile("photo", fmt.Sprintf("photo%d.jpg", i))
		_, _ = fw.Write(p)
	}
	_ = w.Close()
	mb.ctype = w.FormDataContentType()
	return mb
}

type report struct {
	ID, Number, Status, Category string
	Resolution                   *string
	Department                   *string
	DueAt                        *time.Time `json:"due_at"`
	Version                      int
	Photos                       []struct {
		URL          *string
		ThumbnailURL *string `json:"thumbnail_url"`
		Processing   bool
	}
	Timeline []struct {
		ID       string
		Type     string
		ToStatus string `json:"to_status"`
		Public   bool
	}
}

func (in *instance) device(id, token string) string {
	in.t.Helper()
	var d struct{ Token string }
	in.must(in.call("POST", "/v1/auth/device", "", map[string]string{"device_id": id, "platform": "android", "push_token": token, "locale": "en"}, &d), 200)
	return d.Token
}

func (in *instance) login(email, password string) string {
	in.t.Helper()
	var l struct{ Token string }
	in.must(in.call("POST", "/v1/auth/login", "", map[string]string{"email": email, "password": password}, &l), 200)
	return l.Token
}

func (in *instance) submit(token, key string) report {
	in.t.Helper()
	var r report
	form := reportForm(in.t, map[string]string{"category": "street-condition", "description": "Deep pothole in the bus lane",
		"lat": sunsetLat, "lon": sunsetLon, "attr.size": "large"}, testenv.PhotoJPEG, testenv.PhotoJPEG)
	in.must(in.call("POST", "/v1/reports", token, form, &r, "Idempotency-Key", key), 201)
	return r
}

// waitStatus polls a report until it reaches status.
func (in *instance) waitStatus(token, id, status string, within time.Duration) report {
	in.t.Helper()
	var r report
	deadline := time.Now().Add(within)
	for {
		in.must(in.call("GET", "/v1/reports/"+id, token, nil, &r), 200)
		if r.Status == status {
			return r
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("report %s is %s after %v, want %s", r.Number, r.Status, within, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pushesFor returns the pushes the fake FCM received for a report, waiting until there are
// at least n, then a little longer to catch any duplicate.
func (in *instance) pushesFor(reportID string, n int) []fcmfake.Received {
	in.t.Helper()
	get := func() []fcmfake.Received {
		var out []fcmfake.Received
		for _, m := range in.fcm.Messages() {
			if m.Data["report_id"] == reportID {
				out = append(out, m)
			}
		}
		return out
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(get()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return get()
}

// routedAndPushedOnce waits for a report to be dispatched and checks that it was routed
// once and its reporter's device got one push.
func (in *instance) routedAndPushedOnce(token, id string) {
	in.t.Helper()
	r := in.waitStatus(token, id, "dispatched", 10*time.Second)
	routes := 0
	for _, e := range r.Timeline {
		if e.Type == "route" {
			routes++
		}
	}
	if routes != 1 {
		in.t.Fatalf("report %s was routed %d times", r.Number, routes)
	}
	if p := in.pushesFor(id, 1); len(p) != 1 {
		in.t.Fatalf("report %s: %d pushes, want 1", r.Number, len(p))
	}
}

// TestCaseLoop is the README's tour: a citizen reports a pothole with photos, it is routed
// to DOT, DOT's handler accepts, starts and resolves it, the citizen confirms; every public
// status change reaches the inbox and, once per device, the fake FCM server.
func TestCaseLoop(t *testing.T) {
	in := newInstance(t)
	in.start("serve")

	citizen := in.device("e2e-device-0001", "push-token-alice")

	var cats struct {
		Jurisdiction struct{ ID string }
		Area         *string
		Categories   []struct{ Code string }
	}
	in.must(in.call("GET", "/v1/categories?lat="+sunsetLat+"&lon="+sunsetLon, "", nil, &cats), 200)
	if cats.Jurisdiction.ID != "nyc" || cats.Area == nil || *cats.Area != "Sunset_Park_West" {
		t.Fatalf("categories at Sunset Park: jurisdiction %q area %v", cats.Jurisdiction.ID, cats.Area)
	}
	if !slices.ContainsFunc(cats.Categories, func(c struct{ Code string }) bool { return c.Code == "street-condition" }) {
		t.Fatal("street-condition is not offered in Sunset Park")
	}

	start := time.Now()
	r := in.submit(citizen, "tour-key-1")
	if r.Status != "submitted" || len(r.Photos) != 2 || !strings.HasPrefix(r.Number, "NYC-") {
		t.Fatalf("new report: %+v", r)
	}
	// A retry with the same key returns the same report; other content under it is refused.
	var again report
	resp := in.call("POST", "/v1/reports", citizen, reportForm(t, map[string]string{"category": "street-condition",
		"description": "Deep pothole in the bus lane", "lat": sunsetLat, "lon": sunsetLon, "attr.size": "large"},
		testenv.PhotoJPEG, testenv.PhotoJPEG), &again, "Idempotency-Key", "tour-key-1")
	in.must(resp, 201)
	if again.ID != r.ID || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry created %s (replayed %q), want %s", again.ID, resp.Header.Get("Idempotent-Replayed"), r.ID)
	}
	in.must(in.call("POST", "/v1/reports", citizen, reportForm(t, map[string]string{"category": "street-condition",
		"description": "Something else entirely", "lat": sunsetLat, "lon": sunsetLon}), nil, "Idempotency-Key", "tour-key-1"), 409)

	r = in.waitStatus(citizen, r.ID, "dispatched", 5*time.Second)
	t.Logf("%s backend: submitted to dispatched in %v", testenv.Name(), time.Since(start))
	if r.Department == nil || *r.Department != "DOT" || r.DueAt == nil {
		t.Fatalf("dispatched report: department %v due %v, want DOT with a deadline", r.Department, r.DueAt)
	}
	// The photos get versions without EXIF; the citizen's links point to those.
	deadline := time.Now().Add(10 * time.Second)
	for r.Photos[0].Processing || r.Photos[1].Processing {
		if time.Now().After(deadline) {
			t.Fatal("the photos were not processed within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
		in.must(in.call("GET", "/v1/reports/"+r.ID, citizen, nil, &r), 200)
	}
	for _, link := range []*string{r.Photos[0].URL, r.Photos[0].ThumbnailURL} {
		if link == nil {
			t.Fatal("a processed photo has no link")
		}
		photo, err := http.Get(*link)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(photo.Body)
		photo.Body.Close()
		if photo.StatusCode != 200 || !bytes.HasPrefix(body, []byte{0xFF, 0xD8}) || bytes.Contains(body, []byte("Exif")) {
			t.Fatalf("photo version: %d, %d bytes, JPEG %v, EXIF %v", photo.StatusCode, len(body),
				bytes.HasPrefix(body, []byte{0xFF, 0xD8}), bytes.Contains(body, []byte("Exif")))
		}
	}
	if !bytes.Contains(testenv.PhotoJPEG, []byte("Exif")) {
		t.Fatal("the test photo has no EXIF to strip: the check above proves nothing")
	}

	dot := in.login("dot@nyc.demo", "demo-dot")
	var queue struct{ Items []report }
	in.must(in.call("GET", "/v1/queue?status=dispatched", dot, nil, &queue), 200)
	if !slices.ContainsFunc(queue.Items, func(q report) bool { return q.ID == r.ID }) {
		t.Fatal("the report is not in DOT's queue")
	}
	dsny := in.login("dsny@nyc.demo", "demo-dsny")
	in.must(in.call("POST", "/v1/cases/"+r.ID+"/actions", dsny, map[string]any{"action": "accept"}, nil), 403)
	in.must(in.call("POST", "/v1/cases/"+r.ID+"/actions", dot, map[string]any{"action": "start", "version": r.Version}, nil), 409)

	for _, action := range []string{"accept", "start", "resolve"} {
		var cur report
		in.must(in.call("POST", "/v1/cases/"+r.ID+"/actions", dot, map[string]any{"action": action, "version": r.Version, "note": "on it", "public": true}, &cur), 200)
		if cur.Version != r.Version+1 {
			t.Fatalf("%s: version %d after %d", action, cur.Version, r.Version)
		}
		// The version just used is stale now.
		in.must(in.call("POST", "/v1/cases/"+r.ID+"/actions", dot, map[string]any{"action": "comment", "note": "x", "version": r.Version}, nil), 409)
		r = cur
	}
	in.must(in.call("POST", "/v1/reports/"+r.ID+"/feedback", citizen, map[string]any{"action": "confirm", "rating": 5}, &r), 200)
	if r.Status != "closed" || r.Resolution == nil || *r.Resolution != "fixed" {
		t.Fatalf("after confirm: %s %v", r.Status, r.Resolution)
	}

	// Every public status change, once in the inbox and once at FCM for the one device.
	var statuses []string
	events := map[string]string{}
	for _, e := range r.Timeline {
		if e.Public && e.Type != "submit" {
			statuses = append(statuses, e.ToStatus)
			events[e.ID] = e.ToStatus
		}
	}
	if want := []string{"dispatched", "accepted", "in_progress", "resolved", "closed"}; !slices.Equal(statuses, want) {
		t.Fatalf("public status changes %v, want %v", statuses, want)
	}
	pushes := in.pushesFor(r.ID, len(events))
	if len(pushes) != len(events) {
		t.Fatalf("FCM received %d pushes for the report, want %d (one per public status change)", len(pushes), len(events))
	}
	seen := map[string]bool{}
	for _, p := range pushes {
		if p.Token != "push-token-alice" || events[p.Data["event_id"]] != p.Data["status"] || seen[p.Data["event_id"]] || p.Title == "" {
			t.Fatalf("unexpected push %+v", p)
		}
		seen[p.Data["event_id"]] = true
	}
	var inbox struct {
		Items []struct {
			ReportID string `json:"report_id"`
			EventID  string `json:"event_id"`
			Status   string
		}
	}
	in.must(in.call("GET", "/v1/me/notifications", citizen, nil, &inbox), 200)
	if len(inbox.Items) != len(events) {
		t.Fatalf("inbox has %d entries, want %d", len(inbox.Items), len(events))
	}
	var inboxOrder []string
	for _, n := range inbox.Items {
		if n.ReportID != r.ID || events[n.EventID] != n.Status {
			t.Fatalf("inbox entry %+v does not match a public event", n)
		}
		inboxOrder = append([]string{n.Status}, inboxOrder...)
	}
	if !slices.Equal(inboxOrder, statuses) {
		t.Fatalf("inbox, oldest first: %v; want the order of events %v", inboxOrder, statuses)
	}
	var mine struct{ Items []report }
	in.must(in.call("GET", "/v1/me/reports", citizen, nil, &mine), 200)
	if len(mine.Items) != 1 || mine.Items[0].ID != r.ID {
		t.Fatalf("my reports: %+v", mine.Items)
	}
}

// TestDeadTokenIsDropped: FCM answers UNREGISTERED for a device whose app is gone; the
// device's token is cleared and no later push is tried.
func TestDeadTokenIsDropped(t *testing.T) {
	in := newInstance(t)
	in.start("serve")
	in.fcm.Unregister("push-token-gone")
	citizen := in.device("e2e-device-dead", "push-token-gone")
	r := in.submit(citizen, "dead-1")
	in.waitStatus(citizen, r.ID, "dispatched", 5*time.Second)

	db := testenv.OpenDB(t, in.env["CITYEYES_DATABASE_URL"])
	deadline := time.Now().Add(10 * time.Second)
	for {
		devs, err := db.PushDevices(context.Background(), mustUser(t, db, "e2e-device-dead"))
		if err != nil {
			t.Fatal(err)
		}
		if len(devs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unregistered token is still in use")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := in.fcm.Requests()
	dot := in.login("dot@nyc.demo", "demo-dot")
	in.must(in.call("POST", "/v1/cases/"+r.ID+"/actions", dot, map[string]any{"action": "accept"}, nil), 200)
	time.Sleep(500 * time.Millisecond)
	if n := in.fcm.Requests(); n != before {
		t.Fatalf("FCM got %d more requests after the token was dropped", n-before)
	}
	var inbox struct{ Items []any }
	in.must(in.call("GET", "/v1/me/notifications", citizen, nil, &inbox), 200)
	if len(inbox.Items) != 2 {
		t.Fatalf("inbox has %d entries, want 2: the inbox does not depend on push", len(inbox.Items))
	}
}

func mustUser(t *testing.T, db *models.DB, deviceID string) string {
	t.Helper()
	u, _, err := db.RegisterDevice(context.Background(), models.DeviceRegistration{DeviceID: deviceID, Platform: "android", Locale: "en"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// TestRestartBetweenAcceptanceAndRouting: reports accepted by an API process that stops
// before any worker ran are routed exactly once, and pushed exactly once, when the product
// starts again; a further restart sends nothing twice.
func TestRestartBetweenAcceptanceAndRouting(t *testing.T) {
	in := newInstance(t)
	stop := in.start("api")
	citizen := in.device("e2e-device-restart", "push-token-restart")
	var ids []string
	for i := range 3 {
		ids = append(ids, in.submit(citizen, fmt.Sprintf("restart-%d", i)).ID)
	}
	stop()

	stop = in.start("serve")
	for _, id := range ids {
		in.routedAndPushedOnce(citizen, id)
	}
	stop()
	in.start("serve")
	time.Sleep(time.Second)
	for _, id := range ids {
		if p := in.pushesFor(id, 1); len(p) != 1 {
			t.Fatalf("after a second restart report %s has %d pushes, want 1", id, len(p))
		}
	}
}

// TestAPIAndWorkerApart runs the API and the workers as separate processes on the same
// servers.
func TestAPIAndWorkerApart(t *testing.T) {
	in := newInstance(t)
	in.start("api")
	in.start("worker")
	citizen := in.device("e2e-device-apart", "push-token-apart")
	r := in.submit(citizen, "apart-1")
	in.waitStatus(citizen, r.ID, "dispatched", 10*time.Second)
	if p := in.pushesFor(r.ID, 1); len(p) != 1 {
		t.Fatalf("%d pushes, want 1", len(p))
	}
}

// TestMigrate runs the migrate command twice: the second run has nothing to apply.
func TestMigrate(t *testing.T) {
	in := newInstance(t)
	getenv := func(k string) string { return in.env[k] }
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "migration(s) applied now") || strings.Contains(out.String(), "(0 migration(s)") {
		t.Fatalf("first migrate said: %s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"migrate"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "(0 migration(s) applied now)") {
		t.Fatalf("second migrate said: %s", out.String())
	}
}

// TestConfigApply applies a city configuration twice: the second time changes nothing.
func TestConfigApply(t *testing.T) {
	in := newInstance(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "city.yaml")
	if err := os.WriteFile(file, []byte(testenv.CityYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	getenv := func(k string) string { return in.env[k] }
	if err := run(context.Background(), []string{"config", "apply", file}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "testville: applied 3 departments, 3 categories, 2 areas, 1 routing rules; 5 staff accounts created") {
		t.Fatalf("first apply said: %s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"config", "apply", file}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "testville: configuration unchanged") {
		t.Fatalf("second apply said: %s", out.String())
	}
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte(strings.Replace(testenv.CityYAML, "sla_hours: 24", "sla_hours: -5", 1)), 0o600)
	err := run(context.Background(), []string{"config", "apply", bad}, getenv, &out)
	if !errors.Is(err, models.ErrInvalid) || !strings.Contains(err.Error(), "categories[1] (tree): sla_hours -5 is negative") {
		t.Fatalf("a bad file: %v", err)
	}
}

// TestUserAdd adds a handler from the command line, who can then sign in.
func TestUserAdd(t *testing.T) {
	in := newInstance(t)
	getenv := func(k string) string { return in.env[k] }
	dir := t.TempDir()
	city := filepath.Join(dir, "city.yaml")
	pw := filepath.Join(dir, "pw")
	_ = os.WriteFile(city, []byte(testenv.CityYAML), 0o600)
	_ = os.WriteFile(pw, []byte("a-long-password\n"), 0o600)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"config", "apply", city}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	args := []string{"user", "add", "-jurisdiction", "testville", "-email", "cli@test.example", "-role", "handler", "-department", "ROADS", "-password-file", pw}
	if err := run(context.Background(), args, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), args, getenv, &out); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("adding the same email again: %v, want a conflict", err)
	}
	in.start("serve")
	in.login("cli@test.example", "a-long-password")
}
