package api

// Open311 GeoReport v2 under /open311/v2 (docs/open311.md): the specification's resources
// and mySociety's servicerequestupdates, each as {resource}.xml and {resource}.json, for the
// 311 apps and city systems that already speak it (FixMyStreet among them).
//
// These routes are not the native API: they take form parameters, answer in XML or JSON,
// and every error is the specification's error body (errors/error{code, description}) with
// 400, 403 or 404, never problem+json. Handlers return errors like every other handler;
// open311Errors is the one place they become that body.

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
)

// open311Prefix is the endpoint: the URL a client is configured with.
const open311Prefix = "/open311/v2"

// The specification's limits, and the bounds of what a client may send.
const (
	open311Span        = 90 * 24 * time.Hour // the default and longest span of a list
	open311PageSize    = 1000                // the default and largest page
	open311MaxIDs      = 1000                // service_request_ids in one GET requests
	open311MaxText     = 4000                // characters of a description
	open311FormBytes   = 256 << 10           // an url-encoded body
	open311FieldBytes  = 64 << 10            // one part of a multipart body
	open311MaxFields   = 200                 // parts of a multipart body
	open311MaxNameLen  = 200                 // characters of a name, a phone, an id of the client's
	open311MaxURLBytes = 2048                // a media_url
)

// open311Resource is one resource of the endpoint: its method, its path below the endpoint
// (":name" segments are parameters) and its handler. Each is served at path + ".{format}".
type open311Resource struct {
	method, path string
	handle       fiber.Handler
}

// open311Resources is the table of contents of the Open311 endpoint.
func (s *Server) open311Resources() []open311Resource {
	return []open311Resource{
		{fiber.MethodGet, "/discovery", s.open311Discovery},
		{fiber.MethodGet, "/services", s.open311Services},
		{fiber.MethodGet, "/services/:service_code", s.open311ServiceDefinition},
		{fiber.MethodGet, "/requests", s.open311ListRequests},
		{fiber.MethodPost, "/requests", s.open311CreateRequest},
		{fiber.MethodGet, "/requests/:service_request_id", s.open311GetRequest},
		{fiber.MethodGet, "/tokens/:token", s.open311Token},
		{fiber.MethodGet, "/servicerequestupdates", s.open311ListUpdates},
		{fiber.MethodPost, "/servicerequestupdates", s.open311PostUpdate},
	}
}

// open311Routes registers the Open311 endpoint and the administrators' API for its keys.
// Paths under the endpoint that no resource matches are answered by open311Fallback, not by
// the native API's catch-all, so an Open311 client always gets an Open311 error body.
func (s *Server) open311Routes(app *fiber.App) {
	admin := s.auth(models.RoleAdmin)
	app.Get("/v1/admin/open311-keys", admin, s.listOpen311Keys)
	app.Post("/v1/admin/open311-keys", admin, s.createOpen311Key)
	app.Delete("/v1/admin/open311-keys/:id", admin, s.deleteOpen311Key)

	g := app.Group(open311Prefix, s.open311Errors)
	for _, r := range s.open311Resources() {
		g.Add(r.method, r.path+".:format", r.handle)
	}
	g.Use(s.open311Fallback)
}

// open311Fallback serves what real clients send that the routes above do not match: the
// endpoint with a trailing slash joined to "/resource" ("/open311/v2//services.xml"), a
// resource without its format (the format is then the one the Accept header asks for, XML
// by default), and the endpoint itself (discovery, as the Service Discovery page suggests).
// Anything else is a 404 in the Open311 error body.
func (s *Server) open311Fallback(c *fiber.Ctx) error {
	var segs []string
	for _, seg := range strings.Split(strings.TrimPrefix(c.Path(), open311Prefix), "/") {
		if seg != "" {
			segs = append(segs, seg)
		}
	}
	if len(segs) == 0 {
		segs = []string{"discovery"}
	}
	last := len(segs) - 1
	name, format, hasFormat := cutExtension(segs[last])
	bare := slices.Clone(segs)
	bare[last] = name
	method := c.Method()
	if method == fiber.MethodHead {
		method = fiber.MethodGet
	}
	var allowed []string
	for _, r := range s.open311Resources() {
		if !matchResource(r.path, bare) {
			continue
		}
		if r.method != method {
			allowed = append(allowed, r.method)
			continue
		}
		if !hasFormat {
			format = negotiateFormat(c.Get(fiber.HeaderAccept))
		}
		if format != "xml" && format != "json" {
			return open311NotFound("format %q is not served: ask for %s.xml or %s.json", format, name, name)
		}
		segs[last] = name + "." + format
		c.Path(open311Prefix + "/" + strings.Join(segs, "/"))
		return r.handle(c)
	}
	if len(allowed) > 0 {
		return open311Invalid("/%s takes %s, not %s", strings.Join(bare, "/"), strings.Join(allowed, " or "), c.Method())
	}
	return open311NotFound("there is no Open311 resource %q; the resources are discovery, services, services/{service_code}, requests, requests/{service_request_id}, tokens/{token} and servicerequestupdates, each as .xml or .json", strings.Join(bare, "/"))
}

