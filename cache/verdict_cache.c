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

#include <openssl/sha.h>

#define VC_SHARDS_MAX 64
#define VC_MAX_ENTRIES_LIMIT ((size_t)1 << 26)
#define VC_MIN_BYTES 4096
#define VC_MALLOC_OVERHEAD 16 /* glibc chunk header, rounded */
#define VC_REF_PACKED (32 + 32 + 8 + 1) /* + serial octets */

/* One cached verdict: a single allocation. data[] holds the references
 * (issuer name hash, issuer key hash, handle, serial length, serial) and
 * then the strings, without NULs, in the order of the len_* fields. */
struct vc_entry {
    struct vc_entry *next; /* bucket chain */
    uint32_t ring_pos;
    uint32_t bytes; /* accounted size */
    uint8_t key[32];
    int64_t valid_from, valid_until;
    uint64_t crl_gen, deny_gen;
    int64_t not_after_unix;
    uint8_t decision, reason, kind, has_leaf;
    uint8_t referenced; /* CLOCK bit, set by hits */
    uint8_t n_refs;
    uint8_t len_detail, len_subject, len_issuer, len_serial_hex, len_profile;
    uint8_t leaf_sha256[32];
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

/* ---- key --------------------------------------------------------------- */

static void sha_u64(SHA256_CTX *ctx, uint64_t v)
{
    uint8_t b[8];

    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    SHA256_Update(ctx, b, sizeof(b));
}

static void sha_bytes(SHA256_CTX *ctx, const struct cv_bytes *b)
{
    sha_u64(ctx, b->len);
    if (b->len > 0)
        SHA256_Update(ctx, b->data, b->len);
}

/* Digests of certificates this thread keeps seeing. A front end's chains
 * share a few issuing CAs, and many users log in with one tenant
 * certificate, so most of a chain's certificates are found here: a memcmp
 * instead of a SHA-256. A certificate is remembered once it was hashed
 * twice within the last few misses (a device's own leaf, seen once, never
 * evicts the shared ones), and a slot answers only for the very same
 * bytes. */
#define MEMO_SLOTS 4
#define MEMO_MAX_DER 2048
#define MEMO_SEEN 8

struct der_memo {
    size_t len; /* 0 = empty */
    uint8_t digest[32];
    uint8_t der[MEMO_MAX_DER];
};

static _Thread_local struct der_memo memo[MEMO_SLOTS];
static _Thread_local unsigned memo_next;
static _Thread_local uint8_t seen[MEMO_SEEN][32]; /* digests of recent misses */
static _Thread_local unsigned seen_next;

static void memo_add(const struct cv_bytes *b, const uint8_t digest[32])
{
    struct der_memo *m = &memo[memo_next++ % MEMO_SLOTS];

    m->len = b->len;
    memcpy(m->der, b->data, b->len);
    memcpy(m->digest, digest, 32);
}

static void cert_digest(uint8_t out[32], const struct cv_bytes *b)
{
    if (b->len == 0 || b->len > MEMO_MAX_DER) {
        SHA256(b->data, b->len, out);
        return;
    }
    for (unsigned i = 0; i < MEMO_SLOTS; i++)
        if (memo[i].len == b->len && memcmp(memo[i].der, b->data, b->len) == 0) {
            memcpy(out, memo[i].digest, 32);
            return;
        }
    SHA256(b->data, b->len, out);
    for (unsigned i = 0; i < MEMO_SEEN; i++)
        if (memcmp(seen[i], out, 32) == 0) {
            memo_add(b, out);
            return;
        }
    memcpy(seen[seen_next++ % MEMO_SEEN], out, 32);
}

void verdict_cache_key(uint8_t out[32], const struct chain_input *in, uint64_t config_version)
{
    static const char label[] = "certval verdict cache key v2";
    SHA256_CTX ctx;

    SHA256_Init(&ctx);
    /* The label keeps these keys apart from any other SHA-256 in the
     * service; the count, the fixed-size digest of each certificate and
     * the 64-bit length prefixes make the encoding injective (no
     * chain/tenant/device split can collide with another). Certificates
     * are looked up in the thread's memo first. */
    SHA256_Update(&ctx, label, sizeof(label));
    sha_u64(&ctx, in->n_certs);
    for (size_t i = 0; i < in->n_certs; i++) {
        uint8_t d[32];

        cert_digest(d, &in->certs[i]);
        SHA256_Update(&ctx, d, sizeof(d));
    }
    sha_bytes(&ctx, &in->tenant_id);
    sha_bytes(&ctx, &in->device_id);
    sha_u64(&ctx, config_version);
    SHA256_Final(out, &ctx);
}

/* ---- entries ------------------------------------------------------------- */

static size_t str_len(const char *s, size_t cap)
{
    /* Fixed-size fields of struct verdict: at most cap - 1 bytes, and the
     * largest (256) still fits the uint8_t lengths. */
    size_t n = strnlen(s, cap - 1);
    return n > 255 ? 255 : n;
}

static uint8_t *put_str(uint8_t *p, uint8_t *out_len, const char *s, size_t cap)
{
    size_t n = str_len(s, cap);

    memcpy(p, s, n);
    *out_len = (uint8_t)n;
    return p + n;
}

static const uint8_t *get_str(const uint8_t *p, char *out, size_t n)
{
    memcpy(out, p, n);
    out[n] = 0;
    return p + n;
}

/* entry_new packs |v| and |refs|; NULL when refs are out of bounds or on
 * allocation failure. */
static struct vc_entry *entry_new(const uint8_t key[32], const struct verdict *v,
                                  const struct vc_revocation_refs *refs)
{
    size_t n_refs = refs ? refs->n : 0, size = sizeof(struct vc_entry);

    if (n_refs > VC_MAX_REFS)
        return NULL;
    for (size_t i = 0; i < n_refs; i++) {
        if (refs->ref[i].serial_len > VC_SERIAL_MAX)
            return NULL;
        size += VC_REF_PACKED + refs->ref[i].serial_len;
    }
    size += str_len(v->detail, sizeof(v->detail)) + str_len(v->subject, sizeof(v->subject)) +
            str_len(v->issuer, sizeof(v->issuer)) +
            str_len(v->serial_hex, sizeof(v->serial_hex)) +
            str_len(v->profile, sizeof(v->profile));
    struct vc_entry *e = malloc(size);
    if (e == NULL)
        return NULL;
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, 32);
    e->bytes = (uint32_t)(size + VC_MALLOC_OVERHEAD);
    e->crl_gen = refs ? refs->crl_generation : 0;
    e->deny_gen = refs ? refs->deny_generation : 0;
    e->not_after_unix = v->not_after_unix;
    e->decision = (uint8_t)v->decision;
    e->reason = (uint8_t)v->reason;
    e->kind = (uint8_t)v->kind;
    e->has_leaf = v->has_leaf_sha256;
    memcpy(e->leaf_sha256, v->leaf_sha256, 32);
    e->n_refs = (uint8_t)n_refs;

