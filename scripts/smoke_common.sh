# Sourced by compose_smoke.sh and scale_smoke.sh: their messages, waiting, the engine, and the project's containers.
# The sourcing script sets $smoke (the name its messages start with), $project (the compose project), $repo,
# $engine_dir and the compose files in $files.

say() { echo "$smoke: $*"; }
fail() { echo "$smoke: FAIL: $*" >&2; exit 1; }

wait_for() {  # DESCRIPTION SECONDS COMMAND...: run COMMAND every second until it succeeds
    local what="$1" limit="$2" deadline=$((SECONDS + $2))
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || fail "$what: not within ${limit}s"
        sleep 1
    done
    say "ok: $what"
}

settle() {  # SECONDS COMMAND...: run COMMAND every half second until it succeeds or SECONDS pass (never fails:
    local deadline=$((SECONDS + $1))  # the check run after it decides, with its own message)
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 0
        sleep 0.5
    done
}

# The engine. ENGINE=docker: Docker's own engine: the one DOCKER_HOST (or Docker's default socket) names when it
# answers and is not Podman's, else dockerd started by scripts/docker_engine.sh (machines with a Docker client but
# no daemon). ENGINE=podman: Podman's Docker API from ../shared/container-engine/setup.sh. Unset: whatever answers,
# Podman's API where nothing does. Sets compose_cmd and podman_api, and adds the build override
# docker_engine.sh names (host network for builds) to $files.
engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
is_podman() { docker version --format '{{range .Server.Components}}{{.Name}};{{end}}' 2>/dev/null | grep -q Podman; }
start_engine() {
    case "${ENGINE:-}" in
        docker)
            if ! engine_answers || is_podman; then
                bash "$repo/scripts/docker_engine.sh" start
                eval "$(bash "$repo/scripts/docker_engine.sh" env)"
            fi ;;
        podman)
            export DOCKER_HOST=unix:///run/podman/podman.sock
            engine_answers || bash "$engine_dir/setup.sh" ;;
        "")
            if ! engine_answers; then
                [[ -f "$engine_dir/setup.sh" ]] || fail "no container engine answers (DOCKER_HOST=${DOCKER_HOST:-unset})"
                export DOCKER_HOST="${DOCKER_HOST:-unix:///run/podman/podman.sock}"
                engine_answers || bash "$engine_dir/setup.sh"
            fi ;;
        *) fail "ENGINE=$ENGINE: docker or podman" ;;
    esac
    engine_answers || fail "no container engine answers at ${DOCKER_HOST:-the default socket}"
    if docker compose version >/dev/null 2>&1; then compose_cmd=(docker compose); else compose_cmd=(docker-compose); fi
    podman_api=0
    is_podman && podman_api=1
    if ((!podman_api)) && [[ -n "${SMOKE_COMPOSE_OVERRIDE:-}" ]]; then
        files+=(-f "$SMOKE_COMPOSE_OVERRIDE")
    fi
    # The page finds the API and Redis by service name. Podman's CNI networks resolve names only with the dnsname
    # plugin (.ci/run installs it; ../shared/container-engine/setup.sh does not): say so instead of failing later.
    if ((podman_api)) && [[ "$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null)" == cni ]] \
        && ! [[ -x /usr/lib/cni/dnsname || -x /usr/libexec/cni/dnsname ]]; then
        fail "Podman's CNI networks here give containers no DNS (service names do not resolve): install the" \
             "dnsname plugin (Debian: golang-github-containernetworking-plugin-dnsname)"
    fi
    say "engine: $(docker version --format '{{.Server.Version}}') (podman API: $podman_api)," \
        "compose: ${compose_cmd[*]} $("${compose_cmd[@]}" version --short 2>/dev/null || true)"
}

container() {  # SERVICE: the id(s) of the project's container(s) of that service, running or not
    docker ps -aq --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=$1"
}
