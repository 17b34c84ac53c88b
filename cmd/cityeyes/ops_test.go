package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/city-eyes/cityeyes/internal/testenv"
)

// proc is a real cityeyes process of a test, with its log lines kept.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

// launch starts `cityeyes <args>` with the instance's environment changed by env, and waits
// until readyURL answers 200.
func (in *instance) launch(name string, env map[string]string, readyURL string, args ...string) *proc {
	in.t.Helper()
	cmd := exec.Command(build(in.t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	all := maps.Clone(in.env)
	maps.Copy(all, env)
	for k, v := range all {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{t: in.t, name: name, cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	in.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if in.t.Failed() {
			in.t.Logf("---- %s's output ----\n%s", name, p.logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			in.t.Fatalf("%s exited before it was ready: %v\n%s", name, err, p.logs.String())
		default:
		}
		if resp, err := http.Get(readyURL); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.t.Fatalf("%s was not ready within 30 s\n%s", name, p.logs.String())
	return nil
}

// term sends SIGTERM and waits for the process to exit; it must exit 0 within the
// shutdown deadline (plus the time to start shutting down).
func (p *proc) term(within time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	p.wait(within)
	return time.Since(start)
}

// wait waits for the process to exit 0 (a second SIGTERM would end it at once, so a test
// that signalled it already waits with this).
func (p *proc) wait(within time.Duration) {
	p.t.Helper()
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Fatalf("%s exited with %v after SIGTERM, want 0\n%s", p.name, err, p.logs.String())
		}
	case <-time.After(within):
		p.t.Fatalf("%s did not exit within %v of SIGTERM", p.name, within)
	}
}

// jsonLines are the process's JSON log lines.
func (p *proc) jsonLines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// scrape reads a /metrics page.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %d %s", url, resp.StatusCode, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return fams
}

// sample is the value of the series of family name whose labels include want; ok is false
// when there is none.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsAndRequestIDs runs an API and a worker as separate processes logging JSON, takes
// a report through its loop (routed, accepted, started, resolved, confirmed) and scrapes both:
// the named series exist with the values the loop implies, and the request id the report was
// sent with is in the API's line for the request and in the worker's lines for its route task
// and for the notification that routing caused.
func TestMetricsAndRequestIDs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	in := newInstance(t)
	in.env["CITYEYES_LOG_FORMAT"] = "json"
	api := in.launch("api", nil, in.base+"/readyz", "api")
	metricsAddr := testenv.FreeAddr(t)
	worker := in.launch("worker", map[string]string{"CITYEYES_METRICS_ADDR": metricsAddr}, "http://"+metricsAddr+"/readyz", "worker")

	// The image's HEALTHCHECK: the API's port, or a worker's metrics port, or neither.
	free := testenv.FreeAddr(t)
	for _, c := range []struct {
		addr, metrics string
		ok            bool
	}{{in.env["CITYEYES_ADDR"], "", true}, {free, metricsAddr, true}, {"0.0.0.0:" + strings.Split(in.env["CITYEYES_ADDR"], ":")[1], "", true}, {free, "", false}} {
		env := maps.Clone(in.env)
		env["CITYEYES_ADDR"], env["CITYEYES_METRICS_ADDR"] = c.addr, c.metrics
		var out bytes.Buffer
		err := run(t.Context(), []string{"healthcheck"}, func(k string) string { return env[k] }, &out)
		if (err == nil) != c.ok {
			t.Fatalf("healthcheck of %s and %q: %v, want ok %v", c.addr, c.metrics, err, c.ok)
		}
	}

	var ready struct{ Checks map[string]string }
	in.must(in.call("GET", "/readyz", "", nil, &ready), 200)
	resp, err := http.Get("http://" + metricsAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var workerReady struct{ Checks map[string]string }
	_ = json.NewDecoder(resp.Body).Decode(&workerReady)
	resp.Body.Close()
	for who, got := range map[string]map[string]string{"api": ready.Checks, "worker": workerReady.Checks} {
		for _, dep := range []string{"database", "redis", "storage"} {
			if got[dep] != "ok" {
				t.Fatalf("%s's /readyz: %s is %q: %v", who, dep, got[dep], got)
			}
		}
	}

	citizen := in.device("metrics-device-0001", "push-token-metrics")
	const reqID = "e2e-report-request-0001"
	var r report
	form := reportForm(t, map[string]string{"category": "street-condition", "description": "Deep pothole in the bus lane",
		"lat": sunsetLat, "lon": sunsetLon, "attr.size": "large"}, testenv.PhotoJPEG)
	created := in.call("POST", "/v1/reports", citizen, form, &r, "Idempotency-Key", "metrics-1", "X-Request-ID", reqID)
	in.must(created, 201)
	if created.Header.Get("X-Request-ID") != reqID {
		t.Fatalf("X-Request-ID answered %q", created.Header.Get("X-Request-ID"))
	}
	r = in.waitStatus(citizen, r.ID, "dispatched", 10*time.Second)
	dot := in.login("dot@nyc.demo", "demo-dot")
	for _, action := range []string{"accept", "start", "resolve"} {
		in.must(in.call("POST", "/v1/cases/"+r.ID+"/actions", dot, map[string]any{"action": action, "version": r.Version}, &r), 200)
	}
	in.must(in.call("POST", "/v1/reports/"+r.ID+"/feedback", citizen, map[string]any{"action": "confirm"}, &r), 200)
	const public = 5 // dispatched, accepted, in_progress, resolved, closed
	if p := in.pushesFor(r.ID, public); len(p) != public {
		t.Fatalf("%d pushes, want %d", len(p), public)
	}

	w := scrape(t, "http://"+metricsAddr+"/metrics")
	want := []struct {
		name   string
		labels map[string]string
		ok     func(float64) bool
		says   string
	}{
		{"cityeyes_task_duration_seconds", map[string]string{"type": "case:route", "result": "ok"}, eq(1), "one route task"},
		{"cityeyes_task_duration_seconds", map[string]string{"type": "media:process", "result": "ok"}, eq(1), "one photo task"},
		{"cityeyes_task_duration_seconds", map[string]string{"type": "case:notify", "result": "ok"}, atLeast(public), "a notify task per public change"},
		{"cityeyes_pushes_total", map[string]string{"result": "sent"}, eq(public), "a push per public change"},
		{"cityeyes_pushes_total", map[string]string{"result": "failed"}, eq(0), "no failed push"},
		{"cityeyes_cases", map[string]string{"jurisdiction": "nyc", "status": "closed"}, eq(1), "the case is closed"},
		{"cityeyes_cases", map[string]string{"jurisdiction": "nyc", "status": "dispatched"}, eq(0), "no case waits"},
		{"cityeyes_cases_overdue", map[string]string{"jurisdiction": "nyc"}, eq(0), "nothing overdue"},
		{"cityeyes_outbox_backlog", nil, between(0, 2), "the outbox is (nearly) drained"},
		{"cityeyes_outbox_lag_seconds", nil, between(0, 30), "the relay keeps up"},
		{"cityeyes_sla_breaches_total", nil, eq(0), "no deadline passed"},
		{"cityeyes_stats_changes_waiting", nil, between(0, 20), "the KPI changes of one case at most (folded every 30 s)"},
		{"cityeyes_queue_tasks", map[string]string{"queue": "default", "state": "pending"}, between(0, 10), "the queue is there"},
		{"cityeyes_queue_tasks", map[string]string{"queue": "default", "state": "scheduled"}, atLeast(1), "the timers wait in the queue"},
		{"cityeyes_queue_latency_seconds", map[string]string{"queue": "default"}, between(0, 30), "pending tasks do not wait"},
	}
	for _, c := range want {
		v, ok := sample(w, c.name, c.labels)
		if !ok || !c.ok(v) {
			t.Errorf("worker: %s%v = %v (present %v); want %s", c.name, c.labels, v, ok, c.says)
		}
	}
	a := scrape(t, in.base+"/metrics")
	if v, ok := sample(a, "cityeyes_http_request_duration_seconds", map[string]string{"method": "POST", "route": "/v1/reports", "status": "201"}); !ok || v != 1 {
		t.Errorf("api: POST /v1/reports 201 observed %v times (present %v), want 1", v, ok)
	}
	if v, ok := sample(a, "cityeyes_http_request_duration_seconds", map[string]string{"method": "POST", "route": "/v1/cases/:id/actions", "status": "200"}); !ok || v != 3 {
		t.Errorf("api: POST /v1/cases/:id/actions 200 observed %v times (present %v), want 3", v, ok)
	}
	// The scrape is the one request in flight, on at least its own connection.
	if v, ok := sample(a, "cityeyes_http_requests_in_flight", nil); !ok || v != 1 {
		t.Errorf("api: %v requests in flight (present %v), want 1: the scrape itself", v, ok)
	}
	if v, ok := sample(a, "cityeyes_http_open_connections", nil); !ok || v < 1 {
		t.Errorf("api: %v open connections (present %v), want at least the scrape's own", v, ok)
	}

	// The request id, in the API's line for the request and in the worker's for the tasks
	// the request caused: routing, and the notification of the dispatch that routing wrote.
	found := map[string]bool{}
	for _, l := range api.jsonLines() {
		if l["request_id"] == reqID && l["msg"] == "request" && l["route"] == "/v1/reports" {
			found["api request"] = true
		}
	}
	for _, l := range worker.jsonLines() {
		if l["request_id"] != reqID {
			continue
		}
		switch {
		case l["msg"] == "task" && l["type"] == "case:route" && l["result"] == "ok":
			found["route task"] = true
		case l["msg"] == "case routed" && l["case"] == r.Number:
			found["routed line"] = true
		case l["msg"] == "task" && l["type"] == "case:notify":
			found["notify task"] = true
		case l["msg"] == "task" && l["type"] == "media:process":
			found["photo task"] = true
		}
	}
	for _, what := range []string{"api request", "route task", "routed line", "notify task", "photo task"} {
		if !found[what] {
			t.Errorf("no log line for the %s names request id %s", what, reqID)
		}
	}
}

func eq(n float64) func(float64) bool      { return func(v float64) bool { return v == n } }
func atLeast(n float64) func(float64) bool { return func(v float64) bool { return v >= n } }
func between(lo, hi float64) func(float64) bool {
	return func(v float64) bool { return v >= lo && v <= hi }
}

// balancer is the test's load balancer: it sends each report to the next API process in
// rotation, as a real one does to the ready ones behind it.
type balancer struct {
	mu       sync.Mutex
	backends []string
	next     int
	inflight map[string]int
}

func (b *balancer) pick() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.backends) == 0 {
		return ""
	}
	b.next = (b.next + 1) % len(b.backends)
	u := b.backends[b.next]
	b.inflight[u]++
	return u
}

