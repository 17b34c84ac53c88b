package storage

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ContentTypeParam is the query parameter of a Local signed PUT URL that
// carries the content type the URL was signed for. The signature covers it,
// so the HTTP layer can trust it after Verify succeeds: it must store the
// upload with this type and should refuse a request whose Content-Type
// header differs, or a client could upload, say, text/html into a slot
// signed for image/jpeg.
const ContentTypeParam = "ct"

const (
	// tempPrefix starts the names of files being written. Keys cannot
	// have a segment starting with ".", so these never collide with an
	// object and Walk can skip them.
	tempPrefix = ".tmp-"

	// tempLinkPrefix starts the temp names Copy links a file under, followed
	// by the time in hexadecimal nanoseconds: the file's own modification
	// time is that of the object it was linked from.
	tempLinkPrefix = tempPrefix + "link-"

	// metaSuffix ends the sidecar holding an object's content type and
	// ETag; the sidecar of "dir/name" is "dir/.name.meta", hidden for the
	// same reason.
	metaSuffix = ".meta"

	// staleAfter is how old a temp file or an orphaned sidecar must be
	// before Walk reclaims it. Live uploads touch their temp file with
	// every write, so anything this old was left behind by a crash.
	staleAfter = time.Hour

	// minSecretLen is the shortest HMAC key accepted; anything shorter
	// would make signed URLs guessable.
	minSecretLen = 16

	dirPerm  = 0o750
	filePerm = 0o640
)

// Local is a Store that keeps objects as plain files in a directory: the
// embedded default that needs no other service.
//
// An object with key "a/b.jpg" is the file "<dir>/a/b.jpg", so its bytes can
// be inspected and backed up with ordinary tools. Its content type and ETag
// live in a small JSON sidecar, "<dir>/a/.b.jpg.meta". Because keys map to
// paths, one key cannot be both an object and a prefix of other objects'
// keys ("a" and "a/b"); Put reports that clash as ErrInvalidKey.
//
// The directory belongs to one process: writers to the same key are
// serialised in memory, not with file locks.
//
// Local serves no HTTP itself. Its signed URLs point at
// "{publicURL}/files/{key}", where the HTTP layer calls Verify and then Get
// or Put.
type Local struct {
	dir       string // absolute, cleaned
	publicURL string // without trailing slash
	secret    []byte

	// commitLocks serialise the short "write sidecar, rename object" step
	// (and Delete) per key, picked by hash. Without them two Puts to one
	// key could interleave as sidecar A, sidecar B, object B, object A,
	// leaving A's bytes with B's sidecar. The copy itself runs unlocked.
	commitLocks [64]sync.Mutex
}

func (l *Local) commitLock(key string) *sync.Mutex {
	h := fnv.New32a()
	io.WriteString(h, key)
	return &l.commitLocks[h.Sum32()%uint32(len(l.commitLocks))]
}

// localMeta is the sidecar content: the metadata of the current version of
// the object and, during and after an overwrite, of the previous one.
//
// Put writes the sidecar before renaming the new file into place. A reader
// that looks between the two renames, or a restart after a crash between
// them, finds the old file with the new sidecar; the previous entry still
// describes that file. Each entry names its file by size and modification
// time (rename keeps the temp file's mtime), and an entry that matches
// neither is ignored rather than trusted.
type localMeta struct {
	Versions []localVersion `json:"versions"`
}

type localVersion struct {
	ContentType string `json:"content_type"`
	// ETag is a content hash computed while writing. Modification times
	// alone would not do: the kernel updates them in coarse ticks, so two
	// same-sized versions written in quick succession could share a tag.
	ETag      string `json:"etag"`
	Size      int64  `json:"size"`
	ModTimeNS int64  `json:"mod_time_ns"`
	// WrittenNS is when the key got this version, where that is not the
	// file's modification time: a file Copy linked under a new key keeps
	// the time it was first written, and is reported as written when it
	// was linked (so a sweeper of old objects takes it for the new object
	// it is under that key).
	WrittenNS int64 `json:"written_ns,omitempty"`
}

func (v localVersion) matches(fi fs.FileInfo) bool {
	return v.Size == fi.Size() && v.ModTimeNS == fi.ModTime().UnixNano() && v.ContentType != "" && v.ETag != ""
}

