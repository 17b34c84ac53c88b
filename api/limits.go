package api

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/city-eyes/cityeyes/models"
)

// RateLimiter is what the API needs of a rate limiter: redis_rate's GCRA limiter over the
// Redis the workers use, so every API process shares the same counts. RedisLimiter and
// LocalLimiter do better: they hold a request to all its limits at once (allLimiter).
type RateLimiter interface {
	Allow(ctx context.Context, key string, limit redis_rate.Limit) (*redis_rate.Result, error)
}

// allLimiter counts a request against every check, or against none when one of them is
// exhausted: then it says which (its index) and how long until it allows one more. denied
// is -1 when the request may go on.
type allLimiter interface {
	allowAll(ctx context.Context, checks []rateCheck) (denied int, wait time.Duration, err error)
}

// Limits are the write rates allowed, per minute.
type Limits struct {
	WritesPerUser  int // any POST, PUT or PATCH, by the caller's account (default 60)
	WritesPerIP    int // the same, by client address, for callers without a token too (default 600)
	ReportsPerUser int // POST /v1/reports (default 10)
	DevicesPerIP   int // POST /v1/auth/device: new identities (default 30)
	LoginsPerIP    int // POST /v1/auth/login, refresh and account (default 30)
}

func (l *Limits) defaults() {
	if l.WritesPerUser <= 0 {
		l.WritesPerUser = 60
	}
	if l.WritesPerIP <= 0 {
		l.WritesPerIP = 600
	}
	if l.ReportsPerUser <= 0 {
		l.ReportsPerUser = 10
	}
	if l.DevicesPerIP <= 0 {
		l.DevicesPerIP = 30
	}
	if l.LoginsPerIP <= 0 {
		l.LoginsPerIP = 30
	}
}

// limitWrites refuses writes over their rate with 429 and a Retry-After. Reads are not
// limited here: they cost little and are cached by apps. If Redis does not answer, the
// request goes through: a rate limit must not take the API down with it.
func (s *Server) limitWrites(c *fiber.Ctx) error {
	if s.cfg.Limiter == nil || c.Method() == fiber.MethodGet || c.Method() == fiber.MethodHead {
		return c.Next()
	}
	l := s.cfg.Limits
	checks := []rateCheck{{"ip:" + c.IP(), l.WritesPerIP}}
	path := c.Path()
	switch {
	case path == "/v1/auth/device":
		checks = append(checks, rateCheck{"device-ip:" + c.IP(), l.DevicesPerIP})
	case path == "/v1/auth/login" || path == "/v1/auth/refresh" || path == "/v1/auth/account":
		checks = append(checks, rateCheck{"login-ip:" + c.IP(), l.LoginsPerIP})
	}
	if user := s.tokenSubject(c); user != "" {
		checks = append(checks, rateCheck{"user:" + user, l.WritesPerUser})
		if path == "/v1/reports" {
			checks = append(checks, rateCheck{"reports:" + user, l.ReportsPerUser})
		}
	}
	if all, ok := s.cfg.Limiter.(allLimiter); ok {
		denied, wait, err := all.allowAll(c.UserContext(), checks)
		if err != nil {
			s.log.Warn("rate limiter unavailable; letting the request through", "err", err)
			return c.Next()
		}
		if denied >= 0 {
			return s.rateLimited(c, wait, checks[denied].limit)
		}
		return c.Next()
	}
	for _, ch := range checks {
		res, err := s.cfg.Limiter.Allow(c.UserContext(), "rl:"+ch.key, redis_rate.PerMinute(ch.limit))
		if err != nil {
			s.log.Warn("rate limiter unavailable; letting the request through", "err", err)
			return c.Next()
		}
		if res.Allowed == 0 {
			return s.rateLimited(c, res.RetryAfter, ch.limit)
		}
	}
	return c.Next()
}

// rateLimited refuses a request over a limit of so many a minute, to be tried again after
// wait.
func (s *Server) rateLimited(c *fiber.Ctx, wait time.Duration, limit int) error {
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	c.Set(fiber.HeaderRetryAfter, fmt.Sprint(secs))
	return models.Problemf(models.ErrRateLimited, "rate-limited",
		"too many requests; try again in %d s (at most %d a minute)", secs, limit)
}

// RedisLimiter holds a request to all its limits in one call to Redis: one script that
// counts every key of the request (address, user, kind of write) or none of them. It is
// redis_rate's algorithm (GCRA, a minute's worth of burst) on redis_rate's keys, so the two
// can run side by side during an upgrade; what it saves is a round trip and a script run
// per key, which on the embedded Redis-compatible server (a new Lua interpreter per
// script) was a tenth of a report's CPU. A request refused by one limit is not counted
// against the others.
type RedisLimiter struct {
	rdb redis.UniversalClient
	one *redis_rate.Limiter
}

// NewRedisLimiter counts limits in the given Redis.
func NewRedisLimiter(rdb redis.UniversalClient) *RedisLimiter {
	return &RedisLimiter{rdb: rdb, one: redis_rate.NewLimiter(rdb)}
}

// Allow checks one key, as redis_rate does (the RateLimiter interface).
func (l *RedisLimiter) Allow(ctx context.Context, key string, limit redis_rate.Limit) (*redis_rate.Result, error) {
	return l.one.Allow(ctx, key, limit)
}

