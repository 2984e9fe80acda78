/* Private helpers shared by the files of validator/ (load.c, pathval.c,
 * profile.c, validator.c). Not part of the public API. */
#ifndef CERTVAL_VALIDATOR_INTERNAL_H
#define CERTVAL_VALIDATOR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "profile.h"
#include "validator.h"

/* Largest certificate file cv_load_certs accepts: a CA bundle of a few
 * hundred certificates fits, a runaway file does not. */
#define CV_MAX_FILE_BYTES (16u * 1024u * 1024u)
/* Largest CRL file cv_load_crls accepts: the server's default admin push
 * limit (admin.max_message_bytes), so certvalctl reads every CRL the
 * server can be given (a 1,000,000-entry CRL is about 49 MB). */
#define CV_MAX_CRL_FILE_BYTES (256u * 1024u * 1024u)

/* ---- load.c ---- */

/* cv_certs_from_mem parses PEM (one or several) or one DER certificate held
 * in |buf| into a new stack. |what| names the source in messages. */
int cv_certs_from_mem(STACK_OF(X509) **out, const uint8_t *buf, size_t len, const char *what,
                      char *err, size_t errlen);

/* cv_stack_append_certs appends new references to every certificate of
 * |from| to |to|. */
int cv_stack_append_certs(STACK_OF(X509) *to, const STACK_OF(X509) *from);

/* cv_asn1_time_to_unix converts an ASN1_TIME (UTCTime or GeneralizedTime in
 * the DER form RFC 5280 4.1.2.5 requires) to Unix seconds. Returns 0 or -1. */
int cv_asn1_time_to_unix(int64_t *out, const ASN1_TIME *t);

/* cv_claims_check denies |out| MALFORMED, with which claim and byte in the
 * detail, when the tenant, device or user id of |in| holds a NUL byte or is
 * not valid UTF-8 (validator/claims.c); -1 then, else 0. Thread-safe. */
int cv_claims_check(struct verdict *out, const struct chain_input *in);

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

/* A prepared verification environment: the X509_STORE holding the anchors,
 * flags and callbacks. Immutable once built; shared by every thread. */
struct link_cache;

struct pathval_env {
    X509_STORE *store;
    STACK_OF(X509) *anchors; /* same certificates as the store, for retries */
    struct link_cache *links; /* verified CA signatures (link_cache.c); NULL = none */
};

/* ---- link_cache.c ---- */

struct link_cache *link_cache_new(void);
void link_cache_free(struct link_cache *c);
/* link_cache_key: the key of "|cert| is signed by |issuer|'s key". */
bool link_cache_key(uint8_t key[32], X509 *cert, X509 *issuer);
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
};

/* pathval_post_check applies certval's own rules to a chain that
 * X509_verify_cert accepted (leaf first, anchor last): the algorithm policy
 * of |pol| (NULL = strict), then the RFC 5280 structure rules. Returns
 * REASON_OK, or the reason with |f| filled. pathval_verify runs it on every
 * candidate path; the service runs it again when the profile that matched
 * is not the one the path was built for. */
enum verdict_reason pathval_post_check(struct pathval_failure *f,
                                       const struct conformance_policy *pol,
                                       const STACK_OF(X509) *chain);

/* pathval_env_init builds the store for |anchors| (references taken).
 * Returns 0 or -1 with |err|. */
