/* Lock-free CRL cache: issuer index, RCU publication, add and check.
 *
 * Shared structures (docs/revocation.md has the full protocol):
 *  - c->index: immutable array of snapshot pointers sorted by issuer id
 *    (SHA-256 of subject DER || SHA-256 of public key bits). Written only
 *    under c->write_lock, by building a new array and storing the pointer
 *    with release order; read by crl_cache_check under the RCU read lock
 *    with an acquire load. Replaced arrays and snapshots are freed with
 *    call_rcu after a grace period.
 *  - snapshots: immutable after publication (crl_snapshot_internal.h).
 *  - c->generation, c->issuer_count: atomics written under write_lock.
 *
 * The pointer is published with __atomic builtins rather than liburcu's
 * rcu_xchg_pointer / rcu_dereference: same instructions on x86-64 (a plain
 * store and a plain load), but visible to ThreadSanitizer, which does not
 * understand liburcu's inline assembly. */
#include "crl_cache.h"
#include "dsa_verify.h"
#include "rcu_reader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-memb.h>

#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/obj.h>
#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "crl_parse_internal.h"
#include "crl_snapshot_internal.h"

#define ERRF(...) ((err) && (errlen) ? (void)snprintf((err), (errlen), __VA_ARGS__) : (void)0)

/* ThreadSanitizer cannot see that an RCU grace period orders a reader's
 * last access to a snapshot before call_rcu frees it (the ordering comes
 * from membarrier in uninstrumented liburcu). Readers "release" and the
 * free callbacks "acquire" one sync object to tell it. No-ops otherwise. */
#if defined(__SANITIZE_THREAD__)
#define CRL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CRL_TSAN 1
#endif
#endif
#ifdef CRL_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static char crl_tsan_grace;
#define TSAN_RELEASE() __tsan_release(&crl_tsan_grace)
#define TSAN_ACQUIRE() __tsan_acquire(&crl_tsan_grace)
#else
#define TSAN_RELEASE() ((void)0)
#define TSAN_ACQUIRE() ((void)0)
#endif

struct crl_index {
    struct rcu_head rcu;
    size_t n;
    struct crl_snapshot *snap[]; /* sorted by id */
};

struct crl_cache {
    struct crl_index *index; /* RCU-protected; NULL = empty */
    pthread_mutex_t write_lock;
    uint64_t generation; /* atomic */
    size_t issuer_count; /* atomic */
    uint64_t sip_key[2]; /* immutable after crl_cache_new */
};

/* call_rcu and rcu_barrier take the read lock internally, so the writer
 * thread must be registered; writers may be any thread, so register for
 * the duration of the call when the thread is not a reader already. */
static bool writer_rcu_begin(void)
{
    if (certval_rcu_reader_registered())
        return false;
    certval_rcu_reader_register();
    return true;
}

static void writer_rcu_end(bool registered_here)
{
    if (registered_here)
        certval_rcu_reader_unregister();
}

/* ---- index ------------------------------------------------------------- */

/* snap_cmp orders the index: issuer id (name hash, then key hash), then
 * complete before delta, then scope_id. All CRLs of one issuer name are
 * therefore adjacent, the name's plain complete CRL first of its key. */
static int snap_cmp(const struct crl_snapshot *a, const uint8_t *id, bool delta,
                    const uint8_t *scope_id)
{
    int cmp = memcmp(a->id, id, CRL_ID_LEN);

    if (cmp != 0)
        return cmp;
    if (a->delta != delta)
        return a->delta ? 1 : -1;
    return memcmp(a->scope_id, scope_id, sizeof(a->scope_id));
}

/* index_find_pos binary-searches |idx| for the partition of |probe_snap|
 * (id, kind, scope): true with its position, or false with the position
 * where it would be inserted. */
