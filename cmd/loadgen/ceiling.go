package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	_ "image/jpeg" // the photo's size, as intake reads it
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/city-eyes/cityeyes/migrations"
	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
	"github.com/city-eyes/cityeyes/workflows"
)

// The ceiling: what the servers behind the API can take of the same writes, at the same
// concurrency, with no HTTP, no JSON, no tokens and no API process in between. Each report
// is what intake does to them: the photo streamed to the object store with its SHA-256, the
// case, its first event, its photo row, its idempotency key and its outbox rows in one
// transaction (models.CreateCase, the very function the API calls), and one task enqueued
// to Redis, as the relay then does. The database is a separate one (-ceiling-db), so no
// running worker takes the rows up, and the tasks go to a queue no worker reads.

// ceilingQueue is the Asynq queue the ceiling's tasks go to; nothing consumes it.
const ceilingQueue = "loadgen-ceiling"

type s3Options struct {
	endpoint, accessKey, secretKey, bucket string
}

func (m *moreOptions) ceilingFlags(fs *flag.FlagSet) {
	fs.BoolVar(&m.ceiling, "ceiling", false, "after the API run, do the same writes straight against the database, Redis and object store, and compare")
	fs.StringVar(&m.ceilingDB, "ceiling-db", "", "database for the ceiling: postgres://… (a database of its own), or empty for a new SQLite file in a temporary directory")
	fs.StringVar(&m.redisURL, "ceiling-redis", "", "Redis for the ceiling: redis://…, or empty for the embedded Redis-compatible server")
	fs.StringVar(&m.s3.endpoint, "ceiling-s3", "", "MinIO host:port for the ceiling, or empty for a local object store in a temporary directory")
	fs.StringVar(&m.s3.accessKey, "ceiling-s3-access-key", os.Getenv("CITYEYES_S3_ACCESS_KEY"), "MinIO access key (default $CITYEYES_S3_ACCESS_KEY)")
	fs.StringVar(&m.s3.secretKey, "ceiling-s3-secret-key", os.Getenv("CITYEYES_S3_SECRET_KEY"), "MinIO secret key (default $CITYEYES_S3_SECRET_KEY)")
	fs.StringVar(&m.s3.bucket, "ceiling-s3-bucket", "loadgen-ceiling", "MinIO bucket for the ceiling")
	fs.StringVar(&m.city, "ceiling-city", filepath.Join("cmd", "cityeyes", "demo", "nyc.yaml"), "city configuration the ceiling database gets when it has none")
}

// ceilingRig is the servers the ceiling writes to, and what a report needs of the city.
type ceilingRig struct {
	db        *models.DB
	store     storage.Store
	queue     *asynq.Client
	redis     asynq.RedisConnOpt
	reporters []string
	place     models.Location
	category  *models.Category
	answers   map[string]any
	lat, lon  float64
	close     func()
}

func openCeiling(ctx context.Context, o options) (*ceilingRig, error) {
	m := &o.more
	tmp, err := os.MkdirTemp("", "loadgen-ceiling-")
	if err != nil {
		return nil, err
	}
	r := &ceilingRig{}
	var closers []func()
	r.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		_ = os.RemoveAll(tmp)
	}
	fail := func(err error) (*ceilingRig, error) { r.close(); return nil, err }

	url := m.ceilingDB
	if url == "" {
		url = filepath.Join(tmp, "ceiling.db")
	}
	if r.db, err = models.Open(ctx, url); err != nil {
		return fail(err)
	}
	closers = append(closers, func() { _ = r.db.Close() })
	dialect := migrations.SQLite
	if r.db.Dialect() == models.Postgres {
		dialect = migrations.Postgres
	}
	if _, err := migrations.Up(ctx, r.db.SQL(), dialect); err != nil {
		return fail(err)
	}
	if err := ceilingCity(ctx, r.db, o); err != nil {
		return fail(err)
	}

	if m.s3.endpoint != "" {
		r.store, err = storage.NewMinIO(ctx, storage.MinIOConfig{Endpoint: m.s3.endpoint, AccessKey: m.s3.accessKey, SecretKey: m.s3.secretKey, Bucket: m.s3.bucket})
	} else {
		r.store, err = storage.NewLocal(filepath.Join(tmp, "objects"), "http://127.0.0.1", []byte("loadgen-ceiling-secret-0123456789abcdef"))
	}
	if err != nil {
		return fail(err)
	}

	var redisOpt asynq.RedisConnOpt
	if m.redisURL != "" {
		if redisOpt, err = asynq.ParseRedisURI(m.redisURL); err != nil {
			return fail(err)
		}
	} else {
		var stop func()
		if redisOpt, stop, err = workflows.EmbeddedRedis(ctx); err != nil {
			return fail(err)
		}
		closers = append(closers, stop)
	}
	r.queue, r.redis = asynq.NewClient(redisOpt), redisOpt
	closers = append(closers, func() {
		// The tasks were only there to be written; take them away again.
		ins := asynqInspector(r)
		_, _ = ins.DeleteAllPendingTasks(ceilingQueue)
		_ = ins.DeleteQueue(ceilingQueue, true)
		_ = ins.Close()
		_ = r.queue.Close()
	})

	if r.lat, err = strconv.ParseFloat(o.lat, 64); err != nil {
		return fail(err)
	}
	if r.lon, err = strconv.ParseFloat(o.lon, 64); err != nil {
		return fail(err)
	}
	idx, err := r.db.LoadAreaIndex(ctx)
	if err != nil {
		return fail(err)
	}
	var ok bool
	if r.place, ok = idx.Locate(r.lat, r.lon); !ok {
		return fail(fmt.Errorf("ceiling: %s, %s is in no city of the ceiling database", o.lat, o.lon))
	}
	if r.category, err = r.db.CategoryByCode(ctx, r.place.JurisdictionID, o.category); err != nil {
		return fail(fmt.Errorf("ceiling: category %q: %w", o.category, err))
	}
	in := map[string]any{}
	if code, value, ok := cut(o.attr); ok {
		in[code] = value
	}
	if r.answers, err = models.ValidateAnswers(r.category, in); err != nil {
		return fail(err)
	}
	for i := range o.c {
		u, _, err := r.db.RegisterDevice(ctx, models.DeviceRegistration{DeviceID: fmt.Sprintf("ceiling-%d-%d", time.Now().UnixNano(), i), Platform: "android", Locale: "en"}, time.Now())
		if err != nil {
			return fail(err)
		}
		r.reporters = append(r.reporters, u.ID)
	}
	return r, nil
}

