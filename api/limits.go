package api

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/go-redis/redis_rate/v10"
	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"

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
	for _, ch := range checks {
		res, err := s.cfg.Limiter.Allow(c.UserContext(), "rl:"+ch.key, redis_rate.PerMinute(ch.limit))
		if err != nil {
			s.log.Warn("rate limiter unavailable; letting the request through", "err", err)
			return c.Next()
		}
		if res.Allowed == 0 {
			wait := int(math.Ceil(res.RetryAfter.Seconds()))
			c.Set(fiber.HeaderRetryAfter, fmt.Sprint(max(wait, 1)))
			return models.Problemf(models.ErrRateLimited, "rate-limited",
				"too many requests; try again in %d s (at most %d a minute)", max(wait, 1), ch.limit)
		}
	}
	return c.Next()
}

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