// matchResource reports whether path segments (without the format) name a resource path.
func matchResource(path string, segs []string) bool {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) != len(segs) {
		return false
	}
	for i, p := range parts {
		if !strings.HasPrefix(p, ":") && !strings.EqualFold(p, segs[i]) {
			return false
		}
	}
	return true
}

// cutExtension splits "name.ext" at its last dot.
func cutExtension(seg string) (name, ext string, ok bool) {
	i := strings.LastIndexByte(seg, '.')
	if i < 0 {
		return seg, "", false
	}
	return seg[:i], strings.ToLower(seg[i+1:]), true
}

// negotiateFormat picks XML, the format the specification requires, unless the client asks
// for JSON and not for XML.
func negotiateFormat(accept string) string {
	accept = strings.ToLower(accept)
	if strings.Contains(accept, "json") && !strings.Contains(accept, "xml") {
		return "json"
	}
	return "xml"
}

// open311Format is the format the path asks for: "xml" or "json". The request's own error
// body is written in it too (XML when the path names neither).
func open311Format(c *fiber.Ctx) (string, error) {
	_, ext, _ := cutExtension(lastSegment(c.Path()))
	switch ext {
	case "xml", "json":
		return ext, nil
	}
	return "", open311NotFound("format %q is not served: end the resource with .xml or .json", ext)
}

// open311PathParam is the resource's own parameter: the last segment of the path without
// its format, unescaped (a service code or a request id may contain dots).
func open311PathParam(c *fiber.Ctx) string {
	name, _, _ := cutExtension(lastSegment(c.Path()))
	if v, err := url.PathUnescape(name); err == nil {
		return v
	}
	return name
}

func lastSegment(path string) string {
	path = strings.TrimRight(path, "/")
	return path[strings.LastIndexByte(path, '/')+1:]
}

func open311NotFound(format string, args ...any) error {
	return models.Problemf(models.ErrNotFound, "not-found", format, args...)
}

func open311Invalid(format string, args ...any) error {
	return models.Problemf(models.ErrInvalid, "invalid", format, args...)
}

func open311Forbidden(format string, args ...any) error {
	return models.Problemf(models.ErrForbidden, "forbidden", format, args...)
}

// Open311Error is one entry of the specification's error body.
type Open311Error struct {
	XMLName     xml.Name `xml:"error" json:"-"`
	Code        int      `xml:"code" json:"code"`
	Description string   `xml:"description" json:"description"`
}

// open311Errors turns every error of the endpoint into the specification's error body, in
// the format the path asks for: 404 for what does not exist (a jurisdiction, a service code,
// a request, a resource), 403 for a missing or wrong api_key, and 400 for everything else,
// as the specification says ("basically 400 for any other error"), a failure of ours
// included: that one's detail is logged and not shown.
func (s *Server) open311Errors(c *fiber.Ctx) error {
	err := open311TextOnly(c)
	if err == nil {
		err = c.Next()
	}
	if err == nil {
		return nil
	}
	status, detail := http.StatusBadRequest, "something went wrong on our side; it has been logged. Try again later."
	var fe *fiber.Error
	switch {
	case errors.Is(err, models.ErrNotFound):
		status, detail = http.StatusNotFound, problemDetail(err, "not found")
	case errors.Is(err, models.ErrForbidden), errors.Is(err, models.ErrUnauthorized):
		status, detail = http.StatusForbidden, problemDetail(err, "a valid api_key is required")
	case errors.Is(err, models.ErrUnavailable), errors.Is(err, storage.ErrUnavailable):
		// A dependency is away: the specification's "eg CRM is down". The cause stays in the log.
		c.Set(fiber.HeaderRetryAfter, "5")
		detail = "a service this request needs is briefly unavailable; retry in a few seconds"
		s.log.Warn("open311: unavailable", "path", c.Path(), "err", err)
	case errors.Is(err, models.ErrInvalid), errors.Is(err, models.ErrMalformed), errors.Is(err, models.ErrConflict),
		errors.Is(err, models.ErrTooLarge), errors.Is(err, models.ErrUnsupportedMedia):
		detail = problemDetail(err, err.Error())
	case errors.As(err, &fe):
		detail = fe.Message
		switch fe.Code {
		case http.StatusNotFound, http.StatusForbidden:
			status = fe.Code
		case http.StatusRequestEntityTooLarge:
			detail = "the request body is larger than this server accepts"
		}
	default:
		s.log.Error("open311: internal error", "method", c.Method(), "path", c.Path(), "err", err)
	}
	discardBody(c)
	format := "xml"
	if _, ext, _ := cutExtension(lastSegment(c.Path())); ext == "json" {
		format = "json"
	}
	return writeOpen311List(c, status, format, "errors", []Open311Error{{Code: status, Description: detail}})
}

