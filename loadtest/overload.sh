#!/bin/bash
# Scenario "overload" (issue 9): single-chain unary calls with the verdict
# cache off, so every chain costs a worker. First the maximum rate (closed
# loop, 16 calls in flight); then, for deadlines of 5 ms, 50 ms and 1 s, an
# open loop offering 10x that rate. Reports per deadline the goodput
# (answers within their deadline, as a share of the maximum; the answered
# share counts every OK answer, late for the client's schedule or not), the
# RESOURCE_EXHAUSTED rate and the p99 of the admitted (answered) calls;
# then the peak RSS of certvald over the whole run, the time until a fresh
# client is served after the burst, and the time from SIGTERM to exit
# during a burst (drain grace: 2 s in the fixtures' configuration).
# LT_OVERLOAD_BATCH=64 sends calls of 64 chains instead of 1 (maximum and
# bursts alike; summary "overload-batch64"): the same storm as front ends
# that batch their handshakes send it, within what gRPC's per-call cost
# lets two cores carry. LT_OVERLOAD_FACTOR=2 offers 2x instead of 10x. LT_OVERLOAD_PIN=1 pins
# certvald to CPU 0 and the load generator to CPU 1 (taskset) for the whole
# scenario, maximum included. LT_OVERLOAD_DEADLINES (default "5ms 50ms 1s")
# picks the deadlines; LT_OVERLOAD_SIGTERM=0 skips the SIGTERM burst (the
# peak RSS is then read after the last burst).
# Targets: goodput >= 80% of the maximum, peak RSS <= 256 MiB, recovery
# < 1 s, exit within grace + 1 s. Bounded: about 40 s (SMOKE=1: ~10 s).
. "$(dirname "$0")/lib.sh"

MIX=${LT_MIX:-tenant=90,device=10}
GRACE=2
if [ "$SMOKE" = 1 ]; then
  FIX=$(lt_fixtures smoke-p256 --devices 200 --revoked 20 --expired 20 --untrusted 20 \
        --malformed 5 --victims 16 --crl-entries 1000 --quiet)
  MDUR=1; DUR=1; WARM=0.3
else
  FIX=$(lt_fixtures p256-2k --devices 2000 --crl-entries 1000)
  MDUR=3; DUR=4; WARM=0.5
fi
CONC=${LT_OVERLOAD_CONCURRENCY:-2048}
if [ "${LT_OVERLOAD_PIN:-0}" = 1 ]; then
  LT_SERVER_CPUS=0; LT_LOAD_CPUS=1
fi
FACTOR=${LT_OVERLOAD_FACTOR:-10} # offered load, times the maximum
BATCH=${LT_OVERLOAD_BATCH:-1}   # chains per call
NAME=overload                   # the summary's name and the JSON files' prefix
[ "$BATCH" = 1 ] || NAME=overload-batch$BATCH

LT_SERVER_YAML="verdict_cache: {max_entries: 0}" lt_server_start "$FIX"
PID=$LT_SERVER_PID
lt_log "overload: maximum rate, $BATCH chain(s) a call (closed loop, 16 in flight), ${MDUR} s"
lt_load --fixtures "$FIX" --mix "$MIX" --batch "$BATCH" --concurrency 16 --channels 4 \
  --duration "$MDUR" --warmup "$WARM" --json "$LT_OUT/$NAME.max.json"
MAX=$(lt_json "$LT_OUT/$NAME.max.json" 'd["throughput"]["calls_per_s"]')
RATE=$("$LT_PY" -c "print('%.1f' % max(1.0, $MAX * $FACTOR))")

