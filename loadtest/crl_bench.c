/* crl_bench: load time, memory per entry and lookup cost of cache/crl_cache
 * on a large CRL, and lookup latency while CRLs are swapped in.
 *
 *   crl_bench [--entries N] [--swaps K] [--readers R] [--lookups M] [--no-d2i]
 *
 * Defaults: 1,000,000 entries, 10 swaps, 2 readers, 2,000,000 lookups.
 * During the swap phase every answer is also checked for consistency (swap
 * k lists the serials whose index has the parity of k), so a small run of
 * this program under ThreadSanitizer is the cache's race test: Criterion
 * cannot run under TSan (Criterion issue #274). Exit status 1 on any
 * inconsistent answer. See docs/revocation.md for results. */
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/x509.h>

#include "crl_cache.h"
#include "crl_gen.h"
#include "rcu_reader.h"

#define NOW INT64_C(1795000000)

#if defined(__SANITIZE_THREAD__)
const char *__tsan_default_suppressions(void);
/* liburcu is not instrumented: rcu_barrier's completion object, allocated
 * by the caller and freed by the call_rcu thread after a futex handshake
 * TSan cannot see, shows up as a race inside liburcu itself. Only frees
 * called directly from liburcu are ignored; the cache's own callbacks free
 * from instrumented code and stay checked. */
const char *__tsan_default_suppressions(void)
{
    return "called_from_lib:liburcu-memb.so.8\n";
}
#endif
#define POOL 65536

struct opts {
    size_t entries, swaps, readers, lookups;
    bool d2i;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;

    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* serial_of writes a 16-octet positive serial for index |i|, the shape of
 * CA/B Forum random serials. */
static void serial_of(uint64_t i, uint8_t out[16])
{
    uint64_t a = (i + 1) * UINT64_C(0x9e3779b97f4a7c15);
    uint64_t b = (i + 1) * UINT64_C(0xc2b2ae3d27d4eb4f) ^ UINT64_C(0x165667b19e3779f9);
    for (int k = 0; k < 8; k++) {
        out[k] = (uint8_t)(a >> (56 - 8 * k));
        out[8 + k] = (uint8_t)(b >> (56 - 8 * k));
    }
    out[0] = (out[0] & 0x7f) | 0x01; /* positive and minimal */
}

static ASN1_INTEGER *serial_int(uint64_t i)
{
    uint8_t buf[16];
    const uint8_t *p = buf;
    serial_of(i, buf);
    return c2i_ASN1_INTEGER(NULL, &p, sizeof(buf));
}

struct gen_arg {
    uint64_t parity; /* 2 = every index 0..n-1; else indices 2j+parity */
};

static void bench_entry(void *arg, size_t i, struct crl_gen_entry *e)
{
    const struct gen_arg *g = arg;
    uint64_t idx = g->parity == 2 ? i : 2 * i + g->parity;
    serial_of(idx, e->serial);
    e->serial_len = 16;
    e->revoked_at = NOW - (int64_t)(i % 100000);
    e->reason = (int)(i % 6);
}

static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    uint8_t *der = NULL;
    X509 *parsed = NULL;

    if (!x || !n || !X509_set_version(x, X509_VERSION_3) ||
        !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
        !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const uint8_t *)"bench CA", -1, -1,
                                    0) ||
        !X509_set_subject_name(x, n) || !X509_set_issuer_name(x, n) ||
        !ASN1_TIME_set(X509_getm_notBefore(x), NOW - 86400) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), NOW + 86400) || !X509_set_pubkey(x, key) ||
        !X509_sign(x, key, EVP_sha256()))
        goto err;
    int len = i2d_X509(x, &der);
    const uint8_t *p = der;
    parsed = len > 0 ? d2i_X509(NULL, &p, len) : NULL;
err:
    OPENSSL_free(der);
    X509_NAME_free(n);
    X509_free(x);
    return parsed;
}

struct bench {
    struct opts o;
    EVP_PKEY *key;
    X509 *ca;
    STACK_OF(X509) * issuers;
    struct crl_cache *cache;
};

static int gen_crl(struct bench *b, uint64_t number, uint64_t parity, uint8_t **der, size_t *len)
{
    struct gen_arg g = {parity};
    struct crl_gen_spec s = {
        .issuer = b->ca,
        .key = b->key,
        .this_update = NOW - 3600,
        .next_update = NOW + 86400,
        .has_crl_number = true,
        .crl_number = number,
        .n_entries = b->o.entries,
        .entry_at = bench_entry,
        .arg = &g,
    };
    return crl_gen_der(&s, der, len);
}

