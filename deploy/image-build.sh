#!/usr/bin/env bash
# Builds the certval image from deploy/Dockerfile with a classic
# `docker build` (Docker 20.10 as in Debian 12: no buildx).
#
#   bash deploy/image-build.sh [--tests] [TAG]     default TAG: certval:dev
#
# The build context is assembled in a temporary folder from the files git
# tracks (a host build/ folder or stray files never reach the image), plus,
# with --tests, the NIST PKITS data at testdata/pkits (from
# $CERTVAL_PKITS_DIR, default ../shared/testdata/pkits next to the checkout):
# the build stage then runs the unit tests (CERTVAL_RUN_TESTS=ON).
# The base image (DEBIAN_IMAGE, default debian:12) must exist in the daemon:
# deploy/debian-base.sh makes it. $DOCKER chooses the docker client.
# Extra `docker build` arguments may be given in $DOCKER_BUILD_ARGS.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
docker=${DOCKER:-docker}
tests=OFF
if [ "${1:-}" = "--tests" ]; then
    tests=ON
    shift
fi
tag=${1:-certval:dev}

ctx=$(mktemp -d /tmp/certval-context.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
# Tracked files as they are in the working tree (a clean checkout in CI).
git -C "$here" ls-files -z | (cd "$here" && xargs -0 cp --parents -t "$ctx" --)
if [ "$tests" = ON ]; then
    pkits=${CERTVAL_PKITS_DIR:-$here/../shared/testdata/pkits}
    if [ ! -f "$pkits/manifest.tsv" ]; then
        echo "image-build.sh: --tests needs the PKITS data (manifest.tsv) in $pkits;" \
            "set CERTVAL_PKITS_DIR" >&2
        exit 1
    fi
    mkdir -p "$ctx/testdata"
    cp -r "$pkits" "$ctx/testdata/pkits"
fi

echo "== docker build $tag (CERTVAL_RUN_TESTS=$tests, context $(du -sh "$ctx" | cut -f1))"
start=$(date +%s)
# shellcheck disable=SC2086 # DOCKER_BUILD_ARGS is a list of words
"$docker" build -f "$ctx/deploy/Dockerfile" --build-arg CERTVAL_RUN_TESTS="$tests" \
    ${DOCKER_BUILD_ARGS:-} -t "$tag" "$ctx"
echo "== $tag built in $(( $(date +%s) - start )) s," \
    "$("$docker" image inspect -f '{{.Size}}' "$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
