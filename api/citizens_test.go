package api

import (
	"strings"

	"context"
	"encoding/json"
	"fmt"
	"github.com/city-eyes/cityeyes/internal/testenv"
	"testing"
	"time"
)

// TestNearbyAndSupport: a citizen about to report sees the open reports around them,
// nearest first and in their public view, says "me too" once, and from then on hears of the
// report's public changes.
func TestNearbyAndSupport(t *testing.T) {
	h := newHarness(t)
	alice, bob := h.citizen("device-alice"), h.citizen("device-bob")
	// Three reports at 0, about 111 m and about 1.1 km north of (0.5, -0.5).
	var ids []string
	for i, lat := range []string{"0.5", "0.501", "0.51"} {
		h.now = h.now.Add(time.Second)
		_, r, _ := h.submit(alice, fmt.Sprint("near", i), field("category", "pothole"), field("description", "hole"),
			field("lat", lat), field("lon", "-0.5"), field("attr.depth", "deep"))
		h.route(r.ID)
		ids = append(ids, r.ID)
	}
	near := func(query string) []string {
		t.Helper()
		resp, body := h.do("GET", "/v1/reports/nearby?"+query, bob, nil, "")
		if resp.StatusCode != 200 {
			t.Fatalf("nearby?%s: %d %s", query, resp.StatusCode, body)
		}
		var l NearbyList
		_ = json.Unmarshal(body, &l)
		out := []string{}
		for _, it := range l.Items {
			if it.Report.Attributes != nil {
				t.Fatalf("nearby shows the reporter's answers: %s", body)
			}
			out = append(out, it.Report.ID)
		}
		return out
	}
	if got := near("lat=0.5002&lon=-0.5&radius=500"); fmt.Sprint(got) != fmt.Sprint(ids[:2]) {
		t.Fatalf("within 500 m: %v, want the two nearest, nearest first %v", got, ids[:2])
	}
	if got := near("lat=0.5099&lon=-0.5&radius=2000"); fmt.Sprint(got) != fmt.Sprint([]string{ids[2], ids[1], ids[0]}) {
		t.Fatalf("within 2 km of the northern one: %v", got)
	}
	for _, q := range []string{"lat=0.5&lon=-0.5&radius=0", "lat=0.5&lon=-0.5&radius=5000", "lat=0.5&lon=-0.5&radius=far", "lat=95&lon=0"} {
		if resp, _ := h.do("GET", "/v1/reports/nearby?"+q, bob, nil, ""); resp.StatusCode != 422 {
			t.Errorf("nearby?%s: %d, want 422", q, resp.StatusCode)
		}
	}

	support := func(token, id string) (int, SupportResult) {
		resp, body := h.do("POST", "/v1/reports/"+id+"/support", token, nil, "")
		var r SupportResult
		_ = json.Unmarshal(body, &r)
		return resp.StatusCode, r
	}
	if st, r := support(bob, ids[0]); st != 200 || !r.Counted || r.Report.Supporters != 1 {
		t.Fatalf("first support: %d %+v", st, r)
	}
	if st, r := support(bob, ids[0]); st != 200 || r.Counted || r.Report.Supporters != 1 {
		t.Fatalf("second support counted again: %d %+v", st, r)
	}
	if st, _ := support(alice, ids[0]); st != 409 {
		t.Fatalf("supporting one's own report: %d, want 409", st)
	}
	// Bob now follows the report: its next public change reaches his inbox.
	roads := h.staff("roads@test.example", "roads-pass")
	h.json("POST", "/v1/cases/"+ids[0]+"/actions", roads, ActionRequest{Action: "accept"})
	ev, _ := h.db.Timeline(context.Background(), ids[0], true)
	if _, err := h.db.RecordNotifications(context.Background(), &ev[len(ev)-1], false, h.now); err != nil {
		t.Fatal(err)
	}
	resp, body := h.do("GET", "/v1/me/notifications", bob, nil, "")
	var inbox InboxPage
	_ = json.Unmarshal(body, &inbox)
	if resp.StatusCode != 200 || len(inbox.Items) != 1 || inbox.Items[0].Status != "accepted" || inbox.Unread != 1 {
		t.Fatalf("the supporter's inbox: %s", body)
	}
	// Closed: no more support; it drops out of nearby.
	h.json("POST", "/v1/cases/"+ids[0]+"/actions", roads, ActionRequest{Action: "close", Resolution: "no_action"})
	if st, _ := support(bob, ids[0]); st != 409 {
		t.Fatalf("supporting a closed report: %d, want 409", st)
	}
	if got := near("lat=0.5&lon=-0.5&radius=50"); len(got) != 0 {
		t.Fatalf("a closed report is nearby: %v", got)
	}

	// Marking read.
	resp, body = h.json("POST", "/v1/me/notifications/read", bob, MarkReadRequest{})
	var mr MarkReadResult
	_ = json.Unmarshal(body, &mr)
	if resp.StatusCode != 200 || mr.Unread != 0 || mr.Marked < 1 {
		t.Fatalf("mark all read: %d %s", resp.StatusCode, body)
	}
	_, body = h.do("GET", "/v1/me/notifications", bob, nil, "")
	_ = json.Unmarshal(body, &inbox)
	if inbox.Unread != 0 || !inbox.Items[0].Read {
		t.Fatalf("after marking read: %s", body)
	}
}

