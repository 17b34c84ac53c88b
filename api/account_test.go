package api

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/city-eyes/cityeyes/internal/testenv"
)

// deviceUser registers a device anonymously and returns its token and user id.
func (h *harness) deviceUser(deviceID string) (string, string) {
	h.t.Helper()
	resp, body := h.json("POST", "/v1/auth/device", "", DeviceRequest{DeviceID: deviceID, Platform: "android", PushToken: "tok-" + deviceID})
	if resp.StatusCode != 200 {
		h.t.Fatalf("device: %d %s", resp.StatusCode, body)
	}
	var d DeviceResponse
	_ = json.Unmarshal(body, &d)
	return d.Token, d.UserID
}

// myReports lists the ids of the caller's reports.
func (h *harness) myReports(token string) []string {
	h.t.Helper()
	resp, body := h.do("GET", "/v1/me/reports", token, nil, "")
	if resp.StatusCode != 200 {
		h.t.Fatalf("my reports: %d %s", resp.StatusCode, body)
	}
	var p Page[Report]
	_ = json.Unmarshal(body, &p)
	ids := []string{}
	for _, r := range p.Items {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return ids
}

// signIn signs a device in to an account and decodes the answer.
func (h *harness) signIn(email, password, deviceID string) (int, AccountSignInResponse, Problem) {
	h.t.Helper()
	resp, body := h.json("POST", "/v1/auth/account", "", AccountSignInRequest{Email: email, Password: password, DeviceID: deviceID, Platform: "ios", PushToken: "tok-" + deviceID})
	var out AccountSignInResponse
	var p Problem
	if resp.StatusCode == 200 {
		_ = json.Unmarshal(body, &out)
	} else {
		_ = json.Unmarshal(body, &p)
	}
	return resp.StatusCode, out, p
}

// TestMakeAccount: a citizen's identity becomes an account with a unique email and a
// password of 10 characters or more; changing them later needs the current password.
func TestMakeAccount(t *testing.T) {
	h := newHarness(t)
	alice, bob := h.citizen("device-make-a"), h.citizen("device-make-b")
	steps := []struct {
		name   string
		token  string
		body   AccountRequest
		status int
		want   string // the email stored, or the problem type
	}{
		{"not an email", alice, AccountRequest{Email: "ana at example", Password: "long-enough-1"}, 422, "invalid-email"},
		{"no domain", alice, AccountRequest{Email: "ana@localhost", Password: "long-enough-1"}, 422, "invalid-email"},
		{"nine characters", alice, AccountRequest{Email: "ana@example.org", Password: "123456789"}, 422, "weak-password"},
		{"over 72 bytes", alice, AccountRequest{Email: "ana@example.org", Password: strings.Repeat("é", 37)}, 422, "password-too-long"},
		{"a member of staff's email", alice, AccountRequest{Email: "roads@test.example", Password: "long-enough-1"}, 409, "email-taken"},
		{"alice makes an account", alice, AccountRequest{Email: " Ana@Example.ORG ", Password: "long-enough-1"}, 200, "ana@example.org"},
		{"bob wants the same email", bob, AccountRequest{Email: "ana@example.org", Password: "long-enough-2"}, 409, "email-taken"},
		{"a change without the current password", alice, AccountRequest{Email: "ana@example.org", Password: "taken-over-99"}, 403, "wrong-current-password"},
		{"a change with a wrong current password", alice, AccountRequest{Email: "ana@example.org", Password: "taken-over-99", CurrentPassword: "long-enough-2"}, 403, "wrong-current-password"},
		{"a change with the current password", alice, AccountRequest{Email: "ana.b@example.org", Password: "long-enough-3", CurrentPassword: "long-enough-1"}, 200, "ana.b@example.org"},
		{"bob may have the old email now", bob, AccountRequest{Email: "ana@example.org", Password: "long-enough-2"}, 200, "ana@example.org"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			resp, body := h.json("POST", "/v1/me/account", s.token, s.body)
			if resp.StatusCode != s.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, s.status, body)
			}
			var out struct{ Email, Type string }
			_ = json.Unmarshal(body, &out)
			if s.status == 200 && out.Email != s.want || s.status != 200 && out.Type != "urn:cityeyes:problem:"+s.want {
				t.Fatalf("got %s, want %s", body, s.want)
			}
		})
	}
	// Only the last password signs in.
	for _, tt := range []struct {
		password string
		status   int
	}{{"long-enough-1", 401}, {"taken-over-99", 401}, {"long-enough-3", 200}} {
		if status, _, p := h.signIn("ana.b@example.org", tt.password, "device-make-c"); status != tt.status {
			t.Errorf("sign in with %q: %d, want %d (%+v)", tt.password, status, tt.status, p)
		}
	}
}

