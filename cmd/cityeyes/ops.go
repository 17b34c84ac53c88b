package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serveMetrics serves a worker's /metrics, /healthz and /readyz at CITYEYES_METRICS_ADDR
// (a worker has no API port; its orchestrator probes and Prometheus scrapes it there) until
// ctx is cancelled.
func serveMetrics(ctx context.Context, cfg *config, reg *prometheus.Registry, checks map[string]func(context.Context) error, log *slog.Logger) error {
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		status, states := "ok", map[string]string{}
		for name, check := range checks {
			cctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			err := check(cctx)
			cancel()
			states[name] = "ok"
			if err != nil {
				status, states[name] = "unavailable", "unavailable"
				log.Warn("readiness check failed", "check", name, "err", err)
			}
		}
		code := http.StatusOK
		if status != "ok" {
			w.Header().Set("Retry-After", "5")
			code = http.StatusServiceUnavailable
		}
		writeHealth(w, code, map[string]any{"status": status, "checks": states})
	})
	srv := &http.Server{Addr: cfg.MetricsAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.ListenAndServe()
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return err
}

// healthcheck asks the process of this container whether it is alive, for a container
// image without a shell or curl (HEALTHCHECK CMD ["cityeyes", "healthcheck"]): /healthz on
// CITYEYES_ADDR (serve, api) or else on CITYEYES_METRICS_ADDR (a worker). It succeeds when
// either answers 200.
func healthcheck(ctx context.Context, cfg *config, stdout io.Writer) error {
	var errs []error
	for _, addr := range []string{cfg.Addr, cfg.MetricsAddr} {
		if addr == "" {
			continue
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1" // listening on every address: this container's own
		}
		url := "http://" + net.JoinHostPort(host, port) + "/healthz"
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		req, _ := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			fmt.Fprintln(stdout, url, "ok")
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %s", url, resp.Status))
	}
	return fmt.Errorf("healthcheck: %w", errors.Join(errs...))
}

func writeHealth(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// queueDashboard is Asynq's dashboard over the workers' Redis, or nil where this process
// does not know it: an API alone on the embedded default has a Redis of its own, which no
// worker uses.
func queueDashboard(cfg *config, redis asynq.RedisConnOpt, withWorker bool) (http.Handler, func()) {
	if !withWorker && cfg.RedisURL == "" {
		return nil, func() {}
	}
	h := asynqmon.New(asynqmon.Options{RootPath: "/admin/queues", RedisConnOpt: redis})
	return h, func() { _ = h.Close() }
}
