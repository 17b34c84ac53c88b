package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// The conformance suite below runs unchanged against every Store
// implementation that is available: Local always, MinIO when
// CITYEYES_TEST_S3_ENDPOINT names a server. Both go through real I/O: a
// temp directory served by a real HTTP server for Local, a real S3 server
// for MinIO.

const (
	envS3Endpoint  = "CITYEYES_TEST_S3_ENDPOINT"
	envS3AccessKey = "CITYEYES_TEST_S3_ACCESS_KEY"
	envS3SecretKey = "CITYEYES_TEST_S3_SECRET_KEY"
)

// harness is one implementation under test.
type harness struct {
	name  string
	store Store
	// sigParam is the query parameter holding the URL signature, which
	// the tests tamper with.
	sigParam string
}

func harnesses(t *testing.T) []harness {
	t.Helper()
	hs := []harness{{name: "Local", store: newTestLocal(t), sigParam: "sig"}}
	if os.Getenv(envS3Endpoint) != "" {
		hs = append(hs, harness{name: "MinIO", store: newTestMinIO(t), sigParam: "X-Amz-Signature"})
	} else {
		t.Logf("%s not set: MinIO not tested", envS3Endpoint)
	}
	return hs
}

var testSecret = []byte("0123456789abcdef-test-secret")

// newTestLocal returns a Local store in a temp directory, with its signed
// URLs served by a real HTTP server that follows the contract documented
// on Verify and ContentTypeParam, the way the API's HTTP layer must.
func newTestLocal(t *testing.T) *Local {
	t.Helper()
	var l *Local
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.URL.Path, "/files/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		if err := l.Verify(r.Method, key, q, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		switch r.Method {
		case http.MethodGet:
			rc, obj, err := l.Get(r.Context(), key)
			if errors.Is(err, ErrNotFound) {
				http.NotFound(w, r)
				return
			} else if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer rc.Close()
			w.Header().Set("Content-Type", obj.ContentType)
			io.Copy(w, rc)
		case http.MethodPut:
			ct := q.Get(ContentTypeParam)
			if r.Header.Get("Content-Type") != ct {
				http.Error(w, "content type differs from the signed one", http.StatusForbidden)
				return
			}
			if _, err := l.Put(r.Context(), key, r.Body, r.ContentLength, ct); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		}
	}))
	t.Cleanup(srv.Close)
	var err error
	l, err = NewLocal(t.TempDir(), srv.URL+"/", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func minioTestConfig(bucket string) MinIOConfig {
	return MinIOConfig{
		Endpoint:  os.Getenv(envS3Endpoint),
		AccessKey: os.Getenv(envS3AccessKey),
		SecretKey: os.Getenv(envS3SecretKey),
		Bucket:    bucket,
	}
}

func randomBucket(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	return "cityeyes-test-" + hex.EncodeToString(b)
}

// newTestMinIO returns a MinIO store on a fresh random bucket, which
// NewMinIO must create and which is removed with its content afterwards.
func newTestMinIO(t *testing.T) *MinIO {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := NewMinIO(ctx, minioTestConfig(randomBucket(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeBucket(t, m) })
	return m
}

func removeBucket(t *testing.T, m *MinIO) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Walk(ctx, "", func(o Object) error { return m.Delete(ctx, o.Key) }); err != nil {
		t.Errorf("emptying bucket %s: %v", m.bucket, err)
	}
	// ForceDelete also drops aborted multipart uploads on MinIO.
	if err := m.client.RemoveBucketWithOptions(ctx, m.bucket, minio.RemoveBucketOptions{ForceDelete: true}); err != nil {
		t.Errorf("removing bucket %s: %v", m.bucket, err)
	}
}

// onlyReader hides every interface but io.Reader (Seeker, WriterTo, Len),
// so a store cannot learn the size of a "size unknown" body by the back
// door.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

var errBoom = errors.New("boom: client connection dropped")

// failingReader yields n bytes and then fails, like an upload whose
// client disconnects.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errBoom
	}
	k := min(len(p), f.n)
	for i := range k {
		p[i] = 'x'
	}
	f.n -= k
	return k, nil
}

