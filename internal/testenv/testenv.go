// Package testenv gives tests the servers they run against: the embedded default (SQLite,
// an in-process Redis-compatible server, a local directory) or, when `make test` has started
// them, real PostgreSQL, Redis and MinIO named by CITYEYES_TEST_* variables. Each test gets
// its own database, Redis database contents and bucket, so tests cannot see each other.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	_ "github.com/jackc/pgx/v5/stdlib" // the admin connection that creates test databases

	"github.com/city-eyes/cityeyes/migrations"
	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
)

// Real reports whether the tests run against real servers.
func Real() bool { return os.Getenv("CITYEYES_TEST_DATABASE_URL") != "" }

// Name is "real" or "embedded", for test names and messages.
func Name() string {
	if Real() {
		return "real"
	}
	return "embedded"
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// DatabaseURL returns the URL of a fresh, empty database for this test: a new PostgreSQL
// database (dropped at the end) or a new SQLite file.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("CITYEYES_TEST_DATABASE_URL")
	if admin == "" {
		return filepath.Join(t.TempDir(), "cityeyes.db")
	}
	name := randomName("cityeyes_test_")
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		db.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		db.Close()
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// DB opens a fresh, migrated database for this test.
func DB(t testing.TB) *models.DB {
	t.Helper()
	return OpenDB(t, DatabaseURL(t))
}

// OpenDB opens and migrates the database at url, closing it at the end of the test.
func OpenDB(t testing.TB, url string) *models.DB {
	t.Helper()
	ctx := context.Background()
	db, err := models.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dialect := migrations.SQLite
	if db.Dialect() == models.Postgres {
		dialect = migrations.Postgres
	}
	if _, err := migrations.Up(ctx, db.SQL(), dialect); err != nil {
		t.Fatal(err)
	}
	return db
}

// RedisURL returns a Redis URL for this test: the real server's, emptied first, or a new
// in-process server's. Real-server tests run one package at a time (make test passes -p 1),
// so emptying the database does not disturb another test.
func RedisURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("CITYEYES_TEST_REDIS_URL"); u != "" {
		opt, err := redis.ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opt)
		defer c.Close()
		if err := c.FlushDB(context.Background()).Err(); err != nil {
			t.Fatalf("flush test redis: %v", err)
		}
		return u
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() { // miniredis' key expiries move only when told
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				m.FastForward(100 * time.Millisecond)
			}
		}
	}()
	return "redis://" + m.Addr() + "/0"
}

// Redis is RedisURL as Asynq's connection option.
func Redis(t testing.TB) asynq.RedisConnOpt {
	t.Helper()
	opt, err := asynq.ParseRedisURI(RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	return opt
}

// S3 describes the MinIO server of the real-server run, with a bucket for this test.
type S3 struct {
	Endpoint, AccessKey, SecretKey, Bucket string
}

// MinIO returns the real MinIO server's settings with a fresh bucket name, or false in the
// embedded run.
func MinIO(t testing.TB) (S3, bool) {
	ep := os.Getenv("CITYEYES_TEST_S3_ENDPOINT")
	if ep == "" {
		return S3{}, false
	}
	return S3{Endpoint: ep, AccessKey: os.Getenv("CITYEYES_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("CITYEYES_TEST_S3_SECRET_KEY"), Bucket: strings.ReplaceAll(randomName("cityeyes-test-"), "_", "-")}, true
}

// Secret is a fixed 32-byte secret for tests' tokens and signed links.
var Secret = []byte("test-secret-0123456789abcdef0123")

// Store returns an object store for this test: a fresh MinIO bucket or a temp directory.
// The local store is also returned as such (nil for MinIO), for serving its signed links.
func Store(t testing.TB, publicURL string) (storage.Store, *storage.Local) {
	t.Helper()
	if s3, ok := MinIO(t); ok {
		m, err := storage.NewMinIO(context.Background(), storage.MinIOConfig{Endpoint: s3.Endpoint,
			AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, Bucket: s3.Bucket})
		if err != nil {
			t.Fatal(err)
		}
		return m, nil
	}
	l, err := storage.NewLocal(t.TempDir(), publicURL, Secret)
	if err != nil {
		t.Fatal(err)
	}
	return l, l
}

// FreeAddr returns a loopback address with a port free at the time of the call.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Objects lists every object key under prefix.
func Objects(t testing.TB, s storage.Store, prefix string) []string {
	t.Helper()
	var keys []string
	err := s.Walk(context.Background(), prefix, func(o storage.Object) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatal(fmt.Errorf("walk %q: %w", prefix, err))
	}
	return keys
}
