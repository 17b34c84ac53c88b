package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/city-eyes/cityeyes/models"
	"github.com/city-eyes/cityeyes/notifications"
	"github.com/city-eyes/cityeyes/storage"
)

// httpMetrics are the API's Prometheus metrics.
type httpMetrics struct {
	registry *prometheus.Registry
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg *prometheus.Registry) *httpMetrics {
	m := &httpMetrics{registry: reg, duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cityeyes_http_request_duration_seconds",
		Help:    "HTTP request latency by route and status.",
		Buckets: prometheus.DefBuckets,
	}, []string{"method", "route", "status"}), inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cityeyes_http_requests_in_flight",
		Help: "HTTP requests being served now.",
	})}
	reg.MustRegister(m.duration, m.inFlight)
	// A registry passed in may already carry the process collectors.
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// headerRequestID names a request across the logs of every process it touches.
const headerRequestID = "X-Request-ID"

// requestID is the caller's X-Request-ID when it is a sensible one (a proxy's or a
// client's: letters, digits and ._:- up to 128), else a new one.
func requestID(c *fiber.Ctx) string {
	id := c.Get(headerRequestID)
	if len(id) == 0 || len(id) > 128 {
		return models.NewID()
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:-", r)
		if !ok {
			return models.NewID()
		}
	}
	return id
}

// observe is the first middleware of every request: it gives the request its id (echoed in
// X-Request-ID, carried in the context into the log lines and the outbox rows, and from
// there into the tasks the request causes), times it by its route pattern (not its path,
// which would make one series per case id), and logs one line for it.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	id := requestID(c)
	c.Set(headerRequestID, id)
	ctx := models.WithRequestID(c.UserContext(), id)
	c.SetUserContext(ctx)
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	// An error is answered here, not by Fiber's error handler after this returns, so that the
	// metrics and the log see the status the client gets (a problem's 422, not the 200 the
	// response held when the handler returned).
	err := c.Next()
	if err != nil {
		err = s.handleError(c, err)
	}
	status := c.Response().StatusCode()
	took := time.Since(start)
	// Copies: Fiber reuses the buffers its strings point into, and a label value is kept.
	method, route := strings.Clone(c.Method()), strings.Clone(c.Route().Path)
	s.metrics.duration.WithLabelValues(method, route, strconv.Itoa(status)).Observe(took.Seconds())
	if !s.cfg.AccessLog {
		return err
	}
	// The path without its query: signed links carry their signature there.
	s.log.LogAttrs(ctx, slog.LevelInfo, "request", slog.String("method", method), slog.String("route", route),
		slog.String("path", c.Path()), slog.Int("status", status), slog.Float64("ms", float64(took.Microseconds())/1000))
	return err
}

// countConnections adds the number of client connections open to app, idle keep-alive ones
// included. Each is served by a goroutine of its own, so together with the requests in
// flight it says how many of the process's goroutines are its clients'.
func (m *httpMetrics) countConnections(app *fiber.App) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cityeyes_http_open_connections",
		Help: "Client connections open to the API, idle keep-alive ones included.",
	}, func() float64 { return float64(app.Server().GetOpenConnectionsCount()) }))
}

func (s *Server) metricsHandler() fiber.Handler {
	// A collector that fails (the database or Redis away) is logged and left out; the rest
	// of the metrics are still served, so a scrape shows what it can.
	return adaptor.HTTPHandler(promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError, ErrorLog: slogPrinter{s.log}}))
}

// slogPrinter lets promhttp log through slog.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.l.Warn("metrics: " + strings.TrimSpace(fmt.Sprintln(v...))) }

// healthz says the process is alive (GET /healthz).
func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(Health{Status: "ok"})
}

// readyz checks each dependency (GET /readyz): 503 when any is down, so a load balancer
// sends traffic elsewhere until it is back.
func (s *Server) readyz(c *fiber.Ctx) error {
	h := Health{Status: "ok", Checks: map[string]string{}}
	for _, set := range []struct {
		checks map[string]func(context.Context) error
		hard   bool
	}{{s.cfg.Checks, true}, {s.cfg.SoftChecks, false}} {
		for name, check := range set.checks {
			ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
			err := check(ctx)
			cancel()
			if err != nil {
				if set.hard {
					h.Status = "unavailable"
				}
				h.Checks[name] = "unavailable"
				s.log.WarnContext(c.UserContext(), "readiness check failed", "check", name, "required", set.hard, "err", err)
				continue
			}
			h.Checks[name] = "ok"
		}
	}
	if h.Status != "ok" {
		c.Set(fiber.HeaderRetryAfter, "5")
		return c.Status(fiber.StatusServiceUnavailable).JSON(h)
	}
	return c.JSON(h)
}

