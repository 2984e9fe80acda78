/* Tests for cache/verdict_cache: opaque values under 32-byte keys, round
 * trip of the bytes, time windows, bounds and eviction, counters, and
 * concurrent get/put. The validator's entries (key, verdict and
 * references) are tested in test_verdict_step.c. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "rcu_reader.h"
#include "verdict_cache.h"

#define T0 INT64_C(1795000000)

static void key_for(uint8_t key[32], uint32_t i)
{
    /* Spread like the validator's SHA-256 keys so shards and buckets are all used. */
    SHA256((const uint8_t *)&i, sizeof(i), key);
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seed + i * 31);
}

static bool get(struct verdict_cache *c, const uint8_t key[32], int64_t now)
{
    uint8_t buf[VERDICT_CACHE_VALUE_MAX];
    size_t len;

    return verdict_cache_get(c, buf, sizeof(buf), &len, key, now);
}

Test(verdict_cache, round_trip_bytes)
{
    struct verdict_cache *c = verdict_cache_new(1000, 1 << 20);
    uint8_t value[700], got[1024], key[32];
    size_t len = 99;

    cr_assert_not_null(c);
    key_for(key, 1);
    fill(value, sizeof(value), 7);
    cr_assert_not(verdict_cache_get(c, got, sizeof(got), &len, key, T0));
    cr_assert_eq(len, 0, "a miss sets the length to 0");
    cr_assert(verdict_cache_put(c, key, value, sizeof(value), T0 - 10, T0 + 10));
    cr_assert(verdict_cache_get(c, got, sizeof(got), &len, key, T0));
    cr_assert_eq(len, sizeof(value));
    cr_assert_arr_eq(got, value, sizeof(value));
    /* A buffer too small for the value: a miss, nothing written. */
    memset(got, 0xee, sizeof(got));
    cr_assert_not(verdict_cache_get(c, got, sizeof(value) - 1, &len, key, T0));
    cr_assert_eq(len, 0);
    cr_assert_eq(got[0], 0xee);
    cr_assert(verdict_cache_get(c, got, sizeof(value), &len, key, T0), "an exact fit is a hit");
    /* An empty value. */
    key_for(key, 2);
    cr_assert(verdict_cache_put(c, key, NULL, 0, T0, T0));
    cr_assert(verdict_cache_get(c, got, 0, &len, key, T0));
    cr_assert_eq(len, 0);
    /* A replacement returns the new bytes. */
    value[0] ^= 0xff;
    cr_assert(verdict_cache_put(c, key, value, 10, T0, T0));
    cr_assert(verdict_cache_get(c, got, sizeof(got), &len, key, T0));
    cr_assert_eq(len, 10);
    cr_assert_arr_eq(got, value, 10);
    verdict_cache_free(c);
    verdict_cache_free(NULL);
}

Test(verdict_cache, time_window)
{
    struct verdict_cache *c = verdict_cache_new(100, 1 << 20);
    struct verdict_cache_stats st;
    uint8_t v[16] = {1}, key[32];

    key_for(key, 3);
    cr_assert(verdict_cache_put(c, key, v, sizeof(v), T0, T0 + 100));
    cr_assert_not(get(c, key, T0 - 1)); /* before the latest notBefore */
    cr_assert(get(c, key, T0));
    cr_assert(get(c, key, T0 + 100)); /* notAfter is inclusive */
    cr_assert_not(get(c, key, T0 + 101));
    verdict_cache_stats(c, &st);
    cr_assert_eq(st.entries, 0, "an entry past its window is dropped");
    cr_assert_not(get(c, key, T0));
    /* An empty window is refused. */
    cr_assert_not(verdict_cache_put(c, key, v, sizeof(v), T0 + 1, T0));
    /* A window open at the top (DENY EXPIRED holds from the expiry on). */
    cr_assert(verdict_cache_put(c, key, v, sizeof(v), T0 + 101, INT64_MAX));
    cr_assert_not(get(c, key, T0 + 100));
    cr_assert(get(c, key, INT64_MAX));
    verdict_cache_free(c);
}

