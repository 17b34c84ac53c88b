package main

// The harness of the fault tests (chaos_test.go): real cityeyes processes that a test can
// SIGKILL and start again, servers of the test's own that it can stop (Redis, MinIO,
// PostgreSQL), a stream of reports and handler actions through the API as a well-behaved
// app sends them (every submission retried with its Idempotency-Key until it has an answer),
// and the one checker every fault test ends with.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
	"github.com/city-eyes/cityeyes/workflows"
)

// chaos tells whether this is the long run (make chaos) rather than the quick one of make
// test; the tests pick their sizes by it.
func chaos() bool { return os.Getenv("CITYEYES_TEST_CHAOS") != "" }

// size is n in the long run and quick otherwise.
func size(quick, long int) int {
	if chaos() {
		return long
	}
	return quick
}

// needReal skips a fault test outside the real-server run: it stops and starts servers
// and kills processes, which the embedded default (all in one process) has nothing of.
func needReal(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts and kills real processes")
	}
	if !testenv.Real() {
		t.Skip("fault tests run against real PostgreSQL, Redis and MinIO (make test, make chaos)")
	}
}

// faultInstance is an instance prepared for fault tests: rate limits out of reach (every
// request comes from this one address) and a small photo, so thousands of reports stay quick.
// Each has a Redis of its own (so fault tests can run side by side, and one can stop its
// Redis without touching the others), returned for the tests that stop it.
func faultInstance(t *testing.T) (*instance, *redisServer) {
	t.Helper()
	in := newInstance(t)
	for _, name := range []string{"WRITES_PER_USER", "WRITES_PER_IP", "REPORTS_PER_USER", "DEVICES_PER_IP", "LOGINS_PER_IP"} {
		in.env["CITYEYES_LIMIT_"+name] = "1000000"
	}
	r := startRedis(t)
	in.env["CITYEYES_REDIS_URL"] = r.url()
	return in, r
}

// redisServer is a redis-server of one test, which the test may stop and start again
// (empty: it keeps nothing on disk, as a Redis that lost its data).
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin := os.Getenv("CITYEYES_TEST_REDIS_BIN")
	if bin == "" {
		t.Skip("CITYEYES_TEST_REDIS_BIN is not set (make test sets it)")
	}
	_, port, _ := strings.Cut(testenv.FreeAddr(t), ":")
	p, _ := strconv.Atoi(port)
	r := &redisServer{t: t, port: p}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// start starts the server, empty, and waits until it answers.
func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command(os.Getenv("CITYEYES_TEST_REDIS_BIN"), "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.t.TempDir())
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatal("redis-server did not start")
}

// stop kills the server: whatever it held is gone.
func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// smallJPEG is a 96×64 JPEG: a real photo for the whole pipeline (sniffed, stored,
// decoded, versions made) at a fraction of a camera photo's cost.
var smallJPEG = func() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 96, 64))
	for x := range 96 {
		for y := range 64 {
			img.Set(x, y, color.RGBA{uint8(x * 2), uint8(y * 3), 90, 255})
		}
	}
	var b bytes.Buffer
	_ = jpeg.Encode(&b, img, nil)
	return b.Bytes()
}()

// faultProc is one cityeyes process of a fault test, which the test may kill and start again.
type faultProc struct {
	in   *instance
	args []string
	env  map[string]string
	base string // "" for a worker, which serves no HTTP
	log  string

	mu    sync.Mutex
	cmd   *exec.Cmd
	kills int
}

// newProc describes `cityeyes <args>` on the instance, with env overriding the
// instance's environment (another address for a second API, say).
func (in *instance) newProc(env map[string]string, args ...string) *faultProc {
	p := &faultProc{in: in, args: args, env: map[string]string{}, base: in.base}
	for k, v := range in.env {
		p.env[k] = v
	}
	for k, v := range env {
		p.env[k] = v
	}
	if a, ok := env["CITYEYES_ADDR"]; ok {
		p.base = "http://" + a
	}
	if args[0] == "worker" {
		p.base = ""
	}
	p.log = filepath.Join(in.t.TempDir(), strings.Join(args, "-")+".log")
	in.t.Cleanup(func() {
		p.stop()
		if in.t.Failed() {
			b, _ := os.ReadFile(p.log)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			in.t.Logf("last lines of cityeyes %v:\n%s", args, b)
		}
	})
	return p
}

