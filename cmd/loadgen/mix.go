package main

// The realistic mix and the soak.
//
//	loadgen mix  -url U -duration 60s -c 16            as fast as c workers go: the peak
//	loadgen soak -url U -rate 40 -duration 30m         40 requests/s; server memory and goroutines must stay flat
//
// Both drive what the product sees in a day, by weight: citizens submitting reports with a
// photo, polling their own reports, looking at reports nearby and confirming the fixes of
// theirs that were resolved; DOT's case handler reading the queue and taking cases through
// accept, start and resolve; the supervisor reading the KPIs (GET /v1/stats, when the
// server has it). Every answer but a 2xx is an error. The run prints throughput, latency
// percentiles per kind of request, and the errors.
//
// Like a city's, the reports fall anywhere in the city (-areas: the areas of its
// configuration), and the handler closes them about as fast as they come, so a long run
// grows the history a city grows, not one corner's pile of open cases. -areas "" puts them
// all within 300 m of -lat/-lon instead: a hot spot.
//
// Each worker keeps one connection of its own, as a phone does. Shared by all of them, a
// pool's count of open connections would follow the busiest instant of the last minutes,
// and with it the server's goroutines (one per connection), which the soak judges.
//
// The API's write rate limits must be raised on the server (CITYEYES_LIMIT_WRITES_PER_IP,
// CITYEYES_LIMIT_WRITES_PER_USER, CITYEYES_LIMIT_REPORTS_PER_USER, CITYEYES_LIMIT_DEVICES_PER_IP,
// CITYEYES_LIMIT_LOGINS_PER_IP): every request here comes from one address.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The kinds of step of the mix, with their weights (per 100 steps; a step is one request
// but for a handler's, which is three).
var mixKinds = []struct {
	name   string
	weight int
}{
	{"submit", 8},  // POST /v1/reports, multipart with one photo
	{"poll", 30},   // GET /v1/reports/{id}, a citizen's own report
	{"nearby", 20}, // GET /v1/reports/nearby
	{"queue", 8},   // GET /v1/queue, the handler's work queue
	{"action", 24}, // POST /v1/cases/{id}/actions: accept, start or resolve (three per case: the handler keeps up)
	{"confirm", 5}, // POST /v1/reports/{id}/feedback: a reporter confirms a fix (most of them do)
	{"stats", 5},   // GET /v1/stats, the supervisor
}

type mixOptions struct {
	url      string
	c        int
	duration time.Duration
	rate     float64 // requests per second; 0 for as fast as the workers go
	photo    string
	lat, lon float64
	areas    string
	citizens int
	// Soak only.
	warmup, sample, window time.Duration
	maxGrowth              float64
}

// runMix runs the mix (mode "mix") or the soak (mode "soak").
func runMix(mode string, args []string, out io.Writer) error {
	var o mixOptions
	fs := flag.NewFlagSet("loadgen "+mode, flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "City Eyes base URL (a server on this machine, its CITYEYES_LIMIT_* raised)")
	fs.IntVar(&o.c, "c", 16, "concurrent workers")
	fs.DurationVar(&o.duration, "duration", time.Minute, "how long to run")
	fs.Float64Var(&o.rate, "rate", 0, "requests per second (0: as fast as the workers go; soak needs a rate)")
	fs.StringVar(&o.photo, "photo", "../shared/data/photos/DSCN0010.jpg", "photo to attach to every report")
	fs.StringVar(&o.areas, "areas", "cmd/cityeyes/demo/neighborhoods.geojson", "GeoJSON areas of the city to spread the reports over (\"\": all within 300 m of -lat/-lon)")
	fs.Float64Var(&o.lat, "lat", 40.6439502, "centre of the reports without -areas (Sunset Park, routed to DOT in the demo city)")
	fs.Float64Var(&o.lon, "lon", -74.0151994, "centre of the reports without -areas")
	fs.IntVar(&o.citizens, "citizens", 64, "citizen devices to spread the reports over")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Minute, "soak: time before the first memory and goroutine sample counts")
	fs.DurationVar(&o.sample, "sample", 10*time.Second, "soak: how often to read the server's /metrics")
	fs.DurationVar(&o.window, "window", 5*time.Minute, "soak: the first and the last this long after the warm-up are compared, by their medians")
	fs.Float64Var(&o.maxGrowth, "max-growth", 0.10, "soak: largest growth of resident memory and goroutines allowed after the warm-up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if mode == "soak" && o.rate <= 0 {
		return errors.New("soak: -rate is required (half the peak the mix measured)")
	}
	photo, err := os.ReadFile(o.photo)
	if err != nil {
		return err
	}
	m, err := newMix(o, photo)
	if err != nil {
		return err
	}
	var samples *sampler
	if mode == "soak" {
		samples = &sampler{url: o.url + "/metrics", client: m.client}
		go samples.run(o.sample, o.duration)
	}
	m.drive()
	m.print(out)
	if samples != nil {
		samples.stop()
		if err := samples.verdict(out, o.warmup, o.window, o.maxGrowth); err != nil {
			return err
		}
	}
	if n := m.errorCount(); n > 0 {
		return fmt.Errorf("%d requests failed", n)
	}
	return nil
}