// getFile serves an object of the local store to whoever holds a valid signed URL.
func (s *Server) getFile(c *fiber.Ctx) error {
	key := c.Params("*")
	q := map[string][]string{}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) { q[string(k)] = append(q[string(k)], string(v)) })
	if err := s.cfg.Files.Verify("GET", key, q, s.now()); err != nil {
		return models.Problemf(models.ErrForbidden, "bad-signature", "this file link is invalid or has expired; fetch the report again for a fresh one")
	}
	r, obj, err := s.cfg.Files.Get(c.UserContext(), key)
	if errors.Is(err, storage.ErrNotFound) {
		return models.Problemf(models.ErrNotFound, "not-found", "no such file")
	}
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, obj.ContentType)
	c.Set(fiber.HeaderCacheControl, "private, max-age=600")
	c.Set("X-Content-Type-Options", "nosniff")
	return c.SendStream(r, int(obj.Size))
}

// listCategories lists what can be reported at a point (GET /v1/categories?lat=&lon=).
func (s *Server) listCategories(c *fiber.Ctx) error {
	ctx := c.UserContext()
	_, _, loc, err := s.placeOf(c)
	if err != nil {
		return err
	}
	j, err := s.db.Jurisdiction(ctx, loc.JurisdictionID)
	if err != nil {
		return err
	}
	cats, err := s.db.Categories(ctx, j.ID)
	if err != nil {
		return err
	}
	out := CategoryList{Jurisdiction: JurisdictionRef{ID: j.ID, Name: j.Name}, Categories: []CategoryDetail{}}
	if loc.AreaID != nil {
		out.Area = &loc.AreaCode
	}
	for i := range cats {
		attrs := models.CategoryAttributes(&cats[i])
		if attrs == nil {
			attrs = []models.Attribute{}
		}
		out.Categories = append(out.Categories, CategoryDetail{Code: cats[i].Code, Name: cats[i].Name,
			Group: cats[i].GroupName, Description: cats[i].Description, Attributes: attrs})
	}
	return c.JSON(out)
}

// inbox lists the caller's notifications, newest first (GET /v1/me/notifications), in the
// language of the request's Accept-Language.
func (s *Server) inbox(c *fiber.Ctx) error {
	ctx := c.UserContext()
	ns, next, err := s.db.Inbox(ctx, caller(c).UserID, c.Query("cursor"), c.QueryInt("limit", 20))
	if err != nil {
		return err
	}
	locale, _, _ := strings.Cut(c.Get(fiber.HeaderAcceptLanguage, "en"), ",")
	unread, err := s.db.UnreadCount(ctx, caller(c).UserID)
	if err != nil {
		return err
	}
	page := InboxPage{Items: []InboxItem{}, NextCursor: next, Unread: unread}
	numbers := map[string]string{}
	for _, n := range ns {
		if n.Digest != nil {
			item, err := digestItem(locale, n)
			if err != nil {
				return err
			}
			page.Items = append(page.Items, item)
			continue
		}
		num, ok := numbers[n.CaseID]
		if !ok {
			cs, err := s.db.Case(ctx, n.CaseID)
			if err != nil {
				return err
			}
			num, numbers[n.CaseID] = cs.Number, cs.Number
		}
		title, body, staff := notifications.StaffText(locale, string(n.EventType), num)
		if !staff {
			title, body = notifications.Text(locale, string(n.Status), string(n.Resolution), num)
		}
		item := InboxItem{ID: n.ID, ReportID: n.CaseID, EventID: n.EventID, Type: string(n.EventType), Status: string(n.Status),
			Title: title, Body: body, Read: n.ReadAt != nil, CreatedAt: n.CreatedAt.UTC()}
		if n.Resolution != "" {
			r := string(n.Resolution)
			item.Resolution = &r
		}
		page.Items = append(page.Items, item)
	}
	return c.JSON(page)
}
