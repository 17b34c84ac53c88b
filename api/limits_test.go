package api

import (
	"fmt"
	"testing"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/city-eyes/cityeyes/internal/testenv"
)

// TestRateLimits: a citizen's third report in a minute gets 429 with Retry-After, another
// citizen is not affected, and reads are not limited; with Redis gone, requests go through.
func TestRateLimits(t *testing.T) {
	h := newHarness(t)
	opt, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	h.app = New(Config{DB: h.db, Store: h.store, Areas: h.areas.Load, JWTSecret: testenv.Secret, Now: h.clock(),
		Limiter: redis_rate.NewLimiter(rc), Limits: Limits{ReportsPerUser: 2}})
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
		Limiter: redis_rate.NewLimiter(dead), Limits: Limits{ReportsPerUser: 1}})
	if resp, _, _ := h.submit(alice, "lim-open", goodReport()...); resp.StatusCode != 201 {
		t.Fatalf("with Redis down: %d, want the report accepted", resp.StatusCode)
	}
}