// mix is one run: its accounts, the reports it made, and what it measured.
type mix struct {
	o       mixOptions
	client  *http.Client // for setting up and for /metrics; each worker has its own
	photo   []byte
	points  *cityPoints // nil: the hot spot around -lat/-lon
	kinds   []string    // one entry per weight unit
	tokens  []string    // citizens
	handler string      // dot@nyc.demo
	super   string      // supervisor@nyc.demo

	mu       sync.Mutex
	mine     [][]string // per citizen: the reports they made
	workset  []held     // reports the handler may act on, none held by two workers at once
	resolved []held     // resolved reports their reporters have not confirmed yet
	lat      map[string][]time.Duration
	errs     map[string]int
	sample   map[string]string // the first error of each kind
	missed   atomic.Int64      // soak: ticks dropped because every worker was busy
	elapsed  time.Duration
	noStats  string
}

func newMix(o mixOptions, photo []byte) (*mix, error) {
	m := &mix{o: o, photo: photo, client: oneConnection(),
		lat: map[string][]time.Duration{}, errs: map[string]int{}, sample: map[string]string{}}
	if o.areas != "" {
		var err error
		if m.points, err = loadCityPoints(o.areas); err != nil {
			return nil, err
		}
	}
	run := time.Now().UnixNano()
	for i := range o.citizens {
		t, err := device(m.client, o.url, fmt.Sprintf("mix-%d-%d", run, i))
		if err != nil {
			return nil, err
		}
		m.tokens = append(m.tokens, t)
	}
	m.mine = make([][]string, len(m.tokens))
	var err error
	if m.handler, err = m.login("dot@nyc.demo", "demo-dot"); err != nil {
		return nil, err
	}
	if m.super, err = m.login("supervisor@nyc.demo", "demo-supervisor"); err != nil {
		return nil, err
	}
	// The supervisor's KPIs may not be on this server yet: then their share goes to polls.
	status, _, err := m.do(m.client, "GET", "/v1/stats", m.super, nil, "")
	if err != nil {
		return nil, err
	}
	for _, k := range mixKinds {
		name := k.name
		w := k.weight
		if name == "stats" && status == http.StatusNotFound {
			m.noStats = "GET /v1/stats answered 404 (not on this server): its share went to polls"
			name = "poll"
		}
		for range w {
			m.kinds = append(m.kinds, name)
		}
	}
	return m, nil
}

// oneConnection is a client that keeps one connection open, to be used by one goroutine.
func oneConnection() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
}

