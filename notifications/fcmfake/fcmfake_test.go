package fcmfake_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"

	"github.com/city-eyes/cityeyes/notifications/fcmfake"
)

const project = "fake-project"

// newClient builds firebase-admin's own messaging client against base, so
// these tests check the fake against the library's request encoding and
// error parsing, not against our wrapper.
func newClient(t *testing.T, base string) *messaging.Client {
	t.Helper()
	app, err := firebase.NewApp(t.Context(), &firebase.Config{ProjectID: project},
		option.WithEndpoint(base+"/v1"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	c, err := app.Messaging(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSendRoundTrip(t *testing.T) {
	srv := fcmfake.New()
	defer srv.Close()
	c := newClient(t, srv.URL())

	msg := &messaging.Message{
		Token:        "tok-1",
		Notification: &messaging.Notification{Title: "Report received", Body: "您的报告 NYC-26-000042 已收到。"},
		Data:         map[string]string{"report_id": "r1", "status": "submitted", "event_id": "e1"},
		Android:      &messaging.AndroidConfig{Priority: "high"},
		APNS: &messaging.APNSConfig{
			Headers: map[string]string{"apns-priority": "10"},
			Payload: &messaging.APNSPayload{Aps: &messaging.Aps{Sound: "default"}},
		},
	}
	id, err := c.Send(t.Context(), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}

	// A dry run is validated and answered but never delivered.
	dry, err := c.SendDryRun(t.Context(), msg)
	if err != nil {
		t.Fatalf("SendDryRun: %v", err)
	}
	if want := "projects/" + project + "/messages/" + fcmfake.DryRunMessageID; dry != want {
		t.Errorf("dry run id %q, want %q", dry, want)
	}

	got := srv.Messages()
	if len(got) != 1 {
		t.Fatalf("got %d messages, want 1: %+v", len(got), got)
	}
	r := got[0]
	if r.Name != id || !strings.HasPrefix(id, "projects/"+project+"/messages/") {
		t.Errorf("client got id %q, fake recorded %q", id, r.Name)
	}
	if r.Project != project || r.Token != "tok-1" || r.Title != msg.Notification.Title || r.Body != msg.Notification.Body {
		t.Errorf("recorded %+v, want the sent project/token/notification", r)
	}
	if !maps.Equal(r.Data, msg.Data) {
		t.Errorf("data %v, want %v", r.Data, msg.Data)
	}
	if !strings.Contains(string(r.Android), `"priority":"high"`) {
		t.Errorf("android %s lacks priority high", r.Android)
	}
	if !strings.Contains(string(r.APNs), `"sound":"default"`) || !strings.Contains(string(r.APNs), `"apns-priority":"10"`) {
		t.Errorf("apns %s lacks what was sent", r.APNs)
	}
	if srv.Requests() != 2 {
		t.Errorf("Requests() = %d, want 2 (send + dry run)", srv.Requests())
	}

	// Messages hands out copies.
	got[0].Data["report_id"] = "changed"
	if srv.Messages()[0].Data["report_id"] != "r1" {
		t.Error("mutating the result of Messages changed the fake's record")
	}
}

// TestErrorsRecognised checks that firebase-admin's own predicates classify
// each error the fake produces: the point of the fake is that code written
// against messaging.IsUnregistered etc. behaves as it would against Google.
func TestErrorsRecognised(t *testing.T) {
	t.Parallel() // overlap its ~7s retry case with TestClosedServerIsUnavailable
	tests := []struct {
		name  string
		setup func(*fcmfake.Server)
		token string
		data  map[string]string
		is    func(error) bool
		// requests the fake should see: >1 where firebase-admin retries.
		requests int
	}{
		{"unregistered", func(s *fcmfake.Server) { s.Unregister("dead") }, "dead", nil, messaging.IsUnregistered, 1},
		{"FailNext exhausts firebase-admin's retries", func(s *fcmfake.Server) { s.FailNext(5) }, "tok", nil, messaging.IsUnavailable, 5},
		{"internal", func(s *fcmfake.Server) { s.FailNextWith(1, fcmfake.CodeInternal) }, "tok", nil, messaging.IsInternal, 1},
		{"quota", func(s *fcmfake.Server) { s.FailNextWith(1, fcmfake.CodeQuotaExceeded) }, "tok", nil, messaging.IsQuotaExceeded, 1},
		{"sender id mismatch", func(s *fcmfake.Server) { s.FailNextWith(1, fcmfake.CodeSenderIDMismatch) }, "tok", nil, messaging.IsSenderIDMismatch, 1},
		{"third party auth", func(s *fcmfake.Server) { s.FailNextWith(1, fcmfake.CodeThirdPartyAuthError) }, "tok", nil, messaging.IsThirdPartyAuthError, 1},
		{"injected invalid argument", func(s *fcmfake.Server) { s.FailNextWith(1, fcmfake.CodeInvalidArgument) }, "tok", nil, messaging.IsInvalidArgument, 1},
		{"invalid token", nil, "not a token", nil, func(err error) bool {
			return messaging.IsInvalidArgument(err) &&
				err.Error() == "The registration token is not a valid FCM registration token"
		}, 1},
		{"reserved data key", nil, "tok", map[string]string{"google.foo": "x"}, func(err error) bool {
			return messaging.IsInvalidArgument(err) && !strings.Contains(err.Error(), "registration token")
		}, 1},
		{"oversized data", nil, "tok", map[string]string{"big": strings.Repeat("x", 5000)}, messaging.IsInvalidArgument, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // the retrying case spends ~7s in backoff
			srv := fcmfake.New()
			defer srv.Close()
			if tc.setup != nil {
				tc.setup(srv)
			}
			_, err := newClient(t, srv.URL()).Send(t.Context(), &messaging.Message{
				Token:        tc.token,
				Data:         tc.data,
				Notification: &messaging.Notification{Title: "t", Body: "b"},
			})
			if err == nil || !tc.is(err) {
				t.Fatalf("error %v not recognised", err)
			}
			if got := srv.Requests(); got != tc.requests {
				t.Errorf("fake saw %d requests, want %d", got, tc.requests)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("failed send recorded %d messages", n)
			}
			// Once the injected failures are used up, sends work again.
			if tc.setup != nil && tc.token == "tok" {
				if _, err := newClient(t, srv.URL()).Send(t.Context(), &messaging.Message{Token: "tok"}); err != nil {
					t.Errorf("send after the injected failures: %v", err)
				}
			}
		})
	}
}

func TestClosedServerIsUnavailable(t *testing.T) {
	t.Parallel() // ~7s of firebase-admin backoff
	srv := fcmfake.New()
	c := newClient(t, srv.URL())
	srv.Close()
	srv.Close() // idempotent
	_, err := c.Send(t.Context(), &messaging.Message{Token: "tok"})
	// Transport failures carry a platform code only, no FcmError detail.
	if !errorutils.IsUnavailable(err) || errorutils.HTTPResponse(err) != nil {
		t.Fatalf("got %v, want a connection-level UNAVAILABLE", err)
	}
}

// TestWireErrors posts raw requests and checks status codes and Google's
// error envelope for requests firebase-admin would never send.
func TestWireErrors(t *testing.T) {
	srv := fcmfake.New()
	defer srv.Close()
	sendURL := srv.URL() + "/v1/projects/" + project + "/messages:send"

	tests := []struct {
		name, method, url, body string
		wantCode                int
		wantStatus              string
	}{
		{"ok", http.MethodPost, sendURL, `{"message":{"token":"t","data":{"k":"v"}}}`, 200, ""},
		{"camelCase validateOnly", http.MethodPost, sendURL, `{"validateOnly":true,"message":{"token":"t"}}`, 200, ""},
		{"not JSON", http.MethodPost, sendURL, `{"message":`, 400, "INVALID_ARGUMENT"},
		{"unknown field", http.MethodPost, sendURL, `{"message":{"token":"t","tokn":"x"}}`, 400, "INVALID_ARGUMENT"},
		{"non-string data", http.MethodPost, sendURL, `{"message":{"token":"t","data":{"n":1}}}`, 400, "INVALID_ARGUMENT"},
		{"no message", http.MethodPost, sendURL, `{}`, 400, "INVALID_ARGUMENT"},
		{"no target", http.MethodPost, sendURL, `{"message":{"data":{"k":"v"}}}`, 400, "INVALID_ARGUMENT"},
		{"two targets", http.MethodPost, sendURL, `{"message":{"token":"t","topic":"news"}}`, 400, "INVALID_ARGUMENT"},
		{"bad android priority", http.MethodPost, sendURL, `{"message":{"token":"t","android":{"priority":"urgent"}}}`, 400, "INVALID_ARGUMENT"},
		{"trailing garbage", http.MethodPost, sendURL, `{"message":{"token":"t"}} {}`, 400, "INVALID_ARGUMENT"},
		{"GET", http.MethodGet, sendURL, ``, 405, "INVALID_ARGUMENT"},
		{"no version prefix", http.MethodPost, srv.URL() + "/projects/" + project + "/messages:send", `{"message":{"token":"t"}}`, 404, "NOT_FOUND"},
		{"no project", http.MethodPost, srv.URL() + "/v1/projects//messages:send", `{"message":{"token":"t"}}`, 404, "NOT_FOUND"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, tc.url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.wantCode, raw)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.wantCode == 200 {
				var ok struct{ Name string }
				if err := json.Unmarshal(raw, &ok); err != nil || !strings.HasPrefix(ok.Name, "projects/"+project+"/messages/") {
					t.Errorf("success body %s", raw)
				}
				return
			}
			var e struct {
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
					Status  string `json:"status"`
				} `json:"error"`
			}
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatalf("error body is not Google's envelope: %s", raw)
			}
			if e.Error.Code != tc.wantCode || e.Error.Status != tc.wantStatus || e.Error.Message == "" {
				t.Errorf("error %+v, want code %d status %s and a message", e.Error, tc.wantCode, tc.wantStatus)
			}
		})
	}
}

