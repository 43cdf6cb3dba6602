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
#             without a restart and the API records it in the serving volume; pinning through the edge (a token of
#             this run's own, ADMIN_ALLOW=gateway): refused without the token, a pin and a rollback to the shipped
#             model served and shown by the page, unpinned back to the trained one, and refused by an edge without
#             ADMIN_ALLOW even with the token (docs/models.md); the page survives `stop redis` and
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
# Management (check_pin): a token of this run's own, whatever .env says, and the edge passes management requests
# from this machine (the container network's gateway, where the published ports' connections come from).
ADMIN_TOKEN="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
export ADMIN_TOKEN ADMIN_ALLOW=gateway
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

# Management requests through the edge (check_pin): the status, the answer in $work/admin.json.
admin() {  # METHOD PATH [TOKEN]
    local auth=()
    [[ -n "${3:-}" ]] && auth=(-H "Authorization: Bearer $3")
    curl -s -o "$work/admin.json" -w '%{http_code}' --max-time 30 -X "$1" ${auth[@]+"${auth[@]}"} "$api$2"
}
admin_field() {  # DOTTED.PATH: one field of $work/admin.json
    python3 -c '
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."):
    value = value[key]
print(json.dumps(value) if isinstance(value, (dict, list, bool)) or value is None else value)' "$work/admin.json" "$1"
}
listing_says() {  # SERVED PINNED ("null": none): GET /models, as the worker that answers sees it
    curl -fsS --max-time 10 "$api/models" >"$work/models.json" || return 1
    python3 - "$work/models.json" "$1" "$2" <<'PY'
import json, sys
listing, served, pinned = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
pinned = None if pinned == "null" else pinned
rows = {row["version"]: row for row in listing["models"]}
assert listing["served"] == served and listing["pinned"] == pinned, listing
assert listing["following"] == ("pin" if pinned else "latest") and (listing["pin"] is None) == (pinned is None)
assert rows[served]["served"] and (pinned is None or rows[pinned]["pinned"])
assert sum(row["pinned"] for row in rows.values()) == (1 if pinned else 0)
PY
}
serves_only() {  # VERSION: 8 answers in a row (whichever workers take them) name VERSION
    local i
    for i in 1 2 3 4 5 6 7 8; do [[ "$(field "$api/ready" model_version)" == "$1" ]] || return 1; done
}
page_pin_state() { [[ "$(curl -fsS --max-time 10 "$page/")" == *"data-testid=\"pin-state\">$1"* ]]; }  # pinned, following
edge_saw() {  # the address the edge logged for the last management request (what ADMIN_ALLOW is matched with)
    docker logs "$(container edge)" 2>/dev/null | grep -E '"(POST|DELETE) /models/' | tail -1 | cut -d' ' -f1
}

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

check_pin() {
    # Model versions through the edge (docs/models.md): the trained model serves and is latest, the shipped one is
    # listed beside it; pinning wants the token; a pin of the served version, then a rollback to the shipped one
    # (every worker follows within RELOAD_INTERVAL_S), then unpinned: the trained one again.
    local status token
    wait_for "GET /models: $trained_version served, nothing pinned" 30 listing_says "$trained_version" null
    python3 - "$work/models.json" "$trained_version" "$default_version" <<'PY' || fail "GET /models: $(cat "$work/models.json")"
import json, sys
listing, trained, default = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
rows = {row["version"]: row for row in listing["models"]}
assert listing["latest"] == trained and rows[trained]["latest"] and rows[trained]["source"] == "artifacts", listing
assert rows[default]["source"] == "default" and not rows[default]["latest"], rows
PY
    say "ok: GET /models lists $trained_version (served, latest) and the shipped $default_version"
    for token in "" "not-the-token"; do
        status="$(admin POST "/models/$trained_version/pin" "$token")"
        if [[ "$status" == 403 && "$(admin_field error)" == management_not_allowed_here ]]; then
            fail "the edge refused a management request from $(edge_saw) with ADMIN_ALLOW=gateway: $(cat "$work/admin.json")"
        fi
        [[ "$status" == 403 && "$(admin_field error)" == admin_token_required ]] \
            || fail "POST /models/$trained_version/pin with token '${token}' answered $status $(cat "$work/admin.json")"
    done
    say "ok: pinning without the token or with a wrong one: 403 admin_token_required"
    wait_for "still nothing pinned" 10 listing_says "$trained_version" null
    status="$(admin POST "/models/$trained_version/pin" "$ADMIN_TOKEN")"
    [[ "$status" == 200 && "$(admin_field pinned)" == "$trained_version" ]] \
        || fail "POST /models/$trained_version/pin with the token answered $status $(cat "$work/admin.json")"
    wait_for "GET /models says $trained_version pinned" 30 listing_says "$trained_version" "$trained_version"
    status="$(admin POST "/models/$default_version/pin" "$ADMIN_TOKEN")"
    [[ "$status" == 200 && "$(admin_field pinned)" == "$default_version" && "$(admin_field served)" == "$default_version" \
        && "$(admin_field pin.previous)" == "$trained_version" ]] \
        || fail "POST /models/$default_version/pin (a rollback) answered $status $(cat "$work/admin.json")"
    wait_for "every worker serves the pinned $default_version (rolled back)" 30 serves_only "$default_version"
    wait_for "GET /models says $default_version served and pinned" 30 listing_says "$default_version" "$default_version"
    wait_for "the page shows the pin" 60 page_pin_state pinned
    [[ "$(compose exec -T inference cat /app/serving/pin/pinned.json)" == *"\"model_version\": \"$default_version\""* ]] \
        || fail "the serving volume's pin record does not name $default_version"
    status="$(admin DELETE /models/pin "$ADMIN_TOKEN")"
    [[ "$status" == 200 && "$(admin_field pinned)" == null && "$(admin_field was)" == "$default_version" ]] \
        || fail "DELETE /models/pin answered $status $(cat "$work/admin.json")"
    wait_for "every worker serves the latest $trained_version again (unpinned)" 30 serves_only "$trained_version"
    wait_for "GET /models says nothing pinned" 30 listing_says "$trained_version" null
    wait_for "the page shows it follows the latest model" 60 page_pin_state following
    # ADMIN_ALLOW matters: an edge without it refuses management requests, with the right token too.
    ADMIN_ALLOW= compose up -d --no-deps edge
    wait_for "edge healthy without ADMIN_ALLOW" 60 healthy edge
    wait_for "API through the edge" 60 curl -fsS "$api/ready"
    status="$(admin POST "/models/$default_version/pin" "$ADMIN_TOKEN")"
    [[ "$status" == 403 && "$(admin_field error)" == management_not_allowed_here ]] \
        || fail "with ADMIN_ALLOW empty the edge passed a pin: $status $(cat "$work/admin.json")"
    curl -fsS --max-time 10 -o /dev/null "$api/models" || fail "with ADMIN_ALLOW empty GET /models is refused"
    wait_for "still nothing pinned" 10 listing_says "$trained_version" null
    say "ok: with ADMIN_ALLOW empty the edge refuses a pin (403 management_not_allowed_here), reading stays open"
    compose up -d --no-deps edge  # ADMIN_ALLOW=gateway again
    wait_for "edge healthy with ADMIN_ALLOW=gateway" 60 healthy edge
    wait_for "API through the edge again" 60 curl -fsS "$api/ready"
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
check_pin
check_redis_outage
check_api_restart_behind_edge
check_inference_crash
check_down_up_keeps_model
check_down_removes_everything
say "PASS (build ${timings[build]}s, up to page ${timings[up_to_page]}s, total ${SECONDS}s)"
