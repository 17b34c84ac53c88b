package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const (
	// minioPartSize bounds the memory an upload of unknown size uses:
	// minio-go buffers one part at a time, and without an explicit size it
	// picks parts of about 512 MiB to reach the 5 TiB S3 maximum. Photos
	// are far smaller; 5 MiB is the smallest part S3 allows.
	minioPartSize = 5 << 20

	// minioMaxParts is the S3 limit on parts per upload. A known size
	// beyond minioPartSize*minioMaxParts needs bigger parts, which minio-go
	// chooses itself when no part size is given.
	minioMaxParts = 10000

	// minioMaxRetries replaces minio-go's default of 10 attempts with
	// backoff, which keeps a request waiting for seconds when the server
	// is down. The API would rather answer 503 quickly and let the client
	// retry.
	minioMaxRetries = 3
)

// MinIOConfig says how to reach an S3-compatible server.
type MinIOConfig struct {
	// Endpoint is "host:port". A "http://" or "https://" prefix is also
	// accepted and then decides Secure.
	Endpoint string
	// AccessKey and SecretKey are the static credentials.
	AccessKey string
	SecretKey string
	// Bucket holds all objects; NewMinIO creates it, private, if missing.
	Bucket string
	// Region is the bucket's region. Empty lets minio-go ask the server
	// (once per bucket), which is right for MinIO.
	Region string
	// Secure selects HTTPS.
	Secure bool
}

// MinIO is a Store backed by an S3-compatible server through minio-go.
// Signed URLs are S3 presigned URLs, so they carry the host of the
// configured Endpoint: clients must be able to reach that address.
type MinIO struct {
	client *minio.Client
	bucket string
}

var _ Store = (*MinIO)(nil)

// NewMinIO connects to the server described by cfg and creates the bucket if
// it does not exist. New buckets have no policy, so they are private: objects
// are reachable only with credentials or a signed URL. If the server cannot
// be reached the error wraps ErrUnavailable, so the caller can retry.
func NewMinIO(ctx context.Context, cfg MinIOConfig) (*MinIO, error) {
	m, err := newMinIO(cfg)
	if err != nil {
		return nil, err
	}
	exists, err := m.client.BucketExists(ctx, m.bucket)
	if err != nil {
		return nil, m.err("check bucket", "", err)
	}
	if !exists {
		err := m.client.MakeBucket(ctx, m.bucket, minio.MakeBucketOptions{Region: cfg.Region})
		// Another instance starting at the same time may have won the race.
		if err != nil && minio.ToErrorResponse(err).Code != minio.BucketAlreadyOwnedByYou {
			return nil, m.err("create bucket", "", err)
		}
	}
	return m, nil
}

// newMinIO builds the client without talking to the server.
func newMinIO(cfg MinIOConfig) (*MinIO, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("storage: minio: endpoint and bucket are required")
	}
	host, secure := cfg.Endpoint, cfg.Secure
	// A URL-shaped endpoint is a common configuration slip; minio-go
	// rejects it with an obscure message, so accept it instead.
	if strings.Contains(host, "://") {
		u, err := url.Parse(host)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			return nil, fmt.Errorf("storage: minio: bad endpoint %q, want host:port", cfg.Endpoint)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	client, err := minio.New(host, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     secure,
		Region:     cfg.Region,
		MaxRetries: minioMaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: minio: %w", err)
	}
	return &MinIO{client: client, bucket: cfg.Bucket}, nil
}

