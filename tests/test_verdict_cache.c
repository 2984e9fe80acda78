/* Tests for cache/verdict_cache: key derivation, round trip of every field,
 * time windows, bounds and eviction, counters, and concurrent get/put. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "verdict_cache.h"

#define T0 INT64_C(1795000000)

static const uint8_t leaf_der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
static const uint8_t ca_der[] = {0x30, 0x03, 0x02, 0x01, 0x02};

static struct chain_input chain(const struct cv_bytes *certs, size_t n, const char *tenant,
                                const char *device)
{
    struct chain_input in = {
        .id = 7,
        .certs = certs,
        .n_certs = n,
        .tenant_id = {(const uint8_t *)tenant, strlen(tenant)},
        .device_id = {(const uint8_t *)device, strlen(device)},
    };
    return in;
}

static void sample_verdict(struct verdict *v, const char *detail)
{
    memset(v, 0, sizeof(*v));
    v->id = 99;
    v->decision = DECISION_REQUIRE_PASSWORD;
    v->reason = VERDICT_REASON_OK;
    v->kind = CERT_KIND_DEVICE;
    v->has_leaf_sha256 = true;
    for (int i = 0; i < 32; i++)
        v->leaf_sha256[i] = (uint8_t)(i * 7);
    v->not_after_unix = T0 + 86400;
    snprintf(v->detail, sizeof(v->detail), "%s", detail);
    memset(v->subject, 'S', sizeof(v->subject) - 1); /* longest strings */
    memset(v->issuer, 'I', sizeof(v->issuer) - 1);
    memset(v->serial_hex, 'f', sizeof(v->serial_hex) - 1);
    memset(v->profile, 'p', sizeof(v->profile) - 1);
}

static void sample_refs(struct vc_revocation_refs *r)
{
    memset(r, 0, sizeof(*r));
    r->n = 2;
    r->crl_generation = 11;
    r->deny_generation = 12;
    for (size_t i = 0; i < 2; i++) {
        memset(r->ref[i].issuer_name_sha256, 0x10 + (int)i, 32);
        memset(r->ref[i].issuer_key_sha256, 0x20 + (int)i, 32);
        r->ref[i].serial_len = i == 0 ? 1 : VC_SERIAL_MAX;
        memset(r->ref[i].serial, 0x30 + (int)i, r->ref[i].serial_len);
        r->ref[i].handle = UINT64_C(0x0123456789abcdef) + i;
    }
}

static void key_for(uint8_t key[32], uint32_t i)
{
    /* Spread like SHA-256 output so shards and buckets are all used. */
    struct cv_bytes c = {(const uint8_t *)&i, sizeof(i)};
    struct chain_input in = chain(&c, 1, "t", "d");
    verdict_cache_key(key, &in, 1);
}

Test(verdict_cache, round_trip_every_field)
{
    struct verdict_cache *c = verdict_cache_new(1000, 1 << 20);
    struct verdict v, got;
    struct vc_revocation_refs refs, got_refs;
    uint8_t key[32];

    cr_assert_not_null(c);
    key_for(key, 1);
    sample_verdict(&v, "detail text");
    sample_refs(&refs);
    cr_assert_not(verdict_cache_get(c, &got, &got_refs, key, T0));
    cr_assert(verdict_cache_put(c, key, &v, &refs, T0 - 10, T0 + 10));
    cr_assert(verdict_cache_get(c, &got, &got_refs, key, T0));
    v.id = 0; /* not stored: the caller sets the request's id */
    cr_assert_eq(got.decision, v.decision);
    cr_assert_eq(got.reason, v.reason);
    cr_assert_eq(got.kind, v.kind);
    cr_assert_eq(got.has_leaf_sha256, true);
    cr_assert_arr_eq(got.leaf_sha256, v.leaf_sha256, 32);
    cr_assert_eq(got.not_after_unix, v.not_after_unix);
    cr_assert_str_eq(got.detail, v.detail);
    cr_assert_str_eq(got.subject, v.subject);
    cr_assert_str_eq(got.issuer, v.issuer);
    cr_assert_str_eq(got.serial_hex, v.serial_hex);
    cr_assert_str_eq(got.profile, v.profile);
    cr_assert_arr_eq(&got, &v, sizeof(v), "the whole struct, padding aside, matches");
    cr_assert_eq(got_refs.n, 2);
    cr_assert_eq(got_refs.crl_generation, 11);
    cr_assert_eq(got_refs.deny_generation, 12);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_arr_eq(got_refs.ref[i].issuer_name_sha256, refs.ref[i].issuer_name_sha256, 32);
        cr_assert_arr_eq(got_refs.ref[i].issuer_key_sha256, refs.ref[i].issuer_key_sha256, 32);
        cr_assert_eq(got_refs.ref[i].serial_len, refs.ref[i].serial_len);
        cr_assert_arr_eq(got_refs.ref[i].serial, refs.ref[i].serial, refs.ref[i].serial_len);
        cr_assert_eq(got_refs.ref[i].handle, refs.ref[i].handle);
    }
    /* NULL refs on put and on get. */
    key_for(key, 2);
    cr_assert(verdict_cache_put(c, key, &v, NULL, T0, T0));
    cr_assert(verdict_cache_get(c, &got, &got_refs, key, T0));
    cr_assert_eq(got_refs.n, 0);
    cr_assert(verdict_cache_get(c, &got, NULL, key, T0));
    verdict_cache_free(c);
    verdict_cache_free(NULL);
}

