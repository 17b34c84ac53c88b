package api

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/internal/testenv"
)

// TestCaseActions drives a case through handler actions and the reporter's feedback, and
// refuses what the lifecycle or the roles do not allow.
func TestCaseActions(t *testing.T) {
	h := newHarness(t)
	citizen := h.citizen("device-actions")
	roads := h.staff("roads@test.example", "roads-pass")
	parks := h.staff("parks@test.example", "parks-pass")
	boss := h.staff("boss@test.example", "boss-pass")
	_, r, _ := h.submit(citizen, "actions", goodReport(photo(testenv.PhotoJPEG))...)
	h.route(r.ID)
	steps := []struct {
		name   string
		token  string
		body   any
		status int
		want   string // status after, or problem type
	}{
		{"citizen may not act as staff", citizen, ActionRequest{Action: "accept"}, 403, "wrong-role"},
		{"other department", parks, ActionRequest{Action: "accept"}, 403, "other-department"},
		{"unknown action", roads, ActionRequest{Action: "explode"}, 422, "unknown-action"},
		{"start before accept", roads, ActionRequest{Action: "start"}, 409, "action-not-allowed"},
		{"stale version", roads, ActionRequest{Action: "accept", Version: 1}, 409, "stale-version"},
		{"accept", roads, ActionRequest{Action: "accept", Version: 2}, 200, "accepted"},
		{"accept twice", roads, ActionRequest{Action: "accept"}, 409, "action-not-allowed"},
		{"comment needs a note", roads, ActionRequest{Action: "comment"}, 422, "note-required"},
		{"transfer to an unknown department", roads, ActionRequest{Action: "transfer", Department: "NOPE"}, 422, "unknown-department"},
		{"transfer to parks", roads, ActionRequest{Action: "transfer", Department: "PARKS", Note: "trees"}, 200, "dispatched"},
		{"roads no longer may", roads, ActionRequest{Action: "accept"}, 403, "other-department"},
		{"parks accepts", parks, ActionRequest{Action: "accept"}, 200, "accepted"},
		{"close without resolution", parks, ActionRequest{Action: "close"}, 422, "resolution-required"},
		{"resolve", parks, ActionRequest{Action: "resolve", Note: "cleared", Public: true}, 200, "resolved"},
		{"supervisor comments", boss, ActionRequest{Action: "comment", Note: "thanks", Public: true}, 200, "resolved"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			resp, body := h.json("POST", "/v1/cases/"+r.ID+"/actions", s.token, s.body)
			if resp.StatusCode != s.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, s.status, body)
			}
			var out struct{ Status, Type string }
			_ = json.Unmarshal(body, &out)
			if s.status == 200 && out.Status != s.want || s.status != 200 && out.Type != "urn:cityeyes:problem:"+s.want {
				t.Fatalf("got %s, want %s", body, s.want)
			}
		})
	}
	feedback := []struct {
		name   string
		token  string
		body   FeedbackRequest
		status int
	}{
		{"rating out of range", citizen, FeedbackRequest{Action: "confirm", Rating: 6}, 422},
		{"unknown action", citizen, FeedbackRequest{Action: "applaud"}, 422},
		{"another citizen", h.citizen("device-stranger"), FeedbackRequest{Action: "confirm"}, 404},
		{"reopen", citizen, FeedbackRequest{Action: "reopen", Comment: "still there"}, 200},
	}
	for _, f := range feedback {
		t.Run("feedback: "+f.name, func(t *testing.T) {
			resp, body := h.json("POST", "/v1/reports/"+r.ID+"/feedback", f.token, f.body)
			if resp.StatusCode != f.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, f.status, body)
			}
		})
	}
	var after Report
	_, body := h.do("GET", "/v1/reports/"+r.ID, citizen, nil, "")
	_ = json.Unmarshal(body, &after)
	if after.Status != "dispatched" || after.Department == nil || *after.Department != "PARKS" {
		t.Fatalf("reopened case: %s %v, want dispatched back to PARKS", after.Status, after.Department)
	}
	if resp, _ := h.json("POST", "/v1/reports/"+r.ID+"/feedback", citizen, FeedbackRequest{Action: "confirm"}); resp.StatusCode != 409 {
		t.Fatalf("confirm while dispatched: %d, want 409", resp.StatusCode)
	}
}

