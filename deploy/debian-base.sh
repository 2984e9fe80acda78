#!/usr/bin/env bash
# Makes the debian:12 base image from Debian's archive with debootstrap and
# imports it into the Docker daemon at $DOCKER_HOST (root; needs debootstrap).
#
#   bash deploy/debian-base.sh [TAG]          default TAG: debian:12
#
# The archive is the one this machine's apt already uses (deploy/apt-mirror.sh;
# $CERTVAL_DEBIAN_MIRROR overrides it): no address is written here. The base
# gets the same bookworm, bookworm-updates and bookworm-security entries the
# machine has. $DOCKER chooses the docker client (default: docker on PATH).
# Nothing is cached: the root tree is made in a temporary folder and removed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tag=${1:-debian:12}
docker=${DOCKER:-docker}
suite=bookworm

mirror=$(sh "$here/apt-mirror.sh" "$suite")
tmp=$(mktemp -d /tmp/certval-debootstrap.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
root="$tmp/root"

echo "== debootstrap --variant=minbase $suite from $mirror"
start=$(date +%s)
if ! debootstrap --variant=minbase "$suite" "$root" "$mirror" > "$tmp/debootstrap.log" 2>&1; then
    tail -30 "$tmp/debootstrap.log" >&2
    [ -f "$root/debootstrap/debootstrap.log" ] && tail -30 "$root/debootstrap/debootstrap.log" >&2
    echo "debian-base.sh: debootstrap of $suite from $mirror failed" >&2
    exit 1
fi

{
    echo "deb $mirror $suite main"
    for extra in "$suite-updates" "$suite-security"; do
        if uri=$(sh "$here/apt-mirror.sh" "$extra" 2>/dev/null); then
            echo "deb $uri $extra main"
        fi
    done
} > "$root/etc/apt/sources.list"
# No package lists or downloaded packages in the base itself.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

tar -C "$root" --numeric-owner -c . | "$docker" import - "$tag" > /dev/null
echo "== $tag imported in $(( $(date +%s) - start )) s:" \
    "$("$docker" image inspect -f '{{.Size}}' "$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
