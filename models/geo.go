package models

import (
	"context"
	"fmt"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/planar"
	"github.com/tidwall/rtree"
)

// Location is where a point falls: its city and, when it lies in one, its area.
type Location struct {
	JurisdictionID string
	AreaID         *string
	AreaCode       string
}

// AreaIndex finds the city and area a point lies in. Polygons are kept in an R-tree by their
// bounding boxes, so a lookup tests only the few polygons whose box holds the point instead
// of every polygon of every city. It is built from the database and read-only afterwards,
// so it is safe for concurrent use; a configuration change builds a new one.
type AreaIndex struct {
	areas      rtree.RTreeG[*indexedShape]
	boundaries rtree.RTreeG[*indexedShape]
}

type indexedShape struct {
	jurisdictionID string
	areaID         string
	code           string
	shape          orb.Geometry
}

// LoadAreaIndex builds the index of every city's areas and explicit boundaries.
func (db *DB) LoadAreaIndex(ctx context.Context) (*AreaIndex, error) {
	var areas []Area
	if err := db.q(ctx).Where("active = ?", true).Order("jurisdiction_id, code").Find(&areas).Error; err != nil {
		return nil, translate(err)
	}
	var js []Jurisdiction
	if err := db.q(ctx).Find(&js).Error; err != nil {
		return nil, translate(err)
	}
	idx := &AreaIndex{}
	for _, a := range areas {
		g, err := ParseArea(a.Geometry)
		if err != nil {
			return nil, fmt.Errorf("area %s/%s: %w", a.JurisdictionID, a.Code, err)
		}
		idx.insert(&idx.areas, &indexedShape{jurisdictionID: a.JurisdictionID, areaID: a.ID, code: a.Code, shape: g})
	}
	for _, j := range js {
		if j.Boundary == nil || *j.Boundary == "" {
			continue
		}
		g, err := ParseArea(*j.Boundary)
		if err != nil {
			return nil, fmt.Errorf("boundary of %s: %w", j.ID, err)
		}
		idx.insert(&idx.boundaries, &indexedShape{jurisdictionID: j.ID, shape: g})
	}
	return idx, nil
}

func (idx *AreaIndex) insert(tr *rtree.RTreeG[*indexedShape], s *indexedShape) {
	b := s.shape.Bound()
	tr.Insert([2]float64{b.Min.X(), b.Min.Y()}, [2]float64{b.Max.X(), b.Max.Y()}, s)
}

// Locate returns the city and area of a point, or false when it lies in no city. A city
// with a boundary contains the points inside it; a city without one contains its areas.
func (idx *AreaIndex) Locate(lat, lon float64) (Location, bool) {
	p := orb.Point{lon, lat}
	var loc Location
	found := false
	idx.areas.Search([2]float64{lon, lat}, [2]float64{lon, lat}, func(_, _ [2]float64, s *indexedShape) bool {
		if contains(s.shape, p) {
			id := s.areaID
			loc = Location{JurisdictionID: s.jurisdictionID, AreaID: &id, AreaCode: s.code}
			found = true
			return false
		}
		return true
	})
	if found {
		return loc, true
	}
	idx.boundaries.Search([2]float64{lon, lat}, [2]float64{lon, lat}, func(_, _ [2]float64, s *indexedShape) bool {
		if contains(s.shape, p) {
			loc = Location{JurisdictionID: s.jurisdictionID}
			found = true
			return false
		}
		return true
	})
	return loc, found
}

func contains(g orb.Geometry, p orb.Point) bool {
	switch g := g.(type) {
	case orb.Polygon:
		return planar.PolygonContains(g, p)
	case orb.MultiPolygon:
		return planar.MultiPolygonContains(g, p)
	}
	return false
}

// ParseArea reads a GeoJSON Polygon or MultiPolygon and checks that every ring is closed
// and has at least four points.
func ParseArea(s string) (orb.Geometry, error) {
	g, err := geojson.UnmarshalGeometry([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("not a GeoJSON geometry: %w", err)
	}
	var polys []orb.Polygon
	switch shape := g.Geometry().(type) {
	case orb.Polygon:
		polys = []orb.Polygon{shape}
	case orb.MultiPolygon:
		polys = shape
	default:
		return nil, fmt.Errorf("geometry is a %s; areas must be Polygon or MultiPolygon", g.Type)
	}
	for i, poly := range polys {
		if len(poly) == 0 {
			return nil, fmt.Errorf("polygon %d has no rings", i)
		}
		for j, ring := range poly {
			if len(ring) < 4 {
				return nil, fmt.Errorf("polygon %d ring %d has %d points; a ring needs at least 4", i, j, len(ring))
			}
			if ring[0] != ring[len(ring)-1] {
				return nil, fmt.Errorf("polygon %d ring %d is not closed: its last point must repeat its first", i, j)
			}
		}
	}
	return g.Geometry(), nil
}
