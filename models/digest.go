package models

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm/clause"
)

// The digests' periods.
const (
	DigestDaily  = "daily"
	DigestWeekly = "weekly"
)

// Digest is a supervisor's daily or weekly summary of their city: one inbox entry per
// supervisor, kind and period (a unique row), however often the task that writes it runs.
type Digest struct {
	ID             string
	UserID         string
	JurisdictionID string
	Kind           string
	PeriodStart    time.Time
	PeriodEnd      time.Time
	Figures        string // JSON DigestFigures
	ReadAt         *time.Time
	CreatedAt      time.Time
}

// DigestDelivery is one push of one digest to one device.
type DigestDelivery struct {
	ID           string
	DigestID     string
	DeviceID     string
	State        string
	FCMMessageID string `gorm:"column:fcm_message_id"`
	Error        string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// DigestFigures are a digest's headline figures: the period's KPIs of the whole city.
type DigestFigures struct {
	Received     int64    `json:"received"`
	Closed       int64    `json:"closed"`
	Backlog      int64    `json:"backlog"`
	Overdue      int64    `json:"overdue"`
	Due          int64    `json:"due"`
	ClosedOnTime int64    `json:"closed_on_time"`
	OnTimeRate   *float64 `json:"on_time_rate"`
}

// DigestFiguresOf takes a digest's headline figures from a period's KPIs.
func DigestFiguresOf(k KPIs) DigestFigures {
	return DigestFigures{Received: k.Received, Closed: k.Closed, Backlog: k.Backlog, Overdue: k.Overdue,
		Due: k.Due, ClosedOnTime: k.ClosedOnTime, OnTimeRate: k.OnTimeRate}
}

// DigestPeriod is the last whole local day (daily) or ISO week (weekly) of a city that ended
// at least `after` ago: a digest is sent in the morning after its period (at `after` past
// local midnight), and a run that was missed sends it at the next run.
func DigestPeriod(kind string, loc *time.Location, now time.Time, after time.Duration) (time.Time, time.Time) {
	t := now.Add(-after).In(loc)
	end := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	if kind == DigestWeekly {
		end = end.AddDate(0, 0, -((int(end.Weekday()) + 6) % 7)) // back to Monday
		return end.AddDate(0, 0, -7).UTC(), end.UTC()
	}
	return end.AddDate(0, 0, -1).UTC(), end.UTC()
}

// Supervisors lists a city's active supervisors.
func (db *DB) Supervisors(ctx context.Context, jurisdictionID string) ([]User, error) {
	var us []User
	err := db.q(ctx).Where("jurisdiction_id = ? AND role = ? AND disabled = ?", jurisdictionID, RoleSupervisor, false).
		Order("id").Find(&us).Error
	return us, translate(err)
}

// PendingDigestPush is a digest's push not yet made, with where it goes.
type PendingDigestPush struct {
	Delivery DigestDelivery
	Device   Device
}

// RecordDigest writes a supervisor's digest for a period once (a second run finds the first
// and keeps it) and, when push is on, a pending delivery per device with a push token, and
// returns the digest as stored and the deliveries still to be made.
func (db *DB) RecordDigest(ctx context.Context, d Digest, figures DigestFigures, push bool, now time.Time) (*Digest, []PendingDigestPush, error) {
	now = now.UTC()
	b, err := json.Marshal(figures)
	if err != nil {
		return nil, nil, err
	}
	d.ID, d.Figures, d.CreatedAt = NewID(), string(b), now
	d.PeriodStart, d.PeriodEnd = d.PeriodStart.UTC(), d.PeriodEnd.UTC()
	var (
		out     Digest
		pending []PendingDigestPush
	)
	err = db.InTx(ctx, func(tx *DB) error {
		if err := tx.q(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&d).Error; err != nil {
			return err
		}
		if err := tx.q(ctx).Where("user_id = ? AND kind = ? AND period_start = ?", d.UserID, d.Kind, d.PeriodStart).Take(&out).Error; err != nil {
			return err
		}
		if !push {
			return nil
		}
		devs, err := tx.PushDevices(ctx, d.UserID)
		if err != nil {
			return err
		}
		for _, dev := range devs {
			del := DigestDelivery{ID: NewID(), DigestID: out.ID, DeviceID: dev.ID, State: DeliveryPending, CreatedAt: now, UpdatedAt: now}
			if err := tx.q(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&del).Error; err != nil {
				return err
			}
		}
		var dels []DigestDelivery
		if err := tx.q(ctx).Where("digest_id = ? AND state = ?", out.ID, DeliveryPending).Order("created_at, id").Find(&dels).Error; err != nil {
			return err
		}
		for _, del := range dels {
			var dev Device
			if err := tx.q(ctx).Where("id = ?", del.DeviceID).Take(&dev).Error; err != nil {
				return err
			}
			if dev.PushToken == nil {
				continue // the token died since
			}
			pending = append(pending, PendingDigestPush{Delivery: del, Device: dev})
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return &out, pending, nil
}

// MarkDigestDelivery records the outcome of one digest push.
func (db *DB) MarkDigestDelivery(ctx context.Context, id, state, messageID, errText string, now time.Time) error {
	return translate(db.q(ctx).Model(&DigestDelivery{}).Where("id = ?", id).Updates(map[string]any{
		"state": state, "fcm_message_id": messageID, "error": errText, "updated_at": now.UTC(),
	}).Error)
}

// UserDigests returns a user's digests, newest first.
func (db *DB) UserDigests(ctx context.Context, userID string, limit int) ([]Digest, error) {
	var ds []Digest
	err := db.q(ctx).Where("user_id = ?", userID).Order("created_at DESC, id DESC").Limit(limit).Find(&ds).Error
	return ds, translate(err)
}

// withDigests merges a user's digests into a page of their inbox: the digests after the
// same cursor, newest first, the page kept at limit entries.
func (db *DB) withDigests(ctx context.Context, userID, cursor string, ns []Notification, limit int) ([]Notification, error) {
	q := db.q(ctx).Where("user_id = ?", userID)
	if cursor != "" {
		var after queueCursor
		if err := decodeCursor(cursor, &after); err != nil {
			return nil, err
		}
		q = q.Where("(created_at < ? OR (created_at = ? AND id < ?))", after.T, after.T, after.ID)
	}
	var ds []Digest
	if err := q.Order("created_at DESC, id DESC").Limit(limit).Find(&ds).Error; err != nil {
		return nil, translate(err)
	}
	if len(ds) == 0 {
		return ns, nil
	}
	for i := range ds {
		d := ds[i]
		ns = append(ns, Notification{ID: d.ID, UserID: d.UserID, EventType: Action("digest"), ReadAt: d.ReadAt, CreatedAt: d.CreatedAt, Digest: &d})
	}
	slices.SortFunc(ns, func(a, b Notification) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if len(ns) > limit {
		ns = ns[:limit]
	}
	return ns, nil
}

// markDigestsRead marks a user's digests read: those listed, or all when ids is empty.
func (db *DB) markDigestsRead(ctx context.Context, userID string, ids []string, now time.Time) (int64, error) {
	q := db.q(ctx).Model(&Digest{}).Where("user_id = ? AND read_at IS NULL", userID)
	if len(ids) > 0 {
		q = q.Where("id IN ?", ids)
	}
	res := q.Update("read_at", now.UTC())
	return res.RowsAffected, translate(res.Error)
}

// unreadDigests counts a user's unread digests.
func (db *DB) unreadDigests(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := db.q(ctx).Model(&Digest{}).Where("user_id = ? AND read_at IS NULL", userID).Count(&n).Error
	return n, translate(err)
}
