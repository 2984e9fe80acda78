/* Algorithm and key policy over a built path (docs/conformance.md, "Strict
 * rules"): which signature digests and which public keys a path may use.
 *
 * BoringSSL verifies SHA-1 (and MD5) RSA signatures and any key size it can
 * decode, so the policy is applied here, to the chain X509_verify_cert
 * built, before the path counts as valid (pathval.c). */
#include "validator_internal.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/nid.h>
#include <openssl/obj.h>

#define STRICT_MIN_RSA_BITS 2048 /* CA/B Baseline Requirements 6.1.5 */
#define LEGACY_MIN_RSA_BITS 1024

uint32_t algorithm_min_rsa_bits(const struct conformance_policy *pol)
{
    if (pol != NULL && pol->min_rsa_bits != 0)
        return pol->min_rsa_bits;
    return pol != NULL && pol->algorithms == ALGORITHMS_LEGACY ? LEGACY_MIN_RSA_BITS
                                                               : STRICT_MIN_RSA_BITS;
}

static bool legacy(const struct conformance_policy *pol)
{
    return pol != NULL && pol->algorithms == ALGORITHMS_LEGACY;
}

/* weak_digest names the digest of signature algorithm |sig_nid| when the
 * policy refuses it: MD2/MD4/MD5 always (collisions are practical, RFC
 * 6151), SHA-1 unless legacy (CA/B BR 7.1.3.2, RFC 9155). NULL = allowed.
 * Signature algorithms without a separate digest (RSASSA-PSS, whose
 * BoringSSL verifier takes only SHA-256/384/512, and Ed25519) pass. */
static const char *weak_digest(const struct conformance_policy *pol, int sig_nid)
{
    int md = NID_undef, pk = NID_undef;

    if (!OBJ_find_sigid_algs(sig_nid, &md, &pk))
        return NULL; /* unknown to BoringSSL: its verifier refuses it */
    switch (md) {
    case NID_md2:
    case NID_md4:
    case NID_md5:
    case NID_md5_sha1:
        return "MD5";
    case NID_sha1:
        return legacy(pol) ? NULL : "SHA-1";
    default:
        return NULL;
    }
}

const char *algorithm_check_signature(const struct conformance_policy *pol, int sig_nid, char *buf,
                                      size_t len)
{
    const char *d = weak_digest(pol, sig_nid);

    if (d == NULL)
        return NULL;
    snprintf(buf, len, "%s signature (%s)", d, OBJ_nid2sn(sig_nid));
    return buf;
}

/* check_rsa: RFC 8017 allows any modulus length, but a modulus that is not
 * a whole number of bytes is a sign of a broken key generator, and the
 * Baseline Requirements (6.1.5, 6.1.6) ask for a size divisible by 8. */
static const char *check_rsa(const struct conformance_policy *pol, const struct cert_algs *a,
                             char *buf, size_t len)
{
    unsigned bits = a->rsa_bits;

    if (!a->rsa_decoded)
        return NULL; /* undecodable: BoringSSL's signature check refuses it */
    if (bits % 8 != 0) {
        snprintf(buf, len, "RSA modulus of %u bits is not a whole number of bytes", bits);
        return buf;
    }
    if (bits < algorithm_min_rsa_bits(pol)) {
        snprintf(buf, len, "RSA key of %u bits, policy needs %u", bits,
                 algorithm_min_rsa_bits(pol));
        return buf;
    }
    return NULL;
}

/* check_ec: RFC 5480 2.1.1: the parameters MUST be a namedCurve in PKIX
 * (specifiedCurve is forbidden; BoringSSL would silently accept one that
 * matches a built-in curve). Curves: CA/B BR 6.1.5. */
static const char *check_ec(const struct conformance_policy *pol, const struct cert_algs *a,
                            char *buf, size_t len)
{
    int nid = a->ec_curve;

    if (!a->ec_params)
        return NULL;
    if (!a->ec_named) {
        snprintf(buf, len, "EC key with explicit curve parameters");
        return buf;
    }
    if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1 || nid == NID_secp521r1 || legacy(pol))
        return NULL;
    snprintf(buf, len, "EC key on curve %s, policy allows P-256, P-384, P-521",
             nid != NID_undef ? OBJ_nid2sn(nid) : "(unknown)");
    return buf;
}

/* check_key is algorithm_check_key on what cert_algs_read read. */
static const char *check_key(const struct conformance_policy *pol, const struct cert_algs *a,
                             char *buf, size_t len)
{
    if (!a->key_read)
        return NULL;
    switch (a->key_nid) {
    case NID_rsaEncryption:
        return check_rsa(pol, a, buf, len);
    case NID_X9_62_id_ecPublicKey:
        return check_ec(pol, a, buf, len);
    case NID_ED25519:
        return NULL;
    case NID_dsa:
        if (legacy(pol))
            return NULL;
        snprintf(buf, len, "DSA key (policy allows RSA and ECDSA)");
        return buf;
    default:
        if (legacy(pol))
            return NULL;
        snprintf(buf, len, "public key algorithm %s is not allowed", OBJ_nid2sn(a->key_nid));
        return buf;
    }
}

const char *algorithm_check_key(const struct conformance_policy *pol, X509 *x, char *buf,
                                size_t len)
{
    struct cert_algs a;

    cert_algs_read(&a, x);
    return check_key(pol, &a, buf, len);
}

enum verdict_reason algorithm_check_path(struct pathval_failure *f,
                                         const struct conformance_policy *pol,
                                         const STACK_OF(X509) * chain,
                                         const struct cert_memo_set *memos)
{
    size_t n = sk_X509_num(chain);
    char buf[128];

    for (size_t d = 0; d < n; d++) {
        X509 *x = sk_X509_value(chain, d);
        const struct cert_memo *m = cert_memo_find(memos, x);
        struct cert_algs own;
        const struct cert_algs *a = m != NULL && m->algs.complete ? &m->algs : &own;
        const char *why;

        if (a == &own)
            cert_algs_read(&own, x);
        why = check_key(pol, a, buf, sizeof(buf));
        /* The trust anchor's own signature is not part of the path (RFC
         * 5280 6.1.1 (d) takes only its name and key). */
        if (why == NULL && d + 1 < n)
            why = algorithm_check_signature(pol, a->sig_nid, buf, sizeof(buf));
        if (why != NULL)
            return pathval_failure_set(f, VERDICT_REASON_WEAK_ALGORITHM, chain, d, "%s", why);
    }
    return VERDICT_REASON_OK;
}
