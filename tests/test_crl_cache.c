/* Tests for cache/crl_cache: verification and refusals, statuses, serial
 * encodings, large CRLs, and readers racing a writer. Fixtures are built
 * here: CA certificates with BoringSSL's X509 API, CRLs either with the
 * X509_CRL API (the path callers use) or with cache/crl_gen (for contents
 * the X509_CRL API cannot express, and for size). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/bn.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crl_cache.h"
#include "crl_gen.h"
#include "name_norm.h"
#include "rcu_reader.h"

#define T0 INT64_C(1795000000) /* 2026-11-18, "now" of the fixtures */
#define DAY 86400

/* ---- fixtures ---------------------------------------------------------- */

static EVP_PKEY *p256_key(void)
{
    EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    EVP_PKEY *pkey = EVP_PKEY_new();

    cr_assert(ec && pkey && EC_KEY_generate_key(ec) && EVP_PKEY_assign_EC_KEY(pkey, ec));
    return pkey;
}

static void add_key_usage(X509 *x, unsigned bits)
{
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();

    for (int bit = 0; bit < 9; bit++)
        if (bits & (0x80u >> bit) || (bit == 8 && (bits & 0x8000u)))
            cr_assert(ASN1_BIT_STRING_set_bit(ku, bit, 1));
    cr_assert(X509_add1_ext_i2d(x, NID_key_usage, ku, 1, 0));
    ASN1_BIT_STRING_free(ku);
}

/* make_ca returns a self-signed CA named |cn| for |key|, re-parsed from DER
 * so that it is immutable like a certificate loaded from a file. |ku| is a
 * KU_* mask, 0 for no keyUsage extension. */
static X509 *make_ca(const char *cn, EVP_PKEY *key, unsigned ku)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    uint8_t *der = NULL;

    cr_assert(X509_set_version(x, X509_VERSION_3));
    cr_assert(ASN1_INTEGER_set(X509_get_serialNumber(x), 1));
    cr_assert(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const uint8_t *)cn, -1, -1, 0));
    cr_assert(X509_set_subject_name(x, name) && X509_set_issuer_name(x, name));
    cr_assert(ASN1_TIME_set(X509_getm_notBefore(x), T0 - 365 * DAY));
    cr_assert(ASN1_TIME_set(X509_getm_notAfter(x), T0 + 365 * DAY));
    cr_assert(X509_set_pubkey(x, key));
    if (ku)
        add_key_usage(x, ku);
    cr_assert(X509_sign(x, key, EVP_sha256()));
    int len = i2d_X509(x, &der);
    const uint8_t *p = der;
    X509 *parsed = d2i_X509(NULL, &p, len);
    cr_assert(parsed);
    OPENSSL_free(der);
    X509_NAME_free(name);
    X509_free(x);
    return parsed;
}

static EVP_PKEY *ca_key, *ca_key2;
static X509 *ca, *ca_rollover, *ca_other;

static void setup(void)
{
    ca_key = p256_key();
    ca_key2 = p256_key();
    ca = make_ca("certval test CA", ca_key, KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    ca_rollover = make_ca("certval test CA", ca_key2, KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    ca_other = make_ca("certval other CA", ca_key2, KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    certval_rcu_reader_register();
}

static void teardown(void)
{
    certval_rcu_reader_unregister();
    X509_free(ca);
    X509_free(ca_rollover);
    X509_free(ca_other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(ca_key2);
}

TestSuite(crl_cache, .init = setup, .fini = teardown);

static ASN1_INTEGER *serial_u64(uint64_t v)
{
    ASN1_INTEGER *a = ASN1_INTEGER_new();
    cr_assert(a && ASN1_INTEGER_set_uint64(a, v));
    return a;
}

static ASN1_INTEGER *serial_bytes(const uint8_t *content, size_t len)
{
    const uint8_t *p = content;
    ASN1_INTEGER *a = c2i_ASN1_INTEGER(NULL, &p, (long)len);
    cr_assert(a, "bad INTEGER content in the test");
    return a;
}

static enum crl_status check_u64(const struct crl_cache *c, const X509 *issuer, uint64_t serial,
                                 int64_t now, uint32_t grace, struct crl_check_info *info)
{
    ASN1_INTEGER *s = serial_u64(serial);
    enum crl_status st = crl_cache_check(c, issuer, s, now, grace, info);
    ASN1_INTEGER_free(s);
    return st;
}

/* A CRL built through BoringSSL's X509_CRL API, listing |serials| with
 * reason keyCompromise. */
static X509_CRL *api_crl(X509 *issuer, EVP_PKEY *key, const uint64_t *serials, size_t n,
                         uint64_t number)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_INTEGER *num = serial_u64(number);

    cr_assert(X509_CRL_set_version(crl, X509_CRL_VERSION_2));
    cr_assert(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)));
    cr_assert(ASN1_TIME_set(t, T0 - DAY) && X509_CRL_set1_lastUpdate(crl, t));
    cr_assert(ASN1_TIME_set(t, T0 + 7 * DAY) && X509_CRL_set1_nextUpdate(crl, t));
    for (size_t i = 0; i < n; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *s = serial_u64(serials[i]);
        ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();
        cr_assert(X509_REVOKED_set_serialNumber(r, s));
        cr_assert(ASN1_TIME_set(t, T0 - 2 * DAY) && X509_REVOKED_set_revocationDate(r, t));
        cr_assert(ASN1_ENUMERATED_set(reason, 1));
        cr_assert(X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0, 0));
        cr_assert(X509_CRL_add0_revoked(crl, r));
        ASN1_ENUMERATED_free(reason);
        ASN1_INTEGER_free(s);
    }
    cr_assert(X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0));
    cr_assert(X509_CRL_sort(crl));
    cr_assert(X509_CRL_sign(crl, key, EVP_sha256()));
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(t);
    return crl;
}

