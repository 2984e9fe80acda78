/* Tests of validator/pki_gen.c and validator/demo_pki.c: what pki_issue and
 * pki_crl_new put into certificates and CRLs, the writers, and the demo PKI
 * (files, certval.yaml loading with config_load, chains that verify). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bytestring.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "pki_gen.h"
#include "support/clock.h"
#include "support/tmpdir.h"

static char t_dir[TS_TMPDIR_MAX];

static void t_mkdtemp(void)
{
    ts_tmpdir_make(t_dir, "pki");
}

static void t_rmtree(void)
{
    ts_tmpdir_remove(t_dir);
}

static int64_t t_time(const ASN1_TIME *t)
{
    int days = 0, secs = 0;
    ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);

    cr_assert(ASN1_TIME_diff(&days, &secs, epoch, t));
    ASN1_TIME_free(epoch);
    return (int64_t)days * TS_DAY + secs;
}

static bool t_ext_critical(X509 *x, int nid)
{
    int pos = X509_get_ext_by_NID(x, nid, -1);

    cr_assert_geq(pos, 0, "extension %d missing", nid);
    return X509_EXTENSION_get_critical(X509_get_ext(x, pos)) != 0;
}

static void t_name_eq(X509_NAME *name, int nid, const char *want)
{
    char buf[256];

    cr_assert_gt(X509_NAME_get_text_by_NID(name, nid, buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, want);
}

/* A CA and its key, shared by several tests. */
static EVP_PKEY *t_ca_key;
static X509 *t_ca;

static void t_make_ca(void)
{
    struct pki_cert_spec spec = {
        .cn = "Test CA",
        .o = "certval tests",
        .serial = 7,
        .not_before = TS_NOW - TS_DAY,
        .not_after = TS_NOW + 365 * TS_DAY,
        .is_ca = true,
        .path_len = 1,
        .key_usage = PKI_KU_KEY_CERT_SIGN | PKI_KU_CRL_SIGN,
    };

    t_ca_key = pki_key_new(PKI_KEY_P256);
    cr_assert_not_null(t_ca_key);
    t_ca = pki_issue(&spec, t_ca_key, NULL, t_ca_key);
    cr_assert_not_null(t_ca);
}

static void t_free_ca(void)
{
    X509_free(t_ca);
    EVP_PKEY_free(t_ca_key);
}

