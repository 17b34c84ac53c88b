package api

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/city-eyes/cityeyes/models"
)

// accountRoutes mounts the routes of a device identity upgraded to an account.
func (s *Server) accountRoutes(app *fiber.App, v1 fiber.Router) {
	v1.Post("/auth/account", s.accountSignIn)
	v1.Post("/me/account", s.auth(models.RoleCitizen), s.setAccount)
}

// AccountRequest makes a citizen's device identity an account, or changes its email or
// password (then with the current password).
type AccountRequest struct {
	Email           string `json:"email"`
	Password        string `json:"password"`
	CurrentPassword string `json:"current_password,omitempty"`
}

// Account is a citizen's account.
type Account struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
}

// AccountSignInRequest signs a device in to a citizen's account.
type AccountSignInRequest struct {
	Email     string `json:"email"`
	Password  string `json:"password"`
	DeviceID  string `json:"device_id"`
	Platform  string `json:"platform"`
	PushToken string `json:"push_token,omitempty"`
	Locale    string `json:"locale,omitempty"`
}

// AccountSignInResponse is the account's token for the device, and how many reports of the
// device's earlier anonymous identity joined the account.
type AccountSignInResponse struct {
	Token         string    `json:"token"`
	UserID        string    `json:"user_id"`
	ExpiresAt     time.Time `json:"expires_at"`
	MergedReports int64     `json:"merged_reports"`
}

// setAccount gives the caller's identity an email and password (POST /v1/me/account).
func (s *Server) setAccount(c *fiber.Ctx) error {
	var req AccountRequest
	if err := readJSON(c, &req, 16<<10); err != nil {
		return err
	}
	u, err := s.db.SetCitizenAccount(c.UserContext(), caller(c).UserID, models.AccountInput{
		Email: req.Email, Password: req.Password, CurrentPassword: req.CurrentPassword,
	}, s.now())
	if err != nil {
		return err
	}
	return c.JSON(Account{UserID: u.ID, Email: *u.Email})
}

// noOnesHash is a bcrypt hash (of the default cost) no password is known for: an unknown
// email is checked against it, so that a sign-in takes as long whether or not the email has
// an account, and the time does not tell which part was wrong.
const noOnesHash = "$2a$10$07tqesX9ARWg9Heb96S.J.HgSicEzAE6p1CKlqD.lOzq4y50978ha"

// accountSignIn signs a device in to a citizen's account (POST /v1/auth/account): the
// device joins the account, and the token is the account's.
func (s *Server) accountSignIn(c *fiber.Ctx) error {
	ctx := c.UserContext()
	var req AccountSignInRequest
	if err := readJSON(c, &req, 16<<10); err != nil {
		return err
	}
	dr := DeviceRequest{DeviceID: req.DeviceID, Platform: req.Platform, PushToken: req.PushToken, Locale: req.Locale}
	if err := checkDevice(&dr); err != nil {
		return err
	}
	wrong := models.Problemf(models.ErrUnauthorized, "bad-credentials", "wrong email or password")
	u, err := s.db.CitizenByEmail(ctx, req.Email)
	if errors.Is(err, models.ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword([]byte(noOnesHash), []byte(req.Password))
		return wrong
	}
	if err != nil {
		return err
	}
	if !models.CheckPassword(u, req.Password) {
		return wrong
	}
	if u.Disabled {
		return models.Problemf(models.ErrForbidden, "account-disabled", "this account is disabled")
	}
	res, err := s.db.SignInDevice(ctx, u.ID, models.DeviceRegistration{
		DeviceID: dr.DeviceID, Platform: dr.Platform, PushToken: dr.PushToken, Locale: dr.Locale,
	}, s.now())
	if err != nil {
		return err
	}
	tok, exp, err := s.issueToken(u)
	if err != nil {
		return err
	}
	return c.JSON(AccountSignInResponse{Token: tok, UserID: u.ID, ExpiresAt: exp, MergedReports: res.MergedReports})
}
