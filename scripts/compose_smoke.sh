#!/usr/bin/env bash
# `make compose-smoke`: the Docker deployment end to end, the way a user runs it (here, in CI, on a laptop).
#
#   bash scripts/compose_smoke.sh              the engine that answers (Compose v2, else docker-compose v1)
#   ENGINE=docker bash scripts/compose_smoke.sh    Docker's own engine (CI: scripts/docker_engine.sh's dockerd)
#   ENGINE=podman bash scripts/compose_smoke.sh    Podman's Docker API (../shared/container-engine/setup.sh)
#   GPU=1 bash scripts/compose_smoke.sh        with the NVIDIA overlay (docker-compose.gpu.yml)
#
# 1. engine   scripts/smoke_common.sh's start_engine: ENGINE picks it; unset, the socket DOCKER_HOST names
#             (Docker's default one when unset) must answer, and where it does not and ../shared/container-engine/
#             exists (machines without a Docker daemon), its setup.sh starts Podman's Docker API.
# 2. images   `compose build` (with scripts/docker_engine.sh's host-network override on its dockerd); on Podman's
#             API that folder's build.sh (host networking and the machine's mirrors).
# 3. up       ONE `up -d` of the whole stack, under its own project name, ports and image tag, with the data set
#             bound read-only (docker-compose.offline.yml) when FASHION_MNIST_DIR (default ../shared/data) holds
#             it, else downloaded as by default. A short training run (EPOCHS=1, TRAIN_LIMIT=2000) starts with it.
# 4. checks   through the edge's published ports only (nginx; the API and the page publish none): /predict;
#             the edge against slow, oversized and broken clients (tests/reliability/test_edge.py with EDGE_API_URL
#             and EDGE_PAGE_URL), runs as non-root, and passes the client's address on; Chromium drives the page
#             (tests/frontend/test_browser.py with FRONTEND_URL); with low limits set, a client over its rate gets 429
#             in JSON with Retry-After (and a made-up X-Forwarded-For does not help it); the trained model reaches the API and the page
#             without a restart and the API records it in the serving volume; the page survives `stop redis` and
#             caches again after `start`; with the API stopped the edge answers 502 in JSON and finds the API again
#             after `start` (at its new address); a killed inference process is restarted by its restart policy;
#             `down` + `up` serves the trained model without retraining; `down -v` leaves no container, volume or
#             network of the project.
# The project is removed at the end, on failure too. Killing the process needs the engine's PIDs on this host
# (Linux, root): Docker Desktop's VM hides them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"

export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-fmnist-smoke}"
export FRONTEND_PORT="${FRONTEND_PORT:-15000}" INFERENCE_PORT="${INFERENCE_PORT:-18000}" BIND_ADDRESS=127.0.0.1
export IMAGE_TAG="${IMAGE_TAG:-smoke}" EPOCHS="${EPOCHS:-1}" TRAIN_LIMIT="${TRAIN_LIMIT:-2000}" RETRAIN=0
# Every client of this script is one address to the edge (the host, through the engine's port forwarding): the
# per-client limits are lifted for the checks that open many connections (test_edge.py: 100 at once), and
# check_edge_limits runs the edge once with low limits. A network range of its own, beside a running stack.
lifted_limits=(EDGE_RATE_LIMIT=100000r/s EDGE_RATE_BURST=100000 EDGE_CONN_LIMIT=10000)
export "${lifted_limits[@]}" STACK_SUBNET="${STACK_SUBNET:-10.89.214.0/24}"
engine_dir="${CONTAINER_ENGINE_DIR:-$repo/../shared/container-engine}"
python="${PYTHON:-$repo/.venv/bin/python}"
project="$COMPOSE_PROJECT_NAME"
api="http://127.0.0.1:$INFERENCE_PORT" page="http://127.0.0.1:$FRONTEND_PORT"
work="$(mktemp -d)"
files=(-f docker-compose.yml)
[[ "${GPU:-0}" == 1 ]] && files+=(-f docker-compose.gpu.yml)
declare -A timings=()

smoke=compose-smoke
# shellcheck source=scripts/smoke_common.sh
source "$repo/scripts/smoke_common.sh"  # say, fail, wait_for, container
compose() { "${compose_cmd[@]}" "${files[@]}" "$@"; }

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if ((status != 0)) && [[ -n "${compose_cmd:-}" ]]; then
        echo "---- state at the failure ----" >&2
        compose ps >&2 || true
        compose logs --tail 40 >&2 || true
    fi
    [[ -n "${compose_cmd:-}" ]] && compose down -v --remove-orphans >/dev/null 2>&1
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