SUMMARY=()
for DL in ${LT_OVERLOAD_DEADLINES:-5ms 50ms 1s}; do
  lt_log "overload: open loop at $RATE calls/s (${FACTOR}x $MAX), deadline $DL, ${DUR} s"
  lt_load --fixtures "$FIX" --mix "$MIX" --batch "$BATCH" --concurrency "$CONC" --channels 8 \
    --rate "$RATE" --duration "$DUR" --warmup "$WARM" --deadline "$DL" \
    --json "$LT_OUT/$NAME.$DL.json"
  J=$LT_OUT/$NAME.$DL.json
  SUMMARY+=("goodput_share_$DL=$(lt_json "$J" "round(d['extra']['goodput_calls_per_s'] / $MAX, 3)")")
  SUMMARY+=("answered_share_$DL=$(lt_json "$J" "round(d['throughput']['calls_per_s'] / $MAX, 3)")")
  SUMMARY+=("resource_exhausted_per_s_$DL=$(lt_json "$J" "round(d['errors'].get('RESOURCE_EXHAUSTED', 0) / d['seconds'], 1)")")
  SUMMARY+=("deadline_exceeded_per_s_$DL=$(lt_json "$J" "round(d['errors'].get('DEADLINE_EXCEEDED', 0) / d['seconds'], 1)")")
  SUMMARY+=("admitted_p99_us_$DL=$(lt_json "$J" "d['latency_us']['p99']")")
  SUMMARY+=("schedule_lag_max_us_$DL=$(lt_json "$J" "d['extra']['max_schedule_lag_us']")")
  SUMMARY+=("expired_unsent_per_s_$DL=$(lt_json "$J" "round(d['extra']['expired_unsent_calls'] / d['seconds'], 1)")")

  # Recovery: fresh short probes right after the burst, until one is
  # served without any error within a 1 s deadline.
  if [ "$DL" = 1s ]; then
    T0=$(date +%s.%N); REC=""
    for i in $(seq 1 40); do
      TS=$(date +%s.%N)
      lt_load --fixtures "$FIX" --mix "$MIX" --batch 1 --concurrency 1 --channels 1 \
        --duration 0.1 --warmup 0 --deadline 1s --json "$LT_OUT/$NAME.probe.json" 2>/dev/null
      if [ "$(lt_json "$LT_OUT/$NAME.probe.json" 'd["errors_total"] == 0 and d["calls"] > 0')" = True ]; then
        REC=$("$LT_PY" -c "print(round($TS - $T0, 3))"); break
      fi
    done
    SUMMARY+=("recovery_s=${REC:-not_within_40_probes}")
  fi
done

PEAK_KIB=$(awk '/^VmHWM:/ {print $2}' /proc/$PID/status)
EXIT_S=skipped; SIGTERM_CODES=skipped
if [ "${LT_OVERLOAD_SIGTERM:-1}" = 1 ]; then
# SIGTERM in the middle of a burst.
lt_log "overload: SIGTERM during a burst at $RATE calls/s, grace ${GRACE} s"
lt_load --fixtures "$FIX" --mix "$MIX" --batch "$BATCH" --concurrency "$CONC" --channels 8 \
  --rate "$RATE" --duration 4 --warmup 0 --deadline 1s \
  --json "$LT_OUT/$NAME.sigterm.json" 2>/dev/null &
LOADPID=$!
sleep 1.5
PEAK_KIB=$(awk '/^VmHWM:/ {print $2}' /proc/$PID/status)
T0=$(date +%s.%N)
kill -TERM "$PID"
for i in $(seq 1 2000); do
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.01
done
EXIT_S=$("$LT_PY" -c "print(round($(date +%s.%N) - $T0, 3))")
wait "$LOADPID" 2>/dev/null || true
lt_server_stop
SIGTERM_CODES=$(lt_json "$LT_OUT/$NAME.sigterm.json" 'd["errors"]')
else
lt_server_stop
fi

lt_summary "$NAME" <<EOT
metric=goodput_share_1s
max_calls_per_s=$MAX
chains_per_call=$BATCH
offered_calls_per_s=$RATE
offered_factor=$FACTOR
pinned=${LT_OVERLOAD_PIN:-0}
certval=$(printf '%s\n' "${SUMMARY[@]}" | sed -n 's/^goodput_share_1s=//p')
$(printf '%s\n' "${SUMMARY[@]}")
peak_rss_mib=$("$LT_PY" -c "print(round($PEAK_KIB / 1024, 1))")
sigterm_to_exit_s=$EXIT_S
grace_s=$GRACE
sigterm_errors=$SIGTERM_CODES
target=goodput >= 0.8 of max; peak RSS <= 256 MiB; recovery < 1 s; exit <= grace + 1 s
EOT
