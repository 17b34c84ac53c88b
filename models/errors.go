package models

import (
	"errors"
	"fmt"
)

// The kinds of error the data layer reports. The API maps each to one HTTP status; anything
// else is an internal error whose text is logged and never shown.
var (
	// ErrMalformed: the request cannot be read at all (bad JSON, bad multipart, not a number).
	ErrMalformed = errors.New("malformed request")
	// ErrInvalid: the request reads, but its content is not acceptable (unknown category,
	// point outside every city, text too long).
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: no such thing, or not one the caller may know of.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request disagrees with the current state (stale version, action not
	// allowed in this status, idempotency key reused with another body).
	ErrConflict = errors.New("conflict")
	// ErrForbidden: the caller is known but may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrUnauthorized: the caller is not known (no token, bad token, wrong password).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrTooLarge: a body or a photo is over its limit.
	ErrTooLarge = errors.New("too large")
	// ErrUnsupportedMedia: a photo whose bytes are not an accepted image type.
	ErrUnsupportedMedia = errors.New("unsupported media type")
	// ErrRateLimited: the caller sent too much too fast; the client should slow down.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: a dependency is down; the client should retry later.
	ErrUnavailable = errors.New("service unavailable")
)

// Problem is an error whose detail may be shown to the client. Type is a stable, short
// identifier apps can switch on (it becomes the problem+json "type"); Kind is one of the
// error kinds above.
type Problem struct {
	Kind   error
	Type   string
	Detail string
}

func (p *Problem) Error() string { return p.Detail }

// Unwrap lets errors.Is match the problem's kind.
func (p *Problem) Unwrap() error { return p.Kind }

// Problemf builds a Problem of the given kind and type with a formatted detail.
func Problemf(kind error, typ, format string, args ...any) error {
	return &Problem{Kind: kind, Type: typ, Detail: fmt.Sprintf(format, args...)}
}
