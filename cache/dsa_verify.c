/* DSA signature verification for certificates and CRLs (dsa_verify.h). */
#include "dsa_verify.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/dsa.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/sha.h>

/* Bound on how far up the path domain parameters are inherited. */
#define DSA_INHERIT_MAX 8

/* Domain parameters carried in |pub|'s algorithm, or NULL when absent. */
static DSA *dsa_params_of(X509_PUBKEY *pub)
{
    ASN1_OBJECT *obj = NULL;
    X509_ALGOR *alg = NULL;
    const void *pval = NULL;
    int ptype = V_ASN1_UNDEF;
    CBS cbs;

    if (!X509_PUBKEY_get0_param(&obj, NULL, NULL, &alg, pub) || OBJ_obj2nid(obj) != NID_dsa)
        return NULL;
    X509_ALGOR_get0(NULL, &ptype, &pval, alg);
    if (ptype != V_ASN1_SEQUENCE || pval == NULL)
        return NULL;
    CBS_init(&cbs, ASN1_STRING_get0_data(pval), (size_t)ASN1_STRING_length(pval));
    return DSA_parse_parameters(&cbs);
}

static bool is_dsa_key(const X509 *x)
{
    ASN1_OBJECT *obj = NULL;

    return X509_PUBKEY_get0_param(&obj, NULL, NULL, NULL, X509_get_X509_PUBKEY(x)) &&
           OBJ_obj2nid(obj) == NID_dsa;
}

/* The DSA public key of |issuer|. Its parameters are its own or, when it
 * omits them, those of the nearest DSA certificate above it in |above|
 * (RFC 3279 2.3.2: parameters are inherited from the issuing CA). */
static DSA *dsa_key_of(const X509 *issuer, const STACK_OF(X509) *above)
{
    X509_PUBKEY *pub = X509_get_X509_PUBKEY(issuer);
    const uint8_t *pk = NULL;
    int pklen = 0;
    DSA *dsa = NULL;
    BIGNUM *y = NULL;
    CBS cbs;

    if (!is_dsa_key(issuer) || !X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, pub))
        return NULL;
    dsa = dsa_params_of(pub);
    for (size_t i = 0; dsa == NULL && above != NULL && i < sk_X509_num(above) &&
                       i < DSA_INHERIT_MAX;
         i++) {
        const X509 *up = sk_X509_value(above, i);

        if (!is_dsa_key(up))
            break; /* inheritance stops at a non-DSA issuer */
        dsa = dsa_params_of(X509_get_X509_PUBKEY(up));
    }
    if (dsa == NULL)
        return NULL;
    /* subjectPublicKey holds DSAPublicKey ::= INTEGER (RFC 3279 2.3.2). */
    CBS_init(&cbs, pk, (size_t)pklen);
    y = BN_new();
    if (y == NULL || !BN_parse_asn1_unsigned(&cbs, y) || CBS_len(&cbs) != 0 ||
        !DSA_set0_key(dsa, y, NULL)) {
        BN_free(y);
        DSA_free(dsa);
        return NULL;
    }
    return dsa;
}

/* Verifies a DSA |sig| over |tbs| with the digest |nid| names. */
static bool dsa_check(int sig_nid, const uint8_t *tbs, size_t tbs_len, const uint8_t *sig,
                      size_t sig_len, DSA *dsa)
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    size_t dlen;
    int valid = 0;

    switch (sig_nid) {
    case NID_dsaWithSHA1:
    case NID_dsaWithSHA1_2:
        SHA1(tbs, tbs_len, digest);
        dlen = SHA_DIGEST_LENGTH;
        break;
    case NID_dsa_with_SHA256:
        SHA256(tbs, tbs_len, digest);
        dlen = SHA256_DIGEST_LENGTH;
        break;
    default:
        return false;
    }
    return DSA_check_signature(&valid, digest, dlen, sig, sig_len, dsa) && valid == 1;
}

bool dsa_verify_signed(const uint8_t *tbs, size_t tbs_len, int sig_nid, const uint8_t *sig,
                       size_t sig_len, const X509 *issuer, const STACK_OF(X509) *above)
{
    DSA *dsa = dsa_key_of(issuer, above);
    bool ok = dsa != NULL && dsa_check(sig_nid, tbs, tbs_len, sig, sig_len, dsa);

    DSA_free(dsa);
    return ok;
}

bool dsa_verify_cert(X509 *cert, const X509 *issuer, const STACK_OF(X509) *above)
{
    const ASN1_BIT_STRING *sig = NULL;
    const X509_ALGOR *outer = NULL;
    uint8_t *tbs = NULL;
    bool ok = false;
    int len;

    X509_get0_signature(&sig, &outer, cert);
    /* RFC 5280 4.1.1.2: the outer algorithm must equal the signed one. */
    if (sig == NULL || outer == NULL || X509_ALGOR_cmp(outer, X509_get0_tbs_sigalg(cert)) != 0 ||
        !is_dsa_key(issuer))
        return false;
    len = i2d_X509_tbs(cert, &tbs);
    if (len > 0)
        ok = dsa_verify_signed(tbs, (size_t)len, X509_get_signature_nid(cert),
                               ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig), issuer,
                               above);
    OPENSSL_free(tbs);
    return ok;
}

bool dsa_verify_crl(X509_CRL *crl, const X509 *issuer, const STACK_OF(X509) *above)
{
    const ASN1_BIT_STRING *sig = NULL;
    const X509_ALGOR *outer = NULL;
    uint8_t *tbs = NULL;
    bool ok = false;
    int len;

    X509_CRL_get0_signature(crl, &sig, &outer);
    if (sig == NULL || outer == NULL || !is_dsa_key(issuer))
        return false;
    len = i2d_X509_CRL_tbs(crl, &tbs);
    if (len > 0)
        ok = dsa_verify_signed(tbs, (size_t)len, X509_CRL_get_signature_nid(crl),
                               ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig), issuer,
                               above);
    OPENSSL_free(tbs);
    return ok;
}