// Put implements Store. With size -1 the object is uploaded in 5 MiB parts,
// so at most one part is held in memory.
func (m *MinIO) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (Object, error) {
	if err := ValidateKey(key); err != nil {
		return Object{}, err
	}
	ct, err := normalizeContentType(contentType)
	if err != nil {
		return Object{}, err
	}
	partSize := uint64(minioPartSize)
	if size > minioPartSize*minioMaxParts {
		partSize = 0
	}
	body := &bodyReader{ctx: ctx, r: r}
	info, err := m.client.PutObject(ctx, m.bucket, key, body, size, minio.PutObjectOptions{
		ContentType: ct,
		PartSize:    partSize,
	})
	if err != nil {
		if berr := body.bodyError(key, size); berr != nil {
			return Object{}, berr
		}
		return Object{}, m.err("put", key, err)
	}
	// S3 does not return the modification time on upload; asking for it
	// would cost a request and could fail after the upload succeeded, so
	// the local clock stands in.
	modified := info.LastModified
	if modified.IsZero() {
		modified = time.Now()
	}
	return Object{Key: key, ContentType: ct, ETag: info.ETag, Size: info.Size, Modified: modified}, nil
}

// Stat implements Store.
func (m *MinIO) Stat(ctx context.Context, key string) (Object, error) {
	if err := ValidateKey(key); err != nil {
		return Object{}, err
	}
	info, err := m.client.StatObject(ctx, m.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Object{}, m.err("stat", key, err)
	}
	return minioObject(info), nil
}

// Get implements Store.
func (m *MinIO) Get(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	if err := ValidateKey(key); err != nil {
		return nil, Object{}, err
	}
	obj, err := m.client.GetObject(ctx, m.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Object{}, m.err("get", key, err)
	}
	// GetObject is lazy; Stat sends the request, so a missing object or a
	// dead server shows up here rather than on the caller's first Read.
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, Object{}, m.err("get", key, err)
	}
	return &minioReader{obj: obj, m: m, key: key}, minioObject(info), nil
}

// minioReader classifies errors that happen mid-download, so a connection
// dropped while streaming a photo also reads as ErrUnavailable.
type minioReader struct {
	obj *minio.Object
	m   *MinIO
	key string
}

func (r *minioReader) Read(p []byte) (int, error) {
	n, err := r.obj.Read(p)
	if err != nil && err != io.EOF {
		err = r.m.err("read", r.key, err)
	}
	return n, err
}

func (r *minioReader) Close() error { return r.obj.Close() }

// Copy implements Store with a server-side copy on the condition that the
// source still has the version's ETag, so the bytes never leave the server.
func (m *MinIO) Copy(ctx context.Context, src Object, dst string) (Object, error) {
	if err := ValidateKey(src.Key); err != nil {
		return Object{}, err
	}
	if err := ValidateKey(dst); err != nil {
		return Object{}, err
	}
	if src.ETag == "" {
		return Object{}, fmt.Errorf("storage: minio copy %q: no ETag to copy the version of", src.Key)
	}
	info, err := m.client.CopyObject(ctx, minio.CopyDestOptions{Bucket: m.bucket, Object: dst},
		minio.CopySrcOptions{Bucket: m.bucket, Object: src.Key, MatchETag: src.ETag})
	if err != nil {
		if resp := minio.ToErrorResponse(err); resp.Code == "PreconditionFailed" || resp.StatusCode == http.StatusPreconditionFailed {
			return Object{}, fmt.Errorf("storage: minio copy %q: %w: %w", src.Key, ErrChanged, err)
		}
		return Object{}, m.err("copy", src.Key, err)
	}
	modified := info.LastModified
	if modified.IsZero() {
		modified = time.Now()
	}
	// The copy keeps the source's metadata (S3's default directive).
	return Object{Key: dst, ContentType: src.ContentType, ETag: info.ETag, Size: src.Size, Modified: modified}, nil
}

// Delete implements Store.
func (m *MinIO) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	err := m.client.RemoveObject(ctx, m.bucket, key, minio.RemoveObjectOptions{})
	// S3 answers a delete of a missing key with success already; the
	// check only guards servers that report NoSuchKey instead.
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return m.err("delete", key, err)
	}
	return nil
}

// SignedGetURL implements Store with an S3 presigned GET URL.
func (m *MinIO) SignedGetURL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	if err := validateTTL(ttl); err != nil {
		return "", err
	}
	u, err := m.client.PresignedGetObject(ctx, m.bucket, key, ttl, nil)
	if err != nil {
		return "", m.err("sign get", key, err)
	}
	return u.String(), nil
}

