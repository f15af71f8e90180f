#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks run for real:
# etcd, Redis, Pebble (ACME test CA), BIND 9 with dig (DNS-01 tests), the peer proxies whose configs the
# benchmark smoke test validates (with nginx's stream module), and Chromium for the dashboard test.
# Skips what is there.
set -euo pipefail
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v redis-server >/dev/null || need+=(redis-server)
command -v pebble >/dev/null || need+=(pebble)
# DNS-01: named (authoritative test zones with TSIG updates) and dig (reads them back).
command -v named >/dev/null || need+=(bind9)
command -v dig >/dev/null || need+=(bind9-dnsutils)
command -v openssl >/dev/null || need+=(openssl)
command -v nginx >/dev/null || need+=(nginx)
# nginx's stream module: a TCP backend that reads PROXY headers (tests), and nginx as a TCP proxy (bench).
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
command -v haproxy >/dev/null || need+=(haproxy)
command -v caddy >/dev/null || need+=(caddy)
command -v wrk >/dev/null || need+=(wrk)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "installing Debian packages: ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
# Debian starts packaged daemons where it can; the tests start their own on free ports.
for svc in etcd redis-server nginx haproxy caddy named bind9; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