func (m *mix) login(email, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	status, data, err := m.do(m.client, "POST", "/v1/auth/login", "", bytes.NewReader(body), "application/json")
	if err != nil {
		return "", err
	}
	if status != 200 {
		return "", fmt.Errorf("login %s: %d %s (is the demo city loaded?)", email, status, data)
	}
	var l struct{ Token string }
	return l.Token, json.Unmarshal(data, &l)
}

// do sends one request on client and returns the status and body.
func (m *mix) do(client *http.Client, method, path, token string, body io.Reader, ctype string, headers ...string) (int, []byte, error) {
	req, err := http.NewRequest(method, m.o.url+path, body)
	if err != nil {
		return 0, nil, err
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
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// drive runs the workers until the duration is over: as fast as they go, or at the rate.
func (m *mix) drive() {
	var ticks chan struct{}
	stop := make(chan struct{})
	if m.o.rate > 0 {
		ticks = make(chan struct{}, m.o.c)
		go func() {
			t := time.NewTicker(time.Duration(float64(time.Second) / m.o.rate))
			defer t.Stop()
			for {
				select {
				case <-stop:
					close(ticks)
					return
				case <-t.C:
					select {
					case ticks <- struct{}{}:
					default:
						m.missed.Add(1)
					}
				}
			}
		}()
	}
	start := time.Now()
	end := start.Add(m.o.duration)
	var wg sync.WaitGroup
	for w := range m.o.c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wk := &worker{rng: rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w))), client: oneConnection()}
			defer wk.client.CloseIdleConnections()
			wk.ticks = ticks
			for time.Now().Before(end) {
				m.one(wk)
			}
		}()
	}
	if ticks != nil {
		time.Sleep(m.o.duration)
		close(stop)
	}
	wg.Wait()
	m.elapsed = time.Since(start)
}

// worker is what one of the run's goroutines owns: its random numbers and its connection.
type worker struct {
	rng    *rand.Rand
	client *http.Client
	ticks  <-chan struct{} // the run's clock at -rate; nil: as fast as it goes
}

// pace waits for the next tick of the run's clock, so that -rate counts requests however
// many one step of a user makes (a handler's step reads the case twice, then acts). False
// once the clock has stopped.
func (w *worker) pace() bool {
	if w.ticks == nil {
		return true
	}
	_, ok := <-w.ticks
	return ok
}

// one sends one request of a kind drawn by weight.
func (m *mix) one(w *worker) {
	kind := m.kinds[w.rng.IntN(len(m.kinds))]
	ci := w.rng.IntN(len(m.tokens))
	switch kind {
	case "poll":
		m.mu.Lock()
		own := m.mine[ci]
		id := ""
		if len(own) > 0 {
			id = own[w.rng.IntN(len(own))]
		}
		m.mu.Unlock()
		if id == "" {
			m.submit(w, ci) // nothing to poll yet
			return
		}
		m.timed(w, "poll", func() (int, []byte, error) { return m.do(w.client, "GET", "/v1/reports/"+id, m.tokens[ci], nil, "") })
	case "nearby":
		lat, lon := m.point(w.rng)
		m.timed(w, "nearby", func() (int, []byte, error) {
			return m.do(w.client, "GET", fmt.Sprintf("/v1/reports/nearby?lat=%.6f&lon=%.6f&radius=500", lat, lon), m.tokens[ci], nil, "")
		})
	case "queue":
		m.queue(w)
	case "stats":
		m.timed(w, "stats", func() (int, []byte, error) { return m.do(w.client, "GET", "/v1/stats", m.super, nil, "") })
	case "action":
		if !m.action(w) {
			m.queue(w) // nothing to act on: the handler looks at the queue
		}
	case "confirm":
		if !m.confirm(w) {
			m.submit(w, ci) // nothing resolved yet
		}
	default:
		m.submit(w, ci)
	}
}

func (m *mix) queue(w *worker) {
	m.timed(w, "queue", func() (int, []byte, error) {
		return m.do(w.client, "GET", "/v1/queue?status=dispatched", m.handler, nil, "")
	})
}

