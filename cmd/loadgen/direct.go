package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// moreOptions are the flags beyond the multipart run: the upload path, pacing, memory
// watching and the ceiling.
type moreOptions struct {
	path      string  // "multipart" or "direct"
	rate      float64 // reports a second in all; 0 is as fast as the submitters go
	follow    bool    // wait for every report to be routed and measure how long it took
	pid       int     // the API process, for its resident memory; 0 reads /metrics
	synth     string  // "WxH": a generated noise JPEG instead of -photo
	spread    float64 // metres: each report at a random point this far around -lat/-lon at most
	ceiling   bool
	ceilingDB string
	redisURL  string
	s3        s3Options
	city      string    // the ceiling database's city configuration
	phases    *phaseLog // direct path: each request's latency
}

// phaseLog collects the latency of each request of the direct path.
type phaseLog struct {
	mu sync.Mutex
	m  map[string][]time.Duration
}

func (m *moreOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&m.path, "path", "multipart", "how photos travel: multipart (in the report) or direct (POST /v1/uploads, PUT to its URL, JSON report with media_ids)")
	fs.Float64Var(&m.rate, "rate", 0, "reports a second in all (0: as fast as the submitters go)")
	fs.BoolVar(&m.follow, "follow", true, "wait until every report is routed and measure submit -> route")
	fs.IntVar(&m.pid, "pid", 0, "the API process id, to sample its resident memory from /proc (0: read process_resident_memory_bytes from /metrics)")
	fs.Float64Var(&m.spread, "spread", 0, "put each report at a random point within this many metres of -lat/-lon (0: all at the one point, a hot spot whose likely-duplicate list grows with every report)")
	fs.StringVar(&m.synth, "synth-photo", "", "WxH: send a generated noise JPEG of that size instead of -photo (a big photo for memory runs)")
	m.ceilingFlags(fs)
}

// readPhoto reads -photo, or makes the -synth-photo one.
func (o *options) readPhoto() ([]byte, error) {
	if o.more.synth != "" {
		return synthPhoto(o.more.synth)
	}
	return readFile(o.photo)
}

// sender returns how one report is sent on the chosen path.
func (o *options) sender(photo []byte) (func(*http.Client, string) (string, error), error) {
	switch o.more.path {
	case "multipart":
		return func(c *http.Client, token string) (string, error) {
			at := *o
			at.lat, at.lon = o.point()
			return submit(c, at, token, photo)
		}, nil
	case "direct":
		o.more.phases = &phaseLog{m: map[string][]time.Duration{}}
		return func(c *http.Client, token string) (string, error) { return o.submitDirect(c, token, photo) }, nil
	}
	return nil, fmt.Errorf("-path %q: want multipart or direct", o.more.path)
}

func (m *moreOptions) latencyName() string {
	if m.path == "direct" {
		return "POST /v1/uploads + PUT + POST /v1/reports"
	}
	return "POST /v1/reports, multipart"
}

func (m *moreOptions) toFollow(ids []string) []string {
	if !m.follow {
		return nil
	}
	return ids
}

func (m *moreOptions) phase(name string, d time.Duration) {
	m.phases.mu.Lock()
	m.phases.m[name] = append(m.phases.m[name], d)
	m.phases.mu.Unlock()
}

func (m *moreOptions) printPhases(out io.Writer) {
	if m.phases == nil {
		return
	}
	for _, name := range []string{"POST /v1/uploads", "PUT upload_url", "POST /v1/reports JSON"} {
		if ds, ok := m.phases.m[name]; ok {
			fmt.Fprintf(out, "  %-22s %s\n", name+":", percentiles(ds))
		}
	}
}

