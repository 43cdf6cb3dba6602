#!/bin/sh
# Start the edge (the compose `edge` service's command; POSIX sh: the official nginx:alpine image has no bash).
# nginx's resolver needs the container's DNS server by address, and that differs by engine (Docker's embedded
# DNS is 127.0.0.11, Podman's is its network's gateway): take the first nameserver of /etc/resolv.conf, then run
# nginx in the foreground with this directory's configuration. Everything it writes goes to /tmp/nginx.
# It also writes who may send management requests (ADMIN_ALLOW, see below) for nginx.conf to include.
# (EDGE_RESOLV_CONF, EDGE_ROUTE_FILE and EDGE_RUN_DIR exist for tests/deploy/; nginx.conf reads /tmp/nginx.)
set -euf  # -f: no globbing (ADMIN_ALLOW is split into words)
resolv_conf="${EDGE_RESOLV_CONF:-/etc/resolv.conf}"
route_file="${EDGE_ROUTE_FILE:-/proc/net/route}"
run_dir="${EDGE_RUN_DIR:-/tmp/nginx}"
mkdir -p "$run_dir"

# ADMIN_ALLOW: the addresses and networks (CIDR), separated by spaces or commas, that management requests (pinning
# models: every method but GET and HEAD under /models/) may come from; nginx refuses the rest with 403 in the API's
# error shape, before the API's own ADMIN_TOKEN check. Empty (the default): from nowhere. The word `gateway` is the
# container network's gateway: where the engine's port mapping makes connections from this machine come from.
gateway() {  # the default route's gateway in /proc/net/route (little-endian hex) as a dotted IPv4 address
    hex=$(awk '$2 == "00000000" && $3 != "00000000" { print $3; exit }' "$route_file" 2>/dev/null || true)
    [ -n "$hex" ] || return 1
    printf '%d.%d.%d.%d\n' "0x$(echo "$hex" | cut -c7-8)" "0x$(echo "$hex" | cut -c5-6)" \
        "0x$(echo "$hex" | cut -c3-4)" "0x$(echo "$hex" | cut -c1-2)"
}
admin_conf="$run_dir/admin-allow.conf"
: >"$admin_conf.new"
for entry in $(echo "${ADMIN_ALLOW:-}" | tr ',' ' '); do
    case "$entry" in
        gateway)
            if ! entry=$(gateway); then
                echo "edge: ADMIN_ALLOW names the gateway, but $route_file has no default route" >&2
                exit 1
            fi
            ;;
        *[!0-9a-fA-F:./]* | */*/* | *.*:* | /*)
            echo "edge: ADMIN_ALLOW: '$entry' is not an address or a network (CIDR) like 172.16.0.0/12" >&2
            exit 1
            ;;
    esac
    echo "allow $entry;" >>"$admin_conf.new"
done
echo "deny all;" >>"$admin_conf.new"
mv "$admin_conf.new" "$admin_conf"
server=$(awk '$1 == "nameserver" { print $2; exit }' "$resolv_conf")
if [ -z "$server" ]; then
    echo "edge: no nameserver in $resolv_conf: nginx could not find the services by name" >&2
    exit 1
fi
case "$server" in *:*) server="[$server]" ;; esac  # an IPv6 address
echo "resolver $server valid=5s ipv6=off;" >"$run_dir/resolver.conf"
exec nginx -e stderr -c /etc/nginx/edge/nginx.conf -g 'daemon off;'
