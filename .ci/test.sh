#!/usr/bin/env bash
# shellcheck disable=SC2016 # the bash -c '...' helpers expand $1 in the child, on purpose
# .ci/test.sh - City Eyes test driver. Normally called through the Makefile.
#
# Usage: bash .ci/test.sh <command>
#
#   all           what `make test` does: install missing tools, gofmt check,
#                 go vet, the embedded test run, then start throwaway
#                 PostgreSQL/Redis/MinIO servers and run the suite against them
#                 (between the two, each fuzz target for 8 seconds)
#   embedded      only the embedded test run (no installs, no servers)
#   fuzz          each fuzz target for FUZZTIME (default 60s), embedded, one at a time
#   chaos         start throwaway servers and run the fault tests of cmd/cityeyes at
#                 full size (CITYEYES_TEST_CHAOS=1; make test runs them small)
#   lint          gofmt check + go vet
#   tools         only install what is missing (postgresql, redis-server, chromium, minio)
#   servers       install tools, start servers, print `export ...` lines on
#                 stdout and leave the servers running (for a developer:
#                 eval "$(make -s servers)")
#   servers-stop  stop the servers started by `servers`
#
# Environment (the Makefile sets the first two; the rest are optional):
#   MINIO_VERSION  pinned github.com/minio/minio version (single source of
#                  truth is the Makefile)
#   CACHE_DIR      cache root, default $HOME/.cache/cityeyes
#   MINIO_DIR      GOBIN for the minio build, default $CACHE_DIR/minio-$MINIO_VERSION
#   GO             go binary (default: go on PATH, else /usr/local/go/bin/go)
#   GOTESTFLAGS    extra flags appended to every `go test`, e.g. '-run TestX -v'
#                  (not to the fuzz runs)
#   FUZZTIME       how long `fuzz` runs each target (default 60s)
#   FUZZMINIMIZETIME  how long a fuzz run may minimise an input (default 5s)
#   PG_BIN         PostgreSQL bin dir (default: newest /usr/lib/postgresql/*/bin)
#
# Everything listens on 127.0.0.1 only, on ports probed to be free. Progress
# goes to stderr so that `servers` can print clean export lines on stdout.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$SCRIPT_DIR")
cd "$REPO_ROOT"

: "${MINIO_VERSION:?MINIO_VERSION is not set; run this through make (the version is pinned in the Makefile)}"
CACHE_DIR=${CACHE_DIR:-${HOME:?HOME is not set}/.cache/cityeyes}
MINIO_DIR=${MINIO_DIR:-$CACHE_DIR/minio-$MINIO_VERSION}
MINIO_BIN=$MINIO_DIR/minio
MINIO_MODULE=github.com/minio/minio
# Where `servers` remembers its temp dir so that `servers-stop` can find it.
SERVERS_STATE=${SERVERS_STATE:-$CACHE_DIR/servers.dir}

# Go may not be on PATH on a fresh machine (it lives in /usr/local/go/bin).
if [[ -z ${GO:-} ]]; then
  GO=$(command -v go || echo /usr/local/go/bin/go)
fi
[[ -x $GO ]] || GO=$(command -v "$GO" || true)
[[ -n $GO && -x $GO ]] || { echo "test.sh: cannot find the go binary (set GO=...)" >&2; exit 1; }
# runuser and useradd live in /usr/sbin, which a minimal CI PATH may lack.
PATH="$(dirname "$GO"):$PATH:/usr/sbin:/sbin"
export PATH

# Extra go test flags, split on whitespace ('-run TestA|TestB -v' works;
# arguments containing spaces are not supported).
read -r -a EXTRA_TEST_FLAGS <<<"${GOTESTFLAGS:-}"

TMP_ROOT=${TMPDIR:-/tmp}
WORK_PREFIX=cityeyes-servers.

# Filled in by ensure_tools / start_servers.
PG_BIN=${PG_BIN:-}
REDIS_BIN=''
WORKDIR=''
PG_PORT='' REDIS_PORT='' MINIO_PORT='' MINIO_CONSOLE_PORT=''
S3_ACCESS_KEY=cityeyes S3_SECRET_KEY=''
S3_BUCKET=cityeyes-test

# ---------------------------------------------------------------------------
# Logging, phases and timing
# ---------------------------------------------------------------------------