// open311TextOnly refuses a path or query parameter that is not text a database can store
// (storableText), before it is looked up: PostgreSQL would fail on it.
func open311TextOnly(c *fiber.Ctx) error {
	if p, err := url.PathUnescape(c.Path()); err == nil && !storableText(p) {
		return open311Invalid("the path is not valid UTF-8 text, or has a NUL character")
	}
	var err error
	c.Request().URI().QueryArgs().VisitAll(func(k, v []byte) {
		if err == nil && (!storableText(string(k)) || !storableText(string(v))) {
			err = open311Invalid("parameter %q is not valid UTF-8 text, or has a NUL character", k)
		}
	})
	return err
}

// problemDetail is the detail of a Problem, meant for the client, or fallback.
func problemDetail(err error, fallback string) string {
	var mp *models.Problem
	if errors.As(err, &mp) {
		return mp.Detail
	}
	return fallback
}

// o311List is a list in both formats: an element of its items in XML (written even when the
// list is empty), a plain array in JSON, as the Spark convention the specification follows
// maps one to the other. Items name their own element (their XMLName).
type o311List[T any] struct {
	XMLName xml.Name
	Items   []T
}

// MarshalJSON writes the items alone: lists are arrays in JSON, empty ones too.
func (l o311List[T]) MarshalJSON() ([]byte, error) {
	if l.Items == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(l.Items)
}

// writeOpen311List writes a top-level list: root is its XML element (services,
// service_requests, ...), a bare array in JSON.
func writeOpen311List[T any](c *fiber.Ctx, status int, format, root string, items []T) error {
	return writeOpen311(c, status, format, o311List[T]{XMLName: xml.Name{Local: root}, Items: items})
}

// writeOpen311 writes v as UTF-8 XML, with the declaration the specification requires, or
// as JSON.
func writeOpen311(c *fiber.Ctx, status int, format string, v any) error {
	var (
		body []byte
		err  error
	)
	if format == "json" {
		body, err = json.Marshal(v)
		c.Set(fiber.HeaderContentType, "application/json; charset=utf-8")
	} else {
		body, err = xml.MarshalIndent(v, "", "  ")
		body = append([]byte(xml.Header), body...)
		c.Set(fiber.HeaderContentType, "text/xml; charset=utf-8")
	}
	if err != nil {
		return fmt.Errorf("open311: encode %s: %w", format, err)
	}
	return c.Status(status).Send(body)
}

// open311Params are a request's parameters: the query string's, and for a POST the body's
// before them. A parameter sent empty is absent, as the specification's "Optional Arguments"
// asks.
type open311Params map[string][]string

