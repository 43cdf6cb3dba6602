#!/usr/bin/env bash
# Smoke test of the Docker deployment, for a machine with Docker Engine + Compose v2 (CI, a laptop):
#
#   bash scripts/compose_smoke.sh                  CPU images
#   GPU=1 bash scripts/compose_smoke.sh            with the NVIDIA overlay
#
# Builds the images, starts the stack under its own project name and ports (volumes deleted at the end), checks
# that the page and the API answer on the default model, that a short training run publishes a model the API then
# serves, and that starting the trainer again does not retrain. Needs internet for the builds and the data set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-fmnist-smoke}"
export FRONTEND_PORT="${FRONTEND_PORT:-15000}" INFERENCE_PORT="${INFERENCE_PORT:-18000}"
export EPOCHS="${EPOCHS:-1}" TRAIN_LIMIT="${TRAIN_LIMIT:-2000}" RETRAIN=0
files=(-f docker-compose.yml)
[[ "${GPU:-0}" == 1 ]] && files+=(-f docker-compose.gpu.yml)
compose() { docker compose "${files[@]}" "$@"; }
api="http://127.0.0.1:$INFERENCE_PORT" page="http://127.0.0.1:$FRONTEND_PORT"

cleanup() { compose down -v --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT

wait_for() {  # DESCRIPTION SECONDS COMMAND...
    local what="$1" deadline=$((SECONDS + $2))
    shift 2
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "FAIL: $what" >&2
            compose ps >&2
            compose logs --tail 50 >&2
            exit 1
        fi
        sleep 2
    done
    echo "ok: $what"
}

model_source() { curl -fsS "$api/metrics" | python3 -c 'import json, sys; print(json.load(sys.stdin)["model"]["source"])'; }
serves_trained_model() { [[ "$(model_source)" == artifacts ]]; }

compose build
compose up -d redis inference frontend
wait_for "API ready on the default model" 120 curl -fsS "$api/ready"
[[ "$(model_source)" == default ]] || { echo "FAIL: not serving the default model" >&2; exit 1; }
echo "ok: serving the default model"
wait_for "page answers" 60 curl -fsS "$page/health"
curl -fsS "$page/" >"${TMPDIR:-/tmp}/fmnist-smoke-page.html"
grep -qi "<html" "${TMPDIR:-/tmp}/fmnist-smoke-page.html" || { echo "FAIL: the page is not HTML" >&2; exit 1; }
echo "ok: page renders"

# Attached until the trainer exits; its exit code becomes ours (set -e stops the script when training fails).
compose up --no-deps --exit-code-from trainer trainer
echo "ok: trainer exited 0"
wait_for "API switched to the trained model" 60 serves_trained_model

started=$SECONDS
second="$(compose up --no-deps --exit-code-from trainer trainer 2>&1)"
echo "$second"
grep -q "already finished" <<<"$second" || { echo "FAIL: the second trainer start trained again" >&2; exit 1; }
echo "ok: no retraining (second trainer start: $((SECONDS - started))s)"
echo "PASS"