// submitDirect sends one report the direct way (CONTRACT.md): ask for an upload, PUT the
// photo to the URL it names with the headers it names, then file the report as JSON naming
// the upload.
func (o *options) submitDirect(client *http.Client, token string, photo []byte) (string, error) {
	t0 := time.Now()
	var up struct {
		MediaID   string            `json:"media_id"`
		UploadURL string            `json:"upload_url"`
		Method    string            `json:"method"`
		Headers   map[string]string `json:"headers"`
	}
	body, _ := json.Marshal(map[string]any{"content_type": "image/jpeg", "size": len(photo)})
	if err := call(client, "POST", o.url+"/v1/uploads", token, "application/json", body, nil, &up); err != nil {
		return "", fmt.Errorf("uploads: %w", err)
	}
	t1 := time.Now()
	o.more.phase("POST /v1/uploads", t1.Sub(t0))

	target := up.UploadURL
	if strings.HasPrefix(target, "/") {
		target = o.url + target
	}
	method := up.Method
	if method == "" {
		method = "PUT"
	}
	req, err := http.NewRequest(method, target, bytes.NewReader(photo))
	if err != nil {
		return "", err
	}
	for k, v := range up.Headers {
		req.Header.Set(k, v)
	}
	req.ContentLength = int64(len(photo))
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("upload: %w", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("upload: %d %s", resp.StatusCode, b)
	}
	t2 := time.Now()
	o.more.phase("PUT upload_url", t2.Sub(t1))

	lats, lons := o.point()
	lat, _ := strconv.ParseFloat(lats, 64)
	lon, _ := strconv.ParseFloat(lons, 64)
	report := map[string]any{"category": o.category, "description": "load test report", "lat": lat, "lon": lon, "media_ids": []string{up.MediaID}}
	if code, value, ok := cut(o.attr); ok {
		report["attributes"] = map[string]string{code: value}
	}
	body, _ = json.Marshal(report)
	var r struct{ ID string }
	key := fmt.Sprintf("loadgen-%d-%d", time.Now().UnixNano(), keySeq.Add(1))
	if err := call(client, "POST", o.url+"/v1/reports", token, "application/json", body, map[string]string{"Idempotency-Key": key}, &r); err != nil {
		return "", fmt.Errorf("submit: %w", err)
	}
	o.more.phase("POST /v1/reports JSON", time.Since(t2))
	return r.ID, nil
}

// call sends one JSON request and decodes a 2xx answer into v.
func call(client *http.Client, method, url, token, ctype string, body []byte, headers map[string]string, v any) error {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", "Bearer "+token)
	for k, h := range headers {
		req.Header.Set(k, h)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// pacer spaces submissions evenly at a rate, shared by all submitters; a nil pacer does
// not wait. When every submitter is busy the rate falls behind, and the figures say so.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return nil
	}
	return &pacer{interval: time.Duration(float64(time.Second) / rate)}
}

func (p *pacer) wait() {
	if p == nil {
		return
	}
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(p.interval)
	p.mu.Unlock()
	time.Sleep(time.Until(at))
}

func (p *pacer) String() string {
	if p == nil {
		return "unpaced"
	}
	return fmt.Sprintf("paced at %.1f/s", float64(time.Second)/float64(p.interval))
}

// point is where the next report is: -lat/-lon, or a point drawn uniformly from the disc of
// -spread metres around it.
func (o *options) point() (string, string) {
	if o.more.spread <= 0 {
		return o.lat, o.lon
	}
	lat, _ := strconv.ParseFloat(o.lat, 64)
	lon, _ := strconv.ParseFloat(o.lon, 64)
	const metresPerDegree = 111_195.0
	r := o.more.spread * math.Sqrt(rand.Float64())
	a := 2 * math.Pi * rand.Float64()
	lat2 := lat + r*math.Cos(a)/metresPerDegree
	lon2 := lon + r*math.Sin(a)/(metresPerDegree*math.Cos(lat*math.Pi/180))
	return strconv.FormatFloat(lat2, 'f', 7, 64), strconv.FormatFloat(lon2, 'f', 7, 64)
}