// start starts the process and waits until it is ready: /readyz answers 200 for a
// process with the API, the worker's start line for a worker.
func (p *faultProc) start() {
	p.in.t.Helper()
	if err := p.tryStart(); err != nil {
		p.in.t.Fatal(err)
	}
}

// tryStart is start for goroutines other than the test's, which may not call t.Fatal.
func (p *faultProc) tryStart() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("cityeyes %v is already running", p.args)
	}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(build(p.in.t), p.args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range p.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return err
	}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "worker running") {
				once = true
				close(started)
			}
		}
		if !once {
			close(started)
		}
	}()
	p.cmd = cmd
	deadline := time.Now().Add(60 * time.Second)
	if p.base == "" {
		select {
		case <-started:
			return nil
		case <-time.After(time.Until(deadline)):
			return fmt.Errorf("cityeyes %v did not start within 60 s", p.args)
		}
	}
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("cityeyes %v was not ready within 60 s", p.args)
}

// kill sends SIGKILL: no shutdown of any kind, as when a machine dies.
func (p *faultProc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.cmd = nil
	p.kills++
}

// stop ends the process as an orchestrator would (SIGTERM), or kills it after 30 s.
func (p *faultProc) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.cmd = nil
}

// citizen is a device of the stream, with the push token FCM knows it by.
type citizen struct {
	token, pushToken string
}

// accepted is a report the API answered 201 for.
type accepted struct {
	ID, Number string
	citizen    int
	photos     int
}

// stream sends reports and handler actions through the API the way a good app does: every
// submission carries an Idempotency-Key and is sent again, with the same key, until the
// API gives an answer (201, or a 4xx); a handler action is read back after any error, so
// it is never applied on a stale view.
type stream struct {
	in       *instance
	bases    []string // APIs to spread requests over
	citizens []citizen
	handler  string
	client   *http.Client

	mu       sync.Mutex
	accepted []accepted
	statuses map[int]int // every answer's status, 0 for no answer (connection refused, reset)
	fivexx   []string    // 5xx other than 503, with their bodies: each one is a defect
	no503    []string    // 503 answers without Retry-After or without problem+json
	actions  atomic.Int64
	next     atomic.Int64
	// abandonedOK allows photos of submissions killed mid-request (tests that kill APIs).
	abandonedOK bool
	keySeq      atomic.Int64
}

func (in *instance) newStream(citizens int, bases ...string) *stream {
	in.t.Helper()
	if len(bases) == 0 {
		bases = []string{in.base}
	}
	s := &stream{in: in, bases: bases, statuses: map[int]int{},
		client: &http.Client{Timeout: 20 * time.Second}}
	for i := range citizens {
		push := fmt.Sprintf("push-%s-%d", strings.ReplaceAll(in.t.Name(), "/", "-"), i)
		s.citizens = append(s.citizens, citizen{token: in.device(fmt.Sprintf("dev-%d-%s", i, push), push), pushToken: push})
	}
	s.handler = in.login("dot@nyc.demo", "demo-dot")
	return s
}

// send makes one request to one of the APIs and records its status.
func (s *stream) send(method, path, token string, body []byte, ctype string, headers ...string) (int, http.Header, []byte) {
	base := s.bases[int(s.next.Add(1))%len(s.bases)]
	req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	status, hdr, data := 0, http.Header{}, []byte(nil)
	if resp, err := s.client.Do(req); err == nil {
		data, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			status, hdr = resp.StatusCode, resp.Header
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses[status]++
	switch {
	case status == 503:
		if hdr.Get("Retry-After") == "" || !strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json") {
			s.no503 = append(s.no503, fmt.Sprintf("%s %s: Retry-After %q, Content-Type %q", method, path, hdr.Get("Retry-After"), hdr.Get("Content-Type")))
		}
	case status >= 500:
		s.fivexx = append(s.fivexx, fmt.Sprintf("%s %s: %d %s", method, path, status, data))
	}
	return status, hdr, data
}