    uint8_t *p = e->data;
    for (size_t i = 0; i < n_refs; i++) {
        const struct vc_revocation_ref *r = &refs->ref[i];
        memcpy(p, r->issuer_name_sha256, 32);
        memcpy(p + 32, r->issuer_key_sha256, 32);
        memcpy(p + 64, &r->handle, 8);
        p[72] = r->serial_len;
        memcpy(p + 73, r->serial, r->serial_len);
        p += VC_REF_PACKED + r->serial_len;
    }
    p = put_str(p, &e->len_detail, v->detail, sizeof(v->detail));
    p = put_str(p, &e->len_subject, v->subject, sizeof(v->subject));
    p = put_str(p, &e->len_issuer, v->issuer, sizeof(v->issuer));
    p = put_str(p, &e->len_serial_hex, v->serial_hex, sizeof(v->serial_hex));
    put_str(p, &e->len_profile, v->profile, sizeof(v->profile));
    return e;
}

/* entry_copy_out unpacks |e|; the caller has zeroed |v| and |refs|. */
static void entry_copy_out(const struct vc_entry *e, struct verdict *v,
                           struct vc_revocation_refs *refs)
{
    const uint8_t *p = e->data;

    v->decision = (enum verdict_decision)e->decision;
    v->reason = (enum verdict_reason)e->reason;
    v->kind = (enum cert_kind)e->kind;
    v->has_leaf_sha256 = e->has_leaf;
    memcpy(v->leaf_sha256, e->leaf_sha256, 32);
    v->not_after_unix = e->not_after_unix;
    for (size_t i = 0; i < e->n_refs; i++) {
        uint8_t slen = p[72];
        if (refs != NULL) {
            struct vc_revocation_ref *r = &refs->ref[i];
            memcpy(r->issuer_name_sha256, p, 32);
            memcpy(r->issuer_key_sha256, p + 32, 32);
            memcpy(&r->handle, p + 64, 8);
            r->serial_len = slen;
            memcpy(r->serial, p + 73, slen);
        }
        p += VC_REF_PACKED + slen;
    }
    if (refs != NULL) {
        refs->n = e->n_refs;
        refs->crl_generation = e->crl_gen;
        refs->deny_generation = e->deny_gen;
    }
    p = get_str(p, v->detail, e->len_detail);
    p = get_str(p, v->subject, e->len_subject);
    p = get_str(p, v->issuer, e->len_issuer);
    p = get_str(p, v->serial_hex, e->len_serial_hex);
    get_str(p, v->profile, e->len_profile);
}