func randomBytes(n int, seed uint64) []byte {
	r := mrand.New(mrand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t *testing.T, s Store, key string, data []byte, ct string) Object {
	t.Helper()
	obj, err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), ct)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return obj
}

func getBytes(t *testing.T, s Store, key string) ([]byte, Object) {
	t.Helper()
	rc, obj, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return data, obj
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func doHTTP(t *testing.T, method, rawURL string, headers map[string]string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, got
}

// tamper flips the last character of the signature in a signed URL.
func tamper(t *testing.T, rawURL, param string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	sig := q.Get(param)
	if sig == "" {
		t.Fatalf("no %s in %s", param, rawURL)
	}
	last := byte('0')
	if sig[len(sig)-1] == '0' {
		last = '1'
	}
	q.Set(param, sig[:len(sig)-1]+string(last))
	u.RawQuery = q.Encode()
	return u.String()
}

func TestConformance(t *testing.T) {
	for _, h := range harnesses(t) {
		t.Run(h.name, func(t *testing.T) {
			for _, c := range conformanceCases {
				t.Run(c.name, func(t *testing.T) { c.run(t, h) })
			}
		})
	}
}

var conformanceCases = []struct {
	name string
	run  func(t *testing.T, h harness)
}{
	{"RoundTrip", testRoundTrip},
	{"UnknownSizeIsStreamed", testUnknownSizeStreamed},
	{"Overwrite", testOverwrite},
	{"CopyVersion", testCopyVersion},
	{"FailedPutKeepsOldObject", testFailedPut},
	{"NotFoundAndDelete", testNotFoundAndDelete},
	{"Walk", testWalk},
	{"WalkStopsOnError", testWalkStops},
	{"WalkWhileDeleting", testWalkWhileDeleting},
	{"InvalidKeys", testInvalidKeys},
	{"SignedGetURL", testSignedGet},
	{"SignedPutURL", testSignedPut},
	{"SignedURLLifetime", testSignedTTL},
	{"Ping", testPing},
}

func testRoundTrip(t *testing.T, h harness) {
	ctx := context.Background()
	big := 6<<20 + 123 // more than one 5 MiB part
	tests := []struct {
		name    string
		data    []byte
		known   bool // pass the size, or -1
		ct      string
		wantCT  string
		keyPart string
	}{
		{"known size", []byte("hello world"), true, "text/plain", "text/plain", "a.txt"},
		{"unknown size", []byte("hello, unknown size"), false, "text/plain; charset=utf-8", "text/plain; charset=utf-8", "b.txt"},
		{"empty known size", []byte{}, true, "text/plain", "text/plain", "empty.txt"},
		{"multi-part unknown size", randomBytes(big, 1), false, "image/jpeg", "image/jpeg", "photo.jpg"},
		{"multi-part known size", randomBytes(big, 2), true, "image/jpeg", "image/jpeg", "photo2.jpg"},
		{"default content type", []byte{0, 1, 2, 3}, true, "", "application/octet-stream", "blob.bin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "roundtrip/" + tt.keyPart
			size := int64(-1)
			if tt.known {
				size = int64(len(tt.data))
			}
			before := time.Now().Add(-time.Minute)
			put, err := h.store.Put(ctx, key, onlyReader{bytes.NewReader(tt.data)}, size, tt.ct)
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if put.Key != key || put.Size != int64(len(tt.data)) || put.ContentType != tt.wantCT || put.ETag == "" {
				t.Errorf("Put returned %+v, want key %q size %d type %q and an ETag", put, key, len(tt.data), tt.wantCT)
			}
			if put.Modified.Before(before) {
				t.Errorf("Put Modified = %v, want about now", put.Modified)
			}

			st, err := h.store.Stat(ctx, key)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if st.Key != key || st.Size != int64(len(tt.data)) || st.ContentType != tt.wantCT || st.ETag != put.ETag {
				t.Errorf("Stat = %+v, want key %q size %d type %q ETag %q", st, key, len(tt.data), tt.wantCT, put.ETag)
			}
			if st.Modified.Before(before) {
				t.Errorf("Stat Modified = %v, want about now", st.Modified)
			}

			got, obj := getBytes(t, h.store, key)
			if !bytes.Equal(got, tt.data) {
				t.Errorf("Get returned %d bytes that differ from the %d put", len(got), len(tt.data))
			}
			if obj.Key != st.Key || obj.Size != st.Size || obj.ContentType != st.ContentType || obj.ETag != st.ETag {
				t.Errorf("Get object = %+v, want the Stat result %+v", obj, st)
			}
		})
	}
}

