/* The verdict-cache step of validator_check_chain: the key of a chain, the
 * entry format, the hit's re-check by reference and the store after a full
 * check. The cache itself (cache/verdict_cache.c) holds opaque bytes.
 *
 * An entry, packed into one value (native byte order: it never leaves the
 * process): decision, reason, kind, has_leaf_sha256 (1 byte each), the
 * leaf's SHA-256, not_after_unix (8), the profile index (4), the number of
 * references (1), the five string lengths (1 each); then per reference the
 * issuer name and key hashes, the serial length and the serial; then the
 * strings without their NULs.
 *
 * Nothing here is shared between calls except the per-thread memo of
 * certificate digests, so every function is thread-safe. */
#include "validator_internal.h"

#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "crl_cache.h"
#include "deny_list.h"
#include "verdict.h"
#include "verdict_cache.h"

#define ENTRY_HEAD (4 + 32 + 8 + 4 + 1 + 5)
#define ENTRY_REF (32 + 32 + 32 + 1) /* + serial octets */
#define ENTRY_MAX \
    (ENTRY_HEAD + VERDICT_STEP_MAX_REFS * (ENTRY_REF + VERDICT_STEP_SERIAL_MAX) + 5 * 255)

/* ---- key ------------------------------------------------------------------ */

/* key_buf: the key's input, gathered before one SHA256 call. Its integers
 * are LEB128 (7 bits a byte, high bit = more), a prefix-free encoding, so
 * the usual tenant chain (label, count, one digest, short ids, version)
 * fits one 64-byte SHA-256 block; a fixed 8 bytes each took two. */
struct key_buf {
    SHA256_CTX ctx;
    uint8_t b[128];
    size_t n;
};

static void key_flush(struct key_buf *k)
{
    SHA256_Update(&k->ctx, k->b, k->n);
    k->n = 0;
}

static void key_put(struct key_buf *k, const void *data, size_t len)
{
    if (k->n + len > sizeof(k->b)) {
        key_flush(k);
        if (len > sizeof(k->b)) {
            SHA256_Update(&k->ctx, data, len);
            return;
        }
    }
    memcpy(k->b + k->n, data, len);
    k->n += len;
}

static void key_uint(struct key_buf *k, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;

    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        b[n] |= v != 0 ? 0x80 : 0;
        n++;
    } while (v != 0);
    key_put(k, b, n);
}

