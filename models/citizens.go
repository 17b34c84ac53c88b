package models

import (
	"context"
	"errors"
	"math"
	"sort"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Supporter is a citizen who said "me too" about someone else's report.
type Supporter struct {
	CaseID    string
	UserID    string
	CreatedAt time.Time
}

// Support counts a citizen once as a supporter of an open case and subscribes them to its
// public changes. Supporting again changes nothing; the reporter cannot support their own
// report, and a closed case takes no more support.
func (db *DB) Support(ctx context.Context, caseID, userID string, now time.Time) (*Case, bool, error) {
	var out *Case
	added := false
	err := db.InTx(ctx, func(tx *DB) error {
		c, err := tx.Case(ctx, caseID)
		if err != nil {
			return err
		}
		if c.ReporterID == userID {
			return Problemf(ErrConflict, "own-report", "this is your own report; it already counts you")
		}
		if c.Status == StatusClosed {
			return Problemf(ErrConflict, "case-closed", "report %s is closed; report the problem again if it is back", c.Number)
		}
		res := tx.q(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&Supporter{CaseID: c.ID, UserID: userID, CreatedAt: now.UTC()})
		if res.Error != nil {
			return res.Error
		}
		if added = res.RowsAffected == 1; added {
			// The count is not a lifecycle change: no version bump, no event.
			if err := tx.q(ctx).Model(&Case{}).Where("id = ?", c.ID).Update("supporters", c.Supporters+1).Error; err != nil {
				return err
			}
		}
		out, err = tx.Case(ctx, c.ID)
		return err
	})
	return out, added, err
}

// supporterIDs lists a case's supporters.
func (db *DB) supporterIDs(ctx context.Context, caseID string) ([]string, error) {
	var ids []string
	err := db.q(ctx).Model(&Supporter{}).Where("case_id = ?", caseID).Order("created_at").Pluck("user_id", &ids).Error
	return ids, translate(err)
}

// earthRadius is the mean radius of the Earth in metres.
const earthRadius = 6_371_000.0

// DistanceMetres is the great-circle distance between two points.
func DistanceMetres(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadius * math.Asin(math.Min(1, math.Sqrt(a)))
}

// Nearby returns open cases within radius metres of a point, nearest first, at most limit.
// A bounding box on the indexed point narrows the search, and the database orders what is
// in the box by a flat-earth distance and keeps the nearest few, so a busy spot (a thousand
// open reports of one street festival) costs a sort in the database, not a thousand rows
// read into the process for every report filed there.
func (db *DB) Nearby(ctx context.Context, lat, lon, radius float64, limit int) ([]Case, error) {
	return db.nearby(ctx, lat, lon, radius, limit, nil)
}

func (db *DB) nearby(ctx context.Context, lat, lon, radius float64, limit int, scope func(*gorm.DB) *gorm.DB) ([]Case, error) {
	if radius <= 0 {
		return nil, errors.New("radius must be positive")
	}
	dLat := radius / earthRadius * 180 / math.Pi
	cosLat := math.Max(math.Cos(lat*math.Pi/180), 0.01)
	dLon := dLat / cosLat
	q := db.q(ctx).Where("status <> 'closed' AND lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?",
		lat-dLat, lat+dLat, lon-dLon, lon+dLon)
	if scope != nil {
		q = scope(q)
	}
	// Squared degrees, the longitude scaled to the latitude: the same order as metres at
	// these distances, to well within the radius' own precision.
	order := clause.OrderBy{Expression: clause.Expr{SQL: "(lat - ?) * (lat - ?) + (lon - ?) * (lon - ?) * ?, id",
		Vars: []any{lat, lat, lon, lon, cosLat * cosLat}}}
	var cs []Case
	if err := q.Order(order).Limit(limit).Find(&cs).Error; err != nil {
		return nil, translate(err)
	}
	kept := cs[:0]
	for _, c := range cs {
		if DistanceMetres(lat, lon, c.Lat, c.Lon) <= radius {
			kept = append(kept, c)
		}
	}
	sort.SliceStable(kept, func(i, j int) bool {
		return DistanceMetres(lat, lon, kept[i].Lat, kept[i].Lon) < DistanceMetres(lat, lon, kept[j].Lat, kept[j].Lon)
	})
	return kept, nil
}

// MarkRead marks inbox entries of a user read: those listed, or all when ids is empty.
func (db *DB) MarkRead(ctx context.Context, userID string, ids []string, now time.Time) (int64, error) {
	q := db.q(ctx).Model(&Notification{}).Where("user_id = ? AND read_at IS NULL", userID)
	if len(ids) > 0 {
		q = q.Where("id IN ?", ids)
	}
	res := q.Update("read_at", now.UTC())
	if res.Error != nil {
		return 0, translate(res.Error)
	}
	n, err := db.markDigestsRead(ctx, userID, ids, now)
	return res.RowsAffected + n, err
}

// UnreadCount counts a user's unread inbox entries.
func (db *DB) UnreadCount(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := db.q(ctx).Model(&Notification{}).Where("user_id = ? AND read_at IS NULL", userID).Count(&n).Error
	if err != nil {
		return 0, translate(err)
	}
	d, err := db.unreadDigests(ctx, userID)
	return n + d, err
}

// LikelyDuplicates returns the open reports of a category that are probably the problem a
// citizen is about to report: within the category's duplicate radius of the point and filed
// within its duplicate window, nearest first. Only their id, number, status and point are
// read.
func (db *DB) LikelyDuplicates(ctx context.Context, cat *Category, lat, lon float64, now time.Time) ([]Case, error) {
	if cat.DuplicateRadiusM <= 0 || cat.DuplicateWindowHours <= 0 {
		return nil, nil
	}
	since := now.Add(-time.Duration(cat.DuplicateWindowHours) * time.Hour).UTC()
	return db.nearby(ctx, lat, lon, float64(cat.DuplicateRadiusM), 100, func(q *gorm.DB) *gorm.DB {
		// What a duplicate is shown with, not the whole case: this runs on every report.
		return q.Select("id, number, status, lat, lon").Where("category_id = ? AND created_at > ?", cat.ID, since)
	})
}