// patternReader produces n deterministic bytes without holding them.
type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := int(min(int64(len(b)), p.n-p.off))
	for i := range k {
		x := p.off + int64(i)
		b[i] = byte(x ^ x>>9 ^ x>>17)
	}
	p.off += int64(k)
	return k, nil
}

func testUnknownSizeStreamed(t *testing.T, h harness) {
	const size = 40 << 20
	const key = "stream/big.jpg"
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	obj, err := h.store.Put(context.Background(), key, &patternReader{n: size}, -1, "image/jpeg")
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	// Holding the whole body would allocate at least its 40 MiB; a few
	// 5 MiB parts must do.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("Put of %d MiB of unknown size allocated %.1f MiB", size>>20, float64(alloc)/(1<<20))
	if alloc > 24<<20 {
		t.Errorf("Put of %d MiB of unknown size allocated %d MiB", size>>20, alloc>>20)
	}
	if obj.Size != size {
		t.Errorf("Put size = %d, want %d", obj.Size, size)
	}
	rc, _, err := h.store.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, want := sha256.New(), sha256.New()
	if _, err := io.Copy(got, rc); err != nil {
		t.Fatal(err)
	}
	io.Copy(want, &patternReader{n: size})
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Error("content read back differs from the content streamed in")
	}
	if err := h.store.Delete(context.Background(), key); err != nil {
		t.Error(err)
	}
}