log() { printf '[test.sh] %s\n' "$*" >&2; }
die() { printf '[test.sh] ERROR: %s\n' "$*" >&2; exit 1; }

# Microseconds since the epoch (EPOCHREALTIME uses the locale's decimal mark).
now_us() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then echo "${EPOCHREALTIME//[.,]/}"; else echo $(($(date +%s) * 1000000)); fi
}
fmt_duration() { printf '%d.%01ds' $(($1 / 1000000)) $(($1 % 1000000 / 100000)); }

PHASE_NAMES=() PHASE_RESULTS=() PHASE_TIMES=()
CURRENT_PHASE='' CURRENT_PHASE_START=''
FAILED=0

phase_begin() {
  CURRENT_PHASE=$1
  CURRENT_PHASE_START=$(now_us)
  printf '\n======== PHASE: %s ========\n' "$1" >&2
}

# phase_end RC: record the result of the current phase (non-zero marks the
# whole run as failed but lets the remaining phases run).
phase_end() {
  local rc=$1 took
  took=$(fmt_duration $(($(now_us) - CURRENT_PHASE_START)))
  PHASE_NAMES+=("$CURRENT_PHASE") PHASE_TIMES+=("$took")
  if ((rc == 0)); then
    PHASE_RESULTS+=(ok)
    printf '======== %s: ok (%s) ========\n' "$CURRENT_PHASE" "$took" >&2
  else
    PHASE_RESULTS+=("FAILED (exit $rc)")
    FAILED=1
    printf '======== %s: FAILED, exit %d (%s) ========\n' "$CURRENT_PHASE" "$rc" "$took" >&2
  fi
  CURRENT_PHASE=''
}

