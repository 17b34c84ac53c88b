package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm/clause"
)

// DeviceRegistration is what a citizen's app sends when it starts.
type DeviceRegistration struct {
	DeviceID  string
	Platform  string
	PushToken string // "" leaves the stored token as it is
	Locale    string
}

// RegisterDevice returns the citizen behind a device, creating both on first sight, and
// records the device's current push token and locale. Calling it again is how an app
// rotates its push token.
func (db *DB) RegisterDevice(ctx context.Context, r DeviceRegistration, now time.Time) (*User, *Device, error) {
	now = now.UTC()
	var (
		u   User
		dev Device
	)
	err := db.InTx(ctx, func(tx *DB) error {
		err := tx.q(ctx).Where("device_id = ?", r.DeviceID).Take(&dev).Error
		switch err = translate(err); {
		case errors.Is(err, ErrNotFound):
			u = User{ID: NewID(), Role: RoleCitizen, CreatedAt: now, UpdatedAt: now}
			if err := tx.q(ctx).Create(&u).Error; err != nil {
				return err
			}
			dev = Device{ID: NewID(), UserID: u.ID, DeviceID: r.DeviceID, Platform: r.Platform, Locale: r.Locale, CreatedAt: now, UpdatedAt: now}
			if r.PushToken != "" {
				dev.PushToken = &r.PushToken
			}
			return tx.q(ctx).Create(&dev).Error
		case err != nil:
			return err
		}
		updates := map[string]any{"platform": r.Platform, "locale": r.Locale, "updated_at": now}
		if r.PushToken != "" {
			updates["push_token"] = r.PushToken
			updates["token_invalid_at"] = nil
		}
		if err := tx.q(ctx).Model(&dev).Updates(updates).Error; err != nil {
			return err
		}
		return tx.q(ctx).Where("id = ?", dev.UserID).Take(&u).Error
	})
	if err != nil {
		return nil, nil, err
	}
	if u.Disabled {
		return nil, nil, Problemf(ErrForbidden, "account-disabled", "this device's account is disabled")
	}
	return &u, &dev, nil
}

// PushDevices returns a user's devices that have a live push token.
func (db *DB) PushDevices(ctx context.Context, userID string) ([]Device, error) {
	var ds []Device
	err := db.q(ctx).Where("user_id = ? AND push_token IS NOT NULL AND token_invalid_at IS NULL", userID).
		Order("created_at").Find(&ds).Error
	return ds, translate(err)
}

// DropPushToken forgets a device's token after the push service said it is dead, unless
// the app has sent a new one since.
func (db *DB) DropPushToken(ctx context.Context, deviceID, token string, now time.Time) error {
	return translate(db.q(ctx).Model(&Device{}).Where("id = ? AND push_token = ?", deviceID, token).
		Updates(map[string]any{"token_invalid_at": now.UTC(), "push_token": nil, "updated_at": now.UTC()}).Error)
}

// Recipient is one user to tell of an event, with the devices to push it to.
type Recipient struct {
	UserID  string
	Devices []Device
}

// PendingPush is a delivery not yet made, with where it goes.
type PendingPush struct {
	Delivery Delivery
	Device   Device
}

// RecordNotifications writes the inbox entries of a public event for its recipients (the
// reporter for now) and, when push is on, a pending delivery per device with a push token,
// once each however often it runs, and returns the deliveries still to be made (pending,
// or in doubt: DeliverySending).
func (db *DB) RecordNotifications(ctx context.Context, ev *CaseEvent, push bool, now time.Time) ([]PendingPush, error) {
	now = now.UTC()
	var out []PendingPush
	err := db.InTx(ctx, func(tx *DB) error {
		c, err := tx.Case(ctx, ev.CaseID)
		if err != nil {
			return err
		}
		recipients, err := tx.recipients(ctx, ev, c)
		if err != nil {
			return err
		}
		for _, uid := range recipients {
			// The entry carries the event's time, not the task's, so the inbox reads in the
			// order things happened even when tasks ran out of order.
			n := Notification{ID: NewID(), UserID: uid, CaseID: c.ID, EventID: ev.ID, EventType: ev.Type, Status: ev.ToStatus, CreatedAt: ev.CreatedAt}
			if ev.ToStatus == StatusClosed {
				n.Resolution = c.Resolution
			}
			if err := tx.q(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&n).Error; err != nil {
				return err
			}
			if !push {
				continue
			}
			devs, err := tx.PushDevices(ctx, uid)
			if err != nil {
				return err
			}
			for _, d := range devs {
				del := Delivery{ID: NewID(), EventID: ev.ID, DeviceID: d.ID, State: DeliveryPending, CreatedAt: now, UpdatedAt: now}
				if err := tx.q(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&del).Error; err != nil {
					return err
				}
			}
		}
		var dels []Delivery
		if err := tx.q(ctx).Where("event_id = ? AND state IN ?", ev.ID, []string{DeliveryPending, DeliverySending}).Order("created_at, id").Find(&dels).Error; err != nil {
			return err
		}
		for _, del := range dels {
			var d Device
			if err := tx.q(ctx).Where("id = ?", del.DeviceID).Take(&d).Error; err != nil {
				return err
			}
			out = append(out, PendingPush{Delivery: del, Device: d})
		}
		return nil
	})
	return out, err
}