// NewLocal returns a Local store rooted at dir, creating the directory if
// needed. publicURL is the absolute http(s) URL under which the HTTP layer
// serves "/files/*" (e.g. "https://api.example.org"); signed URLs are built
// from it. secret is the HMAC key for signed URLs, at least 16 bytes; it is
// copied.
func NewLocal(dir, publicURL string, secret []byte) (*Local, error) {
	if dir == "" {
		return nil, errors.New("storage: local: empty directory")
	}
	if len(secret) < minSecretLen {
		return nil, fmt.Errorf("storage: local: secret must be at least %d bytes", minSecretLen)
	}
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("storage: local: public URL %q is not an absolute http(s) URL without query", publicURL)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: local: %w", err)
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("storage: local: create %s: %w", abs, err)
	}
	return &Local{
		dir:       abs,
		publicURL: strings.TrimRight(publicURL, "/"),
		secret:    append([]byte(nil), secret...),
	}, nil
}

var _ Store = (*Local)(nil)

// path returns the file of a validated key.
func (l *Local) path(key string) string {
	return filepath.Join(l.dir, filepath.FromSlash(key))
}

func metaPath(objPath string) string {
	return filepath.Join(filepath.Dir(objPath), "."+filepath.Base(objPath)+metaSuffix)
}

// Put implements Store. The object is written to a temp file in the target
// directory, fsynced and renamed over the key, and the directory is fsynced,
// so a crash leaves either the old object or the complete new one under the
// key, never a partial file.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (Object, error) {
	if err := ValidateKey(key); err != nil {
		return Object{}, err
	}
	ct, err := normalizeContentType(contentType)
	if err != nil {
		return Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return Object{}, err
	}
	final := l.path(key)
	if fi, err := os.Lstat(final); err == nil && fi.IsDir() {
		return Object{}, fmt.Errorf("%w: %q is already a prefix of other keys", ErrInvalidKey, key)
	}
	dir := filepath.Dir(final)

	tmp, err := l.createTemp(dir, key)
	if err != nil {
		return Object{}, err
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	body := &bodyReader{ctx: ctx, r: r}
	var src io.Reader = body
	if size >= 0 {
		src = io.LimitReader(body, size)
	}
	hash := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, hash), src)
	if err != nil {
		if berr := body.bodyError(key, size); berr != nil {
			return Object{}, berr
		}
		return Object{}, localErr("put", key, err)
	}
	if size >= 0 && n != size {
		return Object{}, body.bodyError(key, size)
	}
	// Chmod before Sync so the permission change is durable too.
	if err := tmp.Chmod(filePerm); err != nil {
		return Object{}, localErr("put", key, err)
	}
	if err := tmp.Sync(); err != nil {
		return Object{}, localErr("put", key, err)
	}
	fi, err := tmp.Stat()
	if err != nil {
		return Object{}, localErr("put", key, err)
	}
	if err := tmp.Close(); err != nil {
		return Object{}, localErr("put", key, err)
	}

	// Half the SHA-256 is plenty to tell versions apart and keeps the tag
	// the length of an S3 (MD5) ETag.
	cur := localVersion{
		ContentType: ct,
		ETag:        hex.EncodeToString(hash.Sum(nil)[:16]),
		Size:        fi.Size(),
		ModTimeNS:   fi.ModTime().UnixNano(),
	}
	if err := l.commit(key, final, tmp.Name(), cur, &committed); err != nil {
		return Object{}, err
	}
	return Object{Key: key, ContentType: ct, ETag: cur.ETag, Size: fi.Size(), Modified: fi.ModTime()}, nil
}

// commit puts the file tmp, written and synced beside final, in place as key's version cur:
// the sidecar first, then the rename (see localMeta), then the directory synced. committed
// is set once tmp is no longer the caller's to remove.
func (l *Local) commit(key, final, tmp string, cur localVersion, committed *bool) error {
	dir := filepath.Dir(final)
	mu := l.commitLock(key)
	mu.Lock()
	defer mu.Unlock()
	meta := localMeta{Versions: []localVersion{cur}}
	if old, err := os.Lstat(final); err == nil {
		if prev, ok := l.version(final, old); ok {
			meta.Versions = append(meta.Versions, prev)
		}
	}
	data, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("storage: local put %q: %w", key, err)
	}
	if err := l.writeFileAtomic(dir, metaPath(final), key, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return localErr("put", key, err)
	}
	*committed = true
	if err := syncDir(dir); err != nil {
		return localErr("put", key, err)
	}
	return nil
}

