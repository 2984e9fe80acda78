#!/bin/bash
# Shared helpers of the loadtest scenario scripts (sourced, not run).
#
# Environment:
#   CERTVAL_BUILD_DIR  build folder (default: build-load, else build, next to loadtest/)
#   LT_OUT             where results go (default: $CERTVAL_BUILD_DIR/loadtest-results)
#   LT_FIXTURES        where fixtures are cached (default: $CERTVAL_BUILD_DIR/loadtest-fixtures)
#   SMOKE=1            tiny fixtures and ~1 s runs: checks correctness, never speed
#   LT_SERVER_CPUS     when set, certvald runs pinned to these CPUs (taskset -c list)
#   LT_LOAD_CPUS       when set, certval-load runs pinned to these CPUs
# Every scenario talks to 127.0.0.1 only and stops what it started on exit.
set -euo pipefail

LT_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${CERTVAL_BUILD_DIR:-}" ]; then
  if [ -x "$LT_SRC/build-load/loadtest/certval-load" ]; then
    CERTVAL_BUILD_DIR=$LT_SRC/build-load
  else
    CERTVAL_BUILD_DIR=$LT_SRC/build
  fi
fi
LT_BIN=$CERTVAL_BUILD_DIR/loadtest
LT_CERTVALD=${LT_CERTVALD:-$CERTVAL_BUILD_DIR/server/certvald}
LT_CTL=${LT_CTL:-$CERTVAL_BUILD_DIR/server/certvalctl}
LT_OUT=${LT_OUT:-$CERTVAL_BUILD_DIR/loadtest-results}
LT_FIXTURES=${LT_FIXTURES:-$CERTVAL_BUILD_DIR/loadtest-fixtures}
SMOKE=${SMOKE:-0}
LT_PY=/usr/bin/python3
LT_SERVER_PID=""
LT_PORT=""
LT_SERVER_CPUS=${LT_SERVER_CPUS:-}
LT_LOAD_CPUS=${LT_LOAD_CPUS:-}
mkdir -p "$LT_OUT" "$LT_FIXTURES"

for b in "$LT_BIN/certval-load" "$LT_BIN/certval-fixtures" "$LT_BIN/certval-baseline-openssl" \
         "$LT_CERTVALD"; do
  [ -x "$b" ] || { echo "loadtest: $b is missing: build first (docs/benchmarks.md)" >&2; exit 1; }
done

lt_log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# lt_fixtures NAME ARGS...: generates fixtures into $LT_FIXTURES/NAME with
# `certval-fixtures pki ARGS`, reusing them when the same ARGS made them
# less than a day ago. Prints the folder.
lt_fixtures() {
  local name=$1; shift
  local dir=$LT_FIXTURES/$name stamp="$*"
  if [ -f "$dir/fixtures.txt" ] && [ "$(cat "$dir/.args" 2>/dev/null)" = "$stamp" ] &&
     [ -z "$(find "$dir/fixtures.txt" -mmin +1440)" ]; then
    echo "$dir"; return 0
  fi
  rm -rf "$dir"
  lt_log "generating fixtures $name: $*"
  "$LT_BIN/certval-fixtures" pki --dir "$dir" "$@" >&2
  echo "$stamp" > "$dir/.args"
  echo "$dir"
}

# lt_pinned CPUS CMD...: runs CMD pinned to CPUS (taskset -c), or as is when
# CPUS is empty. exec keeps the PID of CMD.
lt_pinned() {
  local cpus=$1
  shift
  if [ -n "$cpus" ]; then
    exec taskset -c "$cpus" "$@"
  else
    exec "$@"
  fi
}