field() {  # URL DOTTED.PATH: one field of a JSON answer
    curl -fsS --max-time 10 "$1" | python3 -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[key]
print(json.dumps(value) if isinstance(value, (dict, list, bool)) or value is None else value)' "$2"
}

status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$1"; }
inspect() { docker inspect -f "$2" "$(container "$1")"; }

# What the checks wait for.
page_ok() { [[ "$(status_of "$page/")" == 200 ]]; }
trainer_exited() { [[ "$(inspect trainer '{{.State.Status}}')" == exited ]]; }
api_serves() { [[ "$(field "$api/metrics" model.version) $(field "$api/metrics" model.source)" == "$1 artifacts" ]]; }
page_shows() { curl -fsS --max-time 10 "$page/" | grep -q "model $1"; }
page_sees() { [[ "$(field "$page/health" "$1")" == true ]]; }  # inference.ready, redis.reachable
cache_state() { curl -fsS --max-time 10 -o /dev/null -D - "$page/sample?index=7" | tr -d '\r' | sed -n 's/^X-Cache: //Ip'; }
cache_hits() { [[ "$(cache_state)" == hit ]]; }
restarted() { (($(inspect inference '{{.RestartCount}}') > $1)); }
healthy() { [[ "$(inspect "$1" '{{.State.Health.Status}}')" == healthy ]]; }  # as the engine ran the check

all() {  # COMMAND ARG...: COMMAND succeeds for every ARG
    local command="$1" arg
    shift
    for arg; do "$command" "$arg" || return 1; done
}

# --- 1. engine: start_engine (scripts/smoke_common.sh) ------------------------------------------------------------

# --- 2. images -----------------------------------------------------------------------------------------------------
build_images() {
    local started=$SECONDS
    if ((podman_api)) && [[ -f "$engine_dir/build.sh" ]]; then
        bash "$engine_dir/build.sh" "${files[@]}"
    else
        compose build
    fi
    timings[build]=$((SECONDS - started))
    docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "fashion-mnist-[a-z]+:$IMAGE_TAG" || true
}

# --- 3. up -----------------------------------------------------------------------------------------------------------
use_local_data() {
    local dir="${FASHION_MNIST_DIR:-$repo/../shared/data}"
    if [[ -f "$dir/FashionMNIST/raw/t10k-labels-idx1-ubyte" || -f "$dir/FashionMNIST/raw/t10k-labels-idx1-ubyte.gz" ]]
    then
        export FASHION_MNIST_DIR="$(cd "$dir" && pwd)"
        files+=(-f docker-compose.offline.yml)
        say "data: $FASHION_MNIST_DIR, bound read-only (docker-compose.offline.yml)"
    else
        say "data: downloaded by the containers (no FashionMNIST in ${dir})"
    fi
}

start_stack() {
    compose down -v --remove-orphans >/dev/null 2>&1 || true  # what an interrupted earlier run may have left
    local started=$SECONDS
    compose up -d
    wait_for "API ready" 120 curl -fsS "$api/ready"
    wait_for "page answers 200" 120 page_ok
    timings[up_to_page]=$((SECONDS - started))
    wait_for "inference, frontend and edge healthy by their compose health checks" 60 all healthy inference frontend edge
    page_sees inference.ready || fail "the page does not see a ready API: $(field "$page/health" inference.detail)"
    default_version="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["model_version"])' \
        models/default/latest.json)"
    # The trainer runs alongside; unless it already published, the API serves the shipped model first.
    say "served first: $(field "$api/metrics" model.source) model $(field "$api/metrics" model.version)"
}

# --- 4. checks -----------------------------------------------------------------------------------------------------
check_predict() {
    curl -fsS "$api/samples/0" | python3 -c '
import base64, json, sys
sys.stdout.buffer.write(base64.b64decode(json.load(sys.stdin)["image_png_base64"]))' >"$work/sample.png"
    curl -fsS -F "file=@$work/sample.png" "$api/predict" >"$work/prediction.json"
    python3 - "$work/prediction.json" <<'PY' || fail "/predict answered $(cat "$work/prediction.json")"
import json, sys
answer = json.load(open(sys.argv[1]))
assert answer["label"] and len(answer["top_k"]) == 3 and answer["model_version"], answer
print(f"compose-smoke: ok: /predict says {answer['label']} ({answer['confidence']:.2f})")
PY
}