// Copy implements Store. The file src names, if it is still the version
// asked for, gets dst as a second name (a hard link): no bytes are copied
// or synced again, and since Put and Delete replace or remove names rather
// than change files, later writes to src do not reach dst. Where the file
// system cannot link, the bytes of that very file are copied as by Put.
func (l *Local) Copy(ctx context.Context, src Object, dst string) (Object, error) {
	if err := ValidateKey(src.Key); err != nil {
		return Object{}, err
	}
	if err := ValidateKey(dst); err != nil {
		return Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return Object{}, err
	}
	sp := l.path(src.Key)
	f, err := os.Open(sp)
	if isNotExist(err) {
		return Object{}, notFound("copy", src.Key)
	} else if err != nil {
		return Object{}, localErr("copy", src.Key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Object{}, localErr("copy", src.Key, err)
	}
	v, ok := l.version(sp, fi)
	if !fi.Mode().IsRegular() || !ok || src.ETag == "" || v.ETag != src.ETag {
		return Object{}, fmt.Errorf("storage: local copy %q: %w", src.Key, ErrChanged)
	}
	final := l.path(dst)
	if fi, err := os.Lstat(final); err == nil && fi.IsDir() {
		return Object{}, fmt.Errorf("%w: %q is already a prefix of other keys", ErrInvalidKey, dst)
	}
	tmp, err := l.linkTemp(sp, filepath.Dir(final), dst)
	if errors.Is(err, errCannotLink) {
		return l.Put(ctx, dst, f, fi.Size(), v.ContentType)
	}
	if err != nil {
		return Object{}, err
	}
	committed := false
	defer func() {
		if !committed {
			os.Remove(tmp)
		}
	}()
	// The link was made by name: make sure it is the file checked above, not
	// one a Put renamed over src in between.
	if lfi, err := os.Lstat(tmp); err != nil || !os.SameFile(lfi, fi) {
		return Object{}, fmt.Errorf("storage: local copy %q: %w", src.Key, ErrChanged)
	}
	// The same file, so the same size and modification time: the version
	// entry describes it under dst as under src, but dst was written now.
	cur := v
	cur.WrittenNS = time.Now().UnixNano()
	if err := l.commit(dst, final, tmp, cur, &committed); err != nil {
		return Object{}, err
	}
	return Object{Key: dst, ContentType: cur.ContentType, ETag: cur.ETag, Size: fi.Size(), Modified: time.Unix(0, cur.WrittenNS)}, nil
}

// errCannotLink is linkTemp's error where the file system has no hard links.
var errCannotLink = errors.New("storage: local: cannot link")

// linkTemp gives the file at p a temp name in dir, creating dir as Put does.
func (l *Local) linkTemp(p, dir, key string) (string, error) {
	var rnd [8]byte
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EEXIST) {
				return "", fmt.Errorf("%w: %q: a parent of this key is already an object", ErrInvalidKey, key)
			}
			return "", localErr("copy", key, err)
		}
		_, _ = rand.Read(rnd[:])
		tmp := filepath.Join(dir, tempLinkPrefix+strconv.FormatInt(time.Now().UnixNano(), 16)+"-"+hex.EncodeToString(rnd[:]))
		err := os.Link(p, tmp)
		switch {
		case err == nil:
			return tmp, nil
		case errors.Is(err, syscall.EXDEV), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EMLINK),
			errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EOPNOTSUPP):
			return "", errCannotLink
		case isNotExist(err) && attempt < 3:
			// dir pruned by a concurrent Delete (see createTemp), or src gone.
			if _, serr := os.Lstat(p); isNotExist(serr) {
				return "", notFound("copy", key)
			}
			continue
		case errors.Is(err, fs.ErrExist) && attempt < 3:
			continue
		}
		return "", localErr("copy", key, err)
	}
}

