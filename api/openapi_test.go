package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/city-eyes/cityeyes/storage"
)

// specPath is openapi.yaml as seen from the package directory, where `go test` runs.
// (go:embed cannot reach a parent directory, so the tests read it from disk.)
const specPath = "../openapi.yaml"

// specValidator checks requests and responses against openapi.yaml.
type specValidator struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	specOnce sync.Once
	theSpec  *specValidator
	specErr  error
)

// loadSpec returns the validator for openapi.yaml, loading and validating the document once
// per test binary.
func loadSpec(t testing.TB) *specValidator {
	t.Helper()
	specOnce.Do(func() { theSpec, specErr = newSpecValidator() })
	if specErr != nil {
		t.Fatalf("openapi.yaml: %v", specErr)
	}
	return theSpec
}

func newSpecValidator() (*specValidator, error) {
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromFile(specPath)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("invalid: %w", err)
	}
	// The document's server is http://127.0.0.1:8080, but tests send requests to whatever
	// host httptest or app.Test put in the URL ("example.com"). Without servers, the legacy
	// router matches on the path alone, for any host and scheme. (It is the legacy router
	// because gorillamux needs github.com/gorilla/mux, which go.mod does not list.)
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	// The spec's ids are UUIDs and its photos JPEG or PNG; kin-openapi checks neither by
	// default. These registrations are global, which is fine in a test binary. Any UUID
	// version passes (kin-openapi's own pattern stops at version 5, and ids may become v7).
	openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(
		`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`))
	openapi3filter.RegisterBodyDecoder("image/jpeg", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("image/png", openapi3filter.FileBodyDecoder)
	return &specValidator{doc: doc, router: router}, nil
}

// acceptAnyBearer stands in for authentication: the spec only says which operations need a
// bearer token, and tokens themselves are tested elsewhere. A request without one fails
// validation of a secured operation, which checkExchange excuses only when the API refused it.
func acceptAnyBearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecuritySchemeName != "bearerAuth" {
		return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
	}
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); !ok || tok == "" {
		return errors.New("no bearer token")
	}
	return nil
}

// checkExchange validates one request and its response against the spec and fails t when
// either does not conform, or when the route, method or status is not described there.
// reqBody is the body the request was sent with (nil for none): the request's own Body has
// usually been read by then. respBody is the response's body as read.
//
// What is checked:
//   - the path and method are an operation of the spec (an undescribed route fails, so do
//     not pass exchanges with deliberately unknown routes; HEAD, which Fiber answers for
//     every GET, is not described either);
//   - the request conforms (parameters, headers, security, body) unless the API refused it
//     with a 4xx: such a request may be malformed on purpose (a missing Idempotency-Key, bad
//     JSON, no token), so then only the response is checked. A non-conforming request that
//     got a 2xx (the spec is stricter than the API) or a 5xx (the API should have refused
//     it) fails;
//   - the response's status is one the operation lists, its headers (Location, Retry-After,
//     ...) are there, and its body matches the schema of its content type, problem+json
//     included.
//
// Multipart request bodies are not validated (ExcludeRequestBody): their `attr.<code>`
// fields and binary photo parts are beyond what kin-openapi's multipart decoder checks
// usefully. The multipart media type itself is still required to be one the operation
// declares.
func (v *specValidator) checkExchange(t testing.TB, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	t.Helper()
	ctx := context.Background()
	fail := func(what string, err error) {
		t.Helper()
		body := respBody
		if len(body) > 500 {
			body = body[:500]
		}
		t.Errorf("openapi.yaml: %s %s -> %d: %s: %v\nresponse body: %s", req.Method, req.URL.RequestURI(), resp.StatusCode, what, err, body)
	}

	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	r.ContentLength = int64(len(reqBody))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
	// /files/{key}: the key of a signed link has slashes, which a {key} path parameter never
	// matches. The router matches on URL.Path, so escape them there: the key becomes one
	// segment.
	if key, ok := strings.CutPrefix(r.URL.Path, "/files/"); ok {
		u := *r.URL
		u.Path, u.RawPath = "/files/"+url.PathEscape(key), ""
		r.URL = &u
	}

	route, pathParams, err := v.router.FindRoute(r)
	if err != nil {
		fail("route not described", err)
		return
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    acceptAnyBearer,
		IncludeResponseStatus: true, // a status the operation does not list is a failure
		MultiError:            true,
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "multipart/form-data" {
		opts.ExcludeRequestBody = true
		if rb := route.Operation.RequestBody; rb == nil || rb.Value.Content.Get(mt) == nil {
			fail("request", fmt.Errorf("the operation takes no %s body", mt))
		}
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: pathParams, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && (resp.StatusCode < 400 || resp.StatusCode >= 500) {
		fail("request does not conform (and the API did not refuse it with a 4xx)", err)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(respBody)),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		fail("response does not conform", err)
	}
}

// fiberParam matches a Fiber route parameter (":id").
var fiberParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// specRoute turns a Fiber route path into the spec's form: ":id" becomes "{id}", and the
// wildcard of /files/* (a key with slashes) becomes "{key}".
func specRoute(path string) string {
	path = fiberParam.ReplaceAllString(path, "{$1}")
	if p, ok := strings.CutSuffix(path, "/files/*"); ok {
		path = p + "/files/{key}"
	}
	return path
}

// TestOpenAPIDescribesEveryRoute keeps openapi.yaml and routes() in step: every registered
// route is described, and every described operation is a registered route.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	v := loadSpec(t)
	files, err := storage.NewLocal(t.TempDir(), "http://x", []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	// Only routes are registered; no handler runs, so no database is needed.
	app := New(Config{Files: files})

	registered := map[string]bool{}
	for _, r := range app.GetRoutes(true) {
		// Fiber adds a HEAD route for every GET; the spec describes the GET.
		if r.Method == http.MethodHead || r.Method == "USE" || r.Path == "/" {
			continue
		}
		registered[r.Method+" "+specRoute(r.Path)] = true
	}
	described := map[string]bool{}
	for path, item := range v.doc.Paths.Map() {
		for method := range item.Operations() {
			described[method+" "+path] = true
		}
	}

	var missing, extra []string
	for k := range registered {
		if !described[k] {
			missing = append(missing, k)
		}
	}
	for k := range described {
		if !registered[k] {
			extra = append(extra, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	for _, k := range missing {
		t.Errorf("route %s is registered but openapi.yaml does not describe it", k)
	}
	for _, k := range extra {
		t.Errorf("openapi.yaml describes %s but no such route is registered", k)
	}
	if len(registered) == 0 {
		t.Fatal("no routes registered")
	}
}

// TestOpenAPISpecIsValid checks that openapi.yaml is a valid OpenAPI document, and that each
// operation is documented for the app developers who read it: a summary, a description, an
// explicit security requirement, and, where a token is needed, its 401.
func TestOpenAPISpecIsValid(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile(specPath)
	if err != nil {
		t.Fatalf("load %s: %v", specPath, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("%s is not valid: %v", specPath, err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if strings.TrimSpace(op.Summary) == "" || strings.TrimSpace(op.Description) == "" {
				t.Errorf("%s: needs a summary and a description", name)
			}
			if op.Security == nil {
				t.Errorf("%s: says nothing about security; use security: [] for a public route", name)
				continue
			}
			if len(*op.Security) > 0 && op.Responses.Status(http.StatusUnauthorized) == nil {
				t.Errorf("%s: needs a bearer token but does not describe 401", name)
			}
		}
	}
}