check_edge() {
    local service marker edge_line page_line
    for service in inference frontend redis trainer; do
        [[ -z "$(docker port "$(container "$service")" 2>/dev/null)" ]] || fail "$service publishes a port"
    done
    [[ "$(compose exec -T edge id -u | tr -d '\r')" == 101 ]] || fail "nginx does not run as uid 101"
    EDGE_API_URL="$api" EDGE_PAGE_URL="$page" "$python" -m pytest -q -p no:cacheprovider -rA \
        tests/reliability/test_edge.py || fail "the edge checks failed against $api and $page"
    say "ok: the edge refuses slow, oversized and broken requests in JSON, and publishes alone"
    # The page sees the client's address (as the edge saw it), not the edge's, and not one the client made up.
    marker="smoke-$RANDOM$RANDOM"
    curl -fsS -o /dev/null -H "X-Forwarded-For: 203.0.113.7" "$page/health?$marker"
    logged() { docker logs "$(container "$1")" 2>&1 | grep -q "$marker"; }
    settle 30 all logged edge frontend  # both write their access line once the answer is sent
    edge_line="$(docker logs "$(container edge)" 2>/dev/null | grep "$marker" | tail -1)"
    page_line="$(docker logs "$(container frontend)" 2>&1 | grep "$marker" | tail -1)"
    [[ -n "$edge_line" && -n "$page_line" ]] || fail "the request is not in the logs (edge: '$edge_line', page: '$page_line')"
    [[ "${page_line%% *}" == "${edge_line%% *}" && "${page_line%% *}" != 203.0.113.7 ]] \
        || fail "the page logged ${page_line%% *} for a client the edge saw as ${edge_line%% *}"
    say "ok: the page logs the client's address ${page_line%% *}, as the edge saw it"
}

check_edge_limits() {
    # The edge again, with the limits start.sh writes from the environment set low: 1 request a minute and a burst
    # of 2 per client, so of 6 quick requests exactly 3 pass and 3 get 429 in JSON with Retry-After: 60. Then the
    # lifted limits again for the checks that follow.
    local statuses="" i answer
    EDGE_RATE_LIMIT=1r/m EDGE_RATE_BURST=2 compose up -d --no-deps edge
    wait_for "edge healthy with low limits" 60 healthy edge
    for i in 1 2 3 4 5 6; do
        statuses+="$(curl -s -o "$work/limited-$i.json" -D "$work/limited-$i.head" -w '%{http_code}' --max-time 10 \
            "$api/health") "
    done
    [[ "$statuses" == "200 200 200 429 429 429 " ]] || fail "with EDGE_RATE_LIMIT=1r/m, EDGE_RATE_BURST=2: $statuses"
    answer="$(cat "$work/limited-6.json")"
    [[ "$answer" == *'"error": "too_many_requests"'* ]] || fail "the edge's 429 is not the API's error shape: $answer"
    tr -d '\r' <"$work/limited-6.head" | grep -qix 'retry-after: 60' || fail "no Retry-After: 60 on the 429"
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "X-Forwarded-For: 203.0.113.99" "$api/health")" \
        == 429 ]] || fail "a made-up X-Forwarded-For escaped the client's limit"
    say "ok: over its rate a client gets 429 in JSON with Retry-After (EDGE_RATE_LIMIT from the environment)"
    compose up -d --no-deps edge  # the exported, lifted limits
    wait_for "edge healthy with the lifted limits" 60 healthy edge
    wait_for "API through the edge again" 60 curl -fsS "$api/ready"
}

check_api_restart_behind_edge() {
    local answer address
    address="$(inspect inference '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}')"
    compose stop inference
    # For up to the resolver's 5 s the edge may still try the old address and time out connecting (504 in JSON);
    # then the name no longer resolves and it answers 502 (at once, or after its 3 s resolver_timeout where the
    # DNS server does not answer for a stopped service). Either way a JSON error, never a hang.
    local deadline=$((SECONDS + 30))
    while :; do
        answer="$(curl -s -w ' %{http_code}' --max-time 10 "$api/ready" || true)"
        [[ "$answer" == *'"error": "upstream_unavailable"'*' 502' ]] && break
        [[ "$answer" == *'"error": "upstream_timeout"'*' 504' ]] || fail "with the API stopped the edge answered $answer"
        ((SECONDS < deadline)) || fail "with the API stopped the edge still answered $answer after 30 s"
        say "the edge still tries the stopped API's old address: $answer"
        sleep 1
    done
    page_ok || fail "the page does not answer 200 with the API stopped"
    say "ok: API stopped: the edge answers 502 in JSON, the page still 200"
    compose start inference
    wait_for "the edge reaches the restarted API" 120 curl -fsS "$api/ready"
    say "the API was at $address, now at $(inspect inference '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}')"
    wait_for "page sees the API again" 60 page_sees inference.ready
}

