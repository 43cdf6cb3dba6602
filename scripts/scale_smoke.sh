#!/usr/bin/env bash
# `make scale-smoke`: the API as N=3 replicas behind the edge (docker-compose.scale.yml), on the container engine.
# Runs after `make compose-smoke` in CI and reuses its images (IMAGE_TAG=smoke; built here when missing).
#
# 1. up      redis, 3 inference replicas, the page and the edge (`--scale inference=3`); no trainer yet: the
#            replicas serve the shipped default model. Load: scripts/scale_load.py, 12 clients POSTing /predict
#            through the edge for the whole run, each answer recorded with its X-Served-By and X-Model-Version.
# 2. spread  requests reach all 3 replicas (counted by X-Served-By), none fails; the page answers through the edge.
# 3. swap    the trainer runs (EPOCHS=1, TRAIN_LIMIT=2000, VAL_SIZE=1000) and publishes under load (each client
#            pausing 100 ms between requests, so the trainer gets CPU on a small machine): every replica serves the
#            new version within 15 s of its publication (the manifest's mtime), no request fails, and the time two
#            versions answered side by side is reported.
# 4. pin     a rollback under load, through the edge (a token of this run's own, ADMIN_ALLOW=gateway): refused
#            without the token; the shipped default pinned, every replica answers with it (X-Model-Version) within
#            15 s of the pin and no request fails; unpinned, every replica serves the trained version again within
#            15 s (docs/models.md).
# 5. kill    one replica is killed (SIGKILL) under load: only requests in flight at that moment fail (how many is
#            reported; at most one per client), and the other replicas take all the traffic.
# The project is removed at the end, on failure too. Figures: one JSON line per check in $SCALE_REPORT (default
# scale-smoke.json in a temporary folder, printed at the end).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"

export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-fmnist-scale}"
export FRONTEND_PORT="${FRONTEND_PORT:-15100}" INFERENCE_PORT="${INFERENCE_PORT:-18100}" BIND_ADDRESS=127.0.0.1
export IMAGE_TAG="${IMAGE_TAG:-smoke}" EPOCHS="${EPOCHS:-1}" TRAIN_LIMIT="${TRAIN_LIMIT:-2000}" RETRAIN=0
# Every client of this script is one address to the edge (the host, through the engine's port forwarding): its
# per-client limits are lifted for the load; compose-smoke checks them. A network range of its own, beside a stack.
export EDGE_RATE_LIMIT=100000r/s EDGE_RATE_BURST=100000 EDGE_CONN_LIMIT=10000 STACK_SUBNET="${STACK_SUBNET:-10.89.215.0/24}"
# Management (section 4): a token of this run's own, whatever .env says; the edge passes management requests from
# this machine (the container network's gateway, where the published ports' connections come from).
ADMIN_TOKEN="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
export ADMIN_TOKEN ADMIN_ALLOW=gateway
replicas="${REPLICAS:-3}" clients="${CLIENTS:-12}"
engine_dir="${CONTAINER_ENGINE_DIR:-$repo/../shared/container-engine}"
python="${PYTHON:-$repo/.venv/bin/python}"
project="$COMPOSE_PROJECT_NAME"
api="http://127.0.0.1:$INFERENCE_PORT" page="http://127.0.0.1:$FRONTEND_PORT"
work="$(mktemp -d)"
report_file="${SCALE_REPORT:-$work/scale-smoke.json}"
files=(-f docker-compose.yml -f docker-compose.scale.yml)
load_pid=""

smoke=scale-smoke
# shellcheck source=scripts/smoke_common.sh
source "$repo/scripts/smoke_common.sh"  # say, fail, wait_for, container
compose() { "${compose_cmd[@]}" "${files[@]}" "$@"; }
now() { date +%s.%N; }

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [[ -n "$load_pid" ]] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
    if ((status != 0)) && [[ -n "${compose_cmd:-}" ]]; then
        echo "---- state at the failure ----" >&2
        compose ps >&2 || true
        compose logs --tail 30 >&2 || true
    fi
    [[ -n "${compose_cmd:-}" ]] && compose down -v --remove-orphans >/dev/null 2>&1
    [[ -f "$report_file" ]] && { say "figures:"; cat "$report_file"; }
    [[ -z "${SCALE_REPORT:-}" ]] && rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

