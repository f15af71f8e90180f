#!/usr/bin/env bash
# A three-node Portico cluster on loopback, for trying failover by hand.
#
# Starts: a local etcd (Debian package `etcd-server`), two demo backends,
# three Portico nodes with a [cluster] section each, and uploads the routes
# into etcd with `portico storeconfig`. Prints the URLs to try; Ctrl-C stops
# everything it started.
#
#   scripts/demo-cluster.sh            # run until Ctrl-C
#   scripts/demo-cluster.sh --check    # start, verify routing and a manager
#                                      # failover, stop (exit 0 = all good)
#
# Environment:
#   PORTICO_DEMO_PORT_OFFSET  added to every port below (default 0)
#   PORTICO_DEMO_DIR          working directory (default: a new temp dir, removed on exit)
#   PORTICO_DEMO_ENTRY        what to run: mod.ts (default) or dist/portico.js
#
# Ports (offset 0): nodes' web 8001-8003, API/dashboard 8081-8083,
# cluster 7946-7948; backends 9001-9002; etcd 12379 (client), 12380 (peer).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHECK=0
[[ "${1:-}" == "--check" ]] && CHECK=1
OFF=${PORTICO_DEMO_PORT_OFFSET:-0}
ENTRY=${PORTICO_DEMO_ENTRY:-$ROOT/mod.ts}
DENO=${DENO:-deno}
if [[ -n "${PORTICO_DEMO_DIR:-}" ]]; then
  WORK=$PORTICO_DEMO_DIR
  mkdir -p "$WORK"
  KEEP_WORK=1
else
  WORK=$(mktemp -d -t portico-demo.XXXXXX)
  KEEP_WORK=0
fi

ETCD_CLIENT=$((12379 + OFF))
ETCD_PEER=$((12380 + OFF))
BACKENDS=($((9001 + OFF)) $((9002 + OFF)))
WEB=($((8001 + OFF)) $((8002 + OFF)) $((8003 + OFF)))
API=($((8081 + OFF)) $((8082 + OFF)) $((8083 + OFF)))
CLUSTER=($((7946 + OFF)) $((7947 + OFF)) $((7948 + OFF)))
# One secret for the three nodes, given only to them (the storeconfig run has
# no [cluster] section).
SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '\n')

PIDS=()
NODE_PIDS=()
SLEEP_PID=
STOPPING=0

log() { printf '\033[1mdemo:\033[0m %s\n' "$*" >&2; }

