// Package fcmfake is an in-process stand-in for the Firebase Cloud Messaging
// HTTP v1 API, for tests and local staging.
//
// It speaks the same wire format as fcm.googleapis.com: requests are
// POST /v1/projects/{project}/messages:send with a JSON body
// {"validate_only": bool, "message": {...}}, successes answer
// {"name": "projects/{project}/messages/{id}"}, and failures answer with
// Google's error envelope, including the
// type.googleapis.com/google.firebase.fcm.v1.FcmError detail that
// firebase-admin's messaging.IsUnregistered, IsUnavailable and friends look
// for. That lets tests drive the real firebase-admin client against it by
// passing [Server.URL] as the client's base endpoint.
//
// The fake is deliberately stricter than a mock: like FCM it rejects unknown
// fields (in the request, message and notification objects; platform
// overrides are only checked for well-formedness and android.priority),
// non-string data values, missing or multiple targets, reserved or
// oversized data and malformed tokens, so a client that builds bad requests
// fails its tests here rather than in production.
package fcmfake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
)

// FCM error codes (the errorCode of the FcmError detail) understood by
// [Server.FailNextWith].
const (
	CodeUnregistered        = "UNREGISTERED"
	CodeInvalidArgument     = "INVALID_ARGUMENT"
	CodeUnavailable         = "UNAVAILABLE"
	CodeInternal            = "INTERNAL"
	CodeQuotaExceeded       = "QUOTA_EXCEEDED"
	CodeSenderIDMismatch    = "SENDER_ID_MISMATCH"
	CodeThirdPartyAuthError = "THIRD_PARTY_AUTH_ERROR"
)

// DryRunMessageID is the message ID FCM answers for validate_only requests.
const DryRunMessageID = "fake_message_for_dry_run"

// maxBody bounds request bodies; real FCM payloads are a few KiB at most.
const maxBody = 1 << 20

// maxDataBytes is FCM's limit on the data payload (keys plus values).
const maxDataBytes = 4096

// Received is one message the fake accepted for delivery.
type Received struct {
	// Project is the project ID from the request path.
	Project string
	// Name is the resource name returned to the sender,
	// "projects/{project}/messages/{id}".
	Name string
	// Exactly one of Token, Topic and Condition is set.
	Token, Topic, Condition string
	// Title and Body come from message.notification.
	Title, Body string
	// Data is message.data; nil when the request had none.
	Data map[string]string
	// Android, APNs and Webpush are the platform overrides exactly as sent,
	// nil when absent, so tests can assert on whatever they care about.
	Android, APNs, Webpush json.RawMessage
	// Authorization is the request's Authorization header ("" when the
	// client sent none).
	Authorization string
}

// Server is a fake FCM endpoint. All methods are safe for concurrent use.
type Server struct {
	ts        *httptest.Server
	closeOnce sync.Once

	mu           sync.Mutex
	msgs         []Received
	unregistered map[string]bool
	failures     []string // FCM error codes to answer, front first
	requests     int
	seq          int
	// arrived is closed and replaced whenever a message is recorded, so
	// WaitFor can block without polling.
	arrived chan struct{}
}

// New starts a fake FCM server on a loopback port. Close it when done.
func New() *Server {
	s := &Server{
		unregistered: make(map[string]bool),
		arrived:      make(chan struct{}),
	}
	s.ts = httptest.NewServer(s.Handler())
	return s
}

// URL returns the server's base URL, e.g. "http://127.0.0.1:41234", without
// the "/v1" version prefix: it is what notifications.FCMConfig.Endpoint
// expects. It keeps returning the same URL after Close, which is how tests
// get a dead endpoint.
func (s *Server) URL() string { return s.ts.URL }

// Close shuts the server down and blocks until in-flight requests finish.
// It is safe to call more than once.
func (s *Server) Close() { s.closeOnce.Do(s.ts.Close) }

// Handler returns the HTTP handler that implements the fake, for mounting
// in another server (e.g. under http.StripPrefix). It records into s just
// like requests to [Server.URL] do.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Messages returns a copy of the messages accepted so far, in arrival order.
// Dry-run (validate_only) and failed sends are not included.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.copyLocked()
}

// WaitFor blocks until at least n messages have been accepted or ctx is
// done. It returns all messages accepted so far; on timeout the error wraps
// ctx.Err() and says how many arrived.
func (s *Server) WaitFor(ctx context.Context, n int) ([]Received, error) {
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			msgs := s.copyLocked()
			s.mu.Unlock()
			return msgs, nil
		}
		arrived := s.arrived
		s.mu.Unlock()

		select {
		case <-arrived:
		case <-ctx.Done():
			msgs := s.Messages()
			return msgs, fmt.Errorf("fcmfake: %d of %d messages arrived: %w", len(msgs), n, ctx.Err())
		}
	}
}

// Requests returns how many requests reached the send endpoint, including
// failed and dry-run ones. firebase-admin retries 503s and network errors on
// its own, so this is how a test sees those retries.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Unregister marks token as dead: later sends to it answer 404 NOT_FOUND
// with FCM error code UNREGISTERED, as FCM does after an app is uninstalled.
func (s *Server) Unregister(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unregistered[token] = true
}

