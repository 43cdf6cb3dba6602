#!/usr/bin/env bash
# A private Docker Swarm of N nodes on this one machine, for `make swarm-smoke`: each node is a dockerd in a network
# namespace of its own, so nothing it does (bridges, overlay networks, VXLAN, published ports, iptables if any)
# touches the host's network or another engine's. The nodes share one small LAN (a bridge in a namespace of its
# own) that the host also joins, so the host reaches every node's published ports at the node's address.
#
#   bash scripts/swarm_nodes.sh up [N]      N = 1 or 2 (default SWARM_NODES, 2): node 1 inits the swarm (manager),
#                                           node 2 joins as a worker; prints each node's DOCKER_HOST
#   bash scripts/swarm_nodes.sh down        stops every node's dockerd, deletes the namespaces and the state
#   bash scripts/swarm_nodes.sh host N      prints node N's DOCKER_HOST (unix socket: reachable from the host)
#
#   host (sw-fmnist, 172.31.0.1) --- [fmnist-lan: bridge] --- fmnist-n1 (172.31.0.11, manager)
#                                                          \-- fmnist-n2 (172.31.0.12, worker)
#
# Needs root, Debian's docker.io (dockerd 20.10) and a kernel with network namespaces, veth, bridges and VXLAN
# (overlay networks). No IPVS is needed: the stack uses dnsrr and host-mode ports (docs/swarm.md). Each dockerd
# runs in its own mount namespace with a sysfs of its namespace (and the host's cgroups), and with
# DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1: the nodes reach no registry, their images are loaded into them
# (swarm_smoke.sh). State: $SWARM_NODES_DIR (default /tmp/fmnist-swarm), a data root per node.
set -euo pipefail

state="${SWARM_NODES_DIR:-/tmp/fmnist-swarm}"
lan="${SWARM_LAN_PREFIX:-172.31.0}"       # the nodes' LAN: .1 the host, .11 node 1, .12 node 2
pool="${SWARM_ADDR_POOL:-10.231.0.0/16}"  # the swarm's overlay networks (inside the nodes' namespaces only)
local_pool="${SWARM_LOCAL_POOL:-172.31.64.0/18}"  # each node's docker_gwbridge (inside its namespace)
prefix=fmnist

say() { echo "swarm-nodes: $*" >&2; }
node_dir() { echo "$state/n$1"; }
node_host() { echo "unix://$(node_dir "$1")/docker.sock"; }
node_addr() { echo "$lan.$((10 + $1))"; }
node_docker() { local n="$1"; shift; DOCKER_HOST="$(node_host "$n")" docker "$@"; }

wait_until() {  # SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds
    local deadline=$((SECONDS + $1)) what="$2"
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { say "FAIL: $what: not within the deadline"; return 1; }
        sleep 0.5
    done
}

lan_up() {
    ip netns list | grep -qw "$prefix-lan" && return 0
    ip netns add "$prefix-lan"
    ip -n "$prefix-lan" link set lo up
    ip -n "$prefix-lan" link add br0 type bridge
    ip -n "$prefix-lan" link set br0 up
    ip link add "sw-$prefix" type veth peer name host netns "$prefix-lan"
    ip -n "$prefix-lan" link set host master br0 up
    ip addr add "$lan.1/24" dev "sw-$prefix"
    ip link set "sw-$prefix" up
}

