/* Immutable per-issuer CRL snapshot, private to cache/.
 *
 * Layout (see docs/revocation.md):
 *  - slots: open-addressing table (linear probing, load <= 0.7) of 16-byte
 *    slots { 64-bit SipHash of the serial, 32-bit arena offset, 32-bit
 *    revocation date }. Offset 0 marks an empty slot.
 *  - arena: packed entries [reason:1][len:1][serial content octets:len],
 *    starting at offset 1.
 * A snapshot is written only by the thread that builds it, before it is
 * published; afterwards it is read-only until call_rcu frees it.
 *
 * Conventions: builders return NULL when out of memory; lookups return
 * bool (found or not). */
#ifndef CERTVAL_CRL_SNAPSHOT_INTERNAL_H
#define CERTVAL_CRL_SNAPSHOT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <urcu/urcu-memb.h>

#include "crl_parse_internal.h"

/* Name hash (name_norm_hash, by value) then key hash (32 bytes): the
 * index key. */
#define CRL_ID_LEN 64
#define CRL_REASON_ABSENT 0xff

struct crl_slot {
    uint64_t hash;
    uint32_t off;        /* into arena; 0 = empty */
    uint32_t revoked_at; /* Unix seconds, clamped to [0, 2^32-1] (year 2106) */
};

struct crl_snapshot {
    struct rcu_head rcu;
    uint8_t id[CRL_ID_LEN]; /* name_norm_hash(issuer subject) || SHA-256(issuer key bits) */
    /* Partition within the issuer (index order after id): complete CRLs
     * sort before deltas, then by scope_id (zero = no IDP). */
    bool delta;
    uint8_t scope_id[32]; /* SHA-256 of the IDP extension value; zero when absent */
    int64_t this_update;
    int64_t next_update; /* 0 = none */
    uint8_t crl_number[CRL_NUMBER_MAX];
    uint8_t crl_number_len;
    bool has_crl_number;
    int sig_nid;           /* signatureAlgorithm as a NID; NID_undef when unknown */
    uint64_t crl_number_low;
    uint32_t flags;   /* enum crl_parse_flag; nonzero = UNUSABLE */
    uint32_t scope;   /* CRL_SCOPE_* */
    uint8_t base_number[CRL_NUMBER_MAX]; /* delta: BaseCRLNumber */
    uint8_t base_number_len;
    bool indirect;     /* IDP indirectCRL: serials are keyed [ordinal][serial] */
    uint16_t reasons;  /* IDP onlySomeReasons, CRL_REASONS_ALL when absent */
    bool has_dp_name;
    uint8_t n_dp_names;
    uint8_t (*dp_names)[32];     /* IDP names hashed; NULL when none */
    uint8_t (*cert_issuers)[32]; /* indirect: name_norm_hash of the certificateIssuer of
                                  * ordinal i + 1 (0 is the CRL issuer itself) */
    size_t n_cert_issuers;
    size_t n_entries; /* distinct serials */
    size_t n_slots;
    struct crl_slot *slots;
    uint8_t *arena;
    size_t arena_len;
    char *source;
    char issuer[256]; /* issuer name, one line, for status reports */
};

/* crl_snapshot_hash hashes serial content octets with the cache's key. */
uint64_t crl_snapshot_hash(const uint64_t key[2], const uint8_t *serial, size_t len);

/* crl_snapshot_build builds a snapshot from |p| (whose signature the caller
 * has verified). NULL with a message on a malformed entry or allocation
 * failure. The caller fills id[]. */
struct crl_snapshot *crl_snapshot_build(const struct crl_parsed *p, const uint64_t key[2],
                                        const char *source, char *err, size_t errlen);

/* crl_snapshot_find looks a serial up; true if listed, with its reason
 * (-1 when absent) and date. Safe for concurrent readers. */
bool crl_snapshot_find(const struct crl_snapshot *s, uint64_t hash, const uint8_t *serial,
                       size_t len, int *out_reason, int64_t *out_revoked_at);

/* crl_snapshot_is_plain: a complete CRL without distribution point,
 * reason or indirect scope, the case crl_cache_check_id answers on its
 * fast path. */
static inline bool crl_snapshot_is_plain(const struct crl_snapshot *s)
{
    return !s->delta && !s->has_dp_name && !s->indirect && s->reasons == CRL_REASONS_ALL;
}

/* crl_snapshot_lookup finds |serial| issued by the certificate issuer whose
 * name hash is |cert_issuer| (name_norm_hash of its Name): for a direct CRL
 * that must be the CRL issuer (id[0..31]); for an indirect CRL the
 * certificateIssuer entry extensions decide (RFC 5280 5.3.3). */
bool crl_snapshot_lookup(const struct crl_snapshot *s, const uint64_t key[2],
                         const uint8_t cert_issuer[32], const uint8_t *serial, size_t len,
                         int *out_reason, int64_t *out_revoked_at);

/* crl_snapshot_bytes returns the heap bytes the snapshot owns. */
size_t crl_snapshot_bytes(const struct crl_snapshot *s);

/* crl_snapshot_free frees |s|; NULL is accepted. */
void crl_snapshot_free(struct crl_snapshot *s);

#endif