# lt_server_start DIR: starts certvald on DIR/certval.yaml, 127.0.0.1 and an
# ephemeral port, with the admin API on another ephemeral port (token in
# DIR/admin.token); sets LT_PORT, LT_ADMIN_PORT and LT_SERVER_PID; waits
# until SERVING. LT_SERVER_YAML, when set, is appended to the run's copy of
# the configuration (for example "verdict_cache: {max_entries: 0}").
lt_server_start() {
  local dir=$1 pf=$1/port apf=$1/admin-port i cfg=$1/certval-run.yaml
  rm -f "$pf" "$apf"
  [ -s "$dir/admin.token" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/admin.token"
  # The server reads copies of the CRLs in DIR/run/: scenarios rewrite the
  # fixture CRLs to push them, and the server must learn of them through
  # the push alone, not through its file watch as well.
  mkdir -p "$dir/run"
  cp "$dir"/*.crl "$dir/run/"
  { sed -E '/^  crl_files: /s/(\[|, )([a-z0-9-]+\.crl)/\1run\/\2/g' \
      "$dir/certval.yaml"
    printf 'admin:\n  listen: "127.0.0.1:0"\n  token_file: admin.token\n'
    [ -z "${LT_SERVER_YAML:-}" ] || printf '%s\n' "$LT_SERVER_YAML"; } > "$cfg"
  lt_pinned "$LT_SERVER_CPUS" "$LT_CERTVALD" --config "$cfg" --listen 127.0.0.1:0 \
    --port-file "$pf" --admin-port-file "$apf" > "$dir/certvald.log" 2>&1 &
  LT_SERVER_PID=$!
  LT_SERVER_DIR=$dir
  for i in $(seq 1 200); do
    [ -s "$pf" ] && [ -s "$apf" ] && break
    kill -0 "$LT_SERVER_PID" 2>/dev/null || { cat "$dir/certvald.log" >&2; return 1; }
    sleep 0.05
  done
  LT_PORT=$(cat "$pf")
  LT_ADMIN_PORT=$(cat "$apf")
  lt_wait_serving certvald "$dir/certvald.log"
}

# lt_wait_serving NAME LOG: waits until the server on $LT_PORT answers
# health SERVING (10 s at most); otherwise prints LOG and fails.
lt_wait_serving() {
  local i
  for i in $(seq 1 200); do
    "$LT_CTL" health --server "127.0.0.1:$LT_PORT" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "loadtest: $1 not SERVING" >&2; cat "$2" >&2; return 1
}

# lt_push_crl FILE: pushes a CRL through the admin API; returns when it is in
# force on every worker.
lt_push_crl() {
  "$LT_CTL" admin --server "127.0.0.1:$LT_ADMIN_PORT" --token-file "$LT_SERVER_DIR/admin.token" \
    push-crl "$1" >/dev/null
}

# lt_server_stop: SIGTERM (clean drain), SIGKILL after 15 s.
lt_server_stop() {
  local i
  [ -n "$LT_SERVER_PID" ] || return 0
  kill -TERM "$LT_SERVER_PID" 2>/dev/null || true
  for i in $(seq 1 150); do
    kill -0 "$LT_SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$LT_SERVER_PID" 2>/dev/null || true
  wait "$LT_SERVER_PID" 2>/dev/null || true
  LT_SERVER_PID=""
}
trap lt_server_stop EXIT

# lt_json FILE EXPR: evaluates a Python expression on the JSON document d.
lt_json() {
  "$LT_PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# lt_load ARGS...: certval-load against the running server.
lt_load() {
  (lt_pinned "$LT_LOAD_CPUS" "$LT_BIN/certval-load" --target "127.0.0.1:$LT_PORT" "$@")
}

# lt_baseline ARGS...: the OpenSSL 3 baseline.
lt_baseline() {
  "$LT_BIN/certval-baseline-openssl" "$@"
}

# lt_summary SCENARIO: reads key=value pairs on stdin and writes
# $LT_OUT/SCENARIO.summary.json (numbers stay numbers), then prints the
# "RESULT" line people read.
lt_summary() {
  local name=$1
  "$LT_PY" -c '
import json, sys
out, name = sys.argv[1], sys.argv[2]
d = {"scenario": name}
for line in sys.stdin:
    if "=" not in line:
        continue
    k, v = line.rstrip("\n").split("=", 1)
    try:
        d[k] = float(v) if any(c in v for c in ".e") else int(v)
    except ValueError:
        d[k] = v
json.dump(d, open(out, "w"), indent=1)
print("RESULT " + " ".join("%s=%s" % (k, v) for k, v in d.items()))
' "$LT_OUT/$name.summary.json" "$name"
}

# lt_ratio A B: A / B with 2 decimals ("n/a" when B is 0).
lt_ratio() {
  "$LT_PY" -c 'import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print("%.2f" % (a/b) if b else "n/a")' "$1" "$2"
}
