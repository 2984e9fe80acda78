#!/bin/bash
# Scenario "fleet" (issue 11, docs/fleet.md): one etcd (Debian's
# etcd-server, on 127.0.0.1, temporary data folder) and three certvald pods
# following it, each under load from its own certval-load.
#  1. Verdict latency with no writes (steady).
#  2. The same load while 100 deny entries are written one after another
#     through pod A (AddDenyEntry; each call returns once etcd committed it
#     and A applied it). For each entry: the time from the call until the
#     LAST of pods B and C holds it (its GetRevocationStatus fleet entry
#     count reaches it; the deny list is published to the workers before
#     the count moves). p50/p99/max of that propagation, and verdict
#     latency during the writes.
#  3. A 1,000,000-entry CRL pushed through pod A (SMOKE: 20,000): time until
#     B and C have it in force (their status shows its entry count).
# Bounded: about 60 s (SMOKE=1: a few seconds, correctness only).
. "$(dirname "$0")/lib.sh"

ETCD=${ETCD:-/usr/bin/etcd}
[ -x "$ETCD" ] || { echo "loadtest: $ETCD is missing: apt-get install etcd-server" >&2; exit 1; }
MIX=${LT_MIX:-tenant=45,device=45,revoked=10}
if [ "$SMOKE" = 1 ]; then
  FIX=$(lt_fixtures smoke-fleet --devices 200 --revoked 20 --expired 0 --untrusted 0 \
        --malformed 0 --victims 16 --crl-entries 1000 --quiet)
  DUR=1.5; ENTRIES=20; BIG=20000
else
  FIX=$(lt_fixtures fleet-p256 --devices 5000 --revoked 100 --expired 0 --untrusted 0 \
        --malformed 0 --victims 16 --crl-entries 10000)
  DUR=8; ENTRIES=100; BIG=1000000
fi
LOADARGS=(--fixtures "$FIX" --mix "$MIX" --batch 16 --concurrency 2 --channels 1)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/certval-fleet-lt-XXXXXX")
PIDS=()
ETCD_PID=""

free_port() { "$LT_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cleanup() {
  local p
  for p in "${PIDS[@]}" $ETCD_PID; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}" $ETCD_PID; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

CPORT=$(free_port); PPORT=$(free_port)
"$ETCD" --name lt --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$CPORT" \
  --advertise-client-urls "http://127.0.0.1:$CPORT" --listen-peer-urls "http://127.0.0.1:$PPORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$PPORT" \
  --initial-cluster "lt=http://127.0.0.1:$PPORT" > "$WORK/etcd.log" 2>&1 &
ETCD_PID=$!

# Three pods, each on its own copy of the fixtures (own state folder).
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
for n in a b c; do
  d=$WORK/$n
  mkdir -p "$d/state"
  cp -r "$FIX"/. "$d/"
  echo "$TOKEN" > "$d/admin.token"
  printf 'state_dir: state\nadmin:\n  listen: "127.0.0.1:0"\n  token_file: admin.token\n  max_message_bytes: 268435456\nfleet:\n  endpoints: ["127.0.0.1:%s"]\n  prefix: /lt/\n  timeout_ms: 5000\n' \
    "$CPORT" >> "$d/certval.yaml"
done
for i in $(seq 1 100); do
  ETCDCTL_API=3 /usr/bin/etcdctl --endpoints "127.0.0.1:$CPORT" endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done
declare -A PORT APORT
for n in a b c; do
  d=$WORK/$n
  "$LT_CERTVALD" --config "$d/certval.yaml" --listen 127.0.0.1:0 --port-file "$d/port" \
    --admin-port-file "$d/admin-port" > "$d/certvald.log" 2>&1 &
  PIDS+=($!)
done
for n in a b c; do
  d=$WORK/$n
  for i in $(seq 1 300); do [ -s "$d/port" ] && [ -s "$d/admin-port" ] && break; sleep 0.05; done
  PORT[$n]=$(cat "$d/port"); APORT[$n]=$(cat "$d/admin-port")
  for i in $(seq 1 300); do
    "$LT_CTL" health --server "127.0.0.1:${PORT[$n]}" >/dev/null 2>&1 && break
    sleep 0.05
  done
