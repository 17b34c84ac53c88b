package models

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"time"

	"gorm.io/gorm/clause"
)

// A citizen starts as a device identity (RegisterDevice). Giving that identity an email and
// a password makes it an account: signing in with them on another phone adds that phone to
// the same user, so the citizen's reports, inbox and pushes follow them.

// Password bounds: at least 10 characters, as for staff; at most 72 bytes, all bcrypt reads.
const (
	minPasswordChars = 10
	maxPasswordBytes = 72
)

// AccountInput is what a citizen sends to make their identity an account, or to change its
// email or password: CurrentPassword is needed once the account exists, so a device token
// alone cannot take the account over.
type AccountInput struct {
	Email           string
	Password        string
	CurrentPassword string
}

// NormalEmail checks an email address and returns it as stored: trimmed and lower-cased.
func NormalEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || len(e) > 254 || !strings.Contains(e[strings.LastIndexByte(e, '@')+1:], ".") {
		return "", Problemf(ErrInvalid, "invalid-email", "%q is not an email address like name@example.org", email)
	}
	return e, nil
}

// CheckNewPassword refuses a password too short to resist guessing, or too long for bcrypt.
func CheckNewPassword(pw string) error {
	if len([]rune(pw)) < minPasswordChars {
		return Problemf(ErrInvalid, "weak-password", "a password needs at least %d characters", minPasswordChars)
	}
	if len(pw) > maxPasswordBytes {
		return Problemf(ErrInvalid, "password-too-long", "a password may have at most %d bytes", maxPasswordBytes)
	}
	return nil
}

// SetCitizenAccount gives a citizen an email and a password, or changes them. The email is
// unique among all users.
func (db *DB) SetCitizenAccount(ctx context.Context, userID string, in AccountInput, now time.Time) (*User, error) {
	email, err := NormalEmail(in.Email)
	if err != nil {
		return nil, err
	}
	if err := CheckNewPassword(in.Password); err != nil {
		return nil, err
	}
	hash, err := HashPassword(in.Password)
	if err != nil {
		return nil, err
	}
	var out *User
	err = db.InTx(ctx, func(tx *DB) error {
		u, err := tx.User(ctx, userID)
		if err != nil {
			return err
		}
		if u.Role != RoleCitizen {
			return Problemf(ErrForbidden, "wrong-role", "only a citizen's identity becomes an account this way")
		}
		if u.Email != nil && !CheckPassword(u, in.CurrentPassword) {
			return Problemf(ErrForbidden, "wrong-current-password",
				"this identity is already the account %s: send its current_password to change the email or password", *u.Email)
		}
		err = tx.q(ctx).Model(&User{}).Where("id = ?", u.ID).
			Updates(map[string]any{"email": email, "password_hash": hash, "updated_at": now.UTC()}).Error
		if errors.Is(translate(err), ErrConflict) {
			return Problemf(ErrConflict, "email-taken", "there is already an account for %s; sign in with it instead (POST /v1/auth/account)", email)
		}
		if err != nil {
			return err
		}
		out, err = tx.User(ctx, u.ID)
		return err
	})
	return out, err
}

// CitizenByEmail returns the citizen whose account has this email.
func (db *DB) CitizenByEmail(ctx context.Context, email string) (*User, error) {
	var u User
	err := db.q(ctx).Where("email = ? AND role = ?", strings.ToLower(strings.TrimSpace(email)), RoleCitizen).Take(&u).Error
	if err != nil {
		return nil, translate(err)
	}
	return &u, nil
}

// SignInResult is what signing a device in to an account did.
type SignInResult struct {
	Device *Device
	// MergedReports counts the reports of the anonymous identity the device had before,
	// now the account's.
	MergedReports int64
}

