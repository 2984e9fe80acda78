#!/bin/bash
# Scenario "revocation": time from an admin push of a CRL to the first DENY
# on every worker. The new CRL lists the victim certificates and is pushed
# with `certvalctl admin push-crl` (certval.v1.Admin/PushCrl; the call
# returns once the CRL is in force). A probe sends batches of 64 victim chains
# back to back (a batch above limits.split_min_chains is split over every
# worker); "every worker" is the first response whose victims are all DENY.
# The baseline is the time OpenSSL 3 takes to load the new CRL into a
# store (an in-process validator cannot do better without a reload).
# Bounded: about 15 s (SMOKE=1: a few seconds).
. "$(dirname "$0")/lib.sh"

if [ "$SMOKE" = 1 ]; then
  FIX=$(lt_fixtures smoke-revocation --devices 200 --revoked 20 --expired 0 --untrusted 0 \
        --malformed 0 --victims 64 --crl-entries 1000 --quiet)
  ENTRIES=1000; PDUR=8; PRE=0.5
else
  FIX=$(lt_fixtures revocation-p256 --devices 1000 --victims 64 --crl-entries 10000)
  ENTRIES=10000; PDUR=15; PRE=2
fi
# Put the fixtures back (victims valid) whatever happens.
restore() {
  "$LT_BIN/certval-fixtures" crl --dir "$FIX" --crl-entries "$ENTRIES" --quiet || true
  lt_server_stop
}
trap restore EXIT
restore

lt_server_start "$FIX"
lt_log "revocation: probe running, CRL change in ${PRE} s"
lt_load --fixtures "$FIX" --probe-revocation --batch 64 --concurrency 1 --channels 1 \
  --duration "$PDUR" --warmup 0 --json "$LT_OUT/revocation.certval.json" &
PROBE=$!
sleep "$PRE"
"$LT_BIN/certval-fixtures" crl --dir "$FIX" --crl-entries "$ENTRIES" --revoke-victims --quiet
T0=$(date +%s.%N)
lt_push_crl "$FIX/device-issuing-ca.crl"
T1=$(date +%s.%N)
wait "$PROBE"
lt_server_stop
lt_log "revocation: baseline OpenSSL 3 loading the new CRL"
lt_baseline --fixtures "$FIX" --mix victim=1 --threads 1 --batch 64 --duration 0.5 --warmup 0 \
  --json "$LT_OUT/revocation.baseline1.json"

J=$LT_OUT/revocation.certval.json
ALL=$(lt_json "$J" 'd["extra"]["first_all_deny_unix"]')
ANY=$(lt_json "$J" 'd["extra"]["first_victim_deny_unix"]')
MS=$("$LT_PY" -c "a=$ALL; print('%.1f' % ((a - $T0) * 1000) if a > 0 else 'never')")
lt_summary revocation <<EOT
metric=ms_to_deny_everywhere
certval=$MS
first_deny_ms=$("$LT_PY" -c "a=$ANY; print('%.1f' % ((a - $T0) * 1000) if a > 0 else 'never')")
push_call_ms=$("$LT_PY" -c "print('%.1f' % (($T1 - $T0) * 1000))")
baseline_1t=$("$LT_PY" -c "print('%.1f' % ($(lt_json "$LT_OUT/revocation.baseline1.json" 'd["extra"]["crl_load_s"]') * 1000))")
baseline_denies=$(lt_json "$LT_OUT/revocation.baseline1.json" 'd["verdicts"].get("DENY", {}).get("REVOKED", 0)')
target=< 1000 ms from push to DENY everywhere (also reached by the file watch: the CRL file changed too)
EOT