// TestQueue pages through a department's queue and checks who sees which cases.
func TestQueue(t *testing.T) {
	h := newHarness(t)
	citizen := h.citizen("device-queue")
	var west, east []string
	for i := range 5 {
		h.now = h.now.Add(time.Second) // the queue is oldest first
		_, r, _ := h.submit(citizen, fmt.Sprint("w", i), goodReport()...)
		h.route(r.ID)
		west = append(west, r.ID)
		_, r, _ = h.submit(citizen, fmt.Sprint("e", i), field("category", "pothole"), field("description", "x"),
			field("lat", "0.5"), field("lon", "0.5"), field("attr.depth", "shallow"))
		h.route(r.ID)
		east = append(east, r.ID)
	}
	list := func(token, query string) ([]string, string, int) {
		resp, body := h.do("GET", "/v1/queue"+query, token, nil, "")
		var p Page[Report]
		_ = json.Unmarshal(body, &p)
		var ids []string
		for _, r := range p.Items {
			ids = append(ids, r.ID)
		}
		return ids, p.NextCursor, resp.StatusCode
	}
	roads := h.staff("roads@test.example", "roads-pass")
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		ids, next, status := list(roads, "?limit=2&cursor="+cursor)
		if status != 200 || pages > 5 {
			t.Fatalf("page %d: %d", pages, status)
		}
		all = append(all, ids...)
		if next == "" {
			break
		}
		cursor = next
	}
	if fmt.Sprint(all) != fmt.Sprint(west) {
		t.Fatalf("ROADS queue paged %v, want the west cases oldest first %v", all, west)
	}
	parks := h.staff("parks@test.example", "parks-pass")
	if ids, _, _ := list(parks, "?sort=due"); fmt.Sprint(ids) != fmt.Sprint(east) {
		t.Fatalf("PARKS queue %v, want the east cases (routed there by rule) %v", ids, east)
	}
	if ids, _, _ := list(h.staff("boss@test.example", "boss-pass"), "?limit=100"); len(ids) != 10 {
		t.Fatalf("the supervisor sees %d cases, want the city's 10", len(ids))
	}
	if _, _, status := list(roads, "?status=lost"); status != 422 {
		t.Fatalf("bad status filter: %d", status)
	}
	if _, _, status := list(roads, "?cursor=bogus"); status != 422 {
		t.Fatalf("bad cursor: %d", status)
	}
	if _, _, status := list(citizen, ""); status != 403 {
		t.Fatalf("citizen reads the queue: %d", status)
	}
}

func TestHealth(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, body := h.do("GET", path, "", nil, ""); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	h.do("GET", "/v1/categories?lat=0.5&lon=0.5", "", nil, "")
	resp, body := h.do("GET", "/metrics", "", nil, "")
	if resp.StatusCode != 200 || !contains(string(body), `cityeyes_http_request_duration_seconds_count{method="GET",route="/v1/categories",status="200"} 1`) {
		t.Fatalf("metrics: %d\n%.2000s", resp.StatusCode, body)
	}
	resp, body = h.doUnchecked("GET", "/v1/nowhere", "", nil, "")
	if resp.StatusCode != 404 || !contains(string(body), "no-such-route") {
		t.Fatalf("unknown route: %d %s", resp.StatusCode, body)
	}
}

