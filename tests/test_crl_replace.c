/* Tests for the operator's way back in cache/crl_cache: an older CRL
 * published with CRL_CACHE_ALLOW_OLDER, and crl_cache_replace_issuer
 * swapping an issuer's CRLs for those of a cache built aside. */
#include <criterion/criterion.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/mem.h>
#include <openssl/x509.h>

#include "crl_cache.h"
#include "rcu_reader.h"
#include "pki_gen.h"

#define T0 INT64_C(1795000000)
#define DAY 86400

struct ca {
    EVP_PKEY *key;
    X509 *cert;
    STACK_OF(X509) *issuers;
    char name[256];
};

static void ca_init(struct ca *ca, const char *cn)
{
    struct pki_cert_spec spec = {.cn = cn,
                                 .serial = 1,
                                 .not_before = T0 - 365 * DAY,
                                 .not_after = T0 + 365 * DAY,
                                 .is_ca = true,
                                 .path_len = -1,
                                 .key_usage = PKI_KU_KEY_CERT_SIGN | PKI_KU_CRL_SIGN};

    ca->key = pki_key_new(PKI_KEY_P256);
    cr_assert_not_null(ca->key);
    ca->cert = pki_issue(&spec, ca->key, NULL, ca->key);
    cr_assert_not_null(ca->cert);
    ca->issuers = sk_X509_new_null();
    cr_assert(sk_X509_push(ca->issuers, ca->cert));
    X509_NAME_oneline(X509_get_subject_name(ca->cert), ca->name, sizeof(ca->name));
}

static void ca_free(struct ca *ca)
{
    sk_X509_pop_free(ca->issuers, X509_free);
    EVP_PKEY_free(ca->key);
}

/* add_crl publishes a CRL of |ca| numbered |number| listing |serial| (0 =
 * nothing); returns crl_cache_add_der_flags' result. */
static int add_crl(struct crl_cache *c, struct ca *ca, uint64_t number, uint64_t serial,
                   unsigned flags)
{
    X509_CRL *crl = pki_crl_new(ca->cert, ca->key, &serial, serial != 0, T0 - DAY, T0 + 7 * DAY,
                                number);
    uint8_t *der = NULL;
    char err[256];
    int len, rc;

    cr_assert_not_null(crl);
    len = i2d_X509_CRL(crl, &der);
    cr_assert_gt(len, 0);
    rc = crl_cache_add_der_flags(c, der, (size_t)len, ca->issuers, "test", flags, err,
                                 sizeof(err));
    OPENSSL_free(der);
    X509_CRL_free(crl);
    return rc;
}

static enum crl_status status_of(const struct crl_cache *c, struct ca *ca, uint64_t serial)
{
    ASN1_INTEGER *s = ASN1_INTEGER_new();
    enum crl_status st;

    cr_assert(ASN1_INTEGER_set_uint64(s, serial));
    st = crl_cache_check(c, ca->cert, s, T0, 0, NULL);
    ASN1_INTEGER_free(s);
    return st;
}

static void reader_init(void)
{
    certval_rcu_reader_register();
}

TestSuite(crl_replace, .init = reader_init);

Test(crl_replace, allow_older_publishes_a_lower_number)
{
    struct crl_cache *c = crl_cache_new();
    struct ca ca;

    ca_init(&ca, "Replace Test CA");
    cr_assert_eq(add_crl(c, &ca, 10, 0x42, 0), 0);
    cr_assert_eq(status_of(c, &ca, 0x42), CRL_STATUS_REVOKED);
    cr_assert_eq(add_crl(c, &ca, 9, 0, 0), -1, "an older CRL must be refused by default");
    cr_assert_eq(status_of(c, &ca, 0x42), CRL_STATUS_REVOKED);
    cr_assert_eq(add_crl(c, &ca, 9, 0, CRL_CACHE_ALLOW_OLDER), 0);
    cr_assert_eq(status_of(c, &ca, 0x42), CRL_STATUS_GOOD);
    crl_cache_free(c);
    ca_free(&ca);
}

Test(crl_replace, replace_issuer_swaps_one_issuer_only)
{
    struct crl_cache *c = crl_cache_new(), *aside;
    struct ca a, b;
    size_t removed, added;
    uint64_t gen;
    char err[256];

    ca_init(&a, "Replace Test CA A");
    ca_init(&b, "Replace Test CA B");
    cr_assert_eq(add_crl(c, &a, 20, 0x42, 0), 0); /* the pushed CRL: revokes 0x42 */
    cr_assert_eq(add_crl(c, &b, 5, 0x7, 0), 0);
    aside = crl_cache_new_aside(c);
    cr_assert_not_null(aside);
    cr_assert_eq(add_crl(aside, &a, 3, 0x99, 0), 0); /* the file's CRL: revokes 0x99 */
    cr_assert_eq(add_crl(aside, &b, 4, 0, 0), 0);     /* B's must not be touched */
    gen = crl_cache_generation(c);

    cr_assert_eq(crl_cache_replace_issuer(c, aside, a.name, &removed, &added, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(removed, 1);
    cr_assert_eq(added, 1);
    cr_assert_gt(crl_cache_generation(c), gen);
    /* The moved snapshot answers lookups in its new cache (same hash key). */
    cr_assert_eq(status_of(c, &a, 0x99), CRL_STATUS_REVOKED);
    cr_assert_eq(status_of(c, &a, 0x42), CRL_STATUS_GOOD);
    cr_assert_eq(status_of(c, &b, 0x7), CRL_STATUS_REVOKED);
    cr_assert_eq(crl_cache_issuer_count(c), 2);
    /* |aside| gave A's CRL up and kept B's. */
    cr_assert_eq(status_of(aside, &a, 0x99), CRL_STATUS_NO_CRL);
    cr_assert_eq(status_of(aside, &b, 0x7), CRL_STATUS_GOOD);
    crl_cache_free(aside);

    /* A cache not made aside from |c| is refused: its serial hashes differ. */
    struct crl_cache *other = crl_cache_new();
    cr_assert_eq(add_crl(other, &a, 30, 0, 0), 0);
    cr_assert_eq(crl_cache_replace_issuer(c, other, a.name, &removed, &added, err, sizeof(err)),
                 -1);
    cr_assert_eq(status_of(c, &a, 0x99), CRL_STATUS_REVOKED);
    crl_cache_free(other);
    crl_cache_free(c);
    ca_free(&a);
    ca_free(&b);
}
