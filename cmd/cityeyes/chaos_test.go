package main

// Fault tests: each runs a stream of reports and handler actions through real cityeyes
// processes on real PostgreSQL, Redis and MinIO, breaks something, heals it, and ends
// with stream.check (faults_test.go). make test runs them small; make chaos
// (CITYEYES_TEST_CHAOS=1) runs them at the sizes docs/reliability.md reports.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/internal/testenv"
)

// killer SIGKILLs p at random moments, waits a little and starts it again, until
// stop is closed and at least min kills are done, or max kills are done (0: no cap). The
// function returned waits for it and gives the number of kills.
func killer(t *testing.T, p *faultProc, min, max int, every time.Duration, stop <-chan struct{}) (done func() int) {
	var wg sync.WaitGroup
	kills := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		for {
			// A random moment: anywhere from a fifth of the period to one and a half.
			wait := every/5 + time.Duration(rng.Int64N(int64(every*13/10)))
			if max > 0 && kills >= max {
				return
			}
			select {
			case <-stop:
				if kills >= min {
					return
				}
			case <-time.After(wait):
			}
			p.kill()
			kills++
			// Down for a random while (the requests meanwhile find no one, or only the
			// other processes), then back.
			time.Sleep(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
			if err := p.tryStart(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	return func() int { wg.Wait(); return kills }
}

// TestSIGKILL kills serve, and separately api and worker, at random moments while reports
// and handler actions stream in; each is started again at once. Nothing accepted is lost
// or done twice.
func TestSIGKILL(t *testing.T) {
	for _, target := range []string{"serve", "api", "worker"} {
		t.Run(target, func(t *testing.T) {
			needReal(t)
			// Side by side: a killed worker's tasks wait out Asynq's 30 s lease, and the
			// waits overlap.
			t.Parallel()
			in, _ := faultInstance(t)
			var victim *faultProc
			if target == "serve" {
				victim = in.newProc(nil, "serve")
				victim.start()
			} else {
				api, worker := in.newProc(nil, "api"), in.newProc(nil, "worker")
				api.start()
				worker.start()
				victim = map[string]*faultProc{"api": api, "worker": worker}[target]
			}
			s := in.newStream(8)
			s.abandonedOK = target != "worker"
			n, kills := size(100, 5000), size(3, 25)
			every := time.Duration(size(1500, 2500)) * time.Millisecond
			stop := make(chan struct{})
			done := killer(t, victim, kills, size(kills, 0), every, stop)
			s.run(n, 4)
			close(stop)
			k := done()
			s.check(in.storeOf(), k)
		})
	}
}

// TestRedisLost stops Redis while reports stream in and starts it again empty (everything
// it held, queued and scheduled tasks included, is gone): the API keeps accepting reports,
// and every report accepted before and during the outage is routed once it is back.
func TestRedisLost(t *testing.T) {
	needReal(t)
	t.Parallel()
	in, redis := faultInstance(t)
	in.newProc(nil, "serve").start()
	s := in.newStream(6)
	n := size(100, 2000)
	wait := s.start(n, 3)
	s.waitAccepted(n / 3)
	redis.stop()
	before := s.count()
	time.Sleep(time.Duration(size(3, 30)) * time.Second)
	during := s.count() - before
	redis.start()
	wait()
	fig := s.check(in.storeOf(), 0)
	t.Logf("Redis down for %d s with its data lost: %d reports accepted before, %d during the outage", size(3, 30), before, during)
	if during == 0 {
		t.Errorf("no report was accepted while Redis was down: the API depends on it")
	}
	_ = fig
}

// TestMinIOStopped stops MinIO: submissions get 503 problem+json with Retry-After; each
// retried with its Idempotency-Key once MinIO is back makes exactly one case.
func TestMinIOStopped(t *testing.T) {
	needReal(t)
	t.Parallel()
	in, _ := faultInstance(t)
	minio := startMinIO(t)
	minio.use(in)
	in.newProc(nil, "serve").start()
	s := in.newStream(4)
	s.run(size(20, 200), 2)
	minio.stop()
	k := size(10, 100)
	keys := make([]string, k)
	for i := range k {
		keys[i] = fmt.Sprintf("minio-outage-%d", i)
		form := s.form(1000 + i)
		status, hdr, body := s.send("POST", "/v1/reports", s.citizens[i%len(s.citizens)].token, form.buf.Bytes(), form.ctype, "Idempotency-Key", keys[i])
		var p struct{ Type string }
		_ = json.Unmarshal(body, &p)
		if status != 503 || hdr.Get("Retry-After") == "" || !strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json") ||
			p.Type != "urn:cityeyes:problem:storage-unavailable" {
			t.Errorf("submission %d with MinIO down: %d, Retry-After %q, %s %s; want 503 problem+json storage-unavailable with Retry-After",
				i, status, hdr.Get("Retry-After"), hdr.Get("Content-Type"), body)
		}
	}
	minio.start()
	for i := range k {
		s.submitKey(1000+i, keys[i])
	}
	// A second retry of each (an app that did not see the answer) is the same case.
	for i, a := range s.accepted[len(s.accepted)-k:] {
		form := s.form(1000 + i)
		status, hdr, body := s.send("POST", "/v1/reports", s.citizens[i%len(s.citizens)].token, form.buf.Bytes(), form.ctype, "Idempotency-Key", keys[i])
		var r report
		_ = json.Unmarshal(body, &r)
		if status != 201 || r.ID != a.ID || hdr.Get("Idempotent-Replayed") != "true" {
			t.Errorf("retry %d: %d %s (replayed %q), want report %s", i, status, r.ID, hdr.Get("Idempotent-Replayed"), a.Number)
		}
	}
	s.check(in.storeOf(), 0)
}

// TestPostgresRestarted stops PostgreSQL at once (as a crash would) while reports stream
// into a separate api and worker, and starts it again: both recover on their own; requests
// meanwhile get 503 with Retry-After, none a 500.
func TestPostgresRestarted(t *testing.T) {
	needReal(t)
	t.Parallel()
	pg := startPostgres(t)
	in, _ := faultInstance(t)
	in.env["CITYEYES_DATABASE_URL"] = pg.url()
	in.newProc(nil, "api").start()
	in.newProc(nil, "worker").start()
	s := in.newStream(6)
	n := size(100, 2000)
	wait := s.start(n, 3)
	s.waitAccepted(n / 3)
	pg.stop()
	time.Sleep(time.Duration(size(3, 20)) * time.Second)
	pg.start()
	wait()
	fig := s.check(in.storeOf(), 0)
	if fig.Statuses[503] == 0 {
		t.Errorf("no request got a 503 while PostgreSQL was down: %v", fig.Statuses)
	}
}

// TestTwoOfEach runs two api and two worker processes on the same servers, with requests
// spread over both APIs: no case is routed twice, no push sent twice.
func TestTwoOfEach(t *testing.T) {
	needReal(t)
	t.Parallel()
	in, _ := faultInstance(t)
	second := testenv.FreeAddr(t)
	in.newProc(nil, "api").start()
	in.newProc(map[string]string{"CITYEYES_ADDR": second}, "api").start()
	in.newProc(nil, "worker").start()
	in.newProc(nil, "worker").start()
	s := in.newStream(8, in.base, "http://"+second)
	s.run(size(100, 3000), 4)
	s.check(in.storeOf(), 0)
}
