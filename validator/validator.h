/* certval validation core: RFC 5280 path validation on BoringSSL, certificate
 * profiles (tenant / device) and the verdict policy.
 *
 * Conventions: functions that can fail return 0 on success and -1 on failure
 * with a message in a caller-supplied |err| buffer; lookups return NULL when
 * nothing is found. A |struct validator| is an immutable snapshot: once
 * validator_new returns it, any number of threads may call
 * validator_check_chain on it concurrently. The server swaps snapshots with
 * RCU on reload (server/reload.c); calls in flight keep the one they started
 * with.
 *
 * This library knows nothing of gRPC. */
#ifndef CERTVAL_VALIDATOR_H
#define CERTVAL_VALIDATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>
#include <openssl/x509.h>

#include "verdict-t.h"

struct crl_cache;
struct deny_list;
struct verdict_cache;

/* Revocation data and the verdict cache a check may use; any may be NULL.
 * Borrowed for the duration of the call. */
struct revocation_sources {
    const struct crl_cache *crls;  /* NULL: no CRL data (profiles that need it DENY) */
    const struct deny_list *deny;  /* emergency deny entries, applied to every certificate */
    struct verdict_cache *cache;   /* answers repeated chains without parsing or signatures */
    /* fleet (issue 11): when set and true, every chain is DENY
     * REVOCATION_UNKNOWN with |why| (revocation state known to be out of
     * date: fail closed). Any thread; must be cheap. NULL: never. */
    bool (*revocation_unknown)(char *why, size_t cap);
};

/* Where a profile reads the tenant or device id from in the leaf. */
enum id_source_type {
    ID_SOURCE_NONE = 0,         /* not read (device id of a tenant profile) */
    ID_SOURCE_SUBJECT_ATTR = 1, /* a subject attribute: "CN", "O", "OU", "serialNumber", "UID" or a dotted OID */
    ID_SOURCE_SAN_URI = 2,      /* the rest of the first SAN URI that starts with |value| */
};

struct id_source {
    enum id_source_type type;
    char *value;
};

enum revocation_scope {
    REVOCATION_NONE = 0, /* no revocation check */
    REVOCATION_LEAF = 1, /* the leaf only */
    REVOCATION_ALL = 2,  /* every certificate of the path below the anchor */
};

enum stale_policy {
    STALE_FAIL_CLOSED = 0,  /* DENY REVOCATION_STALE once nextUpdate + grace has passed */
    STALE_ALLOW_WARN = 1,   /* keep using the stale CRL, say so in the detail */
};

/* What a path must satisfy beyond RFC 5280 section 6 (docs/conformance.md,
 * "Strict rules"). The zero value is the strict default. */
enum algorithm_policy {
    ALGORITHMS_STRICT = 0, /* no MD5/SHA-1 signatures; RSA >= min_rsa_bits, P-256/384/521 */
    ALGORITHMS_LEGACY = 1, /* also SHA-1 signatures, DSA keys, other named curves */
};

struct conformance_policy {
    enum algorithm_policy algorithms;
    uint32_t min_rsa_bits; /* 0 = 2048 (strict) or 1024 (legacy) */
    bool compat;           /* accept the RFC 5280 MUST violations old private PKIs make */
};

/* A certificate profile: which leaves it covers and how to read them. */
struct profile_config {
    char *name;
    enum cert_kind kind;
    char **issuer_files; /* CA certificates (PEM or DER) that issue this profile's leaves */
    size_t n_issuer_files;
    struct id_source tenant_id;
    struct id_source device_id;  /* ID_SOURCE_NONE for tenant profiles */
    uint32_t max_validity_days;  /* 0 = default: tenant 396 (13 months), device 1827 (5 years) */
    char *required_eku;          /* dotted OID; NULL = id-kp-clientAuth 1.3.6.1.5.5.7.3.2 */
    enum revocation_scope revocation;
    uint32_t crl_grace_seconds;  /* tolerated time past nextUpdate */
    enum stale_policy on_stale;
    struct conformance_policy conformance;
    uint32_t max_depth;          /* certificates in a path, anchor included; 0 = the global one */
};

/* Per-tenant policy. */
struct tenant_config {
    char *id;
    bool device_certificate_skips_password; /* device cert -> ALLOW instead of REQUIRE_PASSWORD */
    bool require_device_binding;            /* device id in cert must equal the request's */
};

/* Everything a validator snapshot is built from. Owned by the caller;
 * validator_new copies what it keeps. */
struct validator_config {
    char **anchor_files; /* trust anchors: PEM bundles (several certs) or DER */
    size_t n_anchor_files;
    char **intermediate_files; /* configured intermediates, untrusted */
    size_t n_intermediate_files;
    struct profile_config *profiles;
    size_t n_profiles;
    struct tenant_config *tenants;
    size_t n_tenants;
    char **policy_oids; /* initial policy set; none = anyPolicy */
    size_t n_policy_oids;
    bool explicit_policy;
    uint32_t clock_skew_seconds; /* allowed skew on notBefore/notAfter */
    uint32_t max_depth;          /* certificates in a path, anchor included; 0 = 8 */
    uint32_t max_path_attempts;  /* candidate paths tried per chain; 0 = 16 */
    uint32_t max_chain_certs;    /* certificates accepted in one request chain; 0 = 8 */
    uint32_t max_cert_bytes;     /* bytes per DER certificate; 0 = 16384 */
};