// submit files report number i for citizen i mod n and retries it with the same key until
// it is accepted (or refused with a 4xx, which fails the test), for up to five minutes.
func (s *stream) submit(i int) {
	s.submitKey(i, fmt.Sprintf("stream-%d-%d", time.Now().UnixNano(), s.keySeq.Add(1)))
}

// form is the body of report number i.
func (s *stream) form(i int) *multipartBody {
	return reportForm(s.in.t, map[string]string{"category": "street-condition", "description": fmt.Sprintf("Pothole %d in the bus lane", i),
		"lat": sunsetLat, "lon": sunsetLon, "attr.size": "large"}, smallJPEG)
}

// submitKey is submit with the Idempotency-Key given.
func (s *stream) submitKey(i int, key string) {
	t := s.in.t
	ci := i % len(s.citizens)
	form := s.form(i)
	deadline := time.Now().Add(5 * time.Minute)
	for attempt := 0; ; attempt++ {
		status, _, data := s.send("POST", "/v1/reports", s.citizens[ci].token, form.buf.Bytes(), form.ctype, "Idempotency-Key", key)
		switch {
		case status == 201:
			var r report
			if err := json.Unmarshal(data, &r); err != nil {
				t.Errorf("report %d: %v", i, err)
				return
			}
			s.mu.Lock()
			s.accepted = append(s.accepted, accepted{ID: r.ID, Number: r.Number, citizen: ci, photos: 1})
			s.mu.Unlock()
			return
		case status >= 400 && status < 500 && status != 429:
			t.Errorf("report %d refused: %d %s", i, status, data)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("report %d: no answer but %d after 5 minutes of retries", i, status)
			return
		}
		time.Sleep(time.Duration(min(50*(attempt+1), 500)) * time.Millisecond)
	}
}

// run submits n reports over c submitters while a handler works DOT's cases; it returns
// when all n have an answer. The handler stops with it.
func (s *stream) run(n, c int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				s.submit(i)
			}
		}()
	}
	stop := make(chan struct{})
	handlerDone := make(chan struct{})
	go func() { defer close(handlerDone); s.work(stop) }()
	wg.Wait()
	close(stop)
	<-handlerDone
}

// start runs the stream in the background; the function returned waits for it.
func (s *stream) start(n, c int) (wait func()) {
	done := make(chan struct{})
	go func() { defer close(done); s.run(n, c) }()
	return func() { <-done }
}

// count is how many reports were accepted so far.
func (s *stream) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.accepted)
}