static bool index_find_pos(const struct crl_index *idx, const struct crl_snapshot *probe_snap,
                           size_t *out_pos)
{
    size_t lo = 0, hi = idx ? idx->n : 0;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = snap_cmp(idx->snap[mid], probe_snap->id, probe_snap->delta,
                           probe_snap->scope_id);
        if (cmp == 0) {
            *out_pos = mid;
            return true;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *out_pos = lo;
    return false;
}

/* index_lower_bound returns the first position whose id starts with the
 * |len| bytes of |key| (len 64: that issuer; 32: that issuer name), or
 * idx->n when there is none. */
static size_t index_lower_bound(const struct crl_index *idx, const uint8_t *key, size_t len)
{
    size_t lo = 0, hi = idx ? idx->n : 0;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(idx->snap[mid]->id, key, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (idx == NULL || lo == idx->n || memcmp(idx->snap[lo]->id, key, len) != 0)
        return idx ? idx->n : 0;
    return lo;
}

/* distinct_ids counts the issuers (name and key) of |idx|. */
static size_t distinct_ids(const struct crl_index *idx)
{
    size_t n = 0;

    for (size_t i = 0; i < idx->n; i++)
        n += i == 0 || memcmp(idx->snap[i - 1]->id, idx->snap[i]->id, CRL_ID_LEN) != 0;
    return n;
}

/* index_with returns a copy of |old| with |snap| at |pos|, replacing the
 * entry there when |replace|. NULL on allocation failure. */
static struct crl_index *index_with(const struct crl_index *old, size_t pos, bool replace,
                                    struct crl_snapshot *snap)
{
    size_t old_n = old ? old->n : 0;
    size_t n = replace ? old_n : old_n + 1;
    struct crl_index *idx = calloc(1, sizeof(*idx) + n * sizeof(idx->snap[0]));

    if (idx == NULL)
        return NULL;
    idx->n = n;
    if (old_n > 0) {
        memcpy(idx->snap, old->snap, pos * sizeof(idx->snap[0]));
        size_t tail = replace ? pos + 1 : pos;
        memcpy(idx->snap + pos + 1, old->snap + tail, (old_n - tail) * sizeof(idx->snap[0]));
    }
    idx->snap[pos] = snap;
    return idx;
}

static void index_free_cb(struct rcu_head *head)
{
    TSAN_ACQUIRE();
    free(caa_container_of(head, struct crl_index, rcu));
}

static void snapshot_free_cb(struct rcu_head *head)
{
    TSAN_ACQUIRE();
    crl_snapshot_free(caa_container_of(head, struct crl_snapshot, rcu));
}

/* ---- cache lifecycle --------------------------------------------------- */

struct crl_cache *crl_cache_new(void)
{
    struct crl_cache *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    if (pthread_mutex_init(&c->write_lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    RAND_bytes((uint8_t *)c->sip_key, sizeof(c->sip_key));
    return c;
}

struct crl_cache *crl_cache_new_aside(const struct crl_cache *c)
{
    struct crl_cache *aside = crl_cache_new();

    /* Same hash key: snapshots hash serials with it, so they can move. */
    if (aside != NULL)
        memcpy(aside->sip_key, c->sip_key, sizeof(aside->sip_key));
    return aside;
}

void crl_cache_free(struct crl_cache *c)
{
    if (c == NULL)
        return;
    struct crl_index *idx = c->index;
    for (size_t i = 0; idx != NULL && i < idx->n; i++)
        crl_snapshot_free(idx->snap[i]);
    free(idx);
    /* Run the callbacks of earlier replacements before returning, so the
     * cache's memory is all gone when this returns (leak checkers, tests). */
    bool reg = writer_rcu_begin();
    urcu_memb_barrier();
    writer_rcu_end(reg);
    pthread_mutex_destroy(&c->write_lock);
    free(c);
}

size_t crl_cache_issuer_count(const struct crl_cache *c)
{
    return c ? __atomic_load_n(&c->issuer_count, __ATOMIC_RELAXED) : 0;
}

uint64_t crl_cache_generation(const struct crl_cache *c)
{
    return c ? __atomic_load_n(&c->generation, __ATOMIC_ACQUIRE) : 0;
}

/* ---- issuer identity and serials --------------------------------------- */

/* issuer_id_compute computes the index key of |issuer|. The subject's
 * cached DER is used as is: the issuer must be a parsed (immutable)
 * certificate, which is what makes this safe from many threads at once. */
static int issuer_id_compute(const uint8_t *name, size_t name_len, const X509 *issuer,
                             uint8_t id[CRL_ID_LEN])
{
    unsigned md_len = 0;

    SHA256(name, name_len, id);
    if (!X509_pubkey_digest(issuer, EVP_sha256(), id + 32, &md_len) || md_len != 32)
        return -1;
    return 0;
}

/* Two SHA-256 per check cost more than the lookup itself, and a thread
 * usually checks many certificates of one issuer in a row: remember the
 * last issuer per thread, keyed by content (name DER and key bits), never
 * by pointer, so a freed and reallocated X509 cannot alias. */
struct issuer_memo {
    bool valid;
    uint8_t id[CRL_ID_LEN];
    size_t name_len, key_len;
    uint8_t name[512];
    uint8_t key[1024]; /* RSA-8192 key bits fit */
};

static _Thread_local struct issuer_memo crl_issuer_memo;

static int issuer_id(const X509 *issuer, uint8_t id[CRL_ID_LEN])
{
    struct issuer_memo *m = &crl_issuer_memo;
    const uint8_t *name = NULL;
    size_t name_len = 0;
    const ASN1_BIT_STRING *key = X509_get0_pubkey_bitstr(issuer);

    if (key == NULL || !X509_NAME_get0_der(X509_get_subject_name(issuer), &name, &name_len))
        return -1;
    size_t key_len = (size_t)ASN1_STRING_length(key);
    const uint8_t *key_data = ASN1_STRING_get0_data(key);
    if (m->valid && m->name_len == name_len && m->key_len == key_len &&
        memcmp(m->name, name, name_len) == 0 && memcmp(m->key, key_data, key_len) == 0) {
        memcpy(id, m->id, CRL_ID_LEN);
        return 0;
    }
    if (issuer_id_compute(name, name_len, issuer, id) != 0)
        return -1;
    m->valid = name_len <= sizeof(m->name) && key_len <= sizeof(m->key);
    if (m->valid) {
        memcpy(m->id, id, CRL_ID_LEN);
        memcpy(m->name, name, name_len);
        memcpy(m->key, key_data, key_len);
        m->name_len = name_len;
        m->key_len = key_len;
    }
    return 0;
}

/* serial_content writes the DER content octets of |serial| (two's
 * complement, minimal) to |buf|: the form CRL entries are stored in. */
static int serial_content(const ASN1_INTEGER *serial, uint8_t *buf, size_t cap, size_t *out_len)
{
    uint8_t *p = buf;
    int n = i2c_ASN1_INTEGER(serial, NULL);
    CBS cbs;

    if (n <= 0 || (size_t)n > cap || i2c_ASN1_INTEGER(serial, &p) != n)
        return -1;
    CBS_init(&cbs, buf, (size_t)n);
    crl_parse_integer_minimal(&cbs);
    memmove(buf, CBS_data(&cbs), CBS_len(&cbs));
    *out_len = CBS_len(&cbs);
    return 0;
}

/* ---- check ------------------------------------------------------------- */

static enum crl_status snapshot_status(const struct crl_snapshot *s, uint64_t hash,
                                       const uint8_t *serial, size_t len, bool listable,
                                       int64_t now, uint32_t grace, struct crl_check_info *info)
{
    info->this_update = s->this_update;
    info->next_update = s->next_update;
    info->crl_number_low = s->crl_number_low;
    info->scope = s->scope;
    info->sig_nid = s->sig_nid;
    info->has_crl_number = s->has_crl_number;
    /* RFC 5280 5.2 / 5.3: a CRL with a critical extension we cannot process
     * must not be used for any certificate, listed or not. */
    if (s->flags != 0 || now < s->this_update)
        return CRL_STATUS_UNUSABLE;
    if (listable &&
        crl_snapshot_find(s, hash, serial, len, &info->revocation_reason, &info->revocation_date))
        return CRL_STATUS_REVOKED; /* even when stale: revocation is permanent */
    if (s->next_update != 0 && now > s->next_update + (int64_t)grace)
        return CRL_STATUS_STALE;
    return CRL_STATUS_GOOD;
}

/* number_cmp compares two minimal big-endian non-negative numbers. */
static int number_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen != blen)
        return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

/* delta_applies: RFC 5280 5.2.4, a delta CRL applies to a complete CRL of
 * the same scope whose cRLNumber is >= the delta's BaseCRLNumber, and only
 * adds information when it is newer than that complete CRL. */
static bool delta_applies(const struct crl_snapshot *d, const struct crl_snapshot *full)
{
    return d->has_crl_number && full->has_crl_number &&
           memcmp(d->scope_id, full->scope_id, sizeof(d->scope_id)) == 0 &&
           number_cmp(d->base_number, d->base_number_len, full->crl_number,
                      full->crl_number_len) <= 0 &&
           number_cmp(d->crl_number, d->crl_number_len, full->crl_number, full->crl_number_len) >
               0;
}

/* group_status answers check_id when the name holds more than one plain
 * complete CRL: with one signing key, one complete CRL without DP/reason
 * scope and at most one delta, RFC 5280 6.3.3 needs nothing but the
 * serial (deltas first: (i)/(j), removeFromCRL un-lists). Anything else
 * depends on the certificate (its DPs, kind, CRL issuer path):
 * info->needs_cert. */
static enum crl_status group_status(const struct crl_cache *c, const struct crl_index *idx,
                                    size_t first, const uint8_t id[CRL_ID_LEN],
                                    const uint8_t *serial, size_t len, bool listable, int64_t now,
                                    uint32_t grace, struct crl_check_info *info)
{
    const struct crl_snapshot *full = NULL, *delta = NULL;
    enum crl_status st;
    int reason;
    int64_t at;

    for (size_t i = first; i < idx->n && memcmp(idx->snap[i]->id, id, 32) == 0; i++) {
        const struct crl_snapshot *s = idx->snap[i];
        bool scoped = s->has_dp_name || s->reasons != CRL_REASONS_ALL;
        if (memcmp(s->id, id, CRL_ID_LEN) != 0 || scoped || (s->delta ? delta : full) != NULL) {
            info->needs_cert = true;
            return CRL_STATUS_UNUSABLE;
        }
        if (s->delta)
            delta = s;
        else
            full = s;
    }
    if (full == NULL)
        return CRL_STATUS_UNUSABLE; /* a delta alone decides nothing (6.3.3 (g)) */
    st = CRL_STATUS_GOOD;
    info->this_update = full->this_update;
    info->next_update = full->next_update;
    info->crl_number_low = full->crl_number_low;
    info->scope = full->scope;
    info->sig_nid = full->sig_nid;
    info->has_crl_number = full->has_crl_number;
    if (full->flags != 0 || now < full->this_update)
        return CRL_STATUS_UNUSABLE;
    if (delta != NULL && delta_applies(delta, full) && delta->flags == 0 &&
        now >= delta->this_update) {
        info->crl_number_low = delta->crl_number_low;
        if (listable && crl_snapshot_lookup(delta, c->sip_key, id, serial, len, &reason, &at)) {
            if (reason != 8) { /* removeFromCRL: no longer revoked (RFC 5280 5.3.1) */
                info->revocation_reason = reason;
                info->revocation_date = at;
                return CRL_STATUS_REVOKED;
            }
            listable = false; /* the delta's answer overrides the complete CRL's */
        }
        if (delta->next_update != 0 && now > delta->next_update + (int64_t)grace)
            st = CRL_STATUS_STALE;
    }
    if (listable && crl_snapshot_lookup(full, c->sip_key, id, serial, len, &reason, &at) &&
        reason != 8) {
        info->revocation_reason = reason;
        info->revocation_date = at;
        return CRL_STATUS_REVOKED;
    }
    if (full->next_update != 0 && now > full->next_update + (int64_t)grace)
        return CRL_STATUS_STALE;
    return st;
}

static enum crl_status check_id(const struct crl_cache *c, const uint8_t id[CRL_ID_LEN],
                                const uint8_t *serial, size_t len, bool listable, int64_t now,
                                uint32_t grace_seconds, struct crl_check_info *info)
{
    uint64_t hash = listable ? crl_snapshot_hash(c->sip_key, serial, len) : 0;
    enum crl_status st = CRL_STATUS_NO_CRL;

    urcu_memb_read_lock();
    /* Acquire pairs with the writer's release store: the snapshot's
     * contents, written before publication, are visible here. */
    const struct crl_index *idx = __atomic_load_n(&c->index, __ATOMIC_ACQUIRE);
    size_t pos = index_lower_bound(idx, id, CRL_ID_LEN);
    if (idx != NULL && pos < idx->n) {
        const struct crl_snapshot *s = idx->snap[pos];
        /* Fast path, the common case: this name has exactly one CRL, a plain
         * complete one (neighbours in the index have other names). */
        bool alone = (pos == 0 || memcmp(idx->snap[pos - 1]->id, id, 32) != 0) &&
                     (pos + 1 == idx->n || memcmp(idx->snap[pos + 1]->id, id, 32) != 0);
        if (alone && crl_snapshot_is_plain(s))
            st = snapshot_status(s, hash, serial, len, listable, now, grace_seconds, info);
        else
            st = group_status(c, idx, index_lower_bound(idx, id, 32), id, serial, len, listable,
                              now, grace_seconds, info);
    }
    TSAN_RELEASE();
    urcu_memb_read_unlock();
    return st;
}

static void info_init(struct crl_check_info *info)
{
    memset(info, 0, sizeof(*info));
    info->revocation_reason = -1;
}

enum crl_status crl_cache_check(const struct crl_cache *c, const X509 *issuer,
                                const ASN1_INTEGER *serial, int64_t now, uint32_t grace_seconds,
                                struct crl_check_info *info)
{
    struct crl_check_info scratch;
    uint8_t id[CRL_ID_LEN], buf[CRL_SERIAL_MAX + 1];
    size_t len = 0;

    if (info == NULL)
        info = &scratch;
    info_init(info);
    if (c == NULL || issuer == NULL || serial == NULL || issuer_id(issuer, id) != 0)
        return CRL_STATUS_NO_CRL;
    /* A serial too long to store cannot be listed; the CRL still decides. */
    bool listable = serial_content(serial, buf, sizeof(buf), &len) == 0;
    return check_id(c, id, buf, len, listable, now, grace_seconds, info);
}

int crl_cache_issuer_id(uint8_t out[CRL_CACHE_ISSUER_ID_LEN], const X509 *issuer)
{
    return issuer_id(issuer, out);
}

int crl_cache_serial_content(uint8_t *out, size_t cap, size_t *out_len, const ASN1_INTEGER *serial)
{
    return serial_content(serial, out, cap, out_len);
}

enum crl_status crl_cache_check_id(const struct crl_cache *c,
                                   const uint8_t issuer_id[CRL_CACHE_ISSUER_ID_LEN],
                                   const uint8_t *serial, size_t serial_len, int64_t now,
                                   uint32_t grace_seconds, struct crl_check_info *info)
{
    struct crl_check_info scratch;

    if (info == NULL)
        info = &scratch;
    info_init(info);
    if (c == NULL || issuer_id == NULL || serial == NULL)
        return CRL_STATUS_NO_CRL;
    return check_id(c, issuer_id, serial, serial_len, serial_len <= CRL_SERIAL_MAX, now,
                    grace_seconds, info);
}

static void crl_info_fill(const struct crl_cache *c, const struct crl_snapshot *s,
                          struct crl_cache_crl *o, const uint8_t cert_issuer[32],
                          const uint8_t *serial, size_t len)
{
    memset(o, 0, sizeof(*o));
    memcpy(o->signer_key, s->id + 32, 32);
    memcpy(o->scope_id, s->scope_id, sizeof(o->scope_id));
    o->delta = s->delta;
    o->indirect = s->indirect;
    o->usable = s->flags == 0;
    o->scope = s->scope;
    o->reasons = s->reasons;
    o->has_dp_name = s->has_dp_name;
    o->n_dp_names = s->n_dp_names;
    if (s->n_dp_names > 0)
        memcpy(o->dp_names, s->dp_names, (size_t)s->n_dp_names * 32);
    o->this_update = s->this_update;
    o->next_update = s->next_update;
    o->has_crl_number = s->has_crl_number;
    o->sig_nid = s->sig_nid;
    memcpy(o->crl_number, s->crl_number, s->crl_number_len);
    o->crl_number_len = s->crl_number_len;
    o->crl_number_low = s->crl_number_low;
    memcpy(o->base_number, s->base_number, s->base_number_len);
    o->base_number_len = s->base_number_len;
    o->revocation_reason = -1;
    o->listed = len <= CRL_SERIAL_MAX &&
                crl_snapshot_lookup(s, c->sip_key, cert_issuer, serial, len,
                                    &o->revocation_reason, &o->revocation_date);
}

size_t crl_cache_lookup_name(const struct crl_cache *c, struct crl_cache_crl *out, size_t cap,
                             const uint8_t crl_issuer_name[CRL_NAME_HASH_LEN],
                             const uint8_t cert_issuer_name[CRL_NAME_HASH_LEN],
                             const uint8_t *serial, size_t serial_len)
{
    size_t n = 0;

    if (c == NULL)
        return 0;
    urcu_memb_read_lock();
    /* Acquire pairs with the writer's release store, as in check_id. */
    const struct crl_index *idx = __atomic_load_n(&c->index, __ATOMIC_ACQUIRE);
    for (size_t i = index_lower_bound(idx, crl_issuer_name, 32);
         idx != NULL && i < idx->n && memcmp(idx->snap[i]->id, crl_issuer_name, 32) == 0; i++) {
        if (n < cap)
            crl_info_fill(c, idx->snap[i], &out[n], cert_issuer_name, serial, serial_len);
        n++;
    }
    TSAN_RELEASE();
    urcu_memb_read_unlock();
    return n;
}

/* ---- signature verification -------------------------------------------- */

struct crl_sig_alg {
    uint8_t oid[9];
    uint8_t oid_len;
    int pkey_type;
    const EVP_MD *(*md)(void); /* NULL: the key hashes itself (Ed25519) */
};

static const struct crl_sig_alg crl_sig_algs[] = {
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}, 8, EVP_PKEY_EC, EVP_sha256},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}, 8, EVP_PKEY_EC, EVP_sha384},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04}, 8, EVP_PKEY_EC, EVP_sha512},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b}, 9, EVP_PKEY_RSA, EVP_sha256},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c}, 9, EVP_PKEY_RSA, EVP_sha384},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d}, 9, EVP_PKEY_RSA, EVP_sha512},
    {{0x2b, 0x65, 0x70}, 3, EVP_PKEY_ED25519, NULL},
};