Test(verdict_cache, key_separates_inputs)
{
    struct cv_bytes ab[2] = {{leaf_der, sizeof(leaf_der)}, {ca_der, sizeof(ca_der)}};
    struct cv_bytes ba[2] = {{ca_der, sizeof(ca_der)}, {leaf_der, sizeof(leaf_der)}};
    struct cv_bytes a1[1] = {{leaf_der, sizeof(leaf_der)}};
    uint8_t base[32], k[32];
    struct chain_input in = chain(ab, 2, "tenant", "device");
    struct verdict_cache *c = verdict_cache_new(100, 1 << 20);
    struct verdict v, got;

    verdict_cache_key(base, &in, 5);
    sample_verdict(&v, "x");
    cr_assert(verdict_cache_put(c, base, &v, NULL, T0, T0 + 100));

    /* The same input gives the same key; id and user_id are not part of it. */
    in.id = 12345;
    in.user_id = (struct cv_bytes){(const uint8_t *)"u", 1};
    verdict_cache_key(k, &in, 5);
    cr_assert_arr_eq(k, base, 32);
    cr_assert(verdict_cache_get(c, &got, NULL, k, T0));

    struct chain_input variants[] = {
        chain(ab, 2, "tenant2", "device"), chain(ab, 2, "tenant", "device2"),
        chain(ba, 2, "tenant", "device"),  chain(a1, 1, "tenant", "device"),
        chain(ab, 2, "tenantd", "evice"), /* moving bytes between fields */
        chain(ab, 2, "", "tenantdevice"),
    };
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        verdict_cache_key(k, &variants[i], 5);
        cr_assert(memcmp(k, base, 32) != 0, "variant %zu collides", i);
        cr_assert_not(verdict_cache_get(c, &got, NULL, k, T0), "variant %zu hit", i);
    }
    verdict_cache_key(k, &in, 6); /* configuration version */
    cr_assert_not(verdict_cache_get(c, &got, NULL, k, T0));
    verdict_cache_free(c);
}

/* The per-thread memo of certificate digests answers only for the same
 * bytes: once a chain's certificates are remembered, a certificate of the
 * same length with one byte changed still gets its own key. */
