/* Algorithm and key policy over a built path (docs/conformance.md, "Strict
 * rules"): which signature digests and which public keys a path may use.
 *
 * BoringSSL verifies SHA-1 (and MD5) RSA signatures and any key size it can
 * decode, so the policy is applied here, to the chain X509_verify_cert
 * built, before the path counts as valid (pathval.c). */
#include "validator_internal.h"

#include <stdio.h>
#include <string.h>

#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/rsa.h>

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
static const char *check_rsa(const struct conformance_policy *pol, EVP_PKEY *k, char *buf,
                             size_t len)
{
    const RSA *rsa = k != NULL ? EVP_PKEY_get0_RSA(k) : NULL;
    unsigned bits = rsa != NULL ? RSA_bits(rsa) : 0;

    if (rsa == NULL)
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
static const char *check_ec(const struct conformance_policy *pol, X509_PUBKEY *pub, char *buf,
                            size_t len)
{
    const void *pval = NULL;
    int ptype = V_ASN1_UNDEF, nid;
    X509_ALGOR *alg = NULL;

    if (!X509_PUBKEY_get0_param(NULL, NULL, NULL, &alg, pub) || alg == NULL)
        return NULL;
    X509_ALGOR_get0(NULL, &ptype, &pval, alg);
    if (ptype != V_ASN1_OBJECT) {
        snprintf(buf, len, "EC key with explicit curve parameters");
        return buf;
    }
    nid = OBJ_obj2nid(pval);
    if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1 || nid == NID_secp521r1 || legacy(pol))
        return NULL;
    snprintf(buf, len, "EC key on curve %s, policy allows P-256, P-384, P-521",
             nid != NID_undef ? OBJ_nid2sn(nid) : "(unknown)");
    return buf;
}

const char *algorithm_check_key(const struct conformance_policy *pol, X509 *x, char *buf,
                                size_t len)
{
    X509_PUBKEY *pub = X509_get_X509_PUBKEY(x);
    ASN1_OBJECT *alg_oid = NULL;
    const char *why = NULL;
    EVP_PKEY *k;

    if (pub == NULL || !X509_PUBKEY_get0_param(&alg_oid, NULL, NULL, NULL, pub))
        return NULL;
    switch (OBJ_obj2nid(alg_oid)) {
    case NID_rsaEncryption:
        k = X509_get_pubkey(x);
        why = check_rsa(pol, k, buf, len);
        EVP_PKEY_free(k);
        break;
    case NID_X9_62_id_ecPublicKey:
        why = check_ec(pol, pub, buf, len);
        break;
    case NID_ED25519:
        break;
    case NID_dsa:
        if (!legacy(pol)) {
            snprintf(buf, len, "DSA key (policy allows RSA and ECDSA)");
            why = buf;
        }
        break;
    default:
        if (!legacy(pol)) {
            snprintf(buf, len, "public key algorithm %s is not allowed",
                     OBJ_nid2sn(OBJ_obj2nid(alg_oid)));
            why = buf;
        }
        break;
    }
    ERR_clear_error();
    return why;
}

enum verdict_reason algorithm_check_path(struct pathval_failure *f,
                                         const struct conformance_policy *pol,
                                         const STACK_OF(X509) * chain)
{
    size_t n = sk_X509_num(chain);
    char buf[128];

    for (size_t d = 0; d < n; d++) {
        X509 *x = sk_X509_value(chain, d);
        const char *why = algorithm_check_key(pol, x, buf, sizeof(buf));

        /* The trust anchor's own signature is not part of the path (RFC
         * 5280 6.1.1 (d) takes only its name and key). */
        if (why == NULL && d + 1 < n)
            why = algorithm_check_signature(pol, X509_get_signature_nid(x), buf, sizeof(buf));
        if (why != NULL)
            return pathval_failure_set(f, VERDICT_REASON_WEAK_ALGORITHM, chain, d, "%s", why);
    }
    return VERDICT_REASON_OK;
}
