/* Lock-free CRL cache.
 *
 * Per CRL issuer, an immutable snapshot of the revoked serials (with reason
 * and revocation date), CRL number, thisUpdate and nextUpdate. Readers look a
 * serial up in O(1) without taking a lock; a writer parses and verifies a new
 * CRL, builds the next snapshot aside and publishes it with one RCU pointer
 * exchange; the old snapshot is freed after a grace period (liburcu, "memb"
 * flavour).
 *
 * Who does what:
 *  - readers: any thread registered with certval_rcu_reader_register()
 *    (rcu_reader.h);
 *    crl_cache_check() takes the RCU read lock itself.
 *  - writers: crl_cache_add_* may be called from any thread; writers are
 *    serialised by an internal mutex that readers never touch.
 *
 * Conventions: 0 on success, -1 with a message in |err| on failure. */
#ifndef CERTVAL_CRL_CACHE_H
#define CERTVAL_CRL_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>
#include <openssl/x509.h>

struct crl_cache;

enum crl_status {
    CRL_STATUS_GOOD = 0,      /* a current CRL from this issuer does not list the serial */
    CRL_STATUS_REVOKED = 1,   /* listed */
    CRL_STATUS_NO_CRL = 2,    /* no CRL from this issuer is cached */
    CRL_STATUS_STALE = 3,     /* the cached CRL is past nextUpdate + grace (still checked: a listed serial is REVOKED) */
    CRL_STATUS_UNUSABLE = 4,  /* the CRL cannot decide (unknown critical extension, not yet valid, ...) */
};

struct crl_check_info {
    int revocation_reason;    /* CRLReason code, -1 when absent */
    int64_t revocation_date;  /* Unix seconds, for REVOKED */
    int64_t this_update;
    int64_t next_update;      /* 0 when the CRL has none */
    uint64_t crl_number_low;  /* low 64 bits of cRLNumber */
    /* Added by the cache owner: what the CRL's issuingDistributionPoint
     * restricts it to (RFC 5280 5.2.5), CRL_SCOPE_* bits, 0 = a full CRL.
     * The cache cannot tell a CA certificate from an end-entity one, so a
     * caller that checks a CA certificate against a CRL with
     * CRL_SCOPE_ONLY_USER_CERTS (or the reverse) must not trust GOOD. */
    uint32_t scope;
    /* Added with RFC 5280 6.3 support: true when the CRLs cached for this
     * issuer name cannot be judged from (issuer, serial) alone (several
     * partitions or signing keys, a distribution-point or reason-scoped
     * CRL). The status is then CRL_STATUS_UNUSABLE; a caller holding the
     * certificate should run the full check (validator/revocation.c). */
    bool needs_cert;
    /* Of the complete CRL that decided, for a caller's own policy (the
     * verdict cache's re-check): its signatureAlgorithm NID and whether it
     * carries a cRLNumber. */
    int sig_nid;
    bool has_crl_number;
};

#define CRL_SCOPE_ONLY_USER_CERTS 0x1u    /* IDP onlyContainsUserCerts */
#define CRL_SCOPE_ONLY_CA_CERTS 0x2u      /* IDP onlyContainsCACerts */
#define CRL_SCOPE_DISTRIBUTION_POINT 0x4u /* IDP names a distribution point */

/* ReasonFlags (RFC 5280 4.2.1.13) as a mask: bit n of the BIT STRING is
 * 1u << n. Bit 0 ("unused") is never set; all-reasons is bits 1..8. */
#define CRL_REASONS_ALL 0x1feu
/* Names kept per distribution point (IDP or cRLDistributionPoints entry). */
#define CRL_DP_NAMES_MAX 8
/* A name's hash: name_norm_hash of a Name (by value, RFC 5280 7.1;
 * cache/name_norm.h), SHA-256 of the DER of other GeneralNames. */
#define CRL_NAME_HASH_LEN 32

/* crl_cache_new returns an empty cache, or NULL on allocation failure. */
struct crl_cache *crl_cache_new(void);

/* crl_cache_free frees the cache and every snapshot; NULL is accepted. No
 * reader may be using it. */
void crl_cache_free(struct crl_cache *c);

/* crl_cache_add_crl verifies |crl|'s signature with |issuer| (which must be
 * allowed to sign CRLs: keyUsage absent or with cRLSign) and publishes it as
 * the current CRL of that issuer, unless the cache already holds one with a
 * higher cRLNumber (then -1, "older CRL"). |source| is a short label kept for
 * status reports ("file:/path", "admin", "http://..."). Thread-safe.
 * The issuer is identified by subject name and public key together, so a CA
 * that rolled its key over under the same name has one CRL per key.
 * Several CRLs may be held per issuer: one per partition (the exact
 * issuingDistributionPoint) and kind (complete or delta); a new CRL
 * replaces the one of the same partition and kind.
 * Refused (-1): bad signature, name mismatch, issuer without cRLSign, older
 * cRLNumber than the cached CRL of the same partition and kind (or, without
 * cRLNumbers, older thisUpdate), malformed DER. Stored but answering
 * CRL_STATUS_UNUSABLE (RFC 5280 5.2, 5.3): unknown critical CRL or entry
 * extensions, onlyContainsAttributeCerts, certificateIssuer entries in a CRL
 * not marked indirect. See docs/revocation.md. */
