package main

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssWatch samples the API process's resident memory during a run, every 100 ms: from
// /proc/<pid>/status with -pid, else from the server's own /metrics
// (process_resident_memory_bytes, from the Prometheus process collector).
type rssWatch struct {
	source      string
	done        chan struct{}
	wg          sync.WaitGroup
	first, peak int64
	samples     int
	err         error
}

func watchRSS(client *http.Client, o options) *rssWatch {
	w := &rssWatch{done: make(chan struct{})}
	read := func() (int64, error) { return metricsRSS(client, o.url) }
	w.source = o.url + "/metrics"
	if o.more.pid > 0 {
		pid := o.more.pid
		read = func() (int64, error) { return procRSS(pid) }
		w.source = fmt.Sprintf("/proc/%d/status", pid)
	}
	sample := func() {
		v, err := read()
		if err != nil {
			w.err = err
			return
		}
		if w.samples == 0 {
			w.first = v
		}
		w.samples++
		w.peak = max(w.peak, v)
	}
	sample()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return w
}

func (w *rssWatch) stop() {
	close(w.done)
	w.wg.Wait()
}

func (w *rssWatch) print(out io.Writer) {
	if w.samples == 0 {
		fmt.Fprintf(out, "API resident memory: not read (%v)\n", w.err)
		return
	}
	fmt.Fprintf(out, "API resident memory: %.1f MB at the start, peak %.1f MB (%d samples from %s)\n",
		float64(w.first)/1e6, float64(w.peak)/1e6, w.samples, w.source)
}

func procRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func metricsRSS(client *http.Client, base string) (int64, error) {
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("no process_resident_memory_bytes in %s/metrics", base)
}

// synthPhoto makes a JPEG of noise, WxH pixels: noise does not compress, so a 4000x3000
// one is about 11 MB, the size of a phone's full-resolution photo and more. The seed is
// fixed, so every run sends the same bytes.
func synthPhoto(size string) ([]byte, error) {
	ws, hs, ok := strings.Cut(size, "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if !ok || err1 != nil || err2 != nil || w <= 0 || h <= 0 {
		return nil, fmt.Errorf("-synth-photo %q: want WxH, e.g. 4000x3000", size)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for y := range h {
		for x := range w {
			v := r.Uint32()
			img.SetRGBA(x, y, color.RGBA{uint8(v), uint8(v >> 8), uint8(v >> 16), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }
