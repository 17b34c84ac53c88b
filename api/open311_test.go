package api

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/city-eyes/cityeyes/internal/testenv"
	"github.com/city-eyes/cityeyes/models"
)

// testKey is the test city's Open311 key (testenv.CityYAML).
const testKey = "test-open311-key"

// o311 sends one Open311 request: form goes url-encoded in the body of a POST and in the
// query string of anything else.
func (h *harness) o311(method, path string, form url.Values, headers ...string) (*http.Response, []byte) {
	h.t.Helper()
	var (
		body  []byte
		ctype string
	)
	if method == http.MethodPost {
		body, ctype = []byte(form.Encode()), "application/x-www-form-urlencoded"
	} else if len(form) > 0 {
		path += "?" + form.Encode()
	}
	resp, data, _ := h.send(method, path, "", body, ctype, headers...)
	return resp, data
}

// o311Twins sends the same request for path.json and path.xml, checks both against the
// schema (the JSON by JSON Schema, the XML by carrying the same data as its JSON twin) and
// returns the status and the decoded JSON.
func (h *harness) o311Twins(method, path string, form url.Values, schema string) (int, any) {
	h.t.Helper()
	jresp, jbody := h.o311(method, path+".json", form)
	xresp, xbody := h.o311(method, path+".xml", form)
	if jresp.StatusCode != xresp.StatusCode {
		h.t.Fatalf("%s %s: json %d, xml %d\njson: %s\nxml: %s", method, path, jresp.StatusCode, xresp.StatusCode, jbody, xbody)
	}
	jv := checkOpen311JSON(h.t, jresp, jbody, schema)
	xv := checkOpen311XML(h.t, xresp, xbody)
	if err := sameOpen311Data(xv, jv, "$"); err != nil {
		h.t.Fatalf("%s %s: the XML does not carry the JSON's data: %v\njson: %s\nxml: %s", method, path, err, jbody, xbody)
	}
	return jresp.StatusCode, jv
}

// o311Create files a request through Open311 and returns its id.
func (h *harness) o311Create(form url.Values) string {
	h.t.Helper()
	resp, body := h.o311("POST", "/open311/v2/requests.json", form)
	var out []Open311Created
	if err := json.Unmarshal(body, &out); resp.StatusCode != 200 || err != nil || len(out) != 1 || out[0].ServiceRequestID == "" {
		h.t.Fatalf("POST requests: %d %s", resp.StatusCode, body)
	}
	return out[0].ServiceRequestID
}

// swapT makes the harness report to a subtest's t until the returned func is called.
func (h *harness) swapT(t *testing.T) func() {
	outer := h.t
	h.t = t
	return func() { h.t = outer }
}

// goodRequest is a valid Open311 request for a pothole in the west area, from a reporter who
// gives every detail; each pair of extra replaces or adds a parameter ("" removes it).
func goodRequest(extra ...string) url.Values {
	v := url.Values{"api_key": {testKey}, "service_code": {"pothole"}, "lat": {"0.5"}, "long": {"-0.5"},
		"attribute[depth]": {"deep"}, "attribute[width_cm]": {"35"}, "description": {"Deep hole by the bus stop"},
		"email": {"Rita.Reporter@Example.org"}, "first_name": {"Rita"}, "last_name": {"Reporter"}, "phone": {"+44 20 7946 0000"},
		"address_string": {"1 High Street"}, "device_id": {"device-rita"}, "account_id": {"acct-42"}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			v.Del(extra[i])
		} else {
			v.Set(extra[i], extra[i+1])
		}
	}
	return v
}

var (
	open311SchemasOnce sync.Once
	open311Schemas     map[string]*jsonschema.Schema
	open311SchemasErr  error
)

// open311Schema returns a compiled JSON Schema of testdata/open311 (draft 4, formats
// asserted).
func open311Schema(t testing.TB, name string) *jsonschema.Schema {
	t.Helper()
	open311SchemasOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft4)
		c.AssertFormat()
		open311Schemas = map[string]*jsonschema.Schema{}
		files, _ := filepath.Glob("testdata/open311/*.json")
		for _, f := range files {
			s, err := c.Compile(f)
			if err != nil {
				open311SchemasErr = fmt.Errorf("%s: %w", f, err)
				return
			}
			open311Schemas[strings.TrimSuffix(filepath.Base(f), ".json")] = s
		}
	})
	if open311SchemasErr != nil {
		t.Fatal(open311SchemasErr)
	}
	s, ok := open311Schemas[name]
	if !ok {
		t.Fatalf("no schema testdata/open311/%s.json", name)
	}
	return s
}

// checkOpen311JSON checks a JSON answer's type and body against a schema and decodes it.
func checkOpen311JSON(t testing.TB, resp *http.Response, body []byte, schema string) any {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("JSON content type %q: %s", ct, body)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	if err := open311Schema(t, schema).Validate(v); err != nil {
		t.Fatalf("does not match %s.json: %v\n%s", schema, err, body)
	}
	var out any
	_ = json.Unmarshal(body, &out)
	return out
}

// checkOpen311XML checks an XML answer's type and declaration and reads it the way the
// Spark convention maps it to JSON.
func checkOpen311XML(t testing.TB, resp *http.Response, body []byte) any {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "text/xml; charset=utf-8" {
		t.Fatalf("XML content type %q: %s", ct, body)
	}
	if !bytes.HasPrefix(body, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) {
		t.Fatalf("no XML declaration with the encoding: %.80s", body)
	}
	root, err := parseXMLTree(body)
	if err != nil {
		t.Fatalf("not XML: %v: %s", err, body)
	}
	return root.value()
}

// xmlNode is an element of an XML answer.
type xmlNode struct {
	name string
	kids []*xmlNode
	text string
}

func parseXMLTree(b []byte) (*xmlNode, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{name: tok.Name.Local}
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.kids = append(top.kids, n)
			} else if root == nil {
				root = n
			} else {
				return nil, fmt.Errorf("a second root element <%s>", n.name)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no root element")
	}
	return root, nil
}

// open311XMLLists are the elements that are lists: their children become a JSON array.
var open311XMLLists = map[string]bool{"services": true, "service_requests": true, "errors": true,
	"service_request_updates": true, "attributes": true, "values": true, "endpoints": true, "formats": true}

func (n *xmlNode) value() any {
	if open311XMLLists[n.name] {
		out := []any{}
		for _, k := range n.kids {
			out = append(out, k.value())
		}
		return out
	}
	if len(n.kids) > 0 {
		out := map[string]any{}
		for _, k := range n.kids {
			if _, dup := out[k.name]; dup {
				out[k.name+"(again)"] = k.value()
				continue
			}
			out[k.name] = k.value()
		}
		return out
	}
	return n.text
}