int crl_cache_add_crl(struct crl_cache *c, X509_CRL *crl, X509 *issuer, const char *source,
                      char *err, size_t errlen);

/* crl_cache_add_der parses |der| (DER, or PEM when it starts with "-----"),
 * finds its issuer among |issuers| by name and signature, and adds it as
 * crl_cache_add_crl does. */
int crl_cache_add_der(struct crl_cache *c, const uint8_t *der, size_t len,
                      const STACK_OF(X509) *issuers, const char *source, char *err,
                      size_t errlen);

/* Flag of crl_cache_add_der_flags: publish even when the cache holds a newer CRL (an operator's force). */
#define CRL_CACHE_ALLOW_OLDER 0x1u

/* crl_cache_add_der_flags is crl_cache_add_der with |flags|
 * (CRL_CACHE_ALLOW_OLDER). Thread-safe. */
int crl_cache_add_der_flags(struct crl_cache *c, const uint8_t *der, size_t len,
                            const STACK_OF(X509) * issuers, const char *source, unsigned flags,
                            char *err, size_t errlen);

/* crl_cache_new_aside returns an empty cache whose snapshots can later be
 * moved into |c| by crl_cache_replace_issuer, or NULL. */
struct crl_cache *crl_cache_new_aside(const struct crl_cache *c);

/* crl_cache_replace_issuer makes the CRLs of |from| whose issuer (one-line
 * name, as crl_cache_foreach reports it) is |issuer| the only CRLs of that
 * issuer in |c|, in one publication: readers see the old set or the new
 * one, never none. They are moved out of |from|, which must come from
 * crl_cache_new_aside(c) and be used by no other thread. Counts what left |c| and
 * what arrived. 0, or -1 on allocation failure (nothing changed).
 * Thread-safe for |c|. */
int crl_cache_replace_issuer(struct crl_cache *c, struct crl_cache *from, const char *issuer,
                             size_t *out_removed, size_t *out_added, char *err, size_t errlen);

/* crl_cache_check looks |serial| (as issued by |issuer|) up at time |now|.
 * Lock-free and wait-free for readers; the calling thread must be
 * registered. |info| may be NULL. |issuer| must be a parsed certificate
 * that no thread modifies (its cached subject encoding is read). Order of
 * decisions: no CRL for this name and key -> NO_CRL; CRLs under this
 * name that need the certificate to be judged (info->needs_cert) ->
 * UNUSABLE; CRL unusable or |now| before thisUpdate -> UNUSABLE; listed ->
 * REVOKED (even when stale); |now| after nextUpdate + |grace_seconds| ->
 * STALE; else GOOD. A delta CRL of the same scope whose BaseCRLNumber the
 * complete CRL reaches is applied first (RFC 5280 5.2.4, 6.3.3 (g)-(j)):
 * its entries override, removeFromCRL un-lists. */
enum crl_status crl_cache_check(const struct crl_cache *c, const X509 *issuer,
                                const ASN1_INTEGER *serial, int64_t now, uint32_t grace_seconds,
                                struct crl_check_info *info);

/* An issuer's identity in the cache: name_norm_hash of its subject name
 * (by value, so re-encodings of one name agree) followed by SHA-256 of its
 * public key bits. */
#define CRL_CACHE_ISSUER_ID_LEN 64

/* crl_cache_issuer_id computes |issuer|'s identity. Returns 0 or -1. */
int crl_cache_issuer_id(uint8_t out[CRL_CACHE_ISSUER_ID_LEN], const X509 *issuer);

/* crl_cache_serial_content writes the minimal INTEGER content octets of
 * |serial| (the form crl_cache_check_id takes). Returns 0, or -1 when it
 * does not fit |cap|. */
int crl_cache_serial_content(uint8_t *out, size_t cap, size_t *out_len, const ASN1_INTEGER *serial);

/* crl_cache_check_id is crl_cache_check for an issuer identity and serial
 * content octets computed earlier (the verdict cache keeps them), so a
 * cached chain is re-checked without parsing a certificate. */
enum crl_status crl_cache_check_id(const struct crl_cache *c,
                                   const uint8_t issuer_id[CRL_CACHE_ISSUER_ID_LEN],
                                   const uint8_t *serial, size_t serial_len, int64_t now,
                                   uint32_t grace_seconds, struct crl_check_info *info);

/* ---- RFC 5280 6.3 support: distribution points and per-name lookup ---- */

/* One DistributionPoint of a certificate's cRLDistributionPoints (RFC 5280
 * 4.2.1.13), reduced to what 6.3.3 (b) compares. Names are hashed as
 * CRL_NAME_HASH_LEN says (a directoryName by value); a
 * nameRelativeToCRLIssuer is first turned into the full directoryName
 * (appended to the cRLIssuer, or else to the certificate issuer), the same
 * way the cache turns an IDP's relative name into one. */
