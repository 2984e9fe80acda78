/* Private helpers shared by the files of validator/ (load.c, pathval.c,
 * profile.c, revocation.c, verdict_step.c, validator.c). Not part of the public API, and never included
 * from another folder (tests/test_private_headers.c). The path
 * verification layer the tests and benchmarks drive directly has its own
 * headers, pathval.h and name_constraints.h.
 *
 * Conventions: as validator.h: 0 or -1 (|out| denied, or a message),
 * enum verdict_reason for checks, bool for predicates. */
#ifndef CERTVAL_VALIDATOR_INTERNAL_H
#define CERTVAL_VALIDATOR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cert_read.h"
#include "name_constraints.h"
#include "pathval.h"
#include "profile.h"
#include "validator.h"
#include "verdict_step.h"

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

/* ---- revocation.c: the rules the full check and the verdict cache share ---- */

/* A profile's revocation rules, as both revocation checks apply them. */
struct revocation_policy {
    enum revocation_scope scope;
    uint32_t grace;             /* seconds a CRL is still used past its nextUpdate */
    enum stale_policy on_stale; /* what a CRL past nextUpdate + grace still says */
    const struct conformance_policy *conformance; /* CRL signature and cRLNumber rules; NULL = strict */
};

/* What crl_cache_check_id on one certificate's reference decides. */
enum revocation_ref_status {
    REVOCATION_REF_GOOD = 0,  /* not revoked */
    REVOCATION_REF_STALE_OK,  /* not revoked per a stale CRL |on_stale| tolerates */
    REVOCATION_REF_DENIED,    /* |out| is denied (REVOKED, REVOCATION_UNKNOWN or _STALE) */
    REVOCATION_REF_UNDECIDED, /* the reference cannot decide: run revocation_check_chain */
};

/* revocation_check_ref checks the certificate at |depth| of a validated
 * path (0 = the leaf, an end entity; above it CA certificates) by
 * reference: |issuer_id| (crl_cache_issuer_id of its issuer) and |serial|
 * (content octets), with |crls| at |now| under |p|. The verdict cache's
 * re-check of a hit, and the test of whether a full check's answer may be
 * cached (it may when this gives the same answer). UNDECIDED when the
 * issuer's CRLs need the certificate (partitions, a second key) or the
 * deciding CRL fails |p|'s conformance rules. Thread-safe; the caller must
 * be a registered RCU reader. */
enum revocation_ref_status revocation_check_ref(struct verdict *out, const struct crl_cache *crls,
                                                const uint8_t issuer_id[64],
                                                const uint8_t *serial, size_t serial_len,
                                                size_t depth, const struct revocation_policy *p,
                                                int64_t now);

/* revocation_check_chain_ids is revocation_check_chain under |p|, told
 * the issuer identity (crl_cache_issuer_id) of the certificates at depths
 * 0 to |n_ids| - 1 of |chain|: |issuer_ids|[d] is chain[d + 1]'s. The
 * service's full check passes the verdict cache's references, which hold
 * them already, so that no identity is computed twice per chain. */
int revocation_check_chain_ids(struct verdict *out, struct revocation_report *report,
                               const struct revocation_sources *src, const STACK_OF(X509) *chain,
                               const struct revocation_policy *p, int64_t now,
                               const STACK_OF(X509) *crl_issuer_candidates,
                               const uint8_t (*issuer_ids)[64],
                               size_t n_ids);

/* revocation_stale_warning writes the verdict detail that says a stale CRL
 * was tolerated for the certificate at |depth|. */
void revocation_stale_warning(char *buf, size_t len, size_t depth);

/* revocation_role names the certificate at |depth|: "leaf" or "intermediate". */
const char *revocation_role(size_t depth);

/* ---- verdict_step.c: the verdict-cache step of validator_check_chain ---- */

/* One call's state of the step, on the caller's stack. */
struct verdict_step {
    const struct revocation_sources *src; /* NULL = no sources */
    bool keyed; /* key computed: the chain may be stored after a full check */
    uint8_t key[32];
    struct verdict_step_refs refs; /* a hit's, then those of the validated path */
};

/* verdict_step_lookup initialises |st| and answers |out| from the verdict
 * cache of |src| if it can: true when |out| holds the cached verdict after
 * the deny-list and CRL re-check by reference. False, with |out| zeroed,
 * when there is no cache, no entry, or the references can no longer decide
 * (then |st| keeps the key for verdict_step_store). The caller checked the
 * claims (cv_claims_check) and sets out->id. */