/* find_sig_alg maps an AlgorithmIdentifier to a table entry; NULL for
 * algorithms verified by the X509_CRL fallback (RSA-PSS, ...). */
static const struct crl_sig_alg *find_sig_alg(CBS alg_element)
{
    static const uint8_t asn1_null[] = {0x05, 0x00};
    CBS alg, oid;

    if (!CBS_get_asn1(&alg_element, &alg, CBS_ASN1_SEQUENCE) ||
        !CBS_get_asn1(&alg, &oid, CBS_ASN1_OBJECT))
        return NULL;
    for (size_t i = 0; i < sizeof(crl_sig_algs) / sizeof(crl_sig_algs[0]); i++) {
        const struct crl_sig_alg *a = &crl_sig_algs[i];
        if (!CBS_mem_equal(&oid, a->oid, a->oid_len))
            continue;
        /* RFC 4055 / 5758 / 8410: RSA parameters are NULL (tolerate absent),
         * ECDSA and Ed25519 have none. */
        bool ok = CBS_len(&alg) == 0 ||
                  (a->pkey_type == EVP_PKEY_RSA && CBS_mem_equal(&alg, asn1_null, 2));
        return ok ? a : NULL;
    }
    return NULL;
}

static int verify_fallback(const struct crl_parsed *p, EVP_PKEY *key)
{
    const uint8_t *q = p->der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &q, (long)p->der_len);
    int ok = crl != NULL && X509_CRL_verify(crl, key) == 1;

    X509_CRL_free(crl);
    return ok ? 0 : -1;
}

