package models

import (
	"context"
	"fmt"

	sfgeom "github.com/peterstace/simplefeatures/geom"
)

// cityShape is part of a city's ground: its boundary, or one of its areas when it has none.
type cityShape struct {
	city, what string
	g          sfgeom.Geometry
	env        sfgeom.Envelope
}

// checkOverlaps refuses a city whose ground shares any area with another city's: a report's
// point must select exactly one city. Touching along a border is fine; sharing ground is not.
func (tx *DB) checkOverlaps(ctx context.Context, jurisdictionID string) error {
	var js []Jurisdiction
	if err := tx.q(ctx).Order("id").Find(&js).Error; err != nil {
		return translate(err)
	}
	if len(js) < 2 {
		return nil
	}
	var areas []Area
	if err := tx.q(ctx).Where("active = ?", true).Order("jurisdiction_id, code").Find(&areas).Error; err != nil {
		return translate(err)
	}
	byCity := map[string][]Area{}
	for _, a := range areas {
		byCity[a.JurisdictionID] = append(byCity[a.JurisdictionID], a)
	}
	var mine, others []cityShape
	for _, j := range js {
		var shapes []cityShape
		add := func(what, s string) error {
			g, err := sfgeom.UnmarshalGeoJSON([]byte(s), sfgeom.NoValidate{})
			if err != nil {
				return fmt.Errorf("%s of %s: %w", what, j.ID, err)
			}
			shapes = append(shapes, cityShape{city: j.ID, what: what, g: g, env: g.Envelope()})
			return nil
		}
		if j.Boundary != nil && *j.Boundary != "" {
			if err := add("boundary", *j.Boundary); err != nil {
				return err
			}
		} else {
			for _, a := range byCity[j.ID] {
				if err := add("area "+a.Code, a.Geometry); err != nil {
					return err
				}
			}
		}
		if j.ID == jurisdictionID {
			mine = shapes
		} else {
			others = append(others, shapes...)
		}
	}
	for _, m := range mine {
		for _, o := range others {
			if !m.env.Intersects(o.env) {
				continue
			}
			im, err := sfgeom.Relate(m.g, o.g)
			if err != nil {
				return fmt.Errorf("comparing %s of %s with %s of %s: %w", m.what, m.city, o.what, o.city, err)
			}
			if im[0] != '2' { // interiors share no ground
				continue
			}
			near := ""
			if x, err := sfgeom.Intersection(m.g, o.g); err == nil {
				if p, ok := x.PointOnSurface().XY(); ok {
					near = fmt.Sprintf(" (for example at lat %.6f, lon %.6f)", p.Y, p.X)
				}
			}
			return Problemf(ErrInvalid, "overlapping-jurisdictions",
				"jurisdiction %s overlaps jurisdiction %s: %s of %s and %s of %s share ground%s; a point must belong to one city only",
				m.city, o.city, m.what, m.city, o.what, o.city, near)
		}
	}
	return nil
}