// testCopyVersion: Copy copies the version it is given, is refused once the source holds
// other bytes or is gone, and the copy stays as it was whatever happens to the source.
func testCopyVersion(t *testing.T, h harness) {
	ctx := context.Background()
	first := put(t, h.store, "copyv/src.jpg", []byte("the checked photo"), "image/jpeg")
	before := time.Now().Add(-time.Second)
	cp, err := h.store.Copy(ctx, first, "copyv/case/a.jpg")
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if cp.Key != "copyv/case/a.jpg" || cp.Size != first.Size || cp.ContentType != "image/jpeg" || cp.ETag == "" || cp.Modified.Before(before) {
		t.Errorf("Copy returned %+v; want the new key, size %d, image/jpeg, an ETag and about now", cp, first.Size)
	}
	if got, obj := getBytes(t, h.store, "copyv/case/a.jpg"); string(got) != "the checked photo" || obj.ContentType != "image/jpeg" || obj.ETag != cp.ETag {
		t.Errorf("the copy reads %q, %+v; want the source's bytes and type, ETag %q", got, obj, cp.ETag)
	}

	// The source replaced: the copy keeps its bytes, and the old version cannot be copied.
	put(t, h.store, "copyv/src.jpg", []byte("something else entirely"), "image/jpeg")
	if got, _ := getBytes(t, h.store, "copyv/case/a.jpg"); string(got) != "the checked photo" {
		t.Errorf("after the source was replaced, the copy reads %q", got)
	}
	if _, err := h.store.Copy(ctx, first, "copyv/case/b.jpg"); !errors.Is(err, ErrChanged) {
		t.Errorf("Copy of a replaced version: %v, want ErrChanged", err)
	}
	if _, err := h.store.Stat(ctx, "copyv/case/b.jpg"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused Copy left copyv/case/b.jpg behind: %v", err)
	}

	// The source gone: the copy stays; copying it is ErrNotFound.
	if err := h.store.Delete(ctx, "copyv/src.jpg"); err != nil {
		t.Fatal(err)
	}
	if got, _ := getBytes(t, h.store, "copyv/case/a.jpg"); string(got) != "the checked photo" {
		t.Errorf("after the source was deleted, the copy reads %q", got)
	}
	if _, err := h.store.Copy(ctx, first, "copyv/case/c.jpg"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Copy of a deleted source: %v, want ErrNotFound", err)
	}
	// Only the copy is left: no temp names or other debris under the prefix.
	var keys []string
	if err := h.store.Walk(ctx, "copyv/", func(o Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "copyv/case/a.jpg" {
		t.Errorf("objects under copyv/: %v, want only the copy", keys)
	}
	if err := h.store.Delete(ctx, "copyv/case/a.jpg"); err != nil {
		t.Fatal(err)
	}
}

func testOverwrite(t *testing.T, h harness) {
	first := put(t, h.store, "overwrite/x", []byte("first version"), "text/plain")
	second := put(t, h.store, "overwrite/x", []byte("v2"), "image/png")
	if first.ETag == second.ETag {
		t.Errorf("ETag did not change on overwrite: %q", first.ETag)
	}
	got, obj := getBytes(t, h.store, "overwrite/x")
	if string(got) != "v2" || obj.ContentType != "image/png" || obj.Size != 2 || obj.ETag != second.ETag {
		t.Errorf("after overwrite got %q, %+v; want \"v2\" image/png size 2 ETag %q", got, obj, second.ETag)
	}
	// Same size, written back to back: the tag must still change (a tag
	// derived from a coarse modification time would not).
	a := put(t, h.store, "overwrite/same-size", []byte("aaaa"), "text/plain")
	b := put(t, h.store, "overwrite/same-size", []byte("bbbb"), "text/plain")
	if a.ETag == b.ETag {
		t.Errorf("different content of the same size shares ETag %q", a.ETag)
	}
	if st, err := h.store.Stat(context.Background(), "overwrite/same-size"); err != nil || st.ETag != b.ETag {
		t.Errorf("Stat = %+v, %v; want ETag %q", st, err, b.ETag)
	}
}

func testFailedPut(t *testing.T, h harness) {
	ctx := context.Background()
	const key = "failed/x"
	old := []byte("the old content")
	put(t, h.store, key, old, "text/plain")

	tests := []struct {
		name    string
		body    io.Reader
		size    int64
		wantErr error
	}{
		{"body fails, size unknown", &failingReader{n: 1000}, -1, errBoom},
		{"body fails after first part", &failingReader{n: 6 << 20}, -1, errBoom},
		{"body fails, size known", &failingReader{n: 10}, 100, errBoom},
		{"body shorter than size", strings.NewReader("short"), 100, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.store.Put(ctx, key, tt.body, tt.size, "text/plain")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Put error = %v, want %v", err, tt.wantErr)
			}
			// The uploader broke, not the store: that must not read as 503.
			if errors.Is(err, ErrUnavailable) {
				t.Errorf("Put error %v wraps ErrUnavailable", err)
			}
			got, obj := getBytes(t, h.store, key)
			if !bytes.Equal(got, old) || obj.ContentType != "text/plain" {
				t.Errorf("after failed Put got %q (%s), want the old %q (text/plain)", got, obj.ContentType, old)
			}
		})
	}
	// No leftovers of the failed uploads may show up as objects.
	var keys []string
	if err := h.store.Walk(ctx, "failed/", func(o Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{key}) {
		t.Errorf("Walk(failed/) = %q, want only %q", keys, key)
	}
}

func testNotFoundAndDelete(t *testing.T, h harness) {
	ctx := context.Background()
	const key = "del/x.txt"
	if err := h.store.Delete(ctx, "del/never-existed"); err != nil {
		t.Errorf("Delete of missing key: %v", err)
	}
	if _, err := h.store.Stat(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat of missing key: %v, want ErrNotFound", err)
	}
	if rc, _, err := h.store.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Errorf("Get of missing key: %v, want ErrNotFound", err)
	}

	put(t, h.store, key, []byte("to be deleted"), "text/plain")
	if err := h.store.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := h.store.Stat(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if _, _, err := h.store.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := h.store.Delete(ctx, key); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	// A prefix is not an object.
	put(t, h.store, "del/dir/y", []byte("y"), "")
	if _, err := h.store.Stat(ctx, "del/dir"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat of a prefix: %v, want ErrNotFound", err)
	}
	if err := h.store.Delete(ctx, "del/dir"); err != nil {
		t.Errorf("Delete of a prefix: %v", err)
	}
	if _, err := h.store.Stat(ctx, "del/dir/y"); err != nil {
		t.Errorf("Delete of a prefix removed an object below it: %v", err)
	}
}

func walkKeys(t *testing.T, s Store, prefix string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	err := s.Walk(context.Background(), prefix, func(o Object) error {
		if _, dup := got[o.Key]; dup {
			t.Errorf("Walk(%q) reported %q twice", prefix, o.Key)
		}
		if o.ETag == "" || o.Modified.IsZero() {
			t.Errorf("Walk(%q) object %+v lacks ETag or Modified", prefix, o)
		}
		got[o.Key] = o.Size
		return nil
	})
	if err != nil {
		t.Fatalf("Walk(%q): %v", prefix, err)
	}
	return got
}

func testWalk(t *testing.T, h harness) {
	objects := map[string]int64{
		"walk/a/1.txt":   1,
		"walk/a/2.txt":   2,
		"walk/ab.txt":    3,
		"walk/b/c/3.txt": 4,
		"walkother.txt":  5,
	}
	for k, n := range objects {
		put(t, h.store, k, bytes.Repeat([]byte("z"), int(n)), "text/plain")
	}
	pick := func(keys ...string) map[string]int64 {
		m := map[string]int64{}
		for _, k := range keys {
			m[k] = objects[k]
		}
		return m
	}
	tests := []struct {
		prefix string
		want   map[string]int64
	}{
		{"walk/", pick("walk/a/1.txt", "walk/a/2.txt", "walk/ab.txt", "walk/b/c/3.txt")},
		{"walk/a", pick("walk/a/1.txt", "walk/a/2.txt", "walk/ab.txt")},
		{"walk/a/", pick("walk/a/1.txt", "walk/a/2.txt")},
		{"walk/b/c/3.txt", pick("walk/b/c/3.txt")},
		{"walk", objects},
		{"walk/zzz", pick()},
		{"nothing/here/", pick()},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			got := walkKeys(t, h.store, tt.prefix)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Walk(%q) = %v, want %v", tt.prefix, got, tt.want)
			}
		})
	}
	t.Run("empty prefix", func(t *testing.T) {
		got := walkKeys(t, h.store, "")
		for k, n := range objects {
			if got[k] != n {
				t.Errorf("Walk(\"\") lacks %q (size %d): %v", k, n, got)
			}
		}
	})
}

