#!/bin/bash
# Instruction counts per validation under callgrind (repeatable on a busy
# machine, unlike wall-clock figures): one hot tenant chain, one hot device
# chain (verdict-cache hits) and one cold P-256 and RSA-2048 device chain
# (no verdict cache: parse, path, signatures, CRLs), each through
# validator_check_chain in process (cv_bench); and the protobuf-c request
# unpacking and response packing of a 1-chain and a 64-chain call
# (codec_bench). Each case runs twice, with
# N and 2N iterations; the difference divided by N is the cost of one
# validation (validator_check_chain's inclusive cost), start-up and the
# first (cache-filling) iteration cancelled out. Prints one line per case,
# then the top functions by inclusive cost per validation (same
# difference). The hot figures repeat exactly; the cold ones move by a few
# hundred instructions (0.03%): BoringSSL's X509_cmp_time formats the
# current time with BIO_snprintf, whose cost follows the clock's digits.
# certvald itself does not run under valgrind 3.19 (its workers block
# in io_uring_enter, which valgrind does not treat as a blocking syscall,
# so every other thread waits on valgrind's lock): request unpacking and
# response packing are not in these figures.
#
# Environment: CERTVAL_BUILD_DIR (default build), CG_ITER (N, default 2000;
# cold cases use CG_ITER/20), CG_TOP (functions listed, default 12),
# CG_OUT (work folder, default $CERTVAL_BUILD_DIR/callgrind),
# CG_CRL_ENTRIES (entries of each fixture CRL, default 0: see below).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${CERTVAL_BUILD_DIR:-$SRC/build}
BENCH=$BUILD/loadtest/cv_bench
FIXGEN=$BUILD/loadtest/certval-fixtures
OUT=${CG_OUT:-$BUILD/callgrind}
ITER=${CG_ITER:-2000}
TOP=${CG_TOP:-12}
CODEC=$BUILD/loadtest/codec_bench
for b in "$BENCH" "$FIXGEN" "$CODEC"; do
  [ -x "$b" ] || { echo "callgrind.sh: $b is missing: build first" >&2; exit 1; }
done
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }
mkdir -p "$OUT"

# fixtures NAME ARGS...: a small PKI (reused when the same ARGS made it).
fixtures() {
  local dir=$OUT/$1; shift
  if [ "$(cat "$dir/.args" 2>/dev/null)" != "$*" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    "$FIXGEN" pki --dir "$dir" "$@" --quiet >&2
    echo "$*" > "$dir/.args"
  fi
  echo "$dir"
}

# run CASE DIR N ARGS...: cv_bench DIR ARGS under callgrind with N and 2N
# iterations; one validation is validator_check_chain's inclusive cost.
run() {
  local name=$1 dir=$2 n=$3; shift 3
  measure "$name" validator_check_chain "$n" "$BENCH" "$dir" "$@"
}

# measure CASE FUNCTION N CMD...: CMD --iterations N and 2N under callgrind;
# one iteration is FUNCTION's inclusive cost, the 2N run minus the N run.
measure() {
  local name=$1 fn=$2 n=$3; shift 3
  local a=$OUT/$name.$n.out b=$OUT/$name.$((2 * n)).out
  valgrind --tool=callgrind --callgrind-out-file="$a" "$@" --iterations "$n" \
    > "$OUT/$name.log" 2>&1
  valgrind --tool=callgrind --callgrind-out-file="$b" "$@" --iterations $((2 * n)) \
    >> "$OUT/$name.log" 2>&1
  # Top functions by inclusive cost per validation: the same difference,
  # function by function.
  for f in "$a" "$b"; do
    callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$f" 2>/dev/null > "$f.txt"
  done
  python3 - "$name" "$a.txt" "$b.txt" "$n" "$TOP" "$fn" 3> "$OUT/$name.top" <<'PY'
import re, sys
def load(path):
    d = {}
    for line in open(path):
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*\S)\s*$", line)
        if m and "PROGRAM TOTALS" not in m.group(2):
            name = re.sub(r"\s*\[.*\]$", "", m.group(2)).split(":")[-1]
            d[name] = max(d.get(name, 0), int(m.group(1).replace(",", "")))
    return d
name, a, b = sys.argv[1], load(sys.argv[2]), load(sys.argv[3])
n, top, key = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
print("%-14s %10.0f instructions per iteration (%s, %d - %d over %d)"
      % (name, (b[key] - a[key]) / n, key, b[key], a[key], n))
rows = sorted(((b[k] - a.get(k, 0)) / n, k) for k in b)
rows = [r for r in rows if r[0] > 0][::-1]
skip = ("main", "(below main)", "__libc_start_main@@GLIBC_2.34", "0x000000000001ab70")
for cost, k in [r for r in rows if r[1] not in skip][:top]:
    print("    %12.0f  %s" % (cost, k), file=open(3, "w", closefd=False))
PY
}

# The CRL cache's lookups probe a table keyed by a per-process random
# SipHash key, so their length (and the count) changes from run to run when
# the CRLs have entries; with empty CRLs (the default) every lookup probes
# once and the counts repeat exactly. CG_CRL_ENTRIES=1000 shows the spread.
CRL=${CG_CRL_ENTRIES:-0}
REVOKED=$((CRL > 0 ? 10 : 0))
P256=$(fixtures p256 --devices 50 --revoked "$REVOKED" --crl-entries "$CRL")
RSA=$(fixtures rsa2048 --key rsa2048 --devices 50 --revoked "$REVOKED" --crl-entries "$CRL")
COLD=$((ITER / 20 > 0 ? ITER / 20 : 1))
echo "callgrind: instructions per validation (cv_bench; N=$ITER hot, $COLD cold) and per codec call"
run hot-tenant "$P256" "$ITER" tenant
run hot-device "$P256" "$ITER" device
run cold-p256 "$P256" "$COLD" device --cold
run cold-rsa2048 "$RSA" "$COLD" device --cold
# The protobuf-c work of certvald around those validations (its request
# unpacking and response packing; not gRPC's own).
measure codec-1-chain main "$ITER" "$CODEC" --chains 1
measure codec-64-chains main $((COLD > 0 ? ITER / 10 : 1)) "$CODEC" --chains 64
for c in hot-tenant hot-device cold-p256 cold-rsa2048 codec-1-chain codec-64-chains; do
  echo "top inclusive functions per validation, $c:"
  cat "$OUT/$c.top"
done