func TestConcurrentSendsAndWaitFor(t *testing.T) {
	srv := fcmfake.New()
	defer srv.Close()
	c := newClient(t, srv.URL())
	const n = 25

	type result struct {
		msgs []fcmfake.Received
		err  error
	}
	waited := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		msgs, err := srv.WaitFor(ctx, n)
		waited <- result{msgs, err}
	}()

	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Reads interleaved with writes, for the race detector.
			_ = srv.Messages()
			_, err := c.Send(context.Background(), &messaging.Message{
				Token: fmt.Sprintf("tok-%d", i),
				Data:  map[string]string{"i": fmt.Sprint(i)},
			})
			if err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		})
	}
	wg.Wait()

	res := <-waited
	if res.err != nil || len(res.msgs) < n {
		t.Fatalf("WaitFor: %d messages, %v", len(res.msgs), res.err)
	}
	names, tokens := map[string]bool{}, map[string]bool{}
	for _, m := range srv.Messages() {
		names[m.Name] = true
		tokens[m.Token] = true
		if m.Data["i"] != strings.TrimPrefix(m.Token, "tok-") {
			t.Errorf("message to %s carries data of another: %v", m.Token, m.Data)
		}
	}
	if len(names) != n || len(tokens) != n {
		t.Errorf("%d distinct IDs and %d distinct tokens, want %d", len(names), len(tokens), n)
	}

	// Waiting for more than will ever arrive times out and says so.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	msgs, err := srv.WaitFor(ctx, n+1)
	if !errors.Is(err, context.DeadlineExceeded) || len(msgs) != n {
		t.Errorf("WaitFor(n+1) = %d messages, %v; want %d and a deadline error", len(msgs), err, n)
	}
}

func TestResetAndMountedHandler(t *testing.T) {
	srv := fcmfake.New()
	defer srv.Close()
	mux := http.NewServeMux()
	mux.Handle("/fcm/", http.StripPrefix("/fcm", srv.Handler()))
	outer := httptest.NewServer(mux)
	defer outer.Close()
	c := newClient(t, outer.URL+"/fcm")
	send := func(tok string) error {
		_, err := c.Send(t.Context(), &messaging.Message{Token: tok})
		return err
	}

	if err := send("a"); err != nil {
		t.Fatalf("send through the mounted handler: %v", err)
	}
	srv.Unregister("dead")
	srv.FailNextWith(3, fcmfake.CodeInternal)
	if got := srv.Messages(); len(got) != 1 || got[0].Token != "a" {
		t.Fatalf("mounted handler recorded %+v", got)
	}

	srv.Reset()
	if len(srv.Messages()) != 0 || srv.Requests() != 0 {
		t.Fatalf("Reset left %d messages, %d requests", len(srv.Messages()), srv.Requests())
	}
	if err := send("dead"); err != nil {
		t.Errorf("send after Reset (token and failures should be forgotten): %v", err)
	}
}
