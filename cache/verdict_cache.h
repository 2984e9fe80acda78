/* Verdict cache: a bounded, sharded table of opaque values under 32-byte
 * keys, each served only inside a time window.
 *
 * The cache knows nothing of what it stores: the validator
 * (validator/verdict_step.h) computes the key of a chain, packs the
 * verdict with the revocation references it must re-check on every hit,
 * and decides what may be cached. The cache refuses hits outside the
 * window given at put time (so an expiry takes effect at once) and
 * otherwise copies the value back byte for byte.
 *
 * Keys must be uniformly distributed (a SHA-256): their first byte picks
 * the shard and bytes 8..15 the bucket.
 *
 * Concurrency: every function is thread-safe. The table is split into up to
 * 64 shards by key bits, each with its own mutex, CLOCK eviction and share
 * of the bounds. A get on a registered RCU reader thread (rcu_reader.h:
 * the workers and transport threads are) takes no lock and writes no
 * shared line on a hit: it walks the chains inside an RCU read-side
 * section and copies the value out (a few hundred bytes for a verdict).
 * A get on any other thread, and every put, clear or removal, holds the
 * shard's mutex; removed entries are freed after a grace period
 * (call_rcu), so no thread needs to be registered to call any function
 * here. Hit and miss counters are per thread slot, evictions per shard
 * (relaxed atomics).
 *
 * Conventions: constructors return NULL on failure; get and put return
 * true on success (a hit, a stored value) and false otherwise. */
#ifndef CERTVAL_VERDICT_CACHE_H
#define CERTVAL_VERDICT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VERDICT_CACHE_KEY_LEN 32
#define VERDICT_CACHE_VALUE_MAX 65535 /* bytes of one value */

struct verdict_cache_stats {
    uint64_t hits;
    uint64_t misses; /* absent, outside its time window, or larger than the caller's buffer */
    uint64_t evictions; /* removed by CLOCK to respect the bounds */
    size_t entries;
    size_t bytes; /* accounted bytes of the entries (allocation + 16 bytes of malloc overhead) */
};

struct verdict_cache;

/* verdict_cache_new returns an empty cache holding at most |max_entries|
 * entries and |max_bytes| accounted bytes (both split evenly across the
 * shards; each shard evicts on its own, so the whole cache may start
 * evicting a little before either bound is reached). Besides the entries it
 * allocates about 16 bytes per possible entry up front. NULL when
 * |max_entries| is 0 or over 2^26, |max_bytes| under 4096, or on allocation
 * failure. */
struct verdict_cache *verdict_cache_new(size_t max_entries, size_t max_bytes);

/* verdict_cache_free frees |c| and its entries; NULL is accepted. No thread
 * may be using it. */
void verdict_cache_free(struct verdict_cache *c);

/* verdict_cache_get looks |key| up at time |now|. On a hit (present,
 * valid_from <= now <= valid_until, and the value fits |cap| bytes) it
 * copies the value into |out|, sets |*out_len| to its length and returns
 * true. Otherwise returns false with |*out_len| 0; an entry found past its
 * valid_until is removed. */
bool verdict_cache_get(struct verdict_cache *c, void *out, size_t cap, size_t *out_len,
                       const uint8_t key[VERDICT_CACHE_KEY_LEN], int64_t now);

/* verdict_cache_put stores a copy of the |len| bytes at |value| under
 * |key|, replacing an entry with the same key, to be served for
 * valid_from <= now <= valid_until only. Returns false, storing nothing,
 * when valid_until < valid_from, |len| is over VERDICT_CACHE_VALUE_MAX,
 * the entry is larger than a shard's byte share, or on allocation
 * failure. May evict other entries of the shard (CLOCK). */
bool verdict_cache_put(struct verdict_cache *c, const uint8_t key[VERDICT_CACHE_KEY_LEN],
                       const void *value, size_t len, int64_t valid_from, int64_t valid_until);

/* verdict_cache_stats sums the shards' counters into |out|. Entries and
 * bytes are read shard by shard, so under load they are approximate. */
void verdict_cache_stats(struct verdict_cache *c, struct verdict_cache_stats *out);

/* verdict_cache_clear removes every entry (for example after a
 * configuration change that the key does not capture). Counters are kept. */
void verdict_cache_clear(struct verdict_cache *c);

#endif