// SignedPutURL implements Store with an S3 presigned PUT URL. Content-Type
// is one of the signed headers, so the server rejects an upload that sends
// a different type.
func (m *MinIO) SignedPutURL(ctx context.Context, key, contentType string, ttl time.Duration) (string, map[string]string, error) {
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
	u, err := m.client.PresignHeader(ctx, http.MethodPut, m.bucket, key, ttl, nil, http.Header{"Content-Type": {ct}})
	if err != nil {
		return "", nil, m.err("sign put", key, err)
	}
	return u.String(), map[string]string{"Content-Type": ct}, nil
}

// Walk implements Store with a recursive listing. Listings do not carry
// the content type, so ContentType is empty. Keys that break the key rules
// (objects written by other tools) are skipped, as Local does, so that fn
// can always pass what it gets back to Delete.
func (m *MinIO) Walk(ctx context.Context, prefix string, fn func(Object) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	// Cancelling stops the listing's pagination when we leave early.
	listCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for info := range m.client.ListObjectsIter(listCtx, m.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if info.Err != nil {
			return m.err("walk", prefix, info.Err)
		}
		if ValidateKey(info.Key) != nil {
			continue
		}
		if err := fn(minioObject(info)); err != nil {
			return err
		}
	}
	// The listing ends silently when the context is done, which must not
	// pass for "no more objects".
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: minio walk %q: %w", prefix, err)
	}
	return nil
}

// Ping implements Store by checking that the bucket exists, which needs a
// reachable server, valid credentials and the bucket in place.
func (m *MinIO) Ping(ctx context.Context) error {
	exists, err := m.client.BucketExists(ctx, m.bucket)
	if err != nil {
		err = m.err("ping", "", err)
		if !errors.Is(err, ErrUnavailable) {
			// Readiness fails whatever the cause (e.g. bad credentials).
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	if !exists {
		return fmt.Errorf("storage: minio ping: %w: bucket %q does not exist", ErrUnavailable, m.bucket)
	}
	return nil
}

func minioObject(info minio.ObjectInfo) Object {
	return Object{Key: info.Key, ContentType: info.ContentType, ETag: info.ETag, Size: info.Size, Modified: info.LastModified}
}

// unavailableCodes are S3 error codes that mean the server is overloaded or
// failing rather than that the request was wrong.
var unavailableCodes = map[string]bool{
	"InternalError":              true,
	"ServiceUnavailable":         true,
	"SlowDown":                   true,
	"SlowDownRead":               true,
	"SlowDownWrite":              true,
	"RequestTimeout":             true,
	"XMinioServerNotInitialized": true,
	"XMinioStorageFull":          true,
}

// err wraps a minio-go error with the operation and key, mapping missing
// objects to ErrNotFound and server or network failures to ErrUnavailable.
// The original error stays in the chain for logs and errors.As.
func (m *MinIO) err(op, key string, err error) error {
	where := fmt.Sprintf("storage: minio %s bucket %q", op, m.bucket)
	if key != "" {
		where = fmt.Sprintf("storage: minio %s %q", op, key)
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch {
		case resp.Code == minio.NoSuchKey || resp.Code == "NoSuchUpload":
			return fmt.Errorf("%s: %w: %w", where, ErrNotFound, err)
		case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests,
			resp.StatusCode == http.StatusRequestTimeout, unavailableCodes[resp.Code]:
			return fmt.Errorf("%s: %w: %w", where, ErrUnavailable, err)
		}
		return fmt.Errorf("%s: %w", where, err)
	}
	if isNetworkErr(err) {
		return fmt.Errorf("%s: %w: %w", where, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// isNetworkErr reports whether err comes from failing to talk to the
// server: refused or reset connections, timeouts (including the caller's
// deadline running out while waiting for the server) and truncated
// responses. A cancelled context is the caller giving up, not the server
// failing, so it does not count.
func isNetworkErr(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}