stop_all() {
  [[ $STOPPING == 1 ]] && return
  STOPPING=1
  trap - INT TERM EXIT
  log "stopping ${#PIDS[@]} processes"
  # Only what this script started, by pid; Portico nodes get SIGTERM (drain).
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  [[ -n $SLEEP_PID ]] && kill "$SLEEP_PID" 2>/dev/null
  wait "${PIDS[@]}" 2>/dev/null || true
  if [[ $KEEP_WORK == 0 ]]; then rm -rf "$WORK"; else log "logs kept in $WORK"; fi
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

need() {
  command -v "$1" >/dev/null 2>&1 || { log "needs '$1' ($2)"; exit 1; }
}
need etcd "apt-get install etcd-server"
need curl "apt-get install curl"
need "$DENO" "https://deno.com"

# Runs a command in the background, output to a log file; remembers its pid
# (in LAST_PID: a $(...) subshell would lose track of the child).
LAST_PID=
start() {
  local name=$1; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

wait_http() {
  local url=$1 what=$2 tries=${3:-150}
  for _ in $(seq 1 "$tries"); do
    curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  log "$what did not come up ($url); see $WORK/*.log"
  return 1
}

# --- etcd --------------------------------------------------------------------
log "work directory $WORK"
start etcd etcd --name demo --data-dir "$WORK/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster "demo=http://127.0.0.1:$ETCD_PEER" --log-level warn
wait_http "http://127.0.0.1:$ETCD_CLIENT/health" etcd

# --- demo backends ------------------------------------------------------------
cat >"$WORK/backend.ts" <<'EOF'
const [port, name] = Deno.args;
Deno.serve({ hostname: "127.0.0.1", port: Number(port), onListen() {} }, (req) => {
  const url = new URL(req.url);
  if (url.pathname === "/health") return new Response("ok");
  return Response.json({ backend: name, path: url.pathname + url.search, via: req.headers.get("x-forwarded-server") });
});
EOF
for i in 0 1; do
  start "backend-$((i + 1))" "$DENO" run --no-config --no-lock --allow-net "$WORK/backend.ts" "${BACKENDS[$i]}" "demo-$((i + 1))"
done

# --- routes, uploaded into etcd -------------------------------------------------
cat >"$WORK/dynamic.toml" <<EOF
[http.routers.demo]
rule = "PathPrefix(\`/\`)"
service = "demo"
entryPoints = ["web"]

[http.services.demo.loadBalancer]
servers = [{ url = "http://127.0.0.1:${BACKENDS[0]}" }, { url = "http://127.0.0.1:${BACKENDS[1]}" }]

[http.services.demo.loadBalancer.healthCheck]
path = "/health"
interval = "2s"
timeout = "1s"
EOF
cat >"$WORK/upload.toml" <<EOF
[entryPoints.web]
address = "127.0.0.1:${WEB[0]}"
[providers.file]
filename = "$WORK/dynamic.toml"
[providers.etcd]
endpoints = ["127.0.0.1:$ETCD_CLIENT"]
rootKey = "traefik"
EOF
for _ in 1 2 3 4 5 6 7 8 9 10; do
  "$DENO" run -A --no-lock "$ENTRY" storeconfig --configFile="$WORK/upload.toml" >"$WORK/storeconfig.log" 2>&1 && break
  sleep 0.5
done || { log "storeconfig failed:"; cat "$WORK/storeconfig.log" >&2; exit 1; }
log "routes uploaded to etcd ($(grep -c '' "$WORK/storeconfig.log") lines of changes, see storeconfig.log)"

# --- three Portico nodes --------------------------------------------------------
for i in 0 1 2; do
  n=$((i + 1))
  peers=()
  for j in 0 1 2; do [[ $j != "$i" ]] && peers+=("\"127.0.0.1:${CLUSTER[$j]}\""); done
  mkdir -p "$WORK/node-$n"
  cat >"$WORK/node-$n.toml" <<EOF
[entryPoints.web]
address = "127.0.0.1:${WEB[$i]}"
[entryPoints.traefik]
address = "127.0.0.1:${API[$i]}"
[providers.etcd]
endpoints = ["127.0.0.1:$ETCD_CLIENT"]
rootKey = "traefik"
[cluster]
nodeId = "node-$n"
address = "127.0.0.1:${CLUSTER[$i]}"
peers = [$(IFS=,; echo "${peers[*]}")]
dataDir = "$WORK/node-$n"
[api]
insecure = true
dashboard = true
[ping]
[log]
level = "INFO"
[lifeCycle]
graceTimeOut = "5s"
EOF
  start "node-$n" env PORTICO_CLUSTER_SECRET="$SECRET" "$DENO" run -A --no-lock "$ENTRY" serve --configFile="$WORK/node-$n.toml"
  NODE_PIDS+=("$LAST_PID")
done
for i in 0 1 2; do wait_http "http://127.0.0.1:${API[$i]}/ping" "node-$((i + 1))" 300; done

# The node answering 200 on /api/cluster/leader is the manager.
manager() {
  for i in 0 1 2; do
    kill -0 "${NODE_PIDS[$i]}" 2>/dev/null || continue
    if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:${API[$i]}/api/cluster/leader" 2>/dev/null; then
      echo "$i"
      return 0
    fi
  done
  return 1
}
wait_manager() {
  for _ in $(seq 1 100); do
    manager && return 0
    sleep 0.1
  done
  return 1
}
M=$(wait_manager) || { log "no manager elected; see $WORK/node-*.log"; exit 1; }

cat >&2 <<EOF

  Portico demo cluster is up (manager: node-$((M + 1)), pid ${NODE_PIDS[$M]}).

  Through any node (answers alternate between demo-1 and demo-2):
    curl http://127.0.0.1:${WEB[0]}/   curl http://127.0.0.1:${WEB[1]}/   curl http://127.0.0.1:${WEB[2]}/
  Dashboards:
    http://127.0.0.1:${API[0]}/dashboard/   http://127.0.0.1:${API[1]}/dashboard/   http://127.0.0.1:${API[2]}/dashboard/
  Cluster view of node-1:     curl http://127.0.0.1:${API[0]}/api/cluster
  Who is manager (200 = me):  curl -i http://127.0.0.1:${API[$M]}/api/cluster/leader
  Failover: stop the manager, watch another node take over on its dashboard:
    kill ${NODE_PIDS[$M]}        # SIGTERM: hands over at once
    kill -9 ${NODE_PIDS[$M]}     # crash: the others elect after the election timeout
  Change routes: edit $WORK/dynamic.toml, then
    deno run -A $ENTRY storeconfig --configFile=$WORK/upload.toml
  Logs: $WORK/*.log

  Ctrl-C stops everything.
EOF

if [[ $CHECK == 1 ]]; then
  for i in 0 1 2; do
    body=$(curl -fsS --max-time 2 "http://127.0.0.1:${WEB[$i]}/check")
    [[ $body == *'"backend":"demo-'* ]] || { log "node-$((i + 1)) did not route: $body"; exit 1; }
  done
  curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:${API[0]}/dashboard/" || { log "dashboard not served"; exit 1; }
  old=$M
  kill -TERM "${NODE_PIDS[$old]}"
  # A graceful stop hands over at once: another node is manager well
  # within one election timeout plus a margin.
  for _ in $(seq 1 50); do
    M=$(manager) && [[ $M != "$old" ]] && break
    sleep 0.1
  done
  [[ -n "${M:-}" && $M != "$old" ]] || { log "no new manager after node-$((old + 1)) stopped"; exit 1; }
  wait "${NODE_PIDS[$old]}" && code=0 || code=$?
  [[ $code == 0 ]] || { log "node-$((old + 1)) exited $code after SIGTERM"; exit 1; }
  survivor=$(( (old + 1) % 3 ))
  curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:${WEB[$survivor]}/after-failover" || { log "routing failed after failover"; exit 1; }
  log "check passed: 3 nodes routed, dashboard served, node-$((old + 1)) stopped with exit 0, node-$((M + 1)) took over"
  exit 0
fi

# Wait for Ctrl-C (the INT trap stops everything).
while true; do
  sleep 3600 &
  SLEEP_PID=$!
  wait "$SLEEP_PID" || true
done
