package models_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/models"
)

// TestNearbyOnABusySpot: a spot with many open reports of other categories does not hide a
// likely duplicate a little further away, and Nearby gives the nearest first, at most the
// limit asked for.
func TestNearbyOnABusySpot(t *testing.T) {
	f := newFixture(t)
	other, err := f.db.CategoryByCode(ctx, "testville", "other")
	if err != nil {
		t.Fatal(err)
	}
	const lat, lon = 0.5, -0.5
	loc, _ := f.areas.Locate(lat, lon)
	for range 120 {
		if _, err := f.db.CreateCase(ctx, models.NewCase{ID: models.NewID(), ReporterID: f.citizen.ID, JurisdictionID: "testville",
			CategoryID: other.ID, AreaID: loc.AreaID, Description: "busy", Lat: lat, Lon: lon}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// 10 m and 30 m north of the spot; pothole's duplicate radius is the default 50 m.
	near := f.newCase(t, lat+10/111_195.0, lon, "near")
	far := f.newCase(t, lat+30/111_195.0, lon, "far")
	tests := []struct {
		name  string
		limit int
		want  []string // ids in order, "" for any case of the busy spot
	}{
		{"the nearest three are at the spot", 3, []string{"", "", ""}},
		{"past the spot, the nearer pothole, then the farther", 122, append(make([]string, 120), near.ID, far.ID)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := f.db.Nearby(ctx, lat, lon, 100, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != len(tt.want) {
				t.Fatalf("%d cases, want %d", len(cs), len(tt.want))
			}
			for i, id := range tt.want {
				if id != "" && cs[i].ID != id || id == "" && cs[i].CategoryID != other.ID {
					t.Fatalf("case %d is %s (%s)", i, cs[i].ID, cs[i].Description)
				}
			}
		})
	}
	dups, err := f.db.LikelyDuplicates(ctx, f.pothole, lat, lon, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(len(dups))
	if len(dups) == 2 {
		got = dups[0].ID + " " + dups[1].ID
	}
	if want := near.ID + " " + far.ID; got != want {
		t.Fatalf("likely duplicates %s, want %s: 120 reports of another category hid them", got, want)
	}
}
