package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
)

// TestRetentionConfig: a city's retention periods are read from its configuration, default
// when absent, and a period out of range is refused with a message naming it, leaving the
// city as it was.
func TestRetentionConfig(t *testing.T) {
	db := testenv.DB(t)
	testenv.City(t, db)
	j, err := db.Jurisdiction(ctx, "testville")
	if err != nil {
		t.Fatal(err)
	}
	if j.RetentionOriginalsDays != models.DefaultOriginalsDays || j.RetentionClosedDays != models.DefaultClosedPersonalDays {
		t.Fatalf("defaults: %d, %d", j.RetentionOriginalsDays, j.RetentionClosedDays)
	}
	testenv.Apply(t, db, testenv.CityYAML+"retention: {originals_days: 0, closed_personal_days: 3650}\n")
	if j, _ = db.Jurisdiction(ctx, "testville"); j.RetentionOriginalsDays != 0 || j.RetentionClosedDays != 3650 {
		t.Fatalf("configured: %d, %d", j.RetentionOriginalsDays, j.RetentionClosedDays)
	}
	testenv.Apply(t, db, testenv.CityYAML+"retention: {closed_personal_days: 30}\n")
	if j, _ = db.Jurisdiction(ctx, "testville"); j.RetentionOriginalsDays != models.DefaultOriginalsDays || j.RetentionClosedDays != 30 {
		t.Fatalf("one of two given: %d, %d", j.RetentionOriginalsDays, j.RetentionClosedDays)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"negative", "retention: {originals_days: -1}", "retention.originals_days -1 must be from 0 to 3650 days"},
		{"too long", "retention: {closed_personal_days: 3651}", "retention.closed_personal_days 3651 must be from 0 to 3650 days"},
		{"both", "retention: {originals_days: -5, closed_personal_days: 99999}", "retention.closed_personal_days 99999"},
		{"not a number", "retention: {originals_days: a year}", "originals_days"},
		{"unknown key", "retention: {photos_days: 30}", "photos_days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := models.ParseCityConfig([]byte(testenv.CityYAML+tc.yaml+"\n"), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
	if j, _ = db.Jurisdiction(ctx, "testville"); j.RetentionClosedDays != 30 {
		t.Fatalf("a refused configuration changed the city: %d", j.RetentionClosedDays)
	}
}

// TestAnonymiseClosedCasesInBatches: the work goes a batch at a time, oldest first, each
// batch its own transaction, until none is left, and cases closed within the period stay.
func TestAnonymiseClosedCasesInBatches(t *testing.T) {
	f := newFixture(t)
	start := time.Now().UTC().AddDate(0, 0, -10)
	boss := f.handlers["boss"]
	actor := models.Actor{ID: &boss.ID, Role: models.RoleSupervisor, JurisdictionID: "testville"}
	var ids []string
	for i := range 5 {
		at := start.Add(time.Duration(i) * time.Hour)
		c, err := f.db.CreateCase(ctx, models.NewCase{ID: models.NewID(), ReporterID: f.citizen.ID, JurisdictionID: "testville",
			CategoryID: f.pothole.ID, Description: "words", Lat: testenv.WestLat, Lon: testenv.WestLon}, at)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.db.Transition(ctx, models.Change{CaseID: c.ID, Action: models.ActionClose, Resolution: models.ResolutionInvalid, Actor: actor}, at); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	nothing := func(context.Context, string) error { return nil }
	cutoff := start.Add(3*time.Hour + time.Minute) // the first four closed before it
	var got []int
	for {
		n, err := f.db.AnonymiseClosedCases(ctx, "testville", cutoff, 3, nothing, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
		if n == 0 {
			break
		}
	}
	if len(got) != 3 || got[0] != 3 || got[1] != 1 {
		t.Fatalf("batches %v, want 3, 1, 0", got)
	}
	for i, id := range ids {
		c, _ := f.db.Case(ctx, id)
		if anonymised := c.AnonymisedAt != nil && c.Description == "" && c.ReporterID == models.TombstoneID; anonymised != (i < 4) {
			t.Fatalf("case %d closed %v: anonymised %v", i, c.ClosedAt, anonymised)
		}
	}
}