// sameOpen311Data compares an XML answer, read by value, with its JSON twin: the same
// fields, lists and values (XML's text against JSON's strings, numbers and booleans).
func sameOpen311Data(x, j any, at string) error {
	switch j := j.(type) {
	case map[string]any:
		xm, ok := x.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: JSON has an object, XML %T", at, x)
		}
		for k := range xm {
			if _, ok := j[k]; !ok {
				return fmt.Errorf("%s: XML has <%s>, JSON has no %q", at, k, k)
			}
		}
		for k, v := range j {
			if err := sameOpen311Data(xm[k], v, at+"."+k); err != nil {
				return err
			}
		}
	case []any:
		xs, ok := x.([]any)
		if !ok {
			return fmt.Errorf("%s: JSON has a list, XML %T", at, x)
		}
		if len(xs) != len(j) {
			return fmt.Errorf("%s: JSON has %d items, XML %d", at, len(j), len(xs))
		}
		for i := range j {
			if err := sameOpen311Data(xs[i], j[i], fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case string:
		if x != j {
			return fmt.Errorf("%s: JSON %q, XML %q", at, j, x)
		}
	case bool:
		if x != strconv.FormatBool(j) {
			return fmt.Errorf("%s: JSON %v, XML %q", at, j, x)
		}
	case float64:
		xs, _ := x.(string)
		if f, err := strconv.ParseFloat(xs, 64); err != nil || f != j {
			return fmt.Errorf("%s: JSON %v, XML %q", at, j, x)
		}
	default:
		return fmt.Errorf("%s: JSON %v (%T) has no XML form", at, j, j)
	}
	return nil
}

// o311Error checks an error answer in both formats and returns its description.
func (h *harness) o311Error(method, path string, form url.Values, status int) string {
	h.t.Helper()
	got, v := h.o311Twins(method, path, form, "errors")
	if got != status {
		h.t.Fatalf("%s %s: %d, want %d: %v", method, path, got, status, v)
	}
	errs := v.([]any)
	e := errs[0].(map[string]any)
	if int(e["code"].(float64)) != status {
		h.t.Fatalf("error code %v, want %d", e["code"], status)
	}
	return e["description"].(string)
}

// TestOpen311EveryResourceConforms asks every resource for both formats: each JSON answer
// matches its schema (the shared GeoReport v2 schemas where there are some), each XML answer
// is UTF-8 with its declaration and carries the same data as its JSON twin, and ids are
// strings and dates carry their zone.
func TestOpen311EveryResourceConforms(t *testing.T) {
	h := newHarness(t)
	id := h.o311Create(goodRequest())
	h.route(id)
	roads := h.staff("roads@test.example", "roads-pass")
	h.json("POST", "/v1/cases/"+id+"/actions", roads, ActionRequest{Action: "accept", Note: "We will fill it this week", Public: true})
	h.json("POST", "/v1/cases/"+id+"/actions", roads, ActionRequest{Action: "comment", Note: "Cones are out", Public: true})
	window := url.Values{"start_date": {h.now.Add(-time.Hour).Format(time.RFC3339)}, "end_date": {h.now.Add(time.Hour).Format(time.RFC3339)}}
	update := url.Values{"api_key": {testKey}, "service_request_id": {id}, "status": {"OPEN"}, "update_id": {"fms-1"},
		"description": {"Still there this morning"}, "updated_datetime": {h.now.Format(time.RFC3339)}, "email": {"neighbour@example.org"}}
	tests := []struct {
		name, method, path string
		form               url.Values
		schema             string
	}{
		{"discovery", "GET", "/open311/v2/discovery", nil, "discovery"},
		{"services", "GET", "/open311/v2/services", nil, "services"},
		{"service definition", "GET", "/open311/v2/services/pothole", nil, "service-definition"},
		{"service definition without questions", "GET", "/open311/v2/services/tree", nil, "service-definition"},
		{"requests", "GET", "/open311/v2/requests", nil, "requests"},
		{"requests by id", "GET", "/open311/v2/requests", url.Values{"service_request_id": {id}}, "requests"},
		{"request", "GET", "/open311/v2/requests/" + id, nil, "requests"},
		{"token", "GET", "/open311/v2/tokens/" + id, nil, "tokens"},
		{"post request", "POST", "/open311/v2/requests", goodRequest("description", "Another hole"), "request-created"},
		{"updates", "GET", "/open311/v2/servicerequestupdates", window, "updates"},
		{"post update", "POST", "/open311/v2/servicerequestupdates", update, "update-created"},
		{"error", "GET", "/open311/v2/services/dragon", nil, "errors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer h.swapT(t)()
			status, v := h.o311Twins(tt.method, tt.path, tt.form, tt.schema)
			want := 200
			if tt.schema == "errors" {
				want = 404
			}
			if status != want {
				t.Fatalf("status %d, want %d: %v", status, want, v)
			}
			if list, ok := v.([]any); ok && tt.schema != "errors" && len(list) == 0 {
				t.Fatalf("an empty list proves little: %v", v)
			}
		})
	}
	// The answers above are not vacuous: the request shows its case as it is.
	_, v := h.o311Twins("GET", "/open311/v2/requests/"+id, nil, "requests")
	r := v.([]any)[0].(map[string]any)
	want := map[string]any{"service_request_id": id, "status": "open", "service_code": "pothole", "service_name": "Pothole",
		"agency_responsible": "Roads", "status_notes": "Still there this morning", "lat": 0.5, "long": -0.5, "address": "1 High Street"}
	for k, w := range want {
		if r[k] != w {
			t.Errorf("%s = %v, want %v", k, r[k], w)
		}
	}
	for _, k := range []string{"requested_datetime", "updated_datetime", "expected_datetime"} {
		s, _ := r[k].(string)
		if tm, err := time.Parse(time.RFC3339, s); err != nil || !(strings.HasSuffix(s, "Z") || strings.Contains(s[19:], ":")) || tm.IsZero() {
			t.Errorf("%s %q is not a w3 date-time with its zone", k, s)
		}
	}
}

