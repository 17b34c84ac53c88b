package api

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/city-eyes/cityeyes/models"
)

// rateLimiter is what the API needs of a rate limiter: redis_rate's GCRA limiter over the
// Redis the workers use, so every API process shares the same counts.
type rateLimiter interface {
	Allow(ctx context.Context, key string, limit redis_rate.Limit) (*redis_rate.Result, error)
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
	if all, ok := s.cfg.Limiter.(*RedisLimiter); ok {
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

// Allow checks one key, as redis_rate does (the rateLimiter interface).
func (l *RedisLimiter) Allow(ctx context.Context, key string, limit redis_rate.Limit) (*redis_rate.Result, error) {
	return l.one.Allow(ctx, key, limit)
}

// allowAll counts a request against every check, or against none when one of them is
// exhausted: then it says which (its index) and how long until it allows one more.
// denied is -1 when the request may go on.
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

// tokenSubject is the user a bearer token names, if its signature is good; the token is
// checked fully by the route's own auth.
func (s *Server) tokenSubject(c *fiber.Ctx) string {
	raw, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if !ok {
		return ""
	}
	var cl claims
	if _, err := jwt.ParseWithClaims(raw, &cl, func(*jwt.Token) (any, error) { return s.cfg.JWTSecret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithTimeFunc(s.now)); err != nil {
		return ""
	}
	return cl.Subject
}