struct validator;

/* validator_new loads the anchors, intermediates and profiles of |cfg| and
 * returns a new immutable snapshot in |*out|, or -1 with a message naming the
 * file and the problem in |err|. |version| is stored and reported by
 * validator_version (the server's configuration generation). */
int validator_new(struct validator **out, const struct validator_config *cfg, uint64_t version,
                  char *err, size_t errlen);

/* validator_free releases |v|; NULL is accepted. */
void validator_free(struct validator *v);

/* validator_version returns the version given to validator_new. */
uint64_t validator_version(const struct validator *v);

/* validator_anchor_count returns the number of trust anchors loaded. */
size_t validator_anchor_count(const struct validator *v);

/* validator_check_chain validates one chain and applies the profile and
 * tenant policy, filling |out| (always: on any internal problem it is DENY
 * INTERNAL_ERROR). |src| may be NULL or hold NULLs (no CRL data: profiles
 * that require revocation then DENY REVOCATION_UNKNOWN). With a verdict
 * cache, a chain seen before under the same configuration version is
 * answered from the cache after its revocation (CRLs and deny list) and
 * validity window are checked again, so a revocation or an expiry takes
 * effect at once. |now| is the validation time in Unix seconds.
 * Thread-safe. The caller must be a registered RCU reader thread (see
 * cache/crl_cache.h). */
void validator_check_chain(const struct validator *v, const struct revocation_sources *src,
                           struct verdict *out, const struct chain_input *in, int64_t now);

/* validator_try_cached answers |in| only if the verdict cache can
 * (validator/verdict_step.c): it returns true with |out| filled exactly as
 * validator_check_chain would (revocation and validity window re-checked),
 * and false, with |out| zeroed (decision DECISION_UNSPECIFIED) and without
 * parsing or signature work, when the chain needs validator_check_chain.
 * Cheap enough to run on a thread that must not block (a few
 * microseconds). Thread-safe; the caller must be a registered RCU reader. */
bool validator_try_cached(const struct validator *v, const struct revocation_sources *src,
                          struct verdict *out, const struct chain_input *in, int64_t now);

/* The verdict-cache key of one chain under one validator, as computed by
 * validator_try_cached_key, so that a miss validated later by
 * validator_check_chain_keyed hashes its chain once, not twice. */
struct validator_key {
    bool set; /* false: no key was computed (no verdict cache) */
    uint8_t key[32];
};

/* validator_try_cached_key is validator_try_cached that also leaves in
 * |out_key| the key it looked up (out_key->set false when it computed
 * none). Thread-safe, as validator_try_cached. */
bool validator_try_cached_key(const struct validator *v, const struct revocation_sources *src,
                              struct verdict *out, struct validator_key *out_key,
                              const struct chain_input *in, int64_t now);

/* validator_check_chain_keyed is validator_check_chain for a chain that
 * validator_try_cached_key just missed with the same |v|, |src|, |in| and
 * |now|: with key->set it skips the lookup and stores the verdict under
 * |key|; with |key| NULL or not set it is validator_check_chain. Giving a
 * key of another chain, validator or time is a caller bug (the cache would
 * answer that chain with this verdict). Thread-safe. */
void validator_check_chain_keyed(const struct validator *v, const struct revocation_sources *src,
                                 struct verdict *out, const struct chain_input *in, int64_t now,
                                 const struct validator_key *key);

/* ---- Revocation (RFC 5280 6.3) over the CRL cache ---- */

/* What revocation_check_chain reports besides the verdict. */
struct revocation_report {
    bool stale;       /* a stale CRL was tolerated (STALE_ALLOW_WARN) */
    char warning[96]; /* when |stale|: which certificate */
    /* crl_cache_check_id on each certificate's (issuer identity, serial)
     * reference gives the same answer as this full check did: the verdict
     * may be cached and re-checked by reference. False when the answer
     * needed distribution points, reasons partitions, an indirect CRL or a
     * separately keyed CRL issuer (docs/revocation.md). */
    bool cacheable;
};

/* revocation_check_chain checks the revocation status of the certificates
 * of |chain| (a validated path, leaf first, trust anchor last) that |scope|
 * covers, with the CRLs of src->crls, following RFC 5280 6.3.3:
 * distribution points and IDP scope, onlySomeReasons (every reason must be
 * covered before "not revoked"), indirect CRLs (cRLIssuer and
 * certificateIssuer), CRLs signed by a separate key whose certificate must
 * be found on the path or in |crl_issuer_candidates| (may be NULL) and
 * validate to the same anchor, and delta CRLs. The emergency deny list is
 * not consulted here. Returns 0 when every covered certificate is not
 * revoked; otherwise -1 with |out| denied (REVOKED, REVOCATION_UNKNOWN,
 * REVOCATION_STALE, or INTERNAL_ERROR). Unless pol->compat (|pol| NULL =
 * strict), a CRL without cRLNumber does not count (RFC 5280 5.2.3).
 * |report| may be NULL. Thread-safe;
 * the caller must be a registered RCU reader (cache/crl_cache.h). */