struct crl_cert_dp {
    bool has_name; /* distributionPoint present */
    size_t n_names;
    uint8_t names[CRL_DP_NAMES_MAX][CRL_NAME_HASH_LEN];
    uint16_t reasons;    /* CRL_REASONS_ALL when the reasons field is absent */
    bool has_crl_issuer; /* cRLIssuer present */
    bool crl_issuer_has_dn; /* ... and holds a directoryName */
    uint8_t crl_issuer_name[CRL_NAME_HASH_LEN]; /* name_norm_hash of that Name */
    size_t n_crl_issuer_names;
    uint8_t crl_issuer_names[CRL_DP_NAMES_MAX][CRL_NAME_HASH_LEN]; /* GeneralName hashes */
};

/* crl_cache_parse_cdp parses the extnValue contents of a cRLDistributionPoints
 * extension into at most |cap| entries of |out| (more are ignored and
 * reported by |*out_more|). |issuer_name| is the certificate's issuer Name
 * DER, used for relative names. Returns 0, or -1 when malformed or when a
 * point has more than CRL_DP_NAMES_MAX names. Thread-safe. */
int crl_cache_parse_cdp(struct crl_cert_dp *out, size_t cap, size_t *out_n, bool *out_more,
                        const uint8_t *ext, size_t ext_len, const uint8_t *issuer_name,
                        size_t issuer_name_len);

/* What crl_cache_lookup_name reports for one cached CRL, copied out of the
 * snapshot under the read lock. */
struct crl_cache_crl {
    uint8_t signer_key[CRL_NAME_HASH_LEN]; /* SHA-256 of the verifying key's bits */
    uint8_t scope_id[32]; /* SHA-256 of the IDP extension value, zero when absent: a
                           * delta applies to a complete CRL of the same scope_id */
    bool delta;           /* deltaCRLIndicator (RFC 5280 5.2.4) */
    bool indirect;        /* IDP indirectCRL */
    bool usable;          /* false: unknown critical extension, attribute-certificate CRL, ... */
    uint32_t scope;       /* CRL_SCOPE_* */
    uint16_t reasons;     /* IDP onlySomeReasons, CRL_REASONS_ALL when absent */
    bool has_dp_name;
    size_t n_dp_names;
    uint8_t dp_names[CRL_DP_NAMES_MAX][CRL_NAME_HASH_LEN];
    int64_t this_update;
    int64_t next_update; /* 0 = none */
    bool has_crl_number;
    int sig_nid;            /* signatureAlgorithm as a NID; NID_undef when unknown */
    uint8_t crl_number[20]; /* minimal big-endian */
    size_t crl_number_len;
    uint64_t crl_number_low;
    uint8_t base_number[20]; /* delta: BaseCRLNumber */
    size_t base_number_len;
    /* The serial asked about: */
    bool listed;
    int revocation_reason; /* -1 when absent */
    int64_t revocation_date;
};

/* crl_cache_lookup_name copies into |out| (at most |cap|) every CRL cached
 * under the CRL issuer name hash |crl_issuer_name| (name_norm_hash of the
 * signing certificate's subject), whatever its key, partition or kind, each
 * with whether it lists |serial| as issued by |cert_issuer_name| (for an
 * indirect CRL, the certificateIssuer entry extensions decide; otherwise
 * the entry must be the CRL issuer's own). Returns how many CRLs exist
 * (may exceed |cap|). Lock-free; the calling thread must be a registered
 * reader. The caller applies RFC 5280 6.3.3 (validator/revocation.c). */
size_t crl_cache_lookup_name(const struct crl_cache *c, struct crl_cache_crl *out, size_t cap,
                             const uint8_t crl_issuer_name[CRL_NAME_HASH_LEN],
                             const uint8_t cert_issuer_name[CRL_NAME_HASH_LEN],
                             const uint8_t *serial, size_t serial_len);

/* crl_cache_issuer_count returns how many issuers (name and key) have at
 * least one CRL cached. */
size_t crl_cache_issuer_count(const struct crl_cache *c);

/* crl_cache_generation returns a counter bumped on every publish; the
 * verdict cache keys on it. */
uint64_t crl_cache_generation(const struct crl_cache *c);

/* What crl_cache_foreach reports for each issuer's current CRL. The strings
 * are valid only during the callback. */
struct crl_issuer_status {
    const char *issuer; /* issuer name, one line */
    const char *source; /* as given to crl_cache_add_* */
    int64_t this_update;
    int64_t next_update; /* 0 when the CRL has none */
    uint64_t crl_number_low;
    bool has_crl_number;
    size_t entries;
    bool unusable; /* the CRL cannot decide (see crl_cache_check) */
};

typedef void (*crl_cache_visit_fn)(const struct crl_issuer_status *st, void *arg);

/* crl_cache_foreach calls |fn| for each cached issuer, under the RCU read
 * lock (|fn| must not block or call crl_cache_add_*). The calling thread
 * must be a registered reader. */
void crl_cache_foreach(const struct crl_cache *c, crl_cache_visit_fn fn, void *arg);

#endif