// point is where a report is: inside the city's areas, or within about 300 m of -lat/-lon.
func (m *mix) point(rng *rand.Rand) (float64, float64) {
	if m.points != nil {
		return m.points.draw(rng)
	}
	return m.o.lat + (rng.Float64()-0.5)*0.006, m.o.lon + (rng.Float64()-0.5)*0.006
}

func (m *mix) submit(w *worker, ci int) {
	lat, lon := m.point(w.rng)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("category", "street-condition")
	_ = mw.WriteField("description", "Pothole in the bus lane, about a foot across")
	_ = mw.WriteField("lat", strconv.FormatFloat(lat, 'f', 6, 64))
	_ = mw.WriteField("lon", strconv.FormatFloat(lon, 'f', 6, 64))
	_ = mw.WriteField("attr.size", "large")
	fw, _ := mw.CreateFormFile("photo", "photo.jpg")
	_, _ = fw.Write(m.photo)
	_ = mw.Close()
	key := fmt.Sprintf("mix-%d-%d", time.Now().UnixNano(), keySeq.Add(1))
	var id string
	m.timed(w, "submit", func() (int, []byte, error) {
		status, data, err := m.do(w.client, "POST", "/v1/reports", m.tokens[ci], &buf, mw.FormDataContentType(), "Idempotency-Key", key)
		if err == nil && status == 201 {
			var r struct{ ID string }
			err = json.Unmarshal(data, &r)
			id = r.ID
		}
		return status, data, err
	})
	if id == "" {
		return
	}
	m.mu.Lock()
	m.mine[ci] = append(m.mine[ci], id)
	m.workset = append(m.workset, held{id, ci})
	m.mu.Unlock()
}

// held is a report of the work set and the citizen who made it.
type held struct {
	id      string
	citizen int
}

// take removes a random report from a list, so that no two workers hold it at once.
func (m *mix) take(list *[]held, rng *rand.Rand) (held, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(*list) == 0 {
		return held{}, false
	}
	i := rng.IntN(len(*list))
	h := (*list)[i]
	(*list)[i] = (*list)[len(*list)-1]
	*list = (*list)[:len(*list)-1]
	return h, true
}

func (m *mix) put(list *[]held, h held) {
	m.mu.Lock()
	*list = append(*list, h)
	m.mu.Unlock()
}

// action takes a case of the work set one step on (accept, start, resolve) as DOT's
// handler. The case is out of the work set while a worker holds it, so two workers never
// race on one version; it goes back unless it is resolved, and then its reporter may
// confirm the fix. False when there was no case.
func (m *mix) action(w *worker) bool {
	h, ok := m.take(&m.workset, w.rng)
	if !ok {
		return false
	}
	id := h.id
	back := &m.workset
	defer func() {
		if back != nil {
			m.put(back, h)
		}
	}()
	// The reporter's view says whether the case is routed yet (until then it is in no
	// department's queue); a routed one the handler reads before acting on it.
	var c struct {
		Status     string
		Version    int
		Department *string
	}
	read := func(kind, token string) bool {
		ok := false
		m.timed(w, kind, func() (int, []byte, error) {
			status, data, err := m.do(w.client, "GET", "/v1/reports/"+id, token, nil, "")
			if err == nil && status == 200 {
				err = json.Unmarshal(data, &c)
				ok = err == nil
			}
			return status, data, err
		})
		return ok
	}
	if !read("poll", m.tokens[h.citizen]) || c.Status == "submitted" {
		return true
	}
	if c.Department == nil || *c.Department != "DOT" {
		back = nil // another department's (Co-op City's streets go to 311's triage): not DOT's to move on
		return true
	}
	if !read("case", m.handler) {
		return true
	}
	next := map[string]string{"dispatched": "accept", "accepted": "start", "in_progress": "resolve"}[c.Status]
	if next == "" {
		return true // in triage, say: not DOT's to move on
	}
	body, _ := json.Marshal(map[string]any{"action": next, "version": c.Version, "note": "crew on site", "public": true})
	m.timed(w, "action", func() (int, []byte, error) {
		status, data, err := m.do(w.client, "POST", "/v1/cases/"+id+"/actions", m.handler, bytes.NewReader(body), "application/json",
			"Idempotency-Key", fmt.Sprintf("mix-act-%s-%d", id, c.Version))
		if err == nil && status == 200 && next == "resolve" {
			back = &m.resolved
		}
		return status, data, err
	})
	return true
}