static int verify_signature(const struct crl_parsed *p, EVP_PKEY *key)
{
    const struct crl_sig_alg *alg = find_sig_alg(p->sig_alg);
    EVP_MD_CTX ctx;
    int ok;

    if (alg == NULL)
        return verify_fallback(p, key);
    if (EVP_PKEY_id(key) != alg->pkey_type)
        return -1;
    EVP_MD_CTX_init(&ctx);
    ok = EVP_DigestVerifyInit(&ctx, NULL, alg->md ? alg->md() : NULL, NULL, key) &&
         EVP_DigestVerify(&ctx, CBS_data(&p->sig), CBS_len(&p->sig), CBS_data(&p->tbs),
                          CBS_len(&p->tbs));
    EVP_MD_CTX_cleanup(&ctx);
    return ok ? 0 : -1;
}

/* crl_verify checks that |issuer| issued the CRL (RFC 5280 6.3.3 (f)):
 * the names match, keyUsage allows cRLSign (4.2.1.3), and the signature
 * over the raw TBSCertList bytes verifies with the issuer's key. */
/* The certificates above |issuer| among |candidates|, nearest first, found
 * by name: where a DSA key that omits its parameters inherits them from. A
 * new stack borrowing the references (NULL when |candidates| is NULL). */
static STACK_OF(X509) *issuers_above(const X509 *issuer, const STACK_OF(X509) *candidates)
{
    STACK_OF(X509) *above = candidates != NULL ? sk_X509_new_null() : NULL;
    const X509 *cur = issuer;

    /* Bounded: a path of at most 8 CAs, and a self-issued CA ends it. */
    for (int depth = 0; above != NULL && depth < 8; depth++) {
        const X509 *up = NULL;

        if (X509_NAME_cmp(X509_get_issuer_name(cur), X509_get_subject_name(cur)) == 0)
            break;
        for (size_t i = 0; up == NULL && i < sk_X509_num(candidates); i++) {
            X509 *x = sk_X509_value(candidates, i);

            if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(cur)) == 0)
                up = x;
        }
        if (up == NULL || !sk_X509_push(above, (X509 *)up))
            break;
        cur = up;
    }
    return above;
}