Test(pki_key, p256_and_rsa2048_have_their_type_and_size)
{
    EVP_PKEY *ec = pki_key_new(PKI_KEY_P256);
    EVP_PKEY *rsa = pki_key_new(PKI_KEY_RSA2048);

    cr_assert_not_null(ec);
    cr_assert_not_null(rsa);
    cr_expect_eq(EVP_PKEY_id(ec), EVP_PKEY_EC);
    cr_expect_eq(EVP_PKEY_bits(ec), 256);
    cr_expect_eq(EVP_PKEY_id(rsa), EVP_PKEY_RSA);
    cr_expect_eq(EVP_PKEY_bits(rsa), 2048);
    cr_expect_null(pki_key_new((enum pki_key_type)99));
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

Test(pki_issue, self_signed_ca_has_ca_extensions_and_verifies, .init = t_make_ca, .fini = t_free_ca)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(t_ca);
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(t_ca);
    uint64_t serial = 0;

    cr_assert_eq(X509_get_version(t_ca), X509_VERSION_3);
    cr_assert_eq(X509_verify(t_ca, t_ca_key), 1);
    cr_assert_eq(X509_NAME_cmp(X509_get_subject_name(t_ca), X509_get_issuer_name(t_ca)), 0);
    t_name_eq(X509_get_subject_name(t_ca), NID_commonName, "Test CA");
    t_name_eq(X509_get_subject_name(t_ca), NID_organizationName, "certval tests");
    cr_assert(ASN1_INTEGER_get_uint64(&serial, X509_get0_serialNumber(t_ca)));
    cr_assert_eq(serial, 7);
    cr_assert_eq(X509_check_ca(t_ca), 1);
    cr_assert_eq(X509_get_pathlen(t_ca), 1);
    cr_assert(t_ext_critical(t_ca, NID_basic_constraints));
    cr_assert(t_ext_critical(t_ca, NID_key_usage));
    cr_assert_eq(X509_get_key_usage(t_ca), (uint32_t)(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    cr_assert_eq(X509_get_ext_by_NID(t_ca, NID_ext_key_usage, -1), -1);
    cr_assert_not_null(ski);
    cr_assert_eq(ASN1_STRING_length(ski), 20); /* SHA-1 */
    cr_assert_not_null(aki);
    cr_assert_eq(ASN1_OCTET_STRING_cmp(ski, aki), 0);
    cr_assert_eq(t_time(X509_get0_notBefore(t_ca)), TS_NOW - TS_DAY);
    cr_assert_eq(t_time(X509_get0_notAfter(t_ca)), TS_NOW + 365 * TS_DAY);
}

static bool t_san_has(X509 *x, int type, const char *want)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool found = false;

    cr_assert_not_null(names);
    for (size_t i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        const ASN1_IA5STRING *s = gn->d.ia5;

        if (gn->type == type && (size_t)ASN1_STRING_length(s) == strlen(want) &&
            memcmp(ASN1_STRING_get0_data(s), want, strlen(want)) == 0)
            found = true;
    }
    GENERAL_NAMES_free(names);
    return found;
}

static X509 *t_issue_leaf(EVP_PKEY *key, uint64_t serial)
{
    static const char *const uris[] = {"urn:certval:tenant:acme", "urn:certval:device:dev-001"};
    static const char *const dns[] = {"dev-001.example"};
    struct pki_cert_spec spec = {
        .cn = "dev-001",
        .o = "acme",
        .ou = "devices",
        .uid = "u-1",
        .serial_number = "SN42",
        .serial = serial,
        .not_before = TS_NOW,
        .not_after = TS_NOW + 1826 * (int64_t)TS_DAY,
        .path_len = -1,
        .key_usage = PKI_KU_DIGITAL_SIGNATURE | PKI_KU_KEY_ENCIPHERMENT,
        .eku = "1.3.6.1.5.5.7.3.2,1.3.6.1.5.5.7.3.1",
        .san_uris = uris,
        .n_san_uris = 2,
        .san_dns = dns,
        .n_san_dns = 1,
        .crl_dp_uri = "http://crl.example/ca.crl",
    };

    return pki_issue(&spec, key, t_ca, t_ca_key);
}

Test(pki_issue, leaf_has_requested_extensions_and_verifies_under_issuer, .init = t_make_ca,
     .fini = t_free_ca)
{
    EVP_PKEY *key = pki_key_new(PKI_KEY_P256);
    X509 *leaf = t_issue_leaf(key, 0);
    CRL_DIST_POINTS *dps;

    cr_assert_not_null(leaf);
    cr_assert_eq(X509_verify(leaf, t_ca_key), 1);
    cr_assert_eq(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(t_ca)), 0);
    t_name_eq(X509_get_subject_name(leaf), NID_commonName, "dev-001");
    t_name_eq(X509_get_subject_name(leaf), NID_organizationalUnitName, "devices");
    t_name_eq(X509_get_subject_name(leaf), NID_userId, "u-1");
    t_name_eq(X509_get_subject_name(leaf), NID_serialNumber, "SN42");
    cr_assert_eq(X509_check_ca(leaf), 0);
    cr_assert_not(t_ext_critical(leaf, NID_basic_constraints));
    cr_assert(t_ext_critical(leaf, NID_key_usage));
    cr_assert_eq(X509_get_key_usage(leaf), (uint32_t)(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
    cr_assert_eq(X509_get_extended_key_usage(leaf), (uint32_t)(XKU_SSL_CLIENT | XKU_SSL_SERVER));
    cr_assert(t_san_has(leaf, GEN_URI, "urn:certval:tenant:acme"));
    cr_assert(t_san_has(leaf, GEN_URI, "urn:certval:device:dev-001"));
    cr_assert(t_san_has(leaf, GEN_DNS, "dev-001.example"));
    dps = X509_get_ext_d2i(leaf, NID_crl_distribution_points, NULL, NULL);
    cr_assert_not_null(dps);
    cr_assert_eq(sk_DIST_POINT_num(dps), 1);
    sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
    cr_assert_eq(
        ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf), X509_get0_subject_key_id(t_ca)), 0);
    X509_free(leaf);
    EVP_PKEY_free(key);
}

