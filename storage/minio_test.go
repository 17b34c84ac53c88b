package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// MinIO-only behaviour: error mapping and bucket handling. The shared
// behaviour is in TestConformance.

// storeOps runs every Store operation that talks to the server.
var storeOps = []struct {
	name string
	run  func(ctx context.Context, s Store) error
}{
	{"Put", func(ctx context.Context, s Store) error {
		_, err := s.Put(ctx, "k/x", strings.NewReader("data"), 4, "text/plain")
		return err
	}},
	{"Put unknown size", func(ctx context.Context, s Store) error {
		_, err := s.Put(ctx, "k/x", onlyReader{strings.NewReader("data")}, -1, "text/plain")
		return err
	}},
	{"Stat", func(ctx context.Context, s Store) error { _, err := s.Stat(ctx, "k/x"); return err }},
	{"Get", func(ctx context.Context, s Store) error {
		rc, _, err := s.Get(ctx, "k/x")
		if rc != nil {
			rc.Close()
		}
		return err
	}},
	{"Delete", func(ctx context.Context, s Store) error { return s.Delete(ctx, "k/x") }},
	{"Walk", func(ctx context.Context, s Store) error {
		return s.Walk(ctx, "k/", func(Object) error { return nil })
	}},
	{"Ping", func(ctx context.Context, s Store) error { return s.Ping(ctx) }},
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestMinIOClosedPortIsUnavailable(t *testing.T) {
	cfg := MinIOConfig{Endpoint: closedPort(t), AccessKey: "k", SecretKey: "secretsecret", Bucket: "cityeyes-closed"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel) // not defer: the parallel subtests run after this function returns

	start := time.Now()
	if _, err := NewMinIO(ctx, cfg); !errors.Is(err, ErrUnavailable) {
		t.Errorf("NewMinIO on a closed port = %v, want ErrUnavailable", err)
	}
	// Bounded retries: a dead store must fail fast, not after 10 backoffs.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("NewMinIO took %v to give up", d)
	}

	m, err := newMinIO(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range storeOps {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			if err := op.run(ctx, m); !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s on a closed port = %v, want ErrUnavailable", op.name, err)
			}
		})
	}
}

