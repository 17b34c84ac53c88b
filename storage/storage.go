// Package storage keeps report photos and other blobs behind one small
// interface, Store, so the API and the background workers never know where
// the bytes live.
//
// Two implementations exist because City Eyes runs in two shapes:
//
//   - Local keeps objects in a directory on disk. It is the embedded default,
//     so a single binary works with no other service running, and it signs
//     its own download and upload URLs that the HTTP layer verifies.
//   - MinIO talks to any S3-compatible server (MinIO in production) and hands
//     out presigned URLs, so photo bytes go straight between the client and
//     the object store instead of through the API.
//
// Both implementations follow the same contract, which the package tests
// check against each of them: the same key rules, the same sentinel errors
// (ErrNotFound, ErrUnavailable, ErrInvalidKey) and the same streaming
// behaviour for uploads of unknown size.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Object describes a stored object.
type Object struct {
	// Key is the object's name inside the store, e.g. "reports/<id>/photo.jpg".
	Key string
	// ContentType is the media type given when the object was written. It
	// may be empty in results from Store.Walk, because S3 listings do not
	// carry it.
	ContentType string
	// ETag is an opaque version tag: it changes whenever the content is
	// replaced, which makes it usable for HTTP caching. It is not
	// guaranteed to be a hash of the content.
	ETag string
	// Size is the object's length in bytes.
	Size int64
	// Modified is when the object was last written.
	Modified time.Time
}

var (
	// ErrNotFound means the object (or upload) does not exist.
	ErrNotFound = errors.New("storage: object not found")

	// ErrUnavailable means the store cannot be reached or is failing
	// (network error, timeout, 5xx answer, full or read-only disk). The
	// condition is expected to pass: callers answer 503 and retry later.
	ErrUnavailable = errors.New("storage: store unavailable")

	// ErrInvalidKey means a key (or a Walk prefix) breaks the key rules
	// described on Store. It is a client error: callers answer 400.
	ErrInvalidKey = errors.New("storage: invalid key")

	// ErrBadSignature means a Local signed URL was not issued by this store
	// for this method and key, or was altered afterwards.
	ErrBadSignature = errors.New("storage: bad signature")

	// ErrExpired means a Local signed URL was genuine but its lifetime has
	// passed.
	ErrExpired = errors.New("storage: signed URL expired")

	// ErrChanged means Copy found its source replaced by other bytes since
	// the version it was asked to copy.
	ErrChanged = errors.New("storage: object changed")
)

// Store is what the API and workers need from an object store.
//
// Keys are made of segments separated by "/". A segment is 1 to
// MaxSegmentLen bytes from [A-Za-z0-9_.-] and does not start with "." (which
// rules out "." and ".." as well as hidden names the Local store uses for its
// own bookkeeping). A key is at most MaxKeyLen bytes. Every implementation
// enforces these rules, so a key that works with one store works with all
// of them; a key that breaks them gives ErrInvalidKey.
//
// Errors caused by the store being unreachable or failing wrap
// ErrUnavailable; asking for a missing object gives an error wrapping
// ErrNotFound. Implementations are safe for concurrent use.
type Store interface {
	// Put streams r to key, replacing any existing object atomically:
	// readers see either the old or the new object, never a mix, and a
	// failed Put leaves the old object in place. size is the byte count,
	// or -1 when unknown (streamed multipart photo); then the
	// implementation does not buffer the whole object in memory. When
	// size is known, exactly size bytes are read and a shorter body is an
	// error. An empty contentType is stored as "application/octet-stream".
	// An error while reading r is returned wrapped as is (not as
	// ErrUnavailable), since it is the uploader's fault, not the store's.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (Object, error)

	// Stat returns the object's metadata.
	Stat(ctx context.Context, key string) (Object, error)

	// Get opens the object for reading; the caller must close the reader.
	// The reader yields one version of the object from start to end, even
	// if Put replaces the key while it is being read.
	Get(ctx context.Context, key string) (io.ReadCloser, Object, error)

	// Copy makes dst a copy of src as it was in the version src describes
	// (as Get, Stat or Put returned it: its Key and ETag), without the bytes
	// passing through the caller, and returns dst's metadata. If src is gone
	// the error wraps ErrNotFound; if it holds other bytes than that version
	// now, ErrChanged. dst is replaced atomically, as by Put, and is its own
	// object from then on: what is later written to src does not reach it.
	Copy(ctx context.Context, src Object, dst string) (Object, error)

	// Delete removes the object. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error

	// SignedGetURL returns a short-lived URL a client can GET without other
	// credentials. ttl must be between one second and seven days (the S3
	// presigning limits, applied to every implementation alike). The
	// object need not exist yet.
	SignedGetURL(ctx context.Context, key string, ttl time.Duration) (string, error)

	// SignedPutURL returns a short-lived URL, and the headers the client
	// must send with it, to PUT the object directly. The URL only accepts
	// an upload with the given content type (empty means
	// "application/octet-stream"). ttl is bounded as for SignedGetURL.
	SignedPutURL(ctx context.Context, key, contentType string, ttl time.Duration) (url string, headers map[string]string, err error)

	// Walk calls fn for every object whose key starts with prefix (a plain
	// string prefix: "a/b" matches "a/b.jpg" and "a/b/c"). It is used by
	// the sweeper that deletes orphaned uploads. The order is unspecified,
	// and the Objects may leave ContentType empty. fn may delete the object
	// it is given. If fn returns an error, Walk stops and returns it
	// unchanged.
	Walk(ctx context.Context, prefix string, fn func(Object) error) error

	// Ping checks that the store is usable, for a readiness probe. A
	// failure wraps ErrUnavailable.
	Ping(ctx context.Context) error
}