/* A DSA-signed CRL: BoringSSL's EVP layer has no DSA verification
 * (cache/dsa_verify.h). */
static int verify_dsa(const struct crl_parsed *p, const X509 *issuer,
                      const STACK_OF(X509) *candidates)
{
    CBS alg = p->sig_alg, seq, oid;
    STACK_OF(X509) *above;
    int ok;

    if (!CBS_get_asn1(&alg, &seq, CBS_ASN1_SEQUENCE) || !CBS_get_asn1(&seq, &oid, CBS_ASN1_OBJECT))
        return -1;
    above = issuers_above(issuer, candidates);
    ok = dsa_verify_signed(CBS_data(&p->tbs), CBS_len(&p->tbs), OBJ_cbs2nid(&oid),
                           CBS_data(&p->sig), CBS_len(&p->sig), issuer, above);
    sk_X509_free(above);
    return ok ? 0 : -1;
}

static int crl_verify(const struct crl_parsed *p, const X509_NAME *crl_name, X509 *issuer,
                      const STACK_OF(X509) *candidates, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    int rc = -1;

    if (X509_NAME_cmp(crl_name, X509_get_subject_name(issuer)) != 0) {
        ERRF("CRL issuer name does not match the issuer certificate");
        goto err;
    }
    uint32_t ku = X509_get_key_usage(issuer);
    if (ku != UINT32_MAX && !(ku & KU_CRL_SIGN)) {
        ERRF("issuer certificate lacks the cRLSign key usage");
        goto err;
    }
    /* RFC 5280 5.1.1.2: signatureAlgorithm must equal TBSCertList.signature. */
    if (!CBS_mem_equal(&p->tbs_sig_alg, CBS_data(&p->sig_alg), CBS_len(&p->sig_alg))) {
        ERRF("CRL signature algorithm fields differ");
        goto err;
    }
    key = X509_get_pubkey(issuer);
    if ((key == NULL || verify_signature(p, key) != 0) && verify_dsa(p, issuer, candidates) != 0) {
        ERRF("CRL signature does not verify with the issuer key");
        goto err;
    }
    rc = 0;
err:
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rc;
}

