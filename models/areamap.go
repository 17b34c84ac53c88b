package models

import "context"

// JurisdictionAreas returns a city's areas with their geometry, ordered by code: what a map
// of the city draws. Areas retired from its configuration are left out.
func (db *DB) JurisdictionAreas(ctx context.Context, jurisdictionID string) ([]Area, error) {
	var as []Area
	err := db.q(ctx).Where("jurisdiction_id = ? AND active = ?", jurisdictionID, true).Order("code").Find(&as).Error
	return as, translate(err)
}