node_up() {  # N: the node's namespace on the LAN, then its dockerd
    local n="$1" ns="$prefix-n$1" dir
    dir="$(node_dir "$n")"
    if ! ip netns list | grep -qw "$ns"; then
        ip netns add "$ns"
        ip link add "n$n" netns "$prefix-lan" type veth peer name eth0 netns "$ns"
        ip -n "$prefix-lan" link set "n$n" master br0 up
        ip -n "$ns" addr add "$(node_addr "$n")/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        # No default route: a lookup of a registry or a public name fails at once instead of timing out.
    fi
    mkdir -p "$dir/root" "$dir/exec" "$dir/cgroup"
    echo '{}' >"$dir/daemon.json"
    if DOCKER_HOST="$(node_host "$n")" docker version >/dev/null 2>&1; then
        return 0
    fi
    # In the node's network namespace, a mount namespace of its own (a sysfs that shows the node's interfaces, as
    # dockerd's bridge code reads /sys/class/net, with the host's cgroup hierarchies mounted back under it) and a
    # host name of its own (the node's name in `docker node ls`).
    DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 setsid nsenter --net="/run/netns/$ns" \
        unshare --mount --uts --propagation slave sh -euc '
            dir="$1" name="$2"; shift 2
            hostname "$name"
            mount --rbind /sys/fs/cgroup "$dir/cgroup"
            umount -l /sys
            mount -t sysfs sysfs /sys
            mount --rbind "$dir/cgroup" /sys/fs/cgroup
            umount -l "$dir/cgroup"
            exec dockerd "$@"' sh "$dir" "$prefix-n$n" \
        --config-file "$dir/daemon.json" --host "$(node_host "$n")" --data-root "$dir/root" \
        --exec-root "$dir/exec" --pidfile "$dir/docker.pid" --iptables=false --ip-masq=false --bridge=none \
        --cgroup-parent "$prefix-n$n" --storage-driver overlay2 --default-address-pool "base=$local_pool,size=24" \
        >"$dir/dockerd.log" 2>&1 </dev/null &
    wait_until 60 "node $n's dockerd answers" node_docker "$n" version \
        || { tail -20 "$dir/dockerd.log" >&2; return 1; }
}

swarm_up() {  # N nodes: node 1 inits, the others join as workers
    local count="$1" n token
    if [[ "$(node_docker 1 info --format '{{.Swarm.LocalNodeState}}')" != active ]]; then
        node_docker 1 swarm init --advertise-addr "$(node_addr 1)" --listen-addr "$(node_addr 1):2377" \
            --default-addr-pool "$pool" --task-history-limit 2 >/dev/null
    fi
    token="$(node_docker 1 swarm join-token -q worker)"
    for ((n = 2; n <= count; n++)); do
        [[ "$(node_docker "$n" info --format '{{.Swarm.LocalNodeState}}')" == active ]] && continue
        node_docker "$n" swarm join --token "$token" --advertise-addr "$(node_addr "$n")" \
            --listen-addr "$(node_addr "$n"):2377" "$(node_addr 1):2377" >/dev/null
    done
    wait_until 60 "$count node(s) ready in the swarm" bash -c \
        "[[ \$(DOCKER_HOST='$(node_host 1)' docker node ls --format '{{.Status}}' | grep -c Ready) == $count ]]"
}

node_down() {  # N: stop the node's containers and dockerd, kill what is left in its namespace, delete it
    local n="$1" ns="$prefix-n$1" dir pid
    dir="$(node_dir "$n")"
    if node_docker "$n" version >/dev/null 2>&1; then
        node_docker "$n" swarm leave --force >/dev/null 2>&1 || true
        node_docker "$n" ps -aq | xargs -r env DOCKER_HOST="$(node_host "$n")" docker rm -f >/dev/null 2>&1 || true
    fi
    if [[ -f "$dir/docker.pid" ]] && pid="$(cat "$dir/docker.pid")" && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        wait_until 60 "node $n's dockerd stops" bash -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
    fi
    if ip netns list | grep -qw "$ns"; then
        # Whatever still runs in the namespace was started by this node's dockerd (shims, docker-proxy).
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        wait_until 30 "the processes of $ns end" bash -c "[[ -z \$(ip netns pids $ns) ]]" || true
        ip netns del "$ns"
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    up)
        count="${2:-${SWARM_NODES:-2}}"
        command -v dockerd >/dev/null || { say "no dockerd: apt-get install docker.io"; exit 1; }
        lan_up
        for ((n = 1; n <= count; n++)); do node_up "$n"; done
        swarm_up "$count"
        for ((n = 1; n <= count; n++)); do echo "node $n: DOCKER_HOST=$(node_host "$n") address $(node_addr "$n")"; done
        ;;
    down)
        for dir in "$state"/n*; do
            [[ -d "$dir" ]] && node_down "${dir##*/n}"
        done
        for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-n[0-9]+$" || true); do
            ip netns del "$ns"
        done
        ip link del "sw-$prefix" 2>/dev/null || true
        ip netns list | grep -qw "$prefix-lan" && ip netns del "$prefix-lan"
        rmdir "$state" 2>/dev/null || true
        ;;
    host)
        node_host "${2:?node number}"
        ;;
    *)
        echo "usage: $0 up [N] | down | host N" >&2
        exit 2
        ;;
esac