/* ---- publish ----------------------------------------------------------- */

/* crl_older: RFC 5280 5.2.3, cRLNumbers increase; without them (v1 CRLs)
 * fall back to thisUpdate. Equal is not older: reloading the same CRL is
 * harmless. */
static bool crl_older(const struct crl_snapshot *next, const struct crl_snapshot *cur)
{
    if (next->has_crl_number && cur->has_crl_number) {
        if (next->crl_number_len != cur->crl_number_len)
            return next->crl_number_len < cur->crl_number_len;
        return memcmp(next->crl_number, cur->crl_number, cur->crl_number_len) < 0;
    }
    return next->this_update < cur->this_update;
}

/* retire frees replaced structures after a grace period. */
static void retire(struct crl_index *old_index, struct crl_snapshot *old_snap)
{
    bool reg;

    if (old_index == NULL && old_snap == NULL)
        return;
    reg = writer_rcu_begin();
    TSAN_RELEASE(); /* the writer's own accesses, too, precede the free */
    if (old_index != NULL)
        urcu_memb_call_rcu(&old_index->rcu, index_free_cb);
    if (old_snap != NULL)
        urcu_memb_call_rcu(&old_snap->rcu, snapshot_free_cb);
    writer_rcu_end(reg);
}

/* publish makes |snap| the current CRL of its issuer; takes ownership of
 * |snap| on success only. */
static int publish(struct crl_cache *c, struct crl_snapshot *snap, unsigned flags, char *err,
                   size_t errlen)
{
    struct crl_index *old, *next;
    struct crl_snapshot *replaced = NULL;
    size_t pos;

    pthread_mutex_lock(&c->write_lock);
    old = c->index; /* only writers store it, and we hold the lock */
    bool found = index_find_pos(old, snap, &pos);
    if (found && !(flags & CRL_CACHE_ALLOW_OLDER) && crl_older(snap, old->snap[pos])) {
        pthread_mutex_unlock(&c->write_lock);
        ERRF("older CRL: the cache holds a newer one from this issuer");
        return -1;
    }
    next = index_with(old, pos, found, snap);
    if (next == NULL) {
        pthread_mutex_unlock(&c->write_lock);
        ERRF("out of memory");
        return -1;
    }
    replaced = found ? old->snap[pos] : NULL;
    /* Release: the snapshot and the index are complete before readers can
     * reach them. The generation moves after the pointer, so a reader that
     * sees the new generation also sees the new CRL (verdict cache). */
    __atomic_store_n(&c->index, next, __ATOMIC_RELEASE);
    __atomic_store_n(&c->issuer_count, distinct_ids(next), __ATOMIC_RELAXED);
    __atomic_add_fetch(&c->generation, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&c->write_lock);
    retire(old, replaced);
    return 0;
}

/* precheck_older refuses an older CRL before paying for its snapshot. */
static int precheck_older(struct crl_cache *c, const struct crl_snapshot *probe_snap,
                          unsigned flags, char *err, size_t errlen)
{
    size_t pos;
    int rc = 0;

    if (flags & CRL_CACHE_ALLOW_OLDER)
        return 0;
    pthread_mutex_lock(&c->write_lock);
    if (index_find_pos(c->index, probe_snap, &pos) &&
        crl_older(probe_snap, c->index->snap[pos])) {
        ERRF("older CRL: the cache holds a newer one from this issuer");
        rc = -1;
    }
    pthread_mutex_unlock(&c->write_lock);
    return rc;
}

static void header_only(struct crl_snapshot *s, const struct crl_parsed *p)
{
    memset(s, 0, sizeof(*s));
    s->this_update = p->this_update;
    s->delta = p->delta;
    memcpy(s->scope_id, p->scope_id, sizeof(s->scope_id));
    s->has_crl_number = p->has_crl_number;
    s->sig_nid = p->sig_nid;
    s->crl_number_len = (uint8_t)p->crl_number_len;
    memcpy(s->crl_number, p->crl_number, p->crl_number_len);
}

