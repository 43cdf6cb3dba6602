#!/usr/bin/env bash
# The whole stack as local processes, without Docker: `make up` / `make down` (or `bash scripts/stack.sh ...`).
#
#   up      start what is not running yet: a private redis-server (only when none answers at REDIS_URL), the
#           inference API, the web page, and the trainer in the background when ARTIFACTS_DIR has no model yet;
#           wait until each answers, then print the URLs and where the logs are
#   down    stop exactly what `up` started (process groups named by the pid files in RUN_DIR); idempotent
#   status  show what runs
#
# Each process runs in its own session (setsid), so stopping its process group also stops its workers, and
# nothing else is ever signalled: a pid file is acted on only while its process still runs the expected command.
# No edge here (that is the compose stack's nginx): the servers listen on BIND_ADDRESS themselves. The inference
# service records the model it serves in RUN_DIR/serving, where the trainer's retention (KEEP_MODELS) sees it.
# Settings (environment): BIND_ADDRESS, INFERENCE_PORT, FRONTEND_PORT, REDIS_URL, DATA_DIR, ARTIFACTS_DIR,
# DEFAULT_MODEL_DIR, DOWNLOAD, TRAIN (auto|yes|no), RUN_DIR, PYTHON, START_TIMEOUT; everything else in the
# environment (EPOCHS, DEVICE, SECRET_KEY, ...) reaches the services unchanged.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

absolute() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$REPO_ROOT/$1" ;; esac; }

RUN_DIR="$(absolute "${RUN_DIR:-.run}")"
LOG_DIR="$RUN_DIR/logs"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then PYTHON="$REPO_ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
BIND_ADDRESS="${BIND_ADDRESS:-127.0.0.1}"
INFERENCE_PORT="${INFERENCE_PORT:-8000}"
FRONTEND_PORT="${FRONTEND_PORT:-5000}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
DATA_DIR="$(absolute "${DATA_DIR:-data}")"
ARTIFACTS_DIR="$(absolute "${ARTIFACTS_DIR:-artifacts}")"
DEFAULT_MODEL_DIR="$(absolute "${DEFAULT_MODEL_DIR:-models/default}")"
DOWNLOAD="${DOWNLOAD:-true}"
TRAIN="${TRAIN:-auto}"
START_TIMEOUT="${START_TIMEOUT:-120}"
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"

# Where to reach the servers from this machine (0.0.0.0 means "every address"; talk to it on loopback).
case "$BIND_ADDRESS" in 0.0.0.0 | "::") CONNECT_HOST=127.0.0.1 ;; *) CONNECT_HOST="$BIND_ADDRESS" ;; esac
INFERENCE_URL="http://$CONNECT_HOST:$INFERENCE_PORT"
FRONTEND_URL="http://$CONNECT_HOST:$FRONTEND_PORT"

SERVICES_UP=(redis inference frontend trainer)
SERVICES_DOWN=(frontend trainer inference redis)

say() { printf '[stack] %s\n' "$*"; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# --- process bookkeeping ---------------------------------------------------------------------------------------

pid_file() { printf '%s/%s.pid\n' "$RUN_DIR" "$1"; }

# The text a service's command line must contain, so a recycled pid is never mistaken for ours.
marker() { case "$1" in redis) echo "redis-server" ;; *) echo "services.$1" ;; esac; }