// TestDuplicatesAndPublicView: a second report of the same problem learns of the first
// (at submit and through the check call); a sensitive category's reports show only an
// approximate place to others; no public answer carries anything of the reporter.
func TestDuplicatesAndPublicView(t *testing.T) {
	h := newHarness(t)
	testenv.Apply(t, h.db, strings.Replace(testenv.CityYAML, "{code: other, name: Something else, group: Other}",
		"{code: other, name: Something else, group: Other, sensitive: true}", 1))
	alice, bob := h.citizen("device-dup-alice"), h.citizen("device-dup-bob")
	_, first, _ := h.submit(alice, "dup-1", field("category", "pothole"), field("description", "hole"),
		field("lat", "0.5"), field("lon", "-0.5"), field("attr.depth", "deep"), field("address", "1 High Street"))
	resp, body := h.do("GET", "/v1/reports/check?category=pothole&lat=0.5002&lon=-0.5", bob, nil, "")
	var check DuplicateCheck
	_ = json.Unmarshal(body, &check)
	if resp.StatusCode != 200 || len(check.Duplicates) != 1 || check.Duplicates[0].ID != first.ID {
		t.Fatalf("check 22 m away: %d %s", resp.StatusCode, body)
	}
	_, body = h.do("GET", "/v1/reports/check?category=tree&lat=0.5002&lon=-0.5", bob, nil, "")
	if !strings.Contains(string(body), `"duplicates":[]`) {
		t.Fatalf("another category is no duplicate: %s", body)
	}
	_, second, _ := h.submit(bob, "dup-2", field("category", "pothole"), field("description", "same hole"),
		field("lat", "0.5001"), field("lon", "-0.5"), field("attr.depth", "deep"))
	if len(second.LikelyDuplicates) != 1 || second.LikelyDuplicates[0].ID != first.ID {
		t.Fatalf("the new report's likely duplicates: %+v", second.LikelyDuplicates)
	}

	_, secret, _ := h.submit(alice, "sensitive-1", field("category", "other"), field("description", "needles in the park"),
		field("lat", "0.123456"), field("lon", "-0.654321"), field("address", "behind the school"))
	h.route(secret.ID)
	public := []string{"/v1/reports/" + secret.ID, "/v1/reports/" + first.ID, "/v1/reports/nearby?lat=0.5&lon=-0.5&radius=2000",
		"/v1/reports/nearby?lat=0.12&lon=-0.65&radius=2000"}
	for _, path := range public {
		resp, body := h.do("GET", path, bob, nil, "")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		walkPublic(t, path, body)
		if strings.Contains(string(body), "0.123456") || strings.Contains(string(body), "behind the school") {
			t.Fatalf("%s shows the sensitive report's exact place: %s", path, body)
		}
	}
	_, body = h.do("GET", "/v1/reports/"+secret.ID, alice, nil, "")
	if !strings.Contains(string(body), "0.123456") {
		t.Fatalf("the reporter does not see their own exact place: %s", body)
	}
}

// walkPublic fails on any key in a public answer that would say who reported: ids of users,
// names, contacts, devices, or the reporter's answers.
func walkPublic(t *testing.T, where string, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	personal := map[string]bool{"reporter": true, "reporter_id": true, "user_id": true, "email": true, "phone": true,
		"name": true, "first_name": true, "last_name": true, "device": true, "device_id": true, "push_token": true,
		"attributes": true, "original_url": true, "actor_id": true}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if personal[k] {
					t.Errorf("%s: public answer has %s.%s", where, path, k)
				}
				walk(path+"."+k, x)
			}
		case []any:
			for _, x := range v {
				walk(path+"[]", x)
			}
		}
	}
	walk("", v)
}

// TestRateAfterClosing: the reporter rates a closed case once, from 1 to 5.
func TestRateAfterClosing(t *testing.T) {
	h := newHarness(t)
	alice := h.citizen("device-rate")
	_, r, _ := h.submit(alice, "rate-1", goodReport()...)
	h.route(r.ID)
	if resp, _ := h.json("POST", "/v1/reports/"+r.ID+"/feedback", alice, FeedbackRequest{Action: "rate", Rating: 4}); resp.StatusCode != 409 {
		t.Fatalf("rating an open case: %d, want 409", resp.StatusCode)
	}
	h.json("POST", "/v1/cases/"+r.ID+"/actions", h.staff("roads@test.example", "roads-pass"), ActionRequest{Action: "close", Resolution: "no_action"})
	if resp, _ := h.json("POST", "/v1/reports/"+r.ID+"/feedback", alice, FeedbackRequest{Action: "rate"}); resp.StatusCode != 422 {
		t.Fatalf("a rate without a rating: %d, want 422", resp.StatusCode)
	}
	if resp, body := h.json("POST", "/v1/reports/"+r.ID+"/feedback", alice, FeedbackRequest{Action: "rate", Rating: 2, Comment: "took long"}); resp.StatusCode != 200 {
		t.Fatalf("rate: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.json("POST", "/v1/reports/"+r.ID+"/feedback", alice, FeedbackRequest{Action: "rate", Rating: 5}); resp.StatusCode != 409 {
		t.Fatalf("rating twice: %d, want 409", resp.StatusCode)
	}
}