check_browser() {
    FRONTEND_URL="$page" FRONTEND_API_URL="$api" "$python" -m pytest -q -p no:cacheprovider \
        tests/frontend/test_browser.py -k "not documentation" || fail "the browser tests failed against $page"
    say "ok: Chromium drives the page"
}

check_training_published() {
    local before started restarts version
    started="$(inspect inference '{{.State.StartedAt}}')" restarts="$(inspect inference '{{.RestartCount}}')"
    wait_for "trainer finished" 600 trainer_exited
    [[ "$(inspect trainer '{{.State.ExitCode}}')" == 0 ]] || fail "the trainer exited $(inspect trainer '{{.State.ExitCode}}')"
    version="$(compose exec -T inference cat /app/artifacts/latest.json \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["model_version"])')"
    [[ -n "$version" && "$version" != "$default_version" ]] || fail "no new model was published"
    wait_for "API serves the trained model $version" 60 api_serves "$version"
    wait_for "page shows model $version" 60 page_shows "$version"
    [[ "$(inspect inference '{{.State.StartedAt}}') $(inspect inference '{{.RestartCount}}')" == "$started $restarts" ]] \
        || fail "the inference container was restarted"
    say "ok: switched to the trained model without a restart"
    local records
    records="$(compose exec -T inference sh -c 'cat /app/serving/*.json')"
    grep -q "\"models/$version.pt\"" <<<"$records" \
        || fail "the API's serving records do not name models/$version.pt: $records"
    say "ok: the API records what it serves (for the trainer's retention)"
    trained_version="$version"
}

check_redis_outage() {
    compose stop redis
    [[ "$(status_of "$page/")" == 200 ]] || fail "the page does not answer 200 with Redis stopped"
    [[ "$(field "$page/health" redis.reachable)" == false ]] || fail "/health does not report Redis as unreachable"
    [[ "$(cache_state)" == miss ]] || fail "/sample is not served (uncached) with Redis stopped"
    say "ok: page answers 200 without Redis"
    compose start redis
    wait_for "page sees Redis again" 60 page_sees redis.reachable
    wait_for "caching resumed (X-Cache: hit)" 30 cache_hits
    [[ "$(field "$page/health" cache.shared)" != null ]] || fail "the cache counters are not in Redis"
}

check_inference_crash() {
    local pid restarts
    pid="$(inspect inference '{{.State.Pid}}')" restarts="$(inspect inference '{{.RestartCount}}')"
    [[ "$pid" -gt 0 && -d "/proc/$pid" ]] || fail "the inference process (pid $pid) is not visible on this host"
    kill -KILL "$pid"
    say "killed the inference container's main process (pid $pid)"
    wait_for "restart policy restarted inference" 60 restarted "$restarts"
    wait_for "API ready again" 120 curl -fsS "$api/ready"
    wait_for "page sees the API again" 60 page_sees inference.ready
    page_ok || fail "the page does not answer 200 after the inference restart"
}

check_down_up_keeps_model() {
    compose down
    compose up -d
    wait_for "API ready after down + up" 120 curl -fsS "$api/ready"
    wait_for "trainer finished" 120 trainer_exited
    [[ "$(inspect trainer '{{.State.ExitCode}}')" == 0 ]] || fail "the second trainer exited non-zero"
    docker logs "$(container trainer)" 2>&1 | grep -q "already finished" || fail "the trainer trained again"
    wait_for "API serves $trained_version from the volume" 60 api_serves "$trained_version"
    wait_for "page answers 200" 120 page_ok
}

leftovers() {
    local filter="label=com.docker.compose.project=$project"
    docker ps -aq --filter "$filter"
    docker volume ls -q --filter "$filter"
    docker network ls -q --filter "$filter"
    docker ps -a --format '{{.Names}}' | grep "^${project}[_-]" || true
    docker volume ls --format '{{.Name}}' | grep "^${project}_" || true
    docker network ls --format '{{.Name}}' | grep "^${project}_" || true
}

check_down_removes_everything() {
    compose down -v --remove-orphans
    local left
    left="$(leftovers)"
    [[ -z "$left" ]] || fail "left behind by down -v: $left"
    say "ok: down -v left no container, volume or network of $project"
}

start_engine
build_images
use_local_data
start_stack
check_predict
check_edge
check_edge_limits
check_browser
check_training_published
check_redis_outage
check_api_restart_behind_edge
check_inference_crash
check_down_up_keeps_model
check_down_removes_everything
say "PASS (build ${timings[build]}s, up to page ${timings[up_to_page]}s, total ${SECONDS}s)"
