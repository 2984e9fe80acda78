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
#   - the front ends (deploy/image_frontends.py): Debian's nginx and HAProxy
#     on the host, from deploy/nginx/ and deploy/haproxy/ as the integration
#     tests render them, in front of a recording upstream and asking the
#     container's frontends listeners (added to the ConfigMap's file,
#     published on 127.0.0.1); Envoy's Check on the gRPC port (SKIP line
#     without npm): ALLOW and REQUIRE_PASSWORD reach the upstream with
#     certval's X-Certval-Decision, revoked/untrusted/... are refused (403);
#   - SIGTERM drains and the container exits 0 within the grace;
#   - the fleet: three members of the etcd image (deploy/etcd/Dockerfile)
#     with the fleet-etcd component's StatefulSet arguments and two certval
#     pods with the component's certval.yaml, on a docker network of their
#     own: SERVING after the first read of etcd (not the local copy), a
#     deny entry written through one pod's admin API is DENY REVOKED on
#     both (the second started after the write), fleet-status agrees, the
#     entry's removal reaches the other pod.
# and prints the image sizes. Any failure prints "image-test: FAIL: ..." with
# the container's last log lines and exits 1. It removes the container and
# its temporary folder whatever happens; likewise the fleet's containers
# and network.
#
# Needs: a docker daemon ($DOCKER, default docker; $DOCKER_HOST), the etcd
# image ($ETCD_IMAGE, default certval-etcd:dev: docker build -t
# certval-etcd:dev deploy/etcd), kubectl (>= 1.21 renders the component;
# an older one makes the script read the component's files as written),
# /usr/bin/python3 with PyYAML and grpcio, nginx, haproxy, openssl, npm
# (optional), and a host build of certvalctl ($CERTVALCTL, default
# build/server/certvalctl: bash deploy/dev.sh build).
# $SECCOMP_PROFILE chooses another profile (docs/deployment.md shows a
# deliberate break with it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
image=${1:-certval:dev}
docker=${DOCKER:-docker}
ctl=${CERTVALCTL:-$here/build/server/certvalctl}
etcd_image=${ETCD_IMAGE:-certval-etcd:dev}
seccomp=${SECCOMP_PROFILE:-$here/deploy/seccomp/certval-io-uring.json}
uid=10001
grace=40 # > drain_grace_seconds (20) + start-up margin; the pod's is 35 with preStop

t=$(mktemp -d /tmp/certval-image-test.XXXXXX)
name=certval-image-test-$$
net=""
containers=() # every container started, removed at exit
cur=""        # the one whose log a failure shows
start_time=$(date +%s)

cleanup() {
    for c in "${containers[@]}"; do
        "$docker" rm -f "$c" > /dev/null 2>&1 || true
    done
    if [ -n "$net" ]; then
        "$docker" network rm "$net" > /dev/null 2>&1 || true
    fi
    rm -rf "$t"
}
trap cleanup EXIT

fail() {
    echo "image-test: FAIL: $*" >&2
    if [ -n "$cur" ]; then
        echo "---- last lines of the container's log ($cur):" >&2
        "$docker" logs --tail 40 "$cur" 2>&1 | sed 's/^/    /' >&2 || true
    fi
    exit 1
}
ok() { echo "image-test: ok   $*"; }

[ -x "$ctl" ] || fail "no certvalctl at $ctl: build it (bash deploy/dev.sh build) or set CERTVALCTL"
"$docker" image inspect "$image" > /dev/null 2>&1 || fail "no image $image (bash deploy/image-build.sh)"
"$docker" image inspect "$etcd_image" > /dev/null 2>&1 ||
    fail "no etcd image $etcd_image (docker build -t $etcd_image deploy/etcd, or set ETCD_IMAGE)"
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
head -c 24 /dev/urandom | base64 > "$t/token"

