#!/usr/bin/env bash
# certval developer entry point (the README's quick start).
#
#   bash deploy/dev.sh demo   install packages, build, run certvald --demo
#   bash deploy/dev.sh test   install packages, build, run the whole test suite
#   bash deploy/dev.sh deps | build
#
# Packages come from Debian's archive only (deploy/packages-build.txt).
# BUILD_DIR (default: build) and BUILD_TYPE (default: RelWithDebInfo) may be set.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
build_dir=${BUILD_DIR:-build}
build_type=${BUILD_TYPE:-RelWithDebInfo}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

deps() {
    mapfile -t pkgs < deploy/packages-build.txt
    missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "== installing ${#missing[@]} Debian packages: ${missing[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    # kubectl (for the manifest test) from Debian's kubernetes-client, unless
    # some kubectl is already installed: the package would clash with it.
    if ! command -v kubectl >/dev/null 2>&1; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends kubernetes-client
    fi
}

build() {
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" ${CMAKE_ARGS:-}
    cmake --build "$build_dir" -j"$(nproc)"
}

case "${1:-}" in
deps) deps ;;
build) deps; build ;;
demo)
    deps
    build
    exec "$build_dir/server/certvald" --demo --demo-dir "${DEMO_DIR:-$build_dir/demo}" \
        --listen "${DEMO_LISTEN:-127.0.0.1:50051}"
    ;;
test)
    deps
    build
    cd "$build_dir"
    ctest --output-on-failure -j"$(nproc)" ${CTEST_ARGS:-}
    ;;
*)
    echo "usage: bash deploy/dev.sh demo|test|deps|build" >&2
    exit 2
    ;;
esac