// FailNext makes the next n send requests answer 503 UNAVAILABLE.
// Note that firebase-admin retries 503s up to 4 times, so a single
// firebase-admin Send only fails once n >= 5.
func (s *Server) FailNext(n int) { s.FailNextWith(n, CodeUnavailable) }

// FailNextWith makes the next n send requests fail with the FCM error code
// code (one of the Code constants), using the HTTP status and canonical
// status FCM pairs with it: UNAVAILABLE 503, INTERNAL 500, QUOTA_EXCEEDED
// 429 RESOURCE_EXHAUSTED, INVALID_ARGUMENT 400, UNREGISTERED 404 NOT_FOUND,
// SENDER_ID_MISMATCH 403 PERMISSION_DENIED, THIRD_PARTY_AUTH_ERROR 401
// UNAUTHENTICATED. Failures queue up behind any already pending.
// It panics on an unknown code, which is a bug in the calling test.
func (s *Server) FailNextWith(n int, code string) {
	if _, ok := fcmErrors[code]; !ok {
		panic(fmt.Sprintf("fcmfake: unknown FCM error code %q", code))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, code)
	}
}

// Reset forgets received messages, unregistered tokens, pending failures and
// the request count.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = nil
	s.unregistered = make(map[string]bool)
	s.failures = nil
	s.requests = 0
}

func (s *Server) copyLocked() []Received {
	out := make([]Received, len(s.msgs))
	for i, m := range s.msgs {
		// Deep-copy the mutable parts so callers cannot race with, or
		// corrupt, the fake's own record.
		m.Data = maps.Clone(m.Data)
		m.Android = slices.Clone(m.Android)
		m.APNs = slices.Clone(m.APNs)
		m.Webpush = slices.Clone(m.Webpush)
		out[i] = m
	}
	return out
}

// sendRequest mirrors the body of projects.messages.send. Google accepts
// both the proto field names and their lowerCamelCase JSON names.
type sendRequest struct {
	ValidateOnly      *bool        `json:"validate_only"`
	ValidateOnlyCamel *bool        `json:"validateOnly"`
	Message           *wireMessage `json:"message"`
}

type wireMessage struct {
	Name         string            `json:"name"`
	Token        string            `json:"token"`
	Topic        string            `json:"topic"`
	Condition    string            `json:"condition"`
	Notification *wireNotification `json:"notification"`
	Data         map[string]string `json:"data"`
	Android      json.RawMessage   `json:"android"`
	APNs         json.RawMessage   `json:"apns"`
	Webpush      json.RawMessage   `json:"webpush"`
	FCMOptions   json.RawMessage   `json:"fcm_options"`
	FCMOptionsC  json.RawMessage   `json:"fcmOptions"`
}

type wireNotification struct {
	Title string `json:"title"`
	Body  string `json:"body"`
	Image string `json:"image"`
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	project, ok := sendPath(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, "NOT_FOUND",
			fmt.Sprintf("The requested URL %s was not found on this server.", r.URL.Path), nil)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "INVALID_ARGUMENT",
			fmt.Sprintf("Method %s is not allowed; use POST.", r.Method), nil)
		return
	}

	s.mu.Lock()
	s.requests++
	var fail string
	if len(s.failures) > 0 {
		fail, s.failures = s.failures[0], s.failures[1:]
	}
	s.mu.Unlock()
	// Injected failures win over everything else: a real outage does not
	// look at the payload either.
	if fail != "" {
		writeFCMError(w, fail)
		return
	}

	req, msg := decode(r)
	if msg != "" {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", msg,
			[]any{badRequest("message", msg)})
		return
	}
	m := req.Message
	if problem := validate(m); problem != "" {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", problem,
			[]any{fcmError(CodeInvalidArgument)})
		return
	}

	dryRun := (req.ValidateOnly != nil && *req.ValidateOnly) ||
		(req.ValidateOnlyCamel != nil && *req.ValidateOnlyCamel)

	s.mu.Lock()
	if m.Token != "" && s.unregistered[m.Token] {
		s.mu.Unlock()
		writeFCMError(w, CodeUnregistered)
		return
	}
	if dryRun {
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]string{
			"name": "projects/" + project + "/messages/" + DryRunMessageID,
		})
		return
	}
	s.seq++
	name := fmt.Sprintf("projects/%s/messages/0:%016d%%fake", project, s.seq)
	rec := Received{
		Project:       project,
		Name:          name,
		Token:         m.Token,
		Topic:         m.Topic,
		Condition:     m.Condition,
		Data:          m.Data,
		Android:       m.Android,
		APNs:          m.APNs,
		Webpush:       m.Webpush,
		Authorization: r.Header.Get("Authorization"),
	}
	if m.Notification != nil {
		rec.Title, rec.Body = m.Notification.Title, m.Notification.Body
	}
	s.msgs = append(s.msgs, rec)
	close(s.arrived)
	s.arrived = make(chan struct{})
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, map[string]string{"name": name})
}