// TestOpen311RefusesBadInput sends each kind of bad request: each gets the specification's
// error body (in XML and in JSON) with the right status and a description naming the
// problem, and no case is filed.
func TestOpen311RefusesBadInput(t *testing.T) {
	window := func(start, end string) url.Values { return url.Values{"start_date": {start}, "end_date": {end}} }
	tests := []struct {
		name, method, path string
		form               url.Values
		status             int
		says               string
	}{
		{"unknown service code", "POST", "/open311/v2/requests", goodRequest("service_code", "dragon"), 404, "service_code"},
		{"unknown service definition", "GET", "/open311/v2/services/dragon", nil, 404, "dragon"},
		{"unknown service code filter", "GET", "/open311/v2/requests", url.Values{"service_code": {"pothole,dragon"}}, 404, "dragon"},
		{"missing service code", "POST", "/open311/v2/requests", goodRequest("service_code", ""), 400, "service_code was not provided"},
		{"no location of any kind", "POST", "/open311/v2/requests", goodRequest("lat", "", "long", "", "address_string", ""), 400, "no location"},
		{"lat without long", "POST", "/open311/v2/requests", goodRequest("long", ""), 400, "lat and long"},
		{"lat out of range", "POST", "/open311/v2/requests", goodRequest("lat", "91"), 400, "lat"},
		{"lat/long outside every jurisdiction", "POST", "/open311/v2/requests", goodRequest("lat", "-45", "long", "170"), 400, "outside every jurisdiction"},
		{"address_id alone", "POST", "/open311/v2/requests", goodRequest("lat", "", "long", "", "address_string", "", "address_id", "#NOTPINPOINTED#"), 400, "address_id"},
		{"required attribute missing", "POST", "/open311/v2/requests", goodRequest("attribute[depth]", ""), 400, "depth"},
		{"attribute not among its values", "POST", "/open311/v2/requests", goodRequest("attribute[depth]", "bottomless"), 400, "bottomless"},
		{"number attribute not a number", "POST", "/open311/v2/requests", goodRequest("attribute[width_cm]", "wide"), 400, "width_cm"},
		{"description over 4,000 characters", "POST", "/open311/v2/requests", goodRequest("description", strings.Repeat("é", 4001)), 400, "description has 4001 characters"},
		{"media_url not a URL", "POST", "/open311/v2/requests", goodRequest("media_url", "photo.jpg"), 400, "media_url"},
		{"email not an email", "POST", "/open311/v2/requests", goodRequest("email", "rita at example"), 400, "email"},
		{"wrong api_key", "POST", "/open311/v2/requests", goodRequest("api_key", "not-the-key"), 403, "api_key"},
		{"missing api_key", "POST", "/open311/v2/requests", goodRequest("api_key", ""), 403, "api_key"},
		{"unknown jurisdiction", "GET", "/open311/v2/services", url.Values{"jurisdiction_id": {"atlantis"}}, 404, "atlantis"},
		{"unknown jurisdiction on POST", "POST", "/open311/v2/requests", goodRequest("jurisdiction_id", "atlantis"), 404, "atlantis"},
		{"start_date after end_date", "GET", "/open311/v2/requests", window("2026-03-02T00:00:00Z", "2026-03-01T00:00:00Z"), 400, "after end_date"},
		{"span over 90 days", "GET", "/open311/v2/requests", window("2026-01-01T00:00:00Z", "2026-04-02T00:00:00Z"), 400, "90 days"},
		{"start_date not a date", "GET", "/open311/v2/requests", url.Values{"start_date": {"yesterday"}}, 400, "start_date"},
		{"page_size 0", "GET", "/open311/v2/requests", url.Values{"page_size": {"0"}}, 400, "page_size"},
		{"page_size 10,000", "GET", "/open311/v2/requests", url.Values{"page_size": {"10000"}}, 400, "page_size"},
		{"page 0", "GET", "/open311/v2/requests", url.Values{"page": {"0"}}, 400, "page"},
		{"unknown status filter", "GET", "/open311/v2/requests", url.Values{"status": {"pending"}}, 400, "status"},
		{"unknown request", "GET", "/open311/v2/requests/00000000-0000-4000-8000-000000000000", nil, 404, "was not found"},
		{"unknown token", "GET", "/open311/v2/tokens/12345", nil, 404, "token"},
		{"update span over 90 days", "GET", "/open311/v2/servicerequestupdates", window("2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"), 400, "90 days"},
		{"update with a wrong api_key", "POST", "/open311/v2/servicerequestupdates", url.Values{"api_key": {"nope"}, "service_request_id": {"x"}, "status": {"OPEN"}}, 403, "api_key"},
		{"update of an unknown request", "POST", "/open311/v2/servicerequestupdates", url.Values{"api_key": {testKey}, "service_request_id": {"00000000-0000-4000-8000-000000000000"}, "status": {"OPEN"}}, 404, "was not found"},
		{"update without a request", "POST", "/open311/v2/servicerequestupdates", url.Values{"api_key": {testKey}, "status": {"OPEN"}}, 400, "service_request_id"},
		{"unknown resource", "GET", "/open311/v2/complaints", nil, 404, "no Open311 resource"},
		{"a resource the other way", "DELETE", "/open311/v2/requests", nil, 400, "takes GET or POST"},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer h.swapT(t)()
			if desc := h.o311Error(tt.method, tt.path, tt.form, tt.status); !strings.Contains(desc, tt.says) {
				t.Errorf("description %q does not say %q", desc, tt.says)
			}
			h.nothingWritten()
		})
	}
}

