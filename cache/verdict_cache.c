/* Verdict cache: sharded hash table with CLOCK eviction.
 *
 * Shared structures (docs/revocation.md, "Deny list and verdict cache"):
 *  - each shard (bucket chains, CLOCK ring, hand, count, bytes, entries):
 *    read and written only under the shard's mutex. Entries are built
 *    completely before they are linked and copied out before the mutex is
 *    released, so no reader ever sees a partial entry.
 *  - per-shard hits/misses/evictions: relaxed atomics (stats only).
 *  - shard bounds, shard count: immutable after verdict_cache_new.
 *
 * Shards are cache-line aligned so two cores working on different shards do
 * not bounce one line. The key is a SHA-256, so its bytes are uniform: the
 * first byte picks the shard, bytes 8..15 the bucket. */
#include "verdict_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define VC_SHARDS_MAX 64
#define VC_MAX_ENTRIES_LIMIT ((size_t)1 << 26)
#define VC_MIN_BYTES 4096
#define VC_MALLOC_OVERHEAD 16 /* glibc chunk header, rounded */

/* One cached value: a single allocation, the value's bytes in data[]. */
struct vc_entry {
    struct vc_entry *next; /* bucket chain */
    uint32_t ring_pos;
    uint32_t bytes; /* accounted size */
    uint8_t key[VERDICT_CACHE_KEY_LEN];
    int64_t valid_from, valid_until;
    uint16_t len;       /* of data[], <= VERDICT_CACHE_VALUE_MAX */
    uint8_t referenced; /* CLOCK bit, set by hits */
    uint8_t data[];
};

struct vc_shard {
    _Alignas(64) pthread_mutex_t lock;
    struct vc_entry **bucket; /* power-of-two count */
    size_t bucket_mask;
    struct vc_entry **ring; /* CLOCK ring, |cap| slots, NULL = free */
    size_t cap, hand, count;
    size_t bytes, max_bytes;
    uint64_t hits, misses, evictions; /* relaxed atomics */
};

struct verdict_cache {
    size_t n_shards; /* power of two */
    struct vc_shard *shard;
};

/* ---- entries ------------------------------------------------------------- */

static struct vc_entry *entry_new(const uint8_t key[VERDICT_CACHE_KEY_LEN], const void *value,
                                  size_t len)
{
    struct vc_entry *e = malloc(sizeof(*e) + len);

    if (e == NULL)
        return NULL;
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, VERDICT_CACHE_KEY_LEN);
    e->bytes = (uint32_t)(sizeof(*e) + len + VC_MALLOC_OVERHEAD);
    e->len = (uint16_t)len;
    if (len > 0)
        memcpy(e->data, value, len);
    return e;
}

/* ---- shards -------------------------------------------------------------- */

static struct vc_shard *shard_of(const struct verdict_cache *c,
                                 const uint8_t key[VERDICT_CACHE_KEY_LEN])
{
    return &c->shard[key[0] & (c->n_shards - 1)];
}

static struct vc_entry **bucket_of(const struct vc_shard *s,
                                   const uint8_t key[VERDICT_CACHE_KEY_LEN])
{
    uint64_t h;

    memcpy(&h, key + 8, sizeof(h));
    return &s->bucket[h & s->bucket_mask];
}

/* shard_find returns the link that points at |key|'s entry (so the caller
 * can unlink it), or NULL. */
static struct vc_entry **shard_find(const struct vc_shard *s,
                                    const uint8_t key[VERDICT_CACHE_KEY_LEN])
{
    struct vc_entry **link = bucket_of(s, key);

    /* Chains are short: at most |cap| entries over >= |cap| buckets. */
    for (size_t n = 0; *link != NULL && n <= s->cap; n++, link = &(*link)->next)
        if (memcmp((*link)->key, key, VERDICT_CACHE_KEY_LEN) == 0)
            return link;
    return NULL;
}

/* shard_remove unlinks and frees the entry |*link| points at. */
static void shard_remove(struct vc_shard *s, struct vc_entry **link)
{
    struct vc_entry *e = *link;

    *link = e->next;
    s->ring[e->ring_pos] = NULL;
    s->count--;
    s->bytes -= e->bytes;
    free(e);
}

static void shard_evict(struct vc_shard *s, struct vc_entry *victim)
{
    struct vc_entry **link = shard_find(s, victim->key);

    if (link != NULL)
        shard_remove(s, link);
    __atomic_add_fetch(&s->evictions, 1, __ATOMIC_RELAXED);
}

/* shard_place runs the CLOCK hand until a free ring slot is found with
 * room for |e|'s bytes, evicting unreferenced entries and clearing the
 * referenced bit of the others. Each lap clears every bit, so within three
 * laps everything not placed has been evicted and |e| fits (the caller
 * checked e->bytes <= max_bytes). */
static void shard_place(struct vc_shard *s, struct vc_entry *e)
{
    for (size_t step = 0; step < 3 * s->cap + 2; step++) {
        struct vc_entry *cur = s->ring[s->hand];
        if (cur == NULL) {
            if (s->bytes + e->bytes <= s->max_bytes)
                break;
        } else if (cur->referenced) {
            cur->referenced = 0;
        } else {
            shard_evict(s, cur);
            continue; /* the slot is free now: look at it again */
        }
        s->hand = (s->hand + 1) % s->cap;
    }
    /* Unreachable while the invariants hold; keeps the ring and the chains
     * consistent if they ever do not. */
    if (s->ring[s->hand] != NULL)
        shard_evict(s, s->ring[s->hand]);
    e->ring_pos = (uint32_t)s->hand;
    s->ring[s->hand] = e;
    s->hand = (s->hand + 1) % s->cap;
    struct vc_entry **b = bucket_of(s, e->key);
    e->next = *b;
    *b = e;
    s->count++;
    s->bytes += e->bytes;
}