Test(verdict_cache, key_memo_compares_bytes)
{
    uint8_t flipped[sizeof(ca_der)];
    struct cv_bytes ab[2] = {{leaf_der, sizeof(leaf_der)}, {ca_der, sizeof(ca_der)}};
    struct cv_bytes af[2] = {{leaf_der, sizeof(leaf_der)}, {flipped, sizeof(flipped)}};
    struct chain_input in = chain(ab, 2, "tenant", "device");
    struct chain_input inf = chain(af, 2, "tenant", "device");
    uint8_t first[32], k[32], kf[32];

    memcpy(flipped, ca_der, sizeof(flipped));
    flipped[sizeof(flipped) / 2] ^= 0x01;
    verdict_cache_key(first, &in, 5);
    for (int i = 0; i < 4; i++) { /* remembered from the second sighting on */
        verdict_cache_key(k, &in, 5);
        cr_assert_arr_eq(k, first, 32, "key changed once remembered (round %d)", i);
    }
    verdict_cache_key(kf, &inf, 5);
    cr_assert(memcmp(kf, first, 32) != 0, "a changed certificate of the same length collides");
    verdict_cache_key(k, &inf, 5);
    cr_assert_arr_eq(k, kf, 32);
    verdict_cache_key(k, &in, 5);
    cr_assert_arr_eq(k, first, 32);
}

Test(verdict_cache, time_window)
{
    struct verdict_cache *c = verdict_cache_new(100, 1 << 20);
    struct verdict v, got;
    struct verdict_cache_stats st;
    uint8_t key[32];

    key_for(key, 3);
    sample_verdict(&v, "w");
    cr_assert(verdict_cache_put(c, key, &v, NULL, T0, T0 + 100));
    cr_assert_not(verdict_cache_get(c, &got, NULL, key, T0 - 1)); /* before the latest notBefore */
    cr_assert(verdict_cache_get(c, &got, NULL, key, T0));
    cr_assert(verdict_cache_get(c, &got, NULL, key, T0 + 100)); /* notAfter is inclusive */
    cr_assert_not(verdict_cache_get(c, &got, NULL, key, T0 + 101));
    cr_assert_eq(got.decision, DECISION_UNSPECIFIED, "a miss zeroes the output");
    verdict_cache_stats(c, &st);
    cr_assert_eq(st.entries, 0, "an entry past its window is dropped");
    cr_assert_not(verdict_cache_get(c, &got, NULL, key, T0));
    /* An empty window is refused. */
    cr_assert_not(verdict_cache_put(c, key, &v, NULL, T0 + 1, T0));
    /* DENY EXPIRED holds from the expiry on. */
    v.decision = DECISION_DENY;
    v.reason = VERDICT_REASON_EXPIRED;
    cr_assert(verdict_cache_put(c, key, &v, NULL, T0 + 101, INT64_MAX));
    cr_assert_not(verdict_cache_get(c, &got, NULL, key, T0 + 100));
    cr_assert(verdict_cache_get(c, &got, NULL, key, INT64_MAX));
    cr_assert_eq(got.reason, VERDICT_REASON_EXPIRED);
    verdict_cache_free(c);
}

Test(verdict_cache, refuses_bad_input)
{
    struct verdict_cache *c = verdict_cache_new(100, 1 << 20);
    struct verdict v;
    struct vc_revocation_refs refs;
    uint8_t key[32];

    cr_assert_null(verdict_cache_new(0, 1 << 20));
    cr_assert_null(verdict_cache_new(100, 100));
    key_for(key, 4);
    sample_verdict(&v, "r");
    sample_refs(&refs);
    refs.n = VC_MAX_REFS + 1;
    cr_assert_not(verdict_cache_put(c, key, &v, &refs, T0, T0));
    refs.n = 1;
    refs.ref[0].serial_len = VC_SERIAL_MAX + 1;
    cr_assert_not(verdict_cache_put(c, key, &v, &refs, T0, T0));
    /* Strings without a NUL are cut at their field size. */
    memset(v.detail, 'x', sizeof(v.detail));
    refs.ref[0].serial_len = 1;
    cr_assert(verdict_cache_put(c, key, &v, &refs, T0, T0));
    struct verdict got;
    cr_assert(verdict_cache_get(c, &got, NULL, key, T0));
    cr_assert_eq(strlen(got.detail), sizeof(got.detail) - 1);
    verdict_cache_free(c);
}

