package api

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/city-eyes/cityeyes/models"
)

// Token lifetimes: a citizen's app keeps its token for weeks and re-registers its device to
// get a new one; staff sign in for a working day.
const (
	citizenTokenTTL = 30 * 24 * time.Hour
	staffTokenTTL   = 12 * time.Hour
	refreshTokenTTL = 7 * 24 * time.Hour
)

// claims are what a bearer token says of its holder.
type claims struct {
	Role           models.Role `json:"role"`
	JurisdictionID string      `json:"jur,omitempty"`
	DepartmentID   string      `json:"dept,omitempty"`
	jwt.RegisteredClaims
}

// principal is the caller of a request, as its token says.
type principal struct {
	UserID         string
	Role           models.Role
	JurisdictionID string
	DepartmentID   string
}

func (p *principal) actor() models.Actor {
	id := p.UserID
	return models.Actor{ID: &id, Role: p.Role, JurisdictionID: p.JurisdictionID, DepartmentID: p.DepartmentID}
}

func (s *Server) issueToken(u *models.User) (string, time.Time, error) {
	ttl := staffTokenTTL
	if u.Role == models.RoleCitizen {
		ttl = citizenTokenTTL
	}
	now := s.now()
	exp := now.Add(ttl)
	cl := claims{Role: u.Role, RegisteredClaims: jwt.RegisteredClaims{
		Subject: u.ID, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp), Issuer: "cityeyes",
	}}
	if u.JurisdictionID != nil {
		cl.JurisdictionID = *u.JurisdictionID
	}
	if u.DepartmentID != nil {
		cl.DepartmentID = *u.DepartmentID
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, cl).SignedString(s.cfg.JWTSecret)
	return tok, exp.UTC(), err
}

// auth admits requests whose bearer token is valid and whose role is one of roles. Only
// HS256 is accepted, so a token that names another algorithm (or "none") is refused.
func (s *Server) auth(roles ...models.Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		h := c.Get(fiber.HeaderAuthorization)
		raw, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || raw == "" {
			return models.Problemf(models.ErrUnauthorized, "missing-token",
				"send a bearer token: Authorization: Bearer <token> from POST /v1/auth/device or /v1/auth/login")
		}
		cl, err := s.bearerClaims(c, raw)
		if err != nil {
			detail := "the bearer token is not valid; sign in again"
			if errors.Is(err, jwt.ErrTokenExpired) {
				detail = "the bearer token has expired; sign in again"
			}
			return models.Problemf(models.ErrUnauthorized, "invalid-token", "%s", detail)
		}
		// The token names the user; what they may do is read from their account on every
		// request, so a disabled account or a handler moved to another department takes
		// effect at once, not when the token expires.
		u, err := s.db.User(c.UserContext(), cl.Subject)
		if errors.Is(err, models.ErrNotFound) {
			return models.Problemf(models.ErrUnauthorized, "invalid-token", "the bearer token's account no longer exists; sign in again")
		}
		if err != nil {
			return err
		}
		if u.ErasedAt != nil {
			return models.Problemf(models.ErrUnauthorized, "account-deleted",
				"this account and its data were deleted; register the device again to start afresh")
		}
		if u.Disabled {
			return models.Problemf(models.ErrUnauthorized, "account-disabled", "this account is disabled; ask an administrator")
		}
		if !slices.Contains(roles, u.Role) {
			return models.Problemf(models.ErrForbidden, "wrong-role", "this route is not for a %s", u.Role)
		}
		p := &principal{UserID: u.ID, Role: u.Role}
		if u.JurisdictionID != nil {
			p.JurisdictionID = *u.JurisdictionID
		}
		if u.DepartmentID != nil {
			p.DepartmentID = *u.DepartmentID
		}
		c.Locals("principal", p)
		return c.Next()
	}
}

// bearerClaims checks a bearer token and reads its claims, once per request: the write
// rate limiter (limitWrites) and the route's auth both need them.
func (s *Server) bearerClaims(c *fiber.Ctx, raw string) (*claims, error) {
	type parsed struct {
		raw string
		cl  *claims
		err error
	}
	if p, ok := c.Locals("bearer").(*parsed); ok && p.raw == raw {
		return p.cl, p.err
	}
	var cl claims
	_, err := jwt.ParseWithClaims(raw, &cl, func(*jwt.Token) (any, error) { return s.cfg.JWTSecret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer("cityeyes"),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.now))
	p := &parsed{raw: raw, err: err}
	if err == nil {
		p.cl = &cl
	}
	c.Locals("bearer", p)
	return p.cl, p.err
}

func caller(c *fiber.Ctx) *principal {
	p, _ := c.Locals("principal").(*principal)
	return p
}

