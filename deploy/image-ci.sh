#!/usr/bin/env bash
# CI's image step (root): starts a private dockerd from Debian's docker.io,
# makes the debian:12 base with debootstrap, builds the image with the unit
# tests on and the fleet's etcd image (deploy/etcd/Dockerfile, Debian's
# etcd-server on the same base), runs the smoke test, and stops the daemon
# again.
#
#   bash deploy/image-ci.sh
#
# Debian's binaries are used by path (/usr/bin/docker, /usr/sbin/dockerd),
# whatever other docker is first on PATH. The daemon's data, state and socket
# live in a temporary folder, removed at the end (KEEP_DOCKER_ROOT=DIR keeps
# them in DIR instead, so a rerun skips the base and reuses the layer cache).
# $DOCKERD_STORAGE_DRIVER forces a storage driver (dockerd picks overlay2
# where the filesystem allows it, else falls back). Needs: docker.io,
# debootstrap, kubectl, /usr/bin/python3 with PyYAML and grpcio, nginx,
# haproxy, openssl, npm (else the Envoy check prints SKIP),
# build/server/certvalctl.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export DOCKER=/usr/bin/docker
dockerd=/usr/sbin/dockerd
image=certval:ci
etcd_image=certval-etcd:ci

for b in "$DOCKER" "$dockerd"; do
    [ -x "$b" ] || { echo "image-ci: $b missing: apt-get install docker.io" >&2; exit 1; }
done
command -v debootstrap > /dev/null || { echo "image-ci: apt-get install debootstrap" >&2; exit 1; }

if [ -n "${KEEP_DOCKER_ROOT:-}" ]; then
    work=$KEEP_DOCKER_ROOT
    mkdir -p "$work"
else
    work=$(mktemp -d /tmp/certval-dockerd.XXXXXX)
fi
export DOCKER_HOST=unix://$work/docker.sock
dockerd_pid=""

stop_dockerd() {
    if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2> /dev/null; then
        kill -TERM "$dockerd_pid"
        for _ in $(seq 150); do
            kill -0 "$dockerd_pid" 2> /dev/null || break
            sleep 0.2
        done
        kill -0 "$dockerd_pid" 2> /dev/null && kill -KILL "$dockerd_pid"
        wait "$dockerd_pid" 2> /dev/null || true
    fi
    if [ -z "${KEEP_DOCKER_ROOT:-}" ]; then
        rm -rf "$work"
    fi
}
trap stop_dockerd EXIT

"$dockerd" --data-root "$work/root" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
    --host "$DOCKER_HOST" ${DOCKERD_STORAGE_DRIVER:+--storage-driver "$DOCKERD_STORAGE_DRIVER"} \
    > "$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 150); do
    "$DOCKER" info > /dev/null 2>&1 && break
    if ! kill -0 "$dockerd_pid" 2> /dev/null; then
        tail -30 "$work/dockerd.log" >&2
        echo "image-ci: dockerd exited at start-up (log above)" >&2
        exit 1
    fi
    sleep 0.2
done
"$DOCKER" info > /dev/null 2>&1 || { tail -30 "$work/dockerd.log" >&2; echo "image-ci: dockerd not answering after 30 s" >&2; exit 1; }
echo "== dockerd $("$DOCKER" version -f '{{.Server.Version}}'), storage driver" \
    "$("$DOCKER" info -f '{{.Driver}}'), data in $work"

t0=$(date +%s)
if ! "$DOCKER" image inspect debian:12 > /dev/null 2>&1; then
    bash deploy/debian-base.sh debian:12
fi
t1=$(date +%s)
bash deploy/image-build.sh --tests "$image" > "$work/build.log" 2>&1 || {
    tail -60 "$work/build.log" >&2
    echo "image-ci: docker build failed (last lines above)" >&2
    exit 1
}
grep -E '^== |tests passed|tests failed' "$work/build.log"
t2=$(date +%s)
"$DOCKER" build -t "$etcd_image" deploy/etcd > "$work/etcd-build.log" 2>&1 || {
    tail -40 "$work/etcd-build.log" >&2
    echo "image-ci: docker build of deploy/etcd failed (last lines above)" >&2
    exit 1
}
echo "== $etcd_image built in $(( $(date +%s) - t2 )) s," \
    "$("$DOCKER" image inspect -f '{{.Size}}' "$etcd_image" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
t3=$(date +%s)
ETCD_IMAGE=$etcd_image CERTVALCTL=${CERTVALCTL:-$here/build/server/certvalctl} \
    bash deploy/image-test.sh "$image" || {
    # docker-proxy and the daemon log what a container's network did.
    echo "---- last lines of dockerd's log ($work/dockerd.log):" >&2
    tail -40 "$work/dockerd.log" | sed 's/^/    /' >&2
    exit 1
}
t4=$(date +%s)
echo "== image: base $(( t1 - t0 )) s, build (unit tests on) $(( t2 - t1 )) s," \
    "etcd image $(( t3 - t2 )) s, smoke test $(( t4 - t3 )) s"