Test(verdict_cache, bounds_and_eviction)
{
    const size_t max_entries = 256, max_bytes = 64 * 1024;
    struct verdict_cache *c = verdict_cache_new(max_entries, max_bytes);
    struct verdict_cache_stats st;
    struct verdict v, got;
    uint8_t key[32];

    sample_verdict(&v, "evict");
    for (uint32_t i = 0; i < 5000; i++) {
        key_for(key, 1000 + i);
        cr_assert(verdict_cache_put(c, key, &v, NULL, T0, T0 + 10));
        verdict_cache_stats(c, &st);
        cr_assert_leq(st.entries, max_entries);
        cr_assert_leq(st.bytes, max_bytes);
    }
    verdict_cache_stats(c, &st);
    cr_assert_gt(st.evictions, 0);
    cr_assert_gt(st.entries, 0);
    cr_assert_eq(st.evictions + st.entries, 5000, "every put is kept or evicted");
    /* The last key is present; entries smaller in count than the bound. */
    cr_assert(verdict_cache_get(c, &got, NULL, key, T0));

    /* The entry count bound, with tiny entries. */
    struct verdict_cache *c2 = verdict_cache_new(100, 1 << 24);
    struct verdict small = {.decision = DECISION_ALLOW, .reason = VERDICT_REASON_OK};
    for (uint32_t i = 0; i < 1000; i++) {
        key_for(key, i);
        cr_assert(verdict_cache_put(c2, key, &small, NULL, T0, T0));
    }
    verdict_cache_stats(c2, &st);
    cr_assert_leq(st.entries, 100);
    cr_assert_gt(st.entries, 50);
    verdict_cache_clear(c2);
    verdict_cache_stats(c2, &st);
    cr_assert_eq(st.entries, 0);
    cr_assert_eq(st.bytes, 0);
    verdict_cache_free(c2);
    verdict_cache_free(c);
}

Test(verdict_cache, clock_keeps_referenced_entries)
{
    /* 256 entries over 64 shards: 4 slots each. Five keys of shard 0. */
    struct verdict_cache *c = verdict_cache_new(256, 1 << 20);
    struct verdict v = {.decision = DECISION_ALLOW}, got;
    uint8_t keys[5][32];
    size_t n = 0;

    for (uint32_t i = 0; n < 5 && i < 100000; i++) {
        key_for(keys[n], i);
        if ((keys[n][0] & 63) == 0)
            n++;
    }
    cr_assert_eq(n, 5);
    for (size_t i = 0; i < 4; i++)
        cr_assert(verdict_cache_put(c, keys[i], &v, NULL, T0, T0));
    cr_assert(verdict_cache_get(c, &got, NULL, keys[0], T0));   /* referenced */
    cr_assert(verdict_cache_put(c, keys[4], &v, NULL, T0, T0)); /* shard full: one goes */
    cr_assert(verdict_cache_get(c, &got, NULL, keys[0], T0), "the referenced entry was evicted");
    cr_assert_not(verdict_cache_get(c, &got, NULL, keys[1], T0), "CLOCK should evict the next one");
    cr_assert(verdict_cache_get(c, &got, NULL, keys[4], T0));
    struct verdict_cache_stats st;
    verdict_cache_stats(c, &st);
    cr_assert_eq(st.evictions, 1);
    verdict_cache_free(c);
}

Test(verdict_cache, stats_counters)
{
    struct verdict_cache *c = verdict_cache_new(100, 1 << 20);
    struct verdict_cache_stats st;
    struct verdict v, got;
    uint8_t key[32], other[32];

    key_for(key, 5);
    key_for(other, 6);
    sample_verdict(&v, "s");
    cr_assert(verdict_cache_put(c, key, &v, NULL, T0, T0));
    cr_assert(verdict_cache_put(c, key, &v, NULL, T0, T0)); /* replacement */
    cr_assert(verdict_cache_get(c, &got, NULL, key, T0));
    cr_assert(verdict_cache_get(c, &got, NULL, key, T0));
    cr_assert_not(verdict_cache_get(c, &got, NULL, other, T0));
    verdict_cache_stats(c, &st);
    cr_assert_eq(st.hits, 2);
    cr_assert_eq(st.misses, 1);
    cr_assert_eq(st.evictions, 0);
    cr_assert_eq(st.entries, 1);
    cr_assert_gt(st.bytes, sizeof(v) / 4);
    cr_assert_lt(st.bytes, sizeof(v), "stored compactly");
    verdict_cache_free(c);
}