// ceilingCity applies the demo city to a ceiling database that has none yet.
func ceilingCity(ctx context.Context, db *models.DB, o options) error {
	stamp, err := db.ConfigStamp(ctx)
	if err != nil || stamp[0] != '0' {
		return err
	}
	file := o.more.city
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("ceiling: the city to load (run from the repository's root): %w", err)
	}
	city, err := models.ParseCityConfig(data, os.DirFS(filepath.Dir(file)).(fs.ReadFileFS).ReadFile)
	if err != nil {
		return err
	}
	_, err = db.ApplyCityConfig(ctx, city, time.Now())
	return err
}

// write does one report's writes.
func (r *ceilingRig) write(ctx context.Context, reporter string, photo []byte, seq int64) error {
	caseID, mediaID := models.NewID(), models.NewID()
	cfg, _, err := image.DecodeConfig(bytes.NewReader(photo))
	if err != nil {
		return err
	}
	h := sha256.New()
	key := "cases/" + caseID + "/" + mediaID + ".jpg"
	obj, err := r.store.Put(ctx, key, io.TeeReader(bytes.NewReader(photo), h), -1, "image/jpeg")
	if err != nil {
		return err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	_, err = r.db.CreateCase(ctx, models.NewCase{
		ID: caseID, ReporterID: reporter, JurisdictionID: r.place.JurisdictionID, CategoryID: r.category.ID, AreaID: r.place.AreaID,
		Description: "load test report", Lat: r.lat, Lon: r.lon, Attributes: r.answers,
		Media: []models.Media{{ID: mediaID, OwnerID: reporter, Kind: models.MediaBefore, ObjectKey: key, ContentType: "image/jpeg",
			Size: obj.Size, Width: cfg.Width, Height: cfg.Height, SHA256: sum}},
		IdempotencyKey: fmt.Sprintf("ceiling-%d-%d", time.Now().UnixNano(), seq), Fingerprint: sum,
	}, time.Now())
	if err != nil {
		return err
	}
	taskID := models.NewID()
	payload, _ := json.Marshal(models.RoutePayload{OutboxID: taskID, CaseID: caseID})
	_, err = r.queue.EnqueueContext(ctx, asynq.NewTask(models.TaskRoute, payload), asynq.TaskID(taskID), asynq.Queue(ceilingQueue))
	return err
}

// runCeiling does the ceiling run and prints it beside the API's rate.
func runCeiling(o options, photo []byte, apiRate float64, out io.Writer) error {
	ctx := context.Background()
	r, err := openCeiling(ctx, o)
	if err != nil {
		return err
	}
	defer r.close()
	var (
		mu       sync.Mutex
		lat      []time.Duration
		failures atomic.Int64
		firstErr error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := range o.c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seq := next.Add(1)
				if seq > int64(o.n) {
					return
				}
				t0 := time.Now()
				err := r.write(ctx, r.reporters[w], photo, seq)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					failures.Add(1)
					if firstErr == nil {
						firstErr = err
					}
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	rate := float64(len(lat)) / elapsed.Seconds()
	fmt.Fprintf(out, "ceiling (%s): %d written, %d failed, concurrency %d\n", r.describe(o), len(lat), failures.Load(), o.c)
	fmt.Fprintf(out, "ceiling writes: %.1f/s over %v\n", rate, elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "ceiling latency (object PUT + case transaction + enqueue): %s\n", percentiles(lat))
	if firstErr != nil {
		fmt.Fprintf(out, "ceiling first error: %v\n", firstErr)
	}
	if rate > 0 {
		fmt.Fprintf(out, "API rate / ceiling: %.1f / %.1f = %.0f%%\n", apiRate, rate, 100*apiRate/rate)
	}
	return nil
}

func (r *ceilingRig) describe(o options) string {
	db, store, redis := "SQLite (temporary file)", "local directory", "embedded Redis-compatible server"
	if r.db.Dialect() == models.Postgres {
		db = "PostgreSQL"
	}
	if o.more.s3.endpoint != "" {
		store = "MinIO " + o.more.s3.endpoint
	}
	if o.more.redisURL != "" {
		redis = "Redis"
	}
	return db + ", " + store + ", " + redis
}

func asynqInspector(r *ceilingRig) *asynq.Inspector { return asynq.NewInspector(r.redis) }
