#!/bin/bash
# Runs every scenario in turn and writes $LT_OUT/results.md, a Markdown
# table ready for docs/benchmarks.md (the machine, then one row per
# scenario with certval, the baseline and their ratio). SMOKE=1 for the
# tiny version. Bounded: about 7 minutes on 2 cores (SMOKE=1: ~1 min).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
trap - EXIT

for s in hot cold bigcrl latency revocation overload overload-batch64 handshake fleet; do
  lt_log "=== scenario $s ==="
  case $s in
  overload-batch64) LT_OVERLOAD_BATCH=64 "$HERE/overload.sh" ;;
  *) "$HERE/$s.sh" ;;
  esac
done

"$LT_PY" - "$LT_OUT" <<'PY' | tee "$LT_OUT/results.md"
import json, os, platform, subprocess, sys
out = sys.argv[1]
def load(name):
    try:
        return json.load(open(os.path.join(out, name + ".summary.json")))
    except OSError:
        return None
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print("Machine: %d cores (%s), Linux %s; the load generator shares the cores with certvald." %
      (os.cpu_count(), cpu, platform.release()))
print()
print("| scenario | measure | certval | OpenSSL 3, 1 thread | OpenSSL 3, 2 threads | certval / 1 thread | certval / 2 threads | target |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
for name in ("hot", "cold-p256", "cold-rsa2048", "bigcrl", "latency", "revocation", "overload",
             "overload-batch64"):
    d = load(name)
    if d is None:
        print("| %s | not run | | | | | | |" % name)
        continue
    print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
        name, d.get("metric"), d.get("certval"), d.get("baseline_1t", ""), d.get("baseline_2t", ""),
        d.get("ratio_1t", ""), d.get("ratio_2t", ""), d.get("target", "")))
print()
for name in ("hot", "bigcrl", "latency", "revocation", "overload", "overload-batch64", "handshake",
             "fleet"):
    d = load(name)
    if d:
        print("- %s: %s" % (name, ", ".join("%s=%s" % (k, v) for k, v in d.items()
                                           if k not in ("scenario", "metric", "target"))))
PY
