#!/usr/bin/env bash
# Smoke test of the certval image, run the way the Deployment runs it.
#
#   bash deploy/image-test.sh [IMAGE]          default IMAGE: certval:dev
#
# Runs one container with the pod's settings: certval.yaml from the
# certval-config ConfigMap as `kubectl kustomize deploy/k8s/overlays/example`
# renders it, uid/gid 10001, read-only root, all capabilities dropped,
# deploy/seccomp/certval-io-uring.json, no-new-privileges, /tmp in memory,
# and the pod's mounts laid out like the kubelet lays out ConfigMap volumes
# (..data symlink), filled from a demo PKI. Ports are published on 127.0.0.1
# only. Then it checks, printing "image-test: ok ..." for each:
#   - certvald runs as 10001 with no capabilities, seccomp filter and
#     no_new_privs on, and cannot write its root filesystem;
#   - health is NOT_SERVING without CRLs and SERVING once they are in;
#   - the demo verdicts, through certvalctl on the host (outside the image);
#   - /metrics answers;
#   - a kubelet-style ConfigMap swap (..data symlink) reloads: the config
#     version moves and a verdict changes;
#   - /proc/1/maps of certvald holds BoringSSL and no libssl.so.3/libcrypto.so.3;
#   - no compiler, no -dev package and no apt cache in the image;
#   - SIGTERM drains and the container exits 0 within the grace.
# and prints the image size. Any failure prints "image-test: FAIL: ..." with
# the container's last log lines and exits 1. It removes the container and
# its temporary folder whatever happens.
#
# Needs: a docker daemon ($DOCKER, default docker; $DOCKER_HOST), kubectl,
# /usr/bin/python3 with PyYAML, and a host build of certvalctl
# ($CERTVALCTL, default build/server/certvalctl: bash deploy/dev.sh build).
# $SECCOMP_PROFILE chooses another profile (docs/deployment.md shows a
# deliberate break with it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
image=${1:-certval:dev}
docker=${DOCKER:-docker}
ctl=${CERTVALCTL:-$here/build/server/certvalctl}
seccomp=${SECCOMP_PROFILE:-$here/deploy/seccomp/certval-io-uring.json}
uid=10001
grace=40 # > drain_grace_seconds (20) + start-up margin; the pod's is 35 with preStop

t=$(mktemp -d /tmp/certval-image-test.XXXXXX)
name=certval-image-test-$$
started=0
start_time=$(date +%s)

cleanup() {
    if [ "$started" = 1 ]; then
        "$docker" rm -f "$name" > /dev/null 2>&1 || true
    fi
    rm -rf "$t"
}
trap cleanup EXIT

fail() {
    echo "image-test: FAIL: $*" >&2
    if [ "$started" = 1 ]; then
        echo "---- last lines of the container's log ($name):" >&2
        "$docker" logs --tail 40 "$name" 2>&1 | sed 's/^/    /' >&2 || true
    fi
    exit 1
}
ok() { echo "image-test: ok   $*"; }

[ -x "$ctl" ] || fail "no certvalctl at $ctl: build it (bash deploy/dev.sh build) or set CERTVALCTL"
"$docker" image inspect "$image" > /dev/null 2>&1 || fail "no image $image (bash deploy/image-build.sh)"
command -v kubectl > /dev/null || fail "kubectl is needed to render the ConfigMap"

# ---- the pod's volumes, on the host ----------------------------------------
# kubelet_volume DIR TS FILE...: DIR/..TS/ holds the files, DIR/..data points
# to it and DIR/NAME -> ..data/NAME, as the kubelet writes ConfigMap volumes.
kubelet_volume() {
    local dir=$1 ts=$2
    shift 2
    mkdir -p "$dir/..$ts"
    cp "$@" "$dir/..$ts/"
    ln -sfn "..$ts" "$dir/..data"
    for f in "$@"; do
        ln -sfn "..data/$(basename "$f")" "$dir/$(basename "$f")"
    done
}

pki=$t/pki
"$ctl" demo-pki --dir "$pki" > /dev/null || fail "certvalctl demo-pki"
kubectl kustomize "$here/deploy/k8s/overlays/example" > "$t/rendered.yaml" 2> "$t/kustomize.err" ||
    fail "kubectl kustomize deploy/k8s/overlays/example: $(cat "$t/kustomize.err")"
