package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
)

// shortvilleYAML is a third city whose reporters have a day, not testville's default week
// (168 hours), to confirm or reopen a resolved case.
const shortvilleYAML = `
jurisdiction: {id: shortville, name: Shortville, timezone: UTC, confirm_window_hours: 24}
areas:
  type: FeatureCollection
  features:
    - type: Feature
      id: all
      properties: {name: All of it}
      geometry: {type: Polygon, coordinates: [[[20, 10], [21, 10], [21, 11], [20, 11], [20, 10]]]}
departments: [{code: WORKS, name: Works}, {code: DESK, name: Triage desk}]
triage_department: DESK
categories: [{code: pothole, name: Pothole, group: Streets, department: WORKS, sla_hours: 24}]
staff: [{email: works@short.example, name: Works handler, role: handler, department: WORKS, password: works-pass}]
`

// TestFeedbackWindowPerCity: the reporter's confirm or reopen is refused once the city's
// window since the resolution has passed, though the auto-close timer has not fired yet;
// each city counts its own window.
func TestFeedbackWindowPerCity(t *testing.T) {
	h := newHarness(t)
	testenv.Apply(t, h.db, shortvilleYAML)
	idx, err := h.db.LoadAreaIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h.cfgAreas(idx)
	base := h.now
	citizen := h.citizen("device-window")
	handlers := map[string]string{
		"testville":  h.staff("roads@test.example", "roads-pass"),
		"shortville": h.staff("works@short.example", "works-pass"),
	}
	places := map[string][]part{
		"testville":  goodReport(),
		"shortville": {field("category", "pothole"), field("description", "hole"), field("lat", "10.5"), field("lon", "20.5")},
	}
	// resolved files a report in city, has its handler resolve it at base, and returns it.
	n := 0
	resolved := func(t *testing.T, city string) Report {
		t.Helper()
		h.now = base
		n++
		resp, r, p := h.submit(citizen, "window-"+city+"-"+string(rune('a'+n)), places[city]...)
		if resp.StatusCode != 201 {
			t.Fatalf("submit in %s: %d %+v", city, resp.StatusCode, p)
		}
		h.route(r.ID)
		for _, a := range []string{"accept", "resolve"} {
			if resp, body := h.json("POST", "/v1/cases/"+r.ID+"/actions", handlers[city], ActionRequest{Action: a}); resp.StatusCode != 200 {
				t.Fatalf("%s in %s: %d %s", a, city, resp.StatusCode, body)
			}
		}
		return r
	}
	tests := []struct {
		name   string
		city   string
		after  time.Duration // since the resolution
		body   FeedbackRequest
		status int
		want   string // the case's status after, or the problem type
	}{
		{"testville: reopen in the last second of the week", "testville", 168*time.Hour - time.Second, FeedbackRequest{Action: "reopen", Comment: "still there"}, 200, "dispatched"},
		{"testville: reopen when the week is up", "testville", 168 * time.Hour, FeedbackRequest{Action: "reopen"}, 409, "feedback-window-closed"},
		{"testville: confirm when the week is up", "testville", 170 * time.Hour, FeedbackRequest{Action: "confirm", Rating: 5}, 409, "feedback-window-closed"},
		{"testville: confirm after a day", "testville", 25 * time.Hour, FeedbackRequest{Action: "confirm", Rating: 4}, 200, "closed"},
		{"testville: reopen after a day", "testville", 25 * time.Hour, FeedbackRequest{Action: "reopen"}, 200, "dispatched"},
		{"shortville: confirm within the day", "shortville", 23 * time.Hour, FeedbackRequest{Action: "confirm", Rating: 5}, 200, "closed"},
		{"shortville: reopen within the day", "shortville", time.Hour, FeedbackRequest{Action: "reopen"}, 200, "dispatched"},
		{"shortville: reopen when the day is up", "shortville", 24 * time.Hour, FeedbackRequest{Action: "reopen"}, 409, "feedback-window-closed"},
		{"shortville: confirm after a day", "shortville", 25 * time.Hour, FeedbackRequest{Action: "confirm"}, 409, "feedback-window-closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resolved(t, tt.city)
			h.now = base.Add(tt.after)
			resp, body := h.json("POST", "/v1/reports/"+r.ID+"/feedback", citizen, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			var out struct{ Status, Type, Detail string }
			_ = json.Unmarshal(body, &out)
			if tt.status == 200 {
				if out.Status != tt.want {
					t.Fatalf("status %q, want %q", out.Status, tt.want)
				}
				return
			}
			if out.Type != "urn:cityeyes:problem:"+tt.want {
				t.Fatalf("problem %s, want %s", body, tt.want)
			}
			// The detail says when the window closed, in the city's own length.
			c, err := h.db.Case(context.Background(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			j, _ := h.db.Jurisdiction(context.Background(), c.JurisdictionID)
			end := models.ConfirmWindowEnd(j, *c.ResolvedAt).Format(time.RFC3339)
			if !strings.Contains(out.Detail, end) {
				t.Fatalf("detail %q does not say the window closed at %s", out.Detail, end)
			}
			if c.Status != models.StatusResolved || c.Version != 4 {
				t.Fatalf("a refused feedback changed the case: %s v%d", c.Status, c.Version)
			}
		})
	}
}

// TestRatingRules: a rating is a whole number from 1 to 5, given once, with a confirm or on
// a closed case; a reopen takes none. The auto-close at the end of the window makes the
// case closed, and it may be rated then.
func TestRatingRules(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	base := h.now
	alice := h.citizen("device-rating")
	roads := h.staff("roads@test.example", "roads-pass")
	resolved := func(key string) string {
		h.now = base
		_, r, _ := h.submit(alice, key, goodReport()...)
		h.route(r.ID)
		for _, a := range []string{"accept", "resolve"} {
			if resp, body := h.json("POST", "/v1/cases/"+r.ID+"/actions", roads, ActionRequest{Action: a}); resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", a, resp.StatusCode, body)
			}
		}
		return r.ID
	}
	// One case closed by the timer after the window, one confirmed with a rating.
	timedOut := resolved("rating-timeout")
	var payload string
	// Ids and kinds are ours (a UUID, constants): written into the text, the query reads the
	// same on both databases' placeholder styles.
	if err := h.db.SQL().QueryRow("SELECT CAST(payload AS TEXT) FROM outbox WHERE task_type = '" + models.TaskTimer +
		"' AND CAST(payload AS TEXT) LIKE '%" + timedOut + "%' AND CAST(payload AS TEXT) LIKE '%" + models.TimerAutoClose + "%'").Scan(&payload); err != nil {
		t.Fatalf("the auto-close timer: %v", err)
	}
	var tp models.TimerPayload
	if err := json.Unmarshal([]byte(payload), &tp); err != nil {
		t.Fatal(err)
	}
	h.now = base.Add(169 * time.Hour)
	ch, err := h.db.TimerChange(ctx, tp, h.now)
	if err != nil || ch == nil {
		t.Fatalf("the auto-close timer did nothing: %v", err)
	}
	if _, _, err := h.db.Transition(ctx, *ch, h.now); err != nil {
		t.Fatalf("auto-close: %v", err)
	}
	confirmed := resolved("rating-confirm")
	h.now = base.Add(time.Hour)
	if resp, body := h.json("POST", "/v1/reports/"+confirmed+"/feedback", alice, FeedbackRequest{Action: "confirm", Rating: 3}); resp.StatusCode != 200 {
		t.Fatalf("confirm with a rating: %d %s", resp.StatusCode, body)
	}
	reopened := resolved("rating-reopen")

	tests := []struct {
		name   string
		caseID string
		body   FeedbackRequest
		status int
		want   string
	}{
		{"a reopen takes no rating", reopened, FeedbackRequest{Action: "reopen", Rating: 2}, 422, "rating-not-allowed"},
		{"rating 0 is no rating", timedOut, FeedbackRequest{Action: "rate"}, 422, "invalid-rating"},
		{"rating 6", timedOut, FeedbackRequest{Action: "rate", Rating: 6}, 422, "invalid-rating"},
		{"rating -1", timedOut, FeedbackRequest{Action: "rate", Rating: -1}, 422, "invalid-rating"},
		{"rating 5 after the auto-close, past the window", timedOut, FeedbackRequest{Action: "rate", Rating: 5}, 200, "closed"},
		{"rating twice", timedOut, FeedbackRequest{Action: "rate", Rating: 1}, 409, "already-rated"},
		{"rating after a confirm that rated", confirmed, FeedbackRequest{Action: "rate", Rating: 5}, 409, "already-rated"},
		{"rating a resolved case", reopened, FeedbackRequest{Action: "rate", Rating: 4}, 409, "action-not-allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.json("POST", "/v1/reports/"+tt.caseID+"/feedback", alice, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			var out struct{ Status, Type string }
			_ = json.Unmarshal(body, &out)
			if tt.status == 200 && out.Status != tt.want || tt.status != 200 && out.Type != "urn:cityeyes:problem:"+tt.want {
				t.Fatalf("got %s, want %s", body, tt.want)
			}
		})
	}
}