func (b *balancer) release(u string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inflight[u]--
}

func (b *balancer) set(backends ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = backends
}

// busy waits until a request to u is in flight (so that stopping u catches one).
func (b *balancer) busy(u string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		n := b.inflight[u]
		b.mu.Unlock()
		if n > 0 {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

// TestRollingRestart restarts every process of a running deployment, one at a time, under a
// stream of reports: two API processes behind the test's balancer and a worker. Each API in
// turn is taken out of rotation and sent SIGTERM while a request to it is in flight, exits 0,
// is started again and put back; then a second worker starts and the first gets SIGTERM.
// A request stopped half-sent when SIGTERM arrives is finished after it. Afterwards every
// report accepted was routed exactly once, no request was answered 5xx, and each report the
// clients sent was accepted (a client retries a report after a broken connection, with the
// same Idempotency-Key).
func TestRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	in := newInstance(t)
	in.env["CITYEYES_SHUTDOWN_TIMEOUT"] = "20s"
	addrA, addrB := in.env["CITYEYES_ADDR"], testenv.FreeAddr(t)
	baseA, baseB := "http://"+addrA, "http://"+addrB
	startAPI := func(name, addr string) *proc {
		return in.launch(name, map[string]string{"CITYEYES_ADDR": addr}, "http://"+addr+"/readyz", "api")
	}
	startWorker := func(name string) *proc {
		addr := testenv.FreeAddr(t)
		return in.launch(name, map[string]string{"CITYEYES_METRICS_ADDR": addr}, "http://"+addr+"/readyz", "worker")
	}
	apiA := startAPI("api A", addrA) // first alone: it loads the demo city into the empty database
	apiB := startAPI("api B", addrB)
	worker := startWorker("worker 1")

	// Citizens enough to stay under the per-account report limit (10 a minute).
	var citizens []string
	for i := range 21 { // the last one for the half-sent requests
		citizens = append(citizens, in.device(fmt.Sprintf("rolling-device-%04d", i), fmt.Sprintf("push-token-rolling-%d", i)))
	}
	lb := &balancer{backends: []string{baseA, baseB}, inflight: map[string]int{}}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}

	type outcome struct {
		key, id string
		status  int
		retries int
		err     error
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
	)
	send := func(key, token string) outcome {
		body, _ := json.Marshal(map[string]any{"category": "street-condition", "description": "Pothole " + key,
			"lat": 40.6439502, "lon": -74.0151994, "attributes": map[string]string{"size": "large"}})
		o := outcome{key: key}
		for attempt := range 8 {
			base := lb.pick()
			if base == "" {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			req, _ := http.NewRequest("POST", base+"/v1/reports", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Idempotency-Key", key)
			resp, err := client.Do(req)
			lb.release(base)
			if err != nil {
				// The connection broke (the API was closing it): send the same report again.
				o.retries, o.err = attempt+1, err
				continue
			}
			var r report
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			_ = json.Unmarshal(data, &r)
			o.status, o.id, o.err = resp.StatusCode, r.ID, nil
			if resp.StatusCode != 201 {
				o.err = fmt.Errorf("%d from %s: %s", resp.StatusCode, base, data)
			}
			return o
		}
		return o
	}
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for g := range 4 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				// Each client has its own citizens, each sending at most 8 reports.
				i := g + 4*(n%5)
				if n/5 >= 8 {
					return
				}
				o := send(fmt.Sprintf("rolling-%d-%d", g, n), citizens[i])
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}

	// A request half-sent when SIGTERM arrives: the API finishes it, and takes no new ones.
	halfSent := func(addr string) (finish func() int) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		body := `{"category":"street-condition","description":"Half-sent pothole","lat":40.6439502,"lon":-74.0151994,"attributes":{"size":"large"}}`
		head := fmt.Sprintf("POST /v1/reports HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\n"+
			"Idempotency-Key: half-sent-%s\r\nContent-Length: %d\r\n\r\n", addr, citizens[20], addr, len(body))
		if _, err := io.WriteString(conn, head+body[:20]); err != nil {
			t.Fatal(err)
		}
		return func() int {
			defer conn.Close()
			if _, err := io.WriteString(conn, body[20:]); err != nil {
				t.Fatalf("finishing the half-sent request: %v", err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("the half-sent request got no answer: %v", err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
	}

	accepted := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(outcomes)
	}
	waitFor := func(n int) {
		deadline := time.Now().Add(60 * time.Second)
		for accepted() < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(10)
	halfKeys := 0
	for _, s := range []struct {
		name, addr string
		p          **proc
		others     []string
	}{{"api A", addrA, &apiA, []string{baseB}}, {"api B", addrB, &apiB, []string{baseA}}} {
		finish := halfSent(s.addr)
		halfKeys++
		time.Sleep(100 * time.Millisecond) // the API has read the headers and waits for the body
		if !lb.busy("http://"+s.addr, 5*time.Second) {
			t.Logf("%s: no balanced request in flight when it was stopped", s.name)
		}
		lb.set(s.others...)
		signalled := time.Now()
		if err := (*s.p).cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still accepts connections 300 ms after SIGTERM", s.name)
		}
		if status := finish(); status != 201 {
			t.Fatalf("%s: the request in flight at SIGTERM got %d, want 201", s.name, status)
		}
		(*s.p).wait(25 * time.Second)
		t.Logf("%s drained and exited 0 in %v", s.name, time.Since(signalled))
		*s.p = startAPI(s.name+" again", s.addr)
		lb.set(baseA, baseB)
		waitFor(accepted() + 10)
	}
	// The workers: the new one first, then the old one stops, finishing its tasks.
	startWorker("worker 2")
	took := worker.term(25 * time.Second)
	t.Logf("worker 1 drained and exited 0 in %v", took)
	waitFor(accepted() + 10)
	close(stop)
	clients.Wait()

	retried, refused := 0, 0
	keys := map[string]string{}
	for _, o := range outcomes {
		if o.retries > 0 {
			retried++
		}
		if o.status != 201 {
			refused++
			t.Errorf("report %s: status %d after %d retries: %v", o.key, o.status, o.retries, o.err)
			continue
		}
		keys[o.key] = o.id
	}
	t.Logf("%d reports sent, %d accepted, %d needed a retry after a broken connection", len(outcomes), len(keys), retried)
	if len(outcomes) < 30 {
		t.Fatalf("only %d reports were sent during the rolling restart", len(outcomes))
	}

	// Every accepted report is routed, once: the database has exactly the reports accepted
	// (a retried one is one report), each dispatched with one route event.
	db := testenv.OpenDB(t, in.env["CITYEYES_DATABASE_URL"])
	want := len(keys) + halfKeys
	deadline := time.Now().Add(30 * time.Second)
	for {
		var total, dispatched int
		if err := db.SQL().QueryRow("SELECT COUNT(*), COUNT(CASE WHEN status = 'dispatched' THEN 1 END) FROM cases").Scan(&total, &dispatched); err != nil {
			t.Fatal(err)
		}
		if total != want {
			t.Fatalf("the database has %d reports, %d were accepted", total, want)
		}
		if dispatched == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d reports routed 30 s after the restarts", dispatched, total)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var twice int
	if err := db.SQL().QueryRow("SELECT COUNT(*) FROM (SELECT case_id FROM case_events WHERE type = 'route' GROUP BY case_id HAVING COUNT(*) <> 1) x").Scan(&twice); err != nil {
		t.Fatal(err)
	}
	if twice != 0 {
		t.Fatalf("%d reports were routed more than once", twice)
	}
	var pending int
	if err := db.SQL().QueryRow("SELECT COUNT(*) FROM outbox WHERE task_type = 'case:route' AND done_at IS NULL").Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending != 0 {
		t.Fatalf("%d route tasks are not done", pending)
	}
	if refused > 0 {
		t.Fatalf("%d reports were not accepted", refused)
	}
}
