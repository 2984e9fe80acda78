/* vc_bench: cost of a verdict-cache hit (key hashing of a 2-certificate
 * chain, lookup and unpacking of the entry, deny-list match) and a race check of the verdict cache
 * and the deny list under concurrent readers and a writer that changes the
 * deny list and replaces the readers' verdict-cache entries. Run
 * under ThreadSanitizer by CI (.ci/run); exits non-zero on any
 * inconsistent answer.
 *
 *   vc_bench [--threads N] [--iterations N] [--writer]
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crl_cache.h"
#include "rcu_reader.h"
#include "deny_list.h"
#include "verdict_cache.h"
#include "verdict_step.h"

#define NOW INT64_C(1795000000)
#define CHAINS 1000
#define MAX_THREADS 16
#define WRITER_OPS 100000

static struct verdict_cache *cache;
static struct deny_list *deny;
static uint8_t der[2][1024];
static const uint8_t deny_issuer[32] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                                        9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
static atomic_bool writer_done;
static long iterations = 2000000;

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void chain_of(struct chain_input *in, struct cv_bytes certs[2])
{
    certs[0] = (struct cv_bytes){der[0], sizeof(der[0])};
    certs[1] = (struct cv_bytes){der[1], sizeof(der[1])};
    memset(in, 0, sizeof(*in));
    in->certs = certs;
    in->n_certs = 2;
    in->tenant_id = (struct cv_bytes){(const uint8_t *)"tenant-a", 8};
    in->device_id = (struct cv_bytes){(const uint8_t *)"device-1", 8};
}

/* Reader: every key was put before the run, so every get must hit and
 * return the verdict put; a deny-list match must carry the writer's
 * reason. Returns the number of inconsistent answers. */
static void *reader(void *arg)
{
    long seed = (long)(intptr_t)arg, bad = 0;
    struct cv_bytes certs[2];
    struct chain_input in;
    struct verdict_step_refs refs;
    struct verdict v;
    uint8_t key[32];
    char reason[DENY_LIST_REASON_MAX + 1];

    chain_of(&in, certs);
    certval_rcu_reader_register();
    for (long i = 0; i < iterations; i++) {
        uint8_t serial[3] = {0x40, (uint8_t)((i + seed) >> 8), (uint8_t)(i + seed)};

        verdict_step_key(key, &in, (uint64_t)((i + seed) % CHAINS));
        if (!verdict_step_get(cache, &v, &refs, key, NOW) || v.decision != DECISION_ALLOW ||
            strcmp(v.profile, "device") != 0 || refs.n != 1)
            bad++;
        if (deny_list_match_serial(deny, deny_issuer, serial, sizeof(serial), NOW, reason,
                                   sizeof(reason)) &&
            strcmp(reason, "stress") != 0)
            bad++;
    }
    certval_rcu_reader_unregister();
    return (void *)(intptr_t)bad;
}

/* put_chain puts the verdict every reader expects under chain |ver|'s key. */
static void put_chain(uint64_t ver)
{
    struct verdict_step_refs refs;
    struct cv_bytes certs[2];
    struct chain_input in;
    struct verdict v;
    uint8_t key[32];

    chain_of(&in, certs);
    memset(&v, 0, sizeof(v));
    v.decision = DECISION_ALLOW;
    v.reason = VERDICT_REASON_OK;
    snprintf(v.subject, sizeof(v.subject), "CN=device-1,O=Tenant A");
    snprintf(v.issuer, sizeof(v.issuer), "CN=Tenant A Issuing CA");
    snprintf(v.serial_hex, sizeof(v.serial_hex), "0123456789abcdef");
    snprintf(v.profile, sizeof(v.profile), "device");
    memset(&refs, 0, sizeof(refs));
    refs.n = 1;
    memset(refs.ref[0].issuer_name_sha256, 1, 32);
    refs.ref[0].serial_len = 16;
    memset(refs.ref[0].serial, 0x11, 16);
    verdict_step_key(key, &in, ver);
    verdict_step_put(cache, key, &v, &refs, NOW - 100, NOW + 100);
}

/* Writer: adds serials and removes the one added four steps earlier, so
 * readers see entries come and go; and puts the readers' verdicts again,
 * each replacement unlinking the entry a lock-free reader may be copying
 * (freed after a grace period). */
static void *writer(void *arg)
{
    char err[128];

    (void)arg;
    certval_rcu_reader_register();
    for (uint32_t i = 0; i < WRITER_OPS && !atomic_load(&writer_done); i++) {
        uint8_t s[3] = {0x40, (uint8_t)(i >> 8), (uint8_t)i};

        put_chain(i % CHAINS);

        deny_list_add_serial(deny, deny_issuer, s, sizeof(s), "stress", NOW, 0, err, sizeof(err));
        if (i >= 4) {
            s[1] = (uint8_t)((i - 4) >> 8);
            s[2] = (uint8_t)(i - 4);
            deny_list_remove_serial(deny, deny_issuer, s, sizeof(s), err, sizeof(err));
        }
    }
    certval_rcu_reader_unregister();
    return NULL;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;

    errno = 0;
    *out = strtol(s, &end, 10);
    return errno == 0 && *end == '\0' && *out >= lo && *out <= hi;
}

static void fill(void)
{
    for (int i = 0; i < 1024; i++) {
        der[0][i] = (uint8_t)(i * 31);
        der[1][i] = (uint8_t)(i * 17 + 3);
    }
    for (uint64_t ver = 0; ver < CHAINS; ver++)
        put_chain(ver);
}

int main(int argc, char **argv)
{
    long threads = 1, bad = 0;
    bool with_writer = false;
    pthread_t th[MAX_THREADS], w;
    struct verdict_cache_stats st;
    double t0, el;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--writer") == 0)
            with_writer = true;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc &&
                 parse_long(argv[i + 1], 1, MAX_THREADS, &threads))
            i++;
        else if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc &&
                 parse_long(argv[i + 1], 1, 1000000000L, &iterations))
            i++;
        else {
            fprintf(stderr, "usage: vc_bench [--threads 1..16] [--iterations N] [--writer]\n");
            return 2;
        }
    }
    cache = verdict_cache_new(100000, 256u << 20);
    deny = deny_list_new();
    if (cache == NULL || deny == NULL)
        return 2;
    fill();
    if (with_writer && pthread_create(&w, NULL, writer, NULL) != 0)
        return 2;
    t0 = now_s();
    for (long t = 0; t < threads; t++)
        pthread_create(&th[t], NULL, reader, (void *)(intptr_t)(t * 7));
    for (long t = 0; t < threads; t++) {
        void *r;

        pthread_join(th[t], &r);
        bad += (long)(intptr_t)r;
    }
    el = now_s() - t0;
    atomic_store(&writer_done, true);
    if (with_writer)
        pthread_join(w, NULL);
    verdict_cache_stats(cache, &st);
    printf("vc_bench: %ld reader(s)%s, %ld iterations each: %.0f ns per hit (key SHA-256 over "
           "2 KiB + get + deny-list match), %.0f hits/s in all; %ld inconsistent; deny-list "
           "generation %llu\n",
           threads, with_writer ? " + writer" : "", iterations,
           el * 1e9 / (double)iterations, (double)(threads * iterations) / el, bad,
           (unsigned long long)deny_list_generation(deny));
    deny_list_free(deny);
    verdict_cache_free(cache);
    return bad != 0;
}