replica_ids() {  # the running inference containers' ids (12 characters: their host names, so their X-Served-By)
    docker ps -q --no-trunc --filter "label=com.docker.compose.project=$project" \
        --filter "label=com.docker.compose.service=inference" --filter status=running | cut -c1-12
}
all_healthy() {
    local id count=0
    for id in $(replica_ids); do
        [[ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" == healthy ]] || return 1
        count=$((count + 1))
    done
    ((count == replicas))
}

# Load, and the checks on what it recorded (scripts/scale_load.py); $1 = a label for the report.
start_load() {  # LABEL [PAUSE]: PAUSE seconds between a client's requests (default none: as fast as answered)
    load_out="$work/load-$1.jsonl"
    "$python" scripts/scale_load.py run "$api" "$load_out" --clients "$clients" --pause "${2:-0}" &
    load_pid=$!
}
stop_load() { kill "$load_pid"; wait "$load_pid" || true; load_pid=""; }
check() {  # LABEL SUBCOMMAND ARGS...: run a check on the current load file, keep its figures
    local label="$1" output status=0
    shift
    output="$("$python" scripts/scale_load.py "$@" "$load_out")" || status=$?
    say "${output%%$'\n'*}"
    printf '{"check": "%s", "figures": %s}\n' "$label" "$(tail -1 <<<"$output")" >>"$report_file"
    return "$status"
}

# --- engine and images ---------------------------------------------------------------------------------------------
start_engine  # ENGINE=docker|podman, as in compose_smoke.sh (scripts/smoke_common.sh)
missing=()
for service in trainer inference frontend; do
    docker image inspect "fashion-mnist-$service:$IMAGE_TAG" >/dev/null 2>&1 || missing+=("$service")
done
if ((${#missing[@]})); then
    say "building ${missing[*]} (not built by make compose-smoke yet)"
    if ((podman_api)) && [[ -f "$engine_dir/build.sh" ]]
    then bash "$engine_dir/build.sh" -f docker-compose.yml "${missing[@]}"
    else compose build "${missing[@]}"
    fi
fi
data_dir="${FASHION_MNIST_DIR:-$repo/../shared/data}"
if [[ -f "$data_dir/FashionMNIST/raw/t10k-labels-idx1-ubyte" || -f "$data_dir/FashionMNIST/raw/t10k-labels-idx1-ubyte.gz" ]]
then
    export FASHION_MNIST_DIR="$(cd "$data_dir" && pwd)"
    files+=(-f docker-compose.offline.yml)
fi

# --- 1. up -----------------------------------------------------------------------------------------------------------
compose down -v --remove-orphans >/dev/null 2>&1 || true
started=$SECONDS
compose up -d --no-build --scale "inference=$replicas" redis inference frontend edge
wait_for "$replicas inference replicas healthy" 180 all_healthy
wait_for "API ready through the edge" 60 curl -fsS "$api/ready"
up_s=$((SECONDS - started))
default_version="$(curl -fsS "$api/ready" | python3 -c 'import json, sys; print(json.load(sys.stdin)["model_version"])')"
say "up in ${up_s}s: replicas $(replica_ids | tr '\n' ' ')serving $default_version"

# --- 2. spread -------------------------------------------------------------------------------------------------------
# Each wait below is on what the load recorded (with a deadline), never a fixed time: the check after it decides.
recorded() { "$python" scripts/scale_load.py "$@" "$load_out"; }
answered() { [[ -s "$load_out" ]] && (($(grep -c . "$load_out") >= $1)); }
start_load spread
settle 60 recorded spread --replicas "$replicas"  # until every replica answered
stop_load
check spread spread --replicas "$replicas" || fail "requests do not reach every replica"
wait_for "the page sees the API through the edge" 60 \
    bash -c "curl -fsS '$page/health' | python3 -c 'import json, sys; sys.exit(not json.load(sys.stdin)[\"inference\"][\"ready\"])'"

# --- 3. swap ---------------------------------------------------------------------------------------------------------
swap_started=$SECONDS
start_load swap "${SWAP_PAUSE:-0.1}"  # lighter: the trainer shares the CPU with the replicas and the load
wait_for "the load is running" 60 answered "$clients"
# A short run (1 epoch on 2000 images, 1000 validation images): what matters here is its publication.
compose run --rm -T --no-deps -e VAL_SIZE=1000 trainer >"$work/trainer.log" 2>&1 \
    || { tail -20 "$work/trainer.log" >&2; fail "the trainer failed"; }
trainer_s=$((SECONDS - swap_started))
say "ok: the trainer published in ${trainer_s}s"
first="$(replica_ids | head -1)"
read -r new_version published < <(docker exec "$first" python -c '
import json, os
path = "/app/artifacts/latest.json"
print(json.load(open(path))["model_version"], os.stat(path).st_mtime)')
[[ "$new_version" != "$default_version" ]] || fail "the trainer published nothing new"
# Until every replica answers the new version (the check then says whether each did within its 15 s).
settle 60 recorded swap --new "$new_version" --published "$published"
stop_load
check swap swap --new "$new_version" --published "$published" || fail "the swap to $new_version"

# --- 4. pin ----------------------------------------------------------------------------------------------------------
manage() {  # METHOD PATH [TOKEN]: a management request through the edge; prints the status, the answer in $work/manage.json
    local auth=()
    [[ -n "${3:-}" ]] && auth=(-H "Authorization: Bearer $3")
    curl -s -o "$work/manage.json" -w '%{http_code}' --max-time 30 -X "$1" ${auth[@]+"${auth[@]}"} "$api$2"
}
manage_error() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("error"))' "$work/manage.json"; }
listed_pin() { curl -fsS --max-time 10 "$api/models" | python3 -c 'import json, sys; print(json.load(sys.stdin)["pinned"])'; }
status="$(manage POST "/models/$default_version/pin")"
[[ "$status" == 403 && "$(manage_error)" == admin_token_required ]] \
    || fail "a pin without the token answered $status $(cat "$work/manage.json")"
say "ok: a pin without the token: 403 admin_token_required"
start_load pin
wait_for "the load is running" 60 answered "$clients"
pinned_at="$(now)"
status="$(manage POST "/models/$default_version/pin" "$ADMIN_TOKEN")"
[[ "$status" == 200 ]] || fail "pinning $default_version through the edge answered $status $(cat "$work/manage.json")"
say "pinned $default_version (a rollback from $new_version) through the edge"
# Until every replica answers the pinned version (the check then says whether each did within 15 s of the pin).
settle 60 recorded swap --new "$default_version" --published "$pinned_at"
stop_load
check pin swap --new "$default_version" --published "$pinned_at" \
    || fail "not every replica answered with the pinned $default_version in time"
[[ "$(listed_pin)" == "$default_version" ]] || fail "GET /models does not say $default_version is pinned"
start_load unpin
wait_for "the load is running" 60 answered "$clients"
unpinned_at="$(now)"
status="$(manage DELETE /models/pin "$ADMIN_TOKEN")"
[[ "$status" == 200 ]] || fail "unpinning through the edge answered $status $(cat "$work/manage.json")"
settle 60 recorded swap --new "$new_version" --published "$unpinned_at"
stop_load
check unpin swap --new "$new_version" --published "$unpinned_at" \
    || fail "not every replica went back to the latest $new_version in time after the unpin"
[[ "$(listed_pin)" == None ]] || fail "GET /models still names a pin after DELETE /models/pin"
say "ok: unpinned: every replica serves the latest $new_version again"

# --- 5. kill ---------------------------------------------------------------------------------------------------------
start_load kill
settle 60 recorded spread --replicas "$replicas"  # the load reaches every replica before one is killed
victim="$(replica_ids | tail -1)"
victim_address="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$victim")"
killed_from="$(now)"
docker kill "$victim" >/dev/null
killed_to="$(now)"
# Until the other replicas have taken the traffic (answers from them starting a second after the kill).
settle 60 recorded kill --replica "$victim" --from "$killed_from" --to "$killed_to" --clients "$clients"
stop_load
check kill kill --replica "$victim" --from "$killed_from" --to "$killed_to" --clients "$clients" \
    || fail "killing replica $victim failed more than the requests in flight on it"
# The edge's log names the replica(s) each request went to: every 502 must come from the killed one's address.
edge_log="$(docker logs "$(container edge)" 2>/dev/null | grep '"POST /predict' || true)"
failed_lines="$(grep -E '" 502 [0-9]+ ' <<<"$edge_log" || true)"
failed_total="$(grep -c . <<<"$failed_lines" || true)"
failed_victim="$(grep -cF "\"$victim_address:8000\"" <<<"$failed_lines" || true)"
((failed_total == failed_victim)) || fail "the edge answered 502 for requests on other replicas: $(grep -vF "$victim_address" <<<"$failed_lines" | head -3)"
say "ok: the edge's 502s: $failed_total, all from the killed replica ($victim_address); it sent" \
    "$(grep -c ':8000, ' <<<"$edge_log" || true) of $(grep -c . <<<"$edge_log" || true) /predict requests on to a second replica"
printf '{"check": "edge_log", "figures": {"502_total": %d, "502_from_killed": %d, "sent_on": %d, "requests": %d}}\n' \
    "$failed_total" "$failed_victim" "$(grep -c ':8000, ' <<<"$edge_log" || true)" "$(grep -c . <<<"$edge_log" || true)" \
    >>"$report_file"

compose down -v --remove-orphans >/dev/null 2>&1
say "PASS (up ${up_s}s, trainer ${trainer_s}s, total ${SECONDS}s)"
