package workflows

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/city-eyes/cityeyes/internal/testenv"
)

// TestDecodeWeight: a photo counts its pixels, a photo larger than the budget (or of unknown
// size) the whole budget, so it is decoded alone rather than never.
func TestDecodeWeight(t *testing.T) {
	for _, c := range []struct {
		w, h, budget int
		want         int64
	}{
		{640, 480, 16_000_000, 307_200},
		{4000, 3000, 16_000_000, 12_000_000},
		{4000, 4000, 16_000_000, 16_000_000},
		{8000, 6000, 16_000_000, 16_000_000},
		{0, 0, 16_000_000, 16_000_000},
		{-1, 5, 100, 100},
	} {
		if got := decodeWeight(c.w, c.h, c.budget); got != c.want {
			t.Errorf("decodeWeight(%d, %d, %d) = %d, want %d", c.w, c.h, c.budget, got, c.want)
		}
	}
}

// TestDecodingStaysWithinBudget: photo tasks running at once never hold more pixels decoded
// than the budget, whatever their sizes, and every one of them runs.
func TestDecodingStaysWithinBudget(t *testing.T) {
	const budget = 1000
	// No Redis is needed: nothing is enqueued; the client only connects when used.
	w := New(Config{PhotoPixels: budget, Redis: asynq.RedisClientOpt{Addr: "127.0.0.1:1"}})
	var inFlight, peak atomic.Int64
	var ran atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			side := 1 + rand.IntN(40) // up to 1600 pixels: some over the budget
			err := w.decoding(context.Background(), side, side, func() error {
				n := inFlight.Add(decodeWeight(side, side, budget))
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				runtime.Gosched()
				inFlight.Add(-decodeWeight(side, side, budget))
				ran.Add(1)
				return nil
			})
			if err != nil {
				t.Errorf("task %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if peak.Load() > budget || ran.Load() != 200 {
		t.Fatalf("peak %d pixels decoded at once (budget %d), %d of 200 tasks ran", peak.Load(), budget, ran.Load())
	}
	// A cancelled task gives up waiting and holds nothing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.decoding(ctx, 10, 10, func() error { t.Error("ran after cancel"); return nil }); err == nil {
		t.Error("decoding with a cancelled context did not fail")
	}
}

// failingReader gives its bytes, then an error: a store that went away mid-read.
type failingReader struct {
	b   []byte
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, f.err
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// TestVersionsOfAPhotoCutShort: a photo whose bytes stop coming because the store went away
// is an error to retry, not a photo recorded as undecodable for good; one whose bytes are
// all there but not an image is undecodable.
func TestVersionsOfAPhotoCutShort(t *testing.T) {
	gone := errors.New("storage: store unavailable")
	for _, n := range []int{0, 10, 2000} {
		_, _, err := makeVersions(&failingReader{b: testenv.PhotoJPEG[:n], err: gone})
		var bad *undecodableError
		if !errors.Is(err, gone) || errors.As(err, &bad) {
			t.Errorf("cut after %d bytes: %v; want the read error, not undecodable", n, err)
		}
	}
	_, _, err := makeVersions(bytes.NewReader([]byte("not a photo at all")))
	var bad *undecodableError
	if !errors.As(err, &bad) {
		t.Errorf("bytes that are no image: %v; want undecodable", err)
	}
	if _, _, err := makeVersions(bytes.NewReader(testenv.PhotoJPEG)); err != nil {
		t.Errorf("the test photo: %v", err)
	}
}