# The ConfigMap's certval.yaml as rendered. The placeholder CRL URLs are
# pointed at a closed port inside the container, so nothing leaves the
# machine; the CRLs come in through the crls volume instead.
/usr/bin/python3 - "$t/rendered.yaml" "$t/certval.yaml" << 'EOF' || fail "no certval-config ConfigMap in the rendered manifests"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cm = [d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"].endswith("certval-config")]
text = cm[0]["data"]["certval.yaml"]
text = text.replace("http://crl.example.com/", "http://127.0.0.1:1/")
open(sys.argv[2], "w").write(text)
EOF
grep -q "127.0.0.1:1/" "$t/certval.yaml" || fail "the ConfigMap's CRL fetch URLs changed: update image-test.sh"

mkdir -p "$t/config/anchors" "$t/config/admin" "$t/crls" "$t/state" "$t/crls-in"
kubelet_volume "$t/config" 2026_01_01_00_00_00.1 "$t/certval.yaml"
kubelet_volume "$t/anchors" 2026_01_01_00_00_00.2 \
    "$pki/tenant-ca.pem" "$pki/device-root.pem" "$pki/device-issuing-ca.pem"
head -c 24 /dev/urandom | base64 > "$t/token"
kubelet_volume "$t/admin" 2026_01_01_00_00_00.3 "$t/token"
# Secret defaultMode 0440 with fsGroup 10001, as in deployment.yaml.
chgrp "$uid" "$t/admin/..2026_01_01_00_00_00.3/token"
chmod 0440 "$t/admin/..2026_01_01_00_00_00.3/token"
chown "$uid:$uid" "$t/crls" "$t/state"
chmod 0755 "$t" "$t/config" "$t/anchors" "$t/admin"

# ---- run it as the Deployment does -----------------------------------------
"$docker" run -d --name "$name" \
    --user "$uid:$uid" --read-only --cap-drop ALL \
    --security-opt "seccomp=$seccomp" --security-opt no-new-privileges \
    --tmpfs /tmp:rw,size=16m \
    -v "$t/config:/etc/certval:ro" \
    -v "$t/anchors:/etc/certval/anchors:ro" \
    -v "$t/admin:/etc/certval/admin:ro" \
    -v "$t/crls:/var/lib/certval/crls" \
    -v "$t/state:/var/lib/certval/state" \
    -p 127.0.0.1::50051 -p 127.0.0.1::50052 -p 127.0.0.1::9090 \
    "$image" > /dev/null || fail "docker run"
started=1

hostport() {
    "$docker" port "$name" "$1/tcp" | awk -F: 'NR == 1 { print $NF }'
}
running() { [ "$("$docker" inspect -f '{{.State.Running}}' "$name")" = true ]; }

# health [WANT]: prints the health status once it equals WANT (or anything
# once it answers), for up to 30 s; fails if certvald exits meanwhile.
health() {
    local want=${1:-} out=""
    for _ in $(seq 150); do
        running || fail "certvald exited during start-up (exit code" \
            "$("$docker" inspect -f '{{.State.ExitCode}}' "$name"))"
        out=$("$ctl" health --server "127.0.0.1:$grpc" 2>/dev/null || true)
        if [ -n "$out" ] && { [ -z "$want" ] || [ "$out" = "$want" ]; }; then
            echo "$out"
            return 0
        fi
        sleep 0.2
    done
    fail "health did not become ${want:-reachable} within 30 s (last answer: '${out}')"
}

sleep 0.5
running || fail "certvald exited during start-up (exit code $("$docker" inspect -f '{{.State.ExitCode}}' "$name"))"
grpc=$(hostport 50051)
admin=$(hostport 50052)
metrics=$(hostport 9090)
for p in "$grpc" "$admin" "$metrics"; do
    [ -n "$p" ] || fail "a port is not published"
done
"$docker" port "$name" | grep -qv '127.0.0.1:' && fail "a port is published beyond 127.0.0.1"
ok "container $name running, ports on 127.0.0.1: grpc $grpc, admin $admin, metrics $metrics"

# Process attributes, read from the container's own /proc.
status=$("$docker" exec "$name" cat /proc/1/status) || fail "docker exec cat /proc/1/status"
# awk reads its whole input (no early exit), so the writer never gets SIGPIPE
# under pipefail.
field() { echo "$status" | awk -v k="$1:" '$1 == k && !seen { print $2; seen = 1 }'; }
[ "$(echo "$status" | awk '$1 == "Name:" { print $2 }')" = certvald ] || fail "PID 1 is not certvald"
[ "$(field Uid)" = "$uid" ] || fail "certvald runs as uid $(field Uid), not $uid"
[ "$(field Gid)" = "$uid" ] || fail "certvald runs as gid $(field Gid), not $uid"
[ "$(field CapEff)" = 0000000000000000 ] || fail "certvald has capabilities: CapEff $(field CapEff)"
[ "$(field CapBnd)" = 0000000000000000 ] || fail "capability bounding set not empty: $(field CapBnd)"
[ "$(field Seccomp)" = 2 ] || fail "no seccomp filter on certvald (Seccomp: $(field Seccomp))"
[ "$(field NoNewPrivs)" = 1 ] || fail "no_new_privs is off"
if "$docker" exec "$name" sh -c ': > /usr/local/bin/x' 2> /dev/null; then
    fail "the root filesystem is writable"
fi
ok "certvald is PID 1, uid/gid $uid, no capabilities, seccomp filter, no_new_privs, read-only root"

s=$(health)
[ "$s" = NOT_SERVING ] || fail "health is $s without any CRL (must be NOT_SERVING until CRLs are in)"
ok "health NOT_SERVING while no CRL is in"
# CRLs arrive in the crls volume: renamed in, so certvald never sees half a file.
for c in tenant-ca device-issuing-ca device-root; do
    cp "$pki/$c.crl" "$t/crls-in/$c.crl"
    chown "$uid:$uid" "$t/crls-in/$c.crl"
    mv "$t/crls-in/$c.crl" "$t/crls/$c.crl"
done
health SERVING > /dev/null
ok "health SERVING once anchors and CRLs are in ($(( $(date +%s) - start_time )) s after start)"

# ---- verdicts through a client outside the container -----------------------
# verdict CHAIN TENANT DEVICE: prints the verdict ("ALLOW", "DENY REVOKED", ...)
# certvalctl validate got from the container.
verdict() {
    local out
    out=$("$ctl" validate --server "127.0.0.1:$grpc" --tenant "$2" ${3:+--device "$3"} \
        "$pki/$1" 2>&1) || true
    case "$out" in
    "$pki/$1: DENY "*) echo "$out" | awk '{ print $2, $3 }' ;;
    "$pki/$1: "*) echo "$out" | awk '{ print $2 }' ;;
    *) fail "certvalctl validate $1 (tenant $2${3:+, device $3}): $out" ;;
    esac
}
# expect CHAIN TENANT DEVICE WANT
expect() {
    local got
    got=$(verdict "$1" "$2" "$3")
    [ "$got" = "$4" ] || fail "verdict for $1 (tenant $2${3:+, device $3}): want '$4', got '$got'"
}
expect tenant-acme-chain.pem acme "" REQUIRE_PASSWORD
expect device-acme-dev1-chain.pem acme dev-001 ALLOW
expect device-acme-dev1-chain.pem acme dev-999 "DENY DEVICE_MISMATCH"
expect tenant-globex-chain.pem acme "" "DENY WRONG_TENANT"
expect tenant-acme-revoked-chain.pem acme "" "DENY REVOKED"
expect device-acme-revoked-chain.pem acme dev-003 "DENY REVOKED"
expect tenant-acme-expired-chain.pem acme "" "DENY EXPIRED"
expect rogue-client-chain.pem acme "" "DENY UNTRUSTED_ISSUER"
ok "demo verdicts right (ALLOW, REQUIRE_PASSWORD, DENY DEVICE_MISMATCH/WRONG_TENANT/REVOKED/EXPIRED/UNTRUSTED_ISSUER)"

