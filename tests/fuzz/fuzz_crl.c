/* libFuzzer target: arbitrary bytes offered to the CRL cache as a CRL
 * (DER or PEM), with the PKITS certificates as candidate issuers so that
 * well-formed inputs reach signature checking and snapshot building, then a
 * lookup. The same bytes also go, unsigned, to the name parsers that a CRL
 * or certificate reaches only behind a signature: name_norm_hash (as a
 * Name) and crl_cache_parse_cdp (as cRLDistributionPoints, with the input
 * as the base of relative names). Any crash, leak or sanitizer report is a
 * bug: bad CRLs must be refused with a message. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/x509.h>

#include "crl_cache.h"
#include "name_norm.h"
#include "rcu_reader.h"
#include "validator.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static STACK_OF(X509) *issuers;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    DIR *d = opendir(CERTVAL_PKITS_DIR "/certs");
    struct dirent *e;
    char path[4096], err[256];

    (void)argc;
    (void)argv;
    issuers = sk_X509_new_null();
    certval_rcu_reader_register();
    while (d != NULL && (e = readdir(d)) != NULL) {
        STACK_OF(X509) *one = NULL;

        if (strstr(e->d_name, "CA") == NULL && strstr(e->d_name, "TrustAnchor") == NULL)
            continue; /* CRL issuers are CAs */
        snprintf(path, sizeof(path), "%s/certs/%s", CERTVAL_PKITS_DIR, e->d_name);
        if (cv_load_certs(&one, path, err, sizeof(err)) == 0) {
            while (sk_X509_num(one) > 0)
                sk_X509_push(issuers, sk_X509_shift(one));
            sk_X509_free(one);
        }
    }
    if (d != NULL)
        closedir(d);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct crl_cache *c = crl_cache_new();
    char err[512];
    uint8_t name_hash[NAME_NORM_HASH_LEN];
    struct crl_cert_dp dps[4];
    size_t n_dps = 0;
    bool more = false;

    (void)name_norm_hash(name_hash, data, size);
    (void)crl_cache_parse_cdp(dps, 4, &n_dps, &more, data, size, data, size);
    if (c == NULL)
        return 0;
    if (crl_cache_add_der(c, data, size, issuers, "fuzz", err, sizeof(err)) == 0 &&
        sk_X509_num(issuers) > 0) {
        ASN1_INTEGER *serial = ASN1_INTEGER_new();

        ASN1_INTEGER_set(serial, 1);
        for (size_t i = 0; i < sk_X509_num(issuers); i++)
            crl_cache_check(c, sk_X509_value(issuers, i), serial, 1302825600, 0, NULL);
        ASN1_INTEGER_free(serial);
    }
    crl_cache_free(c);
    return 0;
}