func testWalkStops(t *testing.T, h harness) {
	for _, k := range []string{"stop/1", "stop/2", "stop/3"} {
		put(t, h.store, k, []byte(k), "")
	}
	// fs.SkipDir and fs.SkipAll are included because a Walk built on
	// filepath.WalkDir would act on them instead of returning them.
	for _, stop := range []error{errors.New("stop here"), fs.SkipDir, fs.SkipAll} {
		calls := 0
		err := h.store.Walk(context.Background(), "stop/", func(Object) error {
			calls++
			return stop
		})
		if err != stop {
			t.Errorf("Walk returned %v, want fn's error %v unchanged", err, stop)
		}
		if calls != 1 {
			t.Errorf("fn called %d times after returning %v, want 1", calls, stop)
		}
	}
}

func testWalkWhileDeleting(t *testing.T, h harness) {
	ctx := context.Background()
	for i := range 5 {
		put(t, h.store, fmt.Sprintf("sweep/r%d/photo.jpg", i), []byte("p"), "image/jpeg")
	}
	put(t, h.store, "sweep/keep.txt", []byte("k"), "text/plain")
	deleted := 0
	err := h.store.Walk(ctx, "sweep/", func(o Object) error {
		if strings.HasSuffix(o.Key, ".jpg") {
			deleted++
			return h.store.Delete(ctx, o.Key)
		}
		return nil
	})
	if err != nil || deleted != 5 {
		t.Fatalf("sweeping Walk: %v after %d deletes, want 5 deletes", err, deleted)
	}
	got := walkKeys(t, h.store, "sweep/")
	if fmt.Sprint(got) != fmt.Sprint(map[string]int64{"sweep/keep.txt": 1}) {
		t.Errorf("after sweep Walk = %v, want only sweep/keep.txt", got)
	}
}