// TestOpen311RequestEntersTheLifecycle files requests the ways clients do (form, multipart
// with a photo, an address alone): each is a case like the app's, routed, with a deadline,
// owned by a citizen found by email, whose details are kept and never shown.
func TestOpen311RequestEntersTheLifecycle(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := h.o311Create(goodRequest("attribute[width_cm]", "35.5"))
	cs, err := h.db.Case(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Status != models.StatusSubmitted || cs.Description != "Deep hole by the bus stop" || cs.Lat != 0.5 || cs.Lon != -0.5 || cs.AreaID == nil {
		t.Fatalf("case %+v", cs)
	}
	var attrs map[string]any
	_ = json.Unmarshal([]byte(cs.Attributes), &attrs)
	if !reflect.DeepEqual(attrs, map[string]any{"depth": "deep", "width_cm": 35.5}) {
		t.Errorf("answers %v", attrs)
	}
	var routes int64
	q := fmt.Sprintf("SELECT COUNT(*) FROM outbox WHERE task_type = '%s' AND CAST(payload AS TEXT) LIKE '%%%s%%'", models.TaskRoute, id)
	if err := h.db.SQL().QueryRow(q).Scan(&routes); err != nil || routes != 1 {
		t.Fatalf("route tasks in the outbox: %d, %v", routes, err)
	}
	ct, err := h.db.Open311ContactOf(ctx, cs.ReporterID)
	if err != nil || ct.Email == nil || *ct.Email != "rita.reporter@example.org" || ct.FirstName != "Rita" || ct.LastName != "Reporter" || ct.Phone != "+44 20 7946 0000" {
		t.Fatalf("contact %+v, %v", ct, err)
	}
	reporter, err := h.db.User(ctx, cs.ReporterID)
	if err != nil || reporter.Role != models.RoleCitizen || reporter.Email != nil || reporter.Name != "" {
		t.Fatalf("reporter %+v, %v: the person details belong in the contact only", reporter, err)
	}
	h.route(id)
	if cs, _ = h.db.Case(ctx, id); cs.Status != models.StatusDispatched || cs.DueAt == nil {
		t.Fatalf("after routing: %s, due %v", cs.Status, cs.DueAt)
	}

	// The same person again, in other letters: the same citizen.
	again := h.o311Create(goodRequest("email", "rita.reporter@example.org", "description", "Another one", "phone", ""))
	if cs2, _ := h.db.Case(ctx, again); cs2.ReporterID != cs.ReporterID {
		t.Errorf("the same email made another citizen")
	}

	// Multipart, as the v2.1 draft allows, with a photo and a list answered twice.
	body, ctype := form(part{name: "api_key", data: []byte(testKey)}, field("service_code", "pothole"), field("lat", "0.5"),
		field("long", "0.5"), field("attribute[depth]", "shallow"), field("description", "With a photo"),
		part{name: "media", filename: "hole.jpg", data: testenv.PhotoJPEG})
	resp, data, _ := h.send("POST", "/open311/v2/requests.xml", "", body, ctype)
	if resp.StatusCode != 200 {
		t.Fatalf("multipart: %d %s", resp.StatusCode, data)
	}
	root, _ := parseXMLTree(data)
	withPhoto := root.kids[0].kids[0].text
	media, err := h.db.CaseMedia(ctx, withPhoto)
	if err != nil || len(media) != 1 || media[0].Kind != models.MediaBefore {
		t.Fatalf("photos %+v, %v", media, err)
	}
	if c3, _ := h.db.Case(ctx, withPhoto); media[0].OwnerID != c3.ReporterID {
		t.Errorf("the photo's owner is not the reporter")
	}

	// An address alone: filed, in no area, and shown without a point.
	addressOnly := h.o311Create(goodRequest("lat", "", "long", "", "address_string", "Town Hall, Testville", "email", ""))
	if c4, _ := h.db.Case(ctx, addressOnly); c4.AreaID != nil || c4.Address != "Town Hall, Testville" {
		t.Errorf("address-only case %+v", c4)
	}
	_, v := h.o311Twins("GET", "/open311/v2/requests/"+addressOnly, nil, "requests")
	if r := v.([]any)[0].(map[string]any); r["lat"] != nil || r["long"] != nil || r["address"] != "Town Hall, Testville" {
		t.Errorf("address-only request shows %v", r)
	}

	// Nothing of the reporter's reaches any answer, in either format.
	for _, path := range []string{"/open311/v2/requests", "/open311/v2/requests/" + id, "/open311/v2/servicerequestupdates"} {
		for _, format := range []string{".xml", ".json"} {
			_, b := h.o311("GET", path+format, nil)
			for _, secret := range []string{"rita", "Rita", "Reporter", "7946 0000", "device-rita", "acct-42"} {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("%s%s shows %q: %s", path, format, secret, b)
				}
			}
		}
	}
}

// TestOpen311RetryFilesOnce: a client that sends the same request again (its answer was
// lost) gets the first request's id, with or without an email to know the reporter by.
func TestOpen311RetryFilesOnce(t *testing.T) {
	h := newHarness(t)
	for _, email := range []string{"retry@example.org", ""} {
		req := goodRequest("email", email, "description", "Retry with "+email)
		first, second := h.o311Create(req), h.o311Create(req)
		if first != second {
			t.Errorf("email %q: a retry filed %s besides %s", email, second, first)
		}
	}
	// A client that sends its own Idempotency-Key gets the first answer for it, and a 400
	// for other content under the same key.
	var ids []string
	for _, desc := range []string{"keyed", "keyed"} {
		resp, body := h.o311("POST", "/open311/v2/requests.json", goodRequest("description", desc), "Idempotency-Key", "k-1")
		var out []Open311Created
		if err := json.Unmarshal(body, &out); resp.StatusCode != 200 || err != nil {
			t.Fatalf("keyed: %d %s", resp.StatusCode, body)
		}
		ids = append(ids, out[0].ServiceRequestID)
	}
	if ids[0] != ids[1] {
		t.Errorf("the same Idempotency-Key filed %v", ids)
	}
	resp, body := h.o311("POST", "/open311/v2/requests.xml", goodRequest("description", "other"), "Idempotency-Key", "k-1")
	if resp.StatusCode != 400 || !bytes.Contains(body, []byte("<code>400</code>")) {
		t.Errorf("other content under the same key: %d %s", resp.StatusCode, body)
	}
	if n := countRows(t, h.db, "cases"); n != 3 {
		t.Errorf("%d cases, want 3", n)
	}
}