// TestMinIOServerErrorsAreUnavailable points the store at a real HTTP
// server that fails every request the way an overloaded or broken S3
// server does.
func TestMinIOServerErrorsAreUnavailable(t *testing.T) {
	// Every operation against a 503 server; the other codes take the same
	// path, so two operations suffice (each retried call costs about a
	// second of backoff).
	tests := []struct {
		status int
		ops    []string // nil: all
	}{
		{http.StatusServiceUnavailable, nil},
		{http.StatusInternalServerError, []string{"Stat", "Put unknown size"}},
		{http.StatusBadGateway, []string{"Stat", "Put unknown size"}},
	}
	for _, tt := range tests {
		status := tt.status
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			// Parallel, because minio-go backs off between its retries.
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(status)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>failing</Message></Error>`,
					map[int]string{500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable"}[status])
			}))
			t.Cleanup(srv.Close)
			cfg := MinIOConfig{Endpoint: srv.URL, AccessKey: "k", SecretKey: "secretsecret", Bucket: "cityeyes-failing", Region: "us-east-1"}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			t.Cleanup(cancel)
			if tt.ops == nil {
				if _, err := NewMinIO(ctx, cfg); !errors.Is(err, ErrUnavailable) {
					t.Errorf("NewMinIO = %v, want ErrUnavailable", err)
				}
			}
			m, err := newMinIO(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range storeOps {
				if tt.ops != nil && !slices.Contains(tt.ops, op.name) {
					continue
				}
				t.Run(op.name, func(t *testing.T) {
					t.Parallel()
					if err := op.run(ctx, m); !errors.Is(err, ErrUnavailable) {
						t.Errorf("%s = %v, want ErrUnavailable", op.name, err)
					}
				})
			}
		})
	}
}

func TestMinIOErrorMapping(t *testing.T) {
	m := &MinIO{bucket: "b"}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		want error // ErrNotFound, ErrUnavailable or nil for neither
	}{
		{"NoSuchKey", minio.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}, ErrNotFound},
		{"NoSuchUpload", minio.ErrorResponse{Code: "NoSuchUpload", StatusCode: 404}, ErrNotFound},
		{"500", minio.ErrorResponse{Code: "InternalError", StatusCode: 500}, ErrUnavailable},
		{"503 without code", minio.ErrorResponse{StatusCode: 503}, ErrUnavailable},
		{"429", minio.ErrorResponse{Code: "TooManyRequests", StatusCode: 429}, ErrUnavailable},
		{"SlowDown", minio.ErrorResponse{Code: "SlowDown"}, ErrUnavailable},
		{"wrapped 5xx", fmt.Errorf("ctx: %w", minio.ErrorResponse{StatusCode: 502}), ErrUnavailable},
		{"connection refused", refused, ErrUnavailable},
		{"url error", fmt.Errorf("x: %w", &netError{}), ErrUnavailable},
		{"deadline", context.DeadlineExceeded, ErrUnavailable},
		{"truncated response", io.ErrUnexpectedEOF, ErrUnavailable},
		{"access denied", minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403}, nil},
		{"no such bucket", minio.ErrorResponse{Code: "NoSuchBucket", StatusCode: 404}, nil},
		{"caller cancelled", context.Canceled, nil},
		{"other", errors.New("something else"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := m.err("stat", "k", tt.err)
			if !errors.Is(got, tt.err) {
				t.Errorf("mapped error %v lost the original %v", got, tt.err)
			}
			for _, sentinel := range []error{ErrNotFound, ErrUnavailable} {
				if errors.Is(got, sentinel) != (sentinel == tt.want) {
					t.Errorf("m.err(%v) = %v: errors.Is(%v) = %v, want %v",
						tt.err, got, sentinel, !(sentinel == tt.want), sentinel == tt.want)
				}
			}
		})
	}
}

// netError is a net.Error timeout as an HTTP client reports it.
type netError struct{}

func (*netError) Error() string   { return "i/o timeout" }
func (*netError) Timeout() bool   { return true }
func (*netError) Temporary() bool { return true }

func TestMinIOEndpointForms(t *testing.T) {
	tests := []struct {
		endpoint string
		ok       bool
		secure   bool
	}{
		{"127.0.0.1:9000", true, false},
		{"http://127.0.0.1:9000", true, false},
		{"https://127.0.0.1:9000/", true, true},
		{"ftp://127.0.0.1:9000", false, false},
		{"http://127.0.0.1:9000/some/path", false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		m, err := newMinIO(MinIOConfig{Endpoint: tt.endpoint, Bucket: "b"})
		if (err == nil) != tt.ok {
			t.Errorf("newMinIO(%q) error = %v, want ok %v", tt.endpoint, err, tt.ok)
			continue
		}
		if err == nil && (m.client.EndpointURL().Scheme == "https") != tt.secure {
			t.Errorf("newMinIO(%q) endpoint %s, want secure %v", tt.endpoint, m.client.EndpointURL(), tt.secure)
		}
	}
	if _, err := newMinIO(MinIOConfig{Endpoint: "127.0.0.1:9000"}); err == nil {
		t.Error("newMinIO without bucket succeeded")
	}
}

// TestMinIOServer needs a real server (CITYEYES_TEST_S3_ENDPOINT).
func TestMinIOServer(t *testing.T) {
	if os.Getenv(envS3Endpoint) == "" {
		t.Skipf("%s not set", envS3Endpoint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("creates missing bucket once", func(t *testing.T) {
		cfg := minioTestConfig(randomBucket(t))
		m, err := NewMinIO(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeBucket(t, m) })
		if ok, err := m.client.BucketExists(ctx, cfg.Bucket); !ok || err != nil {
			t.Fatalf("bucket %s exists = %v, %v", cfg.Bucket, ok, err)
		}
		// A second instance finds the bucket in place.
		cfg.Endpoint = "http://" + cfg.Endpoint
		m2, err := NewMinIO(ctx, cfg)
		if err != nil {
			t.Fatalf("second NewMinIO: %v", err)
		}
		put(t, m, "shared/x", []byte("x"), "")
		if _, err := m2.Stat(ctx, "shared/x"); err != nil {
			t.Errorf("second instance Stat: %v", err)
		}
	})

	t.Run("ping without bucket is unavailable", func(t *testing.T) {
		m, err := newMinIO(minioTestConfig(randomBucket(t)))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Ping(ctx); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Ping = %v, want ErrUnavailable", err)
		}
	})

	t.Run("wrong credentials", func(t *testing.T) {
		cfg := minioTestConfig(randomBucket(t))
		cfg.SecretKey = "not-the-secret-key"
		m, err := newMinIO(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Readiness fails, but requests are not "retry later" nor "missing".
		if err := m.Ping(ctx); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Ping = %v, want ErrUnavailable", err)
		}
		_, err = m.Stat(ctx, "k/x")
		if err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
			t.Errorf("Stat with wrong credentials = %v, want a plain error", err)
		}
	})
}