/* ---- concurrent get/put ------------------------------------------------------
 *
 * Four threads put and get over a small key space (so they collide on keys
 * and shards, and eviction runs). Each value carries its key index and a
 * checksum in the detail string; a get must return a verdict whose every
 * field agrees with the key it was asked for. Bounded loop counts. */

#define RACE_KEYS 512
#define RACE_OPS 40000

static uint32_t checksum(uint32_t k, uint32_t gen)
{
    return (k * 2654435761u) ^ (gen * 40503u) ^ 0x5bd1e995u;
}

static void race_verdict(struct verdict *v, uint32_t k, uint32_t gen)
{
    memset(v, 0, sizeof(*v));
    v->decision = (enum verdict_decision)(1 + k % 3);
    v->reason = (enum verdict_reason)(k % 20);
    v->kind = (enum cert_kind)(k % 3);
    v->not_after_unix = (int64_t)k * 1000 + gen;
    memset(v->leaf_sha256, (int)(k & 0xff), 32);
    snprintf(v->detail, sizeof(v->detail), "k=%u g=%u c=%u", k, gen, checksum(k, gen));
    snprintf(v->subject, sizeof(v->subject), "CN=%u", k);
    memset(v->issuer, 'a' + (int)(k % 26), 1 + k % 200);
}

static bool race_consistent(const struct verdict *v, uint32_t k)
{
    uint32_t kk, gen, sum;
    char subject[32];
    uint8_t leaf[32];

    if (sscanf(v->detail, "k=%u g=%u c=%u", &kk, &gen, &sum) != 3 || kk != k ||
        sum != checksum(k, gen) || v->not_after_unix != (int64_t)k * 1000 + gen ||
        v->decision != (enum verdict_decision)(1 + k % 3))
        return false;
    snprintf(subject, sizeof(subject), "CN=%u", k);
    memset(leaf, (int)(k & 0xff), 32);
    return strcmp(v->subject, subject) == 0 && strlen(v->issuer) == 1 + k % 200 &&
           v->issuer[0] == 'a' + (int)(k % 26) && memcmp(v->leaf_sha256, leaf, 32) == 0;
}

struct vc_race {
    struct verdict_cache *c;
    uint32_t seed;
    long hits;
    long bad;
};

static void *vc_race_thread(void *arg)
{
    struct vc_race *r = arg;
    struct verdict v;
    uint8_t key[32];
    uint32_t x = r->seed;

    for (uint32_t op = 0; op < RACE_OPS; op++) {
        x = x * 1103515245u + 12345u;
        uint32_t k = (x >> 8) % RACE_KEYS;
        key_for(key, k);
        if ((x >> 4) % 4 == 0) {
            race_verdict(&v, k, op);
            verdict_cache_put(r->c, key, &v, NULL, T0, T0 + 10);
        } else if (verdict_cache_get(r->c, &v, NULL, key, T0)) {
            r->hits++;
            if (!race_consistent(&v, k))
                r->bad++;
        }
    }
    return NULL;
}

Test(verdict_cache, concurrent_get_put, .timeout = 120)
{
    /* Bounds below the key space so eviction runs under contention. */
    struct verdict_cache *c = verdict_cache_new(RACE_KEYS / 2, 256 * 1024);
    struct vc_race r[4];
    pthread_t th[4];
    long hits = 0, bad = 0;

    for (int t = 0; t < 4; t++) {
        r[t] = (struct vc_race){.c = c, .seed = 17u + (uint32_t)t * 7919u};
        cr_assert_eq(pthread_create(&th[t], NULL, vc_race_thread, &r[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        hits += r[t].hits;
        bad += r[t].bad;
    }
    struct verdict_cache_stats st;
    verdict_cache_stats(c, &st);
    cr_assert_eq(bad, 0, "%ld torn or mismatched verdicts", bad);
    cr_assert_gt(hits, 1000, "too few hits (%ld) to test anything", hits);
    cr_assert_eq(st.hits, (uint64_t)hits);
    cr_assert_leq(st.entries, RACE_KEYS / 2);
    cr_assert_leq(st.bytes, 256 * 1024);
    cr_assert_gt(st.evictions, 0);
    verdict_cache_free(c);
}
