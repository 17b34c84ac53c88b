package notifications

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"
)

// FCMConfig configures [NewFCM].
type FCMConfig struct {
	// CredentialsFile is the path of a Google service-account JSON key.
	// It may be empty only when Endpoint is set: the request is then sent
	// unauthenticated, which is what local fakes and staging proxies expect.
	CredentialsFile string
	// ProjectID is the Firebase project ID. Required.
	ProjectID string
	// Endpoint overrides the FCM base URL, e.g. "http://127.0.0.1:8080"
	// (scheme and host, optionally a path prefix, no "/v1"). Sends then go
	// to {Endpoint}/v1/projects/{ProjectID}/messages:send. Empty means
	// Google's production endpoint.
	Endpoint string
}

// FCM is a [Sender] backed by Firebase Cloud Messaging through
// firebase-admin's messaging client. It is safe for concurrent use.
//
// firebase-admin itself retries 503 answers and network failures up to four
// times with exponential backoff (about 7s in total) before Send returns, so
// an [ErrUnavailable] from FCM means those retries were already spent.
type FCM struct {
	client *messaging.Client
}

var _ Sender = (*FCM)(nil)

// NewFCM builds a Sender on firebase-admin's messaging client
// (firebase.google.com/go/v4/messaging).
func NewFCM(ctx context.Context, cfg FCMConfig) (*FCM, error) {
	if cfg.ProjectID == "" {
		return nil, errors.New("notifications: FCMConfig.ProjectID is required")
	}

	var opts []option.ClientOption
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Without "://" google.golang.org/api would treat the value as a
			// bare host and firebase-admin would build a URL with no scheme,
			// failing only at the first Send.
			return nil, fmt.Errorf("notifications: FCMConfig.Endpoint %q must be an http(s) base URL", cfg.Endpoint)
		}
		// google.golang.org/api passes an endpoint containing "://" through
		// verbatim, and firebase-admin appends "/projects/{id}/messages:send"
		// to it, so the API version has to be part of the endpoint, just as
		// in its default "https://fcm.googleapis.com/v1".
		opts = append(opts, option.WithEndpoint(strings.TrimRight(cfg.Endpoint, "/")+"/v1"))
	}

	switch {
	case cfg.CredentialsFile != "":
		// The typed variant refuses anything but a service-account key,
		// unlike the deprecated option.WithCredentialsFile.
		opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, cfg.CredentialsFile))
	case cfg.Endpoint != "":
		opts = append(opts, option.WithoutAuthentication())
	default:
		// Unauthenticated calls to Google's endpoint can only ever answer
		// 401; fail at startup rather than on every push.
		return nil, errors.New("notifications: FCMConfig.CredentialsFile is required when Endpoint is not set")
	}

	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: cfg.ProjectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("notifications: firebase app: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("notifications: firebase messaging client: %w", err)
	}
	return &FCM{client: client}, nil
}

// Send pushes m to its device. The returned ID is FCM's message resource
// name, "projects/{project}/messages/{id}". Errors wrap [ErrUnregistered] or
// [ErrUnavailable] when they apply, and always the underlying error.
func (f *FCM) Send(ctx context.Context, m Message) (string, error) {
	if m.Token == "" {
		return "", errors.New("notifications: message has no device token")
	}
	id, err := f.client.Send(ctx, fcmMessage(m))
	if err != nil {
		return "", classify(err)
	}
	return id, nil
}

// fcmMessage maps m onto the FCM message.
func fcmMessage(m Message) *messaging.Message {
	return &messaging.Message{
		Token:        m.Token,
		Data:         m.Data,
		Notification: &messaging.Notification{Title: m.Title, Body: m.Body},
		// Status changes are user-visible and time-relevant; normal
		// priority may be batched for a long time by Android's Doze.
		Android: &messaging.AndroidConfig{Priority: "high"},
		APNS: &messaging.APNSConfig{
			// apns-push-type is mandatory on recent iOS, and priority 10
			// (immediate) is the one allowed for alerts.
			Headers: map[string]string{
				"apns-push-type": "alert",
				"apns-priority":  "10",
			},
			Payload: &messaging.APNSPayload{
				Aps: &messaging.Aps{
					Alert: &messaging.ApsAlert{Title: m.Title, Body: m.Body},
					Sound: "default",
				},
			},
		},
	}
}

// classify wraps a firebase-admin send error in ErrUnregistered or
// ErrUnavailable where it applies, keeping the original error and message.
func classify(err error) error {
	switch {
	case messaging.IsUnregistered(err) || isInvalidToken(err):
		return fmt.Errorf("%w: %w", ErrUnregistered, err)
	case isTransient(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	default:
		return fmt.Errorf("notifications: fcm send: %w", err)
	}
}

// isTransient reports errors worth retrying later.
func isTransient(err error) bool {
	if messaging.IsUnavailable(err) || messaging.IsInternal(err) || messaging.IsQuotaExceeded(err) {
		return true
	}
	// The messaging.Is* helpers only look at the FcmError detail. Platform
	// codes cover answers without it (proxies, load balancers) and the
	// errors firebase-admin synthesizes for transport failures: connection
	// refused becomes UNAVAILABLE, timeouts DEADLINE_EXCEEDED, any other
	// network failure UNKNOWN without an HTTP response.
	if errorutils.IsUnavailable(err) || errorutils.IsInternal(err) ||
		errorutils.IsResourceExhausted(err) || errorutils.IsDeadlineExceeded(err) {
		return true
	}
	resp := errorutils.HTTPResponse(err)
	if resp == nil && errorutils.IsUnknown(err) {
		return true
	}
	if resp != nil && resp.StatusCode >= 500 {
		return true
	}
	// When the caller's deadline expires during firebase-admin's retry
	// backoff, the bare context error comes back. Cancellation is not
	// included: it is the caller's decision, not the service's state.
	return errors.Is(err, context.DeadlineExceeded)
}

// isInvalidToken reports an INVALID_ARGUMENT that is about the registration
// token. FCM uses INVALID_ARGUMENT for many request problems (oversized or
// reserved data, bad options); only the token case means the token should
// be dropped, and FCM says so only in the message text ("The registration
// token is not a valid FCM registration token") or a field violation on
// message.token.
func isInvalidToken(err error) bool {
	if !errorutils.IsInvalidArgument(err) {
		return false
	}
	resp := errorutils.HTTPResponse(err)
	if resp == nil {
		return false
	}
	// The body is an in-memory buffer shared by every HTTPResponse call on
	// this error; put it back so whoever inspects err later still sees it.
	body, rerr := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return false
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
			Details []struct {
				Type            string `json:"@type"`
				FieldViolations []struct {
					Field string `json:"field"`
				} `json:"fieldViolations"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return false
	}
	if strings.Contains(strings.ToLower(e.Error.Message), "registration token") {
		return true
	}
	for _, d := range e.Error.Details {
		if d.Type != "type.googleapis.com/google.rpc.BadRequest" {
			continue
		}
		for _, v := range d.FieldViolations {
			if v.Field == "message.token" {
				return true
			}
		}
	}
	return false
}