// allowAll implements allLimiter with one script run.
func (l *RedisLimiter) allowAll(ctx context.Context, checks []rateCheck) (denied int, wait time.Duration, err error) {
	keys := make([]string, len(checks))
	limits := make([]any, len(checks))
	for i, ch := range checks {
		keys[i], limits[i] = redisRatePrefix+"rl:"+ch.key, ch.limit
	}
	v, err := allowAllScript.Run(ctx, l.rdb, keys, limits...).Slice()
	if err != nil {
		return -1, 0, err
	}
	if len(v) != 2 {
		return -1, 0, fmt.Errorf("rate limit script: unexpected answer %v", v)
	}
	n, _ := v[0].(int64)
	if n == 0 {
		return -1, 0, nil
	}
	secs, _ := v[1].(string)
	f, err := strconv.ParseFloat(secs, 64)
	if err != nil || n < 1 || int(n) > len(checks) {
		return -1, 0, fmt.Errorf("rate limit script: unexpected answer %v", v)
	}
	return int(n) - 1, time.Duration(f * float64(time.Second)), nil
}

// redisRatePrefix is the prefix redis_rate gives its keys.
const redisRatePrefix = "rate:"

// allowAllScript is redis_rate's GCRA (Copyright (c) 2017 Pavel Pravosud,
// rwz/redis-gcra) over several keys, each with its limit a minute in ARGV and a burst of
// the same: it returns {0, "0"} having counted the request against every key, or
// {index, seconds to wait} of the first key that refuses it, having counted nothing.
var allowAllScript = redis.NewScript(`
redis.replicate_commands()
local jan_1_2017 = 1483228800
local t = redis.call("TIME")
local now = (t[1] - jan_1_2017) + (t[2] / 1000000)
local tats = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i])
  local emission_interval = 60 / limit
  local burst_offset = emission_interval * limit
  local tat = redis.call("GET", key)
  if not tat then
    tat = now
  else
    tat = tonumber(tat)
  end
  tat = math.max(tat, now)
  local new_tat = tat + emission_interval
  local diff = now - (new_tat - burst_offset)
  if diff < 0 then
    return {i, tostring(-diff)}
  end
  tats[i] = new_tat
end
for i, key in ipairs(KEYS) do
  local reset_after = tats[i] - now
  if reset_after > 0 then
    redis.call("SET", key, tats[i], "EX", math.ceil(reset_after))
  end
end
return {0, "0"}
`)

// rateCheck is one count a write is held to.
type rateCheck struct {
	key   string
	limit int
}

// tokenSubject is the user a valid bearer token names; the route's auth then uses the same
// reading of the token (bearerClaims).
func (s *Server) tokenSubject(c *fiber.Ctx) string {
	raw, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if !ok {
		return ""
	}
	cl, err := s.bearerClaims(c, raw)
	if err != nil {
		return ""
	}
	return cl.Subject
}

// LocalLimiter keeps the counts in the process's memory, with RedisLimiter's algorithm and
// all-or-nothing counting. It is for the embedded default, whose Redis-compatible server
// runs inside the process too and so is no more shared than this: there each script run
// cost a new Lua interpreter and a round trip through the server's one lock, for the same
// counts.
type LocalLimiter struct {
	now   func() time.Time
	mu    sync.Mutex
	tats  map[string]time.Time // by key: when its count is back to zero (GCRA's theoretical arrival time)
	calls int
}

// NewLocalLimiter counts limits in memory by the given clock (nil for time.Now).
func NewLocalLimiter(now func() time.Time) *LocalLimiter {
	if now == nil {
		now = time.Now
	}
	return &LocalLimiter{now: now, tats: map[string]time.Time{}}
}

// Allow checks one key at limit.Rate per limit.Period with a burst of limit.Burst (the
// RateLimiter interface).
func (l *LocalLimiter) Allow(_ context.Context, key string, limit redis_rate.Limit) (*redis_rate.Result, error) {
	if limit.Rate <= 0 || limit.Period <= 0 {
		return nil, fmt.Errorf("rate limit %v: rate and period must be positive", limit)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	emission := limit.Period / time.Duration(limit.Rate)
	now := l.now()
	next, wait, ok := l.next(key, now, emission, emission*time.Duration(limit.Burst))
	if !ok {
		return &redis_rate.Result{Limit: limit, RetryAfter: wait, ResetAfter: l.tats[key].Sub(now)}, nil
	}
	l.tats[key] = next
	return &redis_rate.Result{Limit: limit, Allowed: 1, Remaining: int((emission*time.Duration(limit.Burst) - next.Sub(now)) / emission),
		RetryAfter: -1, ResetAfter: next.Sub(now)}, nil
}

// allowAll implements allLimiter: a minute's worth of burst per key, as in Redis.
func (l *LocalLimiter) allowAll(_ context.Context, checks []rateCheck) (int, time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.prune(now)
	next := make([]time.Time, len(checks))
	for i, ch := range checks {
		if ch.limit <= 0 {
			return -1, 0, fmt.Errorf("rate limit %q: %d a minute", ch.key, ch.limit)
		}
		emission := time.Minute / time.Duration(ch.limit)
		t, wait, ok := l.next("rl:"+ch.key, now, emission, time.Minute)
		if !ok {
			return i, wait, nil
		}
		next[i] = t
	}
	for i, ch := range checks {
		l.tats["rl:"+ch.key] = next[i]
	}
	return -1, 0, nil
}

// next is GCRA for one more event on key: the key's new arrival time, or, when the burst is
// used up, how long until it allows one more.
func (l *LocalLimiter) next(key string, now time.Time, emission, burst time.Duration) (time.Time, time.Duration, bool) {
	tat := l.tats[key]
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(emission)
	if diff := now.Sub(next.Add(-burst)); diff < 0 {
		return time.Time{}, -diff, false
	}
	return next, 0, true
}

// prune forgets, now and then, the keys whose counts are back to zero, so the map holds only
// the callers of the last minute or so.
func (l *LocalLimiter) prune(now time.Time) {
	l.calls++
	if l.calls%1024 != 0 {
		return
	}
	for k, tat := range l.tats {
		if !tat.After(now) {
			delete(l.tats, k)
		}
	}
}
