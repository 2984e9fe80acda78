#!/bin/bash
# Scenario "gopeer": certval against the Go peer of issue 15
# (loadtest/gopeer/: grpc-go 1.33, crypto/x509 Verify, CRLs parsed once,
# optional verdict cache), side by side in one run, with the same fixtures
# and the same certval-load arguments as hot.sh, cold.sh (P-256 and
# RSA-2048) and latency.sh's closed-loop maximum (single-chain calls). Each
# part runs certval first, then the Go peer: without its cache, and with it
# where certval runs with its own cache on (hot, single-chain). Prints
# certval / Go against the issue's targets: >= 3x on hot steady state and
# single-chain calls/s, >= 2x on cold P-256, >= 4x on cold RSA-2048. The
# ratio held against a target is the one against the faster Go variant.
# Any verdict of the Go peer that does not match its chain's class, or any
# failed call, fails the scenario (exit 1): its figures would compare
# nothing.
#
# Builds certval-gopeer into $CERTVAL_BUILD_DIR/loadtest first; without
# golang-go, golang-google-grpc-dev or golang-google-protobuf-dev it says
# "skipped" and exits 0.
#   GOPEER_PARTS   which parts run: "hot cold single" by default
# Bounded: about 2.5 minutes (SMOKE=1: about 20 s).
. "$(dirname "$0")/lib.sh"

GOPEER_PARTS=${GOPEER_PARTS:-hot cold single}
LT_GOPEER=$LT_BIN/certval-gopeer
GOCODE=/usr/share/gocode/src