// registerDevice gives a citizen's device its identity and token (POST /v1/auth/device).
func (s *Server) registerDevice(c *fiber.Ctx) error {
	var req DeviceRequest
	if err := readJSON(c, &req, 16<<10); err != nil {
		return err
	}
	if err := checkDevice(&req); err != nil {
		return err
	}
	u, _, err := s.db.RegisterDevice(c.UserContext(), models.DeviceRegistration{
		DeviceID: req.DeviceID, Platform: req.Platform, PushToken: req.PushToken, Locale: req.Locale,
	}, s.now())
	if err != nil {
		return err
	}
	tok, exp, err := s.issueToken(u)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusOK).JSON(DeviceResponse{Token: tok, UserID: u.ID, ExpiresAt: exp})
}

// setDevice registers a signed-in user's device, or updates its push token and locale
// (PUT /v1/me/devices/{device_id}): how an app rotates its token, and how staff's phones get
// reminders and escalations.
func (s *Server) setDevice(c *fiber.Ctx) error {
	var req DeviceRequest
	if err := readJSON(c, &req, 16<<10); err != nil {
		return err
	}
	req.DeviceID = c.Params("device_id")
	if err := checkDevice(&req); err != nil {
		return err
	}
	d, err := s.db.SetDevice(c.UserContext(), caller(c).UserID, models.DeviceRegistration{
		DeviceID: req.DeviceID, Platform: req.Platform, PushToken: req.PushToken, Locale: req.Locale,
	}, s.now())
	if err != nil {
		return err
	}
	return c.JSON(DeviceInfo{DeviceID: d.DeviceID, Platform: d.Platform, Locale: d.Locale, Push: d.PushToken != nil})
}

// checkDevice validates a device registration and fills in the default locale.
func checkDevice(req *DeviceRequest) error {
	req.DeviceID = strings.TrimSpace(req.DeviceID)
	if len(req.DeviceID) < 8 || len(req.DeviceID) > 200 {
		return models.Problemf(models.ErrInvalid, "invalid-device", "device_id must be 8 to 200 characters: a random id the app keeps for this install")
	}
	switch req.Platform {
	case "android", "ios", "web":
	default:
		return models.Problemf(models.ErrInvalid, "invalid-device", "platform must be android, ios or web")
	}
	if len(req.PushToken) > 4096 {
		return models.Problemf(models.ErrInvalid, "invalid-device", "push_token is too long")
	}
	if req.Locale == "" {
		req.Locale = "en"
	}
	return nil
}

// login signs a member of staff in (POST /v1/auth/login).
func (s *Server) login(c *fiber.Ctx) error {
	var req LoginRequest
	if err := readJSON(c, &req, 16<<10); err != nil {
		return err
	}
	wrong := models.Problemf(models.ErrUnauthorized, "bad-credentials", "wrong email or password")
	u, err := s.db.StaffByEmail(c.UserContext(), req.Email)
	if errors.Is(err, models.ErrNotFound) {
		return wrong
	}
	if err != nil {
		return err
	}
	if !models.CheckPassword(u, req.Password) {
		return wrong
	}
	if u.Disabled {
		return models.Problemf(models.ErrForbidden, "account-disabled", "this account is disabled; ask an administrator")
	}
	return s.staffSession(c, u)
}

// refresh swaps a refresh token for a new access token and a new refresh token
// (POST /v1/auth/refresh).
func (s *Server) refresh(c *fiber.Ctx) error {
	var req RefreshRequest
	if err := readJSON(c, &req, 4<<10); err != nil {
		return err
	}
	u, err := s.db.UseRefreshToken(c.UserContext(), req.RefreshToken, s.now())
	if err != nil {
		return err
	}
	return s.staffSession(c, u)
}

// staffSession answers a sign-in or a refresh: an access token for a working day and a
// refresh token, good once, for a week.
func (s *Server) staffSession(c *fiber.Ctx, u *models.User) error {
	tok, exp, err := s.issueToken(u)
	if err != nil {
		return err
	}
	refresh, err := s.db.IssueRefreshToken(c.UserContext(), u.ID, refreshTokenTTL, s.now())
	if err != nil {
		return err
	}
	resp := LoginResponse{Token: tok, RefreshToken: refresh, Role: string(u.Role), ExpiresAt: exp, UserID: u.ID}
	if u.JurisdictionID != nil {
		resp.Jurisdiction = *u.JurisdictionID
	}
	if u.DepartmentID != nil {
		d, err := s.db.Department(c.UserContext(), *u.DepartmentID)
		if err != nil {
			return err
		}
		resp.Department = &d.Code
	}
	return c.JSON(resp)
}
