package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

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
