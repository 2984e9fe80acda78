#!/bin/bash
# Scenario "hot": 90% one tenant certificate (presented by many users), 10%
# distinct device certificates, 10,000-entry CRL, batches of 64, closed
# loop: first the cache-fill phase on a fresh server (certval_fill: chains/s
# over its first 2 s, no warm-up), then the steady state (certval: 10 s after
# a further 2 s warm-up). Then the OpenSSL 3 baseline on the same chains
# with 1 and 2 threads. Prints certval / baseline (steady state). Bounded: about 30 s (SMOKE=1: a few seconds).
. "$(dirname "$0")/lib.sh"

MIX=${LT_MIX:-tenant=90,device=10}
if [ "$SMOKE" = 1 ]; then
  FIX=$(lt_fixtures smoke-p256 --devices 200 --revoked 20 --expired 20 --untrusted 20 \
        --malformed 5 --victims 16 --crl-entries 1000 --quiet)
  DUR=1; WARM=0.3; BDUR=1; FILL=0.5; PLOT=()
else
  FIX=$(lt_fixtures p256-20k --devices 20000 --crl-entries 10000)
  DUR=10; WARM=2; BDUR=5; FILL=2; PLOT=(--plot "$LT_OUT/hot")
fi

lt_server_start "$FIX"
# The cache-fill phase first: a fresh server, no warm-up, FILL seconds,
# while the device chains (drawn at random) are still being seen for the
# first time; then the steady state after WARM more seconds.
lt_log "hot: cache fill, certval-load $MIX on a fresh server, no warm-up, ${FILL} s"
lt_load --fixtures "$FIX" --mix "$MIX" --batch 64 --concurrency 8 --channels 4 \
  --api "${LT_API:-unary}" --duration "$FILL" --warmup 0 --json "$LT_OUT/hot.fill.json"
lt_log "hot: certval-load $MIX, batch 64, 8 calls in flight over 4 connections, ${DUR} s"
lt_load --fixtures "$FIX" --mix "$MIX" --batch 64 --concurrency 8 --channels 4 \
  --api "${LT_API:-unary}" --duration "$DUR" --warmup "$WARM" "${PLOT[@]}" \
  --json "$LT_OUT/hot.certval.json"
RSS=$(awk '/VmRSS/ {print $2}' "/proc/$LT_SERVER_PID/status")
lt_server_stop
for t in 1 2; do
  lt_log "hot: baseline OpenSSL 3, $t thread(s), ${BDUR} s"
  lt_baseline --fixtures "$FIX" --mix "$MIX" --threads "$t" --batch 64 --duration "$BDUR" \
    --warmup 0.5 --json "$LT_OUT/hot.baseline$t.json"
done

C=$(lt_json "$LT_OUT/hot.certval.json" 'd["throughput"]["chains_per_s"]')
B1=$(lt_json "$LT_OUT/hot.baseline1.json" 'd["throughput"]["chains_per_s"]')
B2=$(lt_json "$LT_OUT/hot.baseline2.json" 'd["throughput"]["chains_per_s"]')
lt_summary hot <<EOT
metric=chains_per_s
certval=$C
certval_fill=$(lt_json "$LT_OUT/hot.fill.json" 'd["throughput"]["chains_per_s"]')
fill_s=$FILL
baseline_1t=$B1
baseline_2t=$B2
ratio_1t=$(lt_ratio "$C" "$B1")
ratio_2t=$(lt_ratio "$C" "$B2")
p99_us=$(lt_json "$LT_OUT/hot.certval.json" 'd["latency_us"]["p99"]')
certvald_rss_kb=$RSS
target=300000 verdicts/s and 100x baseline
EOT