/* ---- shards -------------------------------------------------------------- */

static struct vc_shard *shard_of(const struct verdict_cache *c, const uint8_t key[32])
{
    return &c->shard[key[0] & (c->n_shards - 1)];
}

static struct vc_entry **bucket_of(const struct vc_shard *s, const uint8_t key[32])
{
    uint64_t h;

    memcpy(&h, key + 8, sizeof(h));
    return &s->bucket[h & s->bucket_mask];
}

/* shard_find returns the link that points at |key|'s entry (so the caller
 * can unlink it), or NULL. */
static struct vc_entry **shard_find(const struct vc_shard *s, const uint8_t key[32])
{
    struct vc_entry **link = bucket_of(s, key);

    /* Chains are short: at most |cap| entries over >= |cap| buckets. */
    for (size_t n = 0; *link != NULL && n <= s->cap; n++, link = &(*link)->next)
        if (memcmp((*link)->key, key, 32) == 0)
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

bool verdict_cache_get(struct verdict_cache *c, struct verdict *out,
                       struct vc_revocation_refs *out_refs, const uint8_t key[32], int64_t now)
{
    bool hit = false;

    memset(out, 0, sizeof(*out));
    if (out_refs != NULL)
        memset(out_refs, 0, sizeof(*out_refs));
    if (c == NULL)
        return false;
    struct vc_shard *s = shard_of(c, key);
    pthread_mutex_lock(&s->lock);
    struct vc_entry **link = shard_find(s, key);
    if (link != NULL) {
        struct vc_entry *e = *link;
        if (now >= e->valid_from && now <= e->valid_until) {
            e->referenced = 1;
            entry_copy_out(e, out, out_refs);
            hit = true;
        } else if (now > e->valid_until) {
            shard_remove(s, link); /* can never be valid again */
        }
    }
    pthread_mutex_unlock(&s->lock);
    __atomic_add_fetch(hit ? &s->hits : &s->misses, 1, __ATOMIC_RELAXED);
    return hit;
}

bool verdict_cache_put(struct verdict_cache *c, const uint8_t key[32], const struct verdict *v,
                       const struct vc_revocation_refs *refs, int64_t valid_from,
                       int64_t valid_until)
{
    if (c == NULL || v == NULL || valid_until < valid_from)
        return false;
    /* Built outside the lock: malloc and the copy are most of a put. */
    struct vc_entry *e = entry_new(key, v, refs);
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