// createTemp makes the parent directories and a temp file in dir.
func (l *Local) createTemp(dir, key string) (*os.File, error) {
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EEXIST) {
				return nil, fmt.Errorf("%w: %q: a parent of this key is already an object", ErrInvalidKey, key)
			}
			return nil, localErr("put", key, err)
		}
		f, err := os.CreateTemp(dir, tempPrefix+"*")
		if err == nil {
			return f, nil
		}
		// A concurrent Delete prunes directories it leaves empty, which
		// can remove dir between MkdirAll and CreateTemp. Recreate it.
		if errors.Is(err, fs.ErrNotExist) && attempt < 3 {
			continue
		}
		return nil, localErr("put", key, err)
	}
}

// writeFileAtomic puts data at path through a temp file and rename, so
// readers never see a partial file.
func (l *Local) writeFileAtomic(dir, path, key string, data []byte) error {
	f, err := l.createTemp(dir, key)
	if err != nil {
		return err
	}
	name := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(filePerm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
		return localErr("put", key, err)
	}
	return nil
}

// syncDir makes renames in dir durable; without it a crash can forget a
// rename even though the file data itself was synced.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Stat implements Store.
func (l *Local) Stat(ctx context.Context, key string) (Object, error) {
	if err := ValidateKey(key); err != nil {
		return Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return Object{}, err
	}
	p := l.path(key)
	fi, err := os.Lstat(p)
	if isNotExist(err) {
		return Object{}, notFound("stat", key)
	} else if err != nil {
		return Object{}, localErr("stat", key, err)
	}
	if !fi.Mode().IsRegular() {
		return Object{}, notFound("stat", key)
	}
	return l.object(key, p, fi), nil
}

// Get implements Store. The returned reader is the open file; on Unix it
// keeps reading the version that was opened even if Put replaces the key.
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	if err := ValidateKey(key); err != nil {
		return nil, Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, Object{}, err
	}
	p := l.path(key)
	f, err := os.Open(p)
	if isNotExist(err) {
		return nil, Object{}, notFound("get", key)
	} else if err != nil {
		return nil, Object{}, localErr("get", key, err)
	}
	// Stat the open file, not the path, so the metadata describes exactly
	// the bytes the caller will read.
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Object{}, localErr("get", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, Object{}, notFound("get", key)
	}
	return f, l.object(key, p, fi), nil
}

// object builds the Object for the file p, taking the content type and
// ETag from the sidecar entry that belongs to this version of the file.
func (l *Local) object(key, p string, fi fs.FileInfo) Object {
	obj := Object{Key: key, ContentType: defaultContentType, ETag: fallbackETag(fi), Size: fi.Size(), Modified: fi.ModTime()}
	if v, ok := l.version(p, fi); ok {
		obj.ContentType, obj.ETag = v.ContentType, v.ETag
		if v.WrittenNS != 0 {
			obj.Modified = time.Unix(0, v.WrittenNS)
		}
	}
	return obj
}

// version returns the sidecar entry describing the file p as fi sees it.
func (l *Local) version(p string, fi fs.FileInfo) (localVersion, bool) {
	data, err := os.ReadFile(metaPath(p))
	if err != nil {
		return localVersion{}, false
	}
	var m localMeta
	if json.Unmarshal(data, &m) != nil {
		return localVersion{}, false
	}
	for _, v := range m.Versions {
		if v.matches(fi) {
			return v, true
		}
	}
	return localVersion{}, false
}

// fallbackETag serves a file without a valid sidecar (crash debris, or a
// file copied in by hand). Like many web servers it uses modification time
// and size; the "-" keeps it apart from the hex hashes Put records.
func fallbackETag(fi fs.FileInfo) string {
	return strconv.FormatInt(fi.ModTime().UnixNano(), 16) + "-" + strconv.FormatInt(fi.Size(), 16)
}

// Delete implements Store. It also removes the sidecar and then any parent
// directories left empty, so deleted report folders do not pile up.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := l.path(key)
	fi, err := os.Lstat(p)
	switch {
	case isNotExist(err):
		return nil
	case err != nil:
		return localErr("delete", key, err)
	case fi.IsDir():
		// A directory is a prefix, not an object: nothing to delete.
		return nil
	}
	mu := l.commitLock(key)
	mu.Lock()
	err = os.Remove(p)
	if err == nil || isNotExist(err) {
		err = os.Remove(metaPath(p))
	}
	mu.Unlock()
	if err != nil && !isNotExist(err) {
		return localErr("delete", key, err)
	}
	// Best effort: Remove fails on a non-empty directory, which is where
	// pruning must stop anyway. A Put racing with this re-creates the
	// directory (see createTemp).
	for d := filepath.Dir(p); d != l.dir && strings.HasPrefix(d, l.dir+string(filepath.Separator)); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break
		}
	}
	return nil
}

