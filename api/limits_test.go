package api

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/city-eyes/cityeyes/internal/testenv"
)

// TestRateLimits: a citizen's third report in a minute gets 429 with Retry-After, another
// citizen is not affected, and reads are not limited; with Redis gone, requests go through.
func TestRateLimits(t *testing.T) {
	opt, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	for _, lim := range []struct {
		name string
		new  func(h *harness) RateLimiter
	}{
		{"Redis", func(*harness) RateLimiter { return NewRedisLimiter(rc) }},
		{"in process", func(h *harness) RateLimiter { return NewLocalLimiter(h.clock()) }},
	} {
		t.Run(lim.name, func(t *testing.T) { testRateLimits(t, lim.new) })
	}
}

func testRateLimits(t *testing.T, newLimiter func(h *harness) RateLimiter) {
	h := newHarness(t)
	h.app = New(Config{DB: h.db, Store: h.store, Areas: h.areas.Load, JWTSecret: testenv.Secret, Now: h.clock(),
		Limiter: newLimiter(h), Limits: Limits{ReportsPerUser: 2}})
	alice, bob := h.citizen("device-limit-a"), h.citizen("device-limit-b")
	for i := range 2 {
		if resp, _, p := h.submit(alice, fmt.Sprint("lim", i), goodReport()...); resp.StatusCode != 201 {
			t.Fatalf("report %d: %d %+v", i, resp.StatusCode, p)
		}
	}
	resp, _, p := h.submit(alice, "lim-3", goodReport()...)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || p.Type != "urn:cityeyes:problem:rate-limited" {
		t.Fatalf("third report in a minute: %d %q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), p)
	}
	if resp, _, _ := h.submit(bob, "lim-b", goodReport()...); resp.StatusCode != 201 {
		t.Fatalf("another citizen was limited too: %d", resp.StatusCode)
	}
	if resp, _ := h.do("GET", "/v1/me/reports", alice, nil, ""); resp.StatusCode != 200 {
		t.Fatalf("a read was limited: %d", resp.StatusCode)
	}
	var n int64
	_ = h.db.SQL().QueryRow("SELECT COUNT(*) FROM cases").Scan(&n)
	if n != 3 {
		t.Fatalf("%d cases, want 3: the limited report must leave nothing", n)
	}

	// Redis away: the limiter fails open.
	dead := redis.NewClient(&redis.Options{Addr: testenv.FreeAddr(t), MaxRetries: -1})
	defer dead.Close()
	h.app = New(Config{DB: h.db, Store: h.store, Areas: h.areas.Load, JWTSecret: testenv.Secret, Now: h.clock(),
		Limiter: NewRedisLimiter(dead), Limits: Limits{ReportsPerUser: 1}})
	if resp, _, _ := h.submit(alice, "lim-open", goodReport()...); resp.StatusCode != 201 {
		t.Fatalf("with Redis down: %d, want the report accepted", resp.StatusCode)
	}
}

// TestLimitersCountAllOrNothing: a request is held to all its limits at once; one that a
// limit refuses counts against none of the others. RedisLimiter's counts are redis_rate's
// own (the same keys and algorithm), so the two agree on them; LocalLimiter's Allow agrees
// with its allowAll likewise.
func TestLimitersCountAllOrNothing(t *testing.T) {
	opt, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	local := NewLocalLimiter(nil)
	for _, c := range []struct {
		name string
		all  allLimiter
		one  RateLimiter // another view of the same counts
	}{
		{"Redis", NewRedisLimiter(rc), redis_rate.NewLimiter(rc)},
		{"in process", local, local},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			wide, narrow := "wide-"+t.Name(), "narrow-"+t.Name()
			checks := []rateCheck{{wide, 5}, {narrow, 2}}
			for i := range 2 {
				if denied, _, err := c.all.allowAll(ctx, checks); err != nil || denied != -1 {
					t.Fatalf("request %d: denied by %d, err %v; want allowed", i+1, denied, err)
				}
			}
			// The third is over the narrow limit: refused, with the time until the next one.
			denied, wait, err := c.all.allowAll(ctx, checks)
			if err != nil || denied != 1 || wait <= 0 || wait > 30*time.Second {
				t.Fatalf("third request: denied by %d after %v, err %v; want the narrow limit, under 30 s", denied, wait, err)
			}
			// It was not counted against the wide limit: 3 of 5 left there.
			res, err := c.one.Allow(ctx, "rl:"+wide, redis_rate.PerMinute(5))
			if err != nil || res.Allowed != 1 || res.Remaining != 2 {
				t.Fatalf("wide limit after a refused request: %+v, %v; want 2 remaining after this one", res, err)
			}
			// Alone, the wide key has 2 left: a request to it and a fresh key passes twice,
			// then the wide key refuses (index 0).
			for i, want := range []int{-1, -1, 0} {
				denied, _, err := c.all.allowAll(ctx, []rateCheck{{wide, 5}, {fmt.Sprint("fresh-", i, t.Name()), 5}})
				if err != nil || denied != want {
					t.Fatalf("wide request %d: denied by %d, err %v; want %d", i+1, denied, err, want)
				}
			}
		})
	}
}

// TestLocalLimiterRefills: the in-process counts come back as the minute passes, one event
// every minute/limit, and keys whose counts are back to zero are forgotten.
func TestLocalLimiterRefills(t *testing.T) {
	now := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	l := NewLocalLimiter(func() time.Time { return now })
	ctx := t.Context()
	ch := []rateCheck{{"user:a", 6}} // one every 10 s, six at once
	for i := range 6 {
		if d, _, _ := l.allowAll(ctx, ch); d != -1 {
			t.Fatalf("request %d refused", i+1)
		}
	}
	if d, wait, _ := l.allowAll(ctx, ch); d != 0 || wait != 10*time.Second {
		t.Fatalf("seventh at once: denied by %d, wait %v; want refused for 10 s", d, wait)
	}
	now = now.Add(10 * time.Second)
	if d, _, _ := l.allowAll(ctx, ch); d != -1 {
		t.Fatal("refused 10 s later, when one more is due")
	}
	if d, _, _ := l.allowAll(ctx, ch); d != 0 {
		t.Fatal("allowed two 10 s later")
	}
	now = now.Add(2 * time.Minute)
	for range 1024 { // enough calls to prune, every one a fresh key
		now = now.Add(time.Millisecond)
		l.allowAll(ctx, []rateCheck{{"user:b", 1000000}})
	}
	l.mu.Lock()
	_, kept := l.tats["rl:user:a"]
	l.mu.Unlock()
	if kept {
		t.Error("a key idle for two minutes is still kept")
	}
}