Test(verdict_cache, refuses_bad_input)
{
    static uint8_t big[VERDICT_CACHE_VALUE_MAX + 1];
    struct verdict_cache *c = verdict_cache_new(100, 1 << 20);
    struct verdict_cache *tiny = verdict_cache_new(1, 4096);
    uint8_t key[32];

    cr_assert_null(verdict_cache_new(0, 1 << 20));
    cr_assert_null(verdict_cache_new(100, 100));
    cr_assert_not_null(tiny);
    key_for(key, 4);
    cr_assert_not(verdict_cache_put(c, key, big, sizeof(big), T0, T0), "over the value limit");
    cr_assert_not(verdict_cache_put(c, key, NULL, 1, T0, T0), "bytes without a buffer");
    cr_assert_not(verdict_cache_put(tiny, key, big, 4096, T0, T0), "over the shard's byte share");
    cr_assert(verdict_cache_put(tiny, key, big, 1024, T0, T0));
    struct verdict_cache *one = verdict_cache_new(1, 1 << 20); /* one shard with all the bytes */
    cr_assert(verdict_cache_put(one, key, big, VERDICT_CACHE_VALUE_MAX, T0, T0));
    cr_assert(get(one, key, T0));
    verdict_cache_free(one);
    verdict_cache_free(tiny);
    verdict_cache_free(c);
}

