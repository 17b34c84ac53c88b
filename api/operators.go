package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/golang-jwt/jwt/v5"

	"github.com/city-eyes/cityeyes/models"
)

// The queue dashboard (Asynq's asynqmon) is a web application for the browser, which cannot
// send a bearer header by itself. An administrator's app (or curl) trades its bearer token
// for a short-lived cookie (POST /v1/admin/queues/session), and the browser then opens
// /admin/queues. The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site
// can make the browser send it, which is what keeps the dashboard's own buttons from being
// pressed cross-site), scoped to /admin/queues, signed with a key derived from the JWT
// secret (so it is never accepted as a bearer token, nor a bearer token as it), and lasts a
// quarter of an hour. The account is read again on every request, as for bearer tokens: a
// disabled or demoted administrator loses the dashboard at once. Basic authentication with
// an administrator's password was the other choice: it would send the password with every
// request, cannot be signed out of, and would bypass the sign-in's own checks.
const (
	queueDashboardPath = "/admin/queues"
	queueCookie        = "cityeyes_queues"
	queueSessionTTL    = 15 * time.Minute
	queueAudience      = "cityeyes-queues"
)

// operatorRoutes mounts the routes of operators' tools.
func (s *Server) operatorRoutes(app *fiber.App, v1 fiber.Router) {
	v1.Post("/admin/queues/session", s.auth(models.RoleAdmin), s.queueSession)
	if s.cfg.QueueDashboard != nil {
		dashboard := adaptor.HTTPHandler(s.cfg.QueueDashboard)
		app.Use(queueDashboardPath, s.queueCookieAuth, func(c *fiber.Ctx) error {
			// The dashboard is operators' page: never cached, never framed by another site.
			c.Set(fiber.HeaderCacheControl, "no-store")
			c.Set(fiber.HeaderXFrameOptions, "DENY")
			return dashboard(c)
		})
	}
}

// queueKey is the cookie's signing key, derived from the JWT secret for this use alone.
func (s *Server) queueKey() []byte {
	m := hmac.New(sha256.New, s.cfg.JWTSecret)
	m.Write([]byte("cityeyes queue dashboard cookie"))
	return m.Sum(nil)
}

// queueSession gives an administrator's browser a short-lived cookie for the queue
// dashboard (POST /v1/admin/queues/session).
func (s *Server) queueSession(c *fiber.Ctx) error {
	if s.cfg.QueueDashboard == nil {
		return models.Problemf(models.ErrNotFound, "no-queue-dashboard",
			"this process serves no queue dashboard: it is served where the workers' Redis is known (cityeyes serve, or an api with CITYEYES_REDIS_URL)")
	}
	now := s.now()
	exp := now.Add(queueSessionTTL)
	cl := jwt.RegisteredClaims{Subject: caller(c).UserID, Issuer: "cityeyes", Audience: jwt.ClaimStrings{queueAudience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp)}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, cl).SignedString(s.queueKey())
	if err != nil {
		return err
	}
	c.Cookie(&fiber.Cookie{Name: queueCookie, Value: tok, Path: queueDashboardPath, Expires: exp,
		MaxAge: int(queueSessionTTL.Seconds()), HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode,
		Secure: c.Protocol() == "https"})
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(QueueSession{URL: queueDashboardPath, ExpiresAt: exp.UTC()})
}

// queueCookieAuth admits a request to the dashboard when its cookie is valid and its
// account is still an enabled administrator.
func (s *Server) queueCookieAuth(c *fiber.Ctx) error {
	raw := c.Cookies(queueCookie)
	if raw == "" {
		return models.Problemf(models.ErrUnauthorized, "missing-queue-session",
			"open the queue dashboard through POST /v1/admin/queues/session with an administrator's token first; it sets the cookie this page needs")
	}
	var cl jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(raw, &cl, func(*jwt.Token) (any, error) { return s.queueKey(), nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer("cityeyes"),
		jwt.WithAudience(queueAudience), jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.now))
	if err != nil {
		detail := "the queue dashboard session is not valid; open it again through POST /v1/admin/queues/session"
		if errors.Is(err, jwt.ErrTokenExpired) {
			detail = "the queue dashboard session has expired; open it again through POST /v1/admin/queues/session"
		}
		return models.Problemf(models.ErrUnauthorized, "invalid-queue-session", "%s", detail)
	}
	u, err := s.db.User(c.UserContext(), cl.Subject)
	if errors.Is(err, models.ErrNotFound) {
		return models.Problemf(models.ErrUnauthorized, "invalid-queue-session", "the session's account no longer exists")
	}
	if err != nil {
		return err
	}
	if u.Disabled {
		return models.Problemf(models.ErrUnauthorized, "account-disabled", "this account is disabled; ask an administrator")
	}
	if u.Role != models.RoleAdmin {
		return models.Problemf(models.ErrForbidden, "wrong-role", "the queue dashboard is for administrators")
	}
	return c.Next()
}

// QueueSession says where the queue dashboard is and until when the cookie just set opens it.
type QueueSession struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}