# config_from OUT FILE...: the certval-config ConfigMap's certval.yaml from
# the manifests in FILE..., as they are, except that the placeholder CRL
# URLs are pointed at a closed port inside the container, so nothing leaves
# the machine; the CRLs come in through the crls volume instead.
config_from() {
    /usr/bin/python3 - "$@" << 'PY' || fail "no certval-config ConfigMap in $*"
import sys, yaml
docs = [d for f in sys.argv[2:] for d in yaml.safe_load_all(open(f)) if d]
cm = [d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"].endswith("certval-config")]
text = cm[0]["data"]["certval.yaml"]
text = text.replace("http://crl.example.com/", "http://127.0.0.1:1/")
open(sys.argv[1], "w").write(text)
PY
    grep -q "127.0.0.1:1/" "$1" || fail "the ConfigMap's CRL fetch URLs changed: update image-test.sh"
}

# pod_volumes DIR CONFIG: the pod's volumes in DIR (config, anchors, admin,
# crls, state), filled from CONFIG (a file named certval.yaml), the demo PKI
# and the token.
pod_volumes() {
    local d=$1
    mkdir -p "$d/config/anchors" "$d/config/admin" "$d/crls" "$d/state" "$d/crls-in"
    kubelet_volume "$d/config" 2026_01_01_00_00_00.1 "$2"
    kubelet_volume "$d/anchors" 2026_01_01_00_00_00.2 \
        "$pki/tenant-ca.pem" "$pki/device-root.pem" "$pki/device-issuing-ca.pem"
    kubelet_volume "$d/admin" 2026_01_01_00_00_00.3 "$t/token"
    # Secret defaultMode 0440 with fsGroup 10001, as in deployment.yaml.
    chgrp "$uid" "$d/admin/..2026_01_01_00_00_00.3/token"
    chmod 0440 "$d/admin/..2026_01_01_00_00_00.3/token"
    chown "$uid:$uid" "$d/crls" "$d/state"
    chmod 0755 "$t" "$d" "$d/config" "$d/anchors" "$d/admin"
}

# crls_in DIR: the demo CRLs arrive in DIR's crls volume, renamed in, so
# certvald never sees half a file.
crls_in() {
    for c in tenant-ca device-issuing-ca device-root; do
        cp "$pki/$c.crl" "$1/crls-in/$c.crl"
        chown "$uid:$uid" "$1/crls-in/$c.crl"
        mv "$1/crls-in/$c.crl" "$1/crls/$c.crl"
    done
}

# run_pod NAME DIR [DOCKER-RUN-ARGS...]: certvald from the image, run as the
# Deployment does, on DIR's volumes, ports on 127.0.0.1 only.
run_pod() {
    local n=$1 d=$2
    shift 2
    containers+=("$n")
    cur=$n
    "$docker" run -d --name "$n" \
        --user "$uid:$uid" --read-only --cap-drop ALL \
        --security-opt "seccomp=$seccomp" --security-opt no-new-privileges \
        --tmpfs /tmp:rw,size=16m \
        -v "$d/config:/etc/certval:ro" \
        -v "$d/anchors:/etc/certval/anchors:ro" \
        -v "$d/admin:/etc/certval/admin:ro" \
        -v "$d/crls:/var/lib/certval/crls" \
        -v "$d/state:/var/lib/certval/state" \
        -p 127.0.0.1::50051 -p 127.0.0.1::50052 -p 127.0.0.1::9090 "$@" \
        "$image" > /dev/null || fail "docker run $n"
}

# hostport CONTAINER PORT: where CONTAINER's PORT is published.
hostport() {
    "$docker" port "$1" "$2/tcp" | awk -F: 'NR == 1 { print $NF }'
}
running() { [ "$("$docker" inspect -f '{{.State.Running}}' "$cur")" = true ]; }
exited() {
    fail "certvald exited during start-up (exit code $("$docker" inspect -f '{{.State.ExitCode}}' "$cur"))"
}

# health [WANT]: prints the health status of the pod $cur (gRPC port $at)
# once it equals WANT (or anything once it answers), for up to 30 s; fails
# if certvald exits meanwhile.
health() {
    local want=${1:-} out=""
    for _ in $(seq 150); do
        running || exited
        out=$("$ctl" health --server "127.0.0.1:$at" 2>/dev/null || true)
        if [ -n "$out" ] && { [ -z "$want" ] || [ "$out" = "$want" ]; }; then
            echo "$out"
            return 0
        fi
        sleep 0.2
    done
    fail "health of $cur did not become ${want:-reachable} within 30 s (last answer: '${out}')"
}

# The ConfigMap's certval.yaml, as `kubectl kustomize` renders the example
# overlay, plus a frontends section: the nginx auth_request and HAProxy SPOE
# listeners, and a host map for Envoy's Check (it is on by default).
kubectl kustomize "$here/deploy/k8s/overlays/example" > "$t/rendered.yaml" 2> "$t/kustomize.err" ||
    fail "kubectl kustomize deploy/k8s/overlays/example: $(cat "$t/kustomize.err")"
config_from "$t/certval.yaml" "$t/rendered.yaml"
cat >> "$t/certval.yaml" << 'EOF'

# Added by deploy/image-test.sh: the front ends (docs/frontends.md).
frontends:
  nginx:
    listen: "0.0.0.0:9191"
  haproxy:
    listen: "0.0.0.0:12345"
  tenant_by_host:
    - {host: login.acme.example, tenant: acme}
EOF
pod=$t/pod
pod_volumes "$pod" "$t/certval.yaml"
run_pod "$name" "$pod" -p 127.0.0.1::9191 -p 127.0.0.1::12345

sleep 0.5
running || exited
at=$(hostport "$name" 50051)
grpc=$at
admin=$(hostport "$name" 50052)
metrics=$(hostport "$name" 9090)
nginx=$(hostport "$name" 9191)
haproxy=$(hostport "$name" 12345)
for p in "$grpc" "$admin" "$metrics" "$nginx" "$haproxy"; do
    [ -n "$p" ] || fail "a port is not published"
done
"$docker" port "$name" | grep -qv '127.0.0.1:' && fail "a port is published beyond 127.0.0.1"
ok "container $name running, ports on 127.0.0.1: grpc $grpc, admin $admin, metrics $metrics," \
    "nginx auth_request $nginx, HAProxy SPOE $haproxy"

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
crls_in "$pod"
health SERVING > /dev/null
ok "health SERVING once anchors and CRLs are in ($(( $(date +%s) - start_time )) s after start)"

# ---- verdicts through a client outside the container -----------------------
# verdict CHAIN TENANT DEVICE: prints the verdict ("ALLOW", "DENY REVOKED", ...)
# certvalctl validate got from the pod whose gRPC port is $at.
verdict() {
    local out
    out=$("$ctl" validate --server "127.0.0.1:$at" --tenant "$2" ${3:+--device "$3"} \
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
    [ "$got" = "$4" ] || fail "verdict of $cur for $1 (tenant $2${3:+, device $3}): want '$4', got '$got'"
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

# get URL: the body of an HTTP GET; scrape [PORT]: /metrics (default: $metrics).
get() { /usr/bin/python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"; }
scrape() { get "http://127.0.0.1:${1:-$metrics}/metrics"; }
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
mkdir "$pod/config/..2026_01_01_00_01_00.4"
cp "$t/certval-new.yaml" "$pod/config/..2026_01_01_00_01_00.4/certval.yaml"
ln -s ..2026_01_01_00_01_00.4 "$pod/config/..data_tmp"
mv -T "$pod/config/..data_tmp" "$pod/config/..data" # atomic, as the kubelet does
rm -rf "$pod/config/..2026_01_01_00_00_00.1"
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

# ---- the front ends, on the host, asking the container ---------------------
# After the swap, so the listeners are also shown to survive a reload, and
# globex is a configured tenant, as in the integration tests' configuration.
DOCKER=$docker CERTVALCTL=$ctl /usr/bin/python3 "$here/deploy/image_frontends.py" "$name" "$pki" \
    "$t/token" "$grpc" "$admin" "$metrics" "$nginx" "$haproxy" ||
    fail "the front ends against the container (the failing check's output is above)"
[ "$(health)" = SERVING ] || fail "health left SERVING during the front-end checks"

# ---- what is loaded, what is installed -------------------------------------
maps=$("$docker" exec "$name" cat /proc/1/maps) || fail "docker exec cat /proc/1/maps"
if echo "$maps" | grep -Eq 'libssl\.so\.3|libcrypto\.so\.3'; then
    fail "OpenSSL is loaded into certvald: $(echo "$maps" | grep -Eo '/[^ ]*lib(ssl|crypto)\.so\.3' | sort -u)"
fi
grep -q '/libcrypto\.so\.0' <<< "$maps" || fail "BoringSSL's libcrypto.so.0 is not mapped in certvald"
ok "/proc/1/maps: BoringSSL mapped ($(echo "$maps" | grep -Eo '/[^ ]*/libcrypto\.so\.0' | sort -u)), no libssl.so.3/libcrypto.so.3"

# image_is_clean IMAGE: no compiler, linker, -dev package or apt cache in IMAGE.
image_is_clean() {
    local pkgs bad tools
    pkgs=$("$docker" run --rm --entrypoint dpkg-query "$1" -W -f '${Package}\n') || fail "dpkg-query in $1"
    bad=$(echo "$pkgs" | grep -E -- '-dev$|^(gcc|g\+\+|cpp|clang|llvm|binutils|build-essential|make|cmake)(-[0-9.]+)?$' || true)
    [ -z "$bad" ] || fail "build tools or -dev packages in $1: $(echo $bad)"
    tools=$("$docker" run --rm --entrypoint sh "$1" -c \
        'for c in cc gcc c++ g++ clang ld as make; do command -v $c; done; ls /var/cache/apt/*.bin /var/cache/apt/archives/*.deb 2>/dev/null; ls /var/lib/apt/lists 2>/dev/null' || true)
    [ -z "$tools" ] || fail "compiler, linker or apt cache left in $1: $(echo $tools)"
    ok "$1: no compiler, no -dev package, no apt cache ($(echo "$pkgs" | wc -l) packages)"
}
image_is_clean "$image"
image_is_clean "$etcd_image"

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

# ---- the fleet: the etcd component's members and pods on a network --------
# certval.yaml and etcd's arguments as `kubectl kustomize` renders the base
# with the fleet-etcd component; a kubectl too old for components (Debian
# 12's 1.20) gets the component's files as written, which is the same text
# (config-patch.yaml is the whole file; etcd.yaml is not patched).
fleet_start=$(date +%s)
comp=$here/deploy/k8s/components/fleet-etcd
mkdir "$t/fleet-overlay" "$t/fleet"
rel=$(realpath --relative-to="$t/fleet-overlay" "$here/deploy/k8s")
printf '%s\n' "apiVersion: kustomize.config.k8s.io/v1beta1" "kind: Kustomization" \
    "resources:" "  - $rel/base" "components:" "  - $rel/components/fleet-etcd" \
    > "$t/fleet-overlay/kustomization.yaml"
kminor=$(kubectl version --client -o json 2> /dev/null |
    /usr/bin/python3 -c 'import json, re, sys; print(re.sub(r"\D", "", json.load(sys.stdin)["clientVersion"]["minor"]))' ||
    echo 0)
if kubectl kustomize "$t/fleet-overlay" > "$t/fleet.yaml" 2> "$t/kustomize.err"; then
    fleet_manifests=("$t/fleet.yaml")
    how="rendered by kubectl kustomize (base + components/fleet-etcd)"
elif [ "$kminor" -lt 21 ]; then
    echo "image-test: note: kubectl 1.$kminor cannot render components" \
        "($(head -c 200 "$t/kustomize.err" | tr '\n' ' ')); reading the component's files as written"
    fleet_manifests=("$comp/config-patch.yaml" "$comp/etcd.yaml")
    how="from the component's files (kubectl 1.$kminor is too old for components)"
else
    fail "kubectl kustomize of the base with components/fleet-etcd: $(cat "$t/kustomize.err")"
fi
config_from "$t/fleet/certval.yaml" "${fleet_manifests[@]}"
# The StatefulSet's container: its command, then its arguments, one a line.
/usr/bin/python3 - "$t/etcd-args" "${fleet_manifests[@]}" << 'EOF' || fail "no certval-etcd StatefulSet in ${fleet_manifests[*]}"
import sys, yaml
docs = [d for f in sys.argv[2:] for d in yaml.safe_load_all(open(f)) if d]
sts = [d for d in docs if d.get("kind") == "StatefulSet" and d["metadata"]["name"] == "certval-etcd"]
c = sts[0]["spec"]["template"]["spec"]["containers"][0]
assert sts[0]["spec"]["replicas"] == 3 and len(c["command"]) == 1
open(sys.argv[1], "w").write("\n".join(c["command"] + c["args"]) + "\n")
EOF
etcd_command=$(head -1 "$t/etcd-args")
members=$(grep -o -- '--initial-cluster=.*' "$t/etcd-args" | tr ',' '\n' | sed -E 's/^(--initial-cluster=)?([^=]*)=.*/\2/')
[ "$(echo "$members" | wc -l)" = 3 ] || fail "the StatefulSet's --initial-cluster names $(tr "\n" " " <<< "$members"), not 3 members"

net=certval-image-test-$$
"$docker" network create "$net" > /dev/null || fail "docker network create $net"
# Each member as its pod would be: POD_NAME, the StatefulSet's arguments,
# its DNS name in the headless Service (POD.certval-etcd) as a network
# alias, uid 10002, read-only root, no capabilities, a data volume.
for m in $members; do
    args=()
    while IFS= read -r a; do
        args+=("${a//\$(POD_NAME)/$m}")
    done < <(tail -n +2 "$t/etcd-args")
    mkdir -m 0700 "$t/$m"
    chown 10002:10002 "$t/$m"
    containers+=("$name-$m")
    cur=$name-$m
    "$docker" run -d --name "$name-$m" --network "$net" --network-alias "$m.certval-etcd" \
        --user 10002:10002 --read-only --cap-drop ALL --security-opt no-new-privileges \
        -v "$t/$m:/var/lib/etcd" -e "POD_NAME=$m" -p 127.0.0.1::2379 \
        --entrypoint "$etcd_command" "$etcd_image" "${args[@]}" > /dev/null || fail "docker run $m"
done
# The StatefulSet's readiness probe: GET /health on 2379, every member.
for m in $members; do
    cur=$name-$m
    port=$(hostport "$cur" 2379)
    h=""
    for _ in $(seq 150); do
        [ "$("$docker" inspect -f '{{.State.Running}}' "$cur")" = true ] || fail "etcd member $m exited"
        h=$(get "http://127.0.0.1:$port/health" 2> /dev/null || true)
        grep -q '"health": *"true"' <<< "$h" && break
        sleep 0.2
    done
    grep -q '"health": *"true"' <<< "$h" || fail "etcd member $m not healthy within 30 s ($h)"
done
ok "etcd: 3 members of $etcd_image with the StatefulSet's arguments ($how), /health true on each," \
    "$(( $(date +%s) - fleet_start )) s"

# fleet_pod NAME: a certval pod with the component's certval.yaml on the
# fleet's network, CRLs already in its volume (so only etcd holds SERVING
# back); sets at/fadmin/fmetrics to its published ports once SERVING.
fleet_pod() {
    pod_volumes "$t/$1" "$t/fleet/certval.yaml"
    crls_in "$t/$1"
    run_pod "$name-$1" "$t/$1" --network "$net"
    sleep 0.5
    running || exited
    at=$(hostport "$cur" 50051)
    fadmin=$(hostport "$cur" 50052)
    fmetrics=$(hostport "$cur" 9090)
    "$docker" port "$cur" | grep -qv '127.0.0.1:' && fail "a port of $cur is published beyond 127.0.0.1"
    health SERVING > /dev/null
    local m
    m=$(scrape "$fmetrics") || fail "GET /metrics of $cur"
    grep -qx 'certval_fleet_connected 1' <<< "$m" || fail "$cur SERVING but not connected to etcd:" \
        "$(grep '^certval_fleet_' <<< "$m" | tr '\n' ' ')"
    grep -qx 'certval_fleet_local_copy 0' <<< "$m" || fail "$cur SERVING from its local copy, not from etcd"
}
admin_at() { "$ctl" admin --server "$1" --token-file "$t/token" "${@:2}"; }

fleet_pod pod-a
a_grpc=$at a_admin=$fadmin
out=$(admin_at "127.0.0.1:$a_admin" fleet-status 2>&1) || fail "fleet-status of pod-a: $out"
grep -q 'FOLLOWING' <<< "$out" || fail "pod-a is not FOLLOWING etcd: $out"
expect device-acme-dev1-chain.pem acme dev-001 ALLOW
ok "pod-a SERVING after its first read of etcd (connected, not the local copy), fleet-status FOLLOWING"

# The lost-device runbook (docs/operations.md): one deny-add through one pod.
out=$(admin_at "127.0.0.1:$a_admin" deny-add --leaf "$pki/device-acme-dev1.pem" \
    --reason "lost device, image-test" 2>&1) || fail "deny-add through pod-a: $out"
expect device-acme-dev1-chain.pem acme dev-001 "DENY REVOKED"
keys=$("$docker" exec "$name-$(echo "$members" | tail -1)" etcdctl get --prefix /certval/s/deny/ --keys-only) ||
    fail "etcdctl get in an etcd member"
[ -n "$keys" ] || fail "deny-add answered '$out' but etcd holds no /certval/s/deny/ key"
# A pod started after the write denies it as soon as it reports SERVING:
# its state folder is empty, only etcd has the entry.
fleet_pod pod-b
b_admin=$fadmin
expect device-acme-dev1-chain.pem acme dev-001 "DENY REVOKED"
out=$(admin_at "127.0.0.1:$a_admin,127.0.0.1:$b_admin" fleet-status 2>&1) || fail "fleet-status of both pods: $out"
grep -q 'fleet agrees: 2 pod(s)' <<< "$out" || fail "fleet-status: $out"
ok "deny entry through pod-a's admin API: DENY REVOKED on pod-a and on pod-b (started after it)," \
    "in etcd, $(grep 'fleet agrees' <<< "$out")"
# And back: removed through pod-b, pod-a allows the device again.
admin_at "127.0.0.1:$b_admin" deny-remove --leaf "$pki/device-acme-dev1.pem" > /dev/null 2>&1 ||
    fail "deny-remove through pod-b"
at=$a_grpc cur=$name-pod-a
for _ in $(seq 25); do
    [ "$(verdict device-acme-dev1-chain.pem acme dev-001)" = ALLOW ] && break
    sleep 0.2
done
expect device-acme-dev1-chain.pem acme dev-001 ALLOW
ok "deny entry removed through pod-b: pod-a ALLOWs the device again ($(( $(date +%s) - fleet_start )) s for the fleet)"

size=$("$docker" image inspect -f '{{.Size}}' "$image")
esize=$("$docker" image inspect -f '{{.Size}}' "$etcd_image")
echo "image-test: PASS $image, $(( size / 1000000 )) MB; $etcd_image, $(( esize / 1000000 )) MB;" \
    "in $(( $(date +%s) - start_time )) s"