int pathval_env_init(struct pathval_env *env, const STACK_OF(X509) *anchors, char *err,
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

/* ---- path_building.c ---- */

/* pathbuild_pick_culprit: after X509_verify_cert failed with |e| at depth
 * |d| of |chain|, the
 * certificate to exclude from the next attempt: for a signature failure the
 * issuer first, then the failing certificate, then the nearest CA above it
 * (then below it) that another candidate with its subject can replace.
 * NULL when retrying cannot help (revoked, out of memory, no alternative).
 * The leaf is never excluded. */
X509 *pathbuild_pick_culprit(const STACK_OF(X509) *chain, int e, int d,
                             const STACK_OF(X509) *anchors, const STACK_OF(X509) *untrusted,
                             X509 *const *excl, size_t n_excl);

/* pathbuild_post_culprit is the same for a pathval_post_check failure
 * about the certificate at f->depth of |chain|. */
X509 *pathbuild_post_culprit(const struct pathval_failure *f, const STACK_OF(X509) *chain,
                             const STACK_OF(X509) *anchors, const STACK_OF(X509) *untrusted,
                             X509 *const *excl, size_t n_excl);

/* pathbuild_filtered: a new stack borrowing |set|'s certificates except the
 * excluded ones, or NULL when none of them is in |set| (use |set|) or on
 * allocation failure (*oom set). */
STACK_OF(X509) *pathbuild_filtered(const STACK_OF(X509) *set, X509 *const *excl, size_t n_excl,
                                   bool *oom);

/* ---- algorithm_policy.c ---- */

/* algorithm_min_rsa_bits: the smallest RSA modulus |pol| accepts. */
uint32_t algorithm_min_rsa_bits(const struct conformance_policy *pol);

/* algorithm_check_signature returns NULL when |pol| accepts signature
 * algorithm |sig_nid|, else a sentence in |buf| saying why not. */
const char *algorithm_check_signature(const struct conformance_policy *pol, int sig_nid,
                                      char *buf, size_t len);

/* algorithm_check_key is the same for the public key of |x|. */
const char *algorithm_check_key(const struct conformance_policy *pol, X509 *x, char *buf,
                                size_t len);

/* algorithm_check_path applies |pol| (NULL = strict) to every key of
 * |chain| (leaf first, anchor last) and every signature below the anchor.
 * Returns REASON_OK, or REASON_WEAK_ALGORITHM with |f| filled. */
enum verdict_reason algorithm_check_path(struct pathval_failure *f,
                                         const struct conformance_policy *pol,
                                         const STACK_OF(X509) *chain);

/* ---- rfc5280_rules.c ---- */

/* rfc5280_check_path applies the RFC 5280 structure rules to |chain|: an
 * unknown critical extension anywhere (anchor included) always; unless
 * pol->compat, below the anchor: serial numbers, AKI/SKI presence,
 * critical basicConstraints in CAs, keyCertSign only in CAs, a critical SAN
 * with an empty subject.
 * Returns REASON_OK, or the reason with |f| filled. */
enum verdict_reason rfc5280_check_path(struct pathval_failure *f,
                                       const struct conformance_policy *pol,
                                       const STACK_OF(X509) *chain);

/* ---- name_constraints.c ---- */

/* nc_is_own_form: certval checks this GEN_* form itself (DNS, e-mail, IP). */
bool nc_is_own_form(int type);

/* nc_check_name applies the subtrees of |nc| to |name| when it is one of
 * certval's own forms (RFC 5280 4.2.1.10): NULL when it passes, else why
 * not ("excluded subtree violation", ...). Total on any input: the fuzz
 * target fuzz_name_constraints drives it. */
const char *nc_check_name(const NAME_CONSTRAINTS *nc, const GENERAL_NAME *name);

/* nc_after_first_ip_only_own_forms: every SAN of |x| from its first IP
 * address on is a DNS, e-mail or IP name. BoringSSL stops at the first IP
 * SAN under an iPAddress constraint; its error may be excused only then. */
bool nc_after_first_ip_only_own_forms(X509 *x);

/* nc_check_path applies every CA's nameConstraints in |chain| to the DNS,
 * e-mail and IP SANs of the certificates below it (self-issued CAs
 * exempt). Returns REASON_OK or REASON_NAME_CONSTRAINTS with |f|. */
enum verdict_reason nc_check_path(struct pathval_failure *f, const STACK_OF(X509) *chain);

/* ---- hostname.c ---- */

/* hostname_is_public_suffix: |domain| (|len| bytes, no trailing dot) is a
 * public suffix by Debian's public suffix list, or a single label. Without
 * the list installed only single labels are. Thread-safe. */
bool hostname_is_public_suffix(const char *domain, size_t len);

/* hostname_check_wildcards: NULL when a dNSName SAN of |leaf| matches
 * |host| exactly (case-insensitive) or as "*." + a domain that is not a
 * public suffix; else why not. Run after X509_check_host accepted. */
const char *hostname_check_wildcards(X509 *leaf, const char *host);

/* ---- profile.c: profile.h ---- */

#endif