done
lt_log "fleet: etcd on $CPORT, pods a=${PORT[a]} b=${PORT[b]} c=${PORT[c]}"

load_all() { # PHASE: one certval-load per pod, in the background
  local n
  LOADS=()
  for n in a b c; do
    "$LT_BIN/certval-load" --target "127.0.0.1:${PORT[$n]}" "${LOADARGS[@]}" --duration "$DUR" \
      --warmup 0.5 --json "$LT_OUT/fleet.$1.$n.json" > "$WORK/load.$1.$n.log" 2>&1 &
    LOADS+=($!)
  done
}

lt_log "fleet: steady load on 3 pods, ${DUR} s"
load_all steady
wait "${LOADS[@]}"

# The writer and the watchers: Python grpcio (docs/benchmarks.md).
PB=$WORK/pb
mkdir -p "$PB"
protoc --proto_path="$LT_SRC/proto" --python_out="$PB" certval/v1/admin.proto
touch "$PB/certval/__init__.py" "$PB/certval/v1/__init__.py"

lt_log "fleet: $ENTRIES deny entries through pod a while the 3 pods are under load"
load_all writes
sleep 0.5
PYTHONPATH=$PB "$LT_PY" - "$TOKEN" "${APORT[a]}" "${APORT[b]}" "${APORT[c]}" "$ENTRIES" \
  "$LT_OUT/fleet.propagation.json" <<'EOF'
import hashlib, json, sys, time
import grpc
from certval.v1 import admin_pb2 as a
token, pa, pb_, pc, n, out = sys.argv[1], *sys.argv[2:5], int(sys.argv[5]), sys.argv[6]
md = [("authorization", "Bearer " + token)]
ch = {p: grpc.insecure_channel("127.0.0.1:" + p) for p in (pa, pb_, pc)}
def call(p, m, req, resp):
    return ch[p].unary_unary("/certval.v1.Admin/" + m, request_serializer=type(req).SerializeToString,
                             response_deserializer=resp.FromString)(req, metadata=md, timeout=10)
def count(p):
    return call(p, "GetRevocationStatus", a.GetRevocationStatusRequest(),
                a.GetRevocationStatusResponse).fleet.deny_entries
count(pa)  # connect to every pod before the clock starts
base = {p: count(p) for p in (pb_, pc)}
prop, commit = [], []
for i in range(n):
    leaf = hashlib.sha256(b"fleet-lt-%d-%f" % (i, time.time())).digest()
    t0 = time.monotonic()
    call(pa, "AddDenyEntry", a.DenyEntry(leaf_sha256=leaf, reason="lt"), a.DenyEntryResponse)
    commit.append(time.monotonic() - t0)
    want = {p: base[p] + i + 1 for p in base}
    pending = set(base)
    while pending and time.monotonic() - t0 < 5:
        pending = {p for p in pending if count(p) < want[p]}
    prop.append(time.monotonic() - t0 if not pending else float("inf"))
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]
after = [p - c for p, c in zip(prop, commit)]
r = {"entries": n, "propagation_ms": {"p50": pct(prop, .5) * 1e3, "p99": pct(prop, .99) * 1e3,
                                      "max": max(prop) * 1e3},
     "commit_ms": {"p50": pct(commit, .5) * 1e3, "p99": pct(commit, .99) * 1e3,
                   "max": max(commit) * 1e3},
     "after_commit_ms": {"p50": pct(after, .5) * 1e3, "p99": pct(after, .99) * 1e3,
                         "max": max(after) * 1e3},
     "samples_ms": [round(x * 1e3, 2) for x in prop]}
json.dump(r, open(out, "w"), indent=1)
print(json.dumps({k: v for k, v in r.items() if k != "samples_ms"}))
EOF
wait "${LOADS[@]}"