scrape() { /usr/bin/python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
    "http://127.0.0.1:$metrics/metrics"; }
m=$(scrape) || fail "GET /metrics on 127.0.0.1:$metrics"
grep -q '^certval_verdicts_total' <<< "$m" || fail "/metrics has no certval_verdicts_total"
version() {
    local page
    page=$(scrape) || return 1
    echo "$page" | awk '$1 ~ /^certval_config_version/ && !seen { print $2; seen = 1 }'
}
v1=$(version)
[ -n "$v1" ] || fail "/metrics has no certval_config_version"
ok "/metrics answers (certval_config_version $v1)"

# The admin API reads the token from the Secret's mount.
"$ctl" admin --server "127.0.0.1:$admin" --token-file "$t/token" status > /dev/null 2>&1 ||
    fail "admin status with the mounted token was refused"
echo wrong-token > "$t/wrong-token"
if "$ctl" admin --server "127.0.0.1:$admin" --token-file "$t/wrong-token" status > /dev/null 2>&1; then
    fail "admin status with a wrong token was accepted"
fi
ok "admin API: the Secret's token works, a wrong one is refused"

# ---- a ConfigMap edit, delivered like the kubelet does ---------------------
# Before: tenant globex is not configured. After: it is, and a device
# certificate skips the password for it, so the globex device chain's
# verdict must change to ALLOW.
before=$(verdict device-globex-dev2-chain.pem globex dev-002)
[ "$before" != ALLOW ] || fail "the globex device chain is ALLOWed before the swap"
/usr/bin/python3 - "$t/certval.yaml" "$t/certval-new.yaml" << 'EOF'
import sys
text = open(sys.argv[1]).read()
add = ("  - id: globex\n"
       "    device_certificate_skips_password: true\n"
       "    require_device_binding: true\n")
