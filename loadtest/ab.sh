#!/bin/bash
# A/B of two certvald binaries on the hot scenario's load, alternated, with
# the same certval-load: for each run, hot steady state (batches of 64,
# 8 s closed loop after a 4 s cache fill) and single-chain calls (6 s),
# each reported as throughput and as certvald's own CPU time (utime +
# stime of the process, /proc/PID/stat) per chain or per call. On these
# shared 2-core VMs throughput moves by 5-10% between runs of one binary,
# and the client takes a quarter of the CPU; the server's CPU per chain
# is the steadier figure of what a change saved.
#
#   loadtest/ab.sh OLD_CERTVALD NEW_CERTVALD [RUNS]     (RUNS default 3)
#
# Prints one line per run and the means (also LT_OUT/ab.tsv). Bounded:
# about 25 s per run and binary (SMOKE=1: tiny fixtures, 1 s loads).
# Fixtures: the hot scenario's (p256-20k, built if missing).
. "$(dirname "$0")/lib.sh"

[ $# -ge 2 ] || { echo "usage: $0 OLD_CERTVALD NEW_CERTVALD [RUNS]" >&2; exit 2; }
A=$1 B=$2 RUNS=${3:-3}
for b in "$A" "$B"; do
  [ -x "$b" ] || { echo "ab: $b is not an executable" >&2; exit 2; }
done
if [ "$SMOKE" = 1 ]; then
  FIX=$(lt_fixtures smoke-p256 --devices 200 --revoked 20 --expired 20 --untrusted 20 \
        --malformed 5 --victims 16 --crl-entries 1000 --quiet)
  FILL=0.5 HOT=1 ONE=1
else
  FIX=$(lt_fixtures p256-20k --devices 20000 --crl-entries 10000)
  FILL=4 HOT=8 ONE=6
fi
MIX=tenant=90,device=10
HZ=$(getconf CLK_TCK)
RES=$LT_OUT/ab.tsv
: > "$RES"
ticks() { awk '{ print $14 + $15 }' "/proc/$LT_SERVER_PID/stat"; }

for r in $(seq 1 "$RUNS"); do
  for side in old new; do
    if [ "$side" = old ]; then LT_CERTVALD=$A; else LT_CERTVALD=$B; fi
    lt_server_start "$FIX"
    lt_load --fixtures "$FIX" --mix "$MIX" --batch 64 --concurrency 8 --channels 4 \
      --duration "$FILL" --warmup 0 --json "$LT_OUT/ab.fill.json" 2> /dev/null
    t0=$(ticks)
    lt_load --fixtures "$FIX" --mix "$MIX" --batch 64 --concurrency 8 --channels 4 \
      --duration "$HOT" --warmup 0 --json "$LT_OUT/ab.hot.json" 2> /dev/null
    t1=$(ticks)
    lt_load --fixtures "$FIX" --mix "$MIX" --batch 1 --concurrency 16 --channels 4 \
      --duration "$ONE" --warmup 0 --json "$LT_OUT/ab.one.json" 2> /dev/null
    t2=$(ticks)
    lt_server_stop
    "$LT_PY" - "$side" "$t0" "$t1" "$t2" "$HZ" "$LT_OUT" >> "$RES" << 'EOF'
import json, sys
side, t0, t1, t2, hz, out = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6]
hot = json.load(open(out + "/ab.hot.json"))
one = json.load(open(out + "/ab.one.json"))
# CPU over the work done in each load's measured seconds.
print(f"{side}\t{hot['throughput']['chains_per_s']:.0f}\t{1e6 * (t1 - t0) / hz / hot['chains']:.3f}\t"
      f"{one['throughput']['calls_per_s']:.0f}\t{1e6 * (t2 - t1) / hz / one['calls']:.2f}")
EOF
    tail -1 "$RES" | awk -F'\t' -v r="$r" '{ printf "run %s %s: hot %s chains/s, %s us CPU/chain; single %s calls/s, %s us CPU/call\n", r, $1, $2, $3, $4, $5 }'
  done
done
awk -F'\t' '{ n[$1]++; h[$1] += $2; hc[$1] += $3; o[$1] += $4; oc[$1] += $5 }
  END { for (s in n) printf "mean %s: hot %.0f chains/s, %.3f us CPU/chain; single %.0f calls/s, %.2f us CPU/call\n",
        s, h[s] / n[s], hc[s] / n[s], o[s] / n[s], oc[s] / n[s] }' "$RES"
