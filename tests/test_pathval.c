/* cv_load_certs / cv_load_crls and targeted path_validate cases (reason
 * mapping, detail wording, purpose, hostname, depth limit). The PKITS rows
 * are covered by test_pkits.c. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/mem.h>

#include "pki_gen.h"
#include "support/clock.h"
#include "support/pki_builders.h"
#include "support/tmpdir.h"
#include "validator.h"
#include "verdict.h"

#define PK CERTVAL_PKITS_DIR
#define PKITS_AT 1302825600
static char g_dir[TS_TMPDIR_MAX];

static void setup(void)
{
    ts_tmpdir_make(g_dir, "pathval");
}

static void teardown(void)
{
    ts_tmpdir_remove(g_dir);
}

TestSuite(pathval, .init = setup, .fini = teardown);

static STACK_OF(X509) *load(const char *path)
{
    STACK_OF(X509) *sk = NULL;
    char err[256];
    cr_assert_eq(cv_load_certs(&sk, path, err, sizeof(err)), 0, "%s", err);
    return sk;
}

Test(pathval, load_der_pem_bundle_and_garbage)
{
    char path[128], err[256];
    STACK_OF(X509) *der = load(PK "/certs/GoodCACert.crt");
    STACK_OF(X509) *sk = NULL;
    STACK_OF(X509_CRL) *crls = NULL;
    cr_expect_eq(sk_X509_num(der), 1);

    /* A PEM bundle of three certificates, with text between them. */
    snprintf(path, sizeof(path), "%s/bundle.pem", g_dir);
    cr_assert_eq(pki_write_cert_pem(path, sk_X509_value(der, 0), false, err, sizeof(err)), 0);
    FILE *f = fopen(path, "a");
    fputs("comment between blocks\n", f);
    fclose(f);
    cr_assert_eq(pki_write_cert_pem(path, sk_X509_value(der, 0), true, err, sizeof(err)), 0);
    cr_assert_eq(pki_write_cert_pem(path, sk_X509_value(der, 0), true, err, sizeof(err)), 0);
    sk = load(path);
    cr_expect_eq(sk_X509_num(sk), 3);
    cr_expect_eq(X509_cmp(sk_X509_value(sk, 2), sk_X509_value(der, 0)), 0);
    sk_X509_pop_free(sk, X509_free);

    /* Garbage, an empty file, a truncated DER and a missing file fail. */
    snprintf(path, sizeof(path), "%s/garbage", g_dir);
    ts_write_file(path, "not a certificate\n", 18);
    cr_expect_eq(cv_load_certs(&sk, path, err, sizeof(err)), -1);
    cr_expect_null(sk);
    cr_expect_neq(strstr(err, path), NULL, "error names the file: %s", err);
    snprintf(path, sizeof(path), "%s/empty", g_dir);
    ts_write_file(path, "", 0);
    cr_expect_eq(cv_load_certs(&sk, path, err, sizeof(err)), -1);
    snprintf(path, sizeof(path), "%s/truncated.der", g_dir);
    uint8_t *buf = NULL;
    int len = i2d_X509(sk_X509_value(der, 0), &buf);
    ts_write_file(path, buf, (size_t)len - 10);
    cr_expect_eq(cv_load_certs(&sk, path, err, sizeof(err)), -1);
    OPENSSL_free(buf);
    cr_expect_eq(cv_load_certs(&sk, "/nonexistent/x.pem", err, sizeof(err)), -1);
    /* A damaged block inside a PEM bundle fails the whole file. */
    snprintf(path, sizeof(path), "%s/damaged.pem", g_dir);
    ts_write_file(path, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 58);
    cr_expect_eq(cv_load_certs(&sk, path, err, sizeof(err)), -1);

    /* CRLs: DER loads, a certificate is not a CRL. */
    cr_expect_eq(cv_load_crls(&crls, PK "/crls/GoodCACRL.crl", err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(sk_X509_CRL_num(crls), 1);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    cr_expect_eq(cv_load_crls(&crls, PK "/certs/GoodCACert.crt", err, sizeof(err)), -1);
    sk_X509_pop_free(der, X509_free);
}

/* pkits_case runs a PKITS chain (anchor first) with crl_check none. */
static struct path_result pkits_case(const char *const *names, size_t n)
{
    STACK_OF(X509) *anchors = sk_X509_new_null(), *untrusted = sk_X509_new_null();
    STACK_OF(X509) *leaf = NULL;
    struct path_options o = {.at = PKITS_AT,
                             .purpose = PATH_PURPOSE_ANY,
                             .conformance = {.algorithms = ALGORITHMS_LEGACY, .compat = true}};
    struct path_result res;
    char path[256];

    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), PK "/certs/%s", names[i]);
        STACK_OF(X509) *one = load(path);
        if (i + 1 == n)
            leaf = one;
        else {
            sk_X509_push(i == 0 ? anchors : untrusted, sk_X509_shift(one));
            sk_X509_free(one);
        }
    }
    cr_assert_eq(path_validate(&res, &o, sk_X509_value(leaf, 0), anchors, untrusted, NULL), 0);
    sk_X509_pop_free(anchors, X509_free);
    sk_X509_pop_free(untrusted, X509_free);
    sk_X509_pop_free(leaf, X509_free);
    return res;
}