const (
	// MaxKeyLen is the longest key accepted, in bytes (the S3 limit).
	MaxKeyLen = 1024

	// MaxSegmentLen is the longest key segment accepted, in bytes. It
	// leaves room below the usual 255-byte file name limit for the names
	// the Local store derives from a segment (its metadata sidecar).
	MaxSegmentLen = 200

	// defaultContentType is what an object without a declared type is
	// stored as, matching what S3 does.
	defaultContentType = "application/octet-stream"

	// minTTL and maxTTL bound signed URL lifetimes. They are the S3
	// presigning limits; Local applies them too so that code tested
	// against one store behaves the same against the other.
	minTTL = time.Second
	maxTTL = 7 * 24 * time.Hour
)

// ValidateKey reports whether key follows the key rules described on Store.
// The error wraps ErrInvalidKey. The HTTP layer can use it to answer 400
// before touching a store.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key longer than %d bytes", ErrInvalidKey, MaxKeyLen)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if err := validateSegment(seg); err != nil {
			return fmt.Errorf("%w: %q: %s", ErrInvalidKey, key, err)
		}
	}
	return nil
}

// validatePrefix checks a Walk prefix. A prefix may end in the middle of a
// segment ("reports/ab" matches "reports/abc.jpg"), so only the complete
// segments before the last "/" must be valid segments; the trailing partial
// one only needs allowed characters.
func validatePrefix(prefix string) error {
	if len(prefix) > MaxKeyLen {
		return fmt.Errorf("%w: prefix longer than %d bytes", ErrInvalidKey, MaxKeyLen)
	}
	segs := strings.Split(prefix, "/")
	for i, seg := range segs {
		var err error
		if i < len(segs)-1 {
			err = validateSegment(seg)
		} else if bad := strings.IndexFunc(seg, func(c rune) bool { return !keyChar(c) }); bad >= 0 {
			err = fmt.Errorf("character %q not allowed", seg[bad])
		}
		if err != nil {
			return fmt.Errorf("%w: prefix %q: %s", ErrInvalidKey, prefix, err)
		}
	}
	return nil
}

func validateSegment(seg string) error {
	switch {
	case seg == "":
		return errors.New("empty segment (leading, trailing or double slash)")
	case len(seg) > MaxSegmentLen:
		return fmt.Errorf("segment longer than %d bytes", MaxSegmentLen)
	case seg[0] == '.':
		return errors.New(`segment starts with "."`)
	}
	for i := range len(seg) {
		if !keyChar(rune(seg[i])) {
			return fmt.Errorf("character %q not allowed", seg[i])
		}
	}
	return nil
}

func keyChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '-'
}

func validateTTL(ttl time.Duration) error {
	if ttl < minTTL || ttl > maxTTL {
		return fmt.Errorf("storage: signed URL lifetime %v outside [%v, %v]", ttl, minTTL, maxTTL)
	}
	return nil
}

// normalizeContentType applies the default type and refuses control
// characters, which would let a caller smuggle extra headers into a signed
// upload.
func normalizeContentType(ct string) (string, error) {
	if ct == "" {
		return defaultContentType, nil
	}
	if strings.ContainsFunc(ct, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return "", fmt.Errorf("storage: content type %q contains control characters", ct)
	}
	return ct, nil
}

// bodyReader wraps the caller's reader to remember its errors and honour
// ctx. Implementations use it to tell "the uploader's stream broke" (return
// that error) from "the store broke" (ErrUnavailable): both surface from the
// same copy loop otherwise.
type bodyReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
	eof bool
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	// Checking ctx per read lets a cancelled request stop a long upload
	// even when the body reader itself would block or keep going.
	if err := b.ctx.Err(); err != nil {
		b.err = err
		return 0, err
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.err = err
	}
	return n, err
}

// bodyError returns the error to report when a Put failed while b was
// being consumed, or nil if the body is not to blame.
func (b *bodyReader) bodyError(key string, size int64) error {
	if b.err != nil {
		return fmt.Errorf("storage: put %q: reading body: %w", key, b.err)
	}
	// Only a body that really ended counts as short: a store that fails
	// mid-upload also stops reading early, and that is not the body's fault.
	if b.eof && size >= 0 && b.n < size {
		return fmt.Errorf("storage: put %q: body has %d bytes, declared %d: %w", key, b.n, size, io.ErrUnexpectedEOF)
	}
	return nil
}
