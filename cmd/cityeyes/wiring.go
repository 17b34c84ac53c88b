package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/city-eyes/cityeyes/api"
	"github.com/city-eyes/cityeyes/migrations"
	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/notifications"
	"github.com/city-eyes/cityeyes/storage"
	"github.com/city-eyes/cityeyes/workflows"
)

//go:embed demo/nyc.yaml demo/neighborhoods.geojson
var demoFS embed.FS

// openDB connects to the database and brings its schema up to date.
func openDB(ctx context.Context, cfg *config) (*models.DB, error) {
	db, err := models.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	dialect := migrations.SQLite
	if db.Dialect() == models.Postgres {
		dialect = migrations.Postgres
	}
	if _, err := migrations.Up(ctx, db.SQL(), dialect); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// newLogger logs to stderr, as JSON with CITYEYES_LOG_FORMAT=json; every line logged with a
// request's context names its request_id.
func newLogger(cfg *config) *slog.Logger {
	if cfg.LogJSON {
		return slog.New(models.RequestIDHandler(slog.NewJSONHandler(os.Stderr, nil)))
	}
	return slog.New(models.RequestIDHandler(slog.NewTextHandler(os.Stderr, nil)))
}

func migrate(ctx context.Context, cfg *config, stdout io.Writer) error {
	db, err := models.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	dialect := migrations.SQLite
	if db.Dialect() == models.Postgres {
		dialect = migrations.Postgres
	}
	applied, err := migrations.Up(ctx, db.SQL(), dialect)
	if err != nil {
		return err
	}
	v, err := migrations.Version(ctx, db.SQL(), dialect)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database at schema version %d (%d migration(s) applied now)\n", v, len(applied))
	return nil
}

func applyConfig(ctx context.Context, cfg *config, file string, stdout io.Writer) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	city, err := models.ParseCityConfig(data, os.DirFS(filepath.Dir(file)).(fs.ReadFileFS).ReadFile)
	if err != nil {
		return err
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := db.ApplyCityConfig(ctx, city, time.Now())
	if err != nil {
		return err
	}
	if res.Unchanged {
		fmt.Fprintf(stdout, "%s: configuration unchanged\n", res.Jurisdiction)
		return nil
	}
	fmt.Fprintf(stdout, "%s: applied %d departments, %d categories, %d areas, %d routing rules; %d staff accounts created\n",
		res.Jurisdiction, res.Departments, res.Categories, res.Areas, res.Rules, res.StaffCreated)
	return nil
}

// exportConfig writes a city's whole configuration as YAML; applying the output changes
// nothing. With one city on the platform -jurisdiction may be left out.
func exportConfig(ctx context.Context, cfg *config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("config export", flag.ContinueOnError)
	fs.SetOutput(stdout)
	jurisdiction := fs.String("jurisdiction", "", "the city's id (required when there are several)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if *jurisdiction == "" {
		js, err := db.Jurisdictions(ctx)
		if err != nil {
			return err
		}
		var ids []string
		for _, j := range js {
			ids = append(ids, j.ID)
		}
		if len(ids) != 1 {
			return fmt.Errorf("config export: say which city with -jurisdiction (there are %d: %s)", len(ids), strings.Join(ids, ", "))
		}
		*jurisdiction = ids[0]
	}
	city, err := db.ExportCityConfig(ctx, *jurisdiction)
	if err != nil {
		return fmt.Errorf("config export: city %q: %w", *jurisdiction, err)
	}
	out, err := models.MarshalCityConfigYAML(city)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// loadDemo applies the demo city to an empty database and prints its accounts.
func loadDemo(ctx context.Context, db *models.DB, stdout io.Writer) error {
	stamp, err := db.ConfigStamp(ctx)
	if err != nil {
		return err
	}
	if stamp[0] != '0' {
		return nil // a city is configured already
	}
	data, err := demoFS.ReadFile("demo/nyc.yaml")
	if err != nil {
		return err
	}
	sub, _ := fs.Sub(demoFS, "demo")
	city, err := models.ParseCityConfig(data, sub.(fs.ReadFileFS).ReadFile)
	if err != nil {
		return fmt.Errorf("demo city: %w", err)
	}
	if _, err := db.ApplyCityConfig(ctx, city, time.Now()); err != nil {
		return fmt.Errorf("demo city: %w", err)
	}
	fmt.Fprintf(stdout, "Loaded the demo city %q: %d areas, %d categories, %d departments.\n",
		city.Jurisdiction.Name, city.AreaCount(), len(city.Categories), len(city.Departments))
	fmt.Fprintln(stdout, "Demo accounts (POST /v1/auth/login):")
	for _, s := range city.Staff {
		fmt.Fprintf(stdout, "  %-22s %-18s %-10s %s\n", s.Email, s.Password, s.Role, s.Department)
	}
	return nil
}

// serve runs the API, the workers, or both, until ctx is cancelled.
func serve(ctx context.Context, cfg *config, stdout io.Writer, withAPI, withWorker bool) error {
	log := newLogger(cfg)
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if cfg.Demo && withAPI {
		if err := loadDemo(ctx, db, stdout); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	running := 0
	checks := map[string]func(context.Context) error{"database": db.Ping}
	soft := map[string]func(context.Context) error{}
	// One registry for the process: served at the API's /metrics, or for a worker alone at
	// CITYEYES_METRICS_ADDR.
	reg := prometheus.NewRegistry()

	// One Redis for the process: the workers' queue, and the API's rate limits.
	redisOpt, stopRedis, err := redisConn(ctx, cfg)
	if err != nil {
		return err
	}
	defer stopRedis()
	rc := redisOpt.MakeRedisClient().(redis.UniversalClient)
	defer rc.Close()
	redisCheck := func(ctx context.Context) error { return rc.Ping(ctx).Err() }
	if !withWorker {
		// The API goes on without Redis (the outbox keeps the work; rate limits let
		// requests through), so only the workers are unready without it.
		soft["redis"] = redisCheck
	}
	if withWorker {
		checks["redis"] = redisCheck
		push, err := pushSender(ctx, cfg)
		if err != nil {
			return err
		}
		store, _, err := objectStore(ctx, cfg)
		if err != nil {
			return err
		}
		checks["storage"] = store.Ping
		w := workflows.New(workflows.Config{DB: db, Redis: redisOpt, Store: store, Push: push, Logger: log,
			ShutdownTimeout: cfg.ShutdownTimeout})
		if err := w.RegisterMetrics(reg); err != nil {
			return err
		}
		running++
		go func() { errs <- w.Run(ctx) }()
		if !withAPI {
			fmt.Fprintln(stdout, "City Eyes worker running")
		}
		if !withAPI && cfg.MetricsAddr != "" {
			running++
			go func() { errs <- serveMetrics(ctx, cfg, reg, checks, log) }()
			fmt.Fprintf(stdout, "City Eyes worker metrics on http://%s/metrics\n", cfg.MetricsAddr)
		}
	}
	if withAPI {
		store, files, err := objectStore(ctx, cfg)
		if err != nil {
			return err
		}
		checks["storage"] = store.Ping
		areas, err := watchAreas(ctx, db, log)
		if err != nil {
			return err
		}
		dashboard, closeDashboard := queueDashboard(cfg, redisOpt, withWorker)
		defer closeDashboard()
		var limiter api.RateLimiter = api.NewRedisLimiter(rc)
		if cfg.RedisURL == "" {
			// The embedded Redis-compatible server lives in this process, so counts kept in
			// its memory are shared with no one else either; they cost no script run.
			limiter = api.NewLocalLimiter(nil)
		}
		app := api.New(api.Config{DB: db, Store: store, Files: files, Areas: areas, JWTSecret: cfg.JWTSecret,
			Logger: log, Checks: checks, SoftChecks: soft, Metrics: reg, Limiter: limiter,
			QueueDashboard: dashboard, AccessLog: true, Limits: cfg.Limits})
		running++
		drained := make(chan struct{})
		go func() {
			<-ctx.Done()
			// Stop accepting, let the requests in flight finish, then close.
			if err := app.ShutdownWithTimeout(cfg.ShutdownTimeout); err != nil {
				log.Warn("requests still in flight at the shutdown deadline were cut off", "err", err)
			}
			close(drained)
		}()
		go func() {
			err := app.Listen(cfg.Addr)
			if err == nil {
				// Listen returns as soon as the listener is closed; the requests in flight
				// are still being answered until the shutdown above is done.
				<-drained
			}
			errs <- err
		}()
		fmt.Fprintf(stdout, "City Eyes listening on http://%s\n", cfg.Addr)
	}
	var first error
	for range running {
		err := <-errs
		if err != nil && first == nil && !errors.Is(err, context.Canceled) {
			first = err
		}
		cancel() // one part stopping stops the others
	}
	return first
}

// redisConn connects to the configured Redis, or starts the embedded one.
func redisConn(ctx context.Context, cfg *config) (asynq.RedisConnOpt, func(), error) {
	if cfg.RedisURL == "" {
		return workflows.EmbeddedRedis(ctx)
	}
	opt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("CITYEYES_REDIS_URL: %w", err)
	}
	return opt, func() {}, nil
}

// objectStore connects to MinIO when configured, else keeps objects under the data directory.
func objectStore(ctx context.Context, cfg *config) (storage.Store, *storage.Local, error) {
	if cfg.S3.Endpoint != "" {
		m, err := storage.NewMinIO(ctx, storage.MinIOConfig{Endpoint: cfg.S3.Endpoint, AccessKey: cfg.S3.AccessKey,
			SecretKey: cfg.S3.SecretKey, Bucket: cfg.S3.Bucket, Secure: cfg.S3.Secure})
		return m, nil, err
	}
	l, err := storage.NewLocal(filepath.Join(cfg.DataDir, "objects"), cfg.PublicURL, cfg.JWTSecret)
	return l, l, err
}

// pushSender is FCM when configured, else nil: notifications stay in the inbox.
func pushSender(ctx context.Context, cfg *config) (notifications.Sender, error) {
	if cfg.FCM.ProjectID == "" {
		return nil, nil
	}
	return notifications.NewFCM(ctx, notifications.FCMConfig{CredentialsFile: cfg.FCM.CredentialsFile,
		ProjectID: cfg.FCM.ProjectID, Endpoint: cfg.FCM.Endpoint})
}

// watchAreas loads the area index and rebuilds it whenever a configuration is applied, by
// this process or another (the config file, or the admin API of any API process): every 5
// seconds it compares ConfigStamp, which moves on every real change. Routing needs no such
// thing: the workers read the rules from the database for each case.
func watchAreas(ctx context.Context, db *models.DB, log *slog.Logger) (func() *models.AreaIndex, error) {
	w, err := newAreaWatcher(ctx, db)
	if err != nil {
		return nil, err
	}
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := w.reload(ctx); err != nil {
				log.Error("reload areas", "err", err)
			}
		}
	}()
	return w.cur.Load, nil
}

