#!/bin/sh
# Start the edge (the compose `edge` service's command; POSIX sh: the official nginx:alpine image has no bash).
# nginx's resolver needs the container's DNS server by address, and that differs by engine (Docker's embedded
# DNS is 127.0.0.11, Podman's is its network's gateway): take the first nameserver of /etc/resolv.conf, then run
# nginx in the foreground with this directory's configuration. Everything it writes goes to /tmp/nginx.
# (EDGE_RESOLV_CONF and EDGE_RUN_DIR exist for tests/deploy/test_edge_config.py; nginx.conf reads /tmp/nginx.)
set -eu
resolv_conf="${EDGE_RESOLV_CONF:-/etc/resolv.conf}"
run_dir="${EDGE_RUN_DIR:-/tmp/nginx}"
mkdir -p "$run_dir"
server=$(awk '$1 == "nameserver" { print $2; exit }' "$resolv_conf")
if [ -z "$server" ]; then
    echo "edge: no nameserver in $resolv_conf: nginx could not find the services by name" >&2
    exit 1
fi
case "$server" in *:*) server="[$server]" ;; esac  # an IPv6 address
echo "resolver $server valid=5s ipv6=off;" >"$run_dir/resolver.conf"
exec nginx -e stderr -c /etc/nginx/edge/nginx.conf -g 'daemon off;'