func countRows(t *testing.T, db *models.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := db.SQL().QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOpen311ListRequests checks the filters of GET requests and its defaults: the last 90
// days, 1,000 requests, newest first; service_request_id overrides the rest.
func TestOpen311ListRequests(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	start := h.now
	at := func(ago time.Duration, extra ...string) string {
		h.now = start.Add(-ago)
		defer func() { h.now = start }()
		return h.o311Create(goodRequest(extra...))
	}
	old := at(100*24*time.Hour, "description", "old")
	tree := at(10*24*time.Hour, "service_code", "tree", "attribute[depth]", "", "attribute[width_cm]", "", "description", "tree")
	recent := at(time.Hour, "description", "recent")
	sup, err := h.db.StaffByEmail(ctx, "boss@test.example")
	if err != nil {
		t.Fatal(err)
	}
	boss := models.Actor{ID: &sup.ID, Role: models.RoleSupervisor, JurisdictionID: "testville"}
	if _, _, err := h.db.Transition(ctx, models.Change{CaseID: recent, Action: models.ActionClose, Actor: boss,
		Resolution: models.ResolutionDuplicate, DuplicateOf: &tree}, h.now); err != nil {
		t.Fatal(err)
	}
	day := func(d time.Duration) string { return start.Add(-d).UTC().Format(time.RFC3339) }
	tests := []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"the last 90 days, newest first", nil, []string{recent, tree}},
		{"one service", url.Values{"service_code": {"tree"}}, []string{tree}},
		{"two services", url.Values{"service_code": {"pothole,tree"}}, []string{recent, tree}},
		{"services declared twice", url.Values{"service_code": {"pothole", "tree"}}, []string{recent, tree}},
		{"closed", url.Values{"status": {"closed"}}, []string{recent}},
		{"open", url.Values{"status": {"open"}}, []string{tree}},
		{"both statuses", url.Values{"status": {"open,closed"}}, []string{recent, tree}},
		{"a window", url.Values{"start_date": {day(101 * 24 * time.Hour)}, "end_date": {day(99 * 24 * time.Hour)}}, []string{old}},
		{"a start alone spans 90 days", url.Values{"start_date": {day(95 * 24 * time.Hour)}}, []string{tree}},
		{"an end alone spans 90 days back", url.Values{"end_date": {day(50 * 24 * time.Hour)}}, []string{old}},
		{"ids override everything", url.Values{"service_request_id": {old + "," + recent}, "status": {"open"}, "service_code": {"tree"}}, []string{recent, old}},
		{"ids of another request or none", url.Values{"service_request_id": {"00000000-0000-4000-8000-000000000000,TESTVILLE-999999"}}, nil},
		{"a number as an id", url.Values{"service_request_id": {"testville-000001"}}, []string{old}},
		{"second page", url.Values{"page_size": {"1"}, "page": {"2"}}, []string{tree}},
		{"past the last page", url.Values{"page_size": {"1"}, "page": {"3"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer h.swapT(t)()
			resp, body := h.o311("GET", "/open311/v2/requests.json", tt.query)
			var got []Open311ServiceRequest
			if err := json.Unmarshal(body, &got); resp.StatusCode != 200 || err != nil {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			ids := []string{}
			for _, r := range got {
				ids = append(ids, r.ServiceRequestID)
			}
			if !slices.Equal(ids, append([]string{}, tt.want...)) {
				t.Errorf("got %v, want %v", ids, tt.want)
			}
		})
	}

	// The 1,000-request default: 1,001 more cases of the last hour, and the oldest of them
	// (and the tree of ten days ago) left out of the default answer.
	bulkCases(t, h.db, 1001, start.Add(-30*time.Minute))
	resp, body := h.o311("GET", "/open311/v2/requests.json", nil)
	var got []Open311ServiceRequest
	if err := json.Unmarshal(body, &got); resp.StatusCode != 200 || err != nil || len(got) != 1000 {
		t.Fatalf("default answer: %d, %d requests, %v", resp.StatusCode, len(got), err)
	}
	resp, body = h.o311("GET", "/open311/v2/requests.json", url.Values{"page": {"2"}})
	if err := json.Unmarshal(body, &got); resp.StatusCode != 200 || err != nil || len(got) != 3 || got[2].ServiceRequestID != tree {
		t.Fatalf("second default page: %d, %d requests, %v", resp.StatusCode, len(got), err)
	}
}

// bulkCases writes n pothole cases created at t, one second apart going back, straight into
// the database (the API would take minutes for so many).
func bulkCases(t *testing.T, db *models.DB, n int, at time.Time) {
	t.Helper()
	ctx := context.Background()
	cat, err := db.CategoryByCode(ctx, "testville", "pothole")
	if err != nil {
		t.Fatal(err)
	}
	u, err := db.EnsureOpen311Reporter(ctx, models.ReporterDetails{}, at)
	if err != nil {
		t.Fatal(err)
	}
	err = db.InTx(ctx, func(tx *models.DB) error {
		for i := range n {
			created := at.Add(-time.Duration(i) * time.Second)
			if _, err := tx.CreateCase(ctx, models.NewCase{ID: models.NewID(), ReporterID: u.ID, JurisdictionID: "testville",
				CategoryID: cat.ID, Description: fmt.Sprint("bulk ", i), Lat: 0.5, Lon: -0.5}, created); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOpen311UpdatesFollowTheLifecycle plays a FixMyStreet site that is the citizens' front
// end: it follows status changes through GET servicerequestupdates (mySociety's extended
// statuses) and passes on comments, a reopen and a confirmation with POST, which enter the
// case's timeline.
func TestOpen311UpdatesFollowTheLifecycle(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	start := h.now
	id := h.o311Create(goodRequest())
	h.route(id)
	roads := h.staff("roads@test.example", "roads-pass")
	step := func(d time.Duration) { h.now = h.now.Add(d) }
	act := func(a ActionRequest) {
		t.Helper()
		step(time.Minute)
		if resp, body := h.json("POST", "/v1/cases/"+id+"/actions", roads, a); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", a.Action, resp.StatusCode, body)
		}
	}
	post := func(status, updateID, email, desc string) (int, string) {
		t.Helper()
		step(time.Minute)
		f := url.Values{"api_key": {testKey}, "service_request_id": {id}, "status": {status}, "update_id": {updateID},
			"updated_datetime": {h.now.Format(time.RFC3339)}, "description": {desc}, "email": {email},
			"first_name": {"Fiona"}, "last_name": {"Fms"}}
		resp, body := h.o311("POST", "/open311/v2/servicerequestupdates.json", f)
		var out []Open311UpdateCreated
		_ = json.Unmarshal(body, &out)
		if resp.StatusCode != 200 {
			return resp.StatusCode, string(body)
		}
		return resp.StatusCode, out[0].UpdateID
	}
	updates := func() []Open311Update {
		t.Helper()
		q := url.Values{"start_date": {start.Add(-time.Minute).Format(time.RFC3339)}, "end_date": {h.now.Add(time.Minute).Format(time.RFC3339)}, "api_key": {testKey}}
		_, v := h.o311Twins("GET", "/open311/v2/servicerequestupdates", q, "updates")
		b, _ := json.Marshal(v)
		var out []Open311Update
		_ = json.Unmarshal(b, &out)
		return out
	}
	status := func() models.Status {
		cs, err := h.db.Case(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return cs.Status
	}

	act(ActionRequest{Action: "accept"})
	act(ActionRequest{Action: "start"})
	// A neighbour comments on an open case: a public comment, the status unchanged.
	code, comment := post("OPEN", "fms-1", "neighbour@example.org", "Getting bigger")
	if code != 200 || status() != models.StatusInProgress {
		t.Fatalf("comment: %d %s, case %s", code, comment, status())
	}
	act(ActionRequest{Action: "resolve", Note: "Filled"})
	// A comment the reporter wrote before the fix, arriving after it (the client had not yet
	// heard of the fix): OPEN, but written before the resolution, so not a reopen.
	early := h.now.Add(-10 * time.Minute).Format(time.RFC3339)
	step(time.Minute)
	resp, body := h.o311("POST", "/open311/v2/servicerequestupdates.xml", url.Values{"api_key": {testKey}, "service_request_id": {id},
		"status": {"OPEN"}, "update_id": {"fms-2"}, "updated_datetime": {early}, "description": {"Any news?"}, "email": {"rita.reporter@example.org"}})
	if resp.StatusCode != 200 || status() != models.StatusResolved {
		t.Fatalf("late comment: %d %s, case %s", resp.StatusCode, body, status())
	}
	// Someone else's CLOSED on a resolved case is a comment, not a confirmation.
	if code, _ := post("CLOSED", "fms-3", "neighbour@example.org", "Looks done"); code != 200 || status() != models.StatusResolved {
		t.Fatalf("a neighbour confirmed: %d, case %s", code, status())
	}
	// The reporter says it is not fixed: reopened, back to the department.
	code, reopen := post("REOPEN", "fms-4", "Rita.Reporter@example.org", "Still a hole")
	if code != 200 || status() != models.StatusDispatched {
		t.Fatalf("reopen: %d %s, case %s", code, reopen, status())
	}
	// A retry of the same update changes nothing and answers the same.
	if code, again := post("REOPEN", "fms-4", "rita.reporter@example.org", "Still a hole"); code != 200 || again != reopen {
		t.Fatalf("retry: %d %s, want %s", code, again, reopen)
	}
	act(ActionRequest{Action: "accept"})
	act(ActionRequest{Action: "resolve", Note: "Filled properly"})
	code, confirm := post("FIXED", "fms-5", "rita.reporter@example.org", "Thanks")
	cs, _ := h.db.Case(ctx, id)
	if code != 200 || cs.Status != models.StatusClosed || cs.Resolution != models.ResolutionFixed {
		t.Fatalf("confirm: %d %s, case %s %s", code, confirm, cs.Status, cs.Resolution)
	}
	// A closed case takes no reopening, and keeps later words aside.
	if code, msg := post("REOPEN", "fms-6", "rita.reporter@example.org", "Again"); code != 400 || !strings.Contains(msg, "closed") {
		t.Fatalf("reopen of a closed case: %d %s", code, msg)
	}
	code, aside := post("CLOSED", "fms-7", "neighbour@example.org", "Nice work")
	if code != 200 || aside == "" {
		t.Fatalf("comment on a closed case: %d %s", code, aside)
	}

	evs, err := h.db.Timeline(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%s/%s/%s", e.Type, e.ActorRole, e.Note))
	}
	want := []string{"submit/citizen/", "route/system/", "accept/handler/", "start/handler/",
		"comment/system/Getting bigger", "resolve/handler/Filled", "comment/system/Any news?", "comment/system/Looks done",
		"reopen/citizen/Still a hole", "accept/handler/", "resolve/handler/Filled properly", "confirm/citizen/Thanks"}
	if !slices.Equal(got, want) {
		t.Errorf("timeline\n got %v\nwant %v", got, want)
	}
	for _, e := range evs {
		if e.Type == models.ActionComment && (!e.Public || e.ActorID == nil) {
			t.Errorf("comment %q: public %v, author %v", e.Note, e.Public, e.ActorID)
		}
	}

	// What the site reads back: every change in order, with the extended statuses, its own
	// updates under the ids it was given.
	var seen []string
	ids := map[string]bool{}
	for _, u := range updates() {
		if u.ServiceRequestID != id {
			t.Errorf("update of %s", u.ServiceRequestID)
		}
		seen = append(seen, u.Status+"/"+u.ExternalStatusCode+"/"+u.Description)
		ids[u.UpdateID] = true
	}
	wantSeen := []string{"open/dispatched/", "action_scheduled/accepted/", "in_progress/in_progress/",
		"in_progress/in_progress/Getting bigger", "fixed/resolved/Filled", "fixed/resolved/Any news?", "fixed/resolved/Looks done",
		"open/dispatched/Still a hole", "action_scheduled/accepted/", "fixed/resolved/Filled properly", "fixed/closed/Thanks"}
	if !slices.Equal(seen, wantSeen) {
		t.Errorf("updates\n got %v\nwant %v", seen, wantSeen)
	}
	for _, posted := range []string{comment, reopen, confirm} {
		if !ids[posted] {
			t.Errorf("posted update %s is not listed under its id", posted)
		}
	}
	if ids[aside] {
		t.Errorf("the update kept aside is listed as a change of the case")
	}
}

// TestOpen311Answers reads the attribute parameters the ways clients write them.
func TestOpen311Answers(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  map[string]any
	}{
		{"one answer", "attribute[depth]=deep", map[string]any{"depth": "deep"}},
		{"a list, the specification's way", "attribute[kinds][]=b&attribute[kinds][]=a", map[string]any{"kinds": []string{"a", "b"}}},
		{"a list, indexed", "attribute[kinds][0]=a&attribute[kinds][1]=b", map[string]any{"kinds": []string{"a", "b"}}},
		{"a list, the key repeated", "attribute[kinds]=a&attribute[kinds]=b", map[string]any{"kinds": []string{"a", "b"}}},
		{"empty answers are absent", "attribute[depth]=&attribute[kinds][]=", map[string]any{}},
		{"not attributes", "attribute=x&attributes[a]=y&attribute[a]b=z", map[string]any{}},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		if got := open311Answers(open311Params(q)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestOpen311ExtendedStatuses maps every status and resolution.
func TestOpen311ExtendedStatuses(t *testing.T) {
	tests := []struct {
		status     models.Status
		resolution models.Resolution
		want       string
	}{
		{models.StatusSubmitted, "", "open"},
		{models.StatusDispatched, "", "open"},
		{models.StatusTriage, "", "open"},
		{models.StatusAccepted, "", "action_scheduled"},
		{models.StatusInProgress, "", "in_progress"},
		{models.StatusResolved, "", "fixed"},
		{models.StatusClosed, models.ResolutionFixed, "fixed"},
		{models.StatusClosed, models.ResolutionDuplicate, "duplicate"},
		{models.StatusClosed, models.ResolutionInvalid, "closed"},
		{models.StatusClosed, models.ResolutionNotResponsible, "not_councils_responsibility"},
		{models.StatusClosed, models.ResolutionNoAction, "no_further_action"},
	}
	for _, tt := range tests {
		if got := extendedStatus(tt.status, tt.resolution); got != tt.want {
			t.Errorf("%s/%s: %s, want %s", tt.status, tt.resolution, got, tt.want)
		}
		if got, want := open311Status(tt.status), map[bool]string{true: "closed", false: "open"}[tt.status == models.StatusClosed]; got != want {
			t.Errorf("%s: Open311 status %s, want %s", tt.status, got, want)
		}
	}
}

// TestOpen311LiberalInAccepting sends what real clients send where they differ from the
// specification's text; every one is answered as the client meant.
func TestOpen311LiberalInAccepting(t *testing.T) {
	h := newHarness(t)
	id := h.o311Create(goodRequest())
	tests := []struct {
		name, method, path string
		headers            []string
		body               string
		ctype              string
		format             string // of the answer
	}{
		{"endpoint with a trailing slash", "GET", "/open311/v2//services.xml", nil, "", "", "xml"},
		{"resource with a trailing slash", "GET", "/open311/v2/services.json/", nil, "", "", "json"},
		{"format in capitals", "GET", "/open311/v2/services.XML", nil, "", "", "xml"},
		{"no format, text/xml with a charset", "GET", "/open311/v2/services", []string{"Accept", "text/xml; charset=utf-8"}, "", "", "xml"},
		{"no format, text/xml", "GET", "/open311/v2/services", []string{"Accept", "text/xml"}, "", "", "xml"},
		{"no format, JSON asked for", "GET", "/open311/v2/requests/" + id, []string{"Accept", "application/json"}, "", "", "json"},
		{"no format, nothing asked for", "GET", "/open311/v2/services/pothole", nil, "", "", "xml"},
		{"the endpoint itself", "GET", "/open311/v2", nil, "", "", "xml"},
		{"the endpoint with a slash", "GET", "/open311/v2/", []string{"Accept", "application/json"}, "", "", "json"},
		{"empty parameters are absent", "GET", "/open311/v2/requests.xml?jurisdiction_id=&start_date=&end_date=&status=&service_code=&page=&page_size=", nil, "", "", "xml"},
		{"a + the query string made a space", "GET", "/open311/v2/requests.json?start_date=" + url.QueryEscape(h.now.Add(-time.Hour).UTC().Format("2006-01-02T15:04:05")) + "+00:00", nil, "", "", "json"},
		{"a date without a zone", "GET", "/open311/v2/servicerequestupdates.json?start_date=2026-01-01&end_date=2026-01-31", nil, "", "", "json"},
		{"jurisdiction_id and api_key in the query of a POST", "POST", "/open311/v2/requests.xml?jurisdiction_id=testville&api_key=" + testKey,
			nil, "service_code=pothole&lat=0.5&long=0.5&attribute%5Bdepth%5D=deep", "application/x-www-form-urlencoded; charset=utf-8", "xml"},
		{"a form without a charset", "POST", "/open311/v2/requests.json", nil,
			"api_key=" + testKey + "&service_code=other&lat=0.5&long=0.5&attribute%5Bfixmystreet_id%5D=99&attribute%5Btitle%5D=x", "application/x-www-form-urlencoded", "json"},
		{"everything in the query string", "POST", "/open311/v2/requests.json?api_key=" + testKey + "&service_code=tree&lat=0.5&long=0.5", nil, "", "", "json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer h.swapT(t)()
			resp, body, _ := h.send(tt.method, tt.path, "", []byte(tt.body), tt.ctype, tt.headers...)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			want := map[string]string{"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}[tt.format]
			if ct := resp.Header.Get("Content-Type"); ct != want {
				t.Fatalf("content type %q, want %q: %s", ct, want, body)
			}
		})
	}
}

// TestOpen311ErrorsAreNeverProblems: whatever goes wrong under the endpoint, the answer is
// the specification's error body in the format the path asks for (XML when it names none).
func TestOpen311ErrorsAreNeverProblems(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		path, ctype string
		status      int
	}{
		{"/open311/v2/nothing.xml", "text/xml; charset=utf-8", 404},
		{"/open311/v2/nothing.json", "application/json; charset=utf-8", 404},
		{"/open311/v2/nothing", "text/xml; charset=utf-8", 404},
		{"/open311/v2/requests/a/b.json", "application/json; charset=utf-8", 404},
		{"/open311/v2/services.html", "text/xml; charset=utf-8", 404},
		{"/open311/v2/services/pothole.csv", "text/xml; charset=utf-8", 404},
		{"/open311/v2/requests.json?page_size=x", "application/json; charset=utf-8", 400},
	}
	for _, tt := range tests {
		resp, body := h.o311("GET", tt.path, nil)
		if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != tt.ctype {
			t.Errorf("%s: %d %q, want %d %q: %s", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, tt.ctype, body)
			continue
		}
		if strings.HasPrefix(tt.ctype, "text/xml") {
			root, err := parseXMLTree(body)
			if err != nil || root.name != "errors" || len(root.kids) != 1 || root.kids[0].name != "error" {
				t.Errorf("%s: not an errors body: %s", tt.path, body)
			}
		} else {
			checkOpen311JSON(t, resp, body, "errors")
		}
	}
}

// TestOpen311SeveralJurisdictions: with two cities on one endpoint, jurisdiction_id (or the
// api_key's city) says which; a key writes only to its own city.
func TestOpen311SeveralJurisdictions(t *testing.T) {
	h := newHarness(t)
	other := `
jurisdiction: {id: otherville, name: Otherville, timezone: America/New_York,
  boundary: {type: Polygon, coordinates: [[[10, 10], [11, 10], [11, 11], [10, 11], [10, 10]]]}}
departments: [{code: ALL, name: Everything}]
triage_department: ALL
categories:
  - {code: graffiti, name: Graffiti, group: Walls, department: ALL,
     attributes: [{code: surface, datatype: multivaluelist, required: true, description: "On what?",
                   values: [{key: wall, name: Wall}, {key: door, name: Door}, {key: sign, name: Sign}]}]}
open311_api_keys: [{key: otherville-key, name: Other client}]
staff: [{email: admin@otherville.example, name: Other admin, role: admin, password: other-admin-pass}]
`
	cfg, err := models.ParseCityConfig([]byte(other), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.ApplyCityConfig(context.Background(), cfg, h.now); err != nil {
		t.Fatal(err)
	}
	idx, err := h.db.LoadAreaIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h.app = New(Config{DB: h.db, Store: h.store, Areas: func() *models.AreaIndex { return idx }, JWTSecret: testenv.Secret,
		Now: func() time.Time { return h.now }, MaxPhotoBytes: testPhotoLimit})

	if desc := h.o311Error("GET", "/open311/v2/services", nil, 400); !strings.Contains(desc, "jurisdiction_id was not provided") {
		t.Errorf("without jurisdiction_id: %q", desc)
	}
	_, v := h.o311Twins("GET", "/open311/v2/services", url.Values{"jurisdiction_id": {"otherville"}}, "services")
	if s := v.([]any); len(s) != 1 || s[0].(map[string]any)["service_code"] != "graffiti" {
		t.Errorf("otherville's services: %v", v)
	}
	// The api_key says which city when jurisdiction_id does not.
	if status, _ := h.o311Twins("GET", "/open311/v2/servicerequestupdates", url.Values{"api_key": {"otherville-key"}}, "updates"); status != 200 {
		t.Errorf("updates by the key's city: %d", status)
	}
	// A multivaluelist answered the specification's way, attribute[code][] once per key.
	graffiti := h.o311Create(url.Values{"api_key": {"otherville-key"}, "service_code": {"graffiti"}, "lat": {"10.5"}, "long": {"10.5"},
		"attribute[surface][]": {"wall", "door"}})
	cs, _ := h.db.Case(context.Background(), graffiti)
	var answers map[string]any
	_ = json.Unmarshal([]byte(cs.Attributes), &answers)
	if cs.JurisdictionID != "otherville" || !reflect.DeepEqual(answers, map[string]any{"surface": []any{"door", "wall"}}) {
		t.Errorf("graffiti case %s: %s", cs.JurisdictionID, cs.Attributes)
	}
	h.o311Error("POST", "/open311/v2/requests", url.Values{"api_key": {"otherville-key"}, "service_code": {"graffiti"}, "lat": {"10.5"}, "long": {"10.5"},
		"attribute[surface][]": {"wall", "roof"}}, 400)
	tests := []struct {
		name string
		form url.Values
		says string
	}{
		{"another city's jurisdiction_id", goodRequest("jurisdiction_id", "otherville"), "writes to jurisdiction testville"},
		{"a point in another city", goodRequest("service_code", "pothole", "lat", "10.5", "long", "10.5"), "lies in jurisdiction otherville"},
	}
	for _, tt := range tests {
		if desc := h.o311Error("POST", "/open311/v2/requests", tt.form, 403); !strings.Contains(desc, tt.says) {
			t.Errorf("%s: %q", tt.name, desc)
		}
	}
	// Each city's administrators see and revoke their own keys only.
	var mine, theirs []Open311KeyInfo
	otherAdmin := h.staff("admin@otherville.example", "other-admin-pass")
	_, body := h.do("GET", "/v1/admin/open311-keys", h.adminToken(), nil, "")
	_ = json.Unmarshal(body, &mine)
	_, body = h.do("GET", "/v1/admin/open311-keys", otherAdmin, nil, "")
	_ = json.Unmarshal(body, &theirs)
	if len(mine) != 1 || mine[0].Name != "Test client" || len(theirs) != 1 || theirs[0].Name != "Other client" {
		t.Fatalf("keys: testville %v, otherville %v", mine, theirs)
	}
	if resp, _ := h.do("DELETE", "/v1/admin/open311-keys/"+mine[0].ID, otherAdmin, nil, ""); resp.StatusCode != 404 {
		t.Errorf("another city's administrator revoked a key: %d", resp.StatusCode)
	}
	// Another city's request is not found through this city.
	id := h.o311Create(goodRequest())
	h.o311Error("GET", "/open311/v2/requests/"+id, url.Values{"jurisdiction_id": {"otherville"}}, 404)
	h.o311Error("POST", "/open311/v2/servicerequestupdates", url.Values{"api_key": {"otherville-key"}, "service_request_id": {id}, "status": {"OPEN"}, "description": {"x"}}, 404)
}

// TestOpen311KeysFromTheAdminAPI: an administrator makes a key for a client, which works at
// once, is never shown again, survives a new city configuration, and stops working when
// revoked.
func TestOpen311KeysFromTheAdminAPI(t *testing.T) {
	h := newHarness(t)
	admin := h.adminToken()
	resp, body := h.json("POST", "/v1/admin/open311-keys", admin, Open311KeyRequest{Name: "FixMyStreet Testville"})
	var made Open311KeyCreated
	if err := json.Unmarshal(body, &made); resp.StatusCode != 201 || err != nil || len(made.Key) < 32 || made.Source != "admin" {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	h.o311Create(goodRequest("api_key", made.Key))

	resp, body = h.do("GET", "/v1/admin/open311-keys", admin, nil, "")
	var keys []Open311KeyInfo
	if err := json.Unmarshal(body, &keys); resp.StatusCode != 200 || err != nil || len(keys) != 2 {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	if bytes.Contains(body, []byte(made.Key)) || bytes.Contains(body, []byte(testKey)) {
		t.Fatalf("the list shows a key: %s", body)
	}

	// A changed configuration replaces its own keys and leaves the administrator's.
	changed := strings.Replace(testenv.CityYAML, "{key: test-open311-key, name: Test client}", "{key: rotated-open311-key, name: Test client}", 1)
	cfg, err := models.ParseCityConfig([]byte(changed), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.ApplyCityConfig(context.Background(), cfg, h.now); err != nil {
		t.Fatal(err)
	}
	h.o311Error("POST", "/open311/v2/requests", goodRequest("description", "old key"), 403)
	h.o311Create(goodRequest("api_key", "rotated-open311-key", "description", "rotated key"))
	h.o311Create(goodRequest("api_key", made.Key, "description", "admin key after the new configuration"))

	tests := []struct {
		name, method, path, token string
		status                    int
	}{
		{"a supervisor may not list", "GET", "/v1/admin/open311-keys", h.staff("boss@test.example", "boss-pass"), 403},
		{"nobody may list", "GET", "/v1/admin/open311-keys", "", 401},
		{"an unknown key", "DELETE", "/v1/admin/open311-keys/00000000-0000-4000-8000-000000000000", admin, 404},
		{"revoke", "DELETE", "/v1/admin/open311-keys/" + made.ID, admin, 204},
		{"revoke again", "DELETE", "/v1/admin/open311-keys/" + made.ID, admin, 404},
	}
	for _, tt := range tests {
		if resp, body := h.do(tt.method, tt.path, tt.token, nil, ""); resp.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d: %s", tt.name, resp.StatusCode, tt.status, body)
		}
	}
	if resp, body := h.json("POST", "/v1/admin/open311-keys", admin, Open311KeyRequest{Name: " "}); resp.StatusCode != 422 {
		t.Errorf("a key without a name: %d %s", resp.StatusCode, body)
	}
	h.o311Error("POST", "/open311/v2/requests", goodRequest("api_key", made.Key, "description", "revoked"), 403)
}

// TestOpen311SchemaCopies keeps testdata/open311's copies of the shared GeoReport v2
// schemas equal to the originals, when the shared folder sits next to the repository.
func TestOpen311SchemaCopies(t *testing.T) {
	const shared = "../../shared/data/open311-schema"
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("no %s here", shared)
	}
	for _, name := range []string{"request", "requests", "service", "services", "service-definition"} {
		a, err := os.ReadFile(filepath.Join(shared, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join("testdata/open311", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("testdata/open311/%s.json differs from %s", name, shared)
		}
	}
}

// TestOpen311MultipartNeedsTheKeyFirst: photos of a client without a valid key are never
// stored.
func TestOpen311MultipartNeedsTheKeyFirst(t *testing.T) {
	h := newHarness(t)
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, _ := w.CreateFormFile("media", "p.jpg")
	_, _ = fw.Write(testenv.PhotoJPEG)
	_ = w.WriteField("api_key", testKey)
	_ = w.Close()
	resp, body, _ := h.send("POST", "/open311/v2/requests.xml", "", buf.Bytes(), w.FormDataContentType())
	if resp.StatusCode != 403 || !bytes.Contains(body, []byte("<code>403</code>")) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	h.nothingWritten()
}