// SignedGetURL implements Store. The URL is
// "{publicURL}/files/{key}?expires=<unix>&sig=<hex>", where sig is
// HMAC-SHA256(secret, "GET\n"+key+"\n"+expires).
func (l *Local) SignedGetURL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	if err := validateTTL(ttl); err != nil {
		return "", err
	}
	return l.signedURL(http.MethodGet, key, "", time.Now().Add(ttl)), nil
}

// SignedPutURL implements Store. The URL is
// "{publicURL}/files/{key}?ct=<type>&expires=<unix>&sig=<hex>", where sig is
// HMAC-SHA256(secret, "PUT\n"+key+"\n"+expires+"\n"+type); the returned
// headers hold the Content-Type the client must send. See ContentTypeParam
// for what the HTTP layer does with the type.
func (l *Local) SignedPutURL(ctx context.Context, key, contentType string, ttl time.Duration) (string, map[string]string, error) {
	if err := ValidateKey(key); err != nil {
		return "", nil, err
	}
	ct, err := normalizeContentType(contentType)
	if err != nil {
		return "", nil, err
	}
	if err := validateTTL(ttl); err != nil {
		return "", nil, err
	}
	u := l.signedURL(http.MethodPut, key, ct, time.Now().Add(ttl))
	return u, map[string]string{"Content-Type": ct}, nil
}

func (l *Local) signedURL(method, key, contentType string, expiresAt time.Time) string {
	expires := strconv.FormatInt(expiresAt.Unix(), 10)
	q := url.Values{}
	q.Set("expires", expires)
	if method == http.MethodPut {
		q.Set(ContentTypeParam, contentType)
	}
	q.Set("sig", hex.EncodeToString(l.sign(method, key, expires, contentType)))
	// Key characters are all URL-safe, so the key goes into the path as is.
	return l.publicURL + "/files/" + key + "?" + q.Encode()
}

// sign computes the MAC of a signed URL. The fields are joined with "\n",
// which cannot occur in a method, key or decimal number, so different
// inputs never produce the same message; the content type is last, so it
// needs no such guarantee.
func (l *Local) sign(method, key, expires, contentType string) []byte {
	m := hmac.New(sha256.New, l.secret)
	io.WriteString(m, method+"\n"+key+"\n"+expires)
	if method == http.MethodPut {
		io.WriteString(m, "\n"+contentType)
	}
	return m.Sum(nil)
}

// Verify checks a request against a signed URL issued by this store: method
// is the request's HTTP method ("GET" or "PUT"), key the path below
// "/files/", q the request's query, now the current time. It returns nil if
// the URL was signed for this method and key and has not expired, an error
// wrapping ErrBadSignature if it was not signed so (including a malformed
// key or query), or ErrExpired if it was but its time has passed. The MAC
// comparison is constant-time.
//
// After Verify, the HTTP layer serves GET with Get and PUT with Put, storing
// the upload with the content type q.Get(ContentTypeParam).
func (l *Local) Verify(method, key string, q url.Values, now time.Time) error {
	method = strings.ToUpper(method)
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	if method != http.MethodGet && method != http.MethodPut {
		return fmt.Errorf("%w: method %s is never signed", ErrBadSignature, method)
	}
	expires := q.Get("expires")
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad or missing expires", ErrBadSignature)
	}
	sig, err := hex.DecodeString(q.Get("sig"))
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("%w: bad or missing sig", ErrBadSignature)
	}
	if !hmac.Equal(sig, l.sign(method, key, expires, q.Get(ContentTypeParam))) {
		return ErrBadSignature
	}
	// Expiry is checked after the MAC so that a forged expires shows up as
	// a bad signature, not as "expired".
	if now.After(time.Unix(exp, 0)) {
		return ErrExpired
	}
	return nil
}

