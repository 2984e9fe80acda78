#!/bin/bash
# Scenario "latency": single-chain unary calls. First the maximum rate
# (closed loop, 16 calls in flight), then an open loop at 50% of it, with
# latency measured from each call's intended send time. The baseline is the
# in-process latency of one X509_verify_cert (1 thread). Bounded: about 25 s
# (SMOKE=1: a few seconds).
. "$(dirname "$0")/lib.sh"

MIX=${LT_MIX:-tenant=90,device=10}
if [ "$SMOKE" = 1 ]; then
  FIX=$(lt_fixtures smoke-p256 --devices 200 --revoked 20 --expired 20 --untrusted 20 \
        --malformed 5 --victims 16 --crl-entries 1000 --quiet)
  MDUR=1; DUR=1; WARM=0.3; PLOT=()
else
  FIX=$(lt_fixtures p256-20k --devices 20000 --crl-entries 10000)
  MDUR=5; DUR=10; WARM=1; PLOT=(--plot "$LT_OUT/latency")
fi

lt_server_start "$FIX"
lt_log "latency: maximum single-chain rate, ${MDUR} s"
lt_load --fixtures "$FIX" --mix "$MIX" --batch 1 --concurrency 16 --channels 4 \
  --duration "$MDUR" --warmup "$WARM" --json "$LT_OUT/latency.max.json"
MAX=$(lt_json "$LT_OUT/latency.max.json" 'd["throughput"]["calls_per_s"]')
RATE=$("$LT_PY" -c "print('%.1f' % max(1.0, $MAX / 2))")
lt_log "latency: open loop at $RATE calls/s (50% of $MAX), ${DUR} s"
lt_load --fixtures "$FIX" --mix "$MIX" --batch 1 --concurrency 256 --channels 4 \
  --rate "$RATE" --duration "$DUR" --warmup "$WARM" "${PLOT[@]}" \
  --json "$LT_OUT/latency.certval.json"
lt_server_stop
lt_log "latency: baseline OpenSSL 3, one chain at a time, 1 thread"
lt_baseline --fixtures "$FIX" --mix "$MIX" --threads 1 --batch 1 --duration "$MDUR" \
  --warmup 0.3 --json "$LT_OUT/latency.baseline1.json"

P=$(lt_json "$LT_OUT/latency.certval.json" 'd["latency_us"]["p99"]')
BP=$(lt_json "$LT_OUT/latency.baseline1.json" 'd["latency_us"]["p99"]')
lt_summary latency <<EOT
metric=p99_us
max_calls_per_s=$MAX
rate=$RATE
certval=$P
certval_p50_us=$(lt_json "$LT_OUT/latency.certval.json" 'd["latency_us"]["p50"]')
certval_p999_us=$(lt_json "$LT_OUT/latency.certval.json" 'd["latency_us"]["p99.9"]')
late_calls=$(lt_json "$LT_OUT/latency.certval.json" 'd["extra"]["late_calls"]')
baseline_1t=$BP
ratio_1t=$(lt_ratio "$P" "$BP")
target=p99 < 1000 us at 50% load
EOT