// SignInDevice adds a device to a citizen's account, or updates it if it is already
// theirs. A device that belongs to an anonymous identity (a device identity never made an
// account) brings that identity's reports, "me too"s, inbox and other devices into the
// account, and the identity is removed: the device id is all that identity ever had, so
// whoever holds it may take what it filed along. A device signed in to another citizen's
// account moves to this one (a phone changes hands; that account keeps its reports). A
// staff member's device is a conflict.
func (db *DB) SignInDevice(ctx context.Context, userID string, r DeviceRegistration, now time.Time) (*SignInResult, error) {
	now = now.UTC()
	res := &SignInResult{}
	err := db.InTx(ctx, func(tx *DB) error {
		res.MergedReports = 0
		var dev Device
		err := translate(tx.q(ctx).Where("device_id = ?", r.DeviceID).Take(&dev).Error)
		switch {
		case errors.Is(err, ErrNotFound):
			dev = Device{ID: NewID(), UserID: userID, DeviceID: r.DeviceID, Platform: r.Platform, Locale: r.Locale, CreatedAt: now, UpdatedAt: now}
			if r.PushToken != "" {
				dev.PushToken = &r.PushToken
			}
			res.Device = &dev
			return tx.q(ctx).Create(&dev).Error
		case err != nil:
			return err
		case dev.UserID != userID:
			prev, err := tx.lockUser(ctx, dev.UserID)
			if err != nil {
				return err
			}
			switch {
			case prev.Role != RoleCitizen:
				return Problemf(ErrConflict, "device-taken", "device %s is registered to a member of staff; sign in on another device", r.DeviceID)
			case prev.Email == nil:
				if res.MergedReports, err = tx.mergeCitizen(ctx, prev.ID, userID); err != nil {
					return err
				}
			}
		}
		updates := map[string]any{"user_id": userID, "platform": r.Platform, "locale": r.Locale, "updated_at": now}
		if r.PushToken != "" {
			updates["push_token"], updates["token_invalid_at"] = r.PushToken, nil
		}
		if err := tx.q(ctx).Model(&Device{}).Where("id = ?", dev.ID).Updates(updates).Error; err != nil {
			return err
		}
		res.Device = &Device{}
		return tx.q(ctx).Where("id = ?", dev.ID).Take(res.Device).Error
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// lockUser reads a user and, on PostgreSQL, locks the row until the transaction ends, so
// nothing can be filed under an identity while it is being merged away.
func (db *DB) lockUser(ctx context.Context, id string) (*User, error) {
	q := db.q(ctx).Where("id = ?", id)
	if db.dialect == Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var u User
	if err := q.Take(&u).Error; err != nil {
		return nil, translate(err)
	}
	return &u, nil
}

// mergeCitizen moves everything of citizen from to citizen to, in the current
// transaction, and removes from. It returns how many reports moved. What the two both had
// is kept once: a "me too" the account had on from's report (it is now its own), or both
// had on one report, counts once; an inbox entry both had for one event is kept once.
func (db *DB) mergeCitizen(ctx context.Context, from, to string) (int64, error) {
	g := db.q(ctx)
	// "Me too"s that would count the account twice, or on its own report, go, and the
	// reports' counts with them.
	var drop []Supporter
	err := g.Where("(user_id = ? AND (case_id IN (SELECT case_id FROM supporters WHERE user_id = ?) OR case_id IN (SELECT id FROM cases WHERE reporter_id = ?)))"+
		" OR (user_id = ? AND case_id IN (SELECT id FROM cases WHERE reporter_id = ?))", from, to, to, to, from).Find(&drop).Error
	if err != nil {
		return 0, err
	}
	for _, s := range drop {
		if err := g.Where("case_id = ? AND user_id = ?", s.CaseID, s.UserID).Delete(&Supporter{}).Error; err != nil {
			return 0, err
		}
		if err := g.Exec("UPDATE cases SET supporters = supporters - 1 WHERE id = ? AND supporters > 0", s.CaseID).Error; err != nil {
			return 0, err
		}
	}
	steps := []struct {
		sql  string
		args []any
	}{
		{"UPDATE supporters SET user_id = ? WHERE user_id = ?", []any{to, from}},
		{"DELETE FROM notifications WHERE user_id = ? AND event_id IN (SELECT event_id FROM notifications WHERE user_id = ?)", []any{from, to}},
		{"UPDATE notifications SET user_id = ? WHERE user_id = ?", []any{to, from}},
		{"DELETE FROM idempotency_keys WHERE user_id = ? AND key IN (SELECT key FROM idempotency_keys WHERE user_id = ?)", []any{from, to}},
		{"UPDATE idempotency_keys SET user_id = ? WHERE user_id = ?", []any{to, from}},
		{"UPDATE case_events SET actor_id = ? WHERE actor_id = ?", []any{to, from}},
		{"UPDATE media SET owner_id = ? WHERE owner_id = ?", []any{to, from}},
		// Photos uploaded ahead of a report not yet filed: the account may still file it.
		{"UPDATE uploads SET owner_id = ? WHERE owner_id = ?", []any{to, from}},
		{"UPDATE devices SET user_id = ? WHERE user_id = ?", []any{to, from}},
	}
	for _, s := range steps {
		if err := g.Exec(s.sql, s.args...).Error; err != nil {
			return 0, err
		}
	}
	moved := g.Exec("UPDATE cases SET reporter_id = ? WHERE reporter_id = ?", to, from)
	if moved.Error != nil {
		return 0, moved.Error
	}
	// Its tokens now name no one: the next request asks the app to sign in again.
	if err := g.Exec("DELETE FROM users WHERE id = ?", from).Error; err != nil {
		return 0, err
	}
	return moved.RowsAffected, nil
}