// TestAccountSignIn: on a new phone, the account's sign-in gives a token for the same user,
// whose earlier reports show there, and whose pushes go to both phones. A wrong password
// and an unknown email get the same answer.
func TestAccountSignIn(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	alice, aliceID := h.deviceUser("device-sign-a")
	var filed []string
	for _, key := range []string{"sign-1", "sign-2"} {
		resp, r, p := h.submit(alice, key, goodReport()...)
		if resp.StatusCode != 201 {
			t.Fatalf("submit: %d %+v", resp.StatusCode, p)
		}
		filed = append(filed, r.ID)
	}
	slices.Sort(filed)
	if resp, body := h.json("POST", "/v1/me/account", alice, AccountRequest{Email: "ana@example.org", Password: "long-enough-1"}); resp.StatusCode != 200 {
		t.Fatalf("make account: %d %s", resp.StatusCode, body)
	}

	tests := []struct {
		name, email, password, device string
		status                        int
		want                          string // problem type
	}{
		{"wrong password", "ana@example.org", "long-enough-2", "device-sign-b", 401, "bad-credentials"},
		{"unknown email", "nobody@example.org", "long-enough-1", "device-sign-b", 401, "bad-credentials"},
		{"no password", "ana@example.org", "", "device-sign-b", 401, "bad-credentials"},
		{"an anonymous citizen has no password", "", "", "device-sign-b", 401, "bad-credentials"},
		{"a member of staff is not a citizen", "roads@test.example", "roads-pass", "device-sign-b", 401, "bad-credentials"},
		{"a device id too short", "ana@example.org", "long-enough-1", "short", 422, "invalid-device"},
		{"right", "ANA@example.org", "long-enough-1", "device-sign-b", 200, ""},
	}
	details := map[string]bool{}
	var phoneB string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out, p := h.signIn(tt.email, tt.password, tt.device)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %+v", status, tt.status, p)
			}
			if status != 200 {
				if p.Type != "urn:cityeyes:problem:"+tt.want {
					t.Fatalf("problem %+v, want %s", p, tt.want)
				}
				if status == 401 {
					details[p.Detail] = true
				}
				return
			}
			if out.UserID != aliceID || out.MergedReports != 0 {
				t.Fatalf("signed in as %s (merged %d), want %s", out.UserID, out.MergedReports, aliceID)
			}
			phoneB = out.Token
		})
	}
	if len(details) != 1 {
		t.Errorf("the refusals tell which part was wrong: %v", details)
	}
	if phoneB == "" {
		t.Fatal("no sign-in")
	}
	if got := h.myReports(phoneB); !slices.Equal(got, filed) {
		t.Fatalf("reports on the new phone: %v, want %v", got, filed)
	}
	// The new phone's device identity is the account's too.
	if _, id := h.deviceUser("device-sign-b"); id != aliceID {
		t.Fatalf("the device registers as %s, want the account %s", id, aliceID)
	}
	// A status change of a report is pushed to both phones.
	h.route(filed[0])
	evs, err := h.db.Timeline(ctx, filed[0], true)
	if err != nil {
		t.Fatal(err)
	}
	pushes, err := h.db.RecordNotifications(ctx, &evs[len(evs)-1], true, h.now)
	if err != nil {
		t.Fatal(err)
	}
	var devices []string
	for _, p := range pushes {
		devices = append(devices, p.Device.DeviceID)
	}
	slices.Sort(devices)
	if !slices.Equal(devices, []string{"device-sign-a", "device-sign-b"}) {
		t.Fatalf("pushes go to %v, want both phones", devices)
	}
	// Signing in again on the same phone changes nothing.
	if status, out, _ := h.signIn("ana@example.org", "long-enough-1", "device-sign-b"); status != 200 || out.UserID != aliceID {
		t.Fatalf("second sign-in: %d %+v", status, out)
	}
}