Test(verdict_cache, bounds_and_eviction)
{
    const size_t max_entries = 256, max_bytes = 64 * 1024;
    struct verdict_cache *c = verdict_cache_new(max_entries, max_bytes);
    struct verdict_cache_stats st;
    uint8_t v[600], key[32];

    fill(v, sizeof(v), 1);
    for (uint32_t i = 0; i < 5000; i++) {
        key_for(key, 1000 + i);
        cr_assert(verdict_cache_put(c, key, v, sizeof(v), T0, T0 + 10));
        verdict_cache_stats(c, &st);
        cr_assert_leq(st.entries, max_entries);
        cr_assert_leq(st.bytes, max_bytes);
    }
    verdict_cache_stats(c, &st);
    cr_assert_gt(st.evictions, 0);
    cr_assert_gt(st.entries, 0);
    cr_assert_eq(st.evictions + st.entries, 5000, "every put is kept or evicted");
    cr_assert(get(c, key, T0), "the last key is present");

    /* The entry count bound, with tiny entries. */
    struct verdict_cache *c2 = verdict_cache_new(100, 1 << 24);
    for (uint32_t i = 0; i < 1000; i++) {
        key_for(key, i);
        cr_assert(verdict_cache_put(c2, key, v, 4, T0, T0));
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
    uint8_t v[8] = {1}, keys[5][32];
    size_t n = 0;

    for (uint32_t i = 0; n < 5 && i < 100000; i++) {
        key_for(keys[n], i);
        if ((keys[n][0] & 63) == 0)
            n++;
    }
    cr_assert_eq(n, 5);
    for (size_t i = 0; i < 4; i++)
        cr_assert(verdict_cache_put(c, keys[i], v, sizeof(v), T0, T0));
    cr_assert(get(c, keys[0], T0));                                  /* referenced */
    cr_assert(verdict_cache_put(c, keys[4], v, sizeof(v), T0, T0)); /* shard full: one goes */
    cr_assert(get(c, keys[0], T0), "the referenced entry was evicted");
    cr_assert_not(get(c, keys[1], T0), "CLOCK should evict the next one");
    cr_assert(get(c, keys[4], T0));
    struct verdict_cache_stats st;
    verdict_cache_stats(c, &st);
    cr_assert_eq(st.evictions, 1);
    verdict_cache_free(c);
}

Test(verdict_cache, stats_counters)
{
    struct verdict_cache *c = verdict_cache_new(100, 1 << 20);
    struct verdict_cache_stats st;
    uint8_t v[300], key[32], other[32];

    key_for(key, 5);
    key_for(other, 6);
    fill(v, sizeof(v), 3);
    cr_assert(verdict_cache_put(c, key, v, sizeof(v), T0, T0));
    cr_assert(verdict_cache_put(c, key, v, sizeof(v), T0, T0)); /* replacement */
    cr_assert(get(c, key, T0));
    cr_assert(get(c, key, T0));
    cr_assert_not(get(c, other, T0));
    verdict_cache_stats(c, &st);
    cr_assert_eq(st.hits, 2);
    cr_assert_eq(st.misses, 1);
    cr_assert_eq(st.evictions, 0);
    cr_assert_eq(st.entries, 1);
    cr_assert_geq(st.bytes, sizeof(v), "the value's bytes are accounted");
    cr_assert_lt(st.bytes, sizeof(v) + 128, "with a small fixed overhead");
    verdict_cache_free(c);
}

/* ---- concurrent get/put ------------------------------------------------------
 *
 * Four threads put and get over a small key space (so they collide on keys
 * and shards, and eviction runs). Each value carries its key index, a
 * generation and a checksum, then filler of a length that depends on the
 * key; a get must return a value whose every byte agrees with the key it
 * was asked for. Bounded loop counts. */

#define RACE_KEYS 512
#define RACE_OPS 40000

static uint32_t checksum(uint32_t k, uint32_t gen)
{
    return (k * 2654435761u) ^ (gen * 40503u) ^ 0x5bd1e995u;
}

struct race_value {
    uint32_t k, gen, sum;
    uint8_t filler[200];
};

static size_t race_value(struct race_value *v, uint32_t k, uint32_t gen)
{
    size_t n = 1 + k % 200;

    v->k = k;
    v->gen = gen;
    v->sum = checksum(k, gen);
    memset(v->filler, 'a' + (int)(k % 26), n);
    return offsetof(struct race_value, filler) + n;
}

static bool race_consistent(const struct race_value *v, size_t len, uint32_t k)
{
    size_t n = 1 + k % 200;

    if (len != offsetof(struct race_value, filler) + n || v->k != k ||
        v->sum != checksum(k, v->gen))
        return false;
    for (size_t i = 0; i < n; i++)
        if (v->filler[i] != 'a' + (int)(k % 26))
            return false;
    return true;
}

struct vc_race {
    struct verdict_cache *c;
    uint32_t seed;
    bool rcu;    /* a registered RCU reader: its gets take no lock */
    bool churn;  /* also clears the cache and looks keys up past their window */
    long hits;
    long bad;
};

static void *vc_race_thread(void *arg)
{
    struct vc_race *r = arg;
    struct race_value v;
    uint8_t key[32];
    size_t len;
    uint32_t x = r->seed;

    if (r->rcu)
        certval_rcu_reader_register();
    for (uint32_t op = 0; op < RACE_OPS; op++) {
        x = x * 1103515245u + 12345u;
        uint32_t k = (x >> 8) % RACE_KEYS;
        key_for(key, k);
        if (r->churn && op % 4096 == 4095) {
            verdict_cache_clear(r->c);
        } else if (r->churn && (x >> 4) % 16 == 1) {
            /* Past its window: a miss that removes the entry. */
            if (verdict_cache_get(r->c, &v, sizeof(v), &len, key, T0 + 11))
                r->bad++;
        } else if ((x >> 4) % 4 == 0) {
            len = race_value(&v, k, op);
            verdict_cache_put(r->c, key, &v, len, T0, T0 + 10);
        } else if (verdict_cache_get(r->c, &v, sizeof(v), &len, key, T0)) {
            r->hits++;
            if (!race_consistent(&v, len, k))
                r->bad++;
        }
    }
    if (r->rcu)
        certval_rcu_reader_unregister();
    return NULL;
}

/* race runs 4 threads of gets and puts on one cache whose bounds are below
 * the key space, so eviction runs under contention; |rcu|: threads 1-3 are
 * RCU readers (lock-free gets), thread 0 is not; |churn|: every thread
 * also clears the cache now and then and looks keys up past their window,
 * which removes them. Every hit must be a whole value of its own key. */
static void race(bool rcu, bool churn)
{
    struct verdict_cache *c = verdict_cache_new(RACE_KEYS / 2, 256 * 1024);
    struct vc_race r[4];
    pthread_t th[4];
    long hits = 0, bad = 0;

    cr_assert_not_null(c);
    for (int t = 0; t < 4; t++) {
        r[t] = (struct vc_race){.c = c, .seed = 17u + (uint32_t)t * 7919u,
                                .rcu = rcu && t > 0, .churn = churn};
        cr_assert_eq(pthread_create(&th[t], NULL, vc_race_thread, &r[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        hits += r[t].hits;
        bad += r[t].bad;
    }
    struct verdict_cache_stats st;
    verdict_cache_stats(c, &st);
    cr_assert_eq(bad, 0, "%ld torn or mismatched values", bad);
    cr_assert_gt(hits, 1000, "too few hits (%ld) to test anything", hits);
    cr_assert_eq(st.hits, (uint64_t)hits);
    cr_assert_leq(st.entries, RACE_KEYS / 2);
    cr_assert_leq(st.bytes, 256 * 1024);
    cr_assert_gt(st.evictions, 0);
    verdict_cache_free(c);
}

Test(verdict_cache, concurrent_get_put, .timeout = 120)
{
    race(false, false);
}

Test(verdict_cache, concurrent_lock_free_gets_with_removals, .timeout = 120)
{
    race(true, true);
}
