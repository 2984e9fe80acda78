/* How a failed path is reported (pathval.c's failure side): the mapping of
 * BoringSSL's X509_V_ERR_* codes to enum verdict_reason, the detail that
 * names the failing certificate, its role and depth (never "depth -1"),
 * and the two corrections PKITS needs when the issuer is "not found"
 * (KEY_USAGE for an issuer without keyCertSign, NAME_CHAINING when the
 * signer is there but the names do not chain). Stateless: thread-safe. */
#include "validator_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "verdict.h"

static const char *depth_role(int depth, int chain_len, bool top_trusted)
{
    if (depth == 0)
        return "leaf";
    if (depth == chain_len - 1 && top_trusted)
        return "anchor";
    return "intermediate";
}

enum verdict_reason pathval_failure_set(struct pathval_failure *f, enum verdict_reason reason,
                                        const STACK_OF(X509) *chain, size_t depth,
                                        const char *fmt, ...)
{
    X509 *x = depth < sk_X509_num(chain) ? sk_X509_value(chain, depth) : NULL;
    char name[112] = "?";
    va_list ap;
    int n;

    if (x != NULL)
        X509_NAME_oneline(X509_get_subject_name(x), name, sizeof(name));
    f->reason = reason;
    f->depth = (int)depth;
    /* A chain X509_verify_cert accepted ends at an anchor. */
    n = snprintf(f->detail, sizeof(f->detail), "%s at depth %zu (%s): ",
                 depth_role((int)depth, (int)sk_X509_num(chain), true), depth, name);
    if (n < 0 || (size_t)n >= sizeof(f->detail))
        return reason;
    va_start(ap, fmt);
    vsnprintf(f->detail + n, sizeof(f->detail) - (size_t)n, fmt, ap);
    va_end(ap);
    return reason;
}

static bool is_crl_problem(int e)
{
    switch (e) {
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
    case X509_V_ERR_DIFFERENT_CRL_SCOPE:
    case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
        return true;
    default:
        return false;
    }
}

/* pathval_reason maps one X509_V_ERR_* code to the service's reason. |x| is
 * the certificate the error is about (may be NULL). */
static enum verdict_reason pathval_reason(int e, X509 *x)
{
    if (is_crl_problem(e))
        return VERDICT_REASON_REVOCATION_UNKNOWN; /* RFC 5280 6.3.3 (k): status undetermined */
    switch (e) {
    case X509_V_ERR_CRL_HAS_EXPIRED:
        return VERDICT_REASON_REVOCATION_STALE;
    case X509_V_ERR_CERT_REVOKED:
        return VERDICT_REASON_REVOKED;
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        return VERDICT_REASON_BAD_SIGNATURE;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return VERDICT_REASON_NOT_YET_VALID;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return VERDICT_REASON_EXPIRED;
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
    case X509_V_ERR_INVALID_EXTENSION:
        return VERDICT_REASON_MALFORMED;
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
        return VERDICT_REASON_PATH_TOO_LONG;
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
    case X509_V_ERR_INVALID_NON_CA:
        return VERDICT_REASON_BASIC_CONSTRAINTS;
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE:
        return VERDICT_REASON_KEY_USAGE;
    case X509_V_ERR_INVALID_PURPOSE:
        /* The purpose check tests EKU first, then keyUsage: blame EKU when
         * the certificate has one. */
        if (x != NULL && (X509_get_extension_flags(x) & EXFLAG_XKUSAGE))
            return VERDICT_REASON_EXTENDED_KEY_USAGE;
        return VERDICT_REASON_KEY_USAGE;
    case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
        return VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION;
    case X509_V_ERR_INVALID_POLICY_EXTENSION:
    case X509_V_ERR_NO_EXPLICIT_POLICY:
        return VERDICT_REASON_POLICY;
    case X509_V_ERR_PERMITTED_VIOLATION:
    case X509_V_ERR_EXCLUDED_VIOLATION:
    case X509_V_ERR_SUBTREE_MINMAX:
    case X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE:
    case X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX:
    case X509_V_ERR_UNSUPPORTED_NAME_SYNTAX:
    case X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS:
        return VERDICT_REASON_NAME_CONSTRAINTS;
    case X509_V_ERR_HOSTNAME_MISMATCH: /* the name the caller expects is not the leaf's */
    case X509_V_ERR_EMAIL_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return VERDICT_REASON_NAME_MISMATCH;
    case X509_V_ERR_SUBJECT_ISSUER_MISMATCH:
    case X509_V_ERR_AKID_SKID_MISMATCH:
    case X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH:
        return VERDICT_REASON_NAME_CHAINING;
    case X509_V_ERR_OUT_OF_MEM:
        return VERDICT_REASON_INTERNAL_ERROR;
    default:
        /* Issuer not found, self-signed leaf, untrusted root and anything
         * unforeseen: the path does not end at a trust anchor. */
        return VERDICT_REASON_UNTRUSTED_ISSUER;
    }
}