// confirm is a reporter confirming the fix of a resolved report of theirs, which closes
// it. False when no report waits for that.
func (m *mix) confirm(w *worker) bool {
	h, ok := m.take(&m.resolved, w.rng)
	if !ok {
		return false
	}
	body, _ := json.Marshal(map[string]any{"action": "confirm", "rating": 4})
	m.timed(w, "confirm", func() (int, []byte, error) {
		status, data, err := m.do(w.client, "POST", "/v1/reports/"+h.id+"/feedback", m.tokens[h.citizen], bytes.NewReader(body), "application/json")
		if err != nil || status != 200 {
			m.put(&m.resolved, h) // to be tried again
		}
		return status, data, err
	})
	return true
}

// timed sends one request on the worker's next tick and records its latency (from when
// it was sent), or its error.
func (m *mix) timed(w *worker, kind string, f func() (int, []byte, error)) {
	if !w.pace() {
		return
	}
	t0 := time.Now()
	status, data, err := f()
	d := time.Since(t0)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil && (status < 200 || status > 299) {
		err = fmt.Errorf("%d %s", status, strings.TrimSpace(string(data[:min(len(data), 300)])))
	}
	if err != nil {
		m.errs[kind]++
		if m.sample[kind] == "" {
			m.sample[kind] = err.Error()
		}
		return
	}
	m.lat[kind] = append(m.lat[kind], d)
}

func (m *mix) errorCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, e := range m.errs {
		n += e
	}
	return n
}

func (m *mix) print(out io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	total, errs := 0, 0
	for _, l := range m.lat {
		total += len(l)
	}
	for _, e := range m.errs {
		errs += e
	}
	mode := "as fast as the workers go"
	if m.o.rate > 0 {
		mode = fmt.Sprintf("target %.1f req/s (%d ticks missed: every worker busy)", m.o.rate, m.missed.Load())
	}
	fmt.Fprintf(out, "mix: %d requests ok, %d failed in %v, %d workers, %s\n", total, errs, m.elapsed.Round(time.Millisecond), m.o.c, mode)
	fmt.Fprintf(out, "throughput: %.1f req/s, of which %.1f reports/s\n", float64(total)/m.elapsed.Seconds(), float64(len(m.lat["submit"]))/m.elapsed.Seconds())
	kinds := []string{"submit", "poll", "nearby", "queue", "case", "action", "confirm", "stats"}
	for _, k := range kinds {
		if len(m.lat[k]) == 0 && m.errs[k] == 0 {
			continue
		}
		fmt.Fprintf(out, "  %-7s %6d ok %4d err  %s\n", k, len(m.lat[k]), m.errs[k], percentiles(m.lat[k]))
	}
	if m.noStats != "" {
		fmt.Fprintf(out, "  stats: %s\n", m.noStats)
	}
	names := make([]string, 0, len(m.sample))
	for k := range m.sample {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		fmt.Fprintf(out, "  first %s error: %s\n", k, m.sample[k])
	}
}

// sampler reads the server's resident memory and goroutines from /metrics at intervals,
// and beside them its requests in flight and open connections (when it has those): the
// goroutines that serve clients, as opposed to the process's own.
type sampler struct {
	url    string
	client *http.Client
	mu     sync.Mutex
	at     []time.Duration
	got    []sample
	fails  []string
	done   chan struct{}
	once   sync.Once
	start  time.Time
}

// sample is one read of the server's /metrics; -1 for a series it lacks.
type sample struct {
	rss, goroutines, inFlight, conns float64
}