/* add_verified builds and publishes a CRL whose issuer is verified. */
static int add_verified(struct crl_cache *c, const struct crl_parsed *p, X509 *issuer,
                        const char *source, unsigned flags, char *err, size_t errlen)
{
    struct crl_snapshot probe_snap, *snap = NULL;

    header_only(&probe_snap, p);
    if (issuer_id(issuer, probe_snap.id) != 0) {
        ERRF("cannot hash the issuer certificate");
        goto err;
    }
    if (precheck_older(c, &probe_snap, flags, err, errlen) != 0)
        goto err;
    snap = crl_snapshot_build(p, c->sip_key, source, err, errlen);
    if (snap == NULL)
        goto err;
    memcpy(snap->id, probe_snap.id, CRL_ID_LEN);
    X509_NAME_oneline(X509_get_subject_name(issuer), snap->issuer, sizeof(snap->issuer));
    if (publish(c, snap, flags, err, errlen) != 0)
        goto err;
    return 0;
err:
    crl_snapshot_free(snap);
    return -1;
}

static X509_NAME *parsed_issuer_name(const struct crl_parsed *p, char *err, size_t errlen)
{
    const uint8_t *q = CBS_data(&p->issuer);
    X509_NAME *name = d2i_X509_NAME(NULL, &q, (long)CBS_len(&p->issuer));

    if (name == NULL) {
        ERR_clear_error();
        ERRF("malformed CRL issuer name");
    }
    return name;
}

/* parse_checked parses |der|. Delta CRLs (RFC 5280 5.2.4) are accepted
 * and kept beside the complete CRL of their scope; a delta without a
 * cRLNumber cannot be ordered and is refused (5.2.4: it MUST carry one). */
static int parse_checked(struct crl_parsed *p, const uint8_t *der, size_t len, char *err,
                         size_t errlen)
{
    if (crl_parse_der(p, der, len, err, errlen) != 0)
        return -1;
    if (p->delta && !p->has_crl_number) {
        ERRF("delta CRL without cRLNumber");
        return -1;
    }
    return 0;
}

int crl_cache_add_crl(struct crl_cache *c, X509_CRL *crl, X509 *issuer, const char *source,
                      char *err, size_t errlen)
{
    uint8_t *der = NULL;
    X509_NAME *name = NULL;
    struct crl_parsed p;
    int rc = -1, len;

    if (c == NULL || crl == NULL || issuer == NULL) {
        ERRF("crl_cache_add_crl: missing argument");
        return -1;
    }
    /* Re-encoding reproduces the signed TBS bytes: BoringSSL keeps the
     * original encoding of a parsed CRL's TBSCertList. */
    len = i2d_X509_CRL(crl, &der);
    if (len <= 0) {
        ERR_clear_error();
        ERRF("cannot encode the CRL");
        goto err;
    }
    if (parse_checked(&p, der, (size_t)len, err, errlen) != 0 ||
        (name = parsed_issuer_name(&p, err, errlen)) == NULL ||
        crl_verify(&p, name, issuer, NULL, err, errlen) != 0)
        goto err;
    rc = add_verified(c, &p, issuer, source, 0, err, errlen);
err:
    X509_NAME_free(name);
    OPENSSL_free(der);
    return rc;
}

/* pem_to_der decodes the first "X509 CRL" PEM block; caller frees with
 * OPENSSL_free. */
static uint8_t *pem_to_der(const uint8_t *pem, size_t len, size_t *out_len)
{
    BIO *bio = BIO_new_mem_buf(pem, len > INT32_MAX ? INT32_MAX : (int)len);
    uint8_t *data = NULL;
    long dlen = 0;

    if (bio == NULL || !PEM_bytes_read_bio(&data, &dlen, NULL, "X509 CRL", bio, NULL, NULL))
        data = NULL;
    BIO_free(bio);
    ERR_clear_error();
    *out_len = data ? (size_t)dlen : 0;
    return data;
}

/* find_issuer returns the first of |issuers| whose name matches and whose
 * key verifies the CRL. */
static X509 *find_issuer(const struct crl_parsed *p, const X509_NAME *name,
                         const STACK_OF(X509) * issuers, char *err, size_t errlen)
{
    bool name_seen = false;

    for (size_t i = 0; i < sk_X509_num(issuers); i++) {
        X509 *x = sk_X509_value(issuers, i);
        if (X509_NAME_cmp(name, X509_get_subject_name(x)) != 0)
            continue;
        name_seen = true;
        if (crl_verify(p, name, x, issuers, err, errlen) == 0)
            return x;
    }
    if (!name_seen)
        ERRF("no known issuer matches the CRL issuer name");
    return NULL;
}

int crl_cache_add_der(struct crl_cache *c, const uint8_t *der, size_t len,
                      const STACK_OF(X509) * issuers, const char *source, char *err, size_t errlen)
{
    return crl_cache_add_der_flags(c, der, len, issuers, source, 0, err, errlen);
}