/* crl_gen entry callback over an array of u64 serials. */
struct u64_list {
    const uint64_t *v;
    int reason;
};

static void u64_entry(void *arg, size_t i, struct crl_gen_entry *e)
{
    const struct u64_list *l = arg;
    crl_gen_serial_u64(e, l->v[i]);
    e->revoked_at = T0 - 2 * DAY;
    e->reason = l->reason;
}

static struct crl_gen_spec gen_spec(X509 *issuer, EVP_PKEY *key, const uint64_t *serials, size_t n,
                                    struct u64_list *list)
{
    list->v = serials;
    list->reason = 1;
    struct crl_gen_spec s = {
        .issuer = issuer,
        .key = key,
        .this_update = T0 - DAY,
        .next_update = T0 + 7 * DAY,
        .has_crl_number = true,
        .crl_number = 1,
        .n_entries = n,
        .entry_at = u64_entry,
        .arg = list,
    };
    return s;
}

/* add_gen generates |spec|'s CRL and adds it with |issuer| in the stack. */
static int add_gen(struct crl_cache *c, const struct crl_gen_spec *spec, X509 *issuer, char *err,
                   size_t errlen)
{
    uint8_t *der = NULL;
    size_t len = 0;
    STACK_OF(X509) *issuers = sk_X509_new_null();

    cr_assert(crl_gen_der(spec, &der, &len) == 0);
    cr_assert(sk_X509_push(issuers, issuer));
    int rc = crl_cache_add_der(c, der, len, issuers, "test", err, errlen);
    sk_X509_free(issuers);
    OPENSSL_free(der);
    return rc;
}

/* ---- statuses ---------------------------------------------------------- */

Test(crl_cache, good_revoked_and_no_crl)
{
    static const uint64_t revoked[] = {1, 5, 1000};
    struct crl_cache *c = crl_cache_new();
    X509_CRL *crl = api_crl(ca, ca_key, revoked, 3, 7);
    struct crl_check_info info;
    char err[256] = "";

    cr_assert_eq(crl_cache_issuer_count(c), 0);
    cr_assert_eq(check_u64(c, ca, 5, T0, 0, &info), CRL_STATUS_NO_CRL);
    uint64_t gen0 = crl_cache_generation(c);
    cr_assert_eq(crl_cache_add_crl(c, crl, ca, "file:/x.crl", err, sizeof(err)), 0, "%s", err);
    cr_assert_gt(crl_cache_generation(c), gen0);
    cr_assert_eq(crl_cache_issuer_count(c), 1);

    cr_assert_eq(check_u64(c, ca, 5, T0, 0, &info), CRL_STATUS_REVOKED);
    cr_assert_eq(info.revocation_reason, 1);
    cr_assert_eq(info.revocation_date, T0 - 2 * DAY);
    cr_assert_eq(info.this_update, T0 - DAY);
    cr_assert_eq(info.next_update, T0 + 7 * DAY);
    cr_assert_eq(info.crl_number_low, 7);
    cr_assert_eq(check_u64(c, ca, 1000, T0, 0, NULL), CRL_STATUS_REVOKED);
    cr_assert_eq(check_u64(c, ca, 2, T0, 0, &info), CRL_STATUS_GOOD);
    cr_assert_eq(info.revocation_reason, -1);
    cr_assert_eq(check_u64(c, ca_other, 5, T0, 0, NULL), CRL_STATUS_NO_CRL);
    X509_CRL_free(crl);
    crl_cache_free(c);
}

