package api

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/city-eyes/cityeyes/models"
)

// TestTokensAreChecked: expired, tampered, foreign-key, alg:none and malformed tokens are all
// refused with 401.
func TestTokensAreChecked(t *testing.T) {
	h := newHarness(t)
	good := h.citizen("device-tokens")
	sign := func(secret []byte, exp time.Time) string {
		cl := claims{Role: models.RoleCitizen, RegisteredClaims: jwt.RegisteredClaims{Subject: "someone", Issuer: "cityeyes",
			ExpiresAt: jwt.NewNumericDate(exp)}}
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, cl).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	parts := strings.Split(good, ".")
	// The same claims, re-encoded with "alg": "none" and no signature.
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	// The payload changed to a supervisor, the signature kept.
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"citizen"`, `"supervisor"`, 1))) + "." + parts[2]
	tests := []struct {
		name, token string
		status      int
	}{
		{"valid", good, 200},
		{"expired", sign(h.testSecret(), time.Now().Add(-time.Minute)), 401},
		{"signed with another key", sign([]byte("another-secret-another-secret-00"), time.Now().Add(time.Hour)), 401},
		{"alg none", none, 401},
		{"tampered payload", tampered, 401},
		{"garbage", "not.a.token", 401},
		{"missing", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.do("GET", "/v1/me/notifications", tt.token, nil, "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
		})
	}
}

func TestLogin(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name, email, password string
		status                int
		role, department      string
	}{
		{"handler", "roads@test.example", "roads-pass", 200, "handler", "ROADS"},
		{"supervisor, any case of email", "Boss@Test.Example", "boss-pass", 200, "supervisor", ""},
		{"wrong password", "roads@test.example", "nope", 401, "", ""},
		{"unknown", "nobody@test.example", "x", 401, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.json("POST", "/v1/auth/login", "", LoginRequest{Email: tt.email, Password: tt.password})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if tt.status == 200 && (!strings.Contains(string(body), `"role":"`+tt.role+`"`) || (tt.department != "" && !strings.Contains(string(body), `"department":"`+tt.department+`"`))) {
				t.Fatalf("login answer %s", body)
			}
		})
	}
	if resp, _ := h.do("POST", "/v1/auth/login", "", []byte(`{"email":`), "application/json"); resp.StatusCode != 400 {
		t.Fatalf("malformed login: %d", resp.StatusCode)
	}
	if resp, _ := h.json("POST", "/v1/auth/device", "", DeviceRequest{DeviceID: "short", Platform: "android"}); resp.StatusCode != 422 {
		t.Fatalf("short device id: %d", resp.StatusCode)
	}
	if resp, _ := h.json("POST", "/v1/auth/device", "", DeviceRequest{DeviceID: "device-0000001", Platform: "symbian"}); resp.StatusCode != 422 {
		t.Fatalf("unknown platform: %d", resp.StatusCode)
	}
}

func TestOversizedJSONIs413(t *testing.T) {
	h := newHarness(t)
	body := []byte(`{"email":"` + strings.Repeat("a", 20<<10) + `@x","password":"p"}`)
	resp, data := h.do("POST", "/v1/auth/login", "", body, "application/json")
	if resp.StatusCode != 413 || !strings.Contains(string(data), "body-too-large") {
		t.Fatalf("%d %s", resp.StatusCode, data)
	}
}

// TestJSONTextMustBeStorable: a NUL escape or invalid UTF-8 in any JSON body is refused
// with 422, on every backend (PostgreSQL would refuse to store it).
func TestJSONTextMustBeStorable(t *testing.T) {
	h := newHarness(t)
	citizen := h.citizen("device-text")
	_, r, _ := h.submit(citizen, "text-1", goodReport()...)
	h.route(r.ID)
	roads := h.staff("roads@test.example", "roads-pass")
	for name, body := range map[string][]byte{
		"NUL escape in a note":  []byte(`{"action":"comment","note":"a\u0000b"}`),
		"invalid UTF-8 in note": []byte("{\"action\":\"comment\",\"note\":\"a\xffb\"}"),
	} {
		resp, data := h.do("POST", "/v1/cases/"+r.ID+"/actions", roads, body, "application/json")
		if resp.StatusCode != 422 || !strings.Contains(string(data), "invalid-text") {
			t.Errorf("%s: %d %s", name, resp.StatusCode, data)
		}
	}
}

func TestLoginTextMustBeStorable(t *testing.T) {
	h := newHarness(t)
	resp, data := h.do("POST", "/v1/auth/login", "", []byte(`{"email":"a\u0000@x","password":"p"}`), "application/json")
	if resp.StatusCode != 422 {
		t.Fatalf("%d %s", resp.StatusCode, data)
	}
}