# Print the pid of service $1 when its pid file names a live process group leader running the expected command.
running_pid() {
    local file pid cmdline
    file="$(pid_file "$1")"
    [[ -f "$file" ]] || return 1
    pid="$(tr -dc '0-9' <"$file")"
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
    [[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" == "$pid" ]] || return 1
    [[ "$(ps -o stat= -p "$pid")" != Z* ]] || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
    [[ "$cmdline" == *"$(marker "$1")"* ]] || return 1
    echo "$pid"
}

# True while any non-zombie process is left in process group $1.
group_alive() { ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ {found = 1} END {exit !found}'; }

# start NAME COMMAND...: run COMMAND in a new session (pgid = pid), output appended to $LOG_DIR/NAME.log.
start() {
    local name="$1" file
    shift
    file="$(pid_file "$name")"
    rm -f "$file"
    # The inner bash records its own pid (the session leader) and then becomes the command with exec.
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$file" "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
    for _ in $(seq 50); do
        [[ -s "$file" ]] && return 0
        sleep 0.1
    done
    die "$name did not start (see $LOG_DIR/$name.log)"
}

stop() {
    local name="$1" pid
    if ! pid="$(running_pid "$name")"; then
        [[ -f "$(pid_file "$name")" ]] && say "$name: not running (removing a stale pid file)"
        rm -f "$(pid_file "$name")"
        return 0
    fi
    say "stopping $name (process group $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 150); do
        group_alive "$pid" || break
        sleep 0.1
    done
    if group_alive "$pid"; then
        say "$name did not stop within 15s: killing it"
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$(pid_file "$name")"
}

# --- probes ------------------------------------------------------------------------------------------------------

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

http_ok() { "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null; }

redis_answers() {
    "$PYTHON" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_timeout=2).ping()' "$REDIS_URL" \
        2>/dev/null
}

# wait_http NAME URL: until URL answers 2xx; fail early when the process died.
wait_http() {
    local name="$1" url="$2" deadline=$((SECONDS + START_TIMEOUT))
    while ! http_ok "$url"; do
        if ! running_pid "$name" >/dev/null; then
            tail -n 20 "$LOG_DIR/$name.log" >&2 || true
            fail_up "$name exited during start-up (log: $LOG_DIR/$name.log)"
        fi
        ((SECONDS < deadline)) || fail_up "$name did not answer $url within ${START_TIMEOUT}s (log: $LOG_DIR/$name.log)"
        sleep 0.3
    done
}

fail_up() {
    printf '[stack] error: %s\n' "$1" >&2
    say "stopping what was started"
    cmd_down >&2
    exit 1
}

# --- the services ------------------------------------------------------------------------------------------------

start_redis() {
    if running_pid redis >/dev/null; then
        say "redis: already running ($REDIS_URL)"
        return
    fi
    if redis_answers; then
        say "redis: using the server that answers at $REDIS_URL"
        return
    fi
    [[ "$REDIS_URL" =~ ^redis://([^@/]*@)?([^:/]+)(:([0-9]+))?(/.*)?$ ]] || die "cannot parse REDIS_URL=$REDIS_URL"
    local host="${BASH_REMATCH[2]}" port="${BASH_REMATCH[4]:-6379}"
    case "$host" in 127.0.0.1 | localhost) ;; *) die "no Redis answers at $REDIS_URL (only a local one is started)" ;; esac
    if ! command -v redis-server >/dev/null; then
        # Redis only speeds the page up: without it the page works uncached (install redis-server for the cache).
        say "redis: none answers at $REDIS_URL and redis-server is not installed: the page runs without its cache"
        return
    fi
    port_open "$host" "$port" && die "port $port is taken but does not answer as Redis: set REDIS_URL"
    say "redis: starting a private redis-server on $host:$port (keeps nothing on disk)"
    start redis redis-server --bind "$host" --port "$port" --save "" --appendonly no --dir "$RUN_DIR"
    local deadline=$((SECONDS + 10))
    until redis_answers; do
        ((SECONDS < deadline)) || fail_up "redis-server did not answer (log: $LOG_DIR/redis.log)"
        sleep 0.1
    done
}

data_present() {
    local raw="$DATA_DIR/FashionMNIST/raw" name
    for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
        [[ -e "$raw/$name" || -e "$raw/$name.gz" ]] || return 1
    done
}

# The script is the only one that downloads, before any service starts, so the trainer and the inference
# service never write the same files at the same time; the services themselves then run with DOWNLOAD=false.
ensure_data() {
    data_present && return 0
    case "${DOWNLOAD,,}" in
        1 | true | yes | on) ;;
        *)
            say "warning: no FashionMNIST in $DATA_DIR and DOWNLOAD=$DOWNLOAD: no training, no /samples"
            return 1
            ;;
    esac
    say "downloading FashionMNIST into $DATA_DIR (first run only)"
    if ! "$PYTHON" -c 'import sys; from shared.data import load_split
for train in (True, False): load_split(sys.argv[1], train=train, download=True)' "$DATA_DIR" \
        >>"$LOG_DIR/download.log" 2>&1; then
        say "warning: download failed (see $LOG_DIR/download.log): no training, no /samples"
        return 1
    fi
}

start_server() {  # NAME PORT ENV...: a server process on BIND_ADDRESS:PORT
    local name="$1" port="$2"
    shift 2
    if running_pid "$name" >/dev/null; then
        say "$name: already running"
        return
    fi
    port_open "$CONNECT_HOST" "$port" && fail_up "port $port is already in use: set ${name^^}_PORT to a free port"
    say "$name: starting on $BIND_ADDRESS:$port"
    start "$name" env HOST="$BIND_ADDRESS" PORT="$port" "$@" "$PYTHON" -m "services.$name"
}

start_trainer() {  # $1: whether the data set is there
    if running_pid trainer >/dev/null; then
        say "trainer: already running (log: $LOG_DIR/trainer.log)"
        return
    fi
    case "${TRAIN,,}" in
        no | 0 | false) return ;;
        yes | 1 | true) ;;
        *)  # auto
            if [[ -f "$ARTIFACTS_DIR/latest.json" ]]; then
                say "trainer: not started (a model is published in $ARTIFACTS_DIR; TRAIN=yes starts it anyway)"
                return
            fi
            ;;
    esac
    if [[ "$1" != yes ]]; then
        say "trainer: not started (no data set)"
        return
    fi
    say "trainer: training in the background (nice 10), log: $LOG_DIR/trainer.log"
    start trainer nice -n 10 env DATA_DIR="$DATA_DIR" ARTIFACTS_DIR="$ARTIFACTS_DIR" DOWNLOAD=false \
        SERVING_DIR="$RUN_DIR/serving" "$PYTHON" -m services.trainer
}