var badKeys = []string{
	"",
	"/abs/path.jpg",
	"../escape.jpg",
	"a/../../escape.jpg",
	"a/./b",
	"a//b",
	"trailing/",
	".hidden",
	"a/.b.meta",
	"space in.jpg",
	"back\\slash",
	"colon:x",
	"quest?x",
	"percent%2e%2e",
	"unicodé.jpg",
	"nul\x00byte",
	"new\nline",
	strings.Repeat("s", MaxSegmentLen+1),
	strings.Repeat("k/", MaxKeyLen/2) + "k",
}

func testInvalidKeys(t *testing.T, h harness) {
	ctx := context.Background()
	for _, key := range badKeys {
		name := key
		if len(name) > 20 {
			name = name[:20] + "..."
		}
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			checks := map[string]error{}
			_, checks["Put"] = h.store.Put(ctx, key, strings.NewReader("x"), 1, "text/plain")
			_, checks["Stat"] = h.store.Stat(ctx, key)
			_, _, checks["Get"] = h.store.Get(ctx, key)
			checks["Delete"] = h.store.Delete(ctx, key)
			_, checks["SignedGetURL"] = h.store.SignedGetURL(ctx, key, time.Minute)
			_, _, checks["SignedPutURL"] = h.store.SignedPutURL(ctx, key, "text/plain", time.Minute)
			for op, err := range checks {
				if !errors.Is(err, ErrInvalidKey) {
					t.Errorf("%s(%q) = %v, want ErrInvalidKey", op, key, err)
				}
			}
		})
	}
	for _, prefix := range []string{"/abs", "../", "a/../", "a//", ".hidden/", "bad char"} {
		if err := h.store.Walk(ctx, prefix, func(Object) error { return nil }); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Walk(%q) = %v, want ErrInvalidKey", prefix, err)
		}
	}
	// Valid keys use the whole alphabet.
	const good = "Good_key-1.2/sub.dir/A-Z_a-z.0-9.jpg"
	put(t, h.store, good, []byte("ok"), "image/jpeg")
	if got, _ := getBytes(t, h.store, good); string(got) != "ok" {
		t.Errorf("Get(%q) = %q", good, got)
	}
}

