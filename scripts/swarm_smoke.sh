#!/usr/bin/env bash
# `make swarm-smoke`: the stack as a Docker Swarm stack (docker-compose.swarm.yml, scripts/swarm_stack.py) on a
# private swarm of SWARM_NODES dockerds (default 2: a manager and a worker, scripts/swarm_nodes.sh), under load.
# Runs after the other smokes in CI and reuses their images (IMAGE_TAG=smoke; built when missing).
#
# 1. nodes    a swarm in network namespaces of its own; the images loaded into each node from the engine that
#             built them (no registry here); on each node two derived inference images: :smoke-v2 (a new release:
#             the same image with another label) and :smoke-broken (a release that listens on the wrong port, so
#             its health check on /ready never passes).
# 2. deploy   the written stack file, with three secrets (admin_token, api_keys, secret_key) from files; with
#             two nodes the artifacts and serving volumes are one shared folder through the local driver's options
#             (type=none,o=bind: the stand-in for NFS, which this kernel lacks), the data set bound read-only.
#             Convergence: every service at its replica count with healthy tasks, the API and the page answering
#             through the edge (the edge of node 1, at 172.31.0.11). The secrets: in no container's or service's
#             environment, read by the services' settings in the containers, readable by the app user only.
# 3. spread   under load (scripts/scale_load.py: 12 clients POSTing /predict to the edge), every inference task
#             answers, on both nodes; the trainer completes and every task serves its model (shared storage).
# 4. rollout  `docker service update --image :smoke-v2` under load: 0 failed requests, and after the update
#             completed every answer comes from the new tasks.
# 5. kill     one task's container is killed (SIGKILL) under load: only requests in flight on it fail (counted),
#             and Swarm starts a replacement.
# 6. rollback `docker service update --image :smoke-broken` under load: Swarm finds the new task unhealthy and
#             rolls the service back by itself (update_config.failure_action: rollback); 0 failed requests, every
#             answer from the tasks that were there before, the spec back on :smoke-v2.
# 7. rm       `docker stack rm` leaves no container, network, config or secret of the stack on any node.
# The swarm is removed at the end, on failure too (SWARM_KEEP=1 keeps it for a look). Figures: one JSON line per
# check in $SWARM_REPORT (default swarm-smoke.json in a temporary folder, printed at the end).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"

export IMAGE_TAG="${IMAGE_TAG:-smoke}" EPOCHS="${EPOCHS:-1}" TRAIN_LIMIT="${TRAIN_LIMIT:-2000}" RETRAIN=0
export FRONTEND_PORT="${FRONTEND_PORT:-15200}" INFERENCE_PORT="${INFERENCE_PORT:-18200}"
export SWARM_NODES="${SWARM_NODES:-2}"
# The edge's per-client limits lifted for the load below (12 clients that all come from this machine's address).
export EDGE_RATE_LIMIT=100000r/s EDGE_RATE_BURST=100000 EDGE_CONN_LIMIT=10000
stack="${SWARM_STACK:-fmsmoke}" clients="${CLIENTS:-12}"
engine_dir="${CONTAINER_ENGINE_DIR:-$repo/../shared/container-engine}"
python="${PYTHON:-$repo/.venv/bin/python}"
work="$(mktemp -d)"
report_file="${SWARM_REPORT:-$work/swarm-smoke.json}"
nodes_dir="${SWARM_NODES_DIR:-/tmp/fmnist-swarm}"
export SWARM_NODES_DIR="$nodes_dir"
edge_address=172.31.0.11
api="http://$edge_address:$INFERENCE_PORT" page="http://$edge_address:$FRONTEND_PORT"
source_host="${DOCKER_HOST:-}"  # the engine that built the images (compose-smoke's), if any
load_pid="" nodes_started=0

smoke=swarm-smoke
# shellcheck source=scripts/smoke_common.sh
source "$repo/scripts/smoke_common.sh"  # say, fail, wait_for
now() { date +%s.%N; }
on_node() { local n="$1"; shift; DOCKER_HOST="unix://$nodes_dir/n$n/docker.sock" docker "$@"; }
mgr() { on_node 1 "$@"; }
figure() { printf '{"check": "%s", "figures": %s}\n' "$1" "$2" >>"$report_file"; }

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [[ -n "$load_pid" ]] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
    if ((status != 0)) && ((nodes_started)); then
        echo "---- state at the failure ----" >&2
        mgr service ls >&2 || true
        mgr service ps --no-trunc "${stack}_inference" 2>&1 | head -20 >&2 || true
        for service in inference edge frontend trainer; do
            mgr service logs --tail 15 "${stack}_$service" >&2 2>&1 || true
        done
    fi
    if ((nodes_started)) && [[ "${SWARM_KEEP:-0}" != 1 ]]; then
        bash scripts/swarm_nodes.sh down || true
    fi
    [[ -f "$report_file" ]] && { say "figures:"; cat "$report_file"; }
    [[ -z "${SWARM_REPORT:-}" ]] && rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- load, and the checks on what it recorded (scripts/scale_load.py) -----------------------------------------------