Test(pki_issue, random_serial_is_positive_16_bytes, .init = t_make_ca, .fini = t_free_ca)
{
    EVP_PKEY *key = pki_key_new(PKI_KEY_P256);
    X509 *a = t_issue_leaf(key, 0);
    X509 *b = t_issue_leaf(key, 0);
    const ASN1_INTEGER *sa = X509_get0_serialNumber(a);

    cr_assert_eq(ASN1_STRING_type(sa), V_ASN1_INTEGER); /* not V_ASN1_NEG_INTEGER */
    cr_assert_eq(ASN1_STRING_length(sa), 16);
    cr_assert_neq(ASN1_INTEGER_cmp(sa, X509_get0_serialNumber(b)), 0);
    X509_free(a);
    X509_free(b);
    EVP_PKEY_free(key);
}

Test(pki_issue, rsa_issuer_and_times_after_2049_work)
{
    EVP_PKEY *key = pki_key_new(PKI_KEY_RSA2048);
    struct pki_cert_spec spec = {
        .cn = "RSA root",
        .not_before = TS_NOW,
        .not_after = 2840140800, /* 2060-01-01: GeneralizedTime */
        .is_ca = true,
        .path_len = -1,
    };
    X509 *x = pki_issue(&spec, key, NULL, key);

    cr_assert_not_null(x);
    cr_assert_eq(X509_verify(x, key), 1);
    cr_assert_eq(X509_get_pathlen(x), -1);
    cr_assert_eq(ASN1_STRING_type(X509_get0_notAfter(x)), V_ASN1_GENERALIZEDTIME);
    cr_assert_eq(ASN1_STRING_type(X509_get0_notBefore(x)), V_ASN1_UTCTIME);
    cr_assert_eq(t_time(X509_get0_notAfter(x)), 2840140800);
    cr_assert_eq(X509_get_ext_by_NID(x, NID_key_usage, -1), -1); /* key_usage 0 = none */
    X509_free(x);
    EVP_PKEY_free(key);
}

Test(pki_issue, refuses_an_empty_subject)
{
    EVP_PKEY *key = pki_key_new(PKI_KEY_P256);
    struct pki_cert_spec spec = {
        .not_before = TS_NOW, .not_after = TS_NOW + TS_DAY, .path_len = -1};

    cr_assert_null(pki_issue(&spec, key, NULL, key));
    EVP_PKEY_free(key);
}

