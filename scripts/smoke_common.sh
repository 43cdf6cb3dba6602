# Sourced by compose_smoke.sh and scale_smoke.sh: their messages, waiting, and the project's containers.
# The sourcing script sets $smoke (the name its messages start with) and $project (the compose project).

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

container() {  # SERVICE: the id(s) of the project's container(s) of that service, running or not
    docker ps -aq --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=$1"
}