// waitAccepted waits until at least k reports are accepted.
func (s *stream) waitAccepted(k int) {
	deadline := time.Now().Add(2 * time.Minute)
	for s.count() < k {
		if time.Now().After(deadline) {
			s.in.t.Fatalf("only %d of %d reports accepted after 2 minutes", s.count(), k)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// work is DOT's case handler: it takes every third accepted report through accept, start
// and resolve, one step at a time, until stop.
func (s *stream) work(stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	done := map[string]bool{}
	for {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		s.mu.Lock()
		var todo []string
		for i, a := range s.accepted {
			if i%3 == 0 && !done[a.ID] {
				todo = append(todo, a.ID)
			}
		}
		s.mu.Unlock()
		if len(todo) == 0 {
			continue
		}
		id := todo[rng.IntN(len(todo))]
		status, _, data := s.send("GET", "/v1/cases/"+id, s.handler, nil, "")
		if status != 200 {
			continue // not routed yet (403: in no department's queue) or the API is away
		}
		var c report
		if json.Unmarshal(data, &c) != nil {
			continue
		}
		next := map[string]string{"dispatched": "accept", "accepted": "start", "in_progress": "resolve"}[c.Status]
		if next == "" {
			done[id] = c.Status != "submitted"
			continue
		}
		body, _ := json.Marshal(map[string]any{"action": next, "version": c.Version, "note": "crew on site", "public": true})
		if status, _, _ := s.send("POST", "/v1/cases/"+id+"/actions", s.handler, body, "application/json"); status == 200 {
			s.actions.Add(1)
		}
	}
}

// figures is what a fault test reports: how much went through, what broke, what was lost.
type figures struct {
	Reports, Kills, Actions, Events, Pushes, Objects int
	// Abandoned are the photos of submissions killed mid-request, for the sweeper; Swept are
	// those the case-photo sweeper removed when the stream had settled.
	Abandoned, Swept int
	// Resent are second pushes of deliveries in doubt, each recorded as such.
	Resent   int
	Statuses map[int]int
}

func (f figures) String() string {
	keys := make([]int, 0, len(f.Statuses))
	for k := range f.Statuses {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		name := strconv.Itoa(k)
		if k == 0 {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s: %d", name, f.Statuses[k]))
	}
	return fmt.Sprintf("%d reports accepted, %d kills, %d handler actions, %d events, %d pushes, %d objects "+
		"(%d of them photos of killed submissions; the case-photo sweeper removed %d), %d pushes sent again after a kill in doubt; answers {%s}",
		f.Reports, f.Kills, f.Actions, f.Events, f.Pushes, f.Objects, f.Abandoned, f.Swept, f.Resent, strings.Join(parts, ", "))
}

// check is the one checker of every fault test. Once the faults are healed it waits (up to
// five minutes: a task that failed while a server was away retries with a growing back-off,
// and a killed worker's tasks wait out Asynq's lease and its recoverer's one-minute round)
// for the work in hand to drain, then checks every accepted report: it exists
// once, it was routed exactly once, its events are in order (seq 1..n, times not going
// back, each status change starting from where the last ended), each public event reached
// each of its reporter's devices exactly once at the fake FCM server, each photo and its
// versions are in the object store; and that the store holds no object no photo row names,
// the database no case nobody was told of, and no request got a 5xx other than a 503 with
// Retry-After. It fails the test with every problem it found and returns the figures.
func (s *stream) check(store storage.Store, kills int) figures {
	t := s.in.t
	t.Helper()
	db := testenv.OpenDB(t, s.in.env["CITYEYES_DATABASE_URL"]).SQL()
	s.mu.Lock()
	acc := slices.Clone(s.accepted)
	fig := figures{Reports: len(acc), Kills: kills, Actions: int(s.actions.Load()), Statuses: map[int]int{}}
	for k, v := range s.statuses {
		fig.Statuses[k] = v
	}
	var problems []string
	problems = append(problems, s.fivexx...)
	problems = append(problems, s.no503...)
	s.mu.Unlock()

	var last []string
	settle := time.Now()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		last = s.verify(db, store, acc, &fig)
		if len(last) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(last) == 0 {
		// Settled: a little longer, to catch a duplicate push on its way.
		time.Sleep(time.Second)
		last = s.verify(db, store, acc, &fig)
	}
	if len(last) == 0 && fig.Abandoned > 0 {
		// The photos of submissions killed mid-request are the case-photo sweeper's: run it
		// as if a day had passed, then nothing may be left that no photo names, and every
		// photo of an accepted report must still be there.
		w := workflows.New(workflows.Config{DB: testenv.OpenDB(t, s.in.env["CITYEYES_DATABASE_URL"]), Store: store,
			Redis: asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, Now: func() time.Time { return time.Now().Add(25 * time.Hour) }})
		n, err := w.SweepCasePhotos(context.Background())
		if err != nil {
			problems = append(problems, "case-photo sweep: "+err.Error())
		}
		fig.Swept = n
		abandoned := fig.Abandoned
		s.abandonedOK = false
		last = s.verify(db, store, acc, &fig)
		fig.Abandoned = abandoned
	}
	problems = append(problems, last...)
	if len(problems) > 0 {
		if len(problems) > 40 {
			problems = append(problems[:40], fmt.Sprintf("... and %d more", len(problems)-40))
		}
		t.Errorf("%s\n%d problems:\n  %s", fig, len(problems), strings.Join(problems, "\n  "))
	}
	t.Logf("%s backend: %s; settled %v after the stream ended", testenv.Name(), fig, time.Since(settle).Round(100*time.Millisecond))
	return fig
}

// verify is one pass of check over the current state.
func (s *stream) verify(db *sql.DB, store storage.Store, acc []accepted, fig *figures) []string {
	ctx := context.Background()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// Work still due: outbox rows not done whose time has come (deadline timers are days
	// away and do not count).
	var due int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE done_at IS NULL AND process_at <= $1`, time.Now()).Scan(&due); err != nil {
		return []string{"read outbox: " + err.Error()}
	}
	if due > 0 {
		bad("%d outbox rows are due and not done", due)
	}

	byID := map[string]accepted{}
	for _, a := range acc {
		if _, dup := byID[a.ID]; dup {
			bad("report %s was answered 201 twice for different keys", a.Number)
		}
		byID[a.ID] = a
	}
	var cases int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM cases`).Scan(&cases); err != nil {
		return []string{"count cases: " + err.Error()}
	}
	if cases != len(byID) {
		bad("the database holds %d cases, the API accepted %d reports", cases, len(byID))
	}

	// Events of every case, in seq order.
	type event struct {
		id, caseID, typ, from, to string
		seq                       int
		public                    bool
		at                        time.Time
	}
	rows, err := db.QueryContext(ctx, `SELECT id, case_id, seq, type, from_status, to_status, public, created_at FROM case_events ORDER BY case_id, seq`)
	if err != nil {
		return []string{"read events: " + err.Error()}
	}
	events := map[string][]event{}
	for rows.Next() {
		var e event
		if err := rows.Scan(&e.id, &e.caseID, &e.seq, &e.typ, &e.from, &e.to, &e.public, &e.at); err != nil {
			rows.Close()
			return []string{"read events: " + err.Error()}
		}
		events[e.caseID] = append(events[e.caseID], e)
	}
	rows.Close()

	// Pushes at the fake FCM, by event and token.
	pushes := map[[2]string]int{}
	msgs := s.in.fcm.Messages()
	for _, m := range msgs {
		pushes[[2]string{m.Data["event_id"], m.Token}]++
		if _, ok := byID[m.Data["report_id"]]; !ok {
			bad("a push for report %s, which the API never accepted", m.Data["report_id"])
		}
	}
	fig.Pushes = len(msgs)

	// Deliveries as the database records them: a second push is allowed only for one the
	// database says was sent again after an attempt in doubt (a worker killed between FCM
	// taking the push and its record).
	resent := map[[2]string]bool{}
	rows, err = db.QueryContext(ctx, `SELECT d.event_id, coalesce(v.push_token, ''), d.error FROM deliveries d JOIN devices v ON v.id = d.device_id WHERE d.error = $1`, models.DeliveryResent)
	if err != nil {
		return []string{"read deliveries: " + err.Error()}
	}
	for rows.Next() {
		var ev, token, note string
		_ = rows.Scan(&ev, &token, &note)
		resent[[2]string{ev, token}] = true
	}
	rows.Close()
	fig.Resent = 0

	statusOf := map[string]string{}
	rows, err = db.QueryContext(ctx, `SELECT id, status FROM cases`)
	if err != nil {
		return []string{"read cases: " + err.Error()}
	}
	for rows.Next() {
		var id, st string
		_ = rows.Scan(&id, &st)
		statusOf[id] = st
	}
	rows.Close()

	expected := map[[2]string]bool{}
	fig.Events = 0
	for _, a := range acc {
		evs := events[a.ID]
		fig.Events += len(evs)
		st, ok := statusOf[a.ID]
		if !ok {
			bad("report %s was accepted but is not in the database", a.Number)
			continue
		}
		routes, cur := 0, ""
		var prev time.Time
		for i, e := range evs {
			if e.seq != i+1 {
				bad("report %s: event %d has seq %d", a.Number, i+1, e.seq)
			}
			if e.at.Before(prev) {
				bad("report %s: event %d (%s) is dated before the one before it", a.Number, e.seq, e.typ)
			}
			prev = e.at
			if e.typ == "route" {
				routes++
			}
			if e.to != "" && e.to != e.from && i > 0 && e.from != cur {
				bad("report %s: event %d (%s) goes from %s, but the case was %s", a.Number, e.seq, e.typ, e.from, cur)
			}
			if e.to != "" {
				cur = e.to
			}
			if e.public && e.typ != "submit" {
				key := [2]string{e.id, s.citizens[a.citizen].pushToken}
				expected[key] = true
				switch n := pushes[key]; {
				case n == 0:
					bad("report %s: no push yet for its %s event (%s)", a.Number, e.typ, e.to)
				case n > 1 && resent[key]:
					fig.Resent += n - 1
				case n > 1:
					bad("report %s: %d pushes for its %s event (%s) to one device", a.Number, n, e.typ, e.to)
				}
			}
		}
		if len(evs) == 0 || evs[0].typ != "submit" {
			bad("report %s: the first event is not its submission", a.Number)
		}
		if routes != 1 {
			bad("report %s: routed %d times (status %s)", a.Number, routes, st)
		}
		if cur != st {
			bad("report %s: status %s, but its events end at %s", a.Number, st, cur)
		}
	}
	for key, n := range pushes {
		if !expected[key] {
			bad("%d pushes for event %s to %s, which is no public event of an accepted report", n, key[0], key[1])
		}
	}

	// Photos: each row's original and versions are stored; nothing else is.
	named := map[string]bool{}
	perCase := map[string]int{}
	rows, err = db.QueryContext(ctx, `SELECT case_id, object_key, display_key, thumb_key, processed_at IS NOT NULL, process_error FROM media`)
	if err != nil {
		return []string{"read media: " + err.Error()}
	}
	type photo struct {
		caseID, key    string
		display, thumb sql.NullString
		processed      bool
		processError   string
	}
	var photos []photo
	for rows.Next() {
		var p photo
		var caseID sql.NullString
		if err := rows.Scan(&caseID, &p.key, &p.display, &p.thumb, &p.processed, &p.processError); err != nil {
			rows.Close()
			return []string{"read media: " + err.Error()}
		}
		p.caseID = caseID.String
		photos = append(photos, p)
	}
	rows.Close()
	stored := map[string]bool{}
	if err := store.Walk(ctx, "", func(o storage.Object) error { stored[o.Key] = true; return nil }); err != nil {
		return []string{"list the object store: " + err.Error()}
	}
	fig.Objects = len(stored)
	for _, p := range photos {
		perCase[p.caseID]++
		named[p.key] = true
		if !stored[p.key] {
			bad("photo %s of case %s is not in the object store", p.key, p.caseID)
		}
		if !p.processed {
			bad("photo %s of case %s has no versions yet", p.key, p.caseID)
			continue
		}
		if p.processError != "" || !p.display.Valid || !p.thumb.Valid {
			bad("photo %s of case %s: no versions (%s)", p.key, p.caseID, p.processError)
			continue
		}
		for _, k := range []string{p.display.String, p.thumb.String} {
			named[k] = true
			if !stored[k] {
				bad("version %s of case %s is not in the object store", k, p.caseID)
			}
		}
	}
	for _, a := range acc {
		if perCase[a.ID] != a.photos {
			bad("report %s has %d photos, %d were sent", a.Number, perCase[a.ID], a.photos)
		}
	}
	// An object under cases/<id>/ of a case that does not exist was stored by a submission
	// killed before its transaction committed (the client's retry stored its photos again
	// under a new id). Removing those is the orphan sweeper's job (workflows/sweep.go);
	// until it runs they are counted, and allowed only where the test kills API processes.
	// Any other object no photo names is a defect.
	var orphans []string
	fig.Abandoned = 0
	for k := range stored {
		if named[k] {
			continue
		}
		parts := strings.Split(k, "/")
		if s.abandonedOK && len(parts) == 3 && parts[0] == "cases" {
			if _, ok := statusOf[parts[1]]; !ok {
				fig.Abandoned++
				continue
			}
		}
		orphans = append(orphans, k)
	}
	if len(orphans) > 0 {
		sort.Strings(orphans)
		bad("%d objects in the store that no photo names (orphans), e.g. %s", len(orphans), orphans[0])
	}
	return problems
}

// storeOf opens the instance's object store, for the checker.
func (in *instance) storeOf() storage.Store {
	in.t.Helper()
	m, err := storage.NewMinIO(context.Background(), storage.MinIOConfig{Endpoint: in.env["CITYEYES_S3_ENDPOINT"],
		AccessKey: in.env["CITYEYES_S3_ACCESS_KEY"], SecretKey: in.env["CITYEYES_S3_SECRET_KEY"], Bucket: in.env["CITYEYES_S3_BUCKET"]})
	if err != nil {
		in.t.Fatal(err)
	}
	return m
}

// minioServer is a MinIO of one test, which the test may stop and start again (its data
// stays on disk, as a MinIO that was down for a while).
type minioServer struct {
	t                    *testing.T
	addr, console, dir   string
	accessKey, secretKey string
	cmd                  *exec.Cmd
}

func startMinIO(t *testing.T) *minioServer {
	t.Helper()
	if os.Getenv("CITYEYES_TEST_MINIO_BIN") == "" {
		t.Skip("CITYEYES_TEST_MINIO_BIN is not set (make test sets it)")
	}
	m := &minioServer{t: t, addr: testenv.FreeAddr(t), console: testenv.FreeAddr(t), dir: t.TempDir(),
		accessKey: "faults", secretKey: "faults-secret-key"}
	m.start()
	t.Cleanup(m.stop)
	return m
}

func (m *minioServer) start() {
	m.t.Helper()
	m.cmd = exec.Command(os.Getenv("CITYEYES_TEST_MINIO_BIN"), "server", "--address", m.addr, "--console-address", m.console, m.dir)
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.accessKey, "MINIO_ROOT_PASSWORD="+m.secretKey, "MINIO_CI_CD=1", "MINIO_UPDATE=off")
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + m.addr + "/minio/health/live"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.t.Fatal("minio did not start within 60 s")
}

func (m *minioServer) stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
	m.cmd = nil
}

// use points the instance at this MinIO.
func (m *minioServer) use(in *instance) {
	in.env["CITYEYES_S3_ENDPOINT"], in.env["CITYEYES_S3_ACCESS_KEY"], in.env["CITYEYES_S3_SECRET_KEY"] = m.addr, m.accessKey, m.secretKey
	in.env["CITYEYES_S3_BUCKET"] = "faults"
}

// pgServer is a PostgreSQL cluster of one test, which the test may stop and start again.
type pgServer struct {
	t        *testing.T
	bin, dir string
	port     int
}

func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	bin := os.Getenv("CITYEYES_TEST_PG_BIN")
	if bin == "" {
		t.Skip("CITYEYES_TEST_PG_BIN is not set (make test sets it)")
	}
	// initdb refuses to run as root: as root the cluster belongs to postgres, in a
	// directory postgres can reach.
	dir, err := os.MkdirTemp("/tmp", "cityeyes-faults-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_, port, _ := strings.Cut(testenv.FreeAddr(t), ":")
	p := &pgServer{t: t, bin: bin, dir: dir}
	p.port, _ = strconv.Atoi(port)
	if os.Geteuid() == 0 {
		_ = os.Chmod(dir, 0o755)
		if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	p.run("initdb", "-D", dir+"/data", "--auth=trust", "-U", "postgres", "--no-sync")
	p.start()
	t.Cleanup(func() { p.ctl("stop", "-m", "immediate") })
	return p
}

func (p *pgServer) command(name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, name)}, args...)...)
	}
	return exec.Command(filepath.Join(p.bin, name), args...)
}

func (p *pgServer) run(name string, args ...string) {
	p.t.Helper()
	cmd := p.command(name, args...)
	cmd.Dir = p.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func (p *pgServer) ctl(args ...string) {
	cmd := p.command("pg_ctl", append(args, "-D", p.dir+"/data")...)
	cmd.Dir = p.dir
	_ = cmd.Run()
}

func (p *pgServer) start() {
	p.t.Helper()
	p.run("pg_ctl", "start", "-w", "-t", "60", "-D", p.dir+"/data", "-l", p.dir+"/postgres.log",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", p.port, p.dir))
}

// stop stops the cluster at once, as a crash would (immediate: no checkpoint, sessions cut).
func (p *pgServer) stop() {
	p.t.Helper()
	p.run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", p.dir+"/data")
}

func (p *pgServer) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}