Test(pki_issue, refuses_self_signed_with_a_foreign_key)
{
    EVP_PKEY *key = pki_key_new(PKI_KEY_P256);
    EVP_PKEY *other = pki_key_new(PKI_KEY_P256);
    struct pki_cert_spec spec = {
        .cn = "x", .not_before = TS_NOW, .not_after = TS_NOW + TS_DAY, .path_len = -1};

    cr_assert_null(pki_issue(&spec, key, NULL, other));
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static uint64_t t_crl_number(X509_CRL *crl)
{
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    uint64_t v = 0;

    cr_assert_not_null(n);
    cr_assert(ASN1_INTEGER_get_uint64(&v, n));
    ASN1_INTEGER_free(n);
    return v;
}

Test(pki_crl, lists_serials_sorted_with_reason_and_verifies, .init = t_make_ca, .fini = t_free_ca)
{
    const uint64_t serials[] = {300, 5, 77};
    X509_CRL *crl = pki_crl_new(t_ca, t_ca_key, serials, 3, TS_NOW, TS_NOW + 7 * TS_DAY, 42);
    STACK_OF(X509_REVOKED) * revoked;
    uint64_t prev = 0;

    cr_assert_not_null(crl);
    cr_assert_eq(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    cr_assert_eq(X509_CRL_verify(crl, t_ca_key), 1);
    cr_assert_eq(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(t_ca)), 0);
    cr_assert_eq(t_time(X509_CRL_get0_lastUpdate(crl)), TS_NOW);
    cr_assert_eq(t_time(X509_CRL_get0_nextUpdate(crl)), TS_NOW + 7 * TS_DAY);
    cr_assert_eq(t_crl_number(crl), 42);
    revoked = X509_CRL_get_REVOKED(crl);
    cr_assert_eq(sk_X509_REVOKED_num(revoked), 3);
    for (size_t i = 0; i < 3; i++) {
        X509_REVOKED *r = sk_X509_REVOKED_value(revoked, i);
        ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
        uint64_t s = 0;

        cr_assert(ASN1_INTEGER_get_uint64(&s, X509_REVOKED_get0_serialNumber(r)));
        cr_assert_gt(s, prev, "entries are sorted by serial");
        prev = s;
        cr_assert_not_null(reason);
        cr_assert_eq(ASN1_ENUMERATED_get(reason), CRL_REASON_KEY_COMPROMISE);
        ASN1_ENUMERATED_free(reason);
    }
    X509_CRL_free(crl);
}

Test(pki_crl, lists_an_issued_leaf_and_can_be_empty, .init = t_make_ca, .fini = t_free_ca)
{
    EVP_PKEY *key = pki_key_new(PKI_KEY_P256);
    X509 *leaf = t_issue_leaf(key, 1234);
    const uint64_t serial = 1234;
    X509_CRL *crl = pki_crl_new(t_ca, t_ca_key, &serial, 1, TS_NOW, 0, 1);
    X509_CRL *empty = pki_crl_new(t_ca, t_ca_key, NULL, 0, TS_NOW, TS_NOW + TS_DAY, 2);
    X509_REVOKED *r = NULL;

    cr_assert_not_null(crl);
    cr_assert_null(X509_CRL_get0_nextUpdate(crl), "next_update 0 = no nextUpdate");
    cr_assert_eq(X509_CRL_get0_by_serial(crl, &r, X509_get_serialNumber(leaf)), 1);
    cr_assert_not_null(empty);
    cr_assert_eq(X509_CRL_verify(empty, t_ca_key), 1);
    cr_assert_eq(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(empty)), 0);
    cr_assert_eq(X509_CRL_get0_by_serial(empty, &r, X509_get_serialNumber(leaf)), 0);
    X509_CRL_free(crl);
    X509_CRL_free(empty);
    X509_free(leaf);
    EVP_PKEY_free(key);
}

/* ---- writers ---- */

