#!/usr/bin/env bash
# P-256 ECDSA verify speed of Debian's packaged BoringSSL against the same
# source rebuilt without -DOPENSSL_SMALL (deploy/boringssl-fast.sh).
#
#   bash deploy/p256-bench.sh REBUILT_DIR [SECONDS]      default SECONDS: 3
#
# Compiles one small program against the packaged headers and runs it twice,
# the loader pointed first at the packaged libcrypto.so.0, then at
# REBUILT_DIR/lib (same soname and ABI), three times each, alternating. Each
# run prints the library it actually mapped (from /proc/self/maps), then
# verifies one signature over and over for SECONDS of its own CPU time (CPU
# time, not wall time: the cores are shared). Prints the best µs of CPU per
# verify of each library and the ratio.
# A benchmark, not a test: the figures go to docs/benchmarks.md.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bash deploy/p256-bench.sh REBUILT_DIR [SECONDS]" >&2; exit 2; }
rebuilt=$(cd "$1/lib" && pwd)
secs=${2:-3}
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2> /dev/null || echo x86_64-linux-gnu)
packaged=/usr/lib/$arch/android
tmp=$(mktemp -d /tmp/certval-p256.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/p256.c" << 'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/nid.h>
#include <openssl/sha.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 3.0;
    uint8_t digest[SHA256_DIGEST_LENGTH], sig[128];
    unsigned sig_len = 0;
    char line[512];
    FILE *maps = fopen("/proc/self/maps", "r");

    while (maps != NULL && fgets(line, sizeof(line), maps) != NULL) {
        char *p = strstr(line, "libcrypto.so");
        if (p != NULL) {
            printf("library %s", strchr(line, '/'));
            break;
        }
    }
    if (maps != NULL)
        fclose(maps);
    EC_KEY *key = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    if (key == NULL || !EC_KEY_generate_key(key))
        return 1;
    SHA256((const uint8_t *)"certval p256 bench", 18, digest);
    if (ECDSA_size(key) > sizeof(sig) || !ECDSA_sign(0, digest, sizeof(digest), sig, &sig_len, key))
        return 1;
    long n = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 100; i++)
            if (ECDSA_verify(0, digest, sizeof(digest), sig, sig_len, key) != 1)
                return 1;
        n += 100;
        t = now();
    } while (t - t0 < secs);
    printf("verify_cpu_us %.2f\n", (t - t0) * 1e6 / (double)n);
    EC_KEY_free(key);
    return 0;
}
EOF
cc -O2 -o "$tmp/p256" "$tmp/p256.c" -I/usr/include/android -L"$packaged" -lcrypto

run() {
    LD_LIBRARY_PATH=$1 taskset -c 0 "$tmp/p256" "$secs" > "$tmp/out" 2>&1 ||
        { cat "$tmp/out" >&2; echo "p256-bench: the benchmark failed on $1" >&2; exit 1; }
    grep -q "library $1/libcrypto.so" "$tmp/out" ||
        { cat "$tmp/out" >&2; echo "p256-bench: did not run on $1" >&2; exit 1; }
    awk '$1 == "verify_cpu_us" { print $2 }' "$tmp/out"
}
a="" b=""
for _ in 1 2 3; do
    a="$a $(run "$packaged")"
    b="$b $(run "$rebuilt")"
done
best() { echo "$@" | tr ' ' '\n' | sort -g | head -1; }
echo "P-256 ECDSA verify, CPU time per verify, best of 3 runs of ${secs} s (all:$a /$b):"
a=$(best $a)
b=$(best $b)
echo "  packaged ($packaged): $a us"
echo "  rebuilt  ($rebuilt): $b us"
awk -v a="$a" -v b="$b" 'BEGIN { printf "  rebuilt is %.2fx faster\n", a / b }'