int revocation_check_chain(struct verdict *out, struct revocation_report *report,
                           const struct revocation_sources *src, const STACK_OF(X509) *chain,
                           enum revocation_scope scope, uint32_t grace,
                           enum stale_policy on_stale, int64_t now,
                           const STACK_OF(X509) *crl_issuer_candidates,
                           const struct conformance_policy *pol);

/* ---- Plain path validation, for certvalctl verify/check-trust and PKITS ---- */

enum path_purpose {
    PATH_PURPOSE_CLIENT = 0, /* EKU clientAuth, or no EKU */
    PATH_PURPOSE_SERVER = 1, /* EKU serverAuth, or no EKU; hostname checked when set */
    PATH_PURPOSE_ANY = 2,
};

enum crl_check_mode {
    CRL_CHECK_NONE = 0,
    CRL_CHECK_LEAF = 1,
    CRL_CHECK_ALL = 2,
};

struct path_options {
    int64_t at;                  /* validation time, Unix seconds */
    enum crl_check_mode crl_check;
    const char *const *policy_oids; /* initial policy set; NULL/0 = anyPolicy */
    size_t n_policy_oids;
    bool explicit_policy;
    bool inhibit_policy_mapping;
    bool inhibit_any_policy;
    enum path_purpose purpose;
    const char *hostname; /* PATH_PURPOSE_SERVER only; NULL = no name check (RFC 6125: SAN only) */
    const char *ip;              /* the leaf must carry this IP address SAN (text); NULL = no check */
    const char *email;           /* the leaf must carry this rfc822Name SAN; NULL = no check */
    uint32_t max_depth;          /* 0 = 8 */
    uint32_t max_path_attempts;  /* 0 = 16 */
    struct conformance_policy conformance;
};

struct path_result {
    bool valid;
    enum verdict_reason reason; /* VERDICT_REASON_OK when valid */
    char detail[VERDICT_DETAIL_MAX];
    STACK_OF(X509) *chain;      /* the validated path, leaf first, anchor last; caller frees with sk_X509_pop_free */
};

/* path_validate validates |leaf| against |anchors| using |untrusted| as
 * candidate intermediates and |crls| (DER-parsed X509_CRL objects, used only
 * when crl_check != NONE, with full RFC 5280 6.3 semantics where implemented)
 * at |opts->at|. Returns 0 and fills |res| (valid or not); -1 only on an
 * internal error, with the message in res->detail. Thread-safe for distinct
 * |res|. res->chain is set only when the path validated. */
int path_validate(struct path_result *res, const struct path_options *opts, X509 *leaf,
                  const STACK_OF(X509) *anchors, const STACK_OF(X509) *untrusted,
                  const STACK_OF(X509_CRL) *crls);

/* path_check_revocation runs RFC 5280 6.3 on the validated path in |res|
 * (res->chain) with the service's own engine (validator/revocation.c) over
 * a CRL cache made of the |n_crls| DER CRLs, so the command line and the
 * server cannot disagree on revocation. CRLs that no candidate issuer
 * (|anchors|, |untrusted|, the path) verifies are left out, as the service
 * would. A revoked or undecidable path turns |res| invalid with the reason
 * and frees res->chain. Returns 0, or -1 when out of memory. Registers the
 * calling thread as an RCU reader for the call if it is not one. */
int path_check_revocation(struct path_result *res, const struct path_options *opts,
                          const STACK_OF(X509) *anchors, const STACK_OF(X509) *untrusted,
                          const uint8_t *const *crl_der, const size_t *crl_len, size_t n_crls);

/* path_result_clear frees what |res| owns and zeroes it. */
void path_result_clear(struct path_result *res);

/* ---- Loading helpers ---- */

/* cv_load_certs reads every certificate of a PEM file (one or several) or a
 * single DER file into |*out| (a new stack; free with sk_X509_pop_free).
 * Returns 0, or -1 with a message in |err|. An empty file is an error. */
int cv_load_certs(STACK_OF(X509) **out, const char *path, char *err, size_t errlen);

/* cv_append_certs appends every certificate of each of |files| to |to|
 * (in file order). Returns 0, or -1 with the failing file's message in
 * |err|; |to| then holds what was appended before the failure. */
int cv_append_certs(STACK_OF(X509) *to, const char *const *files, size_t n, char *err,
                    size_t errlen);

/* cv_load_crls is the same for CRLs (PEM with several, or one DER). */
int cv_load_crls(STACK_OF(X509_CRL) **out, const char *path, char *err, size_t errlen);

/* cv_asn1_time_to_unix converts an ASN1_TIME (UTCTime or GeneralizedTime in
 * the DER form RFC 5280 4.1.2.5 requires) to Unix seconds. Returns 0 or -1. */
int cv_asn1_time_to_unix(int64_t *out, const ASN1_TIME *t);

#endif
