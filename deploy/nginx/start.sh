#!/bin/sh
# Start the edge (the compose `edge` service's command; POSIX sh: the official nginx:alpine image has no bash).
# 1. nginx's resolver needs the container's DNS server by address, and that differs by engine (Docker's embedded
#    DNS is 127.0.0.11, Podman's is its network's gateway): take the first nameserver of /etc/resolv.conf.
# 2. The per-client limits from the environment (.env, passed on by docker-compose.yml), checked and written as
#    nginx directives: EDGE_RATE_LIMIT (nginx's rate: 20r/s, or per minute: 30r/m), EDGE_RATE_BURST (requests over
#    the rate served at once), EDGE_CONN_LIMIT (requests in progress per client address).
# 3. Who may send management requests (ADMIN_ALLOW, see below), as allow lines for nginx.conf to include.
# Then nginx runs in the foreground with this directory's configuration. Everything it writes goes to /tmp/nginx.
# (EDGE_RESOLV_CONF, EDGE_ROUTE_FILE, EDGE_RUN_DIR and EDGE_CONF_DIR exist for the tests, which run this file's nginx.conf with the
# paths and ports rewritten: tests/processes.py EdgeServer; in the container nginx.conf reads /tmp/nginx.)
set -euf  # -f: no globbing (ADMIN_ALLOW is split into words)
resolv_conf="${EDGE_RESOLV_CONF:-/etc/resolv.conf}"
route_file="${EDGE_ROUTE_FILE:-/proc/net/route}"
run_dir="${EDGE_RUN_DIR:-/tmp/nginx}"
conf_dir="${EDGE_CONF_DIR:-/etc/nginx/edge}"
rate="${EDGE_RATE_LIMIT:-20r/s}"
burst="${EDGE_RATE_BURST:-40}"
connections="${EDGE_CONN_LIMIT:-20}"
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

refuse() {
    echo "edge: $1" >&2
    exit 1
}
whole_number() {  # digits only (the whole value: no sign, space or newline), at most 7 of them
    case "$1" in '' | *[!0-9]*) return 1 ;; esac
    [ "${#1}" -le 7 ]
}
per="${rate##*r/}" count="${rate%r/*}"
case "$per" in s | m) ;; *) refuse "EDGE_RATE_LIMIT=$rate is not a rate like 20r/s or 30r/m" ;; esac
{ whole_number "$count" && [ "$count" -gt 0 ]; } || refuse "EDGE_RATE_LIMIT=$rate is not a rate like 20r/s or 30r/m"
whole_number "$burst" || refuse "EDGE_RATE_BURST=$burst is not a whole number of requests"
{ whole_number "$connections" && [ "$connections" -gt 0 ]; } || refuse "EDGE_CONN_LIMIT=$connections is not a number above 0"
if [ "$per" = s ]; then retry_after=1; else retry_after=$(((60 + count - 1) / count)); fi  # one request's worth
cat >"$run_dir/limit-zones.conf" <<CONF
limit_req_zone \$limit_key zone=requests:10m rate=$rate;
limit_conn_zone \$limit_key zone=connections:10m;
map \$limit_key \$rate_retry_after { default $retry_after; }
CONF
cat >"$run_dir/limits.conf" <<CONF
limit_req zone=requests burst=$burst nodelay;
limit_conn connections $connections;
CONF
exec nginx -e stderr -c "$conf_dir/nginx.conf" -g 'daemon off;'