bool verdict_step_lookup(struct verdict_step *st, const struct validator *v,
                         const struct revocation_sources *src, struct verdict *out,
                         const struct chain_input *in, int64_t now);

/* verdict_step_build_refs fills st->refs from the validated |chain| (every
 * certificate below the anchor), matched to profile number |profile|,
 * reading a configured issuer's identities from its memo in |memos| (may
 * be NULL). Returns 0, or -1 with |out| denied INTERNAL_ERROR. */
int verdict_step_build_refs(struct verdict_step *st, struct verdict *out,
                            const STACK_OF(X509) *chain, uint32_t profile,
                            const struct cert_memo_set *memos);

/* verdict_step_check_deny applies the emergency deny list of st->src to the
 * leaf of |out| and to every reference in st->refs. Returns 0, or -1 with
 * |out| denied REVOKED. */
int verdict_step_check_deny(const struct verdict_step *st, struct verdict *out, int64_t now);

/* verdict_step_store caches |out|, the verdict of a full check of the
 * chain looked up with |st|, when it is worth caching: its revocation
 * answer is reproducible by reference (|by_ref|) and its reason is one a
 * hit can stand by (OK and the policy DENYs). Served while every
 * certificate of |chain| is within its validity, widened by |clock_skew|. */
void verdict_step_store(const struct verdict_step *st, const struct verdict *out,
                        const STACK_OF(X509) *chain, uint32_t clock_skew, bool by_ref);

/* validator_profile_revocation returns the revocation rules of profile
 * number |profile| of |v|, or NULL when there is none (validator.c). */
const struct revocation_policy *validator_profile_revocation(const struct validator *v,
                                                            uint32_t profile);

/* ---- pathval_report.c ---- */

/* Where chain_verify (pathval.c) recorded a failure: this BoringSSL cannot
 * set a context's error depth or current certificate. */
struct pathval_where {
    int depth;
    X509 *cert;
};

/* pathval_record_failure fills |res| (valid false, reason, detail) from
 * the failed |ctx|; |at| overrides the context's error depth and
 * certificate (NULL: use the context's). |anchors| and |untrusted| are the
 * candidates, searched for the KEY_USAGE and NAME_CHAINING corrections. */
void pathval_record_failure(struct path_result *res, X509_STORE_CTX *ctx,
                            const struct pathval_where *at, const STACK_OF(X509) *anchors,
                            const STACK_OF(X509) *untrusted);

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
 * |chain| (leaf first, anchor last) and every signature below the anchor,
 * reading a configured certificate's algorithms from its memo in |memos|
 * (may be NULL). Returns VERDICT_REASON_OK, or
 * VERDICT_REASON_WEAK_ALGORITHM with |f| filled. */
enum verdict_reason algorithm_check_path(struct pathval_failure *f,
                                         const struct conformance_policy *pol,
                                         const STACK_OF(X509) *chain,
                                         const struct cert_memo_set *memos);

/* ---- rfc5280_rules.c ---- */

/* rfc5280_check_path applies the RFC 5280 structure rules to |chain|: an
 * unknown critical extension anywhere (anchor included) always; unless
 * pol->compat, below the anchor: serial numbers, AKI/SKI presence,
 * critical basicConstraints in CAs, keyCertSign only in CAs, a critical SAN
 * with an empty subject.
 * Returns VERDICT_REASON_OK, or the reason with |f| filled. */
enum verdict_reason rfc5280_check_path(struct pathval_failure *f,
                                       const struct conformance_policy *pol,
                                       const STACK_OF(X509) *chain);

/* ---- hostname.c ---- */

/* hostname_is_public_suffix: |domain| (|len| bytes, no trailing dot) is a
 * public suffix by Debian's public suffix list, or a single label. Without
 * the list installed only single labels are. Thread-safe. */
bool hostname_is_public_suffix(const char *domain, size_t len);

/* hostname_check_wildcards: NULL when a dNSName SAN of |leaf| matches
 * |host| exactly (case-insensitive) or as "*." + a domain that is not a
 * public suffix; else why not. Run after X509_check_host accepted. The
 * SANs are |exts|'s when it is not NULL (the leaf's, decoded already). */
const char *hostname_check_wildcards(X509 *leaf, const struct cert_exts *exts, const char *host);

/* ---- profile.c: profile.h ---- */

#endif
