/* The verdict cache's entries: the key of a chain and the entry format.
 * The cache itself (cache/verdict_cache.c) holds opaque bytes.
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
#include "verdict_step.h"

#include <stddef.h>
#include <string.h>

#include <openssl/sha.h>

#include "verdict_cache.h"

#define ENTRY_HEAD (4 + 32 + 8 + 4 + 1 + 5)
#define ENTRY_REF (32 + 32 + 1) /* + serial octets */
#define ENTRY_MAX \
    (ENTRY_HEAD + VERDICT_STEP_MAX_REFS * (ENTRY_REF + VERDICT_STEP_SERIAL_MAX) + 5 * 255)

/* ---- key ------------------------------------------------------------------ */

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

void verdict_step_key(uint8_t out[32], const struct chain_input *in, uint64_t config_version)
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
        p[64] = r->serial_len;
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

        if (a == NULL || a[64] > VERDICT_STEP_SERIAL_MAX)
            return false;
        memcpy(r->issuer_name_sha256, a, 32);
        memcpy(r->issuer_key_sha256, a + 32, 32);
        r->serial_len = a[64];
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
