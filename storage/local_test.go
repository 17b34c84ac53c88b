package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Local-only behaviour: URL signing details, the on-disk layout and crash
// safety. The shared behaviour is in TestConformance.

func signedQuery(t *testing.T, raw string) (*url.URL, url.Values) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u, u.Query()
}

func TestLocalSignedURLFormat(t *testing.T) {
	l := newTestLocal(t)
	ctx := context.Background()
	before := time.Now()
	raw, err := l.SignedGetURL(ctx, "reports/r1/photo.jpg", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	u, q := signedQuery(t, raw)
	if u.Path != "/files/reports/r1/photo.jpg" || !strings.HasPrefix(raw, l.publicURL+"/files/") {
		t.Errorf("URL %s: want %s/files/reports/r1/photo.jpg", raw, l.publicURL)
	}
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil {
		t.Fatalf("expires %q: %v", q.Get("expires"), err)
	}
	if d := time.Unix(exp, 0).Sub(before); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("expires is %v after issuing, want about 10m", d)
	}
	if sig := q.Get("sig"); len(sig) != 64 {
		t.Errorf("sig %q is not hex SHA-256", sig)
	}

	raw, headers, err := l.SignedPutURL(ctx, "reports/r1/photo.jpg", "image/jpeg", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, q = signedQuery(t, raw)
	if q.Get(ContentTypeParam) != "image/jpeg" || headers["Content-Type"] != "image/jpeg" {
		t.Errorf("PUT URL %s, headers %v: want content type image/jpeg in both", raw, headers)
	}
}

func TestLocalVerify(t *testing.T) {
	l := newTestLocal(t)
	other, err := NewLocal(t.TempDir(), "http://example.org", []byte("another-secret-of-16+-bytes"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const key = "reports/r1/photo.jpg"
	const ttl = 10 * time.Minute

	getURL, _ := l.SignedGetURL(ctx, key, ttl)
	putURL, _, _ := l.SignedPutURL(ctx, key, "image/jpeg", ttl)
	foreignURL, _ := other.SignedGetURL(ctx, key, ttl)
	_, getQ := signedQuery(t, getURL)
	_, putQ := signedQuery(t, putURL)
	_, foreignQ := signedQuery(t, foreignURL)
	exp, _ := strconv.ParseInt(getQ.Get("expires"), 10, 64)
	deadline := time.Unix(exp, 0)
	now := time.Now()

	with := func(q url.Values, k, v string) url.Values {
		c := url.Values{}
		for name, vs := range q {
			c[name] = slices.Clone(vs)
		}
		if v == "" {
			c.Del(k)
		} else {
			c.Set(k, v)
		}
		return c
	}
	flip := func(s string) string {
		if s[0] == 'a' {
			return "b" + s[1:]
		}
		return "a" + s[1:]
	}

	tests := []struct {
		name   string
		method string
		key    string
		q      url.Values
		now    time.Time
		want   error
	}{
		{"valid GET", "GET", key, getQ, now, nil},
		{"method case does not matter", "get", key, getQ, now, nil},
		{"valid PUT", "PUT", key, putQ, now, nil},
		{"valid at the deadline", "GET", key, getQ, deadline, nil},
		{"GET expired", "GET", key, getQ, deadline.Add(time.Second), ErrExpired},
		{"PUT expired", "PUT", key, putQ, now.Add(ttl + time.Minute), ErrExpired},
		{"tampered sig", "GET", key, with(getQ, "sig", flip(getQ.Get("sig"))), now, ErrBadSignature},
		{"extended expires", "GET", key, with(getQ, "expires", strconv.FormatInt(exp+3600, 10)), now, ErrBadSignature},
		{"expires rewritten with same value", "GET", key, with(getQ, "expires", "0"+getQ.Get("expires")), now, ErrBadSignature},
		{"other key", "GET", "reports/r2/photo.jpg", getQ, now, ErrBadSignature},
		{"GET URL used to PUT", "PUT", key, getQ, now, ErrBadSignature},
		{"PUT URL used to GET", "GET", key, putQ, now, ErrBadSignature},
		{"HEAD is never signed", "HEAD", key, getQ, now, ErrBadSignature},
		{"DELETE is never signed", "DELETE", key, getQ, now, ErrBadSignature},
		{"PUT with other content type", "PUT", key, with(putQ, ContentTypeParam, "text/html"), now, ErrBadSignature},
		{"PUT without content type", "PUT", key, with(putQ, ContentTypeParam, ""), now, ErrBadSignature},
		{"missing sig", "GET", key, with(getQ, "sig", ""), now, ErrBadSignature},
		{"missing expires", "GET", key, with(getQ, "expires", ""), now, ErrBadSignature},
		{"non-hex sig", "GET", key, with(getQ, "sig", "zz"+getQ.Get("sig")[2:]), now, ErrBadSignature},
		{"truncated sig", "GET", key, with(getQ, "sig", getQ.Get("sig")[:32]), now, ErrBadSignature},
		{"signed with another secret", "GET", key, foreignQ, now, ErrBadSignature},
		{"invalid key", "GET", "../etc/passwd", getQ, now, ErrBadSignature},
		{"empty query", "GET", key, url.Values{}, now, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.Verify(tt.method, tt.key, tt.q, tt.now)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewLocalRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name      string
		dir, pub  string
		secret    []byte
		wantError bool
	}{
		{"valid", dir, "https://api.example.org/", testSecret, false},
		{"valid with path", dir, "http://127.0.0.1:8080/api", testSecret, false},
		{"short secret", dir, "https://api.example.org", []byte("short"), true},
		{"no secret", dir, "https://api.example.org", nil, true},
		{"relative URL", dir, "/files", testSecret, true},
		{"no scheme", dir, "api.example.org", testSecret, true},
		{"other scheme", dir, "ftp://api.example.org", testSecret, true},
		{"URL with query", dir, "https://api.example.org/?x=1", testSecret, true},
		{"empty dir", "", "https://api.example.org", testSecret, true},
		{"dir is a file", writeFile(t, filepath.Join(dir, "file"), "x"), "https://api.example.org", testSecret, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewLocal(tt.dir, tt.pub, tt.secret)
			if (err != nil) != tt.wantError {
				t.Errorf("NewLocal(%q, %q) error = %v, want error: %v", tt.dir, tt.pub, err, tt.wantError)
			}
		})
	}
	// The secret is copied: changing the caller's slice must not change
	// the signatures.
	secret := bytes.Clone(testSecret)
	l, err := NewLocal(dir, "https://api.example.org", secret)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := l.SignedGetURL(context.Background(), "k", time.Minute)
	secret[0] ^= 0xff
	_, q := signedQuery(t, raw)
	if err := l.Verify("GET", "k", q, time.Now()); err != nil {
		t.Errorf("Verify after the caller changed its secret slice: %v", err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(data))
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLocalBadKeysStayInside(t *testing.T) {
	base := t.TempDir()
	l, err := NewLocal(filepath.Join(base, "store"), "http://127.0.0.1", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range []string{"../escape.jpg", "a/../../escape.jpg", "/" + filepath.Join(base, "abs.jpg"), "..", "."} {
		if _, err := l.Put(ctx, key, strings.NewReader("x"), 1, ""); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "store" {
		t.Errorf("files appeared next to the store directory: %v", entries)
	}
	if err := filepath.WalkDir(l.dir, func(p string, d os.DirEntry, err error) error {
		if p != l.dir {
			t.Errorf("rejected key left %s behind", p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestLocalLayout(t *testing.T) {
	l := newTestLocal(t)
	ctx := context.Background()
	obj := put(t, l, "reports/r1/photo.jpg", []byte("jpeg bytes"), "image/jpeg")
	// The object is a plain file, so operators can read and back it up.
	got, err := os.ReadFile(filepath.Join(l.dir, "reports", "r1", "photo.jpg"))
	if err != nil || string(got) != "jpeg bytes" {
		t.Errorf("object file: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(l.dir, "reports", "r1", ".photo.jpg.meta")); err != nil {
		t.Errorf("sidecar: %v", err)
	}
	if obj.ETag == "" {
		t.Error("empty ETag")
	}

	t.Run("key conflicts", func(t *testing.T) {
		// A path cannot be both a file and a directory.
		put(t, l, "conflict/a", []byte("a"), "")
		if _, err := l.Put(ctx, "conflict/a/b", strings.NewReader("b"), 1, ""); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Put below an object = %v, want ErrInvalidKey", err)
		}
		put(t, l, "conflict/c/d", []byte("d"), "")
		if _, err := l.Put(ctx, "conflict/c", strings.NewReader("c"), 1, ""); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Put over a prefix = %v, want ErrInvalidKey", err)
		}
		if data, _ := getBytes(t, l, "conflict/a"); string(data) != "a" {
			t.Errorf("conflict/a = %q after the refused Put", data)
		}
	})

	t.Run("delete prunes empty directories", func(t *testing.T) {
		put(t, l, "prune/x/y/z.jpg", []byte("z"), "")
		put(t, l, "prune/keep.jpg", []byte("k"), "")
		if err := l.Delete(ctx, "prune/x/y/z.jpg"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(l.dir, "prune", "x")); !os.IsNotExist(err) {
			t.Errorf("prune/x still exists: %v", err)
		}
		if _, err := os.Stat(filepath.Join(l.dir, "prune", "keep.jpg")); err != nil {
			t.Errorf("prune/keep.jpg: %v", err)
		}
		// The directory can be used again at once.
		put(t, l, "prune/x/y/again.jpg", []byte("a"), "")
	})

	t.Run("open reader survives replacement", func(t *testing.T) {
		put(t, l, "snap/x", []byte("old"), "")
		rc, _, err := l.Get(ctx, "snap/x")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		put(t, l, "snap/x", []byte("new!"), "")
		buf := new(bytes.Buffer)
		if _, err := buf.ReadFrom(rc); err != nil || buf.String() != "old" {
			t.Errorf("reader opened before Put read %q, %v; want \"old\"", buf, err)
		}
	})
}

// TestLocalCrashLeftovers recreates on disk what a crash in the middle of
// Put leaves behind and checks that none of it is visible or trusted.
func TestLocalCrashLeftovers(t *testing.T) {
	l := newTestLocal(t)
	ctx := context.Background()
	put(t, l, "crash/photo.jpg", []byte("old photo"), "image/jpeg")
	dir := filepath.Join(l.dir, "crash")

	// Crash after the new sidecar was renamed but before the object was:
	// the sidecar's current entry describes a file that never arrived,
	// and its previous entry still describes the file in place.
	metaFile := filepath.Join(dir, ".photo.jpg.meta")
	var m localMeta
	if data, err := os.ReadFile(metaFile); err != nil || json.Unmarshal(data, &m) != nil || len(m.Versions) != 1 {
		t.Fatalf("sidecar after Put: %+v, %v", m, err)
	}
	orig := m.Versions[0]
	never := localVersion{ContentType: "text/html", ETag: "0123456789abcdef0123456789abcdef", Size: 12345, ModTimeNS: 1}
	writeJSON(t, metaFile, localMeta{Versions: []localVersion{never, orig}})
	st, err := l.Stat(ctx, "crash/photo.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if st.ContentType != "image/jpeg" || st.ETag != orig.ETag {
		t.Errorf("after a crash mid-Put Stat = %+v, want the old version's image/jpeg and ETag %q", st, orig.ETag)
	}
	// A sidecar that matches nothing is not trusted.
	writeJSON(t, metaFile, localMeta{Versions: []localVersion{never}})
	st, err = l.Stat(ctx, "crash/photo.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if st.ContentType != "application/octet-stream" || st.ETag == orig.ETag || st.ETag == never.ETag || st.Size != int64(len("old photo")) {
		t.Errorf("Stat trusted a sidecar of another version: %+v", st)
	}

	// Crash while the object was being written.
	stale := writeFile(t, filepath.Join(dir, tempPrefix+"123"), "half a pho")
	fresh := writeFile(t, filepath.Join(dir, tempPrefix+"456"), "upload in progress")
	// Crash between Delete's two removals.
	orphan := writeFile(t, filepath.Join(dir, ".gone.jpg.meta"), `{"versions":[]}`)
	old := time.Now().Add(-2 * staleAfter)
	for _, p := range []string{stale, orphan} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}

	got := walkKeys(t, l, "crash/")
	if len(got) != 1 || got["crash/photo.jpg"] != int64(len("old photo")) {
		t.Errorf("Walk = %v, want only crash/photo.jpg", got)
	}
	for p, wantGone := range map[string]bool{stale: true, orphan: true, fresh: false} {
		_, err := os.Stat(p)
		if gone := os.IsNotExist(err); gone != wantGone {
			t.Errorf("%s: removed = %v, want %v", filepath.Base(p), gone, wantGone)
		}
	}

	// A hand-placed file with a name that is not a valid key is not
	// reported, so the sweeper never gets a key it cannot delete.
	writeFile(t, filepath.Join(dir, "bad name.jpg"), "x")
	if got := walkKeys(t, l, "crash/"); len(got) != 1 {
		t.Errorf("Walk reported an invalid key: %v", got)
	}
}

func TestLocalCancelledPut(t *testing.T) {
	l := newTestLocal(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Put(ctx, "cancel/x", strings.NewReader("x"), 1, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with cancelled context = %v, want context.Canceled", err)
	}
	// Cancelled mid-stream: the body reader sees the cancellation.
	ctx, cancel = context.WithCancel(context.Background())
	body := &cancelAfter{r: strings.NewReader(strings.Repeat("x", 1<<20)), cancel: cancel}
	if _, err := l.Put(ctx, "cancel/y", onlyReader{body}, -1, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Put cancelled mid-stream = %v, want context.Canceled", err)
	}
	if _, err := l.Stat(context.Background(), "cancel/y"); !errors.Is(err, ErrNotFound) {
		t.Errorf("cancelled Put left an object: %v", err)
	}
}

// cancelAfter cancels its context after the first read.
type cancelAfter struct {
	r      *strings.Reader
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p[:min(len(p), 1024)])
	c.cancel()
	return n, err
}

func TestLocalPingUnavailable(t *testing.T) {
	base := t.TempDir()
	l, err := NewLocal(filepath.Join(base, "store"), "http://127.0.0.1", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	// The volume went away under the running server.
	if err := os.RemoveAll(filepath.Join(base, "store")); err != nil {
		t.Fatal(err)
	}
	if err := l.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping without directory = %v, want ErrUnavailable", err)
	}
}

// TestLocalConcurrentOverwrites races writers and readers on one key: every
// reader must get a content type that belongs to the bytes it reads (or the
// neutral fallback while versions churn), and the final state must be one
// writer's bytes with that writer's type.
func TestLocalConcurrentOverwrites(t *testing.T) {
	l := newTestLocal(t)
	ctx := context.Background()
	const key = "race/photo"
	const writers = 8
	put(t, l, key, []byte("v0"), "text/x-0")

	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for range 20 {
				v := fmt.Sprint(i)
				if _, err := l.Put(ctx, key, strings.NewReader("v"+v), -1, "text/x-"+v); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for range 20 {
				data, obj := getBytes(t, l, key)
				if want := "text/x-" + strings.TrimPrefix(string(data), "v"); obj.ContentType != want && obj.ContentType != defaultContentType {
					t.Errorf("read %q with content type %q", data, obj.ContentType)
				}
			}
		})
	}
	wg.Wait()
	data, obj := getBytes(t, l, key)
	if want := "text/x-" + strings.TrimPrefix(string(data), "v"); obj.ContentType != want {
		t.Errorf("final object %q has content type %q, want %q", data, obj.ContentType, want)
	}
}

// TestLocalCopyLinks: Copy gives the very file a second name instead of writing its bytes
// again, and the new key reads as written when it was copied, not when the file was, so a
// sweeper of old objects does not take a case's fresh copy of an old upload for debris.
// A temp link a crashed Copy left is reclaimed by the time in its name: its file's
// modification time is that of the (old) object it was linked from.
func TestLocalCopyLinks(t *testing.T) {
	l := newTestLocal(t)
	ctx := context.Background()
	src := put(t, l, "uploads/u1.jpg", []byte("uploaded an hour ago"), "image/jpeg")
	cp, err := l.Copy(ctx, src, "cases/c1/u1.jpg")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.Stat(filepath.Join(l.dir, "uploads", "u1.jpg"))
	b, _ := os.Stat(filepath.Join(l.dir, "cases", "c1", "u1.jpg"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Fatalf("the copy is not a link to the uploaded file: %v, %v", a, b)
	}
	if !cp.Modified.After(src.Modified) {
		t.Errorf("copy written at %v, not after the upload (%v)", cp.Modified, src.Modified)
	}
	if st, err := l.Stat(ctx, "cases/c1/u1.jpg"); err != nil || !st.Modified.Equal(cp.Modified) || st.ETag != src.ETag {
		t.Errorf("Stat of the copy = %+v, %v; want written %v, ETag %q", st, err, cp.Modified, src.ETag)
	}
	if st, err := l.Stat(ctx, "uploads/u1.jpg"); err != nil || !st.Modified.Equal(src.Modified) {
		t.Errorf("Stat of the upload = %+v, %v; want it unchanged, written %v", st, err, src.Modified)
	}

	dir := filepath.Join(l.dir, "cases", "c1")
	old := time.Now().Add(-2 * staleAfter)
	stale := writeFile(t, filepath.Join(dir, tempLinkPrefix+strconv.FormatInt(old.UnixNano(), 16)+"-a"), "x")
	fresh := writeFile(t, filepath.Join(dir, tempLinkPrefix+strconv.FormatInt(time.Now().UnixNano(), 16)+"-b"), "y")
	for _, p := range []string{stale, fresh} {
		if err := os.Chtimes(p, old, old); err != nil { // both files are old
			t.Fatal(err)
		}
	}
	walkKeys(t, l, "cases/")
	for p, wantGone := range map[string]bool{stale: true, fresh: false} {
		_, err := os.Stat(p)
		if gone := os.IsNotExist(err); gone != wantGone {
			t.Errorf("%s: removed = %v, want %v", filepath.Base(p), gone, wantGone)
		}
	}
}
