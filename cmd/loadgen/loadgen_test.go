package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/storage"
)

// TestCeilingWrites: one ceiling write leaves what intake leaves (the case, its event, its
// photo row, its outbox rows, the photo object) and one task in the ceiling's queue.
func TestCeilingWrites(t *testing.T) {
	o := options{n: 3, c: 1, lat: "40.6439502", lon: "-74.0151994", category: "street-condition", attr: "size=large"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o.more.flags(fs)
	if err := fs.Parse([]string{"-ceiling-city", filepath.Join("..", "cityeyes", "demo", "nyc.yaml")}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := openCeiling(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	for i := range o.n {
		if err := r.write(ctx, r.reporters[0], testenv.PhotoJPEG, int64(i)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	for table, want := range map[string]int{"cases": 3, "case_events": 3, "media": 3, "outbox": 6, "idempotency_keys": 3} {
		var n int
		if err := r.db.SQL().QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil || n != want {
			t.Errorf("%s: %d rows (%v), want %d", table, n, err, want)
		}
	}
	objects := 0
	if err := r.store.Walk(ctx, "cases/", func(storage.Object) error { objects++; return nil }); err != nil || objects != 3 {
		t.Errorf("%d photo objects (%v), want 3", objects, err)
	}
	info, err := asynqInspector(r).GetQueueInfo(ceilingQueue)
	if err != nil || info.Pending != 3 {
		t.Errorf("queue %s: %+v %v, want 3 pending tasks", ceilingQueue, info, err)
	}
}

// TestSpreadStaysInTheDisc: -spread draws points no farther than asked.
func TestSpreadStaysInTheDisc(t *testing.T) {
	o := options{lat: "40.7380", lon: "-73.9900"}
	o.more.spread = 1000
	for range 1000 {
		la, lo := o.point()
		lat, _ := strconv.ParseFloat(la, 64)
		lon, _ := strconv.ParseFloat(lo, 64)
		dy := (lat - 40.7380) * 111_195
		dx := (lon + 73.9900) * 111_195 * math.Cos(40.7380*math.Pi/180)
		if d := math.Hypot(dx, dy); d > 1000.5 {
			t.Fatalf("%s,%s is %.1f m away", la, lo, d)
		}
	}
}

// TestResidentMemory reads this process's resident memory from /proc and the same figure
// from a /metrics page.
func TestResidentMemory(t *testing.T) {
	n, err := procRSS(os.Getpid())
	if err != nil || n < 1<<20 {
		t.Fatalf("/proc: %d %v", n, err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 7.3728e+07")
	}))
	defer srv.Close()
	if n, err := metricsRSS(srv.Client(), srv.URL); err != nil || n != 73_728_000 {
		t.Fatalf("/metrics: %d %v", n, err)
	}
}

// TestSynthPhotoIsBig: the generated photo for memory runs is a JPEG of over 8 MB.
func TestSynthPhotoIsBig(t *testing.T) {
	b, err := synthPhoto("4000x3000")
	if err != nil || len(b) < 8<<20 || http.DetectContentType(b) != "image/jpeg" {
		t.Fatalf("%d bytes, %s, %v", len(b), http.DetectContentType(b), err)
	}
	if _, err := synthPhoto("big"); err == nil {
		t.Fatal("a size that is not WxH was taken")
	}
}

// TestCityPointsSpreadOverTheCity: the mix's reports fall inside New York, latitude and
// longitude the right way round, and spread over it: no spot of about 500 m holds more
// than 1% of them (the old mix put every one within 300 m of one point).
func TestCityPointsSpreadOverTheCity(t *testing.T) {
	p, err := loadCityPoints(filepath.Join("..", "cityeyes", "demo", "neighborhoods.geojson"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 5000
	cells := map[[2]int]int{}
	for range n {
		lat, lon := p.draw(rng)
		if lat < 40.49 || lat > 40.92 || lon < -74.26 || lon > -73.70 {
			t.Fatalf("%.5f,%.5f is not in New York", lat, lon)
		}
		cells[[2]int{int(lat / 0.005), int(lon / 0.005)}]++
	}
	most := 0
	for _, c := range cells {
		most = max(most, c)
	}
	if most > n/100 || len(cells) < n/10 {
		t.Fatalf("%d points in %d cells, the fullest holding %d", n, len(cells), most)
	}
}

// TestSoakVerdict: the soak fails when the level of memory or goroutines rises between
// the first and the last window after the warm-up, not when single reads swing.
func TestSoakVerdict(t *testing.T) {
	flat := func(i int) sample { return sample{rss: 100 << 20, goroutines: 80} }
	for _, tc := range []struct {
		name string
		at   func(i int) sample // the i-th read, every 10 s for 30 minutes
		fail string             // "" to pass
	}{
		{"flat", flat, ""},
		{"flat with spikes in the last minutes", func(i int) sample {
			g := flat(i)
			if i > 170 && i%4 == 0 { // one read in four at the end is a busy instant
				g.goroutines, g.rss = 130, 140<<20
			}
			return g
		}, ""},
		{"goroutines leak", func(i int) sample { g := flat(i); g.goroutines += float64(i / 6); return g }, "goroutines grew"},
		{"memory leaks", func(i int) sample { g := flat(i); g.rss += float64(i) * (200 << 10); return g }, "resident memory grew"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &sampler{}
			for i := range 180 {
				s.at = append(s.at, time.Duration(i+1)*10*time.Second)
				s.got = append(s.got, tc.at(i))
			}
			var out strings.Builder
			err := s.verdict(&out, 3*time.Minute, 5*time.Minute, 0.10)
			switch {
			case tc.fail == "" && err != nil:
				t.Fatalf("failed: %v\n%s", err, out.String())
			case tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)):
				t.Fatalf("got %v, want %q\n%s", err, tc.fail, out.String())
			}
		})
	}
	s := &sampler{at: []time.Duration{4 * time.Minute}, got: []sample{{rss: 1, goroutines: 1}}}
	if err := s.verdict(io.Discard, 3*time.Minute, 5*time.Minute, 0.10); err == nil || !strings.Contains(err.Error(), "too few samples") {
		t.Fatalf("one sample judged: %v", err)
	}
}

// TestParseSample reads the soak's figures from a /metrics page, -1 for what it lacks.
func TestParseSample(t *testing.T) {
	page := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 143\n" +
		"process_resident_memory_bytes 9.6710656e+07\ncityeyes_http_requests_in_flight 3\n" +
		`cityeyes_http_request_duration_seconds_count{method="GET"} 7` + "\n"
	got, err := parseSample(page)
	if err != nil || got != (sample{rss: 96_710_656, goroutines: 143, inFlight: 3, conns: -1}) {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := parseSample("cityeyes_http_requests_in_flight 3\n"); err == nil {
		t.Fatal("a page without goroutines and memory was taken")
	}
}

// TestPacedRequests: at a rate, a worker sends one request per tick of the run's clock,
// each request of a step on a tick of its own, none once the clock has stopped; the wait
// for a tick is not counted in the request's latency.
func TestPacedRequests(t *testing.T) {
	m := &mix{lat: map[string][]time.Duration{}, errs: map[string]int{}, sample: map[string]string{}}
	ticks := make(chan struct{})
	w := &worker{ticks: ticks}
	go func() {
		time.Sleep(300 * time.Millisecond) // the first tick comes late
		ticks <- struct{}{}
		ticks <- struct{}{}
		close(ticks)
	}()
	sent := 0
	for range 3 {
		m.timed(w, "poll", func() (int, []byte, error) { sent++; return 200, nil, nil })
	}
	if sent != 2 || len(m.lat["poll"]) != 2 || len(m.errs) != 0 {
		t.Fatalf("%d sent, %d timed, errors %v; want 2 sent and timed", sent, len(m.lat["poll"]), m.errs)
	}
	if m.lat["poll"][0] >= 300*time.Millisecond {
		t.Fatalf("the wait for the tick was timed: %v", m.lat["poll"][0])
	}
}
