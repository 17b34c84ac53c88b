package models

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"time"
)

// StaffInput is a member of staff as an administrator creates or changes them. Nil fields
// of a change are left as they are.
type StaffInput struct {
	Email        *string
	Name         *string
	Role         *Role
	DepartmentID *string // "" removes the department
	Password     *string
	Disabled     *bool
}

// ListStaff returns a city's staff, by email.
func (db *DB) ListStaff(ctx context.Context, jurisdictionID string) ([]User, error) {
	var us []User
	err := db.q(ctx).Where("jurisdiction_id = ? AND role <> ?", jurisdictionID, RoleCitizen).Order("email").Find(&us).Error
	return us, translate(err)
}

// CreateStaff adds a member of staff to a city.
func (db *DB) CreateStaff(ctx context.Context, jurisdictionID string, in StaffInput, now time.Time) (*User, error) {
	if in.Email == nil || in.Role == nil || in.Password == nil {
		return nil, Problemf(ErrInvalid, "invalid-staff", "email, role and password are required")
	}
	email := strings.ToLower(strings.TrimSpace(*in.Email))
	u := &User{ID: NewID(), Email: &email, JurisdictionID: &jurisdictionID, CreatedAt: now.UTC(), UpdatedAt: now.UTC()}
	if err := db.applyStaff(ctx, jurisdictionID, u, in); err != nil {
		return nil, err
	}
	err := db.q(ctx).Create(u).Error
	if errors.Is(translate(err), ErrConflict) {
		return nil, Problemf(ErrConflict, "email-taken", "there is already an account for %s", email)
	}
	return u, translate(err)
}

// UpdateStaff changes a member of a city's staff. Disabling an account ends its access at
// once: every request looks the account up.
func (db *DB) UpdateStaff(ctx context.Context, jurisdictionID, id string, in StaffInput, now time.Time) (*User, error) {
	var out *User
	err := db.InTx(ctx, func(tx *DB) error {
		u, err := tx.User(ctx, id)
		if err != nil || u.Role == RoleCitizen || u.JurisdictionID == nil || *u.JurisdictionID != jurisdictionID {
			return Problemf(ErrNotFound, "not-found", "no member of staff %q in this city", id)
		}
		if in.Email != nil {
			return Problemf(ErrInvalid, "invalid-staff", "an account's email cannot change; create a new account")
		}
		if err := tx.applyStaff(ctx, jurisdictionID, u, in); err != nil {
			return err
		}
		u.UpdatedAt = now.UTC()
		if err := tx.q(ctx).Save(u).Error; err != nil {
			return err
		}
		if u.Disabled {
			// Its refresh tokens die with it; its access tokens fail at the next request.
			if err := tx.q(ctx).Model(&RefreshToken{}).Where("user_id = ? AND used_at IS NULL", u.ID).Update("used_at", now.UTC()).Error; err != nil {
				return err
			}
		}
		out = u
		return nil
	})
	return out, err
}

func (db *DB) applyStaff(ctx context.Context, jurisdictionID string, u *User, in StaffInput) error {
	if u.Email != nil && !strings.Contains(*u.Email, "@") {
		return Problemf(ErrInvalid, "invalid-staff", "email %q is not an email address", *u.Email)
	}
	if in.Name != nil {
		u.Name = strings.TrimSpace(*in.Name)
	}
	if in.Role != nil {
		switch *in.Role {
		case RoleHandler, RoleSupervisor, RoleAdmin:
			u.Role = *in.Role
		default:
			return Problemf(ErrInvalid, "invalid-staff", "role %q must be handler, supervisor or admin", *in.Role)
		}
	}
	if in.DepartmentID != nil {
		u.DepartmentID = nil
		if *in.DepartmentID != "" {
			d, err := db.DepartmentByCode(ctx, jurisdictionID, *in.DepartmentID)
			if err != nil {
				return Problemf(ErrInvalid, "unknown-department", "no department %q in this city", *in.DepartmentID)
			}
			u.DepartmentID = &d.ID
		}
	}
	if u.Role == RoleHandler && u.DepartmentID == nil {
		return Problemf(ErrInvalid, "invalid-staff", "a handler needs a department")
	}
	if in.Password != nil {
		if len(*in.Password) < 10 {
			return Problemf(ErrInvalid, "weak-password", "a password needs at least 10 characters")
		}
		hash, err := HashPassword(*in.Password)
		if err != nil {
			return err
		}
		u.PasswordHash = hash
	}
	if in.Disabled != nil {
		u.Disabled = *in.Disabled
	}
	return nil
}

// IssueRefreshToken gives a user a new refresh token, valid for ttl.
func (db *DB) IssueRefreshToken(ctx context.Context, userID string, ttl time.Duration, now time.Time) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	rt := RefreshToken{ID: NewID(), UserID: userID, TokenSHA256: HashAPIKey(tok), ExpiresAt: now.Add(ttl).UTC(), CreatedAt: now.UTC()}
	return tok, translate(db.q(ctx).Create(&rt).Error)
}

// UseRefreshToken spends a refresh token and returns its user. A token works once: using
// one that was already used means it was stolen or replayed, so every token of that user is
// revoked and they must sign in again.
func (db *DB) UseRefreshToken(ctx context.Context, token string, now time.Time) (*User, error) {
	now = now.UTC()
	invalid := Problemf(ErrUnauthorized, "invalid-refresh-token", "the refresh token is not valid; sign in again")
	var u *User
	reused := false
	err := db.InTx(ctx, func(tx *DB) error {
		var rt RefreshToken
		if err := tx.q(ctx).Where("token_sha256 = ?", HashAPIKey(token)).Take(&rt).Error; err != nil {
			if errors.Is(translate(err), ErrNotFound) {
				return invalid
			}
			return err
		}
		if rt.UsedAt != nil {
			reused = true
			return tx.q(ctx).Model(&RefreshToken{}).Where("user_id = ? AND used_at IS NULL", rt.UserID).Update("used_at", now).Error
		}
		if !rt.ExpiresAt.After(now) {
			return invalid
		}
		res := tx.q(ctx).Model(&RefreshToken{}).Where("id = ? AND used_at IS NULL", rt.ID).Update("used_at", now)
		if res.Error != nil || res.RowsAffected != 1 {
			return errors.Join(res.Error, invalid)
		}
		var err error
		u, err = tx.User(ctx, rt.UserID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if reused {
		return nil, invalid
	}
	if u.Disabled {
		return nil, Problemf(ErrUnauthorized, "account-disabled", "this account is disabled; ask an administrator")
	}
	return u, nil
}
