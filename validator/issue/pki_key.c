/* Key generation for pki_gen.h: P-256/P-384/P-224, RSA, DSA (public use
 * only) and a public-only RSA key with an odd modulus size. */
#include "pki_gen.h"

#include <openssl/bn.h>
#include <openssl/dsa.h>
#include <openssl/ec_key.h>
#include <openssl/nid.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

static EVP_PKEY *pki_key_ec(int curve_nid)
{
    EVP_PKEY *pkey = NULL;
    EC_KEY *ec = EC_KEY_new_by_curve_name(curve_nid);

    if (ec == NULL || !EC_KEY_generate_key(ec))
        goto err;
    pkey = EVP_PKEY_new();
    if (pkey == NULL || !EVP_PKEY_assign_EC_KEY(pkey, ec))
        goto err;
    return pkey;
err:
    EVP_PKEY_free(pkey);
    EC_KEY_free(ec);
    return NULL;
}

static EVP_PKEY *pki_key_rsa(int bits)
{
    EVP_PKEY *pkey = NULL;
    RSA *rsa = RSA_new();
    BIGNUM *e = BN_new();

    if (rsa == NULL || e == NULL || !BN_set_word(e, RSA_F4) ||
        !RSA_generate_key_ex(rsa, bits, e, NULL))
        goto err;
    pkey = EVP_PKEY_new();
    if (pkey == NULL || !EVP_PKEY_assign_RSA(pkey, rsa))
        goto err;
    BN_free(e);
    return pkey;
err:
    EVP_PKEY_free(pkey);
    RSA_free(rsa);
    BN_free(e);
    return NULL;
}

/* pki_key_rsa_public_odd: a public RSA key whose modulus is a random odd
 * 2047-bit number. Nobody can sign with it; it only has to be a key that
 * parses, for the "whole number of bytes" rule. */
static EVP_PKEY *pki_key_rsa_public_odd(void)
{
    EVP_PKEY *pkey = EVP_PKEY_new();
    RSA *rsa = RSA_new();
    BIGNUM *n = BN_new(), *e = BN_new();

    if (pkey == NULL || rsa == NULL || n == NULL || e == NULL || !BN_set_word(e, RSA_F4) ||
        !BN_rand(n, 2047, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD) || !RSA_set0_key(rsa, n, e, NULL))
        goto err;
    n = e = NULL; /* owned by |rsa| */
    if (!EVP_PKEY_assign_RSA(pkey, rsa))
        goto err;
    return pkey;
err:
    BN_free(n);
    BN_free(e);
    RSA_free(rsa);
    EVP_PKEY_free(pkey);
    return NULL;
}

static EVP_PKEY *pki_key_dsa1024(void)
{
    EVP_PKEY *pkey = EVP_PKEY_new();
    DSA *dsa = DSA_new();

    if (pkey == NULL || dsa == NULL ||
        !DSA_generate_parameters_ex(dsa, 1024, NULL, 0, NULL, NULL, NULL) ||
        !DSA_generate_key(dsa) || !EVP_PKEY_assign_DSA(pkey, dsa)) {
        DSA_free(dsa);
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

EVP_PKEY *pki_key_new(enum pki_key_type type)
{
    switch (type) {
    case PKI_KEY_P256:
        return pki_key_ec(NID_X9_62_prime256v1);
    case PKI_KEY_RSA2048:
        return pki_key_rsa(2048);
    case PKI_KEY_P384:
        return pki_key_ec(NID_secp384r1);
    case PKI_KEY_RSA1024:
        return pki_key_rsa(1024);
    case PKI_KEY_P224:
        return pki_key_ec(NID_secp224r1);
    case PKI_KEY_DSA1024:
        return pki_key_dsa1024();
    case PKI_KEY_RSA2047_PUBLIC:
        return pki_key_rsa_public_odd();
    }
    return NULL;
}
