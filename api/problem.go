package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
)

// Problem is an RFC 7807 problem detail, the body of every error response.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
}

// kinds maps each error kind of the data layer to its status and its default type.
var kinds = []struct {
	kind   error
	status int
	typ    string
}{
	{models.ErrMalformed, http.StatusBadRequest, "malformed-request"},
	{models.ErrInvalid, http.StatusUnprocessableEntity, "invalid-request"},
	{models.ErrNotFound, http.StatusNotFound, "not-found"},
	{models.ErrConflict, http.StatusConflict, "conflict"},
	{models.ErrForbidden, http.StatusForbidden, "forbidden"},
	{models.ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{models.ErrTooLarge, http.StatusRequestEntityTooLarge, "too-large"},
	{models.ErrUnsupportedMedia, http.StatusUnsupportedMediaType, "unsupported-media-type"},
	{models.ErrRateLimited, http.StatusTooManyRequests, "rate-limited"},
	{models.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
	{storage.ErrUnavailable, http.StatusServiceUnavailable, "storage-unavailable"},
}

// discardBody reads what is left of a refused request's streamed body, so the connection
// can carry the next request; past a bound it is cheaper to close the connection instead.
func discardBody(c *fiber.Ctx) {
	r := c.Context().RequestBodyStream()
	if r == nil {
		return
	}
	const bound = 4 << 20
	if n, _ := io.CopyN(io.Discard, r, bound); n == bound {
		c.Set(fiber.HeaderConnection, "close")
	}
}

// handleError is the one place errors become responses. Errors of a known kind show their
// detail; anything else is logged and answered with a 500 that shows nothing of it.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	p := s.problemOf(err)
	p.Instance = c.Path()
	if p.Status == http.StatusServiceUnavailable {
		// A dependency is away; the detail of why stays in the log.
		c.Set(fiber.HeaderRetryAfter, "5")
		s.log.WarnContext(c.UserContext(), "unavailable", "path", c.Path(), "err", err)
	}
	if p.Status == http.StatusInternalServerError {
		s.log.ErrorContext(c.UserContext(), "internal error", "method", c.Method(), "path", c.Path(), "err", err)
	}
	discardBody(c)
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return c.Status(p.Status).JSON(p, "application/problem+json")
}

// problemOf is the problem an error becomes.
func (s *Server) problemOf(err error) Problem {
	p := Problem{Status: http.StatusInternalServerError, Type: "internal",
		Detail: "something went wrong on our side; it has been logged. Try again later."}
	var (
		mp *models.Problem
		fe *fiber.Error
	)
	for _, k := range kinds {
		if errors.Is(err, k.kind) {
			p.Status, p.Type = k.status, k.typ
			p.Detail = err.Error()
			break
		}
	}
	switch {
	case errors.As(err, &mp):
		p.Detail = mp.Detail
		if mp.Type != "" {
			p.Type = mp.Type
		}
	case errors.As(err, &fe):
		p.Status, p.Type, p.Detail = fe.Code, "http-"+strconv.Itoa(fe.Code), fe.Message
		if fe.Code == http.StatusRequestEntityTooLarge {
			p.Type, p.Detail = "too-large", "the request body is larger than this server accepts"
		}
	}
	if p.Status == http.StatusServiceUnavailable {
		p.Detail = "a service this request needs is briefly unavailable; retry in a few seconds (a report with the same Idempotency-Key, so it is not filed twice)"
	}
	p.Title = http.StatusText(p.Status)
	p.Type = "urn:cityeyes:problem:" + p.Type
	return p
}