// sendPath extracts {project} from /v1/projects/{project}/messages:send.
func sendPath(p string) (project string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/v1/projects/")
	if !ok {
		return "", false
	}
	project, ok = strings.CutSuffix(rest, "/messages:send")
	if !ok || project == "" || strings.Contains(project, "/") {
		return "", false
	}
	return project, true
}

// decode parses the request body strictly. A non-empty msg describes why
// it is malformed, in the spirit of Google's "Invalid JSON payload" errors.
func decode(r *http.Request) (req sendRequest, msg string) {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, "Invalid JSON payload received. " + err.Error()
	}
	if dec.More() {
		return req, "Invalid JSON payload received. Unexpected data after the request object."
	}
	if req.Message == nil {
		return req, "Request is missing required field: message."
	}
	return req, ""
}

// validate applies the checks FCM makes on a message. It returns a
// description of the problem, or "" when the message is acceptable.
func validate(m *wireMessage) string {
	targets := 0
	for _, t := range []string{m.Token, m.Topic, m.Condition} {
		if t != "" {
			targets++
		}
	}
	if targets != 1 {
		return "Exactly one of token, topic or condition must be specified."
	}
	if m.Token != "" && !validToken(m.Token) {
		// Verbatim FCM text: clients match on "registration token" to tell
		// a dead token apart from other INVALID_ARGUMENT causes.
		return "The registration token is not a valid FCM registration token"
	}
	size := 0
	for k, v := range m.Data {
		if reservedDataKey(k) {
			return fmt.Sprintf("Invalid data payload key: %s", k)
		}
		size += len(k) + len(v)
	}
	if size > maxDataBytes {
		return "Message is too big"
	}
	if len(m.Android) > 0 {
		var a struct {
			Priority string `json:"priority"`
		}
		if err := json.Unmarshal(m.Android, &a); err != nil {
			return "Invalid JSON payload received. android: " + err.Error()
		}
		switch strings.ToUpper(a.Priority) {
		case "", "NORMAL", "HIGH":
		default:
			return fmt.Sprintf("Invalid value at 'message.android.priority' (%s)", a.Priority)
		}
	}
	if len(m.APNs) > 0 {
		var a struct {
			Headers map[string]string `json:"headers"`
			Payload map[string]any    `json:"payload"`
		}
		if err := json.Unmarshal(m.APNs, &a); err != nil {
			return "Invalid JSON payload received. apns: " + err.Error()
		}
	}
	return ""
}

// validToken accepts the alphabet real registration tokens use
// (base64url plus ':' and '.'), so garbage like "not a token!" is rejected
// the way FCM rejects it.
func validToken(t string) bool {
	for _, c := range t {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == ':', c == '.':
		default:
			return false
		}
	}
	return true
}

// reservedDataKey reports keys FCM keeps for itself.
func reservedDataKey(k string) bool {
	switch k {
	case "from", "notification", "message_type":
		return true
	}
	return strings.HasPrefix(k, "google.") || strings.HasPrefix(k, "gcm.")
}

// fcmErrors maps an FCM error code to the HTTP status, canonical status and
// message FCM answers with.
var fcmErrors = map[string]struct {
	httpStatus int
	status     string
	message    string
}{
	CodeUnregistered:        {http.StatusNotFound, "NOT_FOUND", "Requested entity was not found."},
	CodeInvalidArgument:     {http.StatusBadRequest, "INVALID_ARGUMENT", "Request contains an invalid argument."},
	CodeUnavailable:         {http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable."},
	CodeInternal:            {http.StatusInternalServerError, "INTERNAL", "Internal error encountered."},
	CodeQuotaExceeded:       {http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "Quota exceeded for sending messages."},
	CodeSenderIDMismatch:    {http.StatusForbidden, "PERMISSION_DENIED", "SenderId mismatch"},
	CodeThirdPartyAuthError: {http.StatusUnauthorized, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"},
}

func writeFCMError(w http.ResponseWriter, code string) {
	e := fcmErrors[code]
	writeError(w, e.httpStatus, e.status, e.message, []any{fcmError(code)})
}

func fcmError(code string) map[string]string {
	return map[string]string{
		"@type":     "type.googleapis.com/google.firebase.fcm.v1.FcmError",
		"errorCode": code,
	}
}

func badRequest(field, description string) map[string]any {
	return map[string]any{
		"@type": "type.googleapis.com/google.rpc.BadRequest",
		"fieldViolations": []map[string]string{
			{"field": field, "description": description},
		},
	}
}

// writeError writes Google's JSON error envelope.
func writeError(w http.ResponseWriter, httpStatus int, status, message string, details []any) {
	body := map[string]any{
		"code":    httpStatus,
		"message": message,
		"status":  status,
	}
	if len(details) > 0 {
		body["details"] = details
	}
	writeJSON(w, httpStatus, map[string]any{"error": body})
}

func writeJSON(w http.ResponseWriter, httpStatus int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own literal maps reach here, so this is a programming
		// error in the fake.
		panic("fcmfake: encoding response: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(b)
}
