#!/bin/bash
# Scenario "big CRL": a 1,000,000-entry CRL, mixed traffic, first steady,
# then with a new CRL swapped in every few seconds: certval-fixtures crl
# writes the next CRL (by rename) and `certvalctl admin push-crl` makes it
# current (certval.v1.Admin/PushCrl). The push times are measured here.
# Then the OpenSSL 3 baseline with the same CRL. Bounded: about 60 s
# (SMOKE=1: 20,000 entries, a few seconds).
. "$(dirname "$0")/lib.sh"

MIX=${LT_MIX:-tenant=40,device=40,revoked=5,expired=5,untrusted=5,malformed=5}
if [ "$SMOKE" = 1 ]; then
  ENTRIES=20000
  FIX=$(lt_fixtures smoke-bigcrl --devices 200 --revoked 20 --expired 20 --untrusted 20 \
        --malformed 5 --victims 16 --crl-entries $ENTRIES --quiet)
  DUR=1.5; WARM=0.3; BDUR=1; SWAP_EVERY=0.5
else
  ENTRIES=1000000
  FIX=$(lt_fixtures p256-bigcrl --devices 20000 --crl-entries $ENTRIES)
  DUR=12; WARM=2; BDUR=5; SWAP_EVERY=3
fi
ARGS=(--fixtures "$FIX" --mix "$MIX" --batch 64 --concurrency 8 --channels 4)

T0=$(date +%s.%N)
lt_server_start "$FIX"
T1=$(date +%s.%N)
RSS=$(awk '/VmRSS/ {print $2}' "/proc/$LT_SERVER_PID/status")
lt_log "bigcrl: steady, ${DUR} s"
lt_load "${ARGS[@]}" --duration "$DUR" --warmup "$WARM" --json "$LT_OUT/bigcrl.steady.json"
lt_log "bigcrl: a new CRL every ${SWAP_EVERY} s, ${DUR} s"
lt_load "${ARGS[@]}" --duration "$DUR" --warmup "$WARM" --json "$LT_OUT/bigcrl.swap.json" &
LOAD=$!
SWAPS=0
PUSH_MS=""
END=$("$LT_PY" -c "import time; print(time.time() + $WARM + $DUR - 0.2)")
sleep "$WARM"
while "$LT_PY" -c "import sys,time; sys.exit(0 if time.time() < $END else 1)"; do
  "$LT_BIN/certval-fixtures" crl --dir "$FIX" --crl-entries "$ENTRIES" --quiet
  P0=$(date +%s.%N)
  lt_push_crl "$FIX/device-issuing-ca.crl"
  PUSH_MS="$PUSH_MS $("$LT_PY" -c "import time; print('%.0f' % ((time.time() - $P0) * 1000))")"
  SWAPS=$((SWAPS + 1))
  sleep "$SWAP_EVERY"
done
wait "$LOAD"
RSS_AFTER=$(awk '/VmRSS/ {print $2}' "/proc/$LT_SERVER_PID/status")
lt_server_stop
# Push durations (ms), measured around each certvalctl admin push-crl.
RELOAD=$("$LT_PY" -c "
import sys
t = [float(x) / 1000 for x in '$PUSH_MS'.split()]
print('%.3f %.3f %d' % (max(t) if t else 0, sum(t) / len(t) if t else 0, len(t)))")
for t in 1 2; do
  lt_log "bigcrl: baseline OpenSSL 3, $t thread(s), ${BDUR} s (it re-checks the whole CRL)"
  lt_baseline --fixtures "$FIX" --mix "$MIX" --threads "$t" --batch 64 --duration "$BDUR" \
    --warmup 0 --json "$LT_OUT/bigcrl.baseline$t.json"
done

S=$LT_OUT/bigcrl.steady.json W=$LT_OUT/bigcrl.swap.json
C=$(lt_json "$S" 'd["throughput"]["chains_per_s"]')
B1=$(lt_json "$LT_OUT/bigcrl.baseline1.json" 'd["throughput"]["chains_per_s"]')
B2=$(lt_json "$LT_OUT/bigcrl.baseline2.json" 'd["throughput"]["chains_per_s"]')
P_STEADY=$(lt_json "$S" 'd["latency_us"]["p99"]')
P_SWAP=$(lt_json "$W" 'd["latency_us"]["p99"]')
read -r RL_MAX RL_MEAN RL_N <<< "$RELOAD"
lt_summary bigcrl <<EOT
metric=chains_per_s
crl_entries=$ENTRIES
certval=$C
certval_during_swaps=$(lt_json "$W" 'd["throughput"]["chains_per_s"]')
baseline_1t=$B1
baseline_2t=$B2
ratio_1t=$(lt_ratio "$C" "$B1")
ratio_2t=$(lt_ratio "$C" "$B2")
p99_steady_us=$P_STEADY
p99_swapping_us=$P_SWAP
p99_swap_over_steady=$(lt_ratio "$P_SWAP" "$P_STEADY")
swaps=$SWAPS
pushes=$RL_N
push_max_s=$RL_MAX
push_mean_s=$RL_MEAN
startup_to_serving_s=$("$LT_PY" -c "print('%.3f' % ($T1 - $T0))")
certvald_rss_kb=$RSS
certvald_rss_after_swaps_kb=$RSS_AFTER
baseline_crl_load_s=$(lt_json "$LT_OUT/bigcrl.baseline1.json" 'd["extra"]["crl_load_s"]')
baseline_crl_heap_mb=$(lt_json "$LT_OUT/bigcrl.baseline1.json" 'd["extra"]["crl_heap_mb"]')
target=load <3 s, <64 B/entry, p99 while swapping <= 2x steady
EOT