func (s *sampler) run(every, total time.Duration) {
	s.mu.Lock()
	s.done = make(chan struct{})
	s.start = time.Now()
	s.mu.Unlock()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		got, err := s.read()
		s.mu.Lock()
		if err != nil {
			s.fails = append(s.fails, err.Error())
		} else {
			s.at = append(s.at, time.Since(s.start))
			s.got = append(s.got, got)
		}
		s.mu.Unlock()
	}
}

func (s *sampler) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		s.once.Do(func() { close(s.done) })
	}
}

func (s *sampler) read() (sample, error) {
	resp, err := s.client.Get(s.url)
	if err != nil {
		return sample{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return sample{}, err
	}
	return parseSample(string(data))
}

// parseSample picks the figures of a sample out of a /metrics page.
func parseSample(page string) (sample, error) {
	got := sample{rss: -1, goroutines: -1, inFlight: -1, conns: -1}
	for _, line := range strings.Split(page, "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			got.rss = v
		case "go_goroutines":
			got.goroutines = v
		case "cityeyes_http_requests_in_flight":
			got.inFlight = v
		case "cityeyes_http_open_connections":
			got.conns = v
		}
	}
	if got.rss < 0 || got.goroutines < 0 {
		return got, errors.New("no process_resident_memory_bytes or go_goroutines")
	}
	return got, nil
}

// verdict prints the samples and fails when resident memory or goroutines grew by more
// than maxGrowth from the first window after the warm-up to the last. Each window is
// judged by its median: a figure read at one instant swings with what is in flight then
// (a garbage collection just done or about to be, a burst of slow requests holding their
// goroutines), and a median of many reads is the level that a leak would raise.
func (s *sampler) verdict(out io.Writer, warmup, window time.Duration, maxGrowth float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(out, "server samples (after the %v warm-up: 1 in the first window, 2 in the last; in flight and connections as the server counts them):\n", warmup)
	last := time.Duration(0)
	if len(s.at) > 0 {
		last = s.at[len(s.at)-1]
	}
	var first, final []sample
	for i, at := range s.at {
		mark := " "
		switch {
		case at >= warmup && at < warmup+window:
			mark = "1"
			first = append(first, s.got[i])
		case at >= warmup && at > last-window:
			mark = "2"
			final = append(final, s.got[i])
		}
		g := s.got[i]
		fmt.Fprintf(out, "  %s %8v  rss %7.1f MiB  goroutines %5.0f  in flight %4.0f  connections %4.0f\n",
			mark, at.Round(time.Second), g.rss/(1<<20), g.goroutines, g.inFlight, g.conns)
	}
	if len(s.fails) > 0 {
		return fmt.Errorf("%d reads of %s failed, the first: %s", len(s.fails), s.url, s.fails[0])
	}
	if len(first) < 3 || len(final) < 3 {
		return fmt.Errorf("too few samples to judge (%d in the first window, %d in the last): run longer than the warm-up and two windows, or sample more often", len(first), len(final))
	}
	var bad []string
	for _, q := range []struct {
		name string
		of   func(sample) float64
	}{{"resident memory", func(g sample) float64 { return g.rss }}, {"goroutines", func(g sample) float64 { return g.goroutines }}} {
		begin, end := median(first, q.of), median(final, q.of)
		growth := end/begin - 1
		fmt.Fprintf(out, "%s, median: %.0f in the first %v after the warm-up, %.0f in the last: %+.1f%% (limit %+.0f%%)\n",
			q.name, begin, window, end, growth*100, maxGrowth*100)
		if growth > maxGrowth {
			bad = append(bad, fmt.Sprintf("%s grew %.1f%%", q.name, growth*100))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// median is the middle value of a figure of the samples.
func median(ss []sample, of func(sample) float64) float64 {
	xs := make([]float64, len(ss))
	for i, g := range ss {
		xs[i] = of(g)
	}
	slices.Sort(xs)
	if n := len(xs); n%2 == 0 {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[len(xs)/2]
}
