// Command loadgen submits reports with a photo to a running City Eyes and measures the case
// loop's first step: how long the API takes to accept a report, and how long until the
// workers have routed it (the gap between the case's "submit" and "route" events, read back
// from its timeline, so polling does not blur the figure).
//
//	go run ./cmd/loadgen -url http://127.0.0.1:8080 -n 1000 -c 8 -photo ../shared/data/photos/DSCN0010.jpg
//
// -path direct uploads each photo through a presigned URL first (direct.go); -rate paces the
// submissions; -pid or the server's /metrics give the API's peak resident memory (rss.go);
// -ceiling repeats the same writes straight against the database, Redis and the object store
// without the API, and prints the API's rate as a share of that (ceiling.go).
// `loadgen mix` and `loadgen soak` drive a realistic mix of requests instead (mix.go).
//
// It only talks to the address it is given; point it at a server on this machine.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

type options struct {
	url      string
	n, c     int
	photo    string
	lat, lon string
	category string
	attr     string
	more     moreOptions // direct.go, rss.go, ceiling.go
}

func run(args []string, out io.Writer) error {
	if len(args) > 0 && (args[0] == "mix" || args[0] == "soak") {
		return runMix(args[0], args[1:], out) // mix.go
	}
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "City Eyes base URL (a server on this machine)")
	fs.IntVar(&o.n, "n", 1000, "reports to submit")
	fs.IntVar(&o.c, "c", 8, "concurrent submitters")
	fs.StringVar(&o.photo, "photo", "../shared/data/photos/DSCN0010.jpg", "photo to attach to every report")
	fs.StringVar(&o.lat, "lat", "40.6439502", "latitude of the reports")
	fs.StringVar(&o.lon, "lon", "-74.0151994", "longitude of the reports")
	fs.StringVar(&o.category, "category", "street-condition", "category code")
	fs.StringVar(&o.attr, "attr", "size=large", "one answer, code=value (empty for none)")
	o.more.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	photo, err := o.readPhoto()
	if err != nil {
		return err
	}
	send, err := o.sender(photo)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 60 * time.Second}
	tokens := make([]string, o.c)
	for i := range tokens {
		if tokens[i], err = device(client, o.url, fmt.Sprintf("loadgen-%d-%d", time.Now().UnixNano(), i)); err != nil {
			return err
		}
	}

	var (
		mu        sync.Mutex
		accept    []time.Duration
		ids       []string
		failures  atomic.Int64
		firstErr  error
		next      atomic.Int64
		wg        sync.WaitGroup
		startedAt = time.Now()
		pace      = newPacer(o.more.rate)
		rss       = watchRSS(client, o)
	)
	for w := range o.c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(o.n) {
				pace.wait()
				t0 := time.Now()
				id, err := send(client, tokens[w])
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					failures.Add(1)
					if firstErr == nil {
						firstErr = err
					}
				} else {
					accept = append(accept, d)
					ids = append(ids, id)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(startedAt)
	rss.stop()

	// Wait for routing, then read each timeline.
	var routed []time.Duration
	deadline := time.Now().Add(5 * time.Minute)
	for i, id := range o.more.toFollow(ids) {
		for {
			d, ok, err := routeDelay(client, o.url, tokens[i%o.c], id)
			if err != nil {
				return err
			}
			if ok {
				routed = append(routed, d)
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("report %s not routed within 5 minutes", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	fmt.Fprintf(out, "reports: %d submitted, %d failed, concurrency %d, photo %d bytes, path %s, rate %s\n", len(ids), failures.Load(), o.c, len(photo), o.more.path, pace)
	fmt.Fprintf(out, "submissions: %.1f/s over %v\n", float64(len(ids))/elapsed.Seconds(), elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "report latency (%s): %s\n", o.more.latencyName(), percentiles(accept))
	o.more.printPhases(out)
	fmt.Fprintf(out, "submitted -> dispatched:  %s\n", percentiles(routed))
	rss.print(out)
	if firstErr != nil {
		fmt.Fprintf(out, "first error: %v\n", firstErr)
	}
	if o.more.ceiling {
		return runCeiling(o, photo, float64(len(ids))/elapsed.Seconds(), out)
	}
	return nil
}

func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	slices.Sort(ds)
	p := func(q float64) time.Duration {
		return ds[min(len(ds)-1, int(q*float64(len(ds))))].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %v  p95 %v  p99 %v  max %v  (n=%d)", p(0.50), p(0.95), p(0.99), ds[len(ds)-1].Round(100*time.Microsecond), len(ds))
}

func device(client *http.Client, base, id string) (string, error) {
	body, _ := json.Marshal(map[string]string{"device_id": id, "platform": "android", "locale": "en"})
	resp, err := client.Post(base+"/v1/auth/device", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var d struct{ Token string }
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("device: %d %s", resp.StatusCode, b)
	}
	return d.Token, json.NewDecoder(resp.Body).Decode(&d)
}

var keySeq atomic.Int64

func submit(client *http.Client, o options, token string, photo []byte) (string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("category", o.category)
	_ = w.WriteField("description", "load test report")
	_ = w.WriteField("lat", o.lat)
	_ = w.WriteField("lon", o.lon)
	if code, value, ok := cut(o.attr); ok {
		_ = w.WriteField("attr."+code, value)
	}
	fw, _ := w.CreateFormFile("photo", "photo.jpg")
	_, _ = fw.Write(photo)
	_ = w.Close()
	req, _ := http.NewRequestWithContext(context.Background(), "POST", o.url+"/v1/reports", &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", fmt.Sprintf("loadgen-%d-%d", time.Now().UnixNano(), keySeq.Add(1)))
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("submit: %d %s", resp.StatusCode, b)
	}
	var r struct{ ID string }
	return r.ID, json.NewDecoder(resp.Body).Decode(&r)
}

func cut(s string) (string, string, bool) {
	for i := range s {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// routeDelay reads a report's timeline: the time from its submit event to its route event.
func routeDelay(client *http.Client, base, token, id string) (time.Duration, bool, error) {
	req, _ := http.NewRequest("GET", base+"/v1/reports/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	var r struct {
		Timeline []struct {
			Type      string
			CreatedAt time.Time `json:"created_at"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, false, err
	}
	var submitted, routed time.Time
	for _, e := range r.Timeline {
		switch e.Type {
		case "submit":
			submitted = e.CreatedAt
		case "route":
			routed = e.CreatedAt
		}
	}
	if routed.IsZero() {
		return 0, false, nil
	}
	if submitted.IsZero() {
		return 0, false, errors.New("timeline without a submit event")
	}
	return routed.Sub(submitted), true, nil
}