marker = "\ntenants:\n"
assert marker in text, "no tenants section"
open(sys.argv[2], "w").write(text.replace(marker, marker + add, 1))
EOF
mkdir "$t/config/..2026_01_01_00_01_00.4"
cp "$t/certval-new.yaml" "$t/config/..2026_01_01_00_01_00.4/certval.yaml"
ln -s ..2026_01_01_00_01_00.4 "$t/config/..data_tmp"
mv -T "$t/config/..data_tmp" "$t/config/..data" # atomic, as the kubelet does
rm -rf "$t/config/..2026_01_01_00_00_00.1"
v2=$v1
for _ in $(seq 50); do
    v2=$(version)
    [ "$v2" != "$v1" ] && break
    sleep 0.2
done
[ "$v2" != "$v1" ] || fail "no reload within 10 s of the ..data swap (certval_config_version still $v1)"
expect device-globex-dev2-chain.pem globex dev-002 ALLOW
[ "$(health)" = SERVING ] || fail "health left SERVING across the reload"
ok "ConfigMap ..data swap reloaded (version $v1 -> $v2; globex device chain: $before -> ALLOW)"

# ---- what is loaded, what is installed -------------------------------------
maps=$("$docker" exec "$name" cat /proc/1/maps) || fail "docker exec cat /proc/1/maps"
if echo "$maps" | grep -Eq 'libssl\.so\.3|libcrypto\.so\.3'; then
    fail "OpenSSL is loaded into certvald: $(echo "$maps" | grep -Eo '/[^ ]*lib(ssl|crypto)\.so\.3' | sort -u)"
fi
grep -q '/libcrypto\.so\.0' <<< "$maps" || fail "BoringSSL's libcrypto.so.0 is not mapped in certvald"
ok "/proc/1/maps: BoringSSL mapped ($(echo "$maps" | grep -Eo '/[^ ]*/libcrypto\.so\.0' | sort -u)), no libssl.so.3/libcrypto.so.3"

pkgs=$("$docker" run --rm --entrypoint dpkg-query "$image" -W -f '${Package}\n') || fail "dpkg-query in the image"
bad=$(echo "$pkgs" | grep -E -- '-dev$|^(gcc|g\+\+|cpp|clang|llvm|binutils|build-essential|make|cmake)(-[0-9.]+)?$' || true)
[ -z "$bad" ] || fail "build tools or -dev packages in the image: $(echo $bad)"
tools=$("$docker" run --rm --entrypoint sh "$image" -c \
    'for c in cc gcc c++ g++ clang ld as make; do command -v $c; done; ls /var/cache/apt/*.bin /var/cache/apt/archives/*.deb 2>/dev/null; ls /var/lib/apt/lists 2>/dev/null' || true)
[ -z "$tools" ] || fail "compiler, linker or apt cache left in the image: $(echo $tools)"
ok "no compiler, no -dev package, no apt cache ($(echo "$pkgs" | wc -l) packages)"

# ---- SIGTERM: drain, exit 0 within the grace --------------------------------
t0=$(date +%s)
"$docker" kill -s TERM "$name" > /dev/null
code=$(timeout "$grace" "$docker" wait "$name") || fail "certvald did not exit within $grace s of SIGTERM"
took=$(( $(date +%s) - t0 ))
[ "$code" = 0 ] || fail "certvald exited $code after SIGTERM (want 0)"
log=$("$docker" logs "$name" 2>&1)
grep -q '"draining: ' <<< "$log" || fail "no 'draining:' line in the log after SIGTERM"
grep -q '"health: NOT_SERVING"' <<< "$log" || fail "health did not go NOT_SERVING at SIGTERM"
ok "SIGTERM: drained, exit 0 in $took s"

size=$("$docker" image inspect -f '{{.Size}}' "$image")
echo "image-test: PASS $image, $(( size / 1000000 )) MB, in $(( $(date +%s) - start_time )) s"