Test(pathval, valid_path_returns_chain)
{
    const char *names[] = {"TrustAnchorRootCertificate.crt", "GoodCACert.crt",
                           "ValidCertificatePathTest1EE.crt"};
    struct path_result res = pkits_case(names, 3);
    cr_expect(res.valid, "%s", res.detail);
    cr_expect_eq(res.reason, VERDICT_REASON_OK);
    cr_assert_not_null(res.chain);
    cr_expect_eq(sk_X509_num(res.chain), 3, "leaf, CA, anchor");
    path_result_clear(&res);
    cr_expect_null(res.chain);
}

Test(pathval, detail_names_role_and_depth)
{
    const char *names[] = {"TrustAnchorRootCertificate.crt", "BadnotAfterDateCACert.crt",
                           "InvalidCAnotAfterDateTest5EE.crt"};
    struct path_result res = pkits_case(names, 3);
    cr_expect_not(res.valid);
    cr_expect_eq(res.reason, VERDICT_REASON_EXPIRED);
    cr_expect_eq(strncmp(res.detail, "intermediate at depth 1", 23), 0, "%s", res.detail);
    path_result_clear(&res);
}

Test(pathval, reason_mapping)
{
    static const struct {
        const char *ca, *ee;
        enum verdict_reason want;
    } cases[] = {
        {"BadSignedCACert.crt", "InvalidCASignatureTest2EE.crt", VERDICT_REASON_BAD_SIGNATURE},
        {"GoodCACert.crt", "InvalidEEnotBeforeDateTest2EE.crt", VERDICT_REASON_NOT_YET_VALID},
        {"GoodCACert.crt", "InvalidNameChainingTest1EE.crt", VERDICT_REASON_NAME_CHAINING},
        {"keyUsageCriticalkeyCertSignFalseCACert.crt",
         "InvalidkeyUsageCriticalkeyCertSignFalseTest1EE.crt", VERDICT_REASON_KEY_USAGE},
        {"MissingbasicConstraintsCACert.crt", "InvalidMissingbasicConstraintsTest1EE.crt",
         VERDICT_REASON_BASIC_CONSTRAINTS},
        {NULL, "InvalidUnknownCriticalCertificateExtensionTest2EE.crt",
         VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *with_ca[] = {"TrustAnchorRootCertificate.crt", cases[i].ca, cases[i].ee};
        const char *direct[] = {"TrustAnchorRootCertificate.crt", cases[i].ee};
        struct path_result res = cases[i].ca ? pkits_case(with_ca, 3) : pkits_case(direct, 2);
        cr_expect_eq(res.reason, cases[i].want, "%s: got %s (%s)", cases[i].ee,
                     verdict_reason_name(res.reason), res.detail);
        path_result_clear(&res);
    }
}

/* A generated chain for purpose, hostname and depth checks. */
/* root, ca1, ca2, leaf */
static void gen_chain(struct ts_chain *g, const char *eku)
{
    static const char *const dns[] = {"api.example.com"};
    static const char *const cns[4] = {"level 0", "level 1", "level 2", "level 3"};
    struct pki_cert_spec s[4];

    for (int i = 0; i < 4; i++) {
        s[i] = (struct pki_cert_spec){.cn = cns[i], .not_before = TS_NOW - TS_DAY,
                                      .not_after = TS_NOW + TS_DAY, .is_ca = i < 3, .path_len = -1,
                                      .key_usage = i < 3 ? PKI_KU_KEY_CERT_SIGN
                                                         : PKI_KU_DIGITAL_SIGNATURE,
                                      .eku = i == 3 ? eku : NULL, .san_dns = dns,
                                      .n_san_dns = i == 3};
    }
    ts_chain_build(g, 4, s, NULL);
}

static struct path_result gen_validate(struct ts_chain *g, struct path_options *o)
{
    STACK_OF(X509) *anchors = sk_X509_new_null(), *untrusted = sk_X509_new_null();
    struct path_result res;
    sk_X509_push(anchors, g->cert[0]);
    sk_X509_push(untrusted, g->cert[2]);
    sk_X509_push(untrusted, g->cert[1]);
    o->at = TS_NOW;
    cr_assert_eq(path_validate(&res, o, g->cert[3], anchors, untrusted, NULL), 0);
    sk_X509_free(anchors);
    sk_X509_free(untrusted);
    return res;
}

Test(pathval, purpose_and_hostname)
{
    struct ts_chain g;
    struct path_options o = {0};
    struct path_result res;
    gen_chain(&g, "1.3.6.1.5.5.7.3.1"); /* serverAuth only */

    o.purpose = PATH_PURPOSE_SERVER;
    res = gen_validate(&g, &o);
    cr_expect(res.valid, "%s", res.detail);
    path_result_clear(&res);
    o.purpose = PATH_PURPOSE_CLIENT;
    res = gen_validate(&g, &o);
    cr_expect_eq(res.reason, VERDICT_REASON_EXTENDED_KEY_USAGE, "%s", res.detail);
    path_result_clear(&res);
    o.purpose = PATH_PURPOSE_SERVER;
    o.hostname = "api.example.com";
    res = gen_validate(&g, &o);
    cr_expect(res.valid, "%s", res.detail);
    path_result_clear(&res);
    o.hostname = "evil.example.com";
    res = gen_validate(&g, &o);
    cr_expect_not(res.valid);
    cr_expect_eq(res.reason, VERDICT_REASON_NAME_MISMATCH, "%s", verdict_reason_name(res.reason));
    cr_expect_neq(strstr(res.detail, "mismatch"), NULL, "%s", res.detail);
    path_result_clear(&res);
    ts_chain_free(&g);
}

Test(pathval, max_depth)
{
    struct ts_chain g;
    struct path_options o = {.purpose = PATH_PURPOSE_ANY, .max_depth = 4};
    struct path_result res;
    gen_chain(&g, NULL);
    res = gen_validate(&g, &o);
    cr_expect(res.valid, "4 certificates fit max_depth 4: %s", res.detail);
    path_result_clear(&res);
    o.max_depth = 3;
    res = gen_validate(&g, &o);
    cr_expect_not(res.valid);
    cr_expect_eq(res.reason, VERDICT_REASON_PATH_TOO_LONG, "%s: %s",
                 verdict_reason_name(res.reason), res.detail);
    path_result_clear(&res);
    ts_chain_free(&g);
}

Test(pathval, crl_check_leaf_and_policy_options)
{
    /* 4.4.3: revoked EE, found with leaf-only checking. */
    STACK_OF(X509) *anchors = load(PK "/certs/TrustAnchorRootCertificate.crt");
    STACK_OF(X509) *untrusted = load(PK "/certs/GoodCACert.crt");
    STACK_OF(X509) *leaf = load(PK "/certs/InvalidRevokedEETest3EE.crt");
    STACK_OF(X509_CRL) *crls = NULL, *more = NULL;
    char err[256];
    struct path_result res;
    struct path_options o = {.at = PKITS_AT, .crl_check = CRL_CHECK_LEAF};

    cr_assert_eq(cv_load_crls(&crls, PK "/crls/GoodCACRL.crl", err, sizeof(err)), 0);
    cr_assert_eq(cv_load_crls(&more, PK "/crls/TrustAnchorRootCRL.crl", err, sizeof(err)), 0);
    sk_X509_CRL_push(crls, sk_X509_CRL_shift(more));
    cr_assert_eq(path_validate(&res, &o, sk_X509_value(leaf, 0), anchors, untrusted, crls), 0);
    cr_expect_eq(res.reason, VERDICT_REASON_REVOKED, "%s", res.detail);
    path_result_clear(&res);
    /* No CRL checking: valid. */
    o.crl_check = CRL_CHECK_NONE;
    cr_assert_eq(path_validate(&res, &o, sk_X509_value(leaf, 0), anchors, untrusted, crls), 0);
    cr_expect(res.valid, "%s", res.detail);
    path_result_clear(&res);
    /* CRL checking without CRLs: revocation unknown. */
    o.crl_check = CRL_CHECK_ALL;
    cr_assert_eq(path_validate(&res, &o, sk_X509_value(leaf, 0), anchors, untrusted, NULL), 0);
    cr_expect_eq(res.reason, VERDICT_REASON_REVOCATION_UNKNOWN, "%s", res.detail);
    path_result_clear(&res);
    /* An initial policy set the path does not assert, with explicit policy. */
    static const char *const pol[] = {"2.16.840.1.101.3.2.1.48.2"};
    o.crl_check = CRL_CHECK_NONE;
    o.policy_oids = pol;
    o.n_policy_oids = 1;
    o.explicit_policy = true;
    cr_assert_eq(path_validate(&res, &o, sk_X509_value(leaf, 0), anchors, untrusted, NULL), 0);
    cr_expect_eq(res.reason, VERDICT_REASON_POLICY, "%s", res.detail);
    path_result_clear(&res);
    sk_X509_pop_free(anchors, X509_free);
    sk_X509_pop_free(untrusted, X509_free);
    sk_X509_pop_free(leaf, X509_free);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    sk_X509_CRL_free(more);
}
