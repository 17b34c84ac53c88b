package api

import (
	"strings"
	"testing"
)

// TestMetricsStayReadable: request labels are copied out of Fiber's reused buffers. They
// were not: after requests of several methods a later request overwrote a kept label
// ("POS" for a GET of /v1/reports/nearby, found by the soak), two series had the same
// labels, and /metrics answered 500 for good. The soak reads resident memory and
// goroutines from it, so those must be there too.
func TestMetricsStayReadable(t *testing.T) {
	h := newHarness(t)
	citizen := h.citizen("metrics-device-1")
	for i := range 30 {
		h.doUnchecked("GET", "/v1/reports/nearby?lat=0.5&lon=0.5&radius=100", citizen, nil, "")
		h.doUnchecked("POST", "/v1/reports", citizen, []byte(`{}`), "application/json")
		h.doUnchecked("DELETE", "/v1/nowhere/"+strings.Repeat("x", i), "", nil, "")
		h.doUnchecked("PATCH", "/v1/me", citizen, []byte(`{}`), "application/json")
		h.doUnchecked("GET", "/healthz", "", nil, "")
	}
	resp, body := h.do("GET", "/metrics", "", nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d\n%.3000s", resp.StatusCode, body)
	}
	// The scrape sees itself in flight, and nothing else.
	for _, want := range []string{"\ngo_goroutines ", "\nprocess_resident_memory_bytes ",
		`cityeyes_http_request_duration_seconds_count{method="GET",route="/v1/reports/nearby",status="200"} 30`,
		"\ncityeyes_http_requests_in_flight 1\n", "\ncityeyes_http_open_connections "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Refused requests are counted with the status their client got, not the 200 the
	// response held when the handler returned its error.
	if !strings.Contains(string(body), `method="POST",route="/v1/reports",status="4`) ||
		strings.Contains(string(body), `method="POST",route="/v1/reports",status="200"`) {
		t.Errorf("refused reports are not counted with their 4xx status:\n%s", grepLines(string(body), `route="/v1/reports"`))
	}
	for _, line := range strings.Split(string(body), "\n") {
		if i := strings.Index(line, `method="`); i >= 0 {
			m, _, _ := strings.Cut(line[i+len(`method="`):], `"`)
			if m != "GET" && m != "POST" && m != "DELETE" && m != "PATCH" {
				t.Errorf("a series with method %q: %s", m, line)
			}
		}
	}
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
