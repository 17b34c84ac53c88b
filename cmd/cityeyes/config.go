package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/city-eyes/cityeyes/api"
)

// config is the whole configuration of a process, read once from CITYEYES_* variables
// (CONTRACT.md, "Running"). Nothing else reads the environment.
type config struct {
	Addr        string
	PublicURL   string // base URL clients reach this server at, for the local store's links
	DataDir     string
	DatabaseURL string // postgres://... or an SQLite file path
	RedisURL    string // "" runs the embedded Redis-compatible server
	S3          struct {
		Endpoint, AccessKey, SecretKey, Bucket string
		Secure                                 bool
	}
	FCM struct {
		CredentialsFile, ProjectID, Endpoint string
	}
	JWTSecret []byte
	Demo      bool // load the demo city into an empty database
	LogJSON   bool
	// Limits are the API's write rate limits, per minute (CITYEYES_LIMIT_*; 0 keeps the
	// default): a load test from one address needs them raised.
	Limits api.Limits
	// MetricsAddr is where a worker alone serves /metrics, /healthz and /readyz ("" for
	// nowhere); serve and api serve them on Addr.
	MetricsAddr string
	// ShutdownTimeout bounds how long requests and tasks in flight may take to finish
	// after SIGTERM.
	ShutdownTimeout time.Duration
}

// loadConfig reads the configuration. Secrets may come from NAME_FILE instead of NAME, as
// container platforms mount them. Without CITYEYES_JWT_SECRET a random secret is made once
// and kept in the data directory, so tokens survive a restart of the embedded default.
func loadConfig(getenv func(string) string) (*config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	secret := func(name string) (string, error) {
		if path := getenv(name + "_FILE"); path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				return "", fmt.Errorf("%s_FILE: %w", name, err)
			}
			return strings.TrimSpace(string(b)), nil
		}
		return getenv(name), nil
	}
	boolean := func(name string, def bool) (bool, error) {
		v := get(name, strconv.FormatBool(def))
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("%s=%q: want true or false", name, v)
		}
		return b, nil
	}
	var err error
	c := &config{}
	c.Addr = get("CITYEYES_ADDR", "127.0.0.1:8080")
	c.PublicURL = strings.TrimRight(get("CITYEYES_PUBLIC_URL", "http://"+c.Addr), "/")
	c.DataDir = get("CITYEYES_DATA_DIR", "data")
	if c.DatabaseURL, err = secret("CITYEYES_DATABASE_URL"); err != nil {
		return nil, err
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = filepath.Join(c.DataDir, "cityeyes.db")
	}
	if c.RedisURL, err = secret("CITYEYES_REDIS_URL"); err != nil {
		return nil, err
	}
	c.S3.Endpoint = get("CITYEYES_S3_ENDPOINT", "")
	if c.S3.AccessKey, err = secret("CITYEYES_S3_ACCESS_KEY"); err != nil {
		return nil, err
	}
	if c.S3.SecretKey, err = secret("CITYEYES_S3_SECRET_KEY"); err != nil {
		return nil, err
	}
	c.S3.Bucket = get("CITYEYES_S3_BUCKET", "cityeyes")
	if c.S3.Secure, err = boolean("CITYEYES_S3_SECURE", false); err != nil {
		return nil, err
	}
	if c.S3.Endpoint != "" && (c.S3.AccessKey == "" || c.S3.SecretKey == "") {
		return nil, errors.New("CITYEYES_S3_ENDPOINT is set: CITYEYES_S3_ACCESS_KEY and CITYEYES_S3_SECRET_KEY are required too")
	}
	c.FCM.CredentialsFile = get("CITYEYES_FCM_CREDENTIALS_FILE", "")
	c.FCM.ProjectID = get("CITYEYES_FCM_PROJECT_ID", "")
	c.FCM.Endpoint = get("CITYEYES_FCM_ENDPOINT", "")
	if (c.FCM.CredentialsFile != "" || c.FCM.Endpoint != "") && c.FCM.ProjectID == "" {
		return nil, errors.New("FCM is configured: CITYEYES_FCM_PROJECT_ID is required too")
	}
	if c.Demo, err = boolean("CITYEYES_DEMO", true); err != nil {
		return nil, err
	}
	switch f := get("CITYEYES_LOG_FORMAT", "text"); f {
	case "json", "text":
		c.LogJSON = f == "json"
	default:
		return nil, fmt.Errorf("CITYEYES_LOG_FORMAT=%q: want json or text", f)
	}
	c.MetricsAddr = get("CITYEYES_METRICS_ADDR", "")
	if v := get("CITYEYES_SHUTDOWN_TIMEOUT", "25s"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("CITYEYES_SHUTDOWN_TIMEOUT=%q: want a positive duration such as 25s", v)
		}
		c.ShutdownTimeout = d
	}
	for name, dst := range map[string]*int{
		"CITYEYES_LIMIT_WRITES_PER_USER": &c.Limits.WritesPerUser, "CITYEYES_LIMIT_WRITES_PER_IP": &c.Limits.WritesPerIP,
		"CITYEYES_LIMIT_REPORTS_PER_USER": &c.Limits.ReportsPerUser, "CITYEYES_LIMIT_DEVICES_PER_IP": &c.Limits.DevicesPerIP,
		"CITYEYES_LIMIT_LOGINS_PER_IP": &c.Limits.LoginsPerIP,
	} {
		v := get(name, "0")
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s=%q: want a number of requests a minute", name, v)
		}
		*dst = n
	}
	s, err := secret("CITYEYES_JWT_SECRET")
	if err != nil {
		return nil, err
	}
	if s == "" {
		if s, err = localSecret(filepath.Join(c.DataDir, "jwt-secret")); err != nil {
			return nil, err
		}
	}
	if len(s) < 32 {
		return nil, errors.New("CITYEYES_JWT_SECRET must be at least 32 characters")
	}
	c.JWTSecret = []byte(s)
	return c, nil
}

// localSecret returns the secret kept in path, making it on first use. The file is created
// exclusively, so an api and a worker started together on a fresh data directory agree on
// one secret.
func localSecret(path string) (string, error) {
	for range 2 {
		if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return strings.TrimSpace(string(b)), nil
		}
		buf := make([]byte, 32)
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue // another process made it first: read theirs
		}
		if err != nil {
			return "", fmt.Errorf("keep the generated JWT secret: %w", err)
		}
		s := hex.EncodeToString(buf)
		_, werr := f.WriteString(s + "\n")
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			return "", fmt.Errorf("keep the generated JWT secret: %w", err)
		}
		return s, nil
	}
	return "", fmt.Errorf("%s exists but is empty; remove it to have a new secret made", path)
}
