/* Verdict cache: sharded hash table with CLOCK eviction.
 *
 * Shared structures (docs/revocation.md, "Deny list and verdict cache"):
 *  - each shard's CLOCK ring, hand, count and bytes: read and written only
 *    under the shard's mutex, by writers (put, the removal of an expired
 *    entry, clear).
 *  - bucket chains: changed only under the mutex, with release stores;
 *    read without it by gets on registered RCU reader threads (acquire
 *    loads inside an RCU read-side section). An entry is built completely
 *    before it is linked and never changes afterwards (but for its CLOCK
 *    bit, an atomic byte); an unlinked entry is freed after a grace period
 *    (call_rcu), so a get that still walks it reads valid memory and its
 *    unchanged next link. Gets on threads that are not RCU readers take
 *    the mutex instead.
 *  - hit and miss counters: relaxed atomics in per-thread slots, each on
 *    its own cache line, so the gets of a key that every worker hits (a
 *    tenant certificate) write no line another core reads; evictions:
 *    per shard, under the mutex.
 *  - shard bounds, shard count: immutable after verdict_cache_new.
 *
 * Shards are cache-line aligned so two cores working on different shards do
 * not bounce one line. The key is a SHA-256, so its bytes are uniform: the
 * first byte picks the shard, bytes 8..15 the bucket. */
#include "verdict_cache.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-memb.h>

#include "rcu_reader.h"
#include "tsan_grace.h"

#define VC_SHARDS_MAX 64
#define VC_MAX_ENTRIES_LIMIT ((size_t)1 << 26)
#define VC_MIN_BYTES 4096
#define VC_MALLOC_OVERHEAD 16 /* glibc chunk header, rounded */
#define VC_COUNT_SLOTS 64      /* hit/miss counter slots, power of two */

/* Readers release it when they leave the read side; the call_rcu callback
 * that frees an entry acquires it (tsan_grace.h). */
static char vc_tsan_grace;

/* One cached value: a single allocation, the value's bytes in data[]. */
struct vc_entry {
    struct vc_entry *next; /* bucket chain; atomic stores, see above */
    struct rcu_head rcu;   /* the deferred free */
    uint32_t ring_pos;
    uint32_t bytes; /* accounted size */
    uint8_t key[VERDICT_CACHE_KEY_LEN];
    int64_t valid_from, valid_until;
    uint16_t len;       /* of data[], <= VERDICT_CACHE_VALUE_MAX */
    uint8_t referenced; /* CLOCK bit, set by hits (relaxed atomic) */
    uint8_t data[];
};

struct vc_shard {
    _Alignas(64) pthread_mutex_t lock;
    struct vc_entry **bucket; /* power-of-two count */
    size_t bucket_mask;
    struct vc_entry **ring; /* CLOCK ring, |cap| slots, NULL = free */
    size_t cap, hand, count;
    size_t bytes, max_bytes;
    uint64_t evictions; /* relaxed atomic (read by stats without the mutex) */
};

struct vc_count {
    _Alignas(64) uint64_t hits, misses; /* relaxed atomics */
};

struct verdict_cache {
    size_t n_shards; /* power of two */
    struct vc_shard *shard;
    struct vc_count *count; /* VC_COUNT_SLOTS slots */
};

/* count_of: the calling thread's counter slot (threads numbered in the
 * order of their first get; more threads than slots share slots). */
static struct vc_count *count_of(const struct verdict_cache *c)
{
    static unsigned next_slot;
    static _Thread_local unsigned slot_plus_one;

    if (slot_plus_one == 0)
        slot_plus_one = __atomic_fetch_add(&next_slot, 1, __ATOMIC_RELAXED) % VC_COUNT_SLOTS + 1;
    return &c->count[slot_plus_one - 1];
}

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

static void entry_free_cb(struct rcu_head *head)
{
    tsan_grace_acquire(&vc_tsan_grace);
    free((char *)head - offsetof(struct vc_entry, rcu));
}

/* entry_retire frees |e|, already unlinked, once every reader that may
 * still see it has left its read-side section. call_rcu needs a
 * registered thread: a writer that is not one registers for the call. */