// walkStop carries fn's error through filepath.WalkDir, which would
// otherwise act on fs.SkipDir or fs.SkipAll returned by fn instead of
// handing them back to Walk's caller.
type walkStop struct{ err error }

func (w walkStop) Error() string { return w.err.Error() }

// Walk implements Store. It visits only directories that can hold matching
// keys, and skips files whose names are not valid keys (files put into the
// directory by hand). Since the sweeper walks the tree regularly anyway,
// Walk also deletes temp files and orphaned sidecars older than an hour
// that it passes, which are what a crash during Put leaves behind.
func (l *Local) Walk(ctx context.Context, prefix string, fn func(Object) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	root := l.dir
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		root = l.path(prefix[:i])
	}
	now := time.Now()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// A missing root means no keys under it; a directory that
			// vanished mid-walk was emptied by a concurrent Delete.
			if isNotExist(err) {
				return nil
			}
			return localErr("walk", prefix, err)
		}
		if err := ctx.Err(); err != nil {
			return walkStop{err}
		}
		if p == l.dir {
			return nil
		}
		rel, err := filepath.Rel(l.dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir // never ours
			}
			l.reclaim(p, d.Name(), now)
			return nil
		}
		if d.IsDir() {
			// Descend only where a matching key can be: below the prefix,
			// or on the way down to it.
			if strings.HasPrefix(key+"/", prefix) || strings.HasPrefix(prefix, key+"/") {
				return nil
			}
			return fs.SkipDir
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) || ValidateKey(key) != nil {
			return nil
		}
		fi, err := d.Info()
		if isNotExist(err) {
			return nil // deleted since the directory was read
		} else if err != nil {
			return localErr("walk", key, err)
		}
		if err := fn(l.object(key, p, fi)); err != nil {
			return walkStop{err}
		}
		return nil
	})
	var stop walkStop
	if errors.As(err, &stop) {
		return stop.err
	}
	return err
}

// reclaim deletes a hidden file found by Walk if it is crash debris: a temp
// file, or a sidecar whose object is gone, untouched for staleAfter.
func (l *Local) reclaim(p, name string, now time.Time) {
	var orphan bool
	switch {
	case strings.HasPrefix(name, tempPrefix):
		orphan = true
	case strings.HasSuffix(name, metaSuffix):
		obj := filepath.Join(filepath.Dir(p), strings.TrimSuffix(name[1:], metaSuffix))
		_, err := os.Lstat(obj)
		orphan = isNotExist(err)
	}
	if !orphan {
		return
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return
	}
	made := fi.ModTime()
	// A link Copy is making has the modification time of the file it names,
	// however old; its name says when it was made.
	if stamp, ok := strings.CutPrefix(name, tempLinkPrefix); ok {
		ns, _, _ := strings.Cut(stamp, "-")
		if n, err := strconv.ParseInt(ns, 16, 64); err == nil {
			made = time.Unix(0, n)
		}
	}
	if now.Sub(made) > staleAfter {
		os.Remove(p)
	}
}

// Ping implements Store by creating and removing a file in the directory,
// which catches a missing directory, a read-only mount and lost
// permissions, not just a directory that exists.
func (l *Local) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.CreateTemp(l.dir, tempPrefix+"ping-*")
	if err != nil {
		return fmt.Errorf("storage: local ping %s: %w: %w", l.dir, ErrUnavailable, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("storage: local ping %s: %w: %w", l.dir, ErrUnavailable, err)
	}
	return nil
}

func isNotExist(err error) bool {
	// ENOTDIR: a parent of the path is a file, so the path cannot exist.
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func notFound(op, key string) error {
	return fmt.Errorf("storage: local %s %q: %w", op, key, ErrNotFound)
}

// localErr wraps a file system error with the operation and key, and marks
// the failures that come from the disk rather than the request (no space,
// quota, I/O error, read-only, out of file descriptors) as ErrUnavailable,
// because they pass once an operator intervenes and a retry can succeed.
func localErr(op, key string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EIO),
		errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return fmt.Errorf("storage: local %s %q: %w: %w", op, key, ErrUnavailable, err)
	default:
		return fmt.Errorf("storage: local %s %q: %w", op, key, err)
	}
}