static int phase_load(struct bench *b)
{
    uint8_t *der = NULL;
    size_t len = 0;
    char err[256];
    double t0 = now_s();

    if (gen_crl(b, 1, 2, &der, &len) != 0)
        return -1;
    double t1 = now_s();
    printf("generate+sign %zu entries: %.3f s, %.1f MB DER\n", b->o.entries, t1 - t0,
           (double)len / 1e6);
    malloc_trim(0);
    long rss0 = rss_kib();
    size_t heap0 = heap_bytes();
    t0 = now_s();
    int rc = crl_cache_add_der(b->cache, der, len, b->issuers, "bench", err, sizeof(err));
    t1 = now_s();
    if (rc != 0) {
        fprintf(stderr, "load failed: %s\n", err);
        OPENSSL_free(der);
        return -1;
    }
    long rss1 = rss_kib();
    size_t heap1 = heap_bytes();
    printf("crl_cache_add_der (parse+verify+build+publish): %.3f s\n", t1 - t0);
    printf("memory: heap +%.1f MB = %.1f B/entry; RSS +%.1f MB = %.1f B/entry\n",
           (double)(heap1 - heap0) / 1e6, (double)(heap1 - heap0) / (double)b->o.entries,
           (double)(rss1 - rss0) / 1024.0, (double)(rss1 - rss0) * 1024.0 / (double)b->o.entries);
    if (b->o.d2i) {
        const uint8_t *p = der;
        size_t h0 = heap_bytes();
        t0 = now_s();
        X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
        t1 = now_s();
        printf("for comparison, d2i_X509_CRL alone: %.3f s, heap +%.1f MB = %.0f B/entry\n",
               t1 - t0, (double)(heap_bytes() - h0) / 1e6,
               (double)(heap_bytes() - h0) / (double)b->o.entries);
        X509_CRL_free(crl);
    }
    OPENSSL_free(der);
    return 0;
}

struct pool {
    ASN1_INTEGER *serial[POOL];
    uint64_t index[POOL];
};

/* make_pool picks POOL random indices in [base, base+span) and their
 * serials. */
static struct pool *make_pool(size_t base, size_t span, uint64_t seed)
{
    struct pool *pool = calloc(1, sizeof(*pool));
    uint64_t x = seed | 1;

    for (size_t i = 0; pool && i < POOL; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift */
        pool->index[i] = base + x % span;
        pool->serial[i] = serial_int(pool->index[i]);
    }
    return pool;
}

static void free_pool(struct pool *pool)
{
    for (size_t i = 0; pool && i < POOL; i++)
        ASN1_INTEGER_free(pool->serial[i]);
    free(pool);
}

static void lookup_run(struct bench *b, const char *what, size_t base, size_t span,
                       enum crl_status want)
{
    struct pool *pool = make_pool(base, span, 88172645463325252u);
    size_t wrong = 0;

    if (pool == NULL)
        return;
    double t0 = now_s();

    for (size_t i = 0; i < b->o.lookups; i++)
        wrong += crl_cache_check(b->cache, b->ca, pool->serial[i % POOL], NOW, 0, NULL) != want;
    double t1 = now_s();
    printf("lookup %s: %.0f ns/op over %zu lookups (%zu wrong answers)\n", what,
           (t1 - t0) * 1e9 / (double)b->o.lookups, b->o.lookups, wrong);
    free_pool(pool);
}

/* ---- swap phase ---------------------------------------------------------- */

#define HIST 64 /* log2 buckets of nanoseconds */

struct reader {
    struct bench *b;
    atomic_bool *done;
    uint64_t hist[HIST];
    uint64_t n, bad, max_ns;
};

static int log2_bucket(uint64_t v)
{
    return v == 0 ? 0 : 64 - __builtin_clzll(v);
}

/* expected says what CRL number |number| answers for index |idx|: CRL 1
 * lists every index below |entries|, CRL k > 1 the indices below
 * 2*entries with the parity of k. */
static enum crl_status expected(uint64_t number, uint64_t idx, size_t entries)
{
    bool listed = number == 1 ? idx < entries : (idx & 1) == (number & 1);
    return listed ? CRL_STATUS_REVOKED : CRL_STATUS_GOOD;
}

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    struct pool *pool = make_pool(0, 2 * r->b->o.entries, (uint64_t)(uintptr_t)r);
    uint64_t x = (uint64_t)(uintptr_t)r | 1, last_number = 0;

    certval_rcu_reader_register();
    /* Bounded: the main thread sets done after its fixed number of swaps. */
    while (pool && !atomic_load_explicit(r->done, memory_order_relaxed)) {
        struct crl_check_info info;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t k = x % POOL;
        uint64_t t0 = now_ns();
        enum crl_status st = crl_cache_check(r->b->cache, r->b->ca, pool->serial[k], NOW, 0, &info);
        uint64_t dt = now_ns() - t0;
        r->hist[log2_bucket(dt)]++;
        r->max_ns = dt > r->max_ns ? dt : r->max_ns;
        r->n++;
        if (st != expected(info.crl_number_low, pool->index[k], r->b->o.entries) ||
            info.crl_number_low < last_number)
            r->bad++;
        last_number = info.crl_number_low;
    }
    certval_rcu_reader_unregister();
    free_pool(pool);
    return NULL;
}

