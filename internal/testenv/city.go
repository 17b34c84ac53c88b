package testenv

import (
	"context"
	_ "embed"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/models"
)

// PhotoJPEG is a real camera photo (640×480, with EXIF GPS tags) from the shared data set
// (ianare/exif-samples, CC BY-SA 4.0).
//
//go:embed testdata/DSCN0010.jpg
var PhotoJPEG []byte

// PhotoPortrait6 is a JPEG whose pixels are landscape with EXIF orientation 6: shown
// upright it is portrait (ianare/exif-samples, CC BY-SA 4.0).
//
//go:embed testdata/portrait_6.jpg
var PhotoPortrait6 []byte

// CityYAML is a small test city, "testville": two square areas side by side, a department
// per area's kind of work, a triage desk, a routing rule, and one account per role.
//
//	area west: lon -1.0..0.0, lat 0.0..1.0     area east: lon 0.0..1.0, lat 0.0..1.0
const CityYAML = `
jurisdiction: {id: testville, name: Testville, timezone: Europe/London}
areas:
  type: FeatureCollection
  features:
    - type: Feature
      id: west
      properties: {name: West}
      geometry: {type: Polygon, coordinates: [[[-1, 0], [0, 0], [0, 1], [-1, 1], [-1, 0]]]}
    - type: Feature
      id: east
      properties: {name: East}
      geometry: {type: Polygon, coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
departments:
  - {code: ROADS, name: Roads}
  - {code: PARKS, name: Parks}
  - {code: DESK, name: Triage desk}
triage_department: DESK
categories:
  - code: pothole
    name: Pothole
    group: Streets
    department: ROADS
    sla_hours: 48
    attributes:
      - {code: depth, datatype: singlevaluelist, required: true, description: "How deep?", values: [{key: shallow, name: Shallow}, {key: deep, name: Deep}]}
      - {code: width_cm, datatype: number, required: false, description: "How wide, in cm?"}
  - {code: tree, name: Fallen tree, group: Parks, department: PARKS, sla_hours: 24, after_photo: required}
  - {code: other, name: Something else, group: Other}
routing:
  - {category: pothole, area: east, department: PARKS}
staff:
  - {email: roads@test.example, name: Roads handler, role: handler, department: ROADS, password: roads-pass}
  - {email: parks@test.example, name: Parks handler, role: handler, department: PARKS, password: parks-pass}
  - {email: desk@test.example, name: Desk handler, role: handler, department: DESK, password: desk-pass}
  - {email: boss@test.example, name: Supervisor, role: supervisor, password: boss-pass}
  - {email: admin@test.example, name: Administrator, role: admin, password: admin-pass}
open311_api_keys: [{key: test-open311-key, name: Test client}]
`

// OtherCityYAML is a second city, far from the first, for tests that check that nothing
// crosses from one city to another. Its one area, around Arezzo in Tuscany, holds the
// position in PhotoJPEG's GPS tags (43.4674 N, 11.8851 E).
const OtherCityYAML = `
jurisdiction: {id: otherville, name: Otherville, timezone: Asia/Shanghai}
areas:
  type: FeatureCollection
  features:
    - type: Feature
      id: centre
      properties: {name: Centre}
      geometry: {type: Polygon, coordinates: [[[11, 43], [12, 43], [12, 44], [11, 44], [11, 43]]]}
departments:
  - {code: ROADS, name: Other roads}
triage_department: ROADS
categories:
  - {code: pothole, name: Pothole, group: Streets, department: ROADS, sla_hours: 72}
staff:
  - {email: roads@other.example, name: Other roads handler, role: handler, department: ROADS, password: other-roads}
  - {email: boss@other.example, name: Other supervisor, role: supervisor, password: other-boss}
  - {email: admin@other.example, name: Other administrator, role: admin, password: other-admin}
`

// Points of the test city.
const (
	WestLat, WestLon = 0.5, -0.5
	EastLat, EastLon = 0.5, 0.5
)

// City applies the test city to db and returns the parsed configuration.
func City(t testing.TB, db *models.DB) *models.CityConfig {
	t.Helper()
	return Apply(t, db, CityYAML)
}

// Apply applies a city configuration to db.
func Apply(t testing.TB, db *models.DB, yaml string) *models.CityConfig {
	t.Helper()
	cfg, err := models.ParseCityConfig([]byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplyCityConfig(context.Background(), cfg, time.Now()); err != nil {
		t.Fatal(err)
	}
	return cfg
}
