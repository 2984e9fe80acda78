/* CRL issuance for pki_gen.h through BoringSSL's X509_CRL API (pki_crl_new).
 * crl_gen.c writes CRLs with CBB instead, for sizes and defects this API
 * cannot produce. */
#include "pki_gen.h"
#include "pki_gen_internal.h"

#include <openssl/asn1.h>
#include <openssl/digest.h>
#include <openssl/mem.h>
#include <openssl/x509v3.h>

static int pki_crl_add_revoked(X509_CRL *crl, uint64_t serial, const ASN1_TIME *when)
{
    X509_REVOKED *rev = X509_REVOKED_new();
    ASN1_INTEGER *ai = ASN1_INTEGER_new();
    ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();

    if (rev == NULL || ai == NULL || reason == NULL || !ASN1_INTEGER_set_uint64(ai, serial) ||
        !X509_REVOKED_set_serialNumber(rev, ai) || !X509_REVOKED_set_revocationDate(rev, when) ||
        !ASN1_ENUMERATED_set(reason, CRL_REASON_KEY_COMPROMISE) ||
        !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, X509V3_ADD_REPLACE))
        goto err;
    if (!X509_CRL_add0_revoked(crl, rev))
        goto err;
    ASN1_INTEGER_free(ai);
    ASN1_ENUMERATED_free(reason);
    return 1;
err:
    X509_REVOKED_free(rev);
    ASN1_INTEGER_free(ai);
    ASN1_ENUMERATED_free(reason);
    return 0;
}

static int pki_crl_set_times(X509_CRL *crl, int64_t this_update, int64_t next_update)
{
    ASN1_TIME *tu = pki_time_new(this_update);
    ASN1_TIME *nu = next_update != 0 ? pki_time_new(next_update) : NULL;
    int ok = 0;

    if (tu == NULL || (next_update != 0 && nu == NULL))
        goto err;
    if (!X509_CRL_set1_lastUpdate(crl, tu) || (nu != NULL && !X509_CRL_set1_nextUpdate(crl, nu)))
        goto err;
    ok = 1;
err:
    ASN1_TIME_free(tu);
    ASN1_TIME_free(nu);
    return ok;
}

static int pki_crl_add_number(X509_CRL *crl, uint64_t crl_number)
{
    ASN1_INTEGER *ai = ASN1_INTEGER_new();
    int ok = 0;

    if (ai != NULL && ASN1_INTEGER_set_uint64(ai, crl_number))
        ok = X509_CRL_add1_ext_i2d(crl, NID_crl_number, ai, 0, X509V3_ADD_REPLACE);
    ASN1_INTEGER_free(ai);
    return ok;
}

/* pki_reparse_crl is pki_reparse_cert for CRLs (issuing distribution
 * point, flags and hash are cached at parse time). */
static X509_CRL *pki_reparse_crl(X509_CRL *crl)
{
    uint8_t *der = NULL;
    const uint8_t *p;
    int len = i2d_X509_CRL(crl, &der);
    X509_CRL *out = NULL;

    if (len > 0) {
        p = der;
        out = d2i_X509_CRL(NULL, &p, len);
    }
    OPENSSL_free(der);
    X509_CRL_free(crl);
    return out;
}

X509_CRL *pki_crl_new(X509 *issuer, EVP_PKEY *issuer_key, const uint64_t *serials, size_t n_serials,
                      int64_t this_update, int64_t next_update, uint64_t crl_number)
{
    X509_CRL *crl = NULL;
    ASN1_TIME *when = NULL;

    if (issuer == NULL || issuer_key == NULL || (n_serials > 0 && serials == NULL))
        return NULL;
    crl = X509_CRL_new();
    when = pki_time_new(this_update);
    if (crl == NULL || when == NULL || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) ||
        !pki_crl_set_times(crl, this_update, next_update))
        goto err;
    for (size_t i = 0; i < n_serials; i++) {
        if (!pki_crl_add_revoked(crl, serials[i], when))
            goto err;
    }
    /* Sort by serial before signing, so the signed encoding is the sorted
     * one that readers binary-search. */
    if (!X509_CRL_sort(crl) || !pki_crl_add_number(crl, crl_number) ||
        !pki_add_aki(NULL, crl, issuer) || !X509_CRL_sign(crl, issuer_key, EVP_sha256()))
        goto err;
    ASN1_TIME_free(when);
    return pki_reparse_crl(crl);
err:
    ASN1_TIME_free(when);
    X509_CRL_free(crl);
    return NULL;
}