// recipients are who an event concerns: a public change, the reporter; a reminder, the
// case's assignee or else its department's handlers; an escalation, the city's supervisors.
func (db *DB) recipients(ctx context.Context, ev *CaseEvent, c *Case) ([]string, error) {
	var ids []string
	q := db.q(ctx).Model(&User{}).Where("disabled = ?", false).Order("id")
	switch {
	case ev.Type == ActionEscalate:
		err := q.Where("jurisdiction_id = ? AND role = ?", c.JurisdictionID, RoleSupervisor).Pluck("id", &ids).Error
		return ids, err
	case ev.Type == ActionRemind && c.AssigneeID != nil:
		return []string{*c.AssigneeID}, nil
	case ev.Type == ActionRemind && c.DepartmentID != nil:
		err := q.Where("department_id = ? AND role = ?", *c.DepartmentID, RoleHandler).Pluck("id", &ids).Error
		return ids, err
	case ev.Public:
		// The reporter and everyone who said "me too"; nobody, if the reporter's data was
		// deleted (the tombstone).
		supporters, err := db.supporterIDs(ctx, c.ID)
		if c.ReporterID == TombstoneID {
			return supporters, err
		}
		return append([]string{c.ReporterID}, supporters...), err
	}
	return nil, nil
}

// MarkDelivery records the outcome of one push.
func (db *DB) MarkDelivery(ctx context.Context, id, state, messageID, errText string, now time.Time) error {
	return translate(db.q(ctx).Model(&Delivery{}).Where("id = ?", id).Updates(map[string]any{
		"state": state, "fcm_message_id": messageID, "error": errText, "updated_at": now.UTC(),
	}).Error)
}

// Inbox returns a user's notifications, newest first, a page at a time.
func (db *DB) Inbox(ctx context.Context, userID, cursor string, limit int) ([]Notification, string, error) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	q := db.q(ctx).Where("user_id = ?", userID)
	if cursor != "" {
		var after queueCursor
		if err := decodeCursor(cursor, &after); err != nil {
			return nil, "", err
		}
		q = q.Where("(created_at < ? OR (created_at = ? AND id < ?))", after.T, after.T, after.ID)
	}
	var ns []Notification
	if err := q.Order("created_at DESC, id DESC").Limit(limit + 1).Find(&ns).Error; err != nil {
		return nil, "", translate(err)
	}
	ns, err := db.withDigests(ctx, userID, cursor, ns, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ns) > limit {
		ns = ns[:limit]
		next = encodeCursor(queueCursor{T: ns[len(ns)-1].CreatedAt, ID: ns[len(ns)-1].ID})
	}
	return ns, next, nil
}

// SetDevice records a device of a signed-in user (staff get pushes too, of reminders and
// escalations) or updates its push token and locale; a device already registered to
// someone else is a conflict.
func (db *DB) SetDevice(ctx context.Context, userID string, r DeviceRegistration, now time.Time) (*Device, error) {
	now = now.UTC()
	var dev Device
	err := db.InTx(ctx, func(tx *DB) error {
		err := translate(tx.q(ctx).Where("device_id = ?", r.DeviceID).Take(&dev).Error)
		switch {
		case errors.Is(err, ErrNotFound):
			dev = Device{ID: NewID(), UserID: userID, DeviceID: r.DeviceID, Platform: r.Platform, Locale: r.Locale, CreatedAt: now, UpdatedAt: now}
			if r.PushToken != "" {
				dev.PushToken = &r.PushToken
			}
			return tx.q(ctx).Create(&dev).Error
		case err != nil:
			return err
		case dev.UserID != userID:
			return Problemf(ErrConflict, "device-taken", "device %s is registered to another account", r.DeviceID)
		}
		updates := map[string]any{"platform": r.Platform, "locale": r.Locale, "updated_at": now}
		if r.PushToken != "" {
			updates["push_token"], updates["token_invalid_at"] = r.PushToken, nil
		}
		if err := tx.q(ctx).Model(&dev).Updates(updates).Error; err != nil {
			return err
		}
		return tx.q(ctx).Where("id = ?", dev.ID).Take(&dev).Error
	})
	return &dev, err
}
