/* CRL signature verification for the CRL cache (crl_verify_internal.h):
 * the signature algorithms accepted, the issuer checks of RFC 5280 6.3.3
 * (f) and (g) that precede the signature, and the DSA fallback for keys
 * BoringSSL cannot verify. */
#include "crl_verify_internal.h"
#include "dsa_verify.h"

#include <stdint.h>
#include <stdio.h>

#include <openssl/bytestring.h>
#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj.h>
#include <openssl/x509v3.h>

#define ERRF(...) ((err) && (errlen) ? (void)snprintf((err), (errlen), __VA_ARGS__) : (void)0)


struct crl_sig_alg {
    uint8_t oid[9];
    uint8_t oid_len;
    int pkey_type;
    const EVP_MD *(*md)(void); /* NULL: the key hashes itself (Ed25519) */
};

static const struct crl_sig_alg crl_sig_algs[] = {
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}, 8, EVP_PKEY_EC, EVP_sha256},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}, 8, EVP_PKEY_EC, EVP_sha384},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04}, 8, EVP_PKEY_EC, EVP_sha512},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b}, 9, EVP_PKEY_RSA, EVP_sha256},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c}, 9, EVP_PKEY_RSA, EVP_sha384},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d}, 9, EVP_PKEY_RSA, EVP_sha512},
    {{0x2b, 0x65, 0x70}, 3, EVP_PKEY_ED25519, NULL},
};

/* find_sig_alg maps an AlgorithmIdentifier to a table entry; NULL for
 * algorithms verified by the X509_CRL fallback (RSA-PSS, ...). */
static const struct crl_sig_alg *find_sig_alg(CBS alg_element)
{
    static const uint8_t asn1_null[] = {0x05, 0x00};
    CBS alg, oid;

    if (!CBS_get_asn1(&alg_element, &alg, CBS_ASN1_SEQUENCE) ||
        !CBS_get_asn1(&alg, &oid, CBS_ASN1_OBJECT))
        return NULL;
    for (size_t i = 0; i < sizeof(crl_sig_algs) / sizeof(crl_sig_algs[0]); i++) {
        const struct crl_sig_alg *a = &crl_sig_algs[i];
        if (!CBS_mem_equal(&oid, a->oid, a->oid_len))
            continue;
        /* RFC 4055 / 5758 / 8410: RSA parameters are NULL (tolerate absent),
         * ECDSA and Ed25519 have none. */
        bool ok = CBS_len(&alg) == 0 ||
                  (a->pkey_type == EVP_PKEY_RSA && CBS_mem_equal(&alg, asn1_null, 2));
        return ok ? a : NULL;
    }
    return NULL;
}

static int verify_fallback(const struct crl_parsed *p, EVP_PKEY *key)
{
    const uint8_t *q = p->der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &q, (long)p->der_len);
    int ok = crl != NULL && X509_CRL_verify(crl, key) == 1;

    X509_CRL_free(crl);
    return ok ? 0 : -1;
}

static int verify_signature(const struct crl_parsed *p, EVP_PKEY *key)
{
    const struct crl_sig_alg *alg = find_sig_alg(p->sig_alg);
    EVP_MD_CTX ctx;
    int ok;

    if (alg == NULL)
        return verify_fallback(p, key);
    if (EVP_PKEY_id(key) != alg->pkey_type)
        return -1;
    EVP_MD_CTX_init(&ctx);
    ok = EVP_DigestVerifyInit(&ctx, NULL, alg->md ? alg->md() : NULL, NULL, key) &&
         EVP_DigestVerify(&ctx, CBS_data(&p->sig), CBS_len(&p->sig), CBS_data(&p->tbs),
                          CBS_len(&p->tbs));
    EVP_MD_CTX_cleanup(&ctx);
    return ok ? 0 : -1;
}

/* crl_verify checks that |issuer| issued the CRL (RFC 5280 6.3.3 (f)):
 * the names match, keyUsage allows cRLSign (4.2.1.3), and the signature
 * over the raw TBSCertList bytes verifies with the issuer's key. */
/* The certificates above |issuer| among |candidates|, nearest first, found
 * by name: where a DSA key that omits its parameters inherits them from. A
 * new stack borrowing the references (NULL when |candidates| is NULL). */
static STACK_OF(X509) *issuers_above(const X509 *issuer, const STACK_OF(X509) *candidates)
{
    STACK_OF(X509) *above = candidates != NULL ? sk_X509_new_null() : NULL;
    const X509 *cur = issuer;

    /* Bounded: a path of at most 8 CAs, and a self-issued CA ends it. */
    for (int depth = 0; above != NULL && depth < 8; depth++) {
        const X509 *up = NULL;

        if (X509_NAME_cmp(X509_get_issuer_name(cur), X509_get_subject_name(cur)) == 0)
            break;
        for (size_t i = 0; up == NULL && i < sk_X509_num(candidates); i++) {
            X509 *x = sk_X509_value(candidates, i);

            if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(cur)) == 0)
                up = x;
        }
        if (up == NULL || !sk_X509_push(above, (X509 *)up))
            break;
        cur = up;
    }
    return above;
}

/* A DSA-signed CRL: BoringSSL's EVP layer has no DSA verification
 * (cache/dsa_verify.h). */
static int verify_dsa(const struct crl_parsed *p, const X509 *issuer,
                      const STACK_OF(X509) *candidates)
{
    CBS alg = p->sig_alg, seq, oid;
    STACK_OF(X509) *above;
    int ok;

    if (!CBS_get_asn1(&alg, &seq, CBS_ASN1_SEQUENCE) || !CBS_get_asn1(&seq, &oid, CBS_ASN1_OBJECT))
        return -1;
    above = issuers_above(issuer, candidates);
    ok = dsa_verify_signed(CBS_data(&p->tbs), CBS_len(&p->tbs), OBJ_cbs2nid(&oid),
                           CBS_data(&p->sig), CBS_len(&p->sig), issuer, above);
    sk_X509_free(above);
    return ok ? 0 : -1;
}

int crl_verify(const struct crl_parsed *p, const X509_NAME *crl_name, X509 *issuer,
               const STACK_OF(X509) *candidates, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    int rc = -1;

    if (X509_NAME_cmp(crl_name, X509_get_subject_name(issuer)) != 0) {
        ERRF("CRL issuer name does not match the issuer certificate");
        goto err;
    }
    uint32_t ku = X509_get_key_usage(issuer);
    if (ku != UINT32_MAX && !(ku & KU_CRL_SIGN)) {
        ERRF("issuer certificate lacks the cRLSign key usage");
        goto err;
    }
    /* RFC 5280 5.1.1.2: signatureAlgorithm must equal TBSCertList.signature. */
    if (!CBS_mem_equal(&p->tbs_sig_alg, CBS_data(&p->sig_alg), CBS_len(&p->sig_alg))) {
        ERRF("CRL signature algorithm fields differ");
        goto err;
    }
    key = X509_get_pubkey(issuer);
    if ((key == NULL || verify_signature(p, key) != 0) && verify_dsa(p, issuer, candidates) != 0) {
        ERRF("CRL signature does not verify with the issuer key");
        goto err;
    }
    rc = 0;
err:
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rc;
}
