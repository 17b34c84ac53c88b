package main

// Fault tests: each runs a stream of reports and handler actions through real cityeyes
// processes on real PostgreSQL, Redis and MinIO, breaks something, heals it, and ends
// with stream.check (faults_test.go). make test runs them small; make chaos
// (CITYEYES_TEST_CHAOS=1) runs them at the sizes docs/reliability.md reports.

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// killer SIGKILLs p at random moments, waits a little and starts it again, until
// stop is closed and at least min kills are done. It returns the number of kills.
func killer(t *testing.T, p *proc, min int, every time.Duration, stop <-chan struct{}) (done func() int) {
	var wg sync.WaitGroup
	kills := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		for {
			// A random moment: anywhere from a fifth of the period to one and a half.
			wait := every/5 + time.Duration(rng.Int64N(int64(every*13/10)))
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
			var victim *proc
			if target == "serve" {
				victim = in.newProc(nil, "serve")
				victim.start()
			} else {
				api, worker := in.newProc(nil, "api"), in.newProc(nil, "worker")
				api.start()
				worker.start()
				victim = map[string]*proc{"api": api, "worker": worker}[target]
			}
			s := in.newStream(8)
			s.abandonedOK = target != "worker"
			n, kills := size(150, 5000), size(3, 25)
			every := time.Duration(size(1500, 2500)) * time.Millisecond
			stop := make(chan struct{})
			done := killer(t, victim, kills, every, stop)
			s.run(n, 4)
			close(stop)
			k := done()
			s.check(in.storeOf(), k)
		})
	}
}