static size_t t_count_pem_certs(const char *path)
{
    FILE *fp = fopen(path, "r");
    size_t n = 0;
    X509 *x;

    cr_assert_not_null(fp, "%s", path);
    while ((x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL) {
        n++;
        X509_free(x);
    }
    fclose(fp);
    return n;
}

static void t_setup_files(void)
{
    t_make_ca();
    t_mkdtemp();
}

static void t_teardown_files(void)
{
    t_free_ca();
    t_rmtree();
}

Test(pki_write, pem_append_der_key_and_crl_read_back, .init = t_setup_files,
     .fini = t_teardown_files)
{
    char pem[128], der[128], keyp[128], crlp[128], err[256];
    X509_CRL *crl = pki_crl_new(t_ca, t_ca_key, NULL, 0, TS_NOW, 0, 1);
    struct stat st;
    FILE *fp;
    X509 *x;
    X509_CRL *c;
    EVP_PKEY *k;

    snprintf(pem, sizeof(pem), "%s/ca.pem", t_dir);
    snprintf(der, sizeof(der), "%s/ca.der", t_dir);
    snprintf(keyp, sizeof(keyp), "%s/ca.key", t_dir);
    snprintf(crlp, sizeof(crlp), "%s/ca.crl", t_dir);
    cr_assert_eq(pki_write_cert_pem(pem, t_ca, false, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(pki_write_cert_pem(pem, t_ca, true, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(t_count_pem_certs(pem), 2);
    cr_assert_eq(pki_write_cert_pem(pem, t_ca, false, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(t_count_pem_certs(pem), 1, "append=false truncates");

    cr_assert_eq(pki_write_cert_der(der, t_ca, err, sizeof(err)), 0, "%s", err);
    fp = fopen(der, "rb");
    x = d2i_X509_fp(fp, NULL);
    fclose(fp);
    cr_assert_not_null(x);
    cr_assert_eq(X509_cmp(x, t_ca), 0);
    X509_free(x);

    cr_assert_eq(pki_write_key_pem(keyp, t_ca_key, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(stat(keyp, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    fp = fopen(keyp, "r");
    k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    cr_assert_not_null(k);
    cr_assert_eq(EVP_PKEY_cmp(k, t_ca_key), 1);
    EVP_PKEY_free(k);

    cr_assert_eq(pki_write_crl_der(crlp, crl, err, sizeof(err)), 0, "%s", err);
    fp = fopen(crlp, "rb");
    c = d2i_X509_CRL_fp(fp, NULL);
    fclose(fp);
    cr_assert_not_null(c);
    cr_assert_eq(X509_CRL_verify(c, t_ca_key), 1);
    X509_CRL_free(c);
    X509_CRL_free(crl);
}

Test(pki_write, reports_the_path_when_it_cannot_write, .init = t_make_ca, .fini = t_free_ca)
{
    char err[256] = "";

    cr_assert_eq(pki_write_cert_pem("/nonexistent-dir/x.pem", t_ca, false, err, sizeof(err)), -1);
    cr_assert(strstr(err, "/nonexistent-dir/x.pem") != NULL, "%s", err);
}

/* ---- demo PKI ---- */

static const char *const t_demo_files[] = {
    "tenant-ca.pem",
    "tenant-ca.key",
    "device-root.pem",
    "device-issuing-ca.pem",
    "rogue-ca.pem",
    "tenant-acme.pem",
    "tenant-acme-reissued.pem",
    "tenant-globex.pem",
    "tenant-acme-revoked.pem",
    "tenant-acme-expired.pem",
    "tenant-acme-too-long.pem",
    "device-acme-dev1.pem",
    "device-globex-dev2.pem",
    "device-acme-revoked.pem",
    "device-acme-expired.pem",
    "rogue-client.pem",
    "malformed.der",
    "tenant-acme-chain.pem",
    "tenant-acme.der",
    "device-acme-dev1-chain.pem",
    "device-acme-dev1.der",
    "tenant-ca.crl",
    "device-issuing-ca.crl",
    "device-root.crl",
    "certval.yaml",
    "README.txt",
};

static X509 *t_demo_cert(const char *name)
{
    char path[128];
    FILE *fp;
    X509 *x;

    snprintf(path, sizeof(path), "%s/%s", t_dir, name);
    fp = fopen(path, "r");
    cr_assert_not_null(fp, "%s", path);
    x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    cr_assert_not_null(x, "%s", path);
    return x;
}

static X509_CRL *t_demo_crl(const char *name)
{
    char path[128];
    FILE *fp;
    X509_CRL *c;

    snprintf(path, sizeof(path), "%s/%s", t_dir, name);
    fp = fopen(path, "rb");
    cr_assert_not_null(fp, "%s", path);
    c = d2i_X509_CRL_fp(fp, NULL);
    fclose(fp);
    cr_assert_not_null(c, "%s", path);
    return c;
}

static void t_demo_setup(void)
{
    char err[256];

    t_mkdtemp();
    cr_assert_eq(demo_pki_generate(t_dir, TS_NOW, "127.0.0.1:50051", err, sizeof(err)), 0, "%s",
                 err);
}

Test(demo_pki, writes_every_file, .init = t_demo_setup, .fini = t_rmtree)
{
    char path[128];
    struct stat st;

    for (size_t i = 0; i < sizeof(t_demo_files) / sizeof(t_demo_files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", t_dir, t_demo_files[i]);
        cr_expect_eq(stat(path, &st), 0, "missing %s", t_demo_files[i]);
        cr_expect_gt(st.st_size, 0, "empty %s", t_demo_files[i]);
    }
    snprintf(path, sizeof(path), "%s/tenant-ca.key", t_dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
}

Test(demo_pki, certval_yaml_loads_with_config_load, .init = t_demo_setup, .fini = t_rmtree)
{
    char path[128], err[512];
    struct certval_config *c = NULL;
    const struct validator_config *v;

    snprintf(path, sizeof(path), "%s/certval.yaml", t_dir);
    cr_assert_eq(config_load(&c, path, err, sizeof(err)), 0, "%s", err);
    v = &c->validator;
    cr_assert_eq(c->n_tcp, 1);
    cr_assert_str_eq(c->tcp[0], "127.0.0.1:50051");
    cr_assert_eq(c->drain_grace_seconds, 5);
    cr_assert_eq(v->n_anchor_files, 2);
    cr_assert_eq(v->n_intermediate_files, 1);
    cr_assert_eq(c->n_crl_files, 3);
    cr_assert_eq(v->n_profiles, 2);
    cr_assert_eq(v->profiles[0].kind, CERT_KIND_TENANT);
    cr_assert_eq(v->profiles[0].revocation, REVOCATION_LEAF);
    cr_assert_eq(v->profiles[1].kind, CERT_KIND_DEVICE);
    cr_assert_eq(v->profiles[1].device_id.type, ID_SOURCE_SAN_URI);
    cr_assert_eq(v->profiles[1].revocation, REVOCATION_ALL);
    cr_assert_eq(v->n_tenants, 2);
    cr_assert(v->tenants[0].device_certificate_skips_password);
    cr_assert_not(v->tenants[1].device_certificate_skips_password);
    cr_assert_not_null(strstr(v->anchor_files[0], "/tenant-ca.pem"));
    cr_assert_eq(v->anchor_files[0][0], '/', "resolved to an absolute path");
    config_free(c);
}

/* t_verify runs BoringSSL's own verifier at TS_NOW, so this test does not
 * depend on the validator under test elsewhere. */
static int t_verify(const char *anchor, const char *inter, const char *leaf_name, const char *crl1,
                    const char *crl2)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509 *leaf = t_demo_cert(leaf_name);
    X509 *a = t_demo_cert(anchor);
    X509_CRL *c1 = crl1 ? t_demo_crl(crl1) : NULL, *c2 = crl2 ? t_demo_crl(crl2) : NULL;
    int err;

    X509_STORE_add_cert(store, a);
    if (inter != NULL)
        sk_X509_push(untrusted, t_demo_cert(inter));
    if (c1 != NULL)
        X509_STORE_add_crl(store, c1);
    if (c2 != NULL)
        X509_STORE_add_crl(store, c2);
    if (c1 != NULL)
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | (c2 ? X509_V_FLAG_CRL_CHECK_ALL : 0));
    cr_assert(X509_STORE_CTX_init(ctx, store, leaf, untrusted));
    X509_STORE_CTX_set_time(ctx, 0, (time_t)TS_NOW);
    err = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_pop_free(untrusted, X509_free);
    X509_free(leaf);
    X509_free(a);
    X509_CRL_free(c1);
    X509_CRL_free(c2);
    return err;
}

Test(demo_pki, chains_verify_and_revoked_expired_rogue_fail, .init = t_demo_setup, .fini = t_rmtree)
{
    cr_expect_eq(t_verify("tenant-ca.pem", NULL, "tenant-acme.pem", "tenant-ca.crl", NULL),
                 X509_V_OK);
    cr_expect_eq(t_verify("tenant-ca.pem", NULL, "tenant-acme-reissued.pem", "tenant-ca.crl", NULL),
                 X509_V_OK);
    cr_expect_eq(t_verify("tenant-ca.pem", NULL, "tenant-acme-revoked.pem", "tenant-ca.crl", NULL),
                 X509_V_ERR_CERT_REVOKED);
    cr_expect_eq(t_verify("tenant-ca.pem", NULL, "tenant-acme-expired.pem", NULL, NULL),
                 X509_V_ERR_CERT_HAS_EXPIRED);
    cr_expect_eq(t_verify("device-root.pem", "device-issuing-ca.pem", "device-acme-dev1.pem",
                          "device-issuing-ca.crl", "device-root.crl"),
                 X509_V_OK);
    cr_expect_eq(t_verify("device-root.pem", "device-issuing-ca.pem", "device-acme-revoked.pem",
                          "device-issuing-ca.crl", "device-root.crl"),
                 X509_V_ERR_CERT_REVOKED);
    cr_expect_eq(
        t_verify("device-root.pem", "device-issuing-ca.pem", "device-acme-expired.pem", NULL, NULL),
        X509_V_ERR_CERT_HAS_EXPIRED);
    cr_expect_neq(t_verify("tenant-ca.pem", NULL, "rogue-client.pem", NULL, NULL), X509_V_OK);
}

static size_t t_count_pem_certs_in_dir(const char *name)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/%s", t_dir, name);
    return t_count_pem_certs(path);
}

Test(demo_pki, validity_and_identities_match_the_spec, .init = t_demo_setup, .fini = t_rmtree)
{
    X509 *acme = t_demo_cert("tenant-acme.pem");
    X509 *too_long = t_demo_cert("tenant-acme-too-long.pem");
    X509 *dev = t_demo_cert("device-acme-dev1.pem");

    cr_assert_eq(t_time(X509_get0_notBefore(acme)), TS_NOW - TS_DAY);
    cr_assert_eq(t_time(X509_get0_notAfter(acme)), TS_NOW - TS_DAY + 395 * (int64_t)TS_DAY);
    cr_assert_gt(t_time(X509_get0_notAfter(too_long)) - t_time(X509_get0_notBefore(too_long)),
                 396 * (int64_t)TS_DAY);
    cr_assert(t_san_has(acme, GEN_URI, "urn:certval:tenant:acme"));
    t_name_eq(X509_get_subject_name(acme), NID_organizationName, "acme");
    cr_assert_eq(X509_get_extended_key_usage(acme), (uint32_t)XKU_SSL_CLIENT);
    cr_assert(t_san_has(dev, GEN_URI, "urn:certval:device:dev-001"));
    cr_assert(t_san_has(dev, GEN_URI, "urn:certval:tenant:acme"));
    t_name_eq(X509_get_subject_name(dev), NID_commonName, "dev-001");
    cr_assert_leq(t_time(X509_get0_notAfter(dev)) - t_time(X509_get0_notBefore(dev)),
                  1827 * (int64_t)TS_DAY);
    cr_assert_eq(t_count_pem_certs_in_dir("device-acme-dev1-chain.pem"), 2);
    cr_assert_eq(t_count_pem_certs_in_dir("tenant-acme-chain.pem"), 1);
    X509_free(acme);
    X509_free(too_long);
    X509_free(dev);
}

Test(demo_pki, is_idempotent_and_refuses_a_bad_listen, .init = t_demo_setup, .fini = t_rmtree)
{
    char err[256] = "";

    char path[128];
    struct certval_config *c = NULL;

    cr_assert_eq(demo_pki_generate(t_dir, TS_NOW + 60, "[::1]:50051", err, sizeof(err)), 0, "%s",
                 err);
    snprintf(path, sizeof(path), "%s/certval.yaml", t_dir);
    cr_assert_eq(config_load(&c, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(c->tcp[0], "[::1]:50051", "the second run overwrote certval.yaml");
    config_free(c);
    cr_assert_eq(demo_pki_generate(t_dir, TS_NOW, "bad\"addr", err, sizeof(err)), -1);
    cr_assert(strstr(err, "listen") != NULL, "%s", err);
}
