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
#include "crl_cache_internal.h"
#include "crl_snapshot_internal.h"
#include "crl_verify_internal.h"

#define ERRF(...) ((err) && (errlen) ? (void)snprintf((err), (errlen), __VA_ARGS__) : (void)0)

char crl_tsan_grace; /* crl_cache_internal.h */


/* call_rcu and rcu_barrier take the read lock internally, so the writer
 * thread must be registered; writers may be any thread, so they register
 * for the duration of the call (certval_rcu_writer_begin). */

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

/* crl_index_lower_bound returns the first position whose id starts with the
 * |len| bytes of |key| (len 64: that issuer; 32: that issuer name), or
 * idx->n when there is none. */
size_t crl_index_lower_bound(const struct crl_index *idx, const uint8_t *key, size_t len)
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
    bool reg = certval_rcu_writer_begin();
    urcu_memb_barrier();
    certval_rcu_writer_end(reg);
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
    reg = certval_rcu_writer_begin();
    TSAN_RELEASE(); /* the writer's own accesses, too, precede the free */
    if (old_index != NULL)
        urcu_memb_call_rcu(&old_index->rcu, index_free_cb);
    if (old_snap != NULL)
        urcu_memb_call_rcu(&old_snap->rcu, snapshot_free_cb);
    certval_rcu_writer_end(reg);
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
    if (crl_cache_issuer_id(probe_snap.id, issuer) != 0) {
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
