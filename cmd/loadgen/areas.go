package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/planar"
)

// cityPoints draws the places of reports the way a city's reports fall: anywhere inside
// its areas, an area as likely as it is large. Points drawn from the areas a city is made
// of are inside that city, so none is refused as outside every jurisdiction, and a day's
// reports spread over the city instead of piling up on one corner.
type cityPoints struct {
	shapes []orb.MultiPolygon
	bounds []orb.Bound
	cum    []float64 // cumulative areas, in square degrees: a weight, not a measure
}

// loadCityPoints reads the areas of a GeoJSON FeatureCollection of polygons and
// multipolygons (a city configuration's areas file).
func loadCityPoints(path string) (*cityPoints, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fc, err := geojson.UnmarshalFeatureCollection(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p := &cityPoints{}
	total := 0.0
	for _, f := range fc.Features {
		var mp orb.MultiPolygon
		switch g := f.Geometry.(type) {
		case orb.Polygon:
			mp = orb.MultiPolygon{g}
		case orb.MultiPolygon:
			mp = g
		default:
			continue
		}
		a := planar.Area(mp)
		if a <= 0 {
			continue
		}
		total += a
		p.shapes = append(p.shapes, mp)
		p.bounds = append(p.bounds, mp.Bound())
		p.cum = append(p.cum, total)
	}
	if len(p.shapes) == 0 {
		return nil, errors.New(path + ": no polygon to put reports in")
	}
	return p, nil
}

// draw returns a point inside one of the areas: an area chosen by its size, then a point
// of its bounding box that falls inside it (tried until one does; an area fills a good
// share of its box, so a few tries do).
func (p *cityPoints) draw(rng *rand.Rand) (lat, lon float64) {
	i := sort.SearchFloat64s(p.cum, rng.Float64()*p.cum[len(p.cum)-1])
	i = min(i, len(p.shapes)-1)
	b := p.bounds[i]
	for {
		pt := orb.Point{b.Min[0] + rng.Float64()*(b.Max[0]-b.Min[0]), b.Min[1] + rng.Float64()*(b.Max[1]-b.Min[1])}
		if planar.MultiPolygonContains(p.shapes[i], pt) {
			return pt[1], pt[0]
		}
	}
}
