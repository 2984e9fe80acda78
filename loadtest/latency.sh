#!/bin/bash
# Scenario "latency": single-chain unary calls. First the maximum rate
# (closed loop, 16 calls in flight), then an open loop at 50% of it, with
# latency measured from each call's intended send time. Run twice: with
# certvald and the load generator sharing both cores (unpinned), then with
# certvald pinned to CPU 0 and the load generator to CPU 1 (taskset), so
# the server's own tail shows apart from the client's (LT_LATENCY_MODES
# picks: "unpinned pinned" by default). The baseline is the in-process
# latency of one X509_verify_cert (1 thread). Bounded: about 50 s (SMOKE=1:
# a few seconds).
. "$(dirname "$0")/lib.sh"

MIX=${LT_MIX:-tenant=90,device=10}
MODES=${LT_LATENCY_MODES:-unpinned pinned}
if [ "$(nproc)" -lt 2 ]; then
  MODES=unpinned # one CPU: nothing to pin apart
fi
if [ "$SMOKE" = 1 ]; then
  FIX=$(lt_fixtures smoke-p256 --devices 200 --revoked 20 --expired 20 --untrusted 20 \
        --malformed 5 --victims 16 --crl-entries 1000 --quiet)
  MDUR=1; DUR=1; WARM=0.3
else
  FIX=$(lt_fixtures p256-20k --devices 20000 --crl-entries 10000)
  MDUR=5; DUR=10; WARM=1
fi

# run_mode NAME: the maximum, then 50% of it; results in latency.NAME.*.json
# (the unpinned run keeps the historical names latency.max.json and
# latency.certval.json).
run_mode() {
  local name=$1 sfx=.$1 plot=()
  if [ "$name" = pinned ]; then
    LT_SERVER_CPUS=0; LT_LOAD_CPUS=1
  else
    LT_SERVER_CPUS=""; LT_LOAD_CPUS=""; sfx=""
  fi
  [ "$SMOKE" = 1 ] || plot=(--plot "$LT_OUT/latency$sfx")
  lt_server_start "$FIX"
  lt_log "latency ($name): maximum single-chain rate, ${MDUR} s"
  lt_load --fixtures "$FIX" --mix "$MIX" --batch 1 --concurrency 16 --channels 4 \
    --duration "$MDUR" --warmup "$WARM" --json "$LT_OUT/latency$sfx.max.json"
  local max rate
  max=$(lt_json "$LT_OUT/latency$sfx.max.json" 'd["throughput"]["calls_per_s"]')
  rate=$("$LT_PY" -c "print('%.1f' % max(1.0, $max / 2))")
  lt_log "latency ($name): open loop at $rate calls/s (50% of $max), ${DUR} s"
  lt_load --fixtures "$FIX" --mix "$MIX" --batch 1 --concurrency 256 --channels 4 \
    --rate "$rate" --duration "$DUR" --warmup "$WARM" "${plot[@]}" \
    --json "$LT_OUT/latency$sfx.certval.json"
  lt_server_stop
  LT_SERVER_CPUS=""; LT_LOAD_CPUS=""
}

for m in $MODES; do
  run_mode "$m"
done
lt_log "latency: baseline OpenSSL 3, one chain at a time, 1 thread"
lt_baseline --fixtures "$FIX" --mix "$MIX" --threads 1 --batch 1 --duration "$MDUR" \
  --warmup 0.3 --json "$LT_OUT/latency.baseline1.json"

BP=$(lt_json "$LT_OUT/latency.baseline1.json" 'd["latency_us"]["p99"]')
# mode_lines NAME SUFFIX: the summary lines of one mode.
mode_lines() {
  local n=$1 j=$LT_OUT/latency$2.certval.json
  [ -s "$j" ] || return 0
  echo "${n}_max_calls_per_s=$(lt_json "$LT_OUT/latency$2.max.json" 'd["throughput"]["calls_per_s"]')"
  echo "${n}_rate=$(lt_json "$j" 'd["throughput"]["calls_per_s"]')"
  echo "${n}_p50_us=$(lt_json "$j" 'd["latency_us"]["p50"]')"
  echo "${n}_p99_us=$(lt_json "$j" 'd["latency_us"]["p99"]')"
  echo "${n}_p999_us=$(lt_json "$j" 'd["latency_us"]["p99.9"]')"
  echo "${n}_late_calls=$(lt_json "$j" 'd["extra"]["late_calls"]')"
}
case " $MODES " in *" unpinned "*) MAIN="" ;; *) MAIN=.pinned ;; esac
P=$(lt_json "$LT_OUT/latency$MAIN.certval.json" 'd["latency_us"]["p99"]')
lt_summary latency <<EOT
metric=p99_us
max_calls_per_s=$(lt_json "$LT_OUT/latency$MAIN.max.json" 'd["throughput"]["calls_per_s"]')
certval=$P
$(case " $MODES " in *" unpinned "*) mode_lines unpinned "" ;; esac)
$(case " $MODES " in *" pinned "*) mode_lines pinned .pinned ;; esac)
baseline_1t=$BP
ratio_1t=$(lt_ratio "$P" "$BP")
target=p99 < 1000 us at 50% load
EOT
