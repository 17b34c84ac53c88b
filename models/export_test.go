package models

import (
	"context"
	"time"
)

// What the tests of package models_test reach inside the package for.

// StatsReadingParts is Stats with every part day read one way: the part outside the
// period, taken off the whole day from the rollup (outside true), or the part inside it.
func (db *DB) StatsReadingParts(ctx context.Context, q StatsQuery, outside bool) (*Stats, error) {
	return db.statsReading(ctx, q, func(*DB, context.Context, string, span, span) (bool, error) { return outside, nil })
}

// ReadsOutside says how Stats reads the last day of a period ending at end: true for the
// rest of the day after end (taken off the whole day), false for the part before it.
func (db *DB) ReadsOutside(ctx context.Context, jurisdictionID string, loc *time.Location, end time.Time) (bool, error) {
	start, next := dayStart(end, loc), nextDayStart(end, loc)
	return db.readOutside(ctx, jurisdictionID, span{end, next, -1}, span{start, end, 1})
}