static void shard_clear(struct vc_shard *s)
{
    for (size_t i = 0; i < s->cap; i++) {
        free(s->ring[i]);
        s->ring[i] = NULL;
    }
    memset(s->bucket, 0, (s->bucket_mask + 1) * sizeof(s->bucket[0]));
    s->count = 0;
    s->bytes = 0;
    s->hand = 0;
}

/* ---- lifecycle ------------------------------------------------------------ */

static int shard_init(struct vc_shard *s, size_t cap, size_t max_bytes)
{
    size_t nb = 1;

    while (nb < cap)
        nb *= 2;
    s->cap = cap;
    s->max_bytes = max_bytes;
    s->bucket_mask = nb - 1;
    s->bucket = calloc(nb, sizeof(s->bucket[0]));
    s->ring = calloc(cap, sizeof(s->ring[0]));
    if (s->bucket == NULL || s->ring == NULL || pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s->bucket);
        free(s->ring);
        s->bucket = NULL;
        s->ring = NULL;
        return -1;
    }
    return 0;
}

struct verdict_cache *verdict_cache_new(size_t max_entries, size_t max_bytes)
{
    struct verdict_cache *c = NULL;
    size_t n = VC_SHARDS_MAX;

    if (max_entries == 0 || max_entries > VC_MAX_ENTRIES_LIMIT || max_bytes < VC_MIN_BYTES)
        return NULL;
    /* Fewer shards for tiny caches, so the per-shard shares never round the
     * whole bound up: every shard holds at least one entry and 64 bytes. */
    while (n > 1 && (max_entries < n || max_bytes / n < 64))
        n /= 2;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto err;
    c->shard = aligned_alloc(64, n * sizeof(struct vc_shard));
    if (c->shard == NULL)
        goto err;
    memset(c->shard, 0, n * sizeof(struct vc_shard));
    for (size_t i = 0; i < n; i++) {
        if (shard_init(&c->shard[i], max_entries / n, max_bytes / n) != 0)
            goto err;
        c->n_shards = i + 1; /* verdict_cache_free frees initialised shards only */
    }
    return c;
err:
    verdict_cache_free(c);
    return NULL;
}

void verdict_cache_free(struct verdict_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_shards; i++) {
        struct vc_shard *s = &c->shard[i];
        shard_clear(s);
        free(s->bucket);
        free(s->ring);
        pthread_mutex_destroy(&s->lock);
    }
    free(c->shard);
    free(c);
}

/* ---- get / put ------------------------------------------------------------ */

bool verdict_cache_get(struct verdict_cache *c, void *out, size_t cap, size_t *out_len,
                       const uint8_t key[VERDICT_CACHE_KEY_LEN], int64_t now)
{
    bool hit = false;

    *out_len = 0;
    if (c == NULL)
        return false;
    struct vc_shard *s = shard_of(c, key);
    pthread_mutex_lock(&s->lock);
    struct vc_entry **link = shard_find(s, key);
    if (link != NULL) {
        struct vc_entry *e = *link;
        if (now >= e->valid_from && now <= e->valid_until && e->len <= cap) {
            e->referenced = 1;
            if (e->len > 0)
                memcpy(out, e->data, e->len);
            *out_len = e->len;
            hit = true;
        } else if (now > e->valid_until) {
            shard_remove(s, link); /* can never be valid again */
        }
    }
    pthread_mutex_unlock(&s->lock);
    __atomic_add_fetch(hit ? &s->hits : &s->misses, 1, __ATOMIC_RELAXED);
    return hit;
}

bool verdict_cache_put(struct verdict_cache *c, const uint8_t key[VERDICT_CACHE_KEY_LEN],
                       const void *value, size_t len, int64_t valid_from, int64_t valid_until)
{
    if (c == NULL || (value == NULL && len > 0) || len > VERDICT_CACHE_VALUE_MAX ||
        valid_until < valid_from)
        return false;
    /* Built outside the lock: malloc and the copy are most of a put. */
    struct vc_entry *e = entry_new(key, value, len);
    if (e == NULL)
        return false;
    e->valid_from = valid_from;
    e->valid_until = valid_until;
    struct vc_shard *s = shard_of(c, key);
    if (e->bytes > s->max_bytes) {
        free(e);
        return false;
    }
    pthread_mutex_lock(&s->lock);
    struct vc_entry **link = shard_find(s, key);
    if (link != NULL)
        shard_remove(s, link); /* a replacement is not an eviction */
    shard_place(s, e);
    pthread_mutex_unlock(&s->lock);
    return true;
}

void verdict_cache_stats(struct verdict_cache *c, struct verdict_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; c != NULL && i < c->n_shards; i++) {
        struct vc_shard *s = &c->shard[i];
        out->hits += __atomic_load_n(&s->hits, __ATOMIC_RELAXED);
        out->misses += __atomic_load_n(&s->misses, __ATOMIC_RELAXED);
        out->evictions += __atomic_load_n(&s->evictions, __ATOMIC_RELAXED);
        pthread_mutex_lock(&s->lock);
        out->entries += s->count;
        out->bytes += s->bytes;
        pthread_mutex_unlock(&s->lock);
    }
}

void verdict_cache_clear(struct verdict_cache *c)
{
    for (size_t i = 0; c != NULL && i < c->n_shards; i++) {
        pthread_mutex_lock(&c->shard[i].lock);
        shard_clear(&c->shard[i]);
        pthread_mutex_unlock(&c->shard[i].lock);
    }
}