# gopeer_build: builds certval-gopeer offline from Debian's Go packages
# (GOPATH mode over /usr/share/gocode, no module download); returns 1 with a
# message when the toolchain or the libraries are missing.
gopeer_build() {
  local missing=""
  command -v go >/dev/null 2>&1 || missing=" golang-go"
  [ -d "$GOCODE/google.golang.org/grpc/health" ] || missing="$missing golang-google-grpc-dev"
  [ -d "$GOCODE/google.golang.org/protobuf/encoding/protowire" ] ||
    missing="$missing golang-google-protobuf-dev"
  if [ -n "$missing" ]; then
    echo "gopeer: skipped: missing$missing (apt-get install golang-go golang-google-grpc-dev golang-google-protobuf-dev)" >&2
    return 1
  fi
  lt_log "gopeer: building $LT_GOPEER"
  (cd "$LT_SRC/loadtest/gopeer" &&
    GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' GOPROXY=off \
      GOCACHE="$CERTVAL_BUILD_DIR/gopeer-gocache" \
      go build -trimpath -o "$LT_GOPEER" .)
}

if ! gopeer_build; then
  echo "RESULT scenario=gopeer skipped"
  exit 0
fi

# lt_gopeer_start DIR ARGS...: starts the Go peer on DIR's fixtures,
# 127.0.0.1 and an ephemeral port (pinned like certvald when
# LT_SERVER_CPUS is set); sets LT_PORT and LT_SERVER_PID (lt_server_stop
# and the exit trap stop it); waits until its health says SERVING.
lt_gopeer_start() {
  local dir=$1 pf=$1/gopeer-port _
  shift
  rm -f "$pf"
  lt_pinned "$LT_SERVER_CPUS" "$LT_GOPEER" --fixtures "$dir" --listen 127.0.0.1:0 \
    --port-file "$pf" "$@" > "$dir/gopeer.log" 2>&1 &
  LT_SERVER_PID=$!
  for _ in $(seq 1 200); do
    [ -s "$pf" ] && break
    kill -0 "$LT_SERVER_PID" 2>/dev/null || { cat "$dir/gopeer.log" >&2; return 1; }
    sleep 0.05
  done
  LT_PORT=$(cat "$pf")
  lt_wait_serving certval-gopeer "$dir/gopeer.log"
}

GO_BAD=0
# check_go JSON: counts the Go run's mismatched verdicts and failed calls.
check_go() {
  local m e
  m=$(lt_json "$1" 'd["mismatches"] + d["unknown_ids"]')
  e=$(lt_json "$1" 'd["errors_total"]')
  if [ "$m" != 0 ] || [ "$e" != 0 ]; then
    lt_log "gopeer: $1: $m mismatched verdicts, $e failed calls"
    GO_BAD=$((GO_BAD + m + e))
  fi
}

# run_trio KEY FIX YAML CACHE METRIC LOAD_ARGS...: certval (LT_SERVER_YAML =
# YAML), the Go peer, and the Go peer with --cache when CACHE is 1; results
# in $LT_OUT/gopeer-KEY.{certval,go,go-cache}.json.
run_trio() {
  local key=$1 fix=$2 yaml=$3 cache=$4
  shift 4
  LT_SERVER_YAML=$yaml lt_server_start "$fix"
  lt_log "gopeer $key: certval, certval-load $*"
  lt_load --fixtures "$fix" "$@" --json "$LT_OUT/gopeer-$key.certval.json"
  lt_server_stop
  lt_gopeer_start "$fix"
  lt_log "gopeer $key: Go peer, no cache"
  lt_load --fixtures "$fix" "$@" --json "$LT_OUT/gopeer-$key.go.json"
  lt_server_stop
  check_go "$LT_OUT/gopeer-$key.go.json"
  [ "$cache" = 1 ] || return 0
  lt_gopeer_start "$fix" --cache
  lt_log "gopeer $key: Go peer, --cache"
  lt_load --fixtures "$fix" "$@" --json "$LT_OUT/gopeer-$key.go-cache.json"
  lt_server_stop
  check_go "$LT_OUT/gopeer-$key.go-cache.json"
}

# figures KEY METRIC TARGET: the summary lines of one part.
figures() {
  local key=$1 metric=$2 target=$3 c g gc best ratio
  c=$(lt_json "$LT_OUT/gopeer-$key.certval.json" "d['throughput']['$metric']")
  g=$(lt_json "$LT_OUT/gopeer-$key.go.json" "d['throughput']['$metric']")
  echo "${key}_certval=$c"
  echo "${key}_go=$g"
  echo "${key}_ratio_go=$(lt_ratio "$c" "$g")"
  best=$g
  if [ -s "$LT_OUT/gopeer-$key.go-cache.json" ]; then
    gc=$(lt_json "$LT_OUT/gopeer-$key.go-cache.json" "d['throughput']['$metric']")
    echo "${key}_go_cache=$gc"
    echo "${key}_ratio_go_cache=$(lt_ratio "$c" "$gc")"
    best=$("$LT_PY" -c "print(max($g, $gc))")
  fi
  ratio=$(lt_ratio "$c" "$best")
  echo "${key}_ratio=$ratio"
  echo "${key}_target=${target}x"
  echo "${key}_met=$("$LT_PY" -c "import sys; r=sys.argv[1]; print('yes' if r != 'n/a' and float(r) >= $target else 'no')" "$ratio")"
}

MIX=${LT_MIX:-tenant=90,device=10}
if [ "$SMOKE" = 1 ]; then
  FIX=$(lt_fixtures smoke-p256 --devices 200 --revoked 20 --expired 20 --untrusted 20 \
        --malformed 5 --victims 16 --crl-entries 1000 --quiet)
  FIX_RSA=$(lt_fixtures smoke-rsa2048 --key rsa2048 --devices 50 --revoked 5 \
        --expired 5 --untrusted 5 --malformed 2 --victims 4 --crl-entries 1000 --quiet)
  HDUR=1; HWARM=0.3; CDUR=1; CWARM=0.3; MDUR=1; MWARM=0.3
else
  FIX=$(lt_fixtures p256-20k --devices 20000 --crl-entries 10000)
  FIX_RSA=$(lt_fixtures rsa2048-5k --key rsa2048 --devices 5000 --revoked 100 \
        --crl-entries 10000)
  HDUR=10; HWARM=2; CDUR=10; CWARM=2; MDUR=5; MWARM=1
fi

LINES=()
for part in $GOPEER_PARTS; do
  case $part in
  hot) # hot.sh: certval with its verdict cache (the default)
    run_trio hot "$FIX" "" 1 --mix "$MIX" --batch 64 --concurrency 8 --channels 4 \
      --api "${LT_API:-unary}" --duration "$HDUR" --warmup "$HWARM"
    mapfile -t -O "${#LINES[@]}" LINES < <(figures hot chains_per_s 3) ;;
  cold) # cold.sh: every chain validated, certval's verdict cache off
    for k in p256 rsa2048; do
      f=$FIX; t=2
      [ "$k" = p256 ] || { f=$FIX_RSA; t=4; }
      run_trio "cold-$k" "$f" "verdict_cache: {max_entries: 0}" 0 --mix device=100 \
        --batch 64 --concurrency 8 --channels 4 --duration "$CDUR" --warmup "$CWARM"
      mapfile -t -O "${#LINES[@]}" LINES < <(figures "cold-$k" chains_per_s "$t")
    done ;;
  single) # latency.sh's closed-loop maximum: one chain a call, 16 in flight
    run_trio single "$FIX" "" 1 --mix "$MIX" --batch 1 --concurrency 16 --channels 4 \
      --duration "$MDUR" --warmup "$MWARM"
    mapfile -t -O "${#LINES[@]}" LINES < <(figures single calls_per_s 3) ;;
  *) echo "gopeer: unknown part '$part' (GOPEER_PARTS: hot cold single)" >&2; exit 2 ;;
  esac
done

lt_summary gopeer <<EOT
metric=certval/Go (hot, cold: chains_per_s; single: calls_per_s)
$(printf '%s\n' "${LINES[@]}")
go_bad_verdicts_or_calls=$GO_BAD
targets=hot 3x, cold-p256 2x, cold-rsa2048 4x, single 3x (against the faster Go variant)
EOT
if [ "$GO_BAD" != 0 ]; then
  echo "gopeer: the Go peer gave $GO_BAD mismatched verdicts or failed calls: figures not comparable" >&2
  exit 1
fi