lt_log "fleet: a $BIG-entry CRL through pod a"
"$LT_BIN/certval-fixtures" crl --dir "$WORK/a" --crl-entries "$BIG" --quiet
ls -l "$WORK/a/device-issuing-ca.crl" >&2
PYTHONPATH=$PB "$LT_PY" - "$TOKEN" "${APORT[a]}" "${APORT[b]}" "${APORT[c]}" "$BIG" \
  "$WORK/a/device-issuing-ca.crl" "$LT_OUT/fleet.bigcrl.json" <<'EOF'
import json, sys, threading, time
import grpc
from certval.v1 import admin_pb2 as a
token, pa, pb_, pc, n, path, out = sys.argv[1], *sys.argv[2:5], int(sys.argv[5]), *sys.argv[6:8]
md = [("authorization", "Bearer " + token)]
opts = [("grpc.max_send_message_length", 1 << 28), ("grpc.max_receive_message_length", 1 << 28)]
ch = {p: grpc.insecure_channel("127.0.0.1:" + p, options=opts) for p in (pa, pb_, pc)}
def call(p, m, req, resp, timeout=60):
    return ch[p].unary_unary("/certval.v1.Admin/" + m, request_serializer=type(req).SerializeToString,
                             response_deserializer=resp.FromString)(req, metadata=md, timeout=timeout)
def has(p):
    st = call(p, "GetRevocationStatus", a.GetRevocationStatusRequest(), a.GetRevocationStatusResponse)
    return any(i.entries == n for i in st.issuers)
crl = open(path, "rb").read()
seen = {}
def watch(p, t0):
    while time.monotonic() - t0 < 60 and not has(p):
        time.sleep(0.01)
    seen[p] = time.monotonic() - t0
t0 = time.monotonic()
ths = [threading.Thread(target=watch, args=(p, t0)) for p in (pb_, pc)]
for t in ths:
    t.start()
resp = call(pa, "PushCrl", a.PushCrlRequest(crl=crl), a.PushCrlResponse)
committed = time.monotonic() - t0
for t in ths:
    t.join()
r = {"entries": resp.entries, "bytes": len(crl), "push_returned_s": committed,
     "last_pod_s": max(seen.values())}
json.dump(r, open(out, "w"), indent=1)
print(json.dumps(r))
EOF

lat() { lt_json "$LT_OUT/fleet.$1.$2.json" "'%.2f' % (d['latency_us']['$3'] / 1000)" 2>/dev/null || echo n/a; }
P=$LT_OUT/fleet.propagation.json
{
  echo "entries=$ENTRIES"
  echo "propagation_p50_ms=$(lt_json "$P" '"%.2f" % d["propagation_ms"]["p50"]')"
  echo "propagation_p99_ms=$(lt_json "$P" '"%.2f" % d["propagation_ms"]["p99"]')"
  echo "propagation_max_ms=$(lt_json "$P" '"%.2f" % d["propagation_ms"]["max"]')"
  echo "commit_p50_ms=$(lt_json "$P" '"%.2f" % d["commit_ms"]["p50"]')"
  echo "commit_p99_ms=$(lt_json "$P" '"%.2f" % d["commit_ms"]["p99"]')"
  echo "after_commit_p50_ms=$(lt_json "$P" '"%.2f" % d["after_commit_ms"]["p50"]')"
  echo "after_commit_p99_ms=$(lt_json "$P" '"%.2f" % d["after_commit_ms"]["p99"]')"
  for n in a b c; do
    echo "steady_p50_ms_$n=$(lat steady $n p50)"; echo "steady_p99_ms_$n=$(lat steady $n p99)"
    echo "writes_p50_ms_$n=$(lat writes $n p50)"; echo "writes_p99_ms_$n=$(lat writes $n p99)"
  done
  echo "bigcrl_entries=$BIG"
  echo "bigcrl_push_s=$(lt_json "$LT_OUT/fleet.bigcrl.json" '"%.3f" % d["push_returned_s"]')"
  echo "bigcrl_last_pod_s=$(lt_json "$LT_OUT/fleet.bigcrl.json" '"%.3f" % d["last_pod_s"]')"
} | lt_summary fleet
