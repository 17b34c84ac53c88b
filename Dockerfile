# syntax=docker/dockerfile:1
# City Eyes: one static binary (no cgo: SQLite is pure Go) on a distroless base, run as a
# non-root user. The same image runs every part: `serve` (default), `api`, `worker`,
# `migrate`, `config apply FILE`. See docs/deploy.md.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so that a change of code reuses the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" \
      -o /out/cityeyes ./cmd/cityeyes \
    && mkdir -p /out/data

# distroless/static: CA certificates, tzdata (each city's time zone) and /etc/passwd with the
# nonroot user (65532), nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cityeyes /usr/local/bin/cityeyes
COPY --from=build --chown=65532:65532 /out/data /data
ENV CITYEYES_ADDR=0.0.0.0:8080 \
    CITYEYES_DATA_DIR=/data \
    CITYEYES_LOG_FORMAT=json
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
# 8080: the API (serve, api); 9090: a worker's metrics and probes (CITYEYES_METRICS_ADDR).
EXPOSE 8080 9090
# No curl in the image: the binary asks its own process.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/cityeyes", "healthcheck"]
# SIGTERM (docker stop, Kubernetes) drains requests and tasks within
# CITYEYES_SHUTDOWN_TIMEOUT (25 s) and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/cityeyes"]
CMD ["serve"]