// areaWatcher holds a process's current area index and the stamp it was built at.
type areaWatcher struct {
	db    *models.DB
	cur   atomic.Pointer[models.AreaIndex]
	stamp string
}

func newAreaWatcher(ctx context.Context, db *models.DB) (*areaWatcher, error) {
	w := &areaWatcher{db: db, stamp: "never"}
	return w, w.reload(ctx)
}

// reload rebuilds the index if the configuration changed since it was built.
func (w *areaWatcher) reload(ctx context.Context) error {
	s, err := w.db.ConfigStamp(ctx)
	if err != nil || s == w.stamp {
		return err
	}
	idx, err := w.db.LoadAreaIndex(ctx)
	if err != nil {
		return err
	}
	w.cur.Store(idx)
	w.stamp = s
	return nil
}

// addUser adds a member of staff from the command line. The password is read from a file
// (or a pipe: -password-file /dev/stdin) so that it never shows in the process list.
func addUser(ctx context.Context, cfg *config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	fs.SetOutput(stdout)
	jurisdiction := fs.String("jurisdiction", "", "the city's id (required)")
	email := fs.String("email", "", "sign-in email (required)")
	role := fs.String("role", "", "handler, supervisor or admin (required)")
	department := fs.String("department", "", "department code (required for a handler)")
	name := fs.String("name", "", "display name")
	pwFile := fs.String("password-file", "", "file holding the initial password, at least 10 characters (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *jurisdiction == "" || *email == "" || *role == "" || *pwFile == "" {
		return fmt.Errorf("user add: -jurisdiction, -email, -role and -password-file are required")
	}
	pw, err := os.ReadFile(*pwFile)
	if err != nil {
		return err
	}
	password := strings.TrimRight(string(pw), "\r\n")
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Jurisdiction(ctx, *jurisdiction); err != nil {
		return fmt.Errorf("user add: no city %q: %w", *jurisdiction, err)
	}
	r := models.Role(*role)
	in := models.StaffInput{Email: email, Name: name, Role: &r, Password: &password}
	if *department != "" {
		in.DepartmentID = department
	}
	u, err := db.CreateStaff(ctx, *jurisdiction, in, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added %s (%s) to %s as %s\n", *u.Email, u.ID, *jurisdiction, u.Role)
	return nil
}
