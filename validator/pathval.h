/* Path verification on a prepared environment (pathval.c, link_cache.c):
 * the layer of certval_core below validator_check_chain and path_validate,
 * without profiles or verdict policy. The rest of validator/ builds on it;
 * the link-cache test and loadtest/link_bench drive it directly. server/
 * uses validator.h instead.
 *
 * Conventions: 0 or -1 with a message; enum verdict_reason where a check
 * names why it refused. Thread-safety is stated per function. */
#ifndef CERTVAL_PATHVAL_H
#define CERTVAL_PATHVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h> /* X509_PURPOSE_* of pathval_run */

#include "cert_read.h"
#include "validator.h"

/* ---- pathval.c ---- */

/* Why a built path was refused by one of certval's own checks (algorithm
 * policy, RFC 5280 structure rules), and about which certificate. */
struct pathval_failure {
    enum verdict_reason reason;
    int depth; /* the certificate's depth in the chain, 0 = leaf */
    char detail[VERDICT_DETAIL_MAX];
};

/* pathval_failure_set fills |f| for the certificate at |depth| of |chain|
 * ("intermediate at depth 1 (/CN=...): " + the formatted text) and
 * returns |reason|. */
enum verdict_reason pathval_failure_set(struct pathval_failure *f, enum verdict_reason reason,
                                        const STACK_OF(X509) *chain, size_t depth,
                                        const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- cert_memo.c ---- */

/* Configured issuers of one configured certificate whose link keys are
 * kept (more are computed on use). */
#define CERT_MEMO_LINKS 4

/* What certval's checks compute from a configured certificate (a trust
 * anchor or a configured intermediate) on every chain through it, computed
 * once when the snapshot is built, so that a chain through it pays no
 * hashing, re-encoding, extension or key decoding for it. */
struct cert_memo {
    X509 *cert; /* a reference of the memo's own */
    struct cert_exts exts;
    uint8_t der_sha256[32]; /* SHA-256 of its DER */
    struct cert_algs algs;  /* used only when complete */
    /* As the issuer of a path's next certificate: its identity in the CRL
     * cache (crl_cache_issuer_id) and the deny list's key of its subject
     * (deny_list_issuer_key). has_ids false: compute them on use. */
    bool has_ids;
    uint8_t crl_issuer_id[64];
    uint8_t name_sha256[32];
    size_t n_links;
    struct {
        const X509 *issuer; /* a configured certificate named as its issuer */
        uint8_t key[32];    /* link_cache_key(cert, issuer) */
    } link[CERT_MEMO_LINKS];
};

/* The memos of one snapshot, sorted by certificate address. A certificate
 * is found by the very object the snapshot configured (a presented copy of
 * it is that object: validator.c's find_known); the set holds a reference
 * to each, so no other certificate can ever have its address while the
 * set lives. Written once by cert_memo_build, then read-only: any number
 * of threads may look up concurrently. Rebuilt with every snapshot. */
struct cert_memo_set {
    struct cert_memo *m;
    size_t n;
};

/* cert_memo_build fills |set| (zeroed first) with a memo for every
 * certificate of the |n| stacks |certs| (a certificate in several once).
 * Returns 0, or -1 with |err| (out of memory) and |set| empty. */
int cert_memo_build(struct cert_memo_set *set, const STACK_OF(X509) *const *certs, size_t n,
                    char *err, size_t errlen);

/* cert_memo_clear frees |set| and zeroes it; a zeroed |set| is fine. */
void cert_memo_clear(struct cert_memo_set *set);

/* cert_memo_find returns the memo of |x|, or NULL when |x| is not one of
 * |set|'s certificates (|set| may be NULL). */
const struct cert_memo *cert_memo_find(const struct cert_memo_set *set, const X509 *x);

/* cert_memo_link_key is link_cache_key(key, cert, issuer): read from
 * |set| (may be NULL) when both are configured certificates and |issuer|'s
 * subject is |cert|'s issuer name, else computed (with |cert|'s DER digest
 * from its memo when it has one). The same key either way. */
bool cert_memo_link_key(uint8_t key[32], const struct cert_memo_set *set, X509 *cert,
                        X509 *issuer);

/* A prepared verification environment: the X509_STORE holding the anchors,
 * flags and callbacks. Immutable once built; shared by every thread. */
struct link_cache;

struct pathval_env {
    X509_STORE *store;
    STACK_OF(X509) *anchors; /* same certificates as the store, for retries */
    struct link_cache *links; /* verified CA signatures (link_cache.c); NULL = none */
    struct cert_memo_set memo; /* the configured certificates' (pathval_env_memo); empty = none */
};

/* ---- link_cache.c ---- */

struct link_cache *link_cache_new(void);
void link_cache_free(struct link_cache *c);
/* link_cache_key: the key of "|cert| is signed by |issuer|'s key". */
bool link_cache_key(uint8_t key[32], X509 *cert, X509 *issuer);
/* link_cache_key_digest is link_cache_key for the certificate whose DER
 * has SHA-256 |cert_sha256|. */
bool link_cache_key_digest(uint8_t key[32], const uint8_t cert_sha256[32], X509 *issuer);
bool link_cache_has(struct link_cache *c, const uint8_t key[32]);
void link_cache_put(struct link_cache *c, const uint8_t key[32]);
/* Certificate signatures computed by pathval (a counter for tests). */
extern _Atomic uint64_t pathval_signature_verifies;

/* Flags of every run. Policy processing (RFC 5280 6.1.2 (d)-(f), 6.1.3
 * (d)-(f), 6.1.4) is always on. TRUSTED_FIRST prefers an anchor over an
 * untrusted copy of the same name. PARTIAL_CHAIN makes a configured anchor
 * end the path even when it is not self-signed (RFC 5280 6.1 takes the
 * trust anchor as an input; CVE-2024-0567 was a verifier that went on past
 * a trusted intermediate): the chain still ends at a certificate of the
 * store, never at an untrusted one. */
#define PATHVAL_BASE_FLAGS \
    (X509_V_FLAG_POLICY_CHECK | X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN)

/* What one validation run needs beyond the environment. */
struct pathval_run {
    int64_t at;
    uint32_t clock_skew;            /* seconds tolerated on notBefore/notAfter */
    unsigned long flags;            /* X509_V_FLAG_* beyond the defaults */
    STACK_OF(ASN1_OBJECT) *policies; /* borrowed; NULL = anyPolicy */
    int purpose;                    /* X509_PURPOSE_*, 0 = none */
    const char *hostname;
    const char *ip;                 /* expected IP SAN, text; NULL = none */
    const char *email;              /* expected e-mail SAN; NULL = none */
    int max_depth;                  /* certificates below the anchor */
    uint32_t max_attempts;
    STACK_OF(X509_CRL) *crls;       /* borrowed; NULL = none */
    const struct conformance_policy *conformance; /* borrowed; NULL = strict defaults */
    const struct cert_exts *leaf_exts; /* the leaf's, decoded by the caller; NULL = decode here */
};

/* Where certval's own checks of a built path find a certificate's
 * extensions already decoded (cert_read.h) instead of decoding their own
 * copy: the leaf's, decoded once per validation, and the configured
 * certificates', decoded with the snapshot. */
struct pathval_exts {
    const X509 *leaf;
    const struct cert_exts *leaf_exts; /* NULL: none */
    const struct cert_memo_set *memo;  /* the configured certificates'; NULL: none */
};

/* pathval_exts_of returns the decoded extensions of |x| from |px|, or
 * NULL when |px| is NULL or has none for |x| (the caller decodes). */
const struct cert_exts *pathval_exts_of(const struct pathval_exts *px, const X509 *x);

/* pathval_post_check applies certval's own rules to a chain that
 * X509_verify_cert accepted (leaf first, anchor last): the algorithm policy
 * of |pol| (NULL = strict), then the RFC 5280 structure rules, then the
 * name constraints (reading decoded extensions from |px|, which may be
 * NULL). Returns VERDICT_REASON_OK, or the reason with |f| filled.
 * pathval_verify runs it on every candidate path; the service runs it
 * again when the profile that matched is not the one the path was built
 * for. */
enum verdict_reason pathval_post_check(struct pathval_failure *f, const struct pathval_exts *px,
                                       const struct conformance_policy *pol,
                                       const STACK_OF(X509) *chain);

/* pathval_env_init builds the store for |anchors| (references taken).
 * Returns 0 or -1 with |err|. */
int pathval_env_init(struct pathval_env *env, const STACK_OF(X509) *anchors, char *err,
                     size_t errlen);

/* pathval_env_memo builds env->memo for the anchors of |env| and the
 * certificates of |more| (the configured intermediates; may be NULL).
 * Returns 0 or -1 with |err|. */
int pathval_env_memo(struct pathval_env *env, const STACK_OF(X509) *more, char *err,
                     size_t errlen);

/* pathval_env_clear frees what |env| holds; safe on a zeroed env. */
void pathval_env_clear(struct pathval_env *env);

/* pathval_verify validates |leaf| with |untrusted| in |env| as |run| says and
 * fills |res| (res->chain on success). Returns 0, or -1 on an internal
 * error (message in res->detail). Thread-safe. */
int pathval_verify(struct path_result *res, const struct pathval_env *env,
                   const struct pathval_run *run, X509 *leaf, STACK_OF(X509) *untrusted);

/* {"2.5.29.32.0"}: anyPolicy, the default initial policy set. */
extern const char *const pathval_any_policy[1];

/* pathval_policies_from_oids parses dotted OIDs into a new stack; NULL on a
 * bad OID (named in |err|). n == 0 gives an empty stack. */
STACK_OF(ASN1_OBJECT) *pathval_policies_from_oids(const char *const *oids, size_t n, char *err,
                                                  size_t errlen);

#endif
