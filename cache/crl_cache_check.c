/* CRL cache lookups (crl_cache.h): issuer identity, serials as stored,
 * and crl_cache_check with the RFC 5280 6.3.3 rules that pick the CRLs in
 * scope (complete, delta, partitions). Lock-free: under the RCU read lock,
 * with an acquire load of the index that crl_cache.c publishes. */
#include "crl_cache_internal.h"
#include "name_norm.h"
#include "serial.h"

#include <stdbool.h>
#include <string.h>

#include <openssl/bytestring.h>
#include <openssl/digest.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

/* ---- issuer identity and serials --------------------------------------- */

/* issuer_id_compute computes the index key of |issuer|. The subject's
 * cached DER is used as is: the issuer must be a parsed (immutable)
 * certificate, which is what makes this safe from many threads at once. */
static int issuer_id_compute(const uint8_t *name, size_t name_len, const X509 *issuer,
                             uint8_t id[CRL_ID_LEN])
{
    unsigned md_len = 0;

    name_norm_hash(id, name, name_len);
    if (!X509_pubkey_digest(issuer, EVP_sha256(), id + 32, &md_len) || md_len != 32)
        return -1;
    return 0;
}

/* Normalising the name and two SHA-256 per check cost more than the
 * lookup itself, and a thread
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
    size_t pos = crl_index_lower_bound(idx, id, CRL_ID_LEN);
    if (idx != NULL && pos < idx->n) {
        const struct crl_snapshot *s = idx->snap[pos];
        /* Fast path, the common case: this name has exactly one CRL, a plain
         * complete one (neighbours in the index have other names). */
        bool alone = (pos == 0 || memcmp(idx->snap[pos - 1]->id, id, 32) != 0) &&
                     (pos + 1 == idx->n || memcmp(idx->snap[pos + 1]->id, id, 32) != 0);
        if (alone && crl_snapshot_is_plain(s))
            st = snapshot_status(s, hash, serial, len, listable, now, grace_seconds, info);
        else
            st = group_status(c, idx, crl_index_lower_bound(idx, id, 32), id, serial, len, listable,
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
    bool listable = serial_content(buf, sizeof(buf), &len, serial) == 0;
    return check_id(c, id, buf, len, listable, now, grace_seconds, info);
}

int crl_cache_issuer_id(uint8_t out[CRL_CACHE_ISSUER_ID_LEN], const X509 *issuer)
{
    return issuer_id(issuer, out);
}

int crl_cache_serial_content(uint8_t *out, size_t cap, size_t *out_len, const ASN1_INTEGER *serial)
{
    return serial_content(out, cap, out_len, serial);
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
    for (size_t i = crl_index_lower_bound(idx, crl_issuer_name, 32);
         idx != NULL && i < idx->n && memcmp(idx->snap[i]->id, crl_issuer_name, 32) == 0; i++) {
        if (n < cap)
            crl_info_fill(c, idx->snap[i], &out[n], cert_issuer_name, serial, serial_len);
        n++;
    }
    TSAN_RELEASE();
    urcu_memb_read_unlock();
    return n;
}