func testSignedGet(t *testing.T, h harness) {
	ctx := context.Background()
	const key = "signed/get/photo.jpg"
	data := randomBytes(70_000, 3)
	put(t, h.store, key, data, "image/jpeg")

	signed, err := h.store.SignedGetURL(ctx, key, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	status, body := doHTTP(t, http.MethodGet, signed, nil, nil)
	if status != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET signed URL: status %d, %d bytes (equal: %v); want 200 with the %d bytes put",
			status, len(body), bytes.Equal(body, data), len(data))
	}

	unsigned, _, _ := strings.Cut(signed, "?")
	missing, err := h.store.SignedGetURL(ctx, "signed/get/missing.jpg", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name   string
		method string
		url    string
		want   int
	}{
		{"tampered signature", http.MethodGet, tamper(t, signed, h.sigParam), http.StatusForbidden},
		{"no signature (the object is private)", http.MethodGet, unsigned, http.StatusForbidden},
		{"GET URL used to PUT", http.MethodPut, signed, http.StatusForbidden},
		{"missing object", http.MethodGet, missing, http.StatusNotFound},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			status, _ := doHTTP(t, tt.method, tt.url, map[string]string{"Content-Type": "image/jpeg"}, []byte("evil"))
			if status != tt.want {
				t.Errorf("%s: status %d, want %d", tt.method, status, tt.want)
			}
		})
	}
	// The refused PUT must not have replaced the object.
	if got, _ := getBytes(t, h.store, key); !bytes.Equal(got, data) {
		t.Errorf("object changed by a refused request")
	}
}

func testSignedPut(t *testing.T, h harness) {
	ctx := context.Background()
	const key = "signed/put/photo.jpg"
	data := randomBytes(100_000, 4)

	signed, headers, err := h.store.SignedPutURL(ctx, key, "image/jpeg", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if headers["Content-Type"] != "image/jpeg" {
		t.Errorf("headers = %v, want Content-Type image/jpeg", headers)
	}

	refused := []struct {
		name    string
		method  string
		url     string
		headers map[string]string
	}{
		{"other content type", http.MethodPut, signed, map[string]string{"Content-Type": "text/html"}},
		{"tampered signature", http.MethodPut, tamper(t, signed, h.sigParam), headers},
		{"PUT URL used to GET", http.MethodGet, signed, headers},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			status, _ := doHTTP(t, tt.method, tt.url, tt.headers, []byte("<script>evil</script>"))
			if status != http.StatusForbidden {
				t.Errorf("status %d, want 403", status)
			}
			if _, err := h.store.Stat(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Errorf("after refused request Stat = %v, want ErrNotFound", err)
			}
		})
	}

	status, body := doHTTP(t, http.MethodPut, signed, headers, data)
	if status != http.StatusOK {
		t.Fatalf("PUT signed URL: status %d: %s", status, body)
	}
	got, obj := getBytes(t, h.store, key)
	if !bytes.Equal(got, data) || obj.ContentType != "image/jpeg" || obj.Size != int64(len(data)) {
		t.Errorf("after signed PUT got %d bytes (equal: %v), %+v", len(got), bytes.Equal(got, data), obj)
	}
}

func testSignedTTL(t *testing.T, h harness) {
	ctx := context.Background()
	for _, ttl := range []time.Duration{0, -time.Minute, time.Millisecond, 7*24*time.Hour + time.Second} {
		if _, err := h.store.SignedGetURL(ctx, "ttl/x", ttl); err == nil {
			t.Errorf("SignedGetURL with ttl %v succeeded", ttl)
		}
		if _, _, err := h.store.SignedPutURL(ctx, "ttl/x", "text/plain", ttl); err == nil {
			t.Errorf("SignedPutURL with ttl %v succeeded", ttl)
		}
	}
	if _, err := h.store.SignedGetURL(ctx, "ttl/x", 7*24*time.Hour); err != nil {
		t.Errorf("SignedGetURL with the maximum ttl: %v", err)
	}
	if _, _, err := h.store.SignedPutURL(ctx, "ttl/x", "text/plain\r\nX-Evil: 1", time.Minute); err == nil {
		t.Errorf("SignedPutURL accepted a content type with CR LF")
	}
}

func testPing(t *testing.T, h harness) {
	if err := h.store.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
