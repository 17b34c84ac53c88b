package notifications_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/city-eyes/cityeyes/notifications"
	"github.com/city-eyes/cityeyes/notifications/fcmfake"
)

const project = "city-eyes-test"

func newSender(t *testing.T, endpoint string) *notifications.FCM {
	t.Helper()
	s, err := notifications.NewFCM(t.Context(), notifications.FCMConfig{
		ProjectID: project,
		Endpoint:  endpoint,
	})
	if err != nil {
		t.Fatalf("NewFCM: %v", err)
	}
	return s
}

func TestFCMSend(t *testing.T) {
	t.Parallel() // its ~7s retry cases overlap with TestSendTransportFailures
	title, body := notifications.Text("en", "dispatched", "", "NYC-26-000042")
	okMsg := notifications.Message{
		Token: "fcm-token_A1:b2.c3",
		Title: title,
		Body:  body,
		Data: map[string]string{
			"report_id": "8c1e2d",
			"status":    "dispatched",
			"event_id":  "evt-17",
		},
	}
	withToken := func(tok string) notifications.Message {
		m := okMsg
		m.Token = tok
		return m
	}

	tests := []struct {
		name  string
		setup func(*fcmfake.Server)
		msg   notifications.Message
		// want is nil for success, ErrUnregistered, ErrUnavailable, or
		// errPermanent for an error that is neither.
		want error
		// wantText must appear in the error: the original FCM message has
		// to survive the wrapping.
		wantText string
		// wantRequests is how many HTTP requests the fake should have seen
		// (0: don't check).
		wantRequests int
	}{
		{
			name:         "success",
			msg:          okMsg,
			wantRequests: 1,
		},
		{
			name:         "unregistered token",
			setup:        func(s *fcmfake.Server) { s.Unregister(okMsg.Token) },
			msg:          okMsg,
			want:         notifications.ErrUnregistered,
			wantText:     "Requested entity was not found.",
			wantRequests: 1,
		},
		{
			name:     "malformed token is INVALID_ARGUMENT about the token",
			msg:      withToken("not a token!"),
			want:     notifications.ErrUnregistered,
			wantText: "The registration token is not a valid FCM registration token",
		},
		{
			name: "INVALID_ARGUMENT not about the token keeps the token",
			msg: func() notifications.Message {
				m := okMsg
				m.Data = map[string]string{"from": "reserved by FCM"}
				return m
			}(),
			want:     errPermanent,
			wantText: "Invalid data payload key: from",
		},
		{
			name:         "one 503 is retried by firebase-admin",
			setup:        func(s *fcmfake.Server) { s.FailNext(1) },
			msg:          okMsg,
			wantRequests: 2,
		},
		{
			// firebase-admin makes 1 attempt + 4 retries (~7s of backoff)
			// before giving up.
			name:         "persistent 503",
			setup:        func(s *fcmfake.Server) { s.FailNext(5) },
			msg:          okMsg,
			want:         notifications.ErrUnavailable,
			wantText:     "The service is currently unavailable.",
			wantRequests: 5,
		},
		{
			name:         "500 INTERNAL",
			setup:        func(s *fcmfake.Server) { s.FailNextWith(1, fcmfake.CodeInternal) },
			msg:          okMsg,
			want:         notifications.ErrUnavailable,
			wantText:     "Internal error encountered.",
			wantRequests: 1,
		},
		{
			name:         "429 QUOTA_EXCEEDED",
			setup:        func(s *fcmfake.Server) { s.FailNextWith(1, fcmfake.CodeQuotaExceeded) },
			msg:          okMsg,
			want:         notifications.ErrUnavailable,
			wantText:     "Quota exceeded",
			wantRequests: 1,
		},
		{
			name:     "SENDER_ID_MISMATCH is a configuration problem",
			setup:    func(s *fcmfake.Server) { s.FailNextWith(1, fcmfake.CodeSenderIDMismatch) },
			msg:      okMsg,
			want:     errPermanent,
			wantText: "SenderId mismatch",
		},
		{
			name:     "closed server",
			setup:    func(s *fcmfake.Server) { s.Close() },
			msg:      okMsg,
			want:     notifications.ErrUnavailable,
			wantText: "connection refused",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Parallel because the retrying cases each spend ~7s in
			// firebase-admin's backoff.
			t.Parallel()
			srv := fcmfake.New()
			defer srv.Close()
			sender := newSender(t, srv.URL())
			if tc.setup != nil {
				tc.setup(srv)
			}

			id, err := sender.Send(t.Context(), tc.msg)

			checkErr(t, err, tc.want, tc.wantText)
			if tc.wantRequests != 0 {
				if got := srv.Requests(); got != tc.wantRequests {
					t.Errorf("fake saw %d requests, want %d", got, tc.wantRequests)
				}
			}
			got := srv.Messages()
			if tc.want != nil {
				if len(got) != 0 {
					t.Errorf("failed send delivered %d messages: %+v", len(got), got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("fake received %d messages, want 1: %+v", len(got), got)
			}
			checkDelivered(t, got[0], tc.msg, id)
		})
	}
}

// errPermanent stands for "an error that is neither ErrUnregistered nor
// ErrUnavailable".
var errPermanent = errors.New("permanent")

func checkErr(t *testing.T, err, want error, wantText string) {
	t.Helper()
	switch {
	case want == nil:
		if err != nil {
			t.Fatalf("Send: unexpected error %v", err)
		}
		return
	case err == nil:
		t.Fatalf("Send succeeded, want %v", want)
	}
	for _, sentinel := range []error{notifications.ErrUnregistered, notifications.ErrUnavailable} {
		if got, wantIs := errors.Is(err, sentinel), want == sentinel; got != wantIs {
			t.Errorf("errors.Is(%q, %v) = %v, want %v", err, sentinel, got, wantIs)
		}
	}
	if !strings.Contains(err.Error(), wantText) {
		t.Errorf("error %q does not keep the original message %q", err, wantText)
	}
}

func checkDelivered(t *testing.T, got fcmfake.Received, sent notifications.Message, id string) {
	t.Helper()
	if id == "" || id != got.Name {
		t.Errorf("Send returned id %q, fake assigned %q", id, got.Name)
	}
	if !strings.HasPrefix(id, "projects/"+project+"/messages/") {
		t.Errorf("id %q is not a message of project %q", id, project)
	}
	if got.Project != project || got.Token != sent.Token || got.Title != sent.Title || got.Body != sent.Body {
		t.Errorf("received project=%q token=%q title=%q body=%q, want %q %q %q %q",
			got.Project, got.Token, got.Title, got.Body, project, sent.Token, sent.Title, sent.Body)
	}
	if !maps.Equal(got.Data, sent.Data) {
		t.Errorf("received data %v, want %v", got.Data, sent.Data)
	}
	if got.Authorization != "" {
		t.Errorf("unauthenticated sender sent Authorization %q", got.Authorization)
	}

	var android struct {
		Priority string `json:"priority"`
	}
	if err := json.Unmarshal(got.Android, &android); err != nil || android.Priority != "high" {
		t.Errorf("android config %s: want priority high (err %v)", got.Android, err)
	}
	var apns struct {
		Headers map[string]string `json:"headers"`
		Payload struct {
			Aps struct {
				Alert struct{ Title, Body string } `json:"alert"`
				Sound string                       `json:"sound"`
			} `json:"aps"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(got.APNs, &apns); err != nil {
		t.Fatalf("apns config %s: %v", got.APNs, err)
	}
	if apns.Headers["apns-push-type"] != "alert" || apns.Headers["apns-priority"] != "10" {
		t.Errorf("apns headers %v: want push-type alert, priority 10", apns.Headers)
	}
	if a := apns.Payload.Aps; a.Alert.Title != sent.Title || a.Alert.Body != sent.Body || a.Sound != "default" {
		t.Errorf("aps %+v: want alert %q/%q with default sound", a, sent.Title, sent.Body)
	}
}

func TestNewFCMConfig(t *testing.T) {
	srv := fcmfake.New()
	defer srv.Close()

	// The fake's handler mounted under a path prefix, as a staging proxy
	// might do: Endpoint may carry a path.
	mux := http.NewServeMux()
	mux.Handle("/fcm/", http.StripPrefix("/fcm", srv.Handler()))
	proxy := httptest.NewServer(mux)
	defer proxy.Close()

	tests := []struct {
		name    string
		cfg     notifications.FCMConfig
		wantErr string // "" means NewFCM succeeds and a send arrives at srv
	}{
		{"base URL", notifications.FCMConfig{ProjectID: project, Endpoint: srv.URL()}, ""},
		{"trailing slash", notifications.FCMConfig{ProjectID: project, Endpoint: srv.URL() + "/"}, ""},
		{"path prefix", notifications.FCMConfig{ProjectID: project, Endpoint: proxy.URL + "/fcm"}, ""},
		{"no project", notifications.FCMConfig{Endpoint: srv.URL()}, "ProjectID is required"},
		{"endpoint without scheme", notifications.FCMConfig{ProjectID: project, Endpoint: strings.TrimPrefix(srv.URL(), "http://")}, "must be an http(s) base URL"},
		{"no credentials for Google", notifications.FCMConfig{ProjectID: project}, "CredentialsFile is required"},
		{"unreadable credentials", notifications.FCMConfig{ProjectID: project, Endpoint: srv.URL(), CredentialsFile: filepath.Join(t.TempDir(), "missing.json")}, "missing.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.Reset()
			sender, err := notifications.NewFCM(t.Context(), tc.cfg)
			if err == nil {
				// Some credential problems only surface on first use.
				_, err = sender.Send(t.Context(), notifications.Message{Token: "tok", Title: "t", Body: "b"})
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := srv.Messages(); len(got) != 1 || got[0].Token != "tok" {
				t.Fatalf("fake received %+v, want one message to tok", got)
			}
		})
	}
}

// TestFCMCredentialsFile checks the authenticated path end to end: a
// service-account key whose token_uri points at a local token server, and
// the resulting bearer token arriving at the fake.
func TestFCMCredentialsFile(t *testing.T) {
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("assertion") == "" {
			http.Error(w, "want a JWT assertion", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"test-access-token","token_type":"Bearer","expires_in":3600}`))
	}))
	defer tokenSrv.Close()

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     project,
		"private_key_id": "test-key",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "pusher@" + project + ".iam.gserviceaccount.com",
		"client_id":      "1234567890",
		"token_uri":      tokenSrv.URL + "/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	credFile := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(credFile, sa, 0o600); err != nil {
		t.Fatal(err)
	}

	srv := fcmfake.New()
	defer srv.Close()
	sender, err := notifications.NewFCM(t.Context(), notifications.FCMConfig{
		CredentialsFile: credFile,
		ProjectID:       project,
		Endpoint:        srv.URL(),
	})
	if err != nil {
		t.Fatalf("NewFCM: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := sender.Send(ctx, notifications.Message{Token: "tok", Title: "t", Body: "b"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.Messages()
	if len(got) != 1 {
		t.Fatalf("fake received %d messages, want 1", len(got))
	}
	if got[0].Authorization != "Bearer test-access-token" {
		t.Errorf("Authorization = %q, want the token from the service account exchange", got[0].Authorization)
	}
}

// TestSendCallerDeadline: when the caller's deadline expires while
// firebase-admin is backing off between retries, the error is still
// classified as transient and still says it was the deadline.
func TestSendCallerDeadline(t *testing.T) {
	srv := fcmfake.New()
	defer srv.Close()
	srv.FailNext(100)
	sender := newSender(t, srv.URL())

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err := sender.Send(ctx, notifications.Message{Token: "tok", Title: "t", Body: "b"})
	if !errors.Is(err, notifications.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrUnavailable wrapping context.DeadlineExceeded", err)
	}
}

func TestSendWithoutToken(t *testing.T) {
	srv := fcmfake.New()
	defer srv.Close()
	_, err := newSender(t, srv.URL()).Send(t.Context(), notifications.Message{Title: "t", Body: "b"})
	if err == nil || errors.Is(err, notifications.ErrUnregistered) || errors.Is(err, notifications.ErrUnavailable) {
		t.Fatalf("got %v, want a plain error", err)
	}
	if n := srv.Requests(); n != 0 {
		t.Errorf("a message without token reached the server (%d requests)", n)
	}
}

// TestSendTransportFailures covers failures that do not come from FCM
// itself: a connection dropped mid-request (firebase-admin reports it as
// UNKNOWN without an HTTP response) and a proxy's non-JSON 502.
func TestSendTransportFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		wantText string
	}{
		{
			name: "connection dropped",
			handler: func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
			},
			// The client sees EOF or a closed connection, depending on whether it was
			// still writing; either way the error names the request it was making.
			wantText: "messages:send",
		},
		{
			name: "proxy 502",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusBadGateway)
				_, _ = w.Write([]byte("<html>bad gateway</html>"))
			},
			wantText: "bad gateway",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			_, err := newSender(t, srv.URL).Send(t.Context(), notifications.Message{Token: "tok", Title: "t", Body: "b"})
			checkErr(t, err, notifications.ErrUnavailable, tc.wantText)
		})
	}
}