print_summary() {
  ((${#PHASE_NAMES[@]} > 0)) || [[ -n $CURRENT_PHASE ]] || return 0
  printf '\n======== SUMMARY ========\n' >&2
  local i
  for i in "${!PHASE_NAMES[@]}"; do
    printf '  %-34s %-18s %8s\n' "${PHASE_NAMES[$i]}" "${PHASE_RESULTS[$i]}" "${PHASE_TIMES[$i]}" >&2
  done
  # A phase still open here was aborted by an error (set -e) or a signal.
  if [[ -n $CURRENT_PHASE ]]; then
    printf '  %-34s %-18s %8s\n' "$CURRENT_PHASE" "ABORTED" \
      "$(fmt_duration $(($(now_us) - CURRENT_PHASE_START)))" >&2
  fi
}

# ---------------------------------------------------------------------------
# Installing tools
# ---------------------------------------------------------------------------

# Newest PostgreSQL bin dir. Debian keeps the server binaries in
# /usr/lib/postgresql/<ver>/bin, which is not on PATH.
find_pg_bin() {
  local d
  if [[ -n $PG_BIN ]]; then
    [[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl && -x $PG_BIN/postgres ]] && return 0
    die "PG_BIN=$PG_BIN does not contain initdb, pg_ctl and postgres"
  fi
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
    if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then PG_BIN=$d; return 0; fi
  done
  # Other layouts (e.g. a developer's distro): take the directory pg_ctl really lives in.
  if d=$(command -v pg_ctl) && d=$(dirname "$(readlink -f "$d")") &&
    [[ -x $d/initdb && -x $d/postgres ]]; then
    PG_BIN=$d
    return 0
  fi
  return 1
}

# Debian's chromium runs the dashboard's browser test (cmd/cityeyes); the test runs get its
# path as CITYEYES_TEST_CHROMIUM. Without the variable (a plain `go test`) that test skips.
CHROMIUM_BIN=''
find_chromium() {
  CHROMIUM_BIN=$(command -v chromium || true)
  [[ -z $CHROMIUM_BIN && -x /usr/bin/chromium ]] && CHROMIUM_BIN=/usr/bin/chromium
  [[ -n $CHROMIUM_BIN ]]
}

find_redis() {
  REDIS_BIN=$(command -v redis-server || true)
  [[ -z $REDIS_BIN && -x /usr/bin/redis-server ]] && REDIS_BIN=/usr/bin/redis-server
  [[ -n $REDIS_BIN ]]
}

apt_install() {
  ((EUID == 0)) || die "missing packages: $* (install them, or run as root so this script can)"
  command -v apt-get >/dev/null || die "missing packages: $* and apt-get is not available; install them by hand"
  log "installing: $*"
  local apt=(apt-get -q -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" update </dev/null >&2
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "$@" </dev/null >&2
}

# initdb refuses to run as root, so as root we run PostgreSQL as `postgres`.
ensure_postgres_user() {
  ((EUID == 0)) || return 0
  if ! id -u postgres >/dev/null 2>&1; then
    log "creating system user postgres"
    useradd --system --user-group --no-create-home --home-dir /var/lib/postgresql \
      --shell /usr/sbin/nologin postgres
  fi
  command -v runuser >/dev/null || die "runuser (util-linux) is needed to run PostgreSQL as postgres"
}

# Build the pinned MinIO into the cache unless a working binary is already there.
ensure_minio() {
  if [[ -x $MINIO_BIN ]] && "$MINIO_BIN" --version >/dev/null 2>&1; then
    return 0
  fi
  mkdir -p "$MINIO_DIR"
  # Serialise concurrent first-time builds (two `make test` in parallel).
  if command -v flock >/dev/null; then
    exec 9>"$CACHE_DIR/.minio-build.lock"
    flock 9
    if [[ -x $MINIO_BIN ]] && "$MINIO_BIN" --version >/dev/null 2>&1; then
      exec 9>&-
      return 0
    fi
  fi
  log "building $MINIO_MODULE@$MINIO_VERSION into $MINIO_DIR (2-5 minutes the first time)"
  # A half-written binary (interrupted build) fails --version above; remove it.
  rm -f "$MINIO_BIN"
  # CGO off: that is how MinIO ships, and it needs no C compiler.
  GOBIN=$MINIO_DIR CGO_ENABLED=0 "$GO" install "$MINIO_MODULE@$MINIO_VERSION" >&2
  exec 9>&-
  "$MINIO_BIN" --version >/dev/null || die "built $MINIO_BIN but it does not run"
}

ensure_tools() {
  local pkgs=()
  find_pg_bin || pkgs+=(postgresql)
  find_redis || pkgs+=(redis-server)
  # fonts-liberation: text in the dashboard's screenshots (only recommended by chromium).
  find_chromium && [[ -d /usr/share/fonts/truetype/liberation ]] || pkgs+=(chromium fonts-liberation)
  # Go downloads modules over HTTPS; a minimal Debian image has no CA bundle.
  if command -v dpkg >/dev/null && ! dpkg -s ca-certificates >/dev/null 2>&1; then
    pkgs+=(ca-certificates)
  fi
  if ((${#pkgs[@]})); then
    apt_install "${pkgs[@]}"
    find_pg_bin || die "postgresql installed but no initdb/pg_ctl/postgres found under /usr/lib/postgresql/*/bin"
    find_redis || die "redis-server installed but not found"
    find_chromium || die "chromium installed but not found"
  fi
  ensure_postgres_user
  ensure_minio
  log "go:       $("$GO" version)"
  log "postgres: $("$PG_BIN/postgres" --version) ($PG_BIN)"
  log "redis:    $("$REDIS_BIN" --version | cut -d' ' -f1-3) ($REDIS_BIN)"
  log "chromium: $("$CHROMIUM_BIN" --version 2>/dev/null) ($CHROMIUM_BIN)"
  log "minio:    $MINIO_BIN ($MINIO_VERSION)"
}

# ---------------------------------------------------------------------------
# Process and port helpers
# ---------------------------------------------------------------------------

# is_running PID NAME: PID is alive and its command line mentions NAME
# (guards against killing an unrelated process that reused the pid).
is_running() {
  local cmdline
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
  [[ $cmdline == *"$2"* ]]
}

# stop_pid PID NAME: TERM, wait up to 10s, then KILL.
stop_pid() {
  local pid=$1 name=$2 i
  is_running "$pid" "$name" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    is_running "$pid" "$name" || break
    sleep 0.1
  done
  if is_running "$pid" "$name"; then
    log "$name (pid $pid) ignored SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true # reap it if it is our child
}

# Is something accepting connections on 127.0.0.1:PORT?
port_in_use() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# pick_port: set PICKED to a free loopback port. Ports come from below the
# kernel's ephemeral range so outgoing connections cannot grab them between
# the probe and the server's bind; ports already handed out are skipped. A
# remaining race (another program binding it first) is handled by the
# start_* functions retrying on a new port.
declare -A PORTS_TAKEN=()
pick_port() {
  local eph_lo=32768 _hi lo=15000 hi port i
  read -r eph_lo _hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  hi=$((eph_lo - 1))
  ((hi - lo >= 1000)) || { lo=10000; hi=65000; }
  for ((i = 0; i < 500; i++)); do
    port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
    [[ -z ${PORTS_TAKEN[$port]:-} ]] || continue
    port_in_use "$port" && continue
    PORTS_TAKEN[$port]=1
    PICKED=$port
    return 0
  done
  die "could not find a free port on 127.0.0.1"
}

# wait_for SECONDS WHAT PID CMD...: poll CMD until it succeeds; give up early
# if PID (when non-empty) dies.
wait_for() {
  local secs=$1 what=$2 pid=$3 i
  shift 3
  for ((i = 0; i < secs * 5; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      log "$what exited during startup"
      return 1
    fi
    sleep 0.2
  done
  log "$what not ready after ${secs}s"
  return 1
}

# HTTP status code of GET http://127.0.0.1:PORT/PATH (curl, else bash /dev/tcp).
http_status() {
  if command -v curl >/dev/null; then
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1$2"
  else
    timeout 3 bash -c '
      exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
      printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n" "$2" "$1" >&3
      read -r _ code _ <&3 && echo "$code"' _ "$1" "$2"
  fi
}
minio_live() { [[ $(http_status "$1" /minio/health/live) == 200 ]]; }

# Redis PING over bash /dev/tcp (redis-cli is not required).
redis_ping() {
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "PING\r\n" >&3
    read -r reply <&3 && [[ $reply == +PONG* ]]' _ "$1"
}

pg_ready() {
  if [[ -x $PG_BIN/pg_isready ]]; then
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$1" -U postgres -d postgres
  else
    port_in_use "$1"
  fi
}

# Run a PostgreSQL binary as the postgres user when we are root (initdb and
# postgres refuse to run as root). cd first so postgres can stat its cwd.
as_pg() {
  if ((EUID == 0)); then
    (cd "$WORKDIR" && runuser -u postgres -- "$@")
  else
    (cd "$WORKDIR" && "$@")
  fi
}

show_log() { [[ -f $1 ]] && { log "---- last lines of $1 ----"; tail -n 25 "$1" >&2; }; return 0; }

# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

start_postgres() {
  local dir=$WORKDIR/pg locale_flag=--no-locale attempt
  mkdir -p "$dir/sock"
  ((EUID == 0)) && chown -R postgres: "$WORKDIR"
  # Pin the locale so sorting behaves the same on every machine; C.UTF-8
  # keeps Unicode-aware lower()/upper().
  if locale -a 2>/dev/null | grep -ix 'C.utf-\?8' >/dev/null; then locale_flag=--locale=C.UTF-8; fi
  log "initdb $dir/data"
  as_pg "$PG_BIN/initdb" -D "$dir/data" --auth=trust -U postgres --encoding=UTF8 \
    "$locale_flag" --no-sync >"$dir/initdb.log" 2>&1 ||
    { show_log "$dir/initdb.log"; die "initdb failed"; }
  for attempt in 1 2 3; do
    pick_port
    PG_PORT=$PICKED
    log "starting postgres on 127.0.0.1:$PG_PORT"
    # Durability is pointless for a throwaway cluster; skipping fsync makes
    # the many CREATE DATABASEs of the tests much faster.
    if as_pg "$PG_BIN/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $PG_PORT -k '$dir/sock' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      >>"$dir/pg_ctl.log" 2>&1 &&
      wait_for 30 postgres "" pg_ready "$PG_PORT"; then
      return 0
    fi
    show_log "$dir/postgres.log"
    as_pg "$PG_BIN/pg_ctl" stop -D "$dir/data" -m immediate >/dev/null 2>&1 || true
    log "postgres did not start on port $PG_PORT (attempt $attempt)"
  done
  die "postgres failed to start"
}

start_redis() {
  local dir=$WORKDIR/redis attempt pid
  mkdir -p "$dir"
  for attempt in 1 2 3; do
    pick_port
    REDIS_PORT=$PICKED
    log "starting redis on 127.0.0.1:$REDIS_PORT"
    # Foreground process in the background (not --daemonize) so that $! is
    # the server and an early exit (port taken) is noticed at once.
    "$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
      --daemonize no --dir "$dir" --logfile "$dir/redis.log" </dev/null >>"$dir/redis.out" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/redis.pid"
    if wait_for 30 redis "$pid" redis_ping "$REDIS_PORT"; then return 0; fi
    show_log "$dir/redis.log"
    stop_pid "$pid" redis-server
    log "redis did not start on port $REDIS_PORT (attempt $attempt)"
  done
  die "redis failed to start"
}

start_minio() {
  local dir=$WORKDIR/minio attempt pid
  mkdir -p "$dir/data"
  # Random per run; MinIO wants at least 8 characters.
  S3_SECRET_KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  for attempt in 1 2 3; do
    pick_port
    MINIO_PORT=$PICKED
    pick_port
    MINIO_CONSOLE_PORT=$PICKED
    log "starting minio on 127.0.0.1:$MINIO_PORT (console 127.0.0.1:$MINIO_CONSOLE_PORT)"
    # MINIO_CI_CD: skip the "data dir is on the root disk" checks, as in CI.
    # MINIO_UPDATE=off: no update checks against the internet.
    MINIO_ROOT_USER=$S3_ACCESS_KEY MINIO_ROOT_PASSWORD=$S3_SECRET_KEY \
      MINIO_CI_CD=1 MINIO_UPDATE=off \
      "$MINIO_BIN" server --address "127.0.0.1:$MINIO_PORT" \
      --console-address "127.0.0.1:$MINIO_CONSOLE_PORT" "$dir/data" \
      </dev/null >>"$dir/minio.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/minio.pid"
    if wait_for 60 minio "$pid" minio_live "$MINIO_PORT"; then return 0; fi
    show_log "$dir/minio.log"
    stop_pid "$pid" minio
    log "minio did not start on port $MINIO_PORT (attempt $attempt)"
  done
  die "minio failed to start"
}

# The variables the real-server run gets, as NAME=VALUE (tests create their
# own databases through the admin URL; *_BIN let fault tests restart servers).
server_env() {
  SERVER_ENV=(
    "CITYEYES_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
    "CITYEYES_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
    "CITYEYES_TEST_S3_ENDPOINT=127.0.0.1:$MINIO_PORT"
    "CITYEYES_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY"
    "CITYEYES_TEST_S3_SECRET_KEY=$S3_SECRET_KEY"
    "CITYEYES_TEST_S3_BUCKET=$S3_BUCKET"
    "CITYEYES_TEST_MINIO_BIN=$MINIO_BIN"
    "CITYEYES_TEST_REDIS_BIN=$REDIS_BIN"
    "CITYEYES_TEST_PG_BIN=$PG_BIN"
  )
}

# The same as `export NAME='VALUE'` lines a shell can eval (no value
# contains a single quote).
env_lines() {
  local kv
  server_env
  for kv in "${SERVER_ENV[@]}"; do printf "export %s='%s'\n" "${kv%%=*}" "${kv#*=}"; done
}

# Create the temp dir and start the three servers on free loopback ports.
start_servers() {
  # postgres must be able to reach the dir; a TMPDIR under /root would not do.
  if ((EUID == 0)) && ! runuser -u postgres -- test -x "$TMP_ROOT" 2>/dev/null; then
    TMP_ROOT=/tmp
  fi
  reap_stale_workdirs
  WORKDIR=$(mktemp -d "$TMP_ROOT/${WORK_PREFIX}XXXXXX")
  # Who owns this dir: lets a later run recognise it as stale once we are gone.
  echo "$$" >"$WORKDIR/owner.pid"
  echo "PG_BIN='$PG_BIN'" >"$WORKDIR/meta"
  log "temp dir $WORKDIR"
  start_postgres
  start_redis
  start_minio
  env_lines >"$WORKDIR/env"
}

# stop_servers DIR: stop whatever was started in DIR, then delete DIR.
stop_servers() {
  local dir=$1 pid PG_BIN=$PG_BIN
  [[ -d $dir ]] || return 0
  # shellcheck disable=SC1091
  [[ -f $dir/meta ]] && source "$dir/meta"
  [[ -s $dir/minio/minio.pid ]] && stop_pid "$(<"$dir/minio/minio.pid")" minio
  [[ -s $dir/redis/redis.pid ]] && stop_pid "$(<"$dir/redis/redis.pid")" redis-server
  if [[ -f $dir/pg/data/postmaster.pid ]]; then
    pid=$(head -n1 "$dir/pg/data/postmaster.pid")
    # pg_ctl as postgres; fall back to signalling the postmaster directly.
    if [[ -n $PG_BIN ]]; then
      (WORKDIR=$dir as_pg "$PG_BIN/pg_ctl" stop -D "$dir/pg/data" -m fast -w -t 20 >/dev/null 2>&1) || true
    fi
    stop_pid "$pid" postgres
  fi
  rm -rf "$dir"
}

# A run killed with SIGKILL (or a crashed CI job) cannot clean up after
# itself. Any of our temp dirs whose owning test.sh is gone is stale: stop
# its servers and remove it. Dirs of `make servers` (no owner) are left
# alone unless they are the recorded one, which servers-stop handles.
reap_stale_workdirs() {
  local d owner
  for d in "$TMP_ROOT/$WORK_PREFIX"*/; do
    [[ -d $d && -f $d/owner.pid ]] || continue
    d=${d%/}
    owner=$(<"$d/owner.pid")
    [[ $owner == "$$" ]] && continue
    is_running "$owner" test.sh && continue
    log "removing stale $d (left by pid $owner)"
    stop_servers "$d"
  done
}

# ---------------------------------------------------------------------------
# Go phases
# ---------------------------------------------------------------------------

# run_child CMD...: run a long command (go test can take minutes) so that a
# signal to this script is acted on at once: bash postpones traps while a
# foreground child runs, but `wait` is interrupted by them. setsid gives the
# command its own process group, so the command, the test binaries and
# anything they started (e.g. servers of fault tests) can be stopped together,
# on interruption and also when a test leaves a process behind.
CHILD_PID=''
run_child() {
  local rc=0
  if command -v setsid >/dev/null; then
    setsid "$@" </dev/null &
    CHILD_PID=$!
    wait "$CHILD_PID" || rc=$?
    if group_alive "$CHILD_PID"; then
      log "stopping processes the tests left running"
      stop_group "$CHILD_PID"
    fi
    CHILD_PID=''
  else
    "$@" </dev/null || rc=$?
  fi
  return "$rc"
}

# Is any live (non-zombie) process left in process group $1?
group_alive() {
  local f stat state pgrp
  for f in /proc/[0-9]*/stat; do
    { read -r stat <"$f"; } 2>/dev/null || continue
    stat=${stat##*) } # drop "pid (comm) ", comm may contain spaces
    read -r state _ pgrp _ <<<"$stat"
    [[ $pgrp == "$1" && $state != Z ]] && return 0
  done
  return 1
}

# stop_group PGID: TERM the whole group, give it 5s, then KILL what is left.
stop_group() {
  local i
  kill -TERM -- "-$1" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do group_alive "$1" || break; sleep 0.1; done
  group_alive "$1" && kill -KILL -- "-$1" 2>/dev/null
  wait "$1" 2>/dev/null || true # reap the leader
}

# Called from on_exit: a go command was still running, so we were interrupted.
stop_child() {
  [[ -n $CHILD_PID ]] || return 0
  log "interrupted: stopping process group $CHILD_PID"
  stop_group "$CHILD_PID"
  CHILD_PID=''
}

# `env` arguments that remove every CITYEYES_TEST_* variable, so the
# embedded run really uses the embedded defaults; the browser, which is no
# server, is then set again for both runs.
clear_test_env() {
  local v
  ENV_ARGS=()
  for v in $(compgen -e | grep '^CITYEYES_TEST_' || true); do ENV_ARGS+=(-u "$v"); done
  [[ -n $CHROMIUM_BIN ]] || find_chromium || true
  [[ -n $CHROMIUM_BIN ]] && ENV_ARGS+=("CITYEYES_TEST_CHROMIUM=$CHROMIUM_BIN")
  return 0
}

check_gofmt() {
  local out
  out=$(gofmt -l .) || return 1
  if [[ -n $out ]]; then
    printf 'gofmt: these files need formatting (run: gofmt -w .):\n%s\n' "$out" >&2
    return 1
  fi
}

go_vet() {
  log "+ go vet ./..."
  run_child "$GO" vet ./...
}

go_test_embedded() {
  clear_test_env
  log "+ go test -count=1 ${GOTESTFLAGS:+$GOTESTFLAGS }./...   (no CITYEYES_TEST_* set)"
  run_child env "${ENV_ARGS[@]}" "$GO" test -count=1 "${EXTRA_TEST_FLAGS[@]}" ./...
}

go_test_servers() {
  local kv
  clear_test_env
  server_env
  for kv in "${SERVER_ENV[@]}"; do
    [[ $kv == *SECRET_KEY=* ]] && kv="${kv%%=*}=***"
    log "  $kv"
  done
  log "+ go test -count=1 -p 1 ${GOTESTFLAGS:+$GOTESTFLAGS }./..."
  run_child env "${ENV_ARGS[@]}" "${SERVER_ENV[@]}" "$GO" test -count=1 -p 1 "${EXTRA_TEST_FLAGS[@]}" ./...
}

# The fault tests (cmd/cityeyes/chaos_test.go), at the sizes of docs/reliability.md.
CHAOS_TESTS='^(TestSIGKILL|TestRedisLost|TestMinIOStopped|TestPostgresRestarted|TestTwoOfEach)$'
go_test_chaos() {
  clear_test_env
  server_env
  log "+ CITYEYES_TEST_CHAOS=1 go test -count=1 -timeout 90m -v -run '$CHAOS_TESTS' ./cmd/cityeyes/"
  run_child env "${ENV_ARGS[@]}" "${SERVER_ENV[@]}" CITYEYES_TEST_CHAOS=1 "$GO" test -count=1 -timeout 90m -v \
    -run "$CHAOS_TESTS" "${EXTRA_TEST_FLAGS[@]}" ./cmd/cityeyes/
}

# The fuzz targets, as "package name". go test fuzzes one target per run.
FUZZ_TARGETS=(
  "./api/ FuzzReportIntake"
  "./api/ FuzzOpen311Requests"
  "./models/ FuzzCityConfig"
  "./models/ FuzzValidateAnswers"
  "./workflows/ FuzzPhoto"
)

# go_fuzz TIME: fuzz every target for TIME against the embedded backends, one after the
# other (the seed corpora already ran in the plain test run). Minimising is bounded too: a
# slow target (a photo decodes in tens of milliseconds) would otherwise spend the whole
# run minimising one new input. Anything found fails the run and is written by go test to
# the package's testdata/fuzz/<Name>/: keep that file with the fix, as its regression test.
go_fuzz() {
  local fuzztime=$1 minimize=${FUZZMINIMIZETIME:-5s} target pkg name rc=0
  clear_test_env
  for target in "${FUZZ_TARGETS[@]}"; do
    read -r pkg name <<<"$target"
    log "+ go test -run='^\$' -fuzz='^$name\$' -fuzztime=$fuzztime -fuzzminimizetime=$minimize $pkg"
    run_child env "${ENV_ARGS[@]}" "$GO" test -run='^$' -fuzz="^$name\$" -fuzztime="$fuzztime" \
      -fuzzminimizetime="$minimize" "$pkg" || rc=$?
  done
  return "$rc"
}

# ---------------------------------------------------------------------------
# Cleanup
# ---------------------------------------------------------------------------

KEEP_SERVERS=0
on_exit() {
  local rc=$?
  # Cleanup is bounded (a few seconds); don't let a second Ctrl-C cut it short.
  trap - EXIT
  trap '' INT TERM
  stop_child
  if [[ -n $WORKDIR && $KEEP_SERVERS == 0 ]]; then
    log "stopping servers and removing $WORKDIR"
    stop_servers "$WORKDIR"
  fi
  print_summary
  ((rc == 0 && FAILED == 1)) && rc=1
  if [[ ${#PHASE_NAMES[@]} -gt 0 || -n $CURRENT_PHASE ]]; then
    if ((rc == 0)); then log "all phases passed"; else log "FAILED (exit $rc)"; fi
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------

cmd_all() {
  local rc
  phase_begin "install tools"
  ensure_tools
  phase_end 0

  phase_begin "go mod download"
  rc=0; run_child "$GO" mod download || rc=$?
  phase_end "$rc"

  phase_begin "gofmt -l ."
  rc=0; check_gofmt || rc=$?
  phase_end "$rc"

  phase_begin "go vet ./..."
  rc=0; go_vet || rc=$?
  phase_end "$rc"

  phase_begin "go test (embedded defaults)"
  rc=0; go_test_embedded || rc=$?
  phase_end "$rc"

  phase_begin "fuzz (bounded)"
  rc=0; FUZZMINIMIZETIME=2s go_fuzz 8s || rc=$?
  phase_end "$rc"

  phase_begin "start servers"
  start_servers
  phase_end 0

  phase_begin "go test -p 1 (real servers)"
  rc=0; go_test_servers || rc=$?
  phase_end "$rc"
}

cmd_embedded() {
  local rc=0
  phase_begin "go test (embedded defaults)"
  go_test_embedded || rc=$?
  phase_end "$rc"
}

cmd_fuzz() {
  local rc=0
  phase_begin "fuzz (${FUZZTIME:-60s} each)"
  go_fuzz "${FUZZTIME:-60s}" || rc=$?
  phase_end "$rc"
}

cmd_chaos() {
  local rc=0
  phase_begin "install tools"
  ensure_tools
  phase_end 0
  phase_begin "start servers"
  start_servers
  phase_end 0
  phase_begin "fault tests (full size)"
  go_test_chaos || rc=$?
  phase_end "$rc"
}

cmd_lint() {
  local rc
  phase_begin "gofmt -l ."
  rc=0; check_gofmt || rc=$?
  phase_end "$rc"
  phase_begin "go vet ./..."
  rc=0; go_vet || rc=$?
  phase_end "$rc"
}

cmd_tools() {
  ensure_tools
}

# The recorded `make servers` dir, if its servers are all still alive.
recorded_servers_alive() {
  local dir
  [[ -s $SERVERS_STATE ]] || return 1
  dir=$(<"$SERVERS_STATE")
  [[ -f $dir/env && -s $dir/pg/data/postmaster.pid ]] || return 1
  is_running "$(head -n1 "$dir/pg/data/postmaster.pid")" postgres &&
    is_running "$(<"$dir/redis/redis.pid")" redis-server &&
    is_running "$(<"$dir/minio/minio.pid")" minio
}

cmd_servers() {
  mkdir -p "$CACHE_DIR"
  if recorded_servers_alive; then
    log "servers from an earlier 'make servers' are still running ($(<"$SERVERS_STATE"));"
    log "printing their settings. For fresh ones: make servers-stop servers"
    cat "$(<"$SERVERS_STATE")/env"
    return 0
  fi
  [[ -s $SERVERS_STATE ]] && cmd_servers_stop # half-dead leftovers
  ensure_tools
  start_servers
  rm -f "$WORKDIR/owner.pid" # no owner: must outlive this script
  echo "$WORKDIR" >"$SERVERS_STATE"
  KEEP_SERVERS=1
  log "servers running in $WORKDIR; stop them with: make servers-stop"
  log "logs: $WORKDIR/{pg/postgres.log,redis/redis.log,minio/minio.log}"
  echo "# City Eyes test servers; load with: eval \"\$(make -s servers)\""
  cat "$WORKDIR/env"
}

cmd_servers_stop() {
  local dir
  [[ -s $SERVERS_STATE ]] || { log "no servers recorded in $SERVERS_STATE"; return 0; }
  dir=$(<"$SERVERS_STATE")
  log "stopping servers in $dir"
  stop_servers "$dir"
  rm -f "$SERVERS_STATE"
}

case ${1:-} in
  all) cmd_all ;;
  embedded) cmd_embedded ;;
  fuzz) cmd_fuzz ;;
  chaos) cmd_chaos ;;
  lint) cmd_lint ;;
  tools) cmd_tools ;;
  servers) cmd_servers ;;
  servers-stop) cmd_servers_stop ;;
  *)
    sed -n '/^# \.ci\/test\.sh/,/^$/s/^# \{0,1\}//p' "$SCRIPT_DIR/test.sh" >&2
    exit 2
    ;;
esac
