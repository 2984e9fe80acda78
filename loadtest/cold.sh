#!/bin/bash
# Scenario "cold": every chain a distinct device certificate, 10,000-entry
# CRL, in ECDSA P-256 and in RSA-2048 PKIs. The fixture pool is cycled at
# random (20,000 P-256 / 5,000 RSA chains), so certvald runs with its
# verdict cache turned off: every chain is parsed, path-validated and
# signature-checked, as a never-seen chain would be.
# Bounded: about 60 s (SMOKE=1: a few seconds).
. "$(dirname "$0")/lib.sh"

MIX=device=100
LT_SERVER_YAML="verdict_cache: {max_entries: 0}"
run_one() {
  local key=$1 fix=$2 dur=$3 bdur=$4 warm=$5
  lt_server_start "$fix"
  lt_log "cold $key: certval-load, batch 64, 8 in flight over 4 connections, ${dur} s"
  lt_load --fixtures "$fix" --mix "$MIX" --batch 64 --concurrency 8 --channels 4 \
    --duration "$dur" --warmup "$warm" --json "$LT_OUT/cold-$key.certval.json"
  lt_server_stop
  for t in 1 2; do
    lt_log "cold $key: baseline OpenSSL 3, $t thread(s), ${bdur} s"
    lt_baseline --fixtures "$fix" --mix "$MIX" --threads "$t" --batch 64 --duration "$bdur" \
      --warmup 0.5 --json "$LT_OUT/cold-$key.baseline$t.json"
  done
  local c b1 b2
  c=$(lt_json "$LT_OUT/cold-$key.certval.json" 'd["throughput"]["chains_per_s"]')
  b1=$(lt_json "$LT_OUT/cold-$key.baseline1.json" 'd["throughput"]["chains_per_s"]')
  b2=$(lt_json "$LT_OUT/cold-$key.baseline2.json" 'd["throughput"]["chains_per_s"]')
  lt_summary "cold-$key" <<EOT
metric=chains_per_s
certval=$c
certval_per_core=$("$LT_PY" -c "print('%.1f' % ($c / $(nproc)))")
baseline_1t=$b1
baseline_2t=$b2
ratio_1t=$(lt_ratio "$c" "$b1")
ratio_2t=$(lt_ratio "$c" "$b2")
target=30000 chains/s per core (RSA-2048) and 10x baseline
EOT
}

if [ "$SMOKE" = 1 ]; then
  run_one p256 "$(lt_fixtures smoke-p256 --devices 200 --revoked 20 --expired 20 --untrusted 20 \
        --malformed 5 --victims 16 --crl-entries 1000 --quiet)" 1 1 0.3
  run_one rsa2048 "$(lt_fixtures smoke-rsa2048 --key rsa2048 --devices 50 --revoked 5 \
        --expired 5 --untrusted 5 --malformed 2 --victims 4 --crl-entries 1000 --quiet)" 1 1 0.3
else
  run_one p256 "$(lt_fixtures p256-20k --devices 20000 --crl-entries 10000)" 10 5 2
  run_one rsa2048 "$(lt_fixtures rsa2048-5k --key rsa2048 --devices 5000 --revoked 100 \
        --crl-entries 10000)" 10 5 2
fi
