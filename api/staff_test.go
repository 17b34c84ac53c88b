package api

import (
	"encoding/json"
	"testing"
)

// TestStaffAdministration: an administrator adds a handler, who signs in and works; once
// disabled, the handler's existing token and refresh token stop working at once.
func TestStaffAdministration(t *testing.T) {
	h := newHarness(t)
	admin := h.adminToken()
	str := func(s string) *string { return &s }
	resp, body := h.json("POST", "/v1/admin/staff", admin, StaffRequest{Email: str("new@test.example"), Name: str("New handler"),
		Role: str("handler"), Department: str("ROADS"), Password: str("a-long-password")})
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var st Staff
	_ = json.Unmarshal(body, &st)
	tests := []struct {
		name   string
		req    StaffRequest
		status int
	}{
		{"email taken", StaffRequest{Email: str("new@test.example"), Role: str("handler"), Department: str("ROADS"), Password: str("a-long-password")}, 409},
		{"handler without department", StaffRequest{Email: str("x@test.example"), Role: str("handler"), Password: str("a-long-password")}, 422},
		{"short password", StaffRequest{Email: str("y@test.example"), Role: str("supervisor"), Password: str("short")}, 422},
		{"unknown role", StaffRequest{Email: str("z@test.example"), Role: str("mayor"), Password: str("a-long-password")}, 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if resp, body := h.json("POST", "/v1/admin/staff", admin, tt.req); resp.StatusCode != tt.status {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, tt.status, body)
			}
		})
	}
	var session LoginResponse
	_, body = h.json("POST", "/v1/auth/login", "", LoginRequest{Email: "new@test.example", Password: "a-long-password"})
	_ = json.Unmarshal(body, &session)
	if resp, _ := h.do("GET", "/v1/queue", session.Token, nil, ""); resp.StatusCode != 200 {
		t.Fatalf("new handler's queue: %d", resp.StatusCode)
	}
	// A refresh token works once; its successor works too.
	_, body = h.json("POST", "/v1/auth/refresh", "", RefreshRequest{RefreshToken: session.RefreshToken})
	var renewed LoginResponse
	_ = json.Unmarshal(body, &renewed)
	if renewed.Token == "" || renewed.RefreshToken == session.RefreshToken {
		t.Fatalf("refresh: %s", body)
	}
	if resp, _ := h.json("POST", "/v1/auth/refresh", "", RefreshRequest{RefreshToken: session.RefreshToken}); resp.StatusCode != 401 {
		t.Fatalf("a used refresh token: %d, want 401", resp.StatusCode)
	}
	// Replaying a used token revoked the whole family, the renewed one included.
	if resp, _ := h.json("POST", "/v1/auth/refresh", "", RefreshRequest{RefreshToken: renewed.RefreshToken}); resp.StatusCode != 401 {
		t.Fatalf("refresh after a replay: %d, want 401", resp.StatusCode)
	}

	disabled := true
	if resp, body := h.json("PATCH", "/v1/admin/staff/"+st.ID, admin, StaffRequest{Disabled: &disabled}); resp.StatusCode != 200 {
		t.Fatalf("disable: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.do("GET", "/v1/queue", renewed.Token, nil, ""); resp.StatusCode != 401 {
		t.Fatalf("a disabled handler's token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := h.json("POST", "/v1/auth/login", "", LoginRequest{Email: "new@test.example", Password: "a-long-password"}); resp.StatusCode != 403 {
		t.Fatalf("a disabled handler signs in: %d, want 403", resp.StatusCode)
	}
	if resp, _ := h.do("GET", "/v1/admin/staff", h.staff("boss@test.example", "boss-pass"), nil, ""); resp.StatusCode != 403 {
		t.Fatalf("a supervisor lists staff: %d, want 403", resp.StatusCode)
	}
	_, body = h.do("GET", "/v1/admin/staff", admin, nil, "")
	var all []Staff
	_ = json.Unmarshal(body, &all)
	if len(all) != 6 {
		t.Fatalf("%d staff listed, want the 5 of the test city and the new one", len(all))
	}
}