static void key_bytes(struct key_buf *k, const struct cv_bytes *b)
{
    key_uint(k, b->len);
    if (b->len > 0)
        key_put(k, b->data, b->len);
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

void verdict_step_key(uint8_t out[32], const struct chain_input *in, uint64_t config_version)
{
    static const char label[] = "cvk3";
    struct key_buf k;

    SHA256_Init(&k.ctx);
    k.n = 0;
    /* The label keeps these keys apart from any other SHA-256 in the
     * service; the count, the fixed-size digest of each certificate and
     * the length prefixes (prefix-free, key_buf) make the encoding
     * injective (no chain/tenant/device split can collide with another).
     * Certificates are looked up in the thread's memo first. */
    key_put(&k, label, sizeof(label) - 1);
    key_uint(&k, in->n_certs);
    for (size_t i = 0; i < in->n_certs; i++) {
        uint8_t d[32];

        cert_digest(d, &in->certs[i]);
        key_put(&k, d, sizeof(d));
    }
    key_bytes(&k, &in->tenant_id);
    key_bytes(&k, &in->device_id);
    key_uint(&k, config_version);
    key_flush(&k);
    SHA256_Final(out, &k.ctx);
}

/* ---- entry format ------------------------------------------------------- */

static size_t str_len(const char *s, size_t cap)
{
    /* Fixed-size fields of struct verdict: at most cap - 1 bytes, and the
     * largest (256) still fits a one-byte length. */
    size_t n = strnlen(s, cap - 1);
    return n > 255 ? 255 : n;
}

static uint8_t *put_str(uint8_t *p, uint8_t *len_at, const char *s, size_t cap)
{
    size_t n = str_len(s, cap);

    memcpy(p, s, n);
    *len_at = (uint8_t)n;
    return p + n;
}

/* pack writes |v| and |refs| into |buf| (ENTRY_MAX bytes); 0 when refs are
 * out of bounds, else the length. */
static size_t pack(uint8_t *buf, const struct verdict *v, const struct verdict_step_refs *refs)
{
    size_t n_refs = refs != NULL ? refs->n : 0;
    uint32_t profile = refs != NULL ? refs->profile : 0;
    uint8_t *p = buf, *lens;

    if (n_refs > VERDICT_STEP_MAX_REFS)
        return 0;
    for (size_t i = 0; i < n_refs; i++)
        if (refs->ref[i].serial_len > VERDICT_STEP_SERIAL_MAX)
            return 0;
    *p++ = (uint8_t)v->decision;
    *p++ = (uint8_t)v->reason;
    *p++ = (uint8_t)v->kind;
    *p++ = v->has_leaf_sha256;
    memcpy(p, v->leaf_sha256, 32);
    memcpy(p + 32, &v->not_after_unix, 8);
    memcpy(p + 40, &profile, 4);
    p[44] = (uint8_t)n_refs;
    lens = p + 45;
    p += 50;
    for (size_t i = 0; i < n_refs; i++) {
        const struct verdict_step_ref *r = &refs->ref[i];

        memcpy(p, r->issuer_name_sha256, 32);
        memcpy(p + 32, r->issuer_key_sha256, 32);
        memcpy(p + 64, r->issuer_name_norm, 32);
        p[96] = r->serial_len;
        memcpy(p + ENTRY_REF, r->serial, r->serial_len);
        p += ENTRY_REF + r->serial_len;
    }
    p = put_str(p, &lens[0], v->detail, sizeof(v->detail));
    p = put_str(p, &lens[1], v->subject, sizeof(v->subject));
    p = put_str(p, &lens[2], v->issuer, sizeof(v->issuer));
    p = put_str(p, &lens[3], v->serial_hex, sizeof(v->serial_hex));
    p = put_str(p, &lens[4], v->profile, sizeof(v->profile));
    return (size_t)(p - buf);
}

/* take returns |n| bytes at *p and advances it, or NULL past |end|. */
static const uint8_t *take(const uint8_t **p, const uint8_t *end, size_t n)
{
    const uint8_t *at = *p;

    if ((size_t)(end - at) < n)
        return NULL;
    *p = at + n;
    return at;
}

static bool get_str(const uint8_t **p, const uint8_t *end, char *out, size_t n)
{
    const uint8_t *s = take(p, end, n);

    if (s == NULL)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

/* unpack reads what pack wrote; false on a malformed value. The caller has
 * zeroed |v| and |refs|. */
static bool unpack(struct verdict *v, struct verdict_step_refs *refs, const uint8_t *buf,
                   size_t len)
{
    const uint8_t *p = buf, *end = buf + len, *h = take(&p, end, ENTRY_HEAD), *lens;

    if (h == NULL || h[48] > VERDICT_STEP_MAX_REFS)
        return false;
    v->decision = (enum verdict_decision)h[0];
    v->reason = (enum verdict_reason)h[1];
    v->kind = (enum cert_kind)h[2];
    v->has_leaf_sha256 = h[3] != 0;
    memcpy(v->leaf_sha256, h + 4, 32);
    memcpy(&v->not_after_unix, h + 36, 8);
    memcpy(&refs->profile, h + 44, 4);
    refs->n = h[48];
    lens = h + 49;
    for (size_t i = 0; i < refs->n; i++) {
        struct verdict_step_ref *r = &refs->ref[i];
        const uint8_t *a = take(&p, end, ENTRY_REF);

        if (a == NULL || a[96] > VERDICT_STEP_SERIAL_MAX)
            return false;
        memcpy(r->issuer_name_sha256, a, 32);
        memcpy(r->issuer_key_sha256, a + 32, 32);
        memcpy(r->issuer_name_norm, a + 64, 32);
        r->serial_len = a[96];
        if ((a = take(&p, end, r->serial_len)) == NULL)
            return false;
        memcpy(r->serial, a, r->serial_len);
    }
    return get_str(&p, end, v->detail, lens[0]) && get_str(&p, end, v->subject, lens[1]) &&
           get_str(&p, end, v->issuer, lens[2]) && get_str(&p, end, v->serial_hex, lens[3]) &&
           get_str(&p, end, v->profile, lens[4]);
}

bool verdict_step_put(struct verdict_cache *c, const uint8_t key[32], const struct verdict *v,
                      const struct verdict_step_refs *refs, int64_t valid_from, int64_t valid_until)
{
    uint8_t buf[ENTRY_MAX];
    size_t len = pack(buf, v, refs);

    return len > 0 && verdict_cache_put(c, key, buf, len, valid_from, valid_until);
}

bool verdict_step_get(struct verdict_cache *c, struct verdict *out,
                      struct verdict_step_refs *out_refs, const uint8_t key[32], int64_t now)
{
    struct verdict_step_refs scratch;
    struct verdict_step_refs *refs = out_refs != NULL ? out_refs : &scratch;
    uint8_t buf[ENTRY_MAX];
    size_t len;

    memset(out, 0, sizeof(*out));
    memset(refs, 0, offsetof(struct verdict_step_refs, ref));
    if (!verdict_cache_get(c, buf, sizeof(buf), &len, key, now))
        return false;
    if (unpack(out, refs, buf, len))
        return true;
    memset(out, 0, sizeof(*out));
    memset(refs, 0, offsetof(struct verdict_step_refs, ref));
    return false;
}

/* ---- the step -------------------------------------------------------------- */

/* issuer_ids: the CRL cache's identity and the deny list's name key of
 * |issuer|, from its memo when it is a configured certificate. */
static int issuer_ids(uint8_t crl_id[CRL_CACHE_ISSUER_ID_LEN], uint8_t name_sha256[32],
                      const struct cert_memo_set *memos, const X509 *issuer)
{
    const struct cert_memo *m = cert_memo_find(memos, issuer);

    if (m != NULL && m->has_ids) {
        memcpy(crl_id, m->crl_issuer_id, CRL_CACHE_ISSUER_ID_LEN);
        memcpy(name_sha256, m->name_sha256, 32);
        return 0;
    }
    if (crl_cache_issuer_id(crl_id, issuer) != 0)
        return -1;
    deny_list_issuer_key(name_sha256, X509_get_subject_name(issuer));
    return 0;
}

int verdict_step_build_refs(struct verdict_step *st, struct verdict *out,
                            const STACK_OF(X509) *chain, uint32_t profile,
                            const struct cert_memo_set *memos)
{
    struct verdict_step_refs *refs = &st->refs;
    size_t n = sk_X509_num(chain);

    refs->n = 0;
    refs->profile = profile;
    /* Every certificate below the anchor (the anchor itself is trusted
     * configuration, not subject to revocation). */
    for (size_t d = 0; d + 1 < n; d++) {
        struct verdict_step_ref *r = &refs->ref[refs->n];
        uint8_t id[CRL_CACHE_ISSUER_ID_LEN];
        size_t len = 0;

        if (refs->n == VERDICT_STEP_MAX_REFS ||
            issuer_ids(id, r->issuer_name_sha256, memos, sk_X509_value(chain, d + 1)) != 0 ||
            crl_cache_serial_content(r->serial, sizeof(r->serial), &len,
                                     X509_get0_serialNumber(sk_X509_value(chain, d))) != 0) {
            verdict_deny(out, VERDICT_REASON_INTERNAL_ERROR,
                         "cannot identify the issuer or serial at depth %zu", d);
            return -1;
        }
        /* The CRL cache names issuers by value (name_norm.h); the deny
         * list keeps the DER hash of the name (its file format). */
        memcpy(r->issuer_name_norm, id, 32);
        memcpy(r->issuer_key_sha256, id + 32, 32);
        r->serial_len = (uint8_t)len;
        refs->n++;
    }
    return 0;
}

int verdict_step_check_deny(const struct verdict_step *st, struct verdict *out, int64_t now)
{
    const struct deny_list *deny = st->src != NULL ? st->src->deny : NULL;
    char reason[DENY_LIST_REASON_MAX + 1];

    /* fleet (issue 11): revocation state known to be out of date. */
    if (st->src != NULL && st->src->revocation_unknown != NULL &&
        st->src->revocation_unknown(reason, sizeof(reason))) {
        verdict_deny(out, VERDICT_REASON_REVOCATION_UNKNOWN, "%s", reason);
        return -1;
    }
    if (deny == NULL)
        return 0;
    if (out->has_leaf_sha256 &&
        deny_list_match_leaf(deny, out->leaf_sha256, now, reason, sizeof(reason))) {
        verdict_deny(out, VERDICT_REASON_REVOKED, "leaf on the emergency deny list: %s", reason);
        return -1;
    }
    for (size_t d = 0; d < st->refs.n; d++) {
        const struct verdict_step_ref *r = &st->refs.ref[d];

        if (deny_list_match_serial(deny, r->issuer_name_sha256, r->serial, r->serial_len, now,
                                   reason, sizeof(reason))) {
            verdict_deny(out, VERDICT_REASON_REVOKED, "%s at depth %zu on the emergency deny list: %s",
                         revocation_role(d), d, reason);
            return -1;
        }
    }
    return 0;
}

/* recheck runs the hit's revocation checks from the references: the deny
 * list, then each certificate the scope covers (the leaf, or every one
 * below the anchor) with revocation_check_ref, the same rule that let the
 * full check's answer be cached. Sets *stale (with |warn|) when a stale
 * CRL was tolerated, *undecided when a reference can no longer decide.
 * Returns 0, or -1 with |out| denied (or *undecided). */
static int recheck(const struct verdict_step *st, const struct revocation_policy *p,
                   struct verdict *out, int64_t now, bool *stale, char *warn, size_t warn_len,
                   bool *undecided)
{
    const struct verdict_step_refs *refs = &st->refs;
    size_t upto = p->scope == REVOCATION_ALL ? refs->n : (refs->n > 0 ? 1 : 0);

    if (verdict_step_check_deny(st, out, now) != 0)
        return -1;
    if (p->scope == REVOCATION_NONE)
        return 0;
    if (st->src->crls == NULL) {
        verdict_deny(out, VERDICT_REASON_REVOCATION_UNKNOWN, "no revocation data available");
        return -1;
    }
    for (size_t d = 0; d < upto; d++) {
        const struct verdict_step_ref *r = &refs->ref[d];
        uint8_t id[CRL_CACHE_ISSUER_ID_LEN];

        memcpy(id, r->issuer_name_norm, 32);
        memcpy(id + 32, r->issuer_key_sha256, 32);
        switch (revocation_check_ref(out, st->src->crls, id, r->serial, r->serial_len, d, p, now)) {
        case REVOCATION_REF_GOOD:
            break;
        case REVOCATION_REF_STALE_OK:
            *stale = true;
            revocation_stale_warning(warn, warn_len, d);
            break;
        case REVOCATION_REF_UNDECIDED:
            *undecided = true;
            return -1;
        default:
            return -1;
        }
    }
    return 0;
}

/* answer_hit: the cached verdict in |out| stands unless the re-check says
 * otherwise. False when the references can no longer decide (the issuer's
 * CRLs changed shape since): the chain needs a full validation. */
static bool answer_hit(const struct verdict_step *st, const struct validator *v,
                       struct verdict *out, int64_t now)
{
    const struct revocation_policy *p = validator_profile_revocation(v, st->refs.profile);
    bool stale = false, undecided = false;
    char warn[96];

    if (st->refs.n == 0 || p == NULL) {
        verdict_deny(out, VERDICT_REASON_INTERNAL_ERROR, "verdict cache entry without a profile");
        return true;
    }
    if (recheck(st, p, out, now, &stale, warn, sizeof(warn), &undecided) != 0)
        return !undecided;
    /* What apply_policy writes: the stale warning or "" (no snprintf for
     * the empty string on every hit; the bytes after the NUL are left as
     * snprintf left them). */
    if (out->reason == VERDICT_REASON_OK && stale)
        snprintf(out->detail, sizeof(out->detail), "%s", warn);
    else if (out->reason == VERDICT_REASON_OK)
        out->detail[0] = '\0';
    return true;
}

bool verdict_step_lookup(struct verdict_step *st, const struct validator *v,
                         const struct revocation_sources *src, struct verdict *out,
                         const struct chain_input *in, int64_t now)
{
    st->src = src;
    st->keyed = false;
    st->refs.n = 0;
    if (src == NULL || src->cache == NULL) {
        memset(out, 0, sizeof(*out));
        return false;
    }
    verdict_step_key(st->key, in, validator_version(v));
    st->keyed = true;
    if (verdict_step_get(src->cache, out, &st->refs, st->key, now) && answer_hit(st, v, out, now))
        return true;
    memset(out, 0, sizeof(*out)); /* a miss, or a hit that could not decide */
    return false;
}

/* worth_caching: verdicts computed after the path and revocation passed, so
 * a hit only has to re-check revocation and time. DENYs from earlier steps
 * (malformed, untrusted, expired, revoked, ...) are not cached: some depend
 * on data that changes without a configuration version (CRLs, deny list). */
static bool worth_caching(const struct verdict *v)
{
    switch (v->reason) {
    case VERDICT_REASON_OK:
    case VERDICT_REASON_WRONG_TENANT:
    case VERDICT_REASON_DEVICE_MISMATCH:
    case VERDICT_REASON_UNKNOWN_TENANT:
    case VERDICT_REASON_VALIDITY_TOO_LONG:
    case VERDICT_REASON_EXTENDED_KEY_USAGE:
    case VERDICT_REASON_MISSING_IDENTITY:
        return true;
    default:
        return false;
    }
}

/* The time window in which the path's validity checks give the same answer:
 * the latest notBefore to the earliest notAfter, widened by the skew the
 * validation tolerated. */
static void path_window(const STACK_OF(X509) *chain, uint32_t clock_skew, int64_t *from,
                        int64_t *until)
{
    *from = INT64_MIN;
    *until = INT64_MAX;
    for (size_t i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        int64_t t;

        if (cv_asn1_time_to_unix(&t, X509_get0_notBefore(x)) == 0 && t > *from)
            *from = t;
        if (cv_asn1_time_to_unix(&t, X509_get0_notAfter(x)) == 0 && t < *until)
            *until = t;
    }
    *from -= clock_skew;
    *until += clock_skew;
}

void verdict_step_store(const struct verdict_step *st, const struct verdict *out,
                        const STACK_OF(X509) *chain, uint32_t clock_skew, bool by_ref)
{
    int64_t from, until;

    if (!st->keyed || !by_ref || !worth_caching(out))
        return;
    path_window(chain, clock_skew, &from, &until);
    verdict_step_put(st->src->cache, st->key, out, &st->refs, from, until);
}

/* ---- entry points (validator.h) ------------------------------------------ */

bool verdict_step_try(struct verdict_step *st, const struct validator *v,
                      const struct revocation_sources *src, struct verdict *out,
                      const struct chain_input *in, int64_t now)
{
    verdict_init(out, in->id);
    st->src = src;
    st->keyed = false;
    st->refs.n = 0;
    if (cv_claims_check(out, in) != 0)
        return true; /* answered: DENY MALFORMED, before any lookup by claim */
    if (!verdict_step_lookup(st, v, src, out, in, now))
        return false;
    out->id = in->id;
    return true;
}

bool validator_try_cached_key(const struct validator *v, const struct revocation_sources *src,
                              struct verdict *out, struct validator_key *out_key,
                              const struct chain_input *in, int64_t now)
{
    struct verdict_step st;
    bool answered = verdict_step_try(&st, v, src, out, in, now);

    memset(out_key, 0, sizeof(*out_key));
    if (!answered && st.keyed) {
        out_key->set = true;
        memcpy(out_key->key, st.key, sizeof(out_key->key));
    }
    return answered;
}

bool validator_try_cached(const struct validator *v, const struct revocation_sources *src,
                          struct verdict *out, const struct chain_input *in, int64_t now)
{
    struct verdict_step st;

    return verdict_step_try(&st, v, src, out, in, now);
}

void verdict_step_carry(struct verdict_step *st, const struct revocation_sources *src,
                        const struct validator_key *key)
{
    st->src = src;
    st->keyed = src != NULL && src->cache != NULL;
    memcpy(st->key, key->key, sizeof(st->key));
    st->refs.n = 0;
}
