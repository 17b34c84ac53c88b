package models

import "context"

// JurisdictionAreas returns a city's areas with their geometry, ordered by code: what a map
// of the city draws.
func (db *DB) JurisdictionAreas(ctx context.Context, jurisdictionID string) ([]Area, error) {
	var as []Area
	err := db.q(ctx).Where("jurisdiction_id = ?", jurisdictionID).Order("code").Find(&as).Error
	return as, translate(err)
}