// TestAccountSignInOnATakenDevice: a device that already has an owner. An anonymous
// identity's reports, "me too"s and devices join the account and the identity ends; another
// account's device moves and that account keeps its reports; a staff member's device is a
// conflict.
func TestAccountSignInOnATakenDevice(t *testing.T) {
	h := newHarness(t)
	alice, _ := h.deviceUser("device-taken-a")
	_, aliceReport, _ := h.submit(alice, "taken-alice", goodReport()...)
	h.json("POST", "/v1/me/account", alice, AccountRequest{Email: "ana@example.org", Password: "long-enough-1"})

	tests := []struct {
		name   string
		device string
		// setup gives the device its owner and returns what should then hold of them.
		setup  func(t *testing.T) (check func(t *testing.T))
		status int
		merged int64
		want   string // problem type
	}{
		{"an anonymous identity with reports and a me-too", "device-taken-anon", func(t *testing.T) func(t *testing.T) {
			anon, _ := h.deviceUser("device-taken-anon")
			_, r, _ := h.submit(anon, "taken-anon", goodReport()...)
			if resp, body := h.do("POST", "/v1/reports/"+aliceReport.ID+"/support", anon, nil, ""); resp.StatusCode != 200 {
				t.Fatalf("support: %d %s", resp.StatusCode, body)
			}
			// A second phone of the same identity comes along, and a photo uploaded for a
			// report not yet filed.
			h.json("PUT", "/v1/me/devices/device-taken-anon-2", anon, DeviceRequest{Platform: "web"})
			resp, body := h.json("POST", "/v1/uploads", anon, UploadRequest{ContentType: "image/jpeg", Size: int64(len(testenv.PhotoJPEG))})
			var ticket UploadTicket
			if err := json.Unmarshal(body, &ticket); err != nil || resp.StatusCode/100 != 2 {
				t.Fatalf("upload: %d %s", resp.StatusCode, body)
			}
			return func(t *testing.T) {
				var uploader string
				_ = h.db.SQL().QueryRow("SELECT owner_id FROM uploads WHERE id = '" + ticket.MediaID + "'").Scan(&uploader)
				if c, _ := h.db.Case(context.Background(), aliceReport.ID); uploader != c.ReporterID {
					t.Errorf("the pending upload belongs to %q, not the account", uploader)
				}
				if resp, _ := h.do("GET", "/v1/me/reports", anon, nil, ""); resp.StatusCode != 401 {
					t.Errorf("the merged identity's token still works: %d", resp.StatusCode)
				}
				if got, want := h.myReports(alice), sorted(aliceReport.ID, r.ID); !slices.Equal(got, want) {
					t.Errorf("alice's reports %v, want %v", got, want)
				}
				c, _ := h.db.Case(context.Background(), aliceReport.ID)
				if c.Supporters != 0 {
					t.Errorf("alice's own report counts %d supporters, want 0: she cannot support it", c.Supporters)
				}
				ds, _ := h.db.PushDevices(context.Background(), c.ReporterID)
				var ids []string
				for _, d := range ds {
					ids = append(ids, d.DeviceID)
				}
				slices.Sort(ids)
				if !slices.Equal(ids, []string{"device-taken-a", "device-taken-anon"}) {
					// device-taken-anon-2 has no push token.
					t.Errorf("alice's push devices %v", ids)
				}
				var n int64
				_ = h.db.SQL().QueryRow("SELECT COUNT(*) FROM devices WHERE device_id = 'device-taken-anon-2' AND user_id = '" + c.ReporterID + "'").Scan(&n)
				if n != 1 {
					t.Errorf("the identity's other device did not join the account")
				}
			}
		}, 200, 1, ""},
		{"another citizen's account", "device-taken-bob", func(t *testing.T) func(t *testing.T) {
			bob, _ := h.deviceUser("device-taken-bob")
			_, r, _ := h.submit(bob, "taken-bob", goodReport()...)
			h.json("POST", "/v1/me/account", bob, AccountRequest{Email: "bob@example.org", Password: "long-enough-2"})
			return func(t *testing.T) {
				if got := h.myReports(bob); !slices.Equal(got, []string{r.ID}) {
					t.Errorf("bob's reports %v, want his own", got)
				}
				if slices.Contains(h.myReports(alice), r.ID) {
					t.Errorf("bob's report went to alice")
				}
				if status, _, _ := h.signIn("bob@example.org", "long-enough-2", "device-taken-bob-2"); status != 200 {
					t.Errorf("bob cannot sign in elsewhere: %d", status)
				}
			}
		}, 200, 0, ""},
		{"a member of staff's phone", "device-taken-staff", func(t *testing.T) func(t *testing.T) {
			roads := h.staff("roads@test.example", "roads-pass")
			if resp, body := h.json("PUT", "/v1/me/devices/device-taken-staff", roads, DeviceRequest{Platform: "android", PushToken: "tok"}); resp.StatusCode != 200 {
				t.Fatalf("staff device: %d %s", resp.StatusCode, body)
			}
			return func(t *testing.T) {
				u, _ := h.db.StaffByEmail(context.Background(), "roads@test.example")
				var owner string
				_ = h.db.SQL().QueryRow("SELECT user_id FROM devices WHERE device_id = 'device-taken-staff'").Scan(&owner)
				if owner != u.ID {
					t.Errorf("the staff phone changed hands")
				}
			}
		}, 409, 0, "device-taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := tt.setup(t)
			status, out, p := h.signIn("ana@example.org", "long-enough-1", tt.device)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %+v", status, tt.status, p)
			}
			if status == 200 && out.MergedReports != tt.merged || status != 200 && p.Type != "urn:cityeyes:problem:"+tt.want {
				t.Fatalf("got %+v %+v, want merged %d or %s", out, p, tt.merged, tt.want)
			}
			check(t)
		})
	}
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

// TestAccountSignInIsRateLimited: sign-ins count against the same per-address limit as
// staff sign-ins.
func TestAccountSignInIsRateLimited(t *testing.T) {
	h := newHarness(t)
	opt, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	h.app = New(Config{DB: h.db, Store: h.store, Areas: h.areas.Load, JWTSecret: testenv.Secret, Now: h.clock(),
		Limiter: redis_rate.NewLimiter(rc), Limits: Limits{LoginsPerIP: 2}})
	for i, want := range []int{401, 401, 429} {
		status, _, p := h.signIn("nobody@example.org", "guess-number-1", "device-guess")
		if status != want {
			t.Fatalf("attempt %d: %d, want %d (%+v)", i+1, status, want, p)
		}
	}
}