cmd_up() {
    case "${TRAIN,,}" in auto | yes | 1 | true | no | 0 | false) ;; *) die "TRAIN must be auto, yes or no (got $TRAIN)" ;; esac
    mkdir -p "$LOG_DIR"
    trap 'fail_up "interrupted"' INT TERM
    start_redis
    local have_data=no
    ensure_data && have_data=yes
    start_server inference "$INFERENCE_PORT" DATA_DIR="$DATA_DIR" ARTIFACTS_DIR="$ARTIFACTS_DIR" \
        DEFAULT_MODEL_DIR="$DEFAULT_MODEL_DIR" DOWNLOAD=false SERVING_DIR="$RUN_DIR/serving"
    start_server frontend "$FRONTEND_PORT" INFERENCE_URL="$INFERENCE_URL" REDIS_URL="$REDIS_URL"
    wait_http inference "$INFERENCE_URL/ready"
    wait_http frontend "$FRONTEND_URL/health"
    start_trainer "$have_data"
    trap - INT TERM
    cat <<EOF
[stack] up:
  page        $FRONTEND_URL/
  API         $INFERENCE_URL/   (OpenAPI docs: $INFERENCE_URL/docs)
  redis       $REDIS_URL
  logs        $LOG_DIR/
  stop with   make down   (or: bash scripts/stack.sh down)
EOF
}

cmd_down() {
    local name
    for name in "${SERVICES_DOWN[@]}"; do stop "$name"; done
    say "down"
}

cmd_status() {
    local name pid
    for name in "${SERVICES_UP[@]}"; do
        if pid="$(running_pid "$name")"; then
            say "$name: running (pid $pid)"
        elif [[ "$name" == redis ]]; then
            say "redis: none started here (the services use $REDIS_URL)"
        else
            say "$name: not running"
        fi
    done
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) die "usage: $0 up|down|status" ;;
esac