static void entry_retire(struct vc_entry *e)
{
    bool registered_here = certval_rcu_writer_begin();

    tsan_grace_release(&vc_tsan_grace); /* the writer's own accesses precede the free */
    urcu_memb_call_rcu(&e->rcu, entry_free_cb);
    certval_rcu_writer_end(registered_here);
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

static struct vc_entry *link_load(struct vc_entry *const *link)
{
    return __atomic_load_n(link, __ATOMIC_ACQUIRE);
}

static void link_store(struct vc_entry **link, struct vc_entry *e)
{
    __atomic_store_n(link, e, __ATOMIC_RELEASE);
}

/* shard_find returns the link that points at |key|'s entry (so the caller
 * can unlink it) and the entry in |*found|, or NULL. Under the mutex, or
 * inside an RCU read-side section; there the link may point elsewhere by
 * the time it is read again (only writers use it), while |*found| stays
 * valid until the section ends. */
static struct vc_entry **shard_find(const struct vc_shard *s,
                                    const uint8_t key[VERDICT_CACHE_KEY_LEN],
                                    struct vc_entry **found)
{
    struct vc_entry **link = bucket_of(s, key);
    struct vc_entry *e;

    /* Chains are short: at most |cap| entries over >= |cap| buckets. */
    for (size_t n = 0; (e = link_load(link)) != NULL && n <= s->cap; n++, link = &e->next) {
        if (memcmp(e->key, key, VERDICT_CACHE_KEY_LEN) == 0) {
            *found = e;
            return link;
        }
    }
    *found = NULL;
    return NULL;
}

/* shard_remove unlinks the entry |*link| points at and frees it after a
 * grace period. Under the mutex. */
static void shard_remove(struct vc_shard *s, struct vc_entry **link)
{
    struct vc_entry *e = *link;

    link_store(link, e->next);
    s->ring[e->ring_pos] = NULL;
    s->count--;
    s->bytes -= e->bytes;
    entry_retire(e);
}

static void shard_evict(struct vc_shard *s, struct vc_entry *victim)
{
    struct vc_entry *found;
    struct vc_entry **link = shard_find(s, victim->key, &found);

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
        } else if (__atomic_load_n(&cur->referenced, __ATOMIC_RELAXED)) {
            __atomic_store_n(&cur->referenced, 0, __ATOMIC_RELAXED);
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
    link_store(b, e); /* publishes the entry built before */
    s->count++;
    s->bytes += e->bytes;
}

/* shard_clear empties the shard. |now_unused|: no thread can be reading it
 * any more (verdict_cache_free), so entries are freed at once; otherwise
 * every chain is cut first and each entry freed after a grace period. */
static void shard_clear(struct vc_shard *s, bool now_unused)
{
    for (size_t i = 0; i <= s->bucket_mask; i++)
        link_store(&s->bucket[i], NULL);
    for (size_t i = 0; i < s->cap; i++) {
        if (s->ring[i] == NULL)
            continue;
        if (now_unused)
            free(s->ring[i]);
        else
            entry_retire(s->ring[i]);
        s->ring[i] = NULL;
    }
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
    c->count = aligned_alloc(64, VC_COUNT_SLOTS * sizeof(struct vc_count));
    if (c->shard == NULL || c->count == NULL)
        goto err;
    memset(c->count, 0, VC_COUNT_SLOTS * sizeof(struct vc_count));
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
        shard_clear(s, true);
        free(s->bucket);
        free(s->ring);
        pthread_mutex_destroy(&s->lock);
    }
    free(c->shard);
    free(c->count);
    free(c);
}

/* ---- get / put ------------------------------------------------------------ */

bool verdict_cache_get(struct verdict_cache *c, void *out, size_t cap, size_t *out_len,
                       const uint8_t key[VERDICT_CACHE_KEY_LEN], int64_t now)
{
    bool hit = false, expired = false;
    /* Lock-free on RCU reader threads (the workers, the transport
     * threads); the mutex elsewhere. */
    bool rcu = certval_rcu_reader_registered();

    *out_len = 0;
    if (c == NULL)
        return false;
    struct vc_shard *s = shard_of(c, key);
    if (rcu)
        urcu_memb_read_lock();
    else
        pthread_mutex_lock(&s->lock);
    struct vc_entry *e;
    struct vc_entry **link = shard_find(s, key, &e);
    if (e != NULL) {
        if (now >= e->valid_from && now <= e->valid_until && e->len <= cap) {
            /* Written only when clear: a line every core reads stays shared. */
            if (!__atomic_load_n(&e->referenced, __ATOMIC_RELAXED))
                __atomic_store_n(&e->referenced, 1, __ATOMIC_RELAXED);
            if (e->len > 0)
                memcpy(out, e->data, e->len);
            *out_len = e->len;
            hit = true;
        } else {
            expired = now > e->valid_until; /* can never be valid again */
        }
    }
    if (rcu) {
        tsan_grace_release(&vc_tsan_grace);
        urcu_memb_read_unlock();
    }
    if (expired) {
        /* Found again under the mutex: another writer may have removed or
         * replaced it meanwhile. */
        if (rcu)
            pthread_mutex_lock(&s->lock);
        link = shard_find(s, key, &e);
        if (link != NULL && now > e->valid_until)
            shard_remove(s, link);
    }
    if (!rcu || expired)
        pthread_mutex_unlock(&s->lock);
    struct vc_count *n = count_of(c);
    __atomic_add_fetch(hit ? &n->hits : &n->misses, 1, __ATOMIC_RELAXED);
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
    struct vc_entry *old;
    struct vc_entry **link = shard_find(s, key, &old);
    if (old != NULL && s->bytes - old->bytes + e->bytes <= s->max_bytes) {
        /* A replacement that fits (not an eviction): the new entry takes
         * the old one's place in its chain and ring slot in one store, so
         * a lock-free get finds the new value or the old one, never
         * neither. */
        e->next = old->next;
        e->ring_pos = old->ring_pos;
        s->ring[old->ring_pos] = e;
        s->bytes = s->bytes - old->bytes + e->bytes;
        link_store(link, e);
        entry_retire(old);
    } else {
        if (old != NULL)
            shard_remove(s, link); /* a replacement is not an eviction */
        shard_place(s, e);
    }
    pthread_mutex_unlock(&s->lock);
    return true;
}

void verdict_cache_stats(struct verdict_cache *c, struct verdict_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; c != NULL && i < VC_COUNT_SLOTS; i++) {
        out->hits += __atomic_load_n(&c->count[i].hits, __ATOMIC_RELAXED);
        out->misses += __atomic_load_n(&c->count[i].misses, __ATOMIC_RELAXED);
    }
    for (size_t i = 0; c != NULL && i < c->n_shards; i++) {
        struct vc_shard *s = &c->shard[i];
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
        shard_clear(&c->shard[i], false);
        pthread_mutex_unlock(&c->shard[i].lock);
    }
}