Test(crl_cache, empty_crl_is_good)
{
    struct crl_cache *c = crl_cache_new();
    struct u64_list l;
    struct crl_gen_spec s = gen_spec(ca, ca_key, NULL, 0, &l);
    char err[256] = "";

    cr_assert_eq(add_gen(c, &s, ca, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(check_u64(c, ca, 1, T0, 0, NULL), CRL_STATUS_GOOD);
    crl_cache_free(c);
}

Test(crl_cache, same_name_other_key_is_no_crl)
{
    static const uint64_t revoked[] = {5};
    struct crl_cache *c = crl_cache_new();
    X509_CRL *crl = api_crl(ca, ca_key, revoked, 1, 1);
    char err[256] = "";

    cr_assert_eq(crl_cache_add_crl(c, crl, ca, "t", err, sizeof(err)), 0, "%s", err);
    /* Key rollover: same subject, new key; the old key's CRL says nothing. */
    cr_assert_eq(check_u64(c, ca_rollover, 5, T0, 0, NULL), CRL_STATUS_NO_CRL);
    /* And the new-key certificate cannot vouch for the old key's CRL. */
    cr_assert_eq(crl_cache_add_crl(c, crl, ca_rollover, "t", err, sizeof(err)), -1);
    cr_assert(strstr(err, "signature"), "%s", err);
    X509_CRL_free(crl);
    crl_cache_free(c);
}

Test(crl_cache, add_der_picks_the_verifying_issuer)
{
    static const uint64_t revoked[] = {9};
    struct crl_cache *c = crl_cache_new();
    struct u64_list l;
    struct crl_gen_spec s = gen_spec(ca, ca_key, revoked, 1, &l);
    STACK_OF(X509) *issuers = sk_X509_new_null();
    uint8_t *der = NULL;
    size_t len = 0;
    char err[256] = "";

    cr_assert(sk_X509_push(issuers, ca_other) && sk_X509_push(issuers, ca_rollover) &&
              sk_X509_push(issuers, ca));
    cr_assert_eq(crl_gen_der(&s, &der, &len), 0);
    cr_assert_eq(crl_cache_add_der(c, der, len, issuers, "t", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(check_u64(c, ca, 9, T0, 0, NULL), CRL_STATUS_REVOKED);
    cr_assert_eq(check_u64(c, ca_rollover, 9, T0, 0, NULL), CRL_STATUS_NO_CRL);
    /* Only a same-name issuer with the wrong key: refused. */
    sk_X509_zero(issuers);
    cr_assert(sk_X509_push(issuers, ca_rollover));
    cr_assert_eq(crl_cache_add_der(c, der, len, issuers, "t", err, sizeof(err)), -1);
    sk_X509_zero(issuers);
    cr_assert(sk_X509_push(issuers, ca_other));
    cr_assert_eq(crl_cache_add_der(c, der, len, issuers, "t", err, sizeof(err)), -1);
    cr_assert(strstr(err, "name"), "%s", err);
    sk_X509_free(issuers);
    OPENSSL_free(der);
    crl_cache_free(c);
}

Test(crl_cache, pem_input)
{
    static const uint64_t revoked[] = {42};
    struct crl_cache *c = crl_cache_new();
    X509_CRL *crl = api_crl(ca, ca_key, revoked, 1, 1);
    STACK_OF(X509) *issuers = sk_X509_new_null();
    BIO *bio = BIO_new(BIO_s_mem());
    const uint8_t *pem = NULL;
    size_t pem_len = 0;
    char err[256] = "";

    cr_assert(PEM_write_bio_X509_CRL(bio, crl) && BIO_mem_contents(bio, &pem, &pem_len));
    cr_assert(sk_X509_push(issuers, ca));
    cr_assert_eq(crl_cache_add_der(c, pem, pem_len, issuers, "t", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(check_u64(c, ca, 42, T0, 0, NULL), CRL_STATUS_REVOKED);
    BIO_free(bio);
    sk_X509_free(issuers);
    X509_CRL_free(crl);
    crl_cache_free(c);
}

/* ---- refusals ---------------------------------------------------------- */

Test(crl_cache, bad_signature_refused)
{
    static const uint64_t revoked[] = {5};
    struct crl_cache *c = crl_cache_new();
    struct u64_list l;
    struct crl_gen_spec s = gen_spec(ca, ca_key, revoked, 1, &l);
    char err[256] = "";

    s.corrupt_signature = true;
    cr_assert_eq(add_gen(c, &s, ca, err, sizeof(err)), -1);
    cr_assert(strstr(err, "signature"), "%s", err);
    /* Signed by another key under this CA's name. */
    s.corrupt_signature = false;
    s.key = ca_key2;
    cr_assert_eq(add_gen(c, &s, ca, err, sizeof(err)), -1);
    cr_assert_eq(check_u64(c, ca, 5, T0, 0, NULL), CRL_STATUS_NO_CRL);
    cr_assert_eq(crl_cache_generation(c), 0);
    crl_cache_free(c);
}

Test(crl_cache, issuer_key_usage)
{
    static const uint64_t revoked[] = {5};
    struct crl_cache *c = crl_cache_new();
    X509 *no_crl_sign = make_ca("certval test CA", ca_key, KU_KEY_CERT_SIGN);
    X509 *no_ku = make_ca("certval test CA", ca_key, 0);
    X509_CRL *crl = api_crl(ca, ca_key, revoked, 1, 1);
    char err[256] = "";

    cr_assert_eq(crl_cache_add_crl(c, crl, no_crl_sign, "t", err, sizeof(err)), -1);
    cr_assert(strstr(err, "cRLSign"), "%s", err);
    /* RFC 5280 4.2.1.3: without keyUsage every use is allowed. */
    cr_assert_eq(crl_cache_add_crl(c, crl, no_ku, "t", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(check_u64(c, no_ku, 5, T0, 0, NULL), CRL_STATUS_REVOKED);
    X509_CRL_free(crl);
    X509_free(no_crl_sign);
    X509_free(no_ku);
    crl_cache_free(c);
}

Test(crl_cache, crl_number_ordering)
{
    static const uint64_t a[] = {1}, b[] = {2};
    struct crl_cache *c = crl_cache_new();
    X509_CRL *v5 = api_crl(ca, ca_key, a, 1, 5);
    X509_CRL *v4 = api_crl(ca, ca_key, b, 1, 4);
    X509_CRL *v6 = api_crl(ca, ca_key, b, 1, 6);
    struct crl_check_info info;
    char err[256] = "";

    cr_assert_eq(crl_cache_add_crl(c, v5, ca, "t", err, sizeof(err)), 0, "%s", err);
    uint64_t gen = crl_cache_generation(c);
    cr_assert_eq(crl_cache_add_crl(c, v4, ca, "t", err, sizeof(err)), -1);
    cr_assert(strstr(err, "older CRL"), "%s", err);
    cr_assert_eq(crl_cache_generation(c), gen);
    cr_assert_eq(check_u64(c, ca, 1, T0, 0, &info), CRL_STATUS_REVOKED);
    cr_assert_eq(info.crl_number_low, 5);

    cr_assert_eq(crl_cache_add_crl(c, v6, ca, "t", err, sizeof(err)), 0, "%s", err);
    cr_assert_gt(crl_cache_generation(c), gen);
    cr_assert_eq(check_u64(c, ca, 1, T0, 0, &info), CRL_STATUS_GOOD);
    cr_assert_eq(info.crl_number_low, 6);
    cr_assert_eq(check_u64(c, ca, 2, T0, 0, NULL), CRL_STATUS_REVOKED);
    /* Reloading the same CRL is accepted; the issuer is still counted once. */
    cr_assert_eq(crl_cache_add_crl(c, v6, ca, "t", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(crl_cache_issuer_count(c), 1);
    X509_CRL_free(v4);
    X509_CRL_free(v5);
    X509_CRL_free(v6);
    crl_cache_free(c);
}

/* crl_gen entry callback: serial i + 1 with reasons[i]. */
static void reason_entry(void *arg, size_t i, struct crl_gen_entry *e)
{
    const int *reasons = arg;
    crl_gen_serial_u64(e, i + 1);
    e->revoked_at = T0 - 2 * DAY;
    e->reason = reasons[i];
}

/* Delta CRLs are kept beside the complete CRL (they used to be refused):
 * RFC 5280 5.2.4 / 6.3.3 (g)-(j), the delta's entries win, removeFromCRL
 * un-lists, a delta applies only to a complete CRL whose number reaches
 * its BaseCRLNumber, and a delta alone decides nothing. */
Test(crl_cache, delta_applies)
{
    struct crl_cache *c = crl_cache_new();
    static const int full_reasons[] = {1, 6};     /* 1 keyCompromise, 2 certificateHold */
    static const int delta_reasons[] = {-1, 8, 1}; /* 2 removeFromCRL, 3 keyCompromise */
    struct crl_gen_spec full = gen_spec(ca, ca_key, NULL, 2, &(struct u64_list){0});
    struct crl_gen_spec delta = full;
    struct crl_check_info info;
    char err[256] = "";

    full.entry_at = reason_entry;
    full.arg = (void *)full_reasons;
    full.crl_number = 5;
    delta.entry_at = reason_entry;
    delta.arg = (void *)delta_reasons;
    delta.n_entries = 3;
    delta.delta = true;
    delta.crl_number = 6;
    delta.delta_base = 5;
    /* Entry 1 of the delta is serial 1 without a reason: still revoked. */

    cr_assert_eq(add_gen(c, &delta, ca, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(check_u64(c, ca, 3, T0, 0, NULL), CRL_STATUS_UNUSABLE, "delta alone");
    cr_assert_eq(add_gen(c, &full, ca, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(crl_cache_issuer_count(c), 1);
    cr_expect_eq(check_u64(c, ca, 1, T0, 0, NULL), CRL_STATUS_REVOKED);
    cr_expect_eq(check_u64(c, ca, 2, T0, 0, NULL), CRL_STATUS_GOOD, "removeFromCRL in the delta");
    cr_expect_eq(check_u64(c, ca, 3, T0, 0, &info), CRL_STATUS_REVOKED, "listed in the delta only");
    cr_expect_eq(info.revocation_reason, 1);
    cr_expect_eq(info.crl_number_low, 6);
    cr_expect_eq(check_u64(c, ca, 4, T0, 0, NULL), CRL_STATUS_GOOD);
    crl_cache_free(c);

    /* A delta whose base is newer than the complete CRL does not apply. */
    c = crl_cache_new();
    delta.delta_base = 9;
    delta.crl_number = 10;
    cr_assert_eq(add_gen(c, &full, ca, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(add_gen(c, &delta, ca, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(check_u64(c, ca, 3, T0, 0, NULL), CRL_STATUS_GOOD);
    cr_expect_eq(check_u64(c, ca, 2, T0, 0, NULL), CRL_STATUS_REVOKED, "hold in the complete CRL");
    crl_cache_free(c);
}

/* crl_gen entry callback for an indirect CRL: serial 1 is the CRL issuer's,
 * serials 2 and 3 follow a certificateIssuer naming |arg|. */
static void indirect_entry(void *arg, size_t i, struct crl_gen_entry *e)
{
    crl_gen_serial_u64(e, i + 1);
    e->revoked_at = T0 - 2 * DAY;
    e->reason = 1;
    e->cert_issuer = i == 1;
    e->cert_issuer_name = arg;
}

/* RFC 5280 5.3.3: in an indirect CRL, entries after a certificateIssuer
 * extension are that issuer's; the first ones are the CRL issuer's. */
Test(crl_cache, indirect_entries)
{
    struct crl_cache *c = crl_cache_new();
    struct crl_gen_spec s = gen_spec(ca, ca_key, NULL, 3, &(struct u64_list){0});
    X509_NAME *other = X509_NAME_new();
    uint8_t ca_id[CRL_CACHE_ISSUER_ID_LEN], other_name[32], serial[1];
    const uint8_t *der = NULL;
    size_t der_len = 0;
    struct crl_cache_crl out[4];
    char err[256] = "";

    cr_assert(X509_NAME_add_entry_by_txt(other, "CN", MBSTRING_UTF8,
                                         (const uint8_t *)"Other Test CA", -1, -1, 0));
    cr_assert(X509_NAME_get0_der(other, &der, &der_len));
    name_norm_hash(other_name, der, der_len);
    s.indirect = true;
    s.entry_at = indirect_entry;
    s.arg = other;
    cr_assert_eq(add_gen(c, &s, ca, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(check_u64(c, ca, 1, T0, 0, NULL), CRL_STATUS_REVOKED, "the CRL issuer's entry");
    cr_expect_eq(check_u64(c, ca, 2, T0, 0, NULL), CRL_STATUS_GOOD, "another issuer's entry");
    cr_expect_eq(check_u64(c, ca, 3, T0, 0, NULL), CRL_STATUS_GOOD, "still the other issuer");
    cr_assert_eq(crl_cache_issuer_id(ca_id, ca), 0);
    for (uint8_t k = 1; k <= 3; k++) {
        serial[0] = k;
        cr_assert_eq(crl_cache_lookup_name(c, out, 4, ca_id, other_name, serial, 1), 1);
        cr_expect(out[0].indirect);
        cr_expect_eq(out[0].listed, k != 1, "serial %u for the other issuer", k);
        cr_assert_eq(crl_cache_lookup_name(c, out, 4, ca_id, ca_id, serial, 1), 1);
        cr_expect_eq(out[0].listed, k == 1, "serial %u for the CRL issuer", k);
    }
    X509_NAME_free(other);
    crl_cache_free(c);
}

/* Two partitions of one CA (different issuingDistributionPoint) are both
 * kept; crl_cache_check cannot judge them without the certificate
 * (needs_cert), crl_cache_lookup_name returns both. */
Test(crl_cache, partitions_kept)
{
    struct crl_cache *c = crl_cache_new();
    static const uint64_t listed[] = {7};
    struct u64_list l;
    struct crl_gen_spec user = gen_spec(ca, ca_key, listed, 1, &l), ind = user;
    uint8_t ca_id[CRL_CACHE_ISSUER_ID_LEN], serial[1] = {7};
    struct crl_cache_crl out[4];
    struct crl_check_info info;
    char err[256] = "";

    user.only_user_certs = true;
    ind.indirect = true;
    ind.crl_number = 1; /* same number, other partition: not "older" */
    cr_assert_eq(add_gen(c, &user, ca, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(add_gen(c, &ind, ca, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(crl_cache_issuer_count(c), 1);
    cr_expect_eq(check_u64(c, ca, 7, T0, 0, &info), CRL_STATUS_UNUSABLE);
    cr_expect(info.needs_cert);
    cr_assert_eq(crl_cache_issuer_id(ca_id, ca), 0);
    cr_assert_eq(crl_cache_lookup_name(c, out, 4, ca_id, ca_id, serial, 1), 2);
    cr_expect(out[0].listed && out[1].listed);
    cr_expect_neq(out[0].scope, out[1].scope);
    crl_cache_free(c);
}

/* Truncations, bit flips and junk: each refused with a message, none
 * crashes (run under ASan to make the last part of that claim strong). */
Test(crl_cache, garbage_refused)
{
    static const uint64_t revoked[] = {1, 2, 3};
    struct crl_cache *c = crl_cache_new();
    struct u64_list l;
    struct crl_gen_spec s = gen_spec(ca, ca_key, revoked, 3, &l);
    STACK_OF(X509) *issuers = sk_X509_new_null();
    uint8_t *der = NULL, junk[300];
    size_t len = 0;
    char err[256];

    cr_assert(sk_X509_push(issuers, ca));
    cr_assert_eq(crl_gen_der(&s, &der, &len), 0);
    for (size_t n = 0; n < len; n++) {
        err[0] = '\0';
        cr_assert_eq(crl_cache_add_der(c, der, n, issuers, "t", err, sizeof(err)), -1, "%zu", n);
        cr_assert_neq(err[0], '\0');
    }
    for (size_t i = 0; i < len; i++) { /* every single-byte corruption */
        der[i] ^= 0x41;
        cr_assert_eq(crl_cache_add_der(c, der, len, issuers, "t", err, sizeof(err)), -1, "%zu", i);
        der[i] ^= 0x41;
    }
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    cr_assert_eq(crl_cache_add_der(c, junk, sizeof(junk), issuers, "t", err, sizeof(err)), -1);
    static const char pem[] = "-----BEGIN X509 CRL-----\nnot base64!\n-----END X509 CRL-----\n";
    cr_assert_eq(
        crl_cache_add_der(c, (const uint8_t *)pem, sizeof(pem) - 1, issuers, "t", err, sizeof(err)),
        -1);
    cr_assert_eq(crl_cache_add_der(c, NULL, 0, issuers, "t", err, sizeof(err)), -1);
    cr_assert_eq(crl_cache_add_der(NULL, der, len, issuers, "t", err, sizeof(err)), -1);
    cr_assert_eq(crl_cache_add_crl(c, NULL, ca, "t", err, sizeof(err)), -1);
    cr_assert_eq(crl_cache_check(NULL, ca, NULL, T0, 0, NULL), CRL_STATUS_NO_CRL);
    cr_assert_eq(crl_cache_generation(c), 0);
    /* The intact CRL still goes in afterwards. */
    cr_assert_eq(crl_cache_add_der(c, der, len, issuers, "t", err, sizeof(err)), 0, "%s", err);
    sk_X509_free(issuers);
    OPENSSL_free(der);
    crl_cache_free(c);
}

/* ---- time ----------------------------------------------------------------- */

Test(crl_cache, stale_and_not_yet_valid)
{
    static const uint64_t revoked[] = {5};
    struct crl_cache *c = crl_cache_new();
    struct u64_list l;
    struct crl_gen_spec s = gen_spec(ca, ca_key, revoked, 1, &l);
    char err[256] = "";
    int64_t next = s.next_update;

    cr_assert_eq(add_gen(c, &s, ca, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(check_u64(c, ca, 6, next, 0, NULL), CRL_STATUS_GOOD);
    cr_assert_eq(check_u64(c, ca, 6, next + 1, 0, NULL), CRL_STATUS_STALE);
    cr_assert_eq(check_u64(c, ca, 6, next + 3600, 3600, NULL), CRL_STATUS_GOOD);
    cr_assert_eq(check_u64(c, ca, 6, next + 3601, 3600, NULL), CRL_STATUS_STALE);
    /* Revocation is final: a stale CRL still reports what it lists. */
    cr_assert_eq(check_u64(c, ca, 5, next + 100 * DAY, 0, NULL), CRL_STATUS_REVOKED);
    cr_assert_eq(check_u64(c, ca, 6, s.this_update - 1, 0, NULL), CRL_STATUS_UNUSABLE);
    crl_cache_free(c);
}

Test(crl_cache, no_next_update_never_stale)
{
    struct crl_cache *c = crl_cache_new();
    struct u64_list l;
    struct crl_gen_spec s = gen_spec(ca, ca_key, NULL, 0, &l);
    struct crl_check_info info;
    char err[256] = "";

    s.next_update = 0;
    s.has_crl_number = false; /* a v1-style CRL: ordered by thisUpdate */
    cr_assert_eq(add_gen(c, &s, ca, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(check_u64(c, ca, 6, T0 + 1000 * DAY, 0, &info), CRL_STATUS_GOOD);
    cr_assert_eq(info.next_update, 0);
    s.this_update -= 1;
    cr_assert_eq(add_gen(c, &s, ca, err, sizeof(err)), -1);
    cr_assert(strstr(err, "older"), "%s", err);
    crl_cache_free(c);
}

/* ---- extensions (RFC 5280 5.2, 5.3) -------------------------------------- */

static void entry_with_flags(void *arg, size_t i, struct crl_gen_entry *e)
{
    const int *mode = arg;
    crl_gen_serial_u64(e, i + 1);
    e->revoked_at = T0 - DAY;
    e->unknown_critical = *mode == 1 && i == 1;
    e->cert_issuer = *mode == 2 && i == 1;
}

ParameterizedTestParameters(crl_cache, extensions)
{
    /* what: 0 unknown critical CRL ext, 1 unknown critical entry ext,
     * 2 certificateIssuer entry ext, 3 IDP indirectCRL, 4 unknown
     * non-critical ext, 5 IDP onlyContainsUserCerts */
    static int cases[] = {0, 1, 2, 3, 4, 5};
    return cr_make_param_array(int, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(int *what, crl_cache, extensions)
{
    /* Case 3 (an indirect CRL whose entries are all the CRL issuer's) is
     * usable since indirect CRLs are supported (RFC 5280 5.2.5, 5.3.3);
     * case 2 (certificateIssuer in a CRL not marked indirect) is not. */
    static const enum crl_status want_unlisted[] = {CRL_STATUS_UNUSABLE, CRL_STATUS_UNUSABLE,
                                                    CRL_STATUS_UNUSABLE, CRL_STATUS_GOOD,
                                                    CRL_STATUS_GOOD,     CRL_STATUS_GOOD};
    struct crl_cache *c = crl_cache_new();
    int mode = *what;
    struct crl_gen_spec s = {
        .issuer = ca,
        .key = ca_key,
        .this_update = T0 - DAY,
        .next_update = T0 + DAY,
        .has_crl_number = true,
        .crl_number = 3,
        .n_entries = 3,
        .entry_at = entry_with_flags,
        .arg = &mode,
        .unknown_critical = mode == 0,
        .indirect = mode == 3,
        .unknown_noncritical = mode == 4,
        .only_user_certs = mode == 5,
    };
    struct crl_check_info info;
    char err[256] = "";

    /* Stored (so a later good CRL must have a higher number), but unusable. */
    cr_assert_eq(add_gen(c, &s, ca, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(check_u64(c, ca, 100, T0, 0, &info), want_unlisted[mode], "case %d", mode);
    enum crl_status listed =
        want_unlisted[mode] == CRL_STATUS_GOOD ? CRL_STATUS_REVOKED : CRL_STATUS_UNUSABLE;
    cr_assert_eq(check_u64(c, ca, 1, T0, 0, NULL), listed, "case %d", mode);
    cr_assert_eq(info.scope, mode == 5 ? CRL_SCOPE_ONLY_USER_CERTS : 0u);
    crl_cache_free(c);
}

/* ---- serial encodings ----------------------------------------------------- */

struct raw_list {
    const uint8_t (*serials)[22];
    const size_t *lens;
};

static void raw_entry(void *arg, size_t i, struct crl_gen_entry *e)
{
    const struct raw_list *l = arg;
    memcpy(e->serial, l->serials[i], l->lens[i]);
    e->serial_len = l->lens[i];
    e->revoked_at = T0 - DAY;
    e->reason = 4;
}

Test(crl_cache, serial_encodings)
{
    static const uint8_t serials[][22] = {
        {0x00, 0x80},       /* 128: leading zero keeps it positive */
        {0x00, 0x00, 0x05}, /* 5, non-minimal in the CRL (a lax CA) */
        {0xfb},             /* -5 */
        {0x00, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
         0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13}, /* 20 octets, top bit */
        {0x7f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
         0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13}, /* 20 octets */
        {0x00},                                                       /* 0 */
    };
    static const size_t lens[] = {2, 3, 1, 21, 20, 1};
    struct raw_list l = {serials, lens};
    struct crl_gen_spec s = {
        .issuer = ca,
        .key = ca_key,
        .this_update = T0 - DAY,
        .next_update = T0 + DAY,
        .n_entries = 6,
        .entry_at = raw_entry,
        .arg = &l,
    };
    struct crl_cache *c = crl_cache_new();
    char err[256] = "";

    cr_assert_eq(add_gen(c, &s, ca, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(check_u64(c, ca, 128, T0, 0, NULL), CRL_STATUS_REVOKED);
    cr_assert_eq(check_u64(c, ca, 0x80 << 8, T0, 0, NULL), CRL_STATUS_GOOD);
    cr_assert_eq(check_u64(c, ca, 5, T0, 0, NULL), CRL_STATUS_REVOKED);
    cr_assert_eq(check_u64(c, ca, 0, T0, 0, NULL), CRL_STATUS_REVOKED);
    cr_assert_eq(check_u64(c, ca, 0xfb, T0, 0, NULL), CRL_STATUS_GOOD); /* 251 is not -5 */
    ASN1_INTEGER *neg = ASN1_INTEGER_new();
    cr_assert(ASN1_INTEGER_set(neg, -5));
    cr_assert_eq(crl_cache_check(c, ca, neg, T0, 0, NULL), CRL_STATUS_REVOKED);
    ASN1_INTEGER_free(neg);
    for (size_t i = 3; i < 5; i++) {
        ASN1_INTEGER *big = serial_bytes(serials[i], lens[i]);
        struct crl_check_info info;
        cr_assert_eq(crl_cache_check(c, ca, big, T0, 0, &info), CRL_STATUS_REVOKED);
        cr_assert_eq(info.revocation_reason, 4);
        big->data[big->length - 1] ^= 1; /* one bit off: not listed */
        cr_assert_eq(crl_cache_check(c, ca, big, T0, 0, NULL), CRL_STATUS_GOOD);
        ASN1_INTEGER_free(big);
    }
    crl_cache_free(c);
}

/* ---- size ---------------------------------------------------------------- */

static uint64_t big_serial(size_t i)
{
    /* Spread over 64 bits, all distinct (odd multiplier is a bijection). */
    return (uint64_t)(i + 1) * UINT64_C(0x9e3779b97f4a7c15);
}

static void big_entry(void *arg, size_t i, struct crl_gen_entry *e)
{
    (void)arg;
    crl_gen_serial_u64(e, big_serial(i));
    e->revoked_at = T0 - (int64_t)i;
    e->reason = (int)(i % 7);
}

Test(crl_cache, hundred_thousand_entries, .timeout = 120)
{
    const size_t n = 100000;
    struct crl_gen_spec s = {
        .issuer = ca,
        .key = ca_key,
        .this_update = T0 - DAY,
        .next_update = T0 + DAY,
        .has_crl_number = true,
        .crl_number = 1,
        .n_entries = n,
        .entry_at = big_entry,
    };
    struct crl_cache *c = crl_cache_new();
    struct crl_check_info info;
    char err[256] = "";

    cr_assert_eq(add_gen(c, &s, ca, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(check_u64(c, ca, big_serial(i), T0, 0, &info), CRL_STATUS_REVOKED, "entry %zu",
                     i);
        cr_assert_eq(info.revocation_date, T0 - (int64_t)i);
        cr_assert_eq(info.revocation_reason, (int)(i % 7));
    }
    for (size_t i = n; i < 2 * n; i++)
        cr_assert_eq(check_u64(c, ca, big_serial(i), T0, 0, NULL), CRL_STATUS_GOOD, "entry %zu", i);
    crl_cache_free(c);
}

/* ---- readers racing a writer --------------------------------------------- */

/* CRL number k lists the even serials 0..62 when k is even and the odd ones
 * when k is odd, so any answer names the snapshot it came from. */
#define RACE_SERIALS 64
#define RACE_PUBLISHES 200
#define RACE_READERS 3

struct race {
    struct crl_cache *c;
    atomic_bool done;
    atomic_ulong bad_answers;
    atomic_ulong non_monotonic;
    atomic_ulong lookups;
};

static void parity_entry(void *arg, size_t i, struct crl_gen_entry *e)
{
    const uint64_t *number = arg;
    crl_gen_serial_u64(e, 2 * i + (*number & 1));
    e->revoked_at = T0 - DAY;
}

static void *race_reader(void *arg)
{
    struct race *r = arg;
    uint64_t last = 0, i = 0;
    ASN1_INTEGER *s[RACE_SERIALS];

    certval_rcu_reader_register();
    for (int k = 0; k < RACE_SERIALS; k++)
        s[k] = serial_u64((uint64_t)k);
    /* Bounded by the writer: it publishes RACE_PUBLISHES times, then sets done. */
    while (!atomic_load(&r->done)) {
        struct crl_check_info info;
        uint64_t k = i++ % RACE_SERIALS;
        enum crl_status st = crl_cache_check(r->c, ca, s[k], T0, 0, &info);
        bool want_revoked = (k & 1) == (info.crl_number_low & 1);
        if (st != (want_revoked ? CRL_STATUS_REVOKED : CRL_STATUS_GOOD))
            atomic_fetch_add(&r->bad_answers, 1);
        if (info.crl_number_low < last)
            atomic_fetch_add(&r->non_monotonic, 1);
        last = info.crl_number_low;
    }
    atomic_fetch_add(&r->lookups, i);
    for (int k = 0; k < RACE_SERIALS; k++)
        ASN1_INTEGER_free(s[k]);
    certval_rcu_reader_unregister();
    return NULL;
}

Test(crl_cache, readers_race_writer, .timeout = 300)
{
    struct race r = {.c = crl_cache_new()};
    pthread_t readers[RACE_READERS];
    uint64_t number = 1;
    struct crl_gen_spec s = {
        .issuer = ca,
        .key = ca_key,
        .this_update = T0 - DAY,
        .next_update = T0 + DAY,
        .has_crl_number = true,
        .n_entries = RACE_SERIALS / 2,
        .entry_at = parity_entry,
        .arg = &number,
    };
    char err[256] = "";
    int failed_adds = 0;

    s.crl_number = number;
    cr_assert_eq(add_gen(r.c, &s, ca, err, sizeof(err)), 0, "%s", err);
    for (int t = 0; t < RACE_READERS; t++)
        cr_assert_eq(pthread_create(&readers[t], NULL, race_reader, &r), 0);
    /* The writer runs on this thread, registered in setup(), as a server's
     * admin thread would be. */
    for (number = 2; number <= RACE_PUBLISHES; number++) {
        s.crl_number = number;
        if (add_gen(r.c, &s, ca, err, sizeof(err)) != 0)
            failed_adds++;
    }
    atomic_store(&r.done, true);
    for (int t = 0; t < RACE_READERS; t++)
        pthread_join(readers[t], NULL);
    cr_assert_eq(failed_adds, 0, "%s", err);
    cr_assert_eq(atomic_load(&r.bad_answers), 0);
    cr_assert_eq(atomic_load(&r.non_monotonic), 0);
    cr_assert_gt(atomic_load(&r.lookups), 0);
    cr_assert_eq(crl_cache_generation(r.c), RACE_PUBLISHES);
    crl_cache_free(r.c);
}

/* A writer thread that is not a registered reader must work too (it
 * registers itself around call_rcu). */
static void *unregistered_writer(void *arg)
{
    struct crl_cache *c = arg;
    uint64_t number = 1;
    struct crl_gen_spec s = {
        .issuer = ca,
        .key = ca_key,
        .this_update = T0 - DAY,
        .next_update = T0 + DAY,
        .has_crl_number = true,
        .n_entries = 4,
        .entry_at = parity_entry,
        .arg = &number,
    };
    char err[256];
    intptr_t failures = 0;

    for (number = 1; number <= 20; number++) {
        s.crl_number = number;
        failures += add_gen(c, &s, ca, err, sizeof(err)) != 0;
    }
    return (void *)failures;
}

Test(crl_cache, unregistered_writer_thread)
{
    struct crl_cache *c = crl_cache_new();
    pthread_t t;
    void *failures = NULL;

    cr_assert_eq(pthread_create(&t, NULL, unregistered_writer, c), 0);
    pthread_join(t, &failures);
    cr_assert_eq((intptr_t)failures, 0);
    cr_assert_eq(check_u64(c, ca, 0, T0, 0, NULL), CRL_STATUS_REVOKED); /* number 20: even */
    crl_cache_free(c);
}

/* Issuers are kept in a sorted index: add several in arbitrary order and
 * check that each answers from its own CRL. */
Test(crl_cache, many_issuers)
{
    enum { N = 7 };
    static const char *names[N] = {"CA g", "CA a", "CA e", "CA b", "CA f", "CA d", "CA c"};
    struct crl_cache *c = crl_cache_new();
    X509 *cas[N];
    char err[256] = "";

    for (int i = 0; i < N; i++) {
        uint64_t listed = (uint64_t)i + 100;
        struct u64_list l;
        struct crl_gen_spec s;
        cas[i] = make_ca(names[i], ca_key, 0);
        s = gen_spec(cas[i], ca_key, &listed, 1, &l);
        cr_assert_eq(add_gen(c, &s, cas[i], err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(crl_cache_issuer_count(c), (size_t)i + 1);
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            cr_assert_eq(check_u64(c, cas[i], (uint64_t)j + 100, T0, 0, NULL),
                         i == j ? CRL_STATUS_REVOKED : CRL_STATUS_GOOD, "CA %d serial %d", i, j);
    cr_assert_eq(crl_cache_generation(c), N);
    for (int i = 0; i < N; i++)
        X509_free(cas[i]);
    crl_cache_free(c);
}

/* crl_cache_add_crl on a CRL parsed from DER (serials deliberately not in
 * order): the re-encoded TBSCertList must be the signed one. */
Test(crl_cache, add_crl_of_parsed_crl)
{
    static const uint64_t revoked[] = {900, 3, 77, 12};
    struct crl_cache *c = crl_cache_new();
    struct u64_list l;
    struct crl_gen_spec s = gen_spec(ca, ca_key, revoked, 4, &l);
    uint8_t *der = NULL;
    size_t len = 0;
    char err[256] = "";

    cr_assert_eq(crl_gen_der(&s, &der, &len), 0);
    const uint8_t *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    cr_assert(crl);
    cr_assert_eq(crl_cache_add_crl(c, crl, ca, "t", err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(check_u64(c, ca, revoked[i], T0, 0, NULL), CRL_STATUS_REVOKED);
    X509_CRL_free(crl);
    OPENSSL_free(der);
    crl_cache_free(c);
}

static EVP_PKEY *rsa_key(void)
{
    RSA *rsa = RSA_new();
    BIGNUM *e = BN_new();
    EVP_PKEY *pkey = EVP_PKEY_new();

    cr_assert(rsa && e && pkey && BN_set_word(e, RSA_F4));
    cr_assert(RSA_generate_key_ex(rsa, 2048, e, NULL) && EVP_PKEY_assign_RSA(pkey, rsa));
    BN_free(e);
    return pkey;
}

/* RSA issuers: PKCS#1 v1.5 (verified over the raw TBS) and RSA-PSS (not in
 * the fast table: verified through the X509_CRL_verify fallback). */
Test(crl_cache, rsa_pkcs1_and_pss, .timeout = 60)
{
    static const uint64_t revoked[] = {31};
    EVP_PKEY *key = rsa_key();
    X509 *rsa_ca = make_ca("certval RSA CA", key, KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    struct crl_cache *c = crl_cache_new();
    struct u64_list l;
    struct crl_gen_spec s = gen_spec(rsa_ca, key, revoked, 1, &l);
    char err[256] = "";

    cr_assert_eq(add_gen(c, &s, rsa_ca, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(check_u64(c, rsa_ca, 31, T0, 0, NULL), CRL_STATUS_REVOKED);
    /* An RSA signature cannot pass for an ECDSA one: wrong key type. */
    s.crl_number = 2;
    s.key = ca_key;
    cr_assert_eq(add_gen(c, &s, rsa_ca, err, sizeof(err)), -1);

    X509_CRL *pss = api_crl(rsa_ca, key, revoked, 1, 3);
    EVP_MD_CTX ctx;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD_CTX_init(&ctx);
    cr_assert(EVP_DigestSignInit(&ctx, &pctx, EVP_sha256(), NULL, key));
    cr_assert(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING));
    cr_assert(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1));
    cr_assert(X509_CRL_sign_ctx(pss, &ctx));
    EVP_MD_CTX_cleanup(&ctx);
    cr_assert_eq(crl_cache_add_crl(c, pss, rsa_ca, "t", err, sizeof(err)), 0, "%s", err);
    struct crl_check_info info;
    cr_assert_eq(check_u64(c, rsa_ca, 31, T0, 0, &info), CRL_STATUS_REVOKED);
    cr_assert_eq(info.crl_number_low, 3);
    X509_CRL_free(pss);
    X509_free(rsa_ca);
    EVP_PKEY_free(key);
    crl_cache_free(c);
}