start_load() {  # LABEL [PAUSE]
    load_out="$work/load-$1.jsonl"
    "$python" scripts/scale_load.py run "$api" "$load_out" --clients "$clients" --pause "${2:-0}" &
    load_pid=$!
}
stop_load() { kill "$load_pid"; wait "$load_pid" || true; load_pid=""; }
check() {  # LABEL SUBCOMMAND ARGS...
    local label="$1" output status=0
    shift
    output="$("$python" scripts/scale_load.py "$@" "$load_out")" || status=$?
    say "${output%%$'\n'*}"
    figure "$label" "$(tail -1 <<<"$output")"
    return "$status"
}

# --- the stack's tasks ------------------------------------------------------------------------------------------------
# One line per running task of a service: its container's 12-character id (= its host name = X-Served-By), its
# node (1 or 2), its image.
service_tasks() {
    local task
    for task in $(mgr service ps -q --filter desired-state=running "${stack}_$1"); do
        mgr inspect --type task -f '{{.Status.State}} {{.Status.ContainerStatus.ContainerID}} {{.NodeID}} {{.Spec.ContainerSpec.Image}}' "$task"
    done | awk -v n1="$(mgr info -f '{{.Swarm.NodeID}}')" '$1 == "running" {
        print substr($2, 1, 12), ($3 == n1 ? 1 : 2), $4 }'
}
inference_tasks() { service_tasks inference; }
task_ids() { inference_tasks | awk '{print $1}' | sort | paste -sd, -; }
replicas_ready() {  # SERVICE: running tasks == desired (`docker service ls` REPLICAS "n/n"; health gates running)
    local replicas
    replicas="$(mgr service ls --filter "name=${stack}_$1" --format '{{.Name}} {{.Replicas}}' | awk -v s="${stack}_$1" '$1 == s {print $2}')"
    [[ "$replicas" =~ ^([0-9]+)/([0-9]+) && "${BASH_REMATCH[1]}" == "${BASH_REMATCH[2]}" && "${BASH_REMATCH[1]}" != 0 ]]
}
converged() {
    local service
    for service in redis inference frontend edge; do replicas_ready "$service" || return 1; done
    [[ "$(inference_tasks | wc -l)" == "${INFERENCE_REPLICAS:-3}" ]]
}
update_state() { mgr service inspect -f '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "${stack}_inference"; }
update_message() { mgr service inspect -f '{{if .UpdateStatus}}{{.UpdateStatus.Message}}{{end}}' "${stack}_inference"; }
update_settled() { local state; state="$(update_state)"; [[ "$state" == "$1" || "$state" == *paused ]]; }
trainer_done() {  # completed, or failed its first run and the 3 retries
    local states
    states="$(mgr service ps --format '{{.CurrentState}}' "${stack}_trainer")"
    grep -q '^Complete' <<<"$states" || (($(grep -c '^Failed' <<<"$states") >= 4))
}
trainer_completed() { mgr service ps --format '{{.CurrentState}}' "${stack}_trainer" | grep -q '^Complete'; }

# --- 1. nodes --------------------------------------------------------------------------------------------------------
save_images() {  # IMAGE...: a docker-archive of the images, from the engine that has them
    if [[ -n "$source_host" ]] && DOCKER_HOST="$source_host" docker image inspect "$@" >/dev/null 2>&1; then
        DOCKER_HOST="$source_host" docker save "$@"
    elif command -v podman >/dev/null && podman image exists "$1" 2>/dev/null; then
        podman save -m --format docker-archive "$@"
    else
        fail "no engine has $* (DOCKER_HOST=${source_host:-unset}, podman: $(command -v podman || echo none))"
    fi
}
build_missing() {  # the three images, built like scale_smoke.sh does when no smoke built them yet
    local service missing=()
    for service in trainer inference frontend; do
        if ! { [[ -n "$source_host" ]] && DOCKER_HOST="$source_host" docker image inspect "fashion-mnist-$service:$IMAGE_TAG"; } \
            && ! podman image exists "fashion-mnist-$service:$IMAGE_TAG" 2>/dev/null; then
            missing+=("$service")
        fi
    done >/dev/null 2>&1
    ((${#missing[@]})) || return 0
    say "building ${missing[*]} (no smoke built them yet)"
    if [[ -n "$source_host" ]] && DOCKER_HOST="$source_host" docker version >/dev/null 2>&1; then
        DOCKER_HOST="$source_host" docker compose -f docker-compose.yml build "${missing[@]}"
    else
        [[ -f "$engine_dir/setup.sh" ]] || fail "no engine to build the images with"
        bash "$engine_dir/setup.sh"
        DOCKER_HOST=unix:///run/podman/podman.sock bash "$engine_dir/build.sh" -f docker-compose.yml "${missing[@]}"
    fi
}
load_images() {  # N IMAGE...: load what node N lacks; a Podman archive names local images localhost/<name>
    local n="$1" image missing=()
    shift
    for image in "$@"; do on_node "$n" image inspect "$image" >/dev/null 2>&1 || missing+=("$image"); done
    ((${#missing[@]})) || return 0
    save_images "${missing[@]}" | on_node "$n" load -q >/dev/null
    for image in "${missing[@]}"; do
        on_node "$n" image inspect "$image" >/dev/null 2>&1 || on_node "$n" tag "localhost/$image" "$image"
    done
}
build_on() {  # N TAG DOCKERFILE: a Dockerfile without context, built on node N (the classic builder: no buildx here)
    DOCKER_BUILDKIT=0 on_node "$1" build -q -t "$2" - <<<"$3" >"$work/build.log" 2>&1 \
        || { cat "$work/build.log" >&2; fail "building $2 on node $1"; }
}
derived_images() {  # N: the new release and the broken one, built on node N from the loaded image
    local n="$1" base="fashion-mnist-inference:$IMAGE_TAG"
    build_on "$n" "$base-v2" "FROM $base
LABEL org.opencontainers.image.version=$IMAGE_TAG-v2"
    # A release that serves on 8001 while its health check (and the edge) expect 8000: it runs, never turns healthy.
    build_on "$n" "$base-broken" "FROM $base
LABEL org.opencontainers.image.version=$IMAGE_TAG-broken
CMD [\"sh\", \"-c\", \"PORT=8001 exec python -m services.inference\"]"
}

start_nodes() {
    local started=$SECONDS n
    nodes_started=1
    bash scripts/swarm_nodes.sh up "$SWARM_NODES" >/dev/null  # reuses the nodes a SWARM_KEEP=1 run left, and their images
    if [[ -n "$(mgr stack ls --format '{{.Name}}' | grep -x "$stack")" ]]; then
        mgr stack rm "$stack" >/dev/null
        wait_for "the stack an earlier run left is removed" 120 nothing_left
    fi
    say "ok: a swarm of $SWARM_NODES node(s): $(mgr node ls --format '{{.Hostname}} ({{.ManagerStatus}})' | tr '\n' ' ')"
    build_missing
    local images=("fashion-mnist-inference:$IMAGE_TAG" "fashion-mnist-frontend:$IMAGE_TAG" "${REDIS_IMAGE:-redis:7-alpine}"
                  "${NGINX_IMAGE:-nginx:alpine}")
    load_images 1 "${images[@]}" "fashion-mnist-trainer:$IMAGE_TAG"
    derived_images 1
    for ((n = 2; n <= SWARM_NODES; n++)); do
        load_images "$n" "${images[@]}"  # the trainer runs on the manager (the smoke's overlay below)
        derived_images "$n"
    done
    figure nodes "{\"nodes\": $SWARM_NODES, \"seconds\": $((SECONDS - started))}"
    say "ok: images on every node in $((SECONDS - started))s"
}

# --- 2. deploy -------------------------------------------------------------------------------------------------------
write_stack() {
    local data_dir="${FASHION_MNIST_DIR:-$repo/../shared/data}" extra=(-f "$work/smoke.yml")
    mkdir -p "$work/secrets"
    for secret in admin_token secret_key inference_api_key; do
        python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$work/secrets/$secret"
    done
    # Two API keys: the page's own (inference_api_key) and the one this smoke's curl and load clients send.
    LOAD_API_KEY="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
    export LOAD_API_KEY
    echo "$(cat "$work/secrets/inference_api_key"),$LOAD_API_KEY" >"$work/secrets/api_keys"
    # What this smoke adds: the trainer on the manager (the only node with its image) with a short validation split,
    # started only once the rest converged (`check_spread_and_training`), so that it publishes under load and does
    # not slow the first start on a small machine.
    cat >"$work/smoke.yml" <<'YAML'
services:
  trainer:
    environment:
      VAL_SIZE: "1000"
    deploy:
      replicas: 0
      placement:
        constraints: ["node.role == manager"]
YAML
    if [[ -f "$data_dir/FashionMNIST/raw/t10k-labels-idx1-ubyte" || -f "$data_dir/FashionMNIST/raw/t10k-labels-idx1-ubyte.gz" ]]; then
        export FASHION_MNIST_DIR="$(cd "$data_dir" && pwd)"
        extra+=(-f docker-compose.offline.yml)
    fi
    if ((SWARM_NODES > 1)); then  # one folder both nodes mount: what NFS is on several hosts
        mkdir -p "$nodes_dir/shared/artifacts" "$nodes_dir/shared/serving"
        chown 10001:10001 "$nodes_dir/shared/artifacts" "$nodes_dir/shared/serving"
        export ARTIFACTS_VOLUME_TYPE=none ARTIFACTS_VOLUME_OPTIONS=bind ARTIFACTS_VOLUME_DEVICE="$nodes_dir/shared/artifacts"
        export SERVING_VOLUME_TYPE=none SERVING_VOLUME_OPTIONS=bind SERVING_VOLUME_DEVICE="$nodes_dir/shared/serving"
    fi
    "$python" scripts/swarm_stack.py --out "$work/stack.yml" --secrets-dir "$work/secrets" "${extra[@]}" >/dev/null
}

deploy() {
    local started=$SECONDS
    write_stack
    mgr stack deploy --resolve-image never -c "$work/stack.yml" "$stack" >/dev/null
    wait_for "every service converged (inference ${INFERENCE_REPLICAS:-3}/${INFERENCE_REPLICAS:-3}, healthy)" 300 converged
    wait_for "API ready through the edge" 60 curl -fsS "$api/ready"
    wait_for "page answers through the edge" 60 curl -fsS -o /dev/null "$page/"
    converged_s=$((SECONDS - started))
    say "ok: deployed and converged in ${converged_s}s: $(inference_tasks | awk '{printf "%s on node %s; ", $1, $2}')"
    figure converge "{\"seconds\": $converged_s}"
}

check_page_and_predict() {
    local auth=(-H "Authorization: Bearer $LOAD_API_KEY")
    curl -fsS "${auth[@]}" "$api/samples/0" | python3 -c '
import base64, json, sys
sys.stdout.buffer.write(base64.b64decode(json.load(sys.stdin)["image_png_base64"]))' >"$work/sample.png"
    curl -fsS "${auth[@]}" -F "file=@$work/sample.png" "$api/predict" >"$work/prediction.json"
    python3 - "$work/prediction.json" <<'PY' || fail "/predict answered $(cat "$work/prediction.json")"
import json, sys
answer = json.load(open(sys.argv[1]))
assert answer["label"] and len(answer["top_k"]) == 3, answer
print(f"swarm-smoke: ok: curl /predict through the edge says {answer['label']} ({answer['confidence']:.2f})")
PY
    wait_for "the page sees the API through the edge" 60 \
        bash -c "curl -fsS '$page/health' | python3 -c 'import json, sys; sys.exit(not json.load(sys.stdin)[\"inference\"][\"ready\"])'"
}

secret_digests() {  # SERVICE SETTINGS_MODULE NAME...: in one of the service's containers, what its settings read
    local n cid
    read -r cid n _ < <(service_tasks "$1" | head -1)
    on_node "$n" exec -i "$cid" python - "$2" "${@:3}" <<'PY'
import hashlib, importlib, os, sys
settings = importlib.import_module(sys.argv[1]).Settings()
for name in sys.argv[2:]:
    path = os.environ[name.upper() + "_FILE"]
    mode, owner = oct(os.stat(path).st_mode)[-3:], os.stat(path).st_uid
    assert mode == "400" and owner == os.getuid(), f"{path}: mode {mode}, owner {owner}, this user {os.getuid()}"
    print(name, hashlib.sha256(getattr(settings, name).get_secret_value().encode()).hexdigest())
PY
}

check_secrets() {  # never in an environment; read by the settings in the containers; for the app user only
    local n cid env service name value
    for service in inference frontend; do
        env="$(mgr service inspect -f '{{json .Spec.TaskTemplate.ContainerSpec.Env}}' "${stack}_$service")"
        for name in admin_token api_keys secret_key inference_api_key; do
            [[ "$env" != *"$(cat "$work/secrets/$name")"* ]] || fail "$name is in the $service service's spec"
        done
    done
    for ((n = 1; n <= SWARM_NODES; n++)); do
        for cid in $(on_node "$n" ps -q --filter "label=com.docker.stack.namespace=$stack"); do
            env="$(on_node "$n" inspect -f '{{json .Config.Env}}' "$cid")"
            for name in admin_token api_keys secret_key inference_api_key; do
                [[ "$env" != *"$(cat "$work/secrets/$name")"* ]] || fail "$name is in container $cid's environment"
            done
        done
    done
    { secret_digests inference services.inference.app.config admin_token api_keys
      secret_digests frontend services.frontend.app.config secret_key inference_api_key; } >"$work/seen" \
        || fail "the secret files are not what the services' settings read: $(cat "$work/seen")"
    for name in admin_token api_keys secret_key inference_api_key; do
        value="$(tr -d '\n' <"$work/secrets/$name" | sha256sum | cut -d' ' -f1)"
        grep -qx "$name $value" "$work/seen" || fail "the settings do not read $name from its secret: $(cat "$work/seen")"
    done
    say "ok: secrets in no environment (services, and containers on every node); the settings read admin_token," \
        "api_keys, secret_key and inference_api_key from /run/secrets (mode 400, owned by the app user)"
}

# --- 3. spread, training ---------------------------------------------------------------------------------------------
check_spread_and_training() {
    local nodes_used published new_version cid n
    nodes_used="$(inference_tasks | awk '{print $2}' | sort -u | wc -l)"
    ((nodes_used == SWARM_NODES || SWARM_NODES == 1)) \
        || fail "the inference tasks run on $nodes_used of $SWARM_NODES nodes: $(inference_tasks | tr '\n' ';')"
    start_load spread 0.1  # lighter: the trainer trains beside the replicas
    mgr service scale --detach "${stack}_trainer=1" >/dev/null
    wait_for "the trainer finished" 900 trainer_done
    trainer_completed || fail "the trainer failed: $(mgr service ps --no-trunc "${stack}_trainer" | head -5)"
    read -r n cid _ < <(inference_tasks | awk '{print $2, $1}')
    read -r new_version published < <(on_node "$n" exec "$cid" python -c '
import json, os
path = "/app/artifacts/latest.json"
print(json.load(open(path))["model_version"], os.stat(path).st_mtime)')
    wait_for "every task serves the trained model $new_version" 60 bash -c \
        "for i in \$(seq 12); do curl -fsS --max-time 10 '$api/ready'; echo; done | grep -c '\"$new_version\"' | grep -qx 12"
    sleep 2
    stop_load
    check spread served --by "$(task_ids)" || fail "requests failed or went elsewhere while the model was published"
    python3 - "$load_out" "$(task_ids)" <<'PY' || fail "not every task answered"
import json, sys
seen = {json.loads(line)["served_by"] for line in open(sys.argv[1])}
missing = set(sys.argv[2].split(",")) - seen
sys.exit(f"tasks that never answered: {missing}" if missing else 0)
PY
    say "ok: the trainer published $new_version to the shared artifacts; tasks on $nodes_used node(s) serve it"
    trained_version="$new_version"
}

# --- 4. rolling update -----------------------------------------------------------------------------------------------
check_rollout() {
    local started finished old new
    old="$(task_ids)"
    start_load rollout
    sleep 3
    started="$(now)"
    mgr service update --detach --image "fashion-mnist-inference:$IMAGE_TAG-v2" "${stack}_inference" >/dev/null
    wait_for "rolling update to :$IMAGE_TAG-v2 settled" 600 update_settled completed
    finished="$(now)"
    [[ "$(update_state)" == completed ]] || fail "the rolling update ended $(update_state): $(update_message)"
    sleep 5
    stop_load
    new="$(task_ids)"
    rollout_s="$(python3 -c "print(round($finished - $started, 1))")"
    [[ "$(inference_tasks | awk -v img="fashion-mnist-inference:$IMAGE_TAG-v2" '$3 == img' | wc -l)" == "${INFERENCE_REPLICAS:-3}" ]] \
        || fail "not every task runs :$IMAGE_TAG-v2: $(inference_tasks | tr '\n' ';')"
    check rollout served --by "$new" --after "$finished" || fail "the rolling update failed requests"
    say "ok: rolled out in ${rollout_s}s (update call to completed, including the 20 s monitor window); tasks $old -> $new"
    figure rollout_time "{\"seconds\": $rollout_s}"
}

# --- 5. kill a task --------------------------------------------------------------------------------------------------
check_kill() {
    local victim n killed_from killed_to started
    read -r victim n _ < <(inference_tasks | tail -1)
    start_load kill
    sleep 3
    killed_from="$(now)"
    started=$SECONDS
    on_node "$n" kill "$victim" >/dev/null
    killed_to="$(now)"
    sleep 8
    stop_load
    check kill kill --replica "$victim" --from "$killed_from" --to "$killed_to" --clients "$clients" \
        || fail "killing task $victim failed more than the requests in flight on it"
    wait_for "Swarm replaced the killed task" 180 converged
    ! inference_tasks | grep -q "^$victim " || fail "the killed task still counts as running"
    say "ok: task $victim (node $n) killed; replaced, healthy, $((SECONDS - started))s after the kill"
    figure kill_replaced "{\"seconds\": $((SECONDS - started))}"
}

# --- 6. broken release, rolled back by Swarm -------------------------------------------------------------------------
check_rollback() {
    local started finished before image
    before="$(task_ids)"
    start_load rollback
    sleep 3
    started="$(now)"
    mgr service update --detach --image "fashion-mnist-inference:$IMAGE_TAG-broken" "${stack}_inference" >/dev/null
    wait_for "Swarm rolled the broken release back by itself" 600 update_settled rollback_completed
    finished="$(now)"
    [[ "$(update_state)" == rollback_completed ]] || fail "the update ended $(update_state): $(update_message)"
    sleep 3
    stop_load
    image="$(mgr service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "${stack}_inference")"
    [[ "$image" == "fashion-mnist-inference:$IMAGE_TAG-v2" ]] || fail "after the rollback the service runs $image"
    [[ "$(task_ids)" == "$before" ]] || fail "the tasks changed: $before -> $(task_ids)"
    check rollback served --by "$before" || fail "requests failed, or the broken release answered"
    rollback_s="$(python3 -c "print(round($finished - $started, 1))")"
    say "ok: the broken release never turned healthy; Swarm rolled back in ${rollback_s}s" \
        "(\"$(update_message)\"); the old tasks served throughout"
    figure rollback_time "{\"seconds\": $rollback_s}"
}

# --- 7. stack rm -----------------------------------------------------------------------------------------------------
leftovers() {
    local n
    for ((n = 1; n <= SWARM_NODES; n++)); do
        on_node "$n" ps -aq --filter "label=com.docker.stack.namespace=$stack"
        on_node "$n" network ls -q --filter "label=com.docker.stack.namespace=$stack"
    done
    mgr service ls -q --filter "label=com.docker.stack.namespace=$stack"
    mgr config ls -q --filter "label=com.docker.stack.namespace=$stack"
    mgr secret ls -q --filter "label=com.docker.stack.namespace=$stack"
}
nothing_left() { [[ -z "$(leftovers)" ]]; }
check_stack_rm() {
    local started=$SECONDS n volumes
    mgr stack rm "$stack" >/dev/null
    wait_for "docker stack rm left no service, container, network, config or secret on any node" 120 nothing_left
    volumes="$(for ((n = 1; n <= SWARM_NODES; n++)); do on_node "$n" volume ls -q --filter "label=com.docker.stack.namespace=$stack"; done | wc -l)"
    say "ok: stack removed in $((SECONDS - started))s; its $volumes named volume(s) stay, as Swarm keeps volumes"
    figure stack_rm "{\"seconds\": $((SECONDS - started)), \"volumes_kept\": $volumes}"
}

command -v dockerd >/dev/null || fail "Docker Engine (dockerd) is needed: apt-get install docker.io"
docker stack --help >/dev/null 2>&1 || fail "this docker CLI has no 'docker stack'"
start_nodes
deploy
check_page_and_predict
check_secrets
check_spread_and_training
check_rollout
check_kill
check_rollback
check_stack_rm
say "PASS ($SWARM_NODES nodes: converged ${converged_s}s, rollout ${rollout_s}s with 0 failed, rollback ${rollback_s}s, total ${SECONDS}s)"