static uint64_t percentile(const uint64_t *hist, uint64_t n, double p)
{
    uint64_t want = (uint64_t)((double)n * p), seen = 0;
    for (int i = 0; i < HIST; i++) {
        seen += hist[i];
        if (seen > want)
            return i == 0 ? 0 : UINT64_C(1) << i; /* upper bound of the bucket */
    }
    return 0;
}

static int phase_swaps(struct bench *b)
{
    struct reader *r = calloc(b->o.readers, sizeof(*r));
    pthread_t *t = calloc(b->o.readers, sizeof(*t));
    atomic_bool done = false;
    uint64_t hist[HIST] = {0}, n = 0, bad = 0, max_ns = 0;
    double load_s = 0;
    size_t started = 0, failed = 0;
    char err[256];

    for (; r && t && started < b->o.readers; started++) {
        r[started].b = b;
        r[started].done = &done;
        if (pthread_create(&t[started], NULL, reader_main, &r[started]) != 0)
            break;
    }
    double t0 = now_s();
    for (uint64_t k = 2; k < 2 + b->o.swaps; k++) {
        uint8_t *der = NULL;
        size_t len = 0;
        if (gen_crl(b, k, k & 1, &der, &len) != 0) {
            failed++;
            continue;
        }
        double l0 = now_s();
        if (crl_cache_add_der(b->cache, der, len, b->issuers, "bench", err, sizeof(err)) != 0) {
            fprintf(stderr, "swap %" PRIu64 ": %s\n", k, err);
            failed++;
        }
        load_s += now_s() - l0;
        OPENSSL_free(der);
    }
    double elapsed = now_s() - t0;
    atomic_store(&done, true);
    for (size_t i = 0; i < started; i++) {
        pthread_join(t[i], NULL);
        for (int h = 0; h < HIST; h++)
            hist[h] += r[i].hist[h];
        n += r[i].n;
        bad += r[i].bad;
        max_ns = r[i].max_ns > max_ns ? r[i].max_ns : max_ns;
    }
    printf("swaps: %zu CRLs of %zu entries in %.2f s (add_der %.3f s each), %zu failed\n",
           b->o.swaps, b->o.entries, elapsed, b->o.swaps ? load_s / (double)b->o.swaps : 0.0,
           failed);
    printf("lookups during swaps: %zu readers, %" PRIu64 " lookups (%.0f/s per reader), "
           "p50 <= %" PRIu64 " ns, p99 <= %" PRIu64 " ns, p99.9 <= %" PRIu64 " ns, max %" PRIu64
           " ns, %" PRIu64 " inconsistent\n",
           started, n, elapsed > 0 ? (double)n / elapsed / (double)(started ? started : 1) : 0.0,
           percentile(hist, n, 0.50), percentile(hist, n, 0.99), percentile(hist, n, 0.999), max_ns,
           bad);
    free(r);
    free(t);
    return bad == 0 && failed == 0 && started == b->o.readers ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct bench b = {.o = {1000000, 10, 2, 2000000, true}};
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t *dst = !strcmp(a, "--entries")   ? &b.o.entries
                      : !strcmp(a, "--swaps")   ? &b.o.swaps
                      : !strcmp(a, "--readers") ? &b.o.readers
                      : !strcmp(a, "--lookups") ? &b.o.lookups
                                                : NULL;
        if (!strcmp(a, "--no-d2i")) {
            b.o.d2i = false;
        } else if (dst != NULL && v != NULL) {
            char *end = NULL;
            unsigned long long n = strtoull(v, &end, 10);
            if (end == v || *end != '\0') {
                fprintf(stderr, "bad number: %s\n", v);
                return 2;
            }
            *dst = (size_t)n;
            i++;
        } else {
            fprintf(stderr,
                    "usage: %s [--entries N] [--swaps K] [--readers R] "
                    "[--lookups M] [--no-d2i]\n",
                    argv[0]);
            return 2;
        }
    }
    if (b.o.entries < 2 || b.o.readers < 1 || b.o.readers > 64) {
        fprintf(stderr, "need --entries >= 2 and 1..64 readers\n");
        return 2;
    }
    EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    b.key = EVP_PKEY_new();
    if (!ec || !b.key || !EC_KEY_generate_key(ec) || !EVP_PKEY_assign_EC_KEY(b.key, ec))
        return 1;
    b.ca = self_signed(b.key);
    b.issuers = sk_X509_new_null();
    b.cache = crl_cache_new();
    if (!b.ca || !b.issuers || !sk_X509_push(b.issuers, b.ca) || !b.cache)
        goto out;
    certval_rcu_reader_register();
    if (phase_load(&b) != 0)
        goto out;
    lookup_run(&b, "hit ", 0, b.o.entries, CRL_STATUS_REVOKED);
    lookup_run(&b, "miss", b.o.entries, b.o.entries, CRL_STATUS_GOOD);
    rc = phase_swaps(&b) == 0 ? 0 : 1;
out:
    crl_cache_free(b.cache);
    certval_rcu_reader_unregister();
    sk_X509_free(b.issuers);
    X509_free(b.ca);
    EVP_PKEY_free(b.key);
    return rc;
}