// get returns the first non-empty value of a parameter, trimmed.
func (p open311Params) get(name string) string {
	for _, v := range p[name] {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// list returns a parameter's values, each split at commas ("comma delimited", and also
// "declared multiple times"), without empty ones.
func (p open311Params) list(name string) []string {
	var out []string
	for _, v := range p[name] {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

func (p open311Params) add(name, value string) { p[name] = append(p[name], value) }

// queryParams reads the query string.
func queryParams(c *fiber.Ctx) open311Params {
	p := open311Params{}
	c.Request().URI().QueryArgs().VisitAll(func(k, v []byte) { p.add(string(k), string(v)) })
	return p
}

// open311Key returns the client's key, or a 403 saying what is wrong with it.
func (s *Server) open311Key(c *fiber.Ctx, p open311Params) (*models.Open311Key, error) {
	raw := p.get("api_key")
	if raw == "" {
		return nil, open311Forbidden("api_key is required: ask the city's administrator for one")
	}
	k, err := s.db.FindAPIKey(c.UserContext(), raw)
	if errors.Is(err, models.ErrNotFound) {
		return nil, open311Forbidden("api_key is not valid: check it, or ask the city's administrator for a new one")
	}
	return k, err
}

// open311City works out the city a request is about: the jurisdiction_id it names, else the
// city of its api_key (when it has a valid one), else the only city there is. A named city
// must exist (404); with several cities and nothing to choose by, jurisdiction_id is
// required (400).
func (s *Server) open311City(c *fiber.Ctx, p open311Params, key *models.Open311Key) (*models.Jurisdiction, error) {
	ctx := c.UserContext()
	if id := p.get("jurisdiction_id"); id != "" {
		j, err := s.db.Jurisdiction(ctx, id)
		if errors.Is(err, models.ErrNotFound) {
			return nil, open311NotFound("jurisdiction_id %q was not found", id)
		}
		return j, err
	}
	if key == nil && p.get("api_key") != "" {
		if k, err := s.db.FindAPIKey(ctx, p.get("api_key")); err == nil {
			key = k
		}
	}
	if key != nil {
		return s.db.Jurisdiction(ctx, key.JurisdictionID)
	}
	js, err := s.db.Jurisdictions(ctx)
	if err != nil {
		return nil, err
	}
	switch len(js) {
	case 0:
		return nil, open311NotFound("this server serves no jurisdiction yet")
	case 1:
		return &js[0], nil
	}
	ids := make([]string, len(js))
	for i, j := range js {
		ids[i] = j.ID
	}
	return nil, open311Invalid("jurisdiction_id was not provided: this endpoint serves several jurisdictions (%s)", strings.Join(ids, ", "))
}

// open311Location is a city's time zone: Open311 dates are written in the city's local time
// with its offset.
func open311Location(j *models.Jurisdiction) *time.Location {
	if loc, err := time.LoadLocation(j.Timezone); err == nil {
		return loc
	}
	return time.UTC
}

// open311Time writes a time as the specification's w3 date-time, with the zone's offset.
func open311Time(t time.Time, loc *time.Location) string {
	return t.In(loc).Truncate(time.Second).Format(time.RFC3339)
}

// parseOpen311Time reads a w3 date-time. The specification requires a zone; a date or time
// without one is read in the city's time zone, and a "+" that the query string turned into a
// space (an unescaped "+01:00") is read as the "+" it was.
func parseOpen311Time(name, s string, loc *time.Location) (time.Time, error) {
	if i := strings.LastIndexByte(s, ' '); i > 10 {
		s = s[:i] + "+" + s[i+1:]
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, open311Invalid("%s %q is not a w3 date-time such as 2026-01-31T14:00:00Z", name, s)
}

// open311Window reads start_date and end_date: by default the last 90 days; one of them
// alone spans 90 days from or to it; together they may not run backwards nor span more.
func open311Window(p open311Params, now time.Time, loc *time.Location) (from, to time.Time, err error) {
	start, end := p.get("start_date"), p.get("end_date")
	if start != "" {
		if from, err = parseOpen311Time("start_date", start, loc); err != nil {
			return
		}
	}
	if end != "" {
		if to, err = parseOpen311Time("end_date", end, loc); err != nil {
			return
		}
	}
	switch {
	case start == "" && end == "":
		to = now
		from = to.Add(-open311Span)
	case start == "":
		from = to.Add(-open311Span)
	case end == "":
		to = from.Add(open311Span)
	}
	if from.After(to) {
		return from, to, open311Invalid("start_date %s is after end_date %s", start, end)
	}
	if to.Sub(from) > open311Span {
		return from, to, open311Invalid("start_date to end_date spans %.0f days; the longest span is 90 days", to.Sub(from).Hours()/24)
	}
	return from, to, nil
}

// open311Page reads the page and page_size extension: pages of 1 to 1,000, 1,000 by default
// (the specification's limit), the first by default.
func open311Page(p open311Params) (offset, limit int, err error) {
	limit, page := open311PageSize, 1
	if v := p.get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > open311PageSize {
			return 0, 0, open311Invalid("page_size %q must be a whole number from 1 to %d", v, open311PageSize)
		}
		limit = n
	}
	if v := p.get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			return 0, 0, open311Invalid("page %q must be a whole number from 1", v)
		}
		page = n
	}
	return (page - 1) * limit, limit, nil
}
