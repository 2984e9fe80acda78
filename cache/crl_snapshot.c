/* Immutable CRL snapshot: build and lookup. See crl_snapshot_internal.h. */
#include "crl_snapshot_internal.h"
#include "name_norm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/siphash.h>

#define ERRF(...) ((err) && (errlen) ? (void)snprintf((err), (errlen), __VA_ARGS__) : (void)0)

uint64_t crl_snapshot_hash(const uint64_t key[2], const uint8_t *serial, size_t len)
{
    /* SipHash with a per-cache random key: serials come from CAs we trust,
     * but a keyed hash keeps probe lengths short whatever their pattern
     * (sequential, shared prefixes). */
    return SIPHASH_24(key, serial, len);
}

/* slot_index maps a hash onto [0, n) without a power-of-two table
 * (Lemire's multiply-shift), so the table can be sized to load 0.7. */
static size_t slot_index(uint64_t hash, size_t n)
{
    return (size_t)(((unsigned __int128)hash * n) >> 64);
}

static uint32_t clamp_u32_time(int64_t t)
{
    if (t < 0)
        return 0;
    return t > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

static const struct crl_slot *probe(const struct crl_snapshot *s, uint64_t hash,
                                    const uint8_t *serial, size_t len, size_t *out_empty)
{
    size_t i = slot_index(hash, s->n_slots);

    /* Terminates: n_slots > n_entries, so an empty slot exists. */
    for (;;) {
        const struct crl_slot *slot = &s->slots[i];
        if (slot->off == 0) {
            *out_empty = i;
            return NULL;
        }
        const uint8_t *e = s->arena + slot->off;
        if (slot->hash == hash && e[1] == len && memcmp(e + 2, serial, len) == 0)
            return slot;
        if (++i == s->n_slots)
            i = 0;
    }
}

bool crl_snapshot_find(const struct crl_snapshot *s, uint64_t hash, const uint8_t *serial,
                       size_t len, int *out_reason, int64_t *out_revoked_at)
{
    size_t empty;
    const struct crl_slot *slot;

    if (len > CRL_SERIAL_MAX || s->n_entries == 0)
        return false;
    slot = probe(s, hash, serial, len, &empty);
    if (slot == NULL)
        return false;
    uint8_t reason = s->arena[slot->off];
    *out_reason = reason == CRL_REASON_ABSENT ? -1 : reason;
    *out_revoked_at = slot->revoked_at;
    return true;
}

/* insert adds one entry under |key_bytes| (the serial, prefixed with the
 * issuer ordinal in an indirect CRL); a key listed twice keeps its first
 * entry. */
static void insert(struct crl_snapshot *s, const uint64_t key[2], const struct crl_parsed_entry *e,
                   const uint8_t *key_bytes, size_t len)
{
    size_t empty = 0;
    uint64_t hash = crl_snapshot_hash(key, key_bytes, len);

    if (probe(s, hash, key_bytes, len, &empty) != NULL)
        return;
    uint8_t *dst = s->arena + s->arena_len;
    dst[0] = e->reason < 0 ? CRL_REASON_ABSENT : (uint8_t)e->reason;
    dst[1] = (uint8_t)len;
    memcpy(dst + 2, key_bytes, len);
    s->slots[empty].hash = hash;
    s->slots[empty].off = (uint32_t)s->arena_len;
    s->slots[empty].revoked_at = clamp_u32_time(e->revoked_at);
    s->arena_len += 2 + len;
    s->n_entries++;
}

/* issuer_ordinal maps a certificateIssuer to its ordinal (RFC 5280 5.3.3:
 * it holds for the following entries until the next one). 0 is the CRL
 * issuer, 255 a name without directoryName; -1 when the table is full. */
static int issuer_ordinal(struct crl_snapshot *s, const uint8_t crl_issuer[32], CBS name)
{
    uint8_t h[32];

    if (CBS_len(&name) == 0)
        return 255;
    name_norm_hash(h, CBS_data(&name), CBS_len(&name));
    if (memcmp(h, crl_issuer, 32) == 0)
        return 0;
    for (size_t i = 0; i < s->n_cert_issuers; i++)
        if (memcmp(s->cert_issuers[i], h, 32) == 0)
            return (int)i + 1;
    if (s->n_cert_issuers == CRL_CERT_ISSUERS_MAX)
        return -1;
    if (s->cert_issuers == NULL) {
        s->cert_issuers = malloc(CRL_CERT_ISSUERS_MAX * 32);
        if (s->cert_issuers == NULL)
            return -1;
    }
    memcpy(s->cert_issuers[s->n_cert_issuers++], h, 32);
    return (int)s->n_cert_issuers;
}

static int fill_entries(struct crl_snapshot *s, const struct crl_parsed *p, const uint64_t key[2],
                        char *err, size_t errlen)
{
    CBS revoked = p->revoked;
    struct crl_parsed_entry e;
    uint32_t flags = 0;
    uint8_t crl_issuer[32], buf[1 + CRL_SERIAL_MAX];
    int rc, ord = 0;

    /* Names by value (RFC 5280 7.1): the same hash as the index id. */
    name_norm_hash(crl_issuer, CBS_data(&p->issuer), CBS_len(&p->issuer));
    while ((rc = crl_parse_next_entry(&revoked, &e, &flags, err, errlen)) == 1) {
        if (e.has_cert_issuer && !p->indirect)
            flags |= CRL_PF_INDIRECT; /* RFC 5280 5.3.3: only in indirect CRLs */
        if (!p->indirect) {
            insert(s, key, &e, CBS_data(&e.serial), CBS_len(&e.serial));
            continue;
        }
        if (e.has_cert_issuer && (ord = issuer_ordinal(s, crl_issuer, e.cert_issuer)) < 0) {
            flags |= CRL_PF_TOO_MANY_NAMES;
            ord = 255;
        }
        if (CBS_len(&e.serial) > CRL_SERIAL_MAX) { /* the parser refused longer ones */
            ERRF("revoked serial too long for an indirect CRL");
            return -1;
        }
        buf[0] = (uint8_t)ord;
        memcpy(buf + 1, CBS_data(&e.serial), CBS_len(&e.serial));
        insert(s, key, &e, buf, CBS_len(&e.serial) + 1);
    }
    s->flags |= flags;
    return rc; /* 0 at the end, -1 on a malformed entry */
}

bool crl_snapshot_lookup(const struct crl_snapshot *s, const uint64_t key[2],
                         const uint8_t cert_issuer[32], const uint8_t *serial, size_t len,
                         int *out_reason, int64_t *out_revoked_at)
{
    uint8_t buf[1 + CRL_SERIAL_MAX];
    int ord = -1;

    if (!s->indirect) {
        if (memcmp(cert_issuer, s->id, 32) != 0)
            return false;
        return crl_snapshot_find(s, crl_snapshot_hash(key, serial, len), serial, len, out_reason,
                                 out_revoked_at);
    }
    if (memcmp(cert_issuer, s->id, 32) == 0)
        ord = 0;
    for (size_t i = 0; ord < 0 && i < s->n_cert_issuers; i++)
        if (memcmp(s->cert_issuers[i], cert_issuer, 32) == 0)
            ord = (int)i + 1;
    if (ord < 0 || len > CRL_SERIAL_MAX)
        return false;
    buf[0] = (uint8_t)ord;
    memcpy(buf + 1, serial, len);
    return crl_snapshot_find(s, crl_snapshot_hash(key, buf, len + 1), buf, len + 1, out_reason,
                             out_revoked_at);
}

static int alloc_tables(struct crl_snapshot *s, const struct crl_parsed *p, char *err,
                        size_t errlen)
{
    size_t n = 0;

    if (crl_parse_count_entries(&p->revoked, &n) != 0) {
        ERRF("malformed revokedCertificates");
        return -1;
    }
    /* Each entry's TLV is at least 2 bytes longer than its serial, so the
     * list's length bounds the arena (+1: offset 0 means "empty slot"). */
    size_t arena_cap = CBS_len(&p->revoked) + 1;
    if (arena_cap > UINT32_MAX || n > SIZE_MAX / 2 / sizeof(struct crl_slot)) {
        ERRF("CRL too large");
        return -1;
    }
    s->n_slots = n + n * 3 / 7 + 1; /* load factor <= 0.7 */
    s->slots = calloc(s->n_slots, sizeof(struct crl_slot));
    s->arena = malloc(arena_cap);
    if (s->slots == NULL || s->arena == NULL) {
        ERRF("out of memory for %zu CRL entries", n);
        return -1;
    }
    s->arena[0] = 0;
    s->arena_len = 1;
    return 0;
}

static void copy_header(struct crl_snapshot *s, const struct crl_parsed *p)
{
    s->this_update = p->this_update;
    s->next_update = p->next_update;
    s->has_crl_number = p->has_crl_number;
    s->sig_nid = p->sig_nid;
    s->crl_number_len = (uint8_t)p->crl_number_len;
    memcpy(s->crl_number, p->crl_number, p->crl_number_len);
    for (size_t i = 0; i < p->crl_number_len; i++)
        s->crl_number_low = (s->crl_number_low << 8) | p->crl_number[i];
    s->flags = p->flags;
    s->scope = p->scope;
    s->delta = p->delta;
    memcpy(s->scope_id, p->scope_id, sizeof(s->scope_id));
    memcpy(s->base_number, p->base_number, p->base_number_len);
    s->base_number_len = (uint8_t)p->base_number_len;
    s->indirect = p->indirect;
    s->reasons = p->reasons;
    s->has_dp_name = p->has_dp_name;
}

static int copy_dp_names(struct crl_snapshot *s, const struct crl_parsed *p)
{
    if (p->n_dp_names == 0)
        return 0;
    s->dp_names = malloc(p->n_dp_names * 32);
    if (s->dp_names == NULL)
        return -1;
    memcpy(s->dp_names, p->dp_names, p->n_dp_names * 32);
    s->n_dp_names = (uint8_t)p->n_dp_names;
    return 0;
}

struct crl_snapshot *crl_snapshot_build(const struct crl_parsed *p, const uint64_t key[2],
                                        const char *source, char *err, size_t errlen)
{
    struct crl_snapshot *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        ERRF("out of memory");
        goto err;
    }
    copy_header(s, p);
    s->source = strdup(source ? source : "");
    if (s->source == NULL || copy_dp_names(s, p) != 0) {
        ERRF("out of memory");
        goto err;
    }
    if (alloc_tables(s, p, err, errlen) != 0 || fill_entries(s, p, key, err, errlen) != 0)
        goto err;
    /* Give back the arena's slack (serials shorter than their TLVs). */
    uint8_t *shrunk = realloc(s->arena, s->arena_len);
    if (shrunk != NULL)
        s->arena = shrunk;
    if (s->n_cert_issuers > 0) {
        uint8_t(*fit)[32] = realloc(s->cert_issuers, s->n_cert_issuers * 32);
        if (fit != NULL)
            s->cert_issuers = fit;
    }
    return s;
err:
    crl_snapshot_free(s);
    return NULL;
}

size_t crl_snapshot_bytes(const struct crl_snapshot *s)
{
    return sizeof(*s) + s->n_slots * sizeof(struct crl_slot) + s->arena_len +
           (size_t)s->n_dp_names * 32 + s->n_cert_issuers * 32;
}

void crl_snapshot_free(struct crl_snapshot *s)
{
    if (s == NULL)
        return;
    free(s->slots);
    free(s->arena);
    free(s->source);
    free(s->dp_names);
    free(s->cert_issuers);
    free(s);
}
