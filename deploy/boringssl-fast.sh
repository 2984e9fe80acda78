#!/usr/bin/env bash
# Rebuilds Debian's BoringSSL (libcrypto.so.0, libssl.so.0) from Debian's own
# source package without -DOPENSSL_SMALL, which in Debian's build disables
# the nistz256 assembly for P-256 (PLATFORM.md). Same version and patches as
# the installed android-libboringssl, same compiler, flags and soname: only
# that one define differs, and it is in no public header, so the result is
# ABI-identical (checked below against the packaged library's symbols).
#
#   bash deploy/boringssl-fast.sh [--tests] OUT_DIR
#   cmake -S . -B build-fast -DCERTVAL_BORINGSSL_DIR=OUT_DIR
#
# OUT_DIR gets include/ (the source's headers) and lib/ (libcrypto.so.0,
# libssl.so.0 and their .so links). --tests also builds BoringSSL's own
# crypto_test from the same source against the rebuilt libraries and runs it.
#
# The source comes with `apt-get source`, from a deb-src entry made at run
# time from the archive this machine's apt already uses (deploy/apt-mirror.sh)
# and written to a temporary sources file with its own lists and cache: the
# system's apt configuration is not touched and no archive address is
# written into the repository. Needs (deploy/packages-build.txt): dpkg-dev,
# debhelper, dh-exec, clang, lld, libgtest-dev (for --tests) and the
# installed android-libboringssl (whose version is rebuilt).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tests=0
if [ "${1:-}" = "--tests" ]; then
    tests=1
    shift
fi
[ $# -eq 1 ] || { echo "usage: bash deploy/boringssl-fast.sh [--tests] OUT_DIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd) # the build runs elsewhere: keep OUT_DIR absolute
pkg=android-platform-external-boringssl

die() { echo "boringssl-fast.sh: $*" >&2; exit 1; }
for c in dpkg-source dh_auto_build dh-exec clang; do
    command -v "$c" > /dev/null || die "$c is missing: apt-get install dpkg-dev debhelper dh-exec clang lld libgtest-dev"
done
version=$(dpkg-query -W -f '${source:Version}' android-libboringssl 2> /dev/null) ||
    die "android-libboringssl is not installed: its version is the one rebuilt"
packaged=$(dpkg-query -L android-libboringssl | grep '/libcrypto\.so\.0$' | head -1)

tmp=$(mktemp -d /tmp/certval-boringssl.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/src"
: > "$tmp/sources.list"
for suite in bookworm bookworm-updates bookworm-security; do
    if uri=$(sh "$here/apt-mirror.sh" "$suite" 2> /dev/null); then
        echo "deb-src $uri $suite main" >> "$tmp/sources.list"
    fi
done
[ -s "$tmp/sources.list" ] || die "no Debian archive in this machine's apt sources to make a deb-src entry from (deploy/apt-mirror.sh)"
apt_opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o APT::Sandbox::User=root)

echo "== $pkg $version: apt-get source from $(awk '{ print $2, $3 }' "$tmp/sources.list" | paste -sd, -)"
start=$(date +%s)
if ! apt-get "${apt_opts[@]}" -q update > "$tmp/apt.log" 2>&1 ||
    ! (cd "$tmp/src" && apt-get "${apt_opts[@]}" -q source --only-source "$pkg=$version") >> "$tmp/apt.log" 2>&1; then
    tail -20 "$tmp/apt.log" >&2
    die "cannot get the source package $pkg=$version (deb-src of the sources above); see the apt output above"
fi
srcdir=$(find "$tmp/src" -mindepth 1 -maxdepth 1 -type d -name "$pkg-*" | head -1)
[ -n "$srcdir" ] || die "apt-get source left no $pkg-* folder"
cd "$srcdir"

# The one change: drop -DOPENSSL_SMALL from debian/rules' CPPFLAGS.
grep -q '^  -DOPENSSL_SMALL \\$' debian/rules ||
    die "debian/rules of $version no longer adds -DOPENSSL_SMALL as expected: check the build by hand"
sed -i '/^  -DOPENSSL_SMALL \\$/d' debian/rules
! grep -q OPENSSL_SMALL debian/rules || die "-DOPENSSL_SMALL is still in debian/rules"

echo "== building libcrypto.so.0 and libssl.so.0 with Debian's debian/rules, without -DOPENSSL_SMALL"
targets=(libcrypto.so libssl.so)
[ "$tests" = 1 ] && targets+=(libtest_support.so crypto_test)
if ! DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" debian/rules "${targets[@]}" > "$tmp/build.log" 2>&1; then
    tail -30 "$tmp/build.log" >&2
    die "build failed (last lines above)"
fi
grep -q -- '-DOPENSSL_SMALL' "$tmp/build.log" && die "a compile line still has -DOPENSSL_SMALL"
echo "== built in $(( $(date +%s) - start )) s"

# Same soname and the same exported symbols as the packaged library.
soname=$(objdump -p debian/out/libcrypto.so.0 | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = libcrypto.so.0 ] || die "rebuilt libcrypto has soname '$soname', not libcrypto.so.0"
if [ -n "$packaged" ]; then
    nm -D --defined-only "$packaged" | awk '{ print $NF }' | sort > "$tmp/sym.packaged"
    nm -D --defined-only debian/out/libcrypto.so.0 | awk '{ print $NF }' | sort > "$tmp/sym.rebuilt"
    if ! cmp -s "$tmp/sym.packaged" "$tmp/sym.rebuilt"; then
        diff "$tmp/sym.packaged" "$tmp/sym.rebuilt" | head -20 >&2
        die "the rebuilt libcrypto exports other symbols than $packaged"
    fi
    echo "== soname libcrypto.so.0, $(wc -l < "$tmp/sym.rebuilt") exported symbols, the same as $packaged"
fi

if [ "$tests" = 1 ]; then
    # crypto_test carries an rpath to the packaged folder: make sure it runs
    # on the rebuilt library, then run BoringSSL's own test suite.
    loaded=$(LD_LIBRARY_PATH=debian/out ldd debian/out/crypto_test | awk '$1 == "libcrypto.so.0" { print $3 }')
    [ "$loaded" = "debian/out/libcrypto.so.0" ] || die "crypto_test would load $loaded, not the rebuilt library"
    echo "== BoringSSL crypto_test (from the same source) on the rebuilt library"
    t0=$(date +%s)
    if ! LD_LIBRARY_PATH=debian/out debian/out/crypto_test > "$tmp/crypto_test.log" 2>&1; then
        grep -E '^\[  FAILED|^\[  PASSED' "$tmp/crypto_test.log" | tail -20 >&2
        tail -20 "$tmp/crypto_test.log" >&2
        die "BoringSSL's crypto_test failed on the rebuilt library"
    fi
    echo "== crypto_test: $(grep -E '^\[  PASSED' "$tmp/crypto_test.log" | tail -1) in $(( $(date +%s) - t0 )) s"
fi

rm -rf "$out/include" "$out/lib"
mkdir -p "$out/lib"
cp -r src/include "$out/include"
cp -a debian/out/libcrypto.so.0 debian/out/libcrypto.so debian/out/libssl.so.0 debian/out/libssl.so "$out/lib/"
echo "$pkg $version, debian/rules without -DOPENSSL_SMALL ($(date -u +%Y-%m-%d))" > "$out/BUILD-INFO"
echo "== installed into $out (cmake -DCERTVAL_BORINGSSL_DIR=$out)"
