// Package api is City Eyes' HTTP interface: the native API under /v1 for the citizens' app,
// case handlers and supervisors, and the operators' health and metrics endpoints.
//
// Handlers are methods on Server, which holds every dependency; they return errors, and one
// error handler (problem.go) turns each into an RFC 7807 problem+json response. Request and
// response bodies are the wire types of wire.go, described in openapi.yaml; database rows
// never leave this package as they are.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/storage"
)

// Config is what the API needs. Every field but the limits is required.
type Config struct {
	DB    *models.DB
	Store storage.Store
	// Files serves the local object store's signed URLs; nil when the store is MinIO,
	// which serves its own.
	Files *storage.Local
	// Areas returns the current index of cities and areas (rebuilt when the configuration
	// changes).
	Areas     func() *models.AreaIndex
	JWTSecret []byte
	Logger    *slog.Logger
	// Checks are the readiness checks of /readyz, by dependency name.
	Checks map[string]func(context.Context) error
	// SoftChecks are dependencies /readyz reports by name without failing on them: the API
	// goes on without them (Redis, for the API alone: the outbox keeps the work, the rate
	// limits let requests through).
	SoftChecks map[string]func(context.Context) error
	// AccessLog logs one line per request (method, route, status, time, request id).
	AccessLog bool
	// QueueDashboard is the Asynq dashboard, mounted at /admin/queues for administrators;
	// nil for none.
	QueueDashboard http.Handler
	// Metrics is where request metrics are registered; nil for a private registry.
	Metrics *prometheus.Registry
	Now     func() time.Time

	// Limiter counts writes against Limits, shared by every API process; nil for no limits.
	Limiter RateLimiter
	Limits  Limits

	// Background runs work a request leaves for after its answer (removing uploads a report
	// took); nil runs it in a goroutine of its own.
	Background func(func())

	MaxPhotoBytes int64 // per photo; default 20 MiB
	MaxPhotos     int   // per report; default 6
	MaxPixels     int   // per photo; default 50 megapixels
}

// Server holds the API's dependencies; its methods are the handlers.
type Server struct {
	cfg     Config
	db      *models.DB
	store   storage.Store
	log     *slog.Logger
	now     func() time.Time
	metrics *httpMetrics
	codes   sync.Map // category, department and area id → code
	// sniffers are the readers a photo's first bytes are looked at through (checkPhoto),
	// kept for the next photo rather than 256 KiB allocated for each.
	sniffers sync.Pool
}

// New builds the Fiber application with every route.
func New(cfg Config) *fiber.App {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = slog.New(models.RequestIDHandler(cfg.Logger.Handler()))
	if cfg.MaxPhotoBytes <= 0 {
		cfg.MaxPhotoBytes = 20 << 20
	}
	if cfg.MaxPhotos <= 0 {
		cfg.MaxPhotos = 6
	}
	if cfg.MaxPixels <= 0 {
		cfg.MaxPixels = 50_000_000
	}
	if cfg.Background == nil {
		cfg.Background = func(f func()) { go f() }
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	cfg.Limits.defaults()
	s := &Server{cfg: cfg, db: cfg.DB, store: cfg.Store, log: cfg.Logger, now: cfg.Now, metrics: newHTTPMetrics(cfg.Metrics)}
	app := fiber.New(fiber.Config{
		AppName:      "cityeyes",
		ErrorHandler: s.handleError,
		// Photos are streamed from the connection to the object store as they arrive,
		// never held whole in memory; each handler bounds what it reads.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		BodyLimit:                    cfg.MaxPhotos*int(cfg.MaxPhotoBytes) + 1<<20,
		ReadTimeout:                  2 * time.Minute,
		WriteTimeout:                 2 * time.Minute,
		IdleTimeout:                  2 * time.Minute,
		DisableStartupMessage:        true,
	})
	s.metrics.countConnections(app)
	s.routes(app)
	return app
}

// routes is the table of contents of the API.
func (s *Server) routes(app *fiber.App) {
	app.Use(s.observe)

	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", s.metricsHandler())
	if s.cfg.Files != nil {
		app.Get("/files/*", s.getFile)
	}

	citizen := s.auth(models.RoleCitizen)
	staff := s.auth(models.RoleHandler, models.RoleSupervisor, models.RoleAdmin)
	anyone := s.auth(models.RoleCitizen, models.RoleHandler, models.RoleSupervisor, models.RoleAdmin)

	v1 := app.Group("/v1", s.limitWrites)
	v1.Post("/auth/device", s.registerDevice)
	v1.Post("/auth/login", s.login)
	v1.Post("/auth/refresh", s.refresh)
	v1.Get("/categories", s.listCategories)

	v1.Post("/reports", citizen, s.createReport)
	v1.Get("/reports/nearby", anyone, s.nearby) // before /reports/:id, which would take "nearby" as an id
	v1.Get("/reports/check", anyone, s.checkDuplicates)
	v1.Get("/reports/:id", anyone, s.getReport)
	v1.Post("/reports/:id/support", citizen, s.support)
	v1.Post("/reports/:id/feedback", citizen, s.feedback)
	v1.Get("/cases/:id", staff, s.getReport)
	v1.Get("/me/reports", citizen, s.myReports)
	v1.Get("/me/notifications", anyone, s.inbox)
	v1.Post("/me/notifications/read", anyone, s.markRead)
	v1.Put("/me/devices/:device_id", anyone, s.setDevice)

	v1.Get("/queue", s.auth(models.RoleHandler, models.RoleSupervisor), s.queue)
	v1.Get("/queue/counts", s.auth(models.RoleHandler, models.RoleSupervisor), s.queueCounts)
	v1.Post("/cases/:id/actions", s.auth(models.RoleHandler, models.RoleSupervisor), s.caseAction)
	v1.Post("/cases/actions", s.auth(models.RoleHandler, models.RoleSupervisor), s.bulkAction)

	admin := s.auth(models.RoleAdmin)
	v1.Get("/admin/staff", admin, s.listStaff)
	v1.Post("/admin/staff", admin, s.createStaff)
	v1.Patch("/admin/staff/:id", admin, s.updateStaff)

	s.open311Routes(app)

	// Each feature mounts its own routes from its own file.
	s.uploadRoutes(app, v1)    // uploads.go: direct uploads to the object store
	s.accountRoutes(app, v1)   // account.go: a device identity upgraded to an account
	s.statsRoutes(app, v1)     // stats.go: supervisors' KPIs, lists and exports
	s.dashboardRoutes(app, v1) // dashboard.go: the staff dashboard (web page)
	s.adminRoutes(app, v1)     // admin.go: city administration
	s.privacyRoutes(app, v1)   // privacy.go: a citizen's export and deletion of their data
	s.operatorRoutes(app, v1)  // operators.go: operators' tools

	app.Use(func(c *fiber.Ctx) error {
		return models.Problemf(models.ErrNotFound, "no-such-route", "there is no %s %s; see openapi.yaml for the routes", c.Method(), c.Path())
	})
}
