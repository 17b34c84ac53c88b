package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
)

// privacyCityYAML is the test city with two questions on "other": a free-text one (the
// reporter's own words, removed when a case is anonymised) and a list (kept).
var privacyCityYAML = strings.Replace(testenv.CityYAML, "{code: other, name: Something else, group: Other}",
	`{code: other, name: Something else, group: Other, attributes: [
      {code: note, datatype: text, required: false, description: "Anything else?"},
      {code: size, datatype: singlevaluelist, required: false, description: "How big?", values: [{key: big, name: Big}, {key: small, name: Small}]}]}`, 1)

// privacyScene is a city where Alice has reported, supported, rated and been told of things,
// and Bob has reported too.
type privacyScene struct {
	h                    *harness
	alice, bob, roads    string // tokens
	aliceID              string
	open, closed, bobs   Report // Alice's open and closed reports, Bob's report (Alice supports it)
	openMedia, closedMed []models.Media
	upload               *models.Upload // a direct upload of Alice's, not in a report yet
}

func newPrivacyScene(t *testing.T) *privacyScene {
	t.Helper()
	h := newHarness(t)
	testenv.Apply(t, h.db, privacyCityYAML)
	ctx := context.Background()
	sc := &privacyScene{h: h}
	resp, body := h.json("POST", "/v1/auth/device", "", DeviceRequest{DeviceID: "device-alice-PRIVATE-1", Platform: "ios", PushToken: "tok-alice-PRIVATE-1", Locale: "en"})
	var d DeviceResponse
	if err := json.Unmarshal(body, &d); err != nil || resp.StatusCode != 200 {
		t.Fatalf("device: %d %s", resp.StatusCode, body)
	}
	sc.alice, sc.aliceID = d.Token, d.UserID
	if resp, body := h.json("PUT", "/v1/me/devices/device-alice-PRIVATE-2", sc.alice, DeviceRequest{Platform: "android", PushToken: "tok-alice-PRIVATE-2"}); resp.StatusCode != 200 {
		t.Fatalf("second device: %d %s", resp.StatusCode, body)
	}
	// Alice makes her identity an account with an email and a password.
	if resp, body := h.json("POST", "/v1/me/account", sc.alice, AccountRequest{Email: "alice-private@example.org", Password: "alice-PRIVATE-password"}); resp.StatusCode != 200 {
		t.Fatalf("account: %d %s", resp.StatusCode, body)
	}
	sc.bob = h.citizen("device-bob-0001")
	sc.roads = h.staff("roads@test.example", "roads-pass")
	boss := h.staff("boss@test.example", "boss-pass")

	_, sc.open, _ = h.submit(sc.alice, "alice-PRIVATE-key-1", field("category", "pothole"), field("description", "alice-OPEN-words"),
		field("address", "alice-OPEN-street"), field("lat", "0.5"), field("lon", "-0.5"), field("attr.depth", "deep"), photo(testenv.PhotoJPEG))
	h.route(sc.open.ID)
	_, sc.closed, _ = h.submit(sc.alice, "alice-PRIVATE-key-2", field("category", "other"), field("description", "alice-PRIVATE-closed-words"),
		field("address", "alice-PRIVATE-closed-street"), field("lat", "0.6"), field("lon", "-0.6"),
		field("attr.note", "alice-PRIVATE-answer"), field("attr.size", "big"), photo(testenv.PhotoJPEG))
	h.route(sc.closed.ID)
	_, sc.bobs, _ = h.submit(sc.bob, "bob-key-1", field("category", "pothole"), field("description", "bob-words"),
		field("lat", "0.7"), field("lon", "-0.7"), field("attr.depth", "shallow"))
	h.route(sc.bobs.ID)
	if resp, body := h.do("POST", "/v1/reports/"+sc.bobs.ID+"/support", sc.alice, nil, ""); resp.StatusCode != 200 {
		t.Fatalf("support: %d %s", resp.StatusCode, body)
	}
	if resp, body := h.json("POST", "/v1/cases/"+sc.closed.ID+"/actions", boss, ActionRequest{Action: "close", Resolution: "no_action"}); resp.StatusCode != 200 {
		t.Fatalf("close: %d %s", resp.StatusCode, body)
	}
	if resp, body := h.json("POST", "/v1/reports/"+sc.closed.ID+"/feedback", sc.alice, FeedbackRequest{Action: "rate", Rating: 4, Comment: "alice-PRIVATE-comment"}); resp.StatusCode != 200 {
		t.Fatalf("rate: %d %s", resp.StatusCode, body)
	}
	h.json("POST", "/v1/cases/"+sc.bobs.ID+"/actions", sc.roads, ActionRequest{Action: "accept"})
	// The notify task's work: inbox entries and pending pushes to each device.
	for _, id := range []string{sc.open.ID, sc.closed.ID, sc.bobs.ID} {
		evs, err := h.db.Timeline(ctx, id, true)
		if err != nil {
			t.Fatal(err)
		}
		for i := range evs {
			if _, err := h.db.RecordNotifications(ctx, &evs[i], true, h.now); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The photo task's work: stripped versions beside the originals.
	sc.openMedia = sc.processPhotos(t, sc.open.ID)
	sc.closedMed = sc.processPhotos(t, sc.closed.ID)
	// A photo uploaded directly, not named in a report yet.
	resp, body = h.json("POST", "/v1/uploads", sc.alice, UploadRequest{ContentType: "image/jpeg", Size: int64(len(testenv.PhotoJPEG))})
	var ticket UploadTicket
	if err := json.Unmarshal(body, &ticket); err != nil || resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	var err error
	if sc.upload, err = h.db.UploadByID(ctx, ticket.MediaID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Put(ctx, sc.upload.ObjectKey, bytes.NewReader(testenv.PhotoJPEG), int64(len(testenv.PhotoJPEG)), "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	return sc
}

// processPhotos does what the photo task does, with a small JPEG for each version.
func (sc *privacyScene) processPhotos(t *testing.T, caseID string) []models.Media {
	t.Helper()
	ctx := context.Background()
	ms, err := sc.h.db.CaseMedia(ctx, caseID)
	if err != nil || len(ms) == 0 {
		t.Fatalf("media of %s: %v %v", caseID, ms, err)
	}
	for _, m := range ms {
		display, thumb := strings.TrimSuffix(m.ObjectKey, ".jpg")+"-display.jpg", strings.TrimSuffix(m.ObjectKey, ".jpg")+"-thumb.jpg"
		for _, k := range []string{display, thumb} {
			if _, err := sc.h.store.Put(ctx, k, bytes.NewReader(testenv.PhotoJPEG[:2048]), 2048, "image/jpeg"); err != nil {
				t.Fatal(err)
			}
		}
		if err := sc.h.db.PhotoProcessed(ctx, m.ID, models.NewID(), &display, &thumb, "", sc.h.now); err != nil {
			t.Fatal(err)
		}
	}
	ms, _ = sc.h.db.CaseMedia(ctx, caseID)
	return ms
}

// export fetches a citizen's export and checks its headers.
func (sc *privacyScene) export(t *testing.T, token string) (PersonalExport, string) {
	t.Helper()
	resp, body := sc.h.do("GET", "/v1/me/export", token, nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("export: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("an export may be cached: Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	var e PersonalExport
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	return e, string(body)
}

// fetch gets a signed link: through the app for the local store, from MinIO otherwise.
func (sc *privacyScene) fetch(t *testing.T, link string) int {
	t.Helper()
	if _, local := sc.h.store.(*storage.Local); local {
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := sc.h.doUnchecked("GET", u.RequestURI(), "", nil, "")
		return resp.StatusCode
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestExportMe: a citizen's export holds everything personal about them (account, devices
// masked, reports in full with links to their originals, supports, feedback, inbox,
// idempotency keys) and nothing of anyone else.
func TestExportMe(t *testing.T) {
	sc := newPrivacyScene(t)
	e, raw := sc.export(t, sc.alice)
	if e.User.ID != sc.aliceID || e.User.Role != "citizen" || e.User.Email == nil || *e.User.Email != "alice-private@example.org" {
		t.Fatalf("user: %+v", e.User)
	}
	if len(e.Devices) != 2 {
		t.Fatalf("devices: %+v", e.Devices)
	}
	if e.Devices[0].Platform != "ios" { // both registered at the harness' one instant
		e.Devices[0], e.Devices[1] = e.Devices[1], e.Devices[0]
	}
	if e.Devices[0].Platform != "ios" || e.Devices[1].Platform != "android" || !e.Devices[0].Push || !e.Devices[1].Push {
		t.Fatalf("devices: %+v", e.Devices)
	}
	for _, secret := range []string{"device-alice-PRIVATE-1", "tok-alice-PRIVATE-1", "tok-alice-PRIVATE-2"} {
		if strings.Contains(raw, secret) {
			t.Fatalf("the export shows %q unmasked: %s", secret, raw)
		}
	}
	if e.Devices[0].DeviceID != "…TE-1" || e.Devices[0].PushToken == nil || *e.Devices[0].PushToken != "…TE-1" {
		t.Fatalf("masked device: %+v", e.Devices[0])
	}
	if len(e.Reports) != 2 {
		t.Fatalf("reports: %+v", e.Reports)
	}
	if e.Reports[0].ID != sc.closed.ID { // both filed at the harness' one instant
		e.Reports[0], e.Reports[1] = e.Reports[1], e.Reports[0]
	}
	if e.Reports[0].ID != sc.closed.ID || e.Reports[1].ID != sc.open.ID {
		t.Fatalf("reports: %+v", e.Reports)
	}
	if e.Reports[0].Attributes["note"] != "alice-PRIVATE-answer" || e.Reports[0].Description != "alice-PRIVATE-closed-words" || len(e.Reports[0].Timeline) == 0 {
		t.Fatalf("the closed report in full: %+v", e.Reports[0])
	}
	for _, r := range e.Reports {
		if len(r.Photos) != 1 || r.Photos[0].OriginalURL == nil || r.Photos[0].URL == nil {
			t.Fatalf("photos of %s: %+v", r.Number, r.Photos)
		}
		if st := sc.fetch(t, *r.Photos[0].OriginalURL); st != 200 {
			t.Fatalf("the original's link: %d", st)
		}
	}
	if len(e.Supports) != 1 || e.Supports[0].ReportID != sc.bobs.ID || e.Supports[0].Number != sc.bobs.Number {
		t.Fatalf("supports: %+v", e.Supports)
	}
	if len(e.Feedback) != 1 || e.Feedback[0].Action != "rate" || e.Feedback[0].Rating == nil || *e.Feedback[0].Rating != 4 ||
		e.Feedback[0].Comment != "alice-PRIVATE-comment" || e.Feedback[0].Number != sc.closed.Number {
		t.Fatalf("feedback: %+v", e.Feedback)
	}
	told := map[string]bool{}
	for _, n := range e.Notifications {
		told[n.ReportID] = true
	}
	if !told[sc.open.ID] || !told[sc.closed.ID] || !told[sc.bobs.ID] {
		t.Fatalf("inbox: %+v", e.Notifications)
	}
	if len(e.IdempotencyKeys) != 2 || !strings.Contains(raw, `"key":"alice-PRIVATE-key-1"`) || !strings.Contains(raw, `"key":"alice-PRIVATE-key-2"`) {
		t.Fatalf("idempotency keys: %+v", e.IdempotencyKeys)
	}
	if len(e.Uploads) != 1 || e.Uploads[0].ID != sc.upload.ID || sc.fetch(t, e.Uploads[0].URL) != 200 {
		t.Fatalf("uploads: %+v", e.Uploads)
	}
	if strings.Contains(raw, "bob-words") || strings.Contains(raw, "device-bob") || strings.Contains(raw, "password") {
		t.Fatalf("Alice's export shows Bob's data: %s", raw)
	}
	// Bob's export: his report, nothing of Alice's (her support counts, her name does not).
	b, raw := sc.export(t, sc.bob)
	if len(b.Reports) != 1 || b.Reports[0].ID != sc.bobs.ID || b.Reports[0].Supporters != 1 {
		t.Fatalf("Bob's reports: %+v", b.Reports)
	}
	if strings.Contains(raw, "alice") || strings.Contains(raw, sc.aliceID) {
		t.Fatalf("Bob's export shows Alice's data: %s", raw)
	}
}

// TestDeleteMe: after a citizen deletes their data, nothing personal of theirs is left in
// any table or in the object store; their reports stay, anonymised (an open one keeps what
// the city needs to fix the problem), the counts stay right, and their token stops working.
func TestDeleteMe(t *testing.T) {
	sc := newPrivacyScene(t)
	h, ctx := sc.h, context.Background()

	// Without the confirmation nothing happens.
	for _, q := range []string{"", "?confirm=yes", "?confirm=DELETE"} {
		resp, body := h.do("DELETE", "/v1/me"+q, sc.alice, nil, "")
		if resp.StatusCode != 422 || !strings.Contains(string(body), "confirmation-required") {
			t.Fatalf("DELETE /v1/me%s: %d %s", q, resp.StatusCode, body)
		}
	}
	if e, _ := sc.export(t, sc.alice); len(e.Reports) != 2 || len(e.Devices) != 2 {
		t.Fatalf("an unconfirmed deletion deleted something: %+v", e)
	}

	// The walk below finds the markers where they are before the deletion.
	markers := []string{"device-alice", "tok-alice", "alice-PRIVATE", "alice-private@", sc.aliceID}
	keepID := func(table, col string) bool { return table == "users" && col == "id" }
	found := map[string]bool{}
	for _, hit := range testenv.PersonalLeft(t, h.db.SQL(), markers, keepID) {
		found[strings.SplitN(hit, ":", 2)[0]] = true
	}
	for _, where := range []string{"devices.device_id", "devices.push_token", "cases.description", "cases.address", "cases.attributes",
		"cases.reporter_id", "case_events.actor_id", "case_events.note", "media.owner_id", "idempotency_keys.key",
		"notifications.user_id", "supporters.user_id", "users.email", "uploads.owner_id"} {
		if !found[where] {
			t.Fatalf("the walk does not find Alice's data in %s before the deletion: %v", where, found)
		}
	}

	if resp, body := h.do("DELETE", "/v1/me?confirm=delete", sc.alice, nil, ""); resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	// The token no longer works; a confirmed retry (the first answer lost) is the same 204.
	for _, path := range []string{"/v1/me/export", "/v1/me/reports", "/v1/me/notifications"} {
		resp, body := h.do("GET", path, sc.alice, nil, "")
		if resp.StatusCode != 401 || !strings.Contains(string(body), "account-deleted") {
			t.Fatalf("GET %s after deletion: %d %s", path, resp.StatusCode, body)
		}
	}
	if resp, body := h.do("DELETE", "/v1/me?confirm=delete", sc.alice, nil, ""); resp.StatusCode != 204 {
		t.Fatalf("deleting again: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.do("DELETE", "/v1/me", sc.alice, nil, ""); resp.StatusCode != 401 {
		t.Fatalf("an unconfirmed DELETE with a deleted account's token: %d, want 401", resp.StatusCode)
	}

	// Nothing personal of Alice's is left anywhere in the database, but her erased account's
	// own id (it keeps her old tokens from working).
	if left := testenv.PersonalLeft(t, h.db.SQL(), markers, keepID); len(left) > 0 {
		t.Fatalf("personal data left after deletion:\n%s", strings.Join(left, "\n"))
	}
	// Neither her password nor her email signs anyone in any more.
	if resp, _ := h.json("POST", "/v1/auth/account", "", AccountSignInRequest{Email: "alice-private@example.org", Password: "alice-PRIVATE-password",
		DeviceID: "device-thief-0001", Platform: "ios"}); resp.StatusCode != 401 {
		t.Fatalf("signing in to the deleted account: %d, want 401", resp.StatusCode)
	}
	var hash string
	if err := h.db.SQL().QueryRow("SELECT password_hash FROM users WHERE id = $1", sc.aliceID).Scan(&hash); err != nil || hash != "" {
		t.Fatalf("the password hash is kept: %q %v", hash, err)
	}
	// The originals and the direct upload are gone from the object store; the stripped
	// versions stay.
	if _, err := h.store.Stat(ctx, sc.upload.ObjectKey); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the direct upload is still in the %s store: %v", testenv.Name(), err)
	}
	for _, m := range append(sc.openMedia, sc.closedMed...) {
		if _, err := h.store.Stat(ctx, m.ObjectKey); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("the original %s is still in the %s store: %v", m.ObjectKey, testenv.Name(), err)
		}
		for _, k := range []string{*m.DisplayKey, *m.ThumbKey} {
			if _, err := h.store.Stat(ctx, k); err != nil {
				t.Fatalf("the version %s went too: %v", k, err)
			}
		}
	}

	// The reports stay for the city. The open one keeps what is needed to fix the problem.
	var open, closed Report
	_, body := h.do("GET", "/v1/cases/"+sc.open.ID, sc.roads, nil, "")
	_ = json.Unmarshal(body, &open)
	if open.Description != "alice-OPEN-words" || open.Address != "alice-OPEN-street" || open.Attributes["depth"] != "deep" ||
		len(open.Photos) != 1 || open.Photos[0].URL == nil || open.Photos[0].OriginalURL != nil {
		t.Fatalf("the open report after its reporter's deletion: %s", body)
	}
	_, body = h.do("GET", "/v1/cases/"+sc.closed.ID, h.staff("boss@test.example", "boss-pass"), nil, "")
	_ = json.Unmarshal(body, &closed)
	if closed.Status != "closed" || closed.Description != "" || closed.Address != "" || closed.Attributes["size"] != "big" ||
		closed.Attributes["note"] != nil || len(closed.Photos) != 1 || closed.Photos[0].URL == nil {
		t.Fatalf("the closed report after its reporter's deletion: %s", body)
	}
	// What the API shows of her reports, to staff, to the public and to Open311 clients,
	// names nothing of hers either.
	for _, path := range []string{"/v1/cases/" + sc.open.ID, "/v1/cases/" + sc.closed.ID, "/v1/reports/" + sc.closed.ID,
		"/open311/v2/requests.json?jurisdiction_id=testville", "/open311/v2/servicerequestupdates.json?jurisdiction_id=testville"} {
		token := sc.roads
		if !strings.HasPrefix(path, "/v1/cases/") {
			token = sc.bob
		}
		if path == "/v1/cases/"+sc.closed.ID {
			token = h.staff("boss@test.example", "boss-pass")
		}
		resp, body := h.do("GET", path, token, nil, "")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		for _, m := range markers {
			if strings.Contains(strings.ToLower(string(body)), strings.ToLower(m)) {
				t.Fatalf("%s still shows %q: %s", path, m, body)
			}
		}
		if strings.HasPrefix(path, "/v1/reports/") {
			walkPublic(t, path, body)
		}
		if strings.Contains(path, "requests.json") && !strings.Contains(string(body), sc.closed.ID) {
			t.Fatalf("%s does not list the anonymised case at all: %s", path, body)
		}
	}
	// Bob's report still counts Alice's "me too"; Bob's own data is untouched.
	b, _ := sc.export(t, sc.bob)
	if len(b.Reports) != 1 || b.Reports[0].Supporters != 1 || len(b.Devices) != 1 {
		t.Fatalf("Bob after Alice's deletion: %+v", b)
	}
	// The work goes on without telling anyone of the open report: no inbox for the tombstone.
	if resp, body := h.json("POST", "/v1/cases/"+sc.open.ID+"/actions", sc.roads, ActionRequest{Action: "accept"}); resp.StatusCode != 200 {
		t.Fatalf("accept after deletion: %d %s", resp.StatusCode, body)
	}
	evs, _ := h.db.Timeline(ctx, sc.open.ID, true)
	if _, err := h.db.RecordNotifications(ctx, &evs[len(evs)-1], true, h.now); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := h.db.SQL().QueryRow("SELECT COUNT(*) FROM notifications WHERE user_id = $1", models.TombstoneID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("inbox entries for the tombstone: %d %v", n, err)
	}
	// The same phone registering again starts a new, empty account.
	resp, body := h.json("POST", "/v1/auth/device", "", DeviceRequest{DeviceID: "device-alice-PRIVATE-1", Platform: "ios"})
	var d DeviceResponse
	_ = json.Unmarshal(body, &d)
	if resp.StatusCode != 200 || d.UserID == sc.aliceID {
		t.Fatalf("registering again: %d %s", resp.StatusCode, body)
	}
	if e, _ := sc.export(t, d.Token); len(e.Reports) != 0 || len(e.Supports) != 0 || len(e.Notifications) != 0 {
		t.Fatalf("the new account inherited the old one's data: %+v", e)
	}
}