// TestQueueFilters: each filter of the work queue, and the tab counts, against a hand-made
// set of cases.
func TestQueueFilters(t *testing.T) {
	h := newHarness(t)
	citizen := h.citizen("device-filters")
	boss := h.staff("boss@test.example", "boss-pass")
	roads := h.staff("roads@test.example", "roads-pass")
	var ids []string
	submit := func(desc, lat, lon, category string, answers ...part) string {
		h.now = h.now.Add(time.Minute)
		_, r, _ := h.submit(citizen, desc, append([]part{field("category", category), field("description", desc),
			field("lat", lat), field("lon", lon)}, answers...)...)
		if r.ID == "" {
			t.Fatalf("submit %s failed", desc)
		}
		h.route(r.ID)
		ids = append(ids, r.ID)
		return r.ID
	}
	westHole := submit("hole by the bakery", "0.5", "-0.5", "pothole", field("attr.depth", "deep"))
	westHole2 := submit("another hole", "0.6", "-0.6", "pothole", field("attr.depth", "shallow"))
	eastHole := submit("hole in the east", "0.5", "0.5", "pothole", field("attr.depth", "deep")) // rule: to PARKS
	tree := submit("fallen tree", "0.5", "-0.5", "tree")
	// Roads accepts and assigns one hole to its handler, who then owns it.
	roadsUser, _ := h.db.StaffByEmail(h.t.Context(), "roads@test.example")
	h.json("POST", "/v1/cases/"+westHole+"/actions", roads, ActionRequest{Action: "accept"})
	h.json("POST", "/v1/cases/"+westHole+"/actions", roads, ActionRequest{Action: "assign", Assignee: &roadsUser.ID})
	// The tree is due in 24 h, the holes in 48 h: a day and a half later only the tree is overdue.
	later := h.now.Add(36 * time.Hour)

	list := func(token, query string) []string {
		t.Helper()
		resp, body := h.do("GET", "/v1/queue?"+query, token, nil, "")
		if resp.StatusCode != 200 {
			t.Fatalf("queue?%s: %d %s", query, resp.StatusCode, body)
		}
		var p Page[Report]
		_ = json.Unmarshal(body, &p)
		out := []string{}
		for _, r := range p.Items {
			out = append(out, r.ID)
		}
		return out
	}
	tests := []struct {
		name, token, query string
		now                time.Time
		want               []string
	}{
		{"supervisor, everything", boss, "", h.now, []string{westHole, westHole2, eastHole, tree}},
		{"category", boss, "category=tree", h.now, []string{tree}},
		{"area", boss, "area=east", h.now, []string{eastHole}},
		{"status", boss, "status=accepted", h.now, []string{westHole}},
		{"mine", roads, "mine=true", h.now, []string{westHole}},
		{"unassigned", roads, "unassigned=true", h.now, []string{westHole2}},
		{"text in description", boss, "q=BAKERY", h.now, []string{westHole}},
		{"text matches nothing", boss, "q=100%25", h.now, []string{}},
		{"overdue later", boss, "overdue=true", later, []string{tree}},
		{"overdue now", boss, "overdue=true", h.now, []string{}},
		{"soonest deadline first", boss, "sort=due", h.now, []string{tree, westHole, westHole2, eastHole}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := h.now
			h.now = tt.now
			defer func() { h.now = saved }()
			token := tt.token
			if tt.now != saved { // a day and a half later, the morning's token has expired
				token = h.staff("boss@test.example", "boss-pass")
			}
			if got := list(token, tt.query); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	h.now = later
	boss, roads = h.staff("boss@test.example", "boss-pass"), h.staff("roads@test.example", "roads-pass")
	resp, body := h.do("GET", "/v1/queue/counts", boss, nil, "")
	var counts QueueCounts
	_ = json.Unmarshal(body, &counts)
	if resp.StatusCode != 200 || counts.Statuses["dispatched"] != 3 || counts.Statuses["accepted"] != 1 || counts.Overdue != 1 || counts.Unassigned != 3 {
		t.Fatalf("counts: %d %s", resp.StatusCode, body)
	}
	_, body = h.do("GET", "/v1/queue/counts?category=pothole", roads, nil, "")
	_ = json.Unmarshal(body, &counts)
	if counts.Statuses["dispatched"] != 1 || counts.Statuses["accepted"] != 1 {
		t.Fatalf("roads' pothole counts: %s", body)
	}
	if resp, _ := h.do("GET", "/v1/queue?area=atlantis", boss, nil, ""); resp.StatusCode != 422 {
		t.Fatalf("unknown area: %d", resp.StatusCode)
	}
}

// TestDeferAndAfterPhoto: defer needs a reason and a date and pauses the deadline; a
// category that requires an "after" photo cannot be resolved without one, and the photo
// sent as multipart is kept with the case.
func TestDeferAndAfterPhoto(t *testing.T) {
	h := newHarness(t)
	citizen := h.citizen("device-defer")
	parks := h.staff("parks@test.example", "parks-pass")
	_, r, _ := h.submit(citizen, "tree-1", field("category", "tree"), field("description", "tree on the path"),
		field("lat", "0.5"), field("lon", "-0.5"))
	h.route(r.ID)
	until := h.now.Add(48 * time.Hour)
	if resp, body := h.json("POST", "/v1/cases/"+r.ID+"/actions", parks, ActionRequest{Action: "defer", Until: &until}); resp.StatusCode != 422 {
		t.Fatalf("defer without a reason: %d %s", resp.StatusCode, body)
	}
	resp, body := h.json("POST", "/v1/cases/"+r.ID+"/actions", parks, ActionRequest{Action: "defer", Until: &until, Note: "needs a crane", Public: true})
	var deferred Report
	_ = json.Unmarshal(body, &deferred)
	if resp.StatusCode != 200 || deferred.DueAt != nil {
		t.Fatalf("defer: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.json("POST", "/v1/cases/"+r.ID+"/actions", parks, ActionRequest{Action: "defer", Until: &until, Note: "again"}); resp.StatusCode != 409 {
		t.Fatalf("deferring a deferred case: %d, want 409", resp.StatusCode)
	}
	// The reporter sees the public reason in the timeline.
	_, body = h.do("GET", "/v1/reports/"+r.ID, citizen, nil, "")
	if !contains(string(body), "needs a crane") {
		t.Fatalf("the public deferral note is not in the reporter's view: %s", body)
	}

	// Trees need an after photo (the test city says so).
	h.json("POST", "/v1/cases/"+r.ID+"/actions", parks, ActionRequest{Action: "accept"})
	resp, body = h.json("POST", "/v1/cases/"+r.ID+"/actions", parks, ActionRequest{Action: "resolve"})
	if resp.StatusCode != 422 || !contains(string(body), "after-photo-required") {
		t.Fatalf("resolve without a photo: %d %s", resp.StatusCode, body)
	}
	mp, ctype := form(field("action", "resolve"), field("note", "cleared"), field("public", "true"), photo(testenv.PhotoJPEG))
	resp, body = h.do("POST", "/v1/cases/"+r.ID+"/actions", parks, mp, ctype)
	var resolved Report
	_ = json.Unmarshal(body, &resolved)
	if resp.StatusCode != 200 || resolved.Status != "resolved" || len(resolved.Photos) != 1 || resolved.Photos[0].Kind != "after" {
		t.Fatalf("resolve with a photo: %d %s", resp.StatusCode, body)
	}
	// A refused multipart action leaves no photo behind.
	mp, ctype = form(field("action", "accept"), photo(testenv.PhotoJPEG))
	if resp, _ := h.do("POST", "/v1/cases/"+r.ID+"/actions", parks, mp, ctype); resp.StatusCode != 422 {
		t.Fatalf("a photo with accept: %d, want 422", resp.StatusCode)
	}
	if objs := testenv.Objects(t, h.store, "cases/"+r.ID+"/"); len(objs) != 1 {
		t.Fatalf("objects of the case: %v, want only the after photo", objs)
	}
}

// TestBulkAction accepts several cases at once: each case succeeds or fails on its own.
func TestBulkAction(t *testing.T) {
	h := newHarness(t)
	citizen := h.citizen("device-bulk")
	roads := h.staff("roads@test.example", "roads-pass")
	var west []string
	for i := range 3 {
		_, r, _ := h.submit(citizen, fmt.Sprint("bulk", i), goodReport()...)
		h.route(r.ID)
		west = append(west, r.ID)
	}
	_, east, _ := h.submit(citizen, "bulk-east", field("category", "pothole"), field("lat", "0.5"), field("lon", "0.5"),
		field("description", "x"), field("attr.depth", "deep"))
	h.route(east.ID) // PARKS's
	h.json("POST", "/v1/cases/"+west[2]+"/actions", roads, ActionRequest{Action: "accept"})
	ids := append(append([]string{}, west...), east.ID, "00000000-0000-4000-8000-000000000000")
	resp, body := h.json("POST", "/v1/cases/actions", roads, BulkActionRequest{CaseIDs: ids, ActionRequest: ActionRequest{Action: "accept"}})
	var res BulkActionResult
	_ = json.Unmarshal(body, &res)
	if resp.StatusCode != 200 || len(res.Results) != 5 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	want := []int{200, 200, 409, 403, 404}
	for i, r := range res.Results {
		if r.ID != ids[i] || r.Status != want[i] || (r.Status == 200) != (r.CaseStatus == "accepted") || (r.Status != 200) != (r.Problem != nil) {
			t.Fatalf("result %d: %+v, want status %d", i, r, want[i])
		}
	}
	if resp, _ := h.json("POST", "/v1/cases/actions", roads, BulkActionRequest{ActionRequest: ActionRequest{Action: "accept"}}); resp.StatusCode != 422 {
		t.Fatalf("no case ids: %d", resp.StatusCode)
	}
}