/* name_chaining_suspect: |x|'s issuer was not found, but some candidate's
 * subjectKeyIdentifier equals |x|'s authorityKeyIdentifier while its subject
 * differs from |x|'s issuer: the signer is there, the names do not chain
 * (RFC 5280 6.1.3 (a)(4)). */
static bool name_chaining_suspect(X509 *x, const STACK_OF(X509) *a, const STACK_OF(X509) *b)
{
    const ASN1_OCTET_STRING *akid = x != NULL ? X509_get0_authority_key_id(x) : NULL;
    const STACK_OF(X509) *sets[2] = {a, b};

    if (akid == NULL)
        return false;
    for (size_t s = 0; s < 2; s++) {
        for (size_t i = 0; sets[s] != NULL && i < sk_X509_num(sets[s]); i++) {
            X509 *c = sk_X509_value(sets[s], i);
            const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(c);
            if (skid != NULL && ASN1_OCTET_STRING_cmp(skid, akid) == 0 &&
                X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(x)) != 0)
                return true;
        }
    }
    return false;
}

/* issuer_lacks_certsign: |x|'s issuer was not found because the only
 * candidate that names it and whose key verifies |x|'s signature has a
 * keyUsage without keyCertSign (RFC 5280 6.1.4 (n)); BoringSSL's issuer
 * lookup skips such a certificate, which would read as "untrusted". */
static bool issuer_lacks_certsign(X509 *x, const STACK_OF(X509) *a, const STACK_OF(X509) *b)
{
    const STACK_OF(X509) *sets[2] = {a, b};

    if (x == NULL)
        return false;
    for (size_t s = 0; s < 2; s++) {
        for (size_t i = 0; sets[s] != NULL && i < sk_X509_num(sets[s]); i++) {
            X509 *c = sk_X509_value(sets[s], i);
            EVP_PKEY *k;
            bool signer;
            if (X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(x)) != 0 ||
                !(X509_get_extension_flags(c) & EXFLAG_KUSAGE) ||
                (X509_get_key_usage(c) & KU_KEY_CERT_SIGN))
                continue;
            k = X509_get_pubkey(c);
            signer = k != NULL && X509_verify(x, k) == 1;
            EVP_PKEY_free(k);
            if (signer)
                return true;
        }
    }
    ERR_clear_error();
    return false;
}

void pathval_record_failure(struct path_result *res, X509_STORE_CTX *ctx,
                            const struct pathval_where *at, const STACK_OF(X509) *anchors,
                            const STACK_OF(X509) *untrusted)
{
    int e = X509_STORE_CTX_get_error(ctx);
    int depth = at != NULL ? at->depth : X509_STORE_CTX_get_error_depth(ctx);
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    int n = chain != NULL ? (int)sk_X509_num(chain) : 0;
    X509 *x = at != NULL ? at->cert : X509_STORE_CTX_get_current_cert(ctx);
    char name[112] = "?", where[160];
    bool top_trusted = false;

    if (x == NULL && depth >= 0 && depth < n)
        x = sk_X509_value(chain, (size_t)depth);
    if (n > 0)
        top_trusted = sk_X509_find(anchors, NULL, sk_X509_value(chain, (size_t)n - 1));
    if (x != NULL)
        X509_NAME_oneline(X509_get_subject_name(x), name, sizeof(name));
    /* Errors about the path as a whole (no explicit policy, RFC 5280 6.1.5
     * (g)) have no certificate: BoringSSL leaves the depth of the last
     * certificate it looked at (or -1). Name the path, never "depth -1". */
    if (e == X509_V_ERR_NO_EXPLICIT_POLICY)
        depth = -1;
    if (depth >= 0)
        snprintf(where, sizeof(where), "%s at depth %d (%s)", depth_role(depth, n, top_trusted),
                 depth, name);
    else
        snprintf(where, sizeof(where), "path of %d certificates", n);
    res->valid = false;
    res->reason = pathval_reason(e, x);
    if (res->reason == VERDICT_REASON_UNTRUSTED_ISSUER &&
        (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
         e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT) &&
        issuer_lacks_certsign(x, anchors, untrusted)) {
        res->reason = VERDICT_REASON_KEY_USAGE;
        snprintf(res->detail, sizeof(res->detail), "%s: its issuer's keyUsage lacks keyCertSign",
                 where);
        return;
    }
    if (res->reason == VERDICT_REASON_UNTRUSTED_ISSUER &&
        (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
         e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT) &&
        name_chaining_suspect(x, anchors, untrusted))
        res->reason = VERDICT_REASON_NAME_CHAINING;
    snprintf(res->detail, sizeof(res->detail), "%s: %s%s", where, X509_verify_cert_error_string(e),
             res->reason == VERDICT_REASON_NAME_CHAINING ? " (issuer name does not chain)" : "");
}
