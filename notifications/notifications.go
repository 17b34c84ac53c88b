// Package notifications pushes report status changes to citizens' phones.
//
// Every public status change of a report becomes one [Message] per device
// token of the reporter, sent through a [Sender]. The production Sender is
// [FCM], built on firebase-admin's messaging client; tests point it at the
// fake server in package fcmfake. [Text] renders the localized title and
// body of such a push.
//
// Send errors are classified so callers know what to do next:
// [ErrUnregistered] means the device token is dead and must be dropped,
// [ErrUnavailable] means the push may succeed later and should be retried.
// Anything else is a permanent problem with the message or configuration;
// retrying it unchanged will not help.
package notifications

import (
	"context"
	"errors"
)

// Message is one push to one device.
type Message struct {
	// Token is the FCM registration token of the device.
	Token string
	// Title and Body are the visible notification text, see [Text].
	Title, Body string
	// Data travels to the app alongside the notification, e.g. report_id,
	// status, event_id, so it can open the right screen and deduplicate.
	Data map[string]string
}

// ErrUnregistered reports that the device token is dead: FCM answered
// UNREGISTERED, or INVALID_ARGUMENT about the registration token. The caller
// should delete the token; retrying can never succeed.
var ErrUnregistered = errors.New("notifications: device token is not registered")

// ErrUnavailable reports a transient failure (quota, FCM 5xx, network or
// timeout). The caller should retry later.
var ErrUnavailable = errors.New("notifications: push service unavailable")

// Sender sends one push.
type Sender interface {
	// Send delivers m and returns the ID the push service assigned to it.
	// Errors wrap ErrUnregistered or ErrUnavailable where they apply.
	Send(ctx context.Context, m Message) (messageID string, err error)
}
