package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
)

// TestEveryRouteAsEveryRole calls every route of the native API as every kind of caller and
// checks the status, and that what comes back stays inside the caller's boundary. A route
// the table does not cover fails the test, so a new route must say who may call it.
func TestEveryRouteAsEveryRole(t *testing.T) {
	h := newHarness(t)
	testenv.Apply(t, h.db, testenv.OtherCityYAML)
	idx, err := h.db.LoadAreaIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h.app = New(Config{DB: h.db, Store: h.store, Areas: func() *models.AreaIndex { return idx }, JWTSecret: testenv.Secret, Now: func() time.Time { return h.now }})

	reporter := h.citizen("device-reporter")
	_, r, _ := h.submit(reporter, "matrix", goodReport(photo(testenv.PhotoJPEG))...) // west: ROADS
	h.route(r.ID)
	roadsUser, _ := h.db.StaffByEmail(context.Background(), "roads@test.example")

	tokens := map[string]string{
		"anonymous":              "",
		"reporter":               reporter,
		"another citizen":        h.citizen("device-stranger"),
		"handler of the case":    h.staff("roads@test.example", "roads-pass"),
		"handler elsewhere":      h.staff("parks@test.example", "parks-pass"),
		"supervisor":             h.staff("boss@test.example", "boss-pass"),
		"supervisor, other city": h.staff("boss@other.example", "other-boss"),
		"administrator":          h.staff("admin@test.example", "admin-pass"),
	}
	roles := []string{"anonymous", "reporter", "another citizen", "handler of the case", "handler elsewhere",
		"supervisor", "supervisor, other city", "administrator"}

	type call = accessCall
	caseURL := "/v1/reports/" + r.ID
	calls := []call{
		{"POST", "/v1/auth/device", DeviceRequest{DeviceID: "device-matrix-x", Platform: "ios"}, "", []int{200, 200, 200, 200, 200, 200, 200, 200}, nil, ""},
		{"POST", "/v1/auth/login", LoginRequest{Email: "roads@test.example", Password: "roads-pass"}, "", []int{200, 200, 200, 200, 200, 200, 200, 200}, nil, ""},
		{"POST", "/v1/auth/refresh", RefreshRequest{RefreshToken: "not-a-token"}, "", []int{401, 401, 401, 401, 401, 401, 401, 401}, nil, ""},
		{"GET", "/v1/categories?lat=0.5&lon=-0.5", nil, "", []int{200, 200, 200, 200, 200, 200, 200, 200}, nil, ""},
		{"POST", "/v1/reports", ReportJSON{Category: "other", Description: "x", Lat: ptr(0.5), Lon: ptr(-0.5)}, "", []int{401, 201, 201, 403, 403, 403, 403, 403}, nil, ""},
		{"GET", caseURL, nil, "", []int{401, 200, 200, 200, 403, 200, 404, 200}, nil, ""},
		{"GET", "/v1/cases/" + r.ID, nil, "", []int{401, 403, 403, 200, 403, 200, 404, 200}, nil, ""},
		{"POST", caseURL + "/feedback", FeedbackRequest{Action: "confirm"}, "", []int{401, 409, 404, 403, 403, 403, 403, 403}, nil, ""},
		{"GET", "/v1/me/reports", nil, "", []int{401, 200, 200, 403, 403, 403, 403, 403}, []string{"another citizen"}, ""},
		{"GET", "/v1/reports/check?category=pothole&lat=0.5&lon=-0.5", nil, "", []int{401, 200, 200, 200, 200, 200, 200, 200}, nil, ""},
		{"GET", "/v1/reports/nearby?lat=0.5&lon=-0.5", nil, "", []int{401, 200, 200, 200, 200, 200, 200, 200}, nil, ""},
		{"POST", caseURL + "/support", nil, "", []int{401, 409, 200, 403, 403, 403, 403, 403}, nil, ""},
		{"POST", "/v1/me/notifications/read", MarkReadRequest{}, "", []int{401, 200, 200, 200, 200, 200, 200, 200}, nil, ""},
		{"GET", "/v1/me/notifications", nil, "", []int{401, 200, 200, 200, 200, 200, 200, 200}, nil, ""},
		{"PUT", "/v1/me/devices/device-matrix-phone", DeviceRequest{Platform: "android", PushToken: "tok"}, "", []int{401, 200, 409, 409, 409, 409, 409, 409}, nil, ""},
		{"GET", "/v1/queue", nil, "", []int{401, 403, 403, 200, 200, 200, 200, 403}, []string{"handler elsewhere", "supervisor, other city"}, ""},
		{"GET", "/v1/queue/counts", nil, "", []int{401, 403, 403, 200, 200, 200, 200, 403}, nil, ""},
		{"POST", "/v1/cases/" + r.ID + "/actions", ActionRequest{Action: "comment", Note: "looked"}, "", []int{401, 403, 403, 200, 403, 200, 404, 403}, nil, ""},
		// A bulk action answers 200 with each case's own status inside; another city's case
		// is not found, and its number is not told.
		{"POST", "/v1/cases/actions", BulkActionRequest{CaseIDs: []string{r.ID}, ActionRequest: ActionRequest{Action: "comment", Note: "seen"}}, "", []int{401, 403, 403, 200, 200, 200, 200, 403}, []string{"supervisor, other city"}, ""},
		{"GET", "/v1/admin/staff", nil, "", []int{401, 403, 403, 403, 403, 403, 403, 200}, nil, ""},
		{"POST", "/v1/admin/staff", StaffRequest{}, "", []int{401, 403, 403, 403, 403, 403, 403, 422}, nil, ""},
		{"PATCH", "/v1/admin/staff/" + roadsUser.ID, StaffRequest{Name: ptr("Roads")}, "", []int{401, 403, 403, 403, 403, 403, 403, 200}, nil, ""},
		{"GET", "/v1/admin/open311-keys", nil, "", []int{401, 403, 403, 403, 403, 403, 403, 200}, nil, ""},
		{"POST", "/v1/admin/open311-keys", Open311KeyRequest{}, "", []int{401, 403, 403, 403, 403, 403, 403, 422}, nil, ""},
		// Any id that is not one of the city's keys: the administrator gets 404.
		{"DELETE", "/v1/admin/open311-keys/" + roadsUser.ID, nil, "", []int{401, 403, 403, 403, 403, 403, 403, 404}, nil, ""},
	}
	// Each feature's routes are listed in its own file.
	fx := accessFixture{h: h, caseID: r.ID, caseNumber: r.Number, staffID: roadsUser.ID, tokens: tokens}
	for _, more := range []func(accessFixture) []accessCall{
		uploadAccess, accountAccess, statsAccess, dashboardAccess, adminAccess, privacyAccess, operatorAccess,
	} {
		calls = append(calls, more(fx)...)
	}
	covered := map[string]bool{}
	for _, c := range calls {
		route := c.method + " " + strings.Split(c.path, "?")[0]
		route = strings.ReplaceAll(route, r.ID, ":id")
		route = strings.ReplaceAll(route, roadsUser.ID, ":id")
		route = strings.ReplaceAll(route, "device-matrix-phone", ":device_id")
		if c.route != "" {
			route = c.route
		}
		covered[route] = true
		for i, role := range roles {
			t.Run(route+" as "+role, func(t *testing.T) {
				b, _ := json.Marshal(c.body)
				if c.body == nil {
					b = nil
				}
				ctype := ""
				if b != nil {
					ctype = "application/json"
				}
				resp, body := h.do(c.method, c.path, tokens[role], b, ctype, "Idempotency-Key", "matrix-"+role)
				if resp.StatusCode != c.want[i] {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.want[i], body)
				}
				for _, lf := range c.leakFree {
					if lf == role && resp.StatusCode == http.StatusOK && strings.Contains(string(body), r.Number) {
						t.Fatalf("the case crossed a boundary: %s", body)
					}
				}
				if role == "another citizen" && c.path == caseURL && strings.Contains(string(body), `"attributes"`) {
					t.Fatalf("another citizen got the reporter's answers: %s", body)
				}
			})
		}
	}
	for _, rt := range h.app.GetRoutes(true) {
		if !strings.HasPrefix(rt.Path, "/v1/") || rt.Method == "HEAD" {
			continue
		}
		if !covered[rt.Method+" "+rt.Path] {
			t.Errorf("route %s %s is not in the access table", rt.Method, rt.Path)
		}
	}
	// The other city's administrator sees only their own staff.
	_, body := h.do("GET", "/v1/admin/staff", h.staff("admin@other.example", "other-admin"), nil, "")
	if strings.Contains(string(body), "test.example") {
		t.Fatalf("another city's administrator sees this city's staff: %s", body)
	}
}

// accessCall is one row of the access table: a request, and the status each role gets.
type accessCall struct {
	method, path string
	body         any
	ctype        string
	// want is the status for each role, in the order of TestEveryRouteAsEveryRole's roles:
	// anonymous, reporter, another citizen, handler of the case, handler elsewhere,
	// supervisor, supervisor of another city, administrator.
	want []int
	// leakFree lists roles whose 200 answers must not name the case (its number).
	leakFree []string
	// route names the Fiber route the call covers, e.g. "GET /v1/admin/areas/:code", when
	// the path holds an id other than the fixture's case and staff ids.
	route string
}

// accessFixture is what the access table's rows may refer to: the case submitted by
// "reporter" in the west area of testville (department ROADS), the ROADS handler's id
// (which also stands for ":id" in a path), and each role's token.
type accessFixture struct {
	h          *harness
	caseID     string
	caseNumber string
	staffID    string
	tokens     map[string]string
}

func ptr[T any](v T) *T { return &v }
