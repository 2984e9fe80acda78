/* RFC 5280 structure rules BoringSSL's X509_verify_cert does not enforce,
 * applied to a built path (docs/conformance.md, "Strict rules"). Most are
 * MUSTs for the issuing CA that a verifier may tolerate; the profile's
 * `compat` switch tolerates them for old private PKIs. An unknown critical
 * extension is refused even under compat (RFC 5280 4.2: the certificate
 * MUST be rejected). */
#include "validator_internal.h"

#include <openssl/nid.h>
#include <openssl/x509v3.h>

#define MAX_SERIAL_OCTETS 20 /* RFC 5280 4.1.2.2 */

static bool compat(const struct conformance_policy *pol)
{
    return pol != NULL && pol->compat;
}

/* ext_state: -1 absent, 0 present and non-critical, 1 critical. */
static int ext_state(const X509 *x, int nid)
{
    int idx = X509_get_ext_by_NID(x, nid, -1);

    if (idx < 0)
        return -1;
    return X509_EXTENSION_get_critical(X509_get_ext(x, idx)) ? 1 : 0;
}

/* serial_problem: RFC 5280 4.1.2.2: a positive integer of at most 20
 * content octets. NULL when it is one. */
static const char *serial_problem(const X509 *x)
{
    const ASN1_INTEGER *s = X509_get0_serialNumber(x);
    const uint8_t *p = ASN1_STRING_get0_data(s);
    size_t len = (size_t)ASN1_STRING_length(s), octets;
    bool zero = true;

    if (ASN1_STRING_type(s) == V_ASN1_NEG_INTEGER)
        return "serial number is negative";
    for (size_t i = 0; i < len; i++)
        zero = zero && p[i] == 0;
    if (zero)
        return "serial number is zero";
    /* |p| is the magnitude; DER adds a 0x00 octet when its top bit is set. */
    octets = len + ((p[0] & 0x80) ? 1 : 0);
    if (octets > MAX_SERIAL_OCTETS)
        return "serial number is longer than 20 octets";
    return NULL;
}

/* key_id_problem: RFC 5280 4.2.1.1 and 4.2.1.2: AKI is present unless
 * the certificate is self-issued, SKI is present in every CA certificate.
 * (Both are never critical: BoringSSL already refuses a critical one as an
 * unhandled critical extension.) */
static const char *key_id_problem(const X509 *x, bool is_ca)
{
    int aki = ext_state(x, NID_authority_key_identifier);
    int ski = ext_state(x, NID_subject_key_identifier);
    bool self_issued = X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0;

    if (aki < 0 && !self_issued)
        return "authorityKeyIdentifier is missing";
    if (ski < 0 && is_ca)
        return "CA certificate without subjectKeyIdentifier";
    return NULL;
}

/* structure_problem: the compat-relaxable rules for one certificate below
 * the anchor, with the reason they give. */
static const char *structure_problem(const X509 *x, bool is_ca, enum verdict_reason *reason)
{
    const char *why;
    uint32_t flags = X509_get_extension_flags((X509 *)x);

    *reason = VERDICT_REASON_MALFORMED;
    if ((why = serial_problem(x)) != NULL ||
        (why = key_id_problem(x, is_ca || (flags & EXFLAG_CA))) != NULL)
        return why;
    /* RFC 5280 4.2.1.9: critical in a CA certificate. */
    if (is_ca && ext_state(x, NID_basic_constraints) != 1) {
        *reason = VERDICT_REASON_BASIC_CONSTRAINTS;
        return "CA certificate's basicConstraints is absent or not critical";
    }
    /* RFC 5280 4.2.1.3: keyCertSign only with cA TRUE. */
    if ((flags & EXFLAG_KUSAGE) && (X509_get_key_usage((X509 *)x) & KU_KEY_CERT_SIGN) &&
        !(flags & EXFLAG_CA)) {
        *reason = VERDICT_REASON_KEY_USAGE;
        return "keyUsage keyCertSign on a certificate that is not a CA";
    }
    /* RFC 5280 4.1.2.6 and 4.2.1.6: an empty subject puts the identity in
     * a critical subjectAltName. */
    if (X509_NAME_entry_count(X509_get_subject_name(x)) == 0 &&
        ext_state(x, NID_subject_alt_name) != 1)
        return "empty subject without a critical subjectAltName";
    return NULL;
}

enum verdict_reason rfc5280_check_path(struct pathval_failure *f,
                                       const struct conformance_policy *pol,
                                       const STACK_OF(X509) * chain)
{
    size_t n = sk_X509_num(chain);

    for (size_t d = 0; d < n; d++) {
        X509 *x = sk_X509_value(chain, d);
        enum verdict_reason reason;
        const char *why;

        /* RFC 5280 4.2, 6.1.4 (o): every certificate, the anchor too when
         * it is a certificate. BoringSSL checks only those it did not take
         * from the trust store. */
        if (X509_get_extension_flags(x) & EXFLAG_CRITICAL)
            return pathval_failure_set(f, VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION, chain, d,
                                       "unhandled critical extension");
        if (d + 1 == n || compat(pol))
            continue; /* the anchor's own structure is configuration */
        why = structure_problem(x, d > 0, &reason);
        if (why != NULL)
            return pathval_failure_set(f, reason, chain, d, "%s", why);
    }
    return VERDICT_REASON_OK;
}