int crl_cache_add_der_flags(struct crl_cache *c, const uint8_t *der, size_t len,
                            const STACK_OF(X509) * issuers, const char *source, unsigned flags,
                            char *err, size_t errlen)
{
    uint8_t *decoded = NULL;
    X509_NAME *name = NULL;
    X509 *issuer;
    struct crl_parsed p;
    int rc = -1;

    if (c == NULL || der == NULL || issuers == NULL) {
        ERRF("crl_cache_add_der: missing argument");
        return -1;
    }
    if (len >= 5 && memcmp(der, "-----", 5) == 0) {
        decoded = pem_to_der(der, len, &len);
        if (decoded == NULL) {
            ERRF("no X509 CRL PEM block");
            goto err;
        }
        der = decoded;
    }
    if (parse_checked(&p, der, len, err, errlen) != 0 ||
        (name = parsed_issuer_name(&p, err, errlen)) == NULL ||
        (issuer = find_issuer(&p, name, issuers, err, errlen)) == NULL)
        goto err;
    rc = add_verified(c, &p, issuer, source, flags, err, errlen);
err:
    X509_NAME_free(name);
    OPENSSL_free(decoded);
    return rc;
}

static int index_order(const void *a, const void *b)
{
    const struct crl_snapshot *x = *(struct crl_snapshot *const *)a;
    const struct crl_snapshot *y = *(struct crl_snapshot *const *)b;

    return snap_cmp(x, y->id, y->delta, y->scope_id);
}

int crl_cache_replace_issuer(struct crl_cache *c, struct crl_cache *from, const char *issuer,
                             size_t *out_removed, size_t *out_added, char *err, size_t errlen)
{
    struct crl_index *old, *next = NULL, *from_next = NULL, *from_old;
    struct crl_snapshot **gone = NULL;
    size_t n_gone = 0, n_add = 0, k = 0, kf = 0;

    *out_removed = 0;
    *out_added = 0;
    if (memcmp(c->sip_key, from->sip_key, sizeof(c->sip_key)) != 0) {
        ERRF("crl_cache_replace_issuer: |from| was not made by crl_cache_new_aside");
        return -1;
    }
    pthread_mutex_lock(&c->write_lock);
    pthread_mutex_lock(&from->write_lock);
    old = c->index;
    from_old = from->index;
    for (size_t i = 0; old != NULL && i < old->n; i++)
        n_gone += strcmp(old->snap[i]->issuer, issuer) == 0;
    for (size_t i = 0; from_old != NULL && i < from_old->n; i++)
        n_add += strcmp(from_old->snap[i]->issuer, issuer) == 0;
    size_t n = (old ? old->n : 0) - n_gone + n_add, nf = (from_old ? from_old->n : 0) - n_add;
    next = calloc(1, sizeof(*next) + n * sizeof(next->snap[0]));
    from_next = calloc(1, sizeof(*from_next) + nf * sizeof(from_next->snap[0]));
    gone = calloc(n_gone > 0 ? n_gone : 1, sizeof(*gone));
    if (next == NULL || from_next == NULL || gone == NULL) {
        pthread_mutex_unlock(&from->write_lock);
        pthread_mutex_unlock(&c->write_lock);
        free(next);
        free(from_next);
        free(gone);
        ERRF("out of memory");
        return -1;
    }
    n_gone = 0;
    for (size_t i = 0; old != NULL && i < old->n; i++) {
        if (strcmp(old->snap[i]->issuer, issuer) == 0)
            gone[n_gone++] = old->snap[i];
        else
            next->snap[k++] = old->snap[i];
    }
    for (size_t i = 0; from_old != NULL && i < from_old->n; i++) {
        if (strcmp(from_old->snap[i]->issuer, issuer) == 0)
            next->snap[k++] = from_old->snap[i]; /* moved: |from| gives it up */
        else
            from_next->snap[kf++] = from_old->snap[i];
    }
    next->n = k;
    from_next->n = kf;
    qsort(next->snap, next->n, sizeof(next->snap[0]), index_order);
    /* |from| is private to the caller (no readers): swap its index now. */
    from->index = from_next;
    __atomic_store_n(&from->issuer_count, distinct_ids(from_next), __ATOMIC_RELAXED);
    __atomic_store_n(&c->index, next, __ATOMIC_RELEASE);
    __atomic_store_n(&c->issuer_count, distinct_ids(next), __ATOMIC_RELAXED);
    __atomic_add_fetch(&c->generation, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&from->write_lock);
    pthread_mutex_unlock(&c->write_lock);
    free(from_old);
    retire(old, NULL);
    for (size_t i = 0; i < n_gone; i++)
        retire(NULL, gone[i]);
    free(gone);
    *out_removed = n_gone;
    *out_added = n_add;
    return 0;
}

void crl_cache_foreach(const struct crl_cache *c, crl_cache_visit_fn fn, void *arg)
{
    const struct crl_index *idx;

    urcu_memb_read_lock();
    /* Acquire pairs with the writer's release store, as in crl_cache_check. */
    idx = __atomic_load_n(&c->index, __ATOMIC_ACQUIRE);
    for (size_t i = 0; idx != NULL && i < idx->n; i++) {
        const struct crl_snapshot *s = idx->snap[i];
        struct crl_issuer_status st;

        memset(&st, 0, sizeof(st));
        st.issuer = s->issuer;
        st.source = s->source;
        st.this_update = s->this_update;
        st.next_update = s->next_update;
        st.crl_number_low = s->crl_number_low;
        st.has_crl_number = s->has_crl_number;
        st.entries = s->n_entries;
        st.unusable = s->flags != 0;
        fn(&st, arg);
    }
    urcu_memb_read_unlock();
}
