# City Eyes - developer and CI entry points.
#
#   make test                  everything CI runs (see .ci/test.sh)
#   make test GOTESTFLAGS='-run TestX -v'
#   make fuzz FUZZTIME=5m       each fuzz target for 5 minutes (make test: 8 seconds each)
#   make chaos                 the fault tests at full size (docs/reliability.md), ~30 minutes
#   eval "$(make -s servers)"   throwaway Postgres/Redis/MinIO for local runs
#                              (SERVERS_STATE=FILE keeps a second set apart)
#
# The heavy lifting lives in .ci/test.sh; this file only passes settings.

# The one place the MinIO server version is pinned. It is built with
# `go install` into $(MINIO_DIR) once and reused afterwards.
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c

CACHE_DIR ?= $(HOME)/.cache/cityeyes
MINIO_DIR := $(CACHE_DIR)/minio-$(MINIO_VERSION)

# Go may not be on PATH on a fresh machine.
GO ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)

# Extra flags for every `go test` run, e.g. GOTESTFLAGS='-run TestX -v'.
GOTESTFLAGS ?=

# How long `make fuzz` runs each fuzz target, and may minimise an input it found.
FUZZTIME ?= 60s
FUZZMINIMIZETIME ?= 5s

# Flags for `make run`, e.g. make run ARGS='-config dev.yaml'.
ARGS ?=

# Handed to .ci/test.sh through the environment (no shell quoting issues).
export MINIO_VERSION CACHE_DIR MINIO_DIR GO GOTESTFLAGS FUZZTIME FUZZMINIMIZETIME
TEST_SH = bash .ci/test.sh

.DEFAULT_GOAL := help

.PHONY: help test test-embedded fuzz chaos lint tools servers servers-stop build run clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

test: ## install what is missing, gofmt, vet, embedded tests, tests against real servers
	@$(TEST_SH) all

test-embedded: ## only the embedded test run (no installs, no servers)
	@$(TEST_SH) embedded

fuzz: ## run each fuzz target for FUZZTIME (default 60s), embedded, one at a time
	@$(TEST_SH) fuzz

chaos: ## the fault tests at full size against throwaway servers (make test runs them small)
	@$(TEST_SH) chaos

lint: ## gofmt check and go vet
	@$(TEST_SH) lint

tools: ## only install PostgreSQL, Redis and MinIO if missing
	@$(TEST_SH) tools

servers: ## start throwaway servers and print export lines (use: eval "`make -s servers`")
	@$(TEST_SH) servers

servers-stop: ## stop the servers started by `make servers`
	@$(TEST_SH) servers-stop

build: ## build ./cityeyes
	$(GO) build -o cityeyes ./cmd/cityeyes

run: ## go run ./cmd/cityeyes, with ARGS=... passed on
	$(GO) run ./cmd/cityeyes $(ARGS)

clean: ## remove the built binary
	rm -f cityeyes
