/* validator_check_chain: one test per verdict rule, on a PKI generated for
 * each test with validator/pki_gen.h (P-256 keys, files under a mkdtemp
 * folder since the configuration takes file paths).
 *
 * PKI: root "Root R1" -> "Tenant CA" (tenant profile, tenant id = subject O)
 *                     -> "Device CA" (device profile, tenant id = O, device
 *                        id = SAN URI after "urn:device:")
 * Tenants: "acme" (device certs skip the password, device binding on),
 *          "globex" (password always, device binding on). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/mem.h>
#include <openssl/x509.h>

#include "crl_cache.h"
#include "rcu_reader.h"
#include "pki_gen.h"
#include "support/clock.h"
#include "support/pki_builders.h"
#include "support/tmpdir.h"
#include "validator.h"
#include "crl_gen.h"
#include "deny_list.h"
#include "verdict_cache.h"
#include "verdict.h"

/* The fixed clock, under the short names this file uses throughout. */
#define NOW TS_NOW
#define DAY TS_DAY

static char g_dir[TS_TMPDIR_MAX];
static struct ts_cert g_root, g_tenant_ca, g_device_ca;
static char g_root_file[128], g_tenant_file[128], g_device_file[128];

static void write_pem(char *path, size_t len, const char *name, X509 *x)
{
    ts_write_cert_pem(path, len, g_dir, name, x);
}

static void setup(void)
{
    ts_tmpdir_make(g_dir, "validator");
    g_root = ts_ca_new("Root R1", NULL, NOW - 365 * DAY, NOW + 3650 * DAY);
    g_tenant_ca = ts_ca_new("Tenant CA", &g_root, NOW - 365 * DAY, NOW + 1825 * DAY);
    g_device_ca = ts_ca_new("Device CA", &g_root, NOW - 365 * DAY, NOW + 1825 * DAY);
    write_pem(g_root_file, sizeof(g_root_file), "root.pem", g_root.cert);
    write_pem(g_tenant_file, sizeof(g_tenant_file), "tenant-ca.pem", g_tenant_ca.cert);
    write_pem(g_device_file, sizeof(g_device_file), "device-ca.pem", g_device_ca.cert);
}

static void teardown(void)
{
    ts_cert_free(&g_root);
    ts_cert_free(&g_tenant_ca);
    ts_cert_free(&g_device_ca);
    ts_tmpdir_remove(g_dir);
}

TestSuite(validator, .init = setup, .fini = teardown);

/* ---- configuration ---- */

struct test_cfg {
    char *anchors[4];
    char *inters[4];
    char *tenant_issuers[2];
    char *device_issuers[2];
    struct profile_config profiles[2];
    struct tenant_config tenants[2];
    struct validator_config vc;
};

static void default_cfg(struct test_cfg *t)
{
    memset(t, 0, sizeof(*t));
    t->anchors[0] = g_root_file;
    t->tenant_issuers[0] = g_tenant_file;
    t->device_issuers[0] = g_device_file;
    t->profiles[0] = (struct profile_config){
        .name = "tenant", .kind = CERT_KIND_TENANT, .issuer_files = t->tenant_issuers,
        .n_issuer_files = 1, .tenant_id = {ID_SOURCE_SUBJECT_ATTR, "O"}};
    t->profiles[1] = (struct profile_config){
        .name = "device", .kind = CERT_KIND_DEVICE, .issuer_files = t->device_issuers,
        .n_issuer_files = 1, .tenant_id = {ID_SOURCE_SUBJECT_ATTR, "O"},
        .device_id = {ID_SOURCE_SAN_URI, "urn:device:"}};
    t->tenants[0] = (struct tenant_config){"acme", true, true};
    t->tenants[1] = (struct tenant_config){"globex", false, true};
    t->vc.anchor_files = t->anchors;
    t->vc.n_anchor_files = 1;
    t->vc.intermediate_files = t->inters;
    t->vc.profiles = t->profiles;
    t->vc.n_profiles = 2;
    t->vc.tenants = t->tenants;
    t->vc.n_tenants = 2;
}

static struct validator *build(const struct test_cfg *t)
{
    struct validator *v = NULL;
    char err[256];
    cr_assert_eq(validator_new(&v, &t->vc, 7, err, sizeof(err)), 0, "validator_new: %s", err);
    return v;
}

/* ---- leaves and checking ---- */

static X509 *tenant_leaf_ex(const char *tenant, int64_t nb, int64_t na, const char *eku,
                            const struct ts_cert *issuer, uint64_t serial)
{
    EVP_PKEY *k = pki_key_new(PKI_KEY_P256);
    struct pki_cert_spec s = {.cn = "alice", .o = tenant, .not_before = nb, .not_after = na,
                              .path_len = -1, .key_usage = PKI_KU_DIGITAL_SIGNATURE, .eku = eku,
                              .serial = serial};
    X509 *x = ts_issue(&s, k, issuer);
    EVP_PKEY_free(k);
    return x;
}

static X509 *tenant_leaf(const char *tenant)
{
    return tenant_leaf_ex(tenant, NOW - DAY, NOW + 300 * DAY, "1.3.6.1.5.5.7.3.2", &g_tenant_ca, 0);
}

static X509 *device_leaf(const char *tenant, const char *device)
{
    char uri[128];
    const char *uris[1] = {uri};
    EVP_PKEY *k = pki_key_new(PKI_KEY_P256);
    snprintf(uri, sizeof(uri), "urn:device:%s", device);
    struct pki_cert_spec s = {.cn = "device", .o = tenant, .not_before = NOW - DAY,
                              .not_after = NOW + 1000 * DAY, .path_len = -1,
                              .key_usage = PKI_KU_DIGITAL_SIGNATURE, .eku = "1.3.6.1.5.5.7.3.2",
                              .san_uris = uris, .n_san_uris = 1};
    X509 *x = ts_issue(&s, k, &g_device_ca);
    EVP_PKEY_free(k);
    return x;
}

struct chain {
    uint8_t *der[16];
    struct cv_bytes items[16];
    size_t n;
};

static void chain_add(struct chain *c, X509 *x)
{
    cr_assert(c->n < 16);
    int len = i2d_X509(x, &c->der[c->n]);
    cr_assert(len > 0);
    c->items[c->n].data = c->der[c->n];
    c->items[c->n].len = (size_t)len;
    c->n++;
}

static void chain_free(struct chain *c)
{
    for (size_t i = 0; i < c->n; i++)
        OPENSSL_free(c->der[i]);
    memset(c, 0, sizeof(*c));
}

static struct verdict check_at(const struct validator *v, const struct crl_cache *crls,
                               const struct chain *c, const char *tenant, const char *device,
                               int64_t now)
{
    struct chain_input in = {.id = 42, .certs = c->items, .n_certs = c->n};
    struct verdict out;
    in.tenant_id = (struct cv_bytes){(const uint8_t *)tenant, strlen(tenant)};
    in.device_id = (struct cv_bytes){(const uint8_t *)(device ? device : ""), device ? strlen(device) : 0};
    struct revocation_sources src = {.crls = crls};
    validator_check_chain(v, &src, &out, &in, now);
    cr_assert_eq(out.id, 42);
    return out;
}

static struct verdict check_one(X509 *leaf, const char *tenant, const char *device)
{
    struct test_cfg t;
    struct chain c = {0};
    default_cfg(&t);
    struct validator *v = build(&t);
    chain_add(&c, leaf);
    struct verdict out = check_at(v, NULL, &c, tenant, device, NOW);
    chain_free(&c);
    validator_free(v);
    return out;
}

#define expect_deny(out, r)                                                                  \
    do {                                                                                     \
        cr_expect_eq((out).decision, DECISION_DENY, "decision %s",                           \
                     verdict_decision_name((out).decision));                                 \
        cr_expect_eq((out).reason, (r), "reason %s (%s), wanted %s",                         \
                     verdict_reason_name((out).reason), (out).detail, verdict_reason_name(r)); \
    } while (0)

/* ---- the rules ---- */

Test(validator, valid_tenant_requires_password)
{
    X509 *leaf = tenant_leaf("acme");
    struct verdict out = check_one(leaf, "acme", NULL);
    cr_expect_eq(out.decision, DECISION_REQUIRE_PASSWORD, "%s", out.detail);
    cr_expect_eq(out.reason, VERDICT_REASON_OK, "%s: %s", verdict_reason_name(out.reason),
                 out.detail);
    cr_expect_eq(out.kind, CERT_KIND_TENANT);
    cr_expect_str_eq(out.profile, "tenant");
    cr_expect(out.has_leaf_sha256);
    cr_expect_neq(strstr(out.subject, "O=acme"), NULL, "subject %s", out.subject);
    cr_expect_eq(out.not_after_unix, NOW + 300 * DAY);
    cr_expect_gt(strlen(out.serial_hex), 0);
    X509_free(leaf);
}

/* The identity rules: which leaf, which claims, which verdict. */
Test(validator, identity_rules)
{
    static const struct {
        const char *name;
        const char *leaf_tenant, *leaf_device; /* leaf_device NULL = a tenant leaf */
        const char *claim_tenant, *claim_device;
        enum verdict_decision decision;
        enum verdict_reason reason;
        enum cert_kind kind;
    } rows[] = {
        {"tenant leaf, its tenant", "acme", NULL, "acme", NULL, DECISION_REQUIRE_PASSWORD,
         VERDICT_REASON_OK, CERT_KIND_TENANT},
        {"device leaf, tenant skips the password", "acme", "dev-1", "acme", "dev-1",
         DECISION_ALLOW, VERDICT_REASON_OK, CERT_KIND_DEVICE},
        {"device leaf, tenant requires the password", "globex", "dev-9", "globex", "dev-9",
         DECISION_REQUIRE_PASSWORD, VERDICT_REASON_OK, CERT_KIND_DEVICE},
        {"tenant leaf, another tenant claimed", "acme", NULL, "globex", NULL, DECISION_DENY,
         VERDICT_REASON_WRONG_TENANT, CERT_KIND_TENANT},
        {"device leaf, another device claimed", "acme", "dev-1", "acme", "dev-2", DECISION_DENY,
         VERDICT_REASON_DEVICE_MISMATCH, CERT_KIND_DEVICE},
        {"tenant leaf of a tenant not configured", "initech", NULL, "initech", NULL,
         DECISION_DENY, VERDICT_REASON_UNKNOWN_TENANT, CERT_KIND_TENANT},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        X509 *leaf = rows[i].leaf_device != NULL
                         ? device_leaf(rows[i].leaf_tenant, rows[i].leaf_device)
                         : tenant_leaf(rows[i].leaf_tenant);
        struct verdict out = check_one(leaf, rows[i].claim_tenant, rows[i].claim_device);

        cr_expect_eq(out.decision, rows[i].decision, "%s: decision %s (%s %s)", rows[i].name,
                     verdict_decision_name(out.decision), verdict_reason_name(out.reason),
                     out.detail);
        cr_expect_eq(out.reason, rows[i].reason, "%s: reason %s (%s), wanted %s", rows[i].name,
                     verdict_reason_name(out.reason), out.detail,
                     verdict_reason_name(rows[i].reason));
        if (out.reason == VERDICT_REASON_OK)
            cr_expect_eq(out.kind, rows[i].kind, "%s: kind %s", rows[i].name,
                         cert_kind_name(out.kind));
        X509_free(leaf);
    }
}

Test(validator, missing_identity)
{
    /* A tenant leaf with no O attribute. */
    EVP_PKEY *k = pki_key_new(PKI_KEY_P256);
    struct pki_cert_spec s = {.cn = "nobody", .not_before = NOW - DAY, .not_after = NOW + DAY,
                              .path_len = -1, .eku = "1.3.6.1.5.5.7.3.2"};
    X509 *leaf = ts_issue(&s, k, &g_tenant_ca);
    expect_deny(check_one(leaf, "acme", NULL), VERDICT_REASON_MISSING_IDENTITY);
    X509_free(leaf);
    EVP_PKEY_free(k);
}

Test(validator, validity_too_long)
{
    X509 *ok = tenant_leaf_ex("acme", NOW - DAY, NOW - DAY + 396 * DAY, "1.3.6.1.5.5.7.3.2",
                              &g_tenant_ca, 0);
    X509 *leaf = tenant_leaf_ex("acme", NOW - DAY, NOW + 400 * DAY, "1.3.6.1.5.5.7.3.2",
                                &g_tenant_ca, 0);
    cr_expect_eq(check_one(ok, "acme", NULL).reason, VERDICT_REASON_OK, "396 days is the limit");
    expect_deny(check_one(leaf, "acme", NULL), VERDICT_REASON_VALIDITY_TOO_LONG);
    X509_free(ok);
    X509_free(leaf);
}

Test(validator, missing_client_auth)
{
    X509 *server_only = tenant_leaf_ex("acme", NOW - DAY, NOW + 30 * DAY, "1.3.6.1.5.5.7.3.1",
                                       &g_tenant_ca, 0);
    X509 *no_eku = tenant_leaf_ex("acme", NOW - DAY, NOW + 30 * DAY, NULL, &g_tenant_ca, 0);
    expect_deny(check_one(server_only, "acme", NULL), VERDICT_REASON_EXTENDED_KEY_USAGE);
    expect_deny(check_one(no_eku, "acme", NULL), VERDICT_REASON_EXTENDED_KEY_USAGE);
    X509_free(server_only);
    X509_free(no_eku);
}

/* A leaf just outside its validity at NOW: a validator without clock skew
 * denies it, one with a 300 s skew accepts it at NOW and denies it at
 * |far| (600 s further out). */
struct skew_case {
    int64_t not_before, not_after, far;
    enum verdict_reason reason;
};

static void check_skew(const struct skew_case *k)
{
    X509 *leaf = tenant_leaf_ex("acme", k->not_before, k->not_after, "1.3.6.1.5.5.7.3.2",
                                &g_tenant_ca, 0);
    struct test_cfg t;
    struct chain c = {0};
    default_cfg(&t);
    struct validator *strict = build(&t);
    t.vc.clock_skew_seconds = 300;
    struct validator *lenient = build(&t);
    chain_add(&c, leaf);
    expect_deny(check_at(strict, NULL, &c, "acme", NULL, NOW), k->reason);
    cr_expect_eq(check_at(lenient, NULL, &c, "acme", NULL, NOW).reason, VERDICT_REASON_OK,
                 "60-120 s outside the validity is within a 300 s skew");
    expect_deny(check_at(lenient, NULL, &c, "acme", NULL, k->far), k->reason);
    chain_free(&c);
    validator_free(strict);
    validator_free(lenient);
    X509_free(leaf);
}

Test(validator, expired_and_clock_skew)
{
    check_skew(&(struct skew_case){NOW - 30 * DAY, NOW - 60, NOW + 600, VERDICT_REASON_EXPIRED});
}

Test(validator, not_yet_valid_and_clock_skew)
{
    check_skew(
        &(struct skew_case){NOW + 120, NOW + 30 * DAY, NOW - 600, VERDICT_REASON_NOT_YET_VALID});
}

Test(validator, untrusted_issuer)
{
    /* same name, other key */
    struct ts_cert other_root = ts_ca_new("Root R1", NULL, NOW - DAY, NOW + 365 * DAY);
    struct ts_cert other_ca = ts_ca_new("Tenant CA", &other_root, NOW - DAY, NOW + 365 * DAY);
    X509 *leaf = tenant_leaf_ex("acme", NOW - DAY, NOW + 30 * DAY, "1.3.6.1.5.5.7.3.2", &other_ca, 0);
    struct test_cfg t;
    struct chain c = {0};
    default_cfg(&t);
    t.tenant_issuers[0] = g_device_file; /* keep the real Tenant CA out of the pool */
    struct validator *v = build(&t);
    chain_add(&c, leaf);
    chain_add(&c, other_ca.cert);
    struct verdict out = check_at(v, NULL, &c, "acme", NULL, NOW);
    cr_expect(out.reason == VERDICT_REASON_UNTRUSTED_ISSUER ||
                  out.reason == VERDICT_REASON_BAD_SIGNATURE,
              "reason %s (%s)", verdict_reason_name(out.reason), out.detail);
    cr_expect_eq(out.decision, DECISION_DENY);
    chain_free(&c);
    /* A chain whose top is a self-signed root nobody trusts. */
    chain_add(&c, leaf);
    chain_add(&c, other_ca.cert);
    chain_add(&c, other_root.cert);
    cr_expect_eq(check_at(v, NULL, &c, "acme", NULL, NOW).reason, VERDICT_REASON_UNTRUSTED_ISSUER);
    chain_free(&c);
    validator_free(v);
    X509_free(leaf);
    ts_cert_free(&other_root);
    ts_cert_free(&other_ca);
}

Test(validator, bad_signature)
{
    X509 *leaf = tenant_leaf("acme");
    struct test_cfg t;
    struct chain c = {0};
    default_cfg(&t);
    struct validator *v = build(&t);
    chain_add(&c, leaf);
    /* The signature BIT STRING ends the DER: flip its last byte. */
    c.der[0][c.items[0].len - 1] ^= 0x01;
    expect_deny(check_at(v, NULL, &c, "acme", NULL, NOW), VERDICT_REASON_BAD_SIGNATURE);
    chain_free(&c);
    validator_free(v);
    X509_free(leaf);
}

Test(validator, malformed_der)
{
    static const uint8_t garbage[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    X509 *leaf = tenant_leaf("acme");
    struct test_cfg t;
    struct chain c = {0};
    default_cfg(&t);
    struct validator *v = build(&t);
    chain_add(&c, leaf);
    chain_add(&c, g_tenant_ca.cert);
    chain_add(&c, g_root.cert);
    c.items[2].data = garbage;
    c.items[2].len = sizeof(garbage);
    struct verdict out = check_at(v, NULL, &c, "acme", NULL, NOW);
    expect_deny(out, VERDICT_REASON_MALFORMED);
    cr_expect_str_eq(out.detail, "certificate 2 is not DER");
    /* Trailing bytes after a valid certificate are refused too. */
    uint8_t *longer = malloc(c.items[0].len + 1);
    memcpy(longer, c.der[0], c.items[0].len);
    longer[c.items[0].len] = 0;
    c.items[0].data = longer;
    c.items[0].len++;
    c.items[2].data = c.der[2];
    out = check_at(v, NULL, &c, "acme", NULL, NOW);
    expect_deny(out, VERDICT_REASON_MALFORMED);
    cr_expect_str_eq(out.detail, "certificate 0 is not DER");
    free(longer);
    chain_free(&c);
    validator_free(v);
    X509_free(leaf);
}

Test(validator, too_many_certs_and_too_big)
{
    X509 *leaf = tenant_leaf("acme");
    struct test_cfg t;
    struct chain c = {0};
    default_cfg(&t);
    t.vc.max_chain_certs = 3;
    struct validator *v = build(&t);
    chain_add(&c, leaf);
    for (int i = 0; i < 3; i++)
        chain_add(&c, g_tenant_ca.cert);
    struct verdict out = check_at(v, NULL, &c, "acme", NULL, NOW);
    expect_deny(out, VERDICT_REASON_MALFORMED);
    cr_expect_neq(strstr(out.detail, "max_certs_per_chain"), NULL, "%s", out.detail);
    c.n = 3; /* within the limit: valid */
    cr_expect_eq(check_at(v, NULL, &c, "acme", NULL, NOW).reason, VERDICT_REASON_OK);
    validator_free(v);
    t.vc.max_cert_bytes = 100;
    v = build(&t);
    out = check_at(v, NULL, &c, "acme", NULL, NOW);
    expect_deny(out, VERDICT_REASON_MALFORMED);
    cr_expect_neq(strstr(out.detail, "max_cert_bytes"), NULL, "%s", out.detail);
    c.n = 4;
    chain_free(&c);
    validator_free(v);
    X509_free(leaf);
}

Test(validator, two_live_tenant_certs_of_one_tenant)
{
    X509 *a = tenant_leaf("acme"), *b = tenant_leaf("acme");
    struct test_cfg t;
    struct chain ca = {0}, cb = {0};
    default_cfg(&t);
    struct validator *v = build(&t);
    chain_add(&ca, a);
    chain_add(&cb, b);
    struct verdict va = check_at(v, NULL, &ca, "acme", NULL, NOW);
    struct verdict vb = check_at(v, NULL, &cb, "acme", NULL, NOW);
    cr_expect_eq(va.decision, DECISION_REQUIRE_PASSWORD, "%s", va.detail);
    cr_expect_eq(vb.decision, DECISION_REQUIRE_PASSWORD, "%s", vb.detail);
    cr_expect_neq(memcmp(va.leaf_sha256, vb.leaf_sha256, 32), 0, "two distinct certificates");
    chain_free(&ca);
    chain_free(&cb);
    validator_free(v);
    X509_free(a);
    X509_free(b);
}

/* Cross-signed anchor rotation: "Tenant CA" exists twice with one key, as
 * issued by the old root R1 and by the new root R2. */
Test(validator, cross_signed_anchor_rotation)
{
    struct ts_cert r2 = ts_ca_new("Root R2", NULL, NOW - DAY, NOW + 3650 * DAY);
    struct pki_cert_spec s = {.cn = "Tenant CA", .o = "certval test", .not_before = NOW - DAY,
                              .not_after = NOW + 1825 * DAY, .is_ca = true, .path_len = -1,
                              .key_usage = PKI_KU_KEY_CERT_SIGN | PKI_KU_CRL_SIGN};
    X509 *ca_by_r2 = ts_issue(&s, g_tenant_ca.key, &r2);
    X509 *leaf = tenant_leaf("acme");
    char r2_file[128], ca_r2_file[128];
    struct test_cfg t;
    struct chain old_chain = {0}, new_chain = {0};

    write_pem(r2_file, sizeof(r2_file), "root-r2.pem", r2.cert);
    write_pem(ca_r2_file, sizeof(ca_r2_file), "tenant-ca-r2.pem", ca_by_r2);
    chain_add(&old_chain, leaf);
    chain_add(&old_chain, g_tenant_ca.cert); /* the client still sends the R1 copy */
    chain_add(&new_chain, leaf);
    chain_add(&new_chain, ca_by_r2);

    /* 1. Both roots trusted, the profile lists the R2 copy. */
    default_cfg(&t);
    t.anchors[1] = r2_file;
    t.vc.n_anchor_files = 2;
    t.tenant_issuers[0] = ca_r2_file;
    struct validator *both = build(&t);
    cr_expect_eq(validator_anchor_count(both), 2);
    cr_expect_eq(check_at(both, NULL, &old_chain, "acme", NULL, NOW).reason, VERDICT_REASON_OK);
    cr_expect_eq(check_at(both, NULL, &new_chain, "acme", NULL, NOW).reason, VERDICT_REASON_OK);

    /* 2. R1 removed: the old chain still validates via the R2 copy. */
    t.anchors[0] = r2_file;
    t.vc.n_anchor_files = 1;
    struct validator *new_only = build(&t);
    struct verdict out = check_at(new_only, NULL, &old_chain, "acme", NULL, NOW);
    cr_expect_eq(out.reason, VERDICT_REASON_OK, "%s: %s", verdict_reason_name(out.reason),
                 out.detail);

    /* 3. Only the removed root: the R2 path is not trusted. */
    t.anchors[0] = g_root_file;
    struct validator *old_only = build(&t);
    out = check_at(old_only, NULL, &new_chain, "acme", NULL, NOW);
    expect_deny(out, VERDICT_REASON_UNTRUSTED_ISSUER);

    chain_free(&old_chain);
    chain_free(&new_chain);
    validator_free(both);
    validator_free(new_only);
    validator_free(old_only);
    X509_free(ca_by_r2);
    X509_free(leaf);
    ts_cert_free(&r2);
}

/* The first chain built fails on an expired copy of the intermediate (the
 * configured copy, which the builder tries first); the bounded retry must
 * find the presented, current copy. */
Test(validator, retries_alternative_intermediate)
{
    struct pki_cert_spec s = {.cn = "Tenant CA", .o = "certval test", .not_before = NOW - 900 * DAY,
                              .not_after = NOW - 10 * DAY, .is_ca = true, .path_len = -1,
                              .key_usage = PKI_KU_KEY_CERT_SIGN | PKI_KU_CRL_SIGN};
    X509 *expired_copy = ts_issue(&s, g_tenant_ca.key, &g_root);
    X509 *leaf = tenant_leaf("acme");
    char expired_file[128];
    struct test_cfg t;
    struct chain c = {0};
    write_pem(expired_file, sizeof(expired_file), "tenant-ca-expired.pem", expired_copy);
    default_cfg(&t);
    t.tenant_issuers[0] = expired_file;
    struct validator *v = build(&t);
    chain_add(&c, leaf);
    chain_add(&c, g_tenant_ca.cert);
    struct verdict out = check_at(v, NULL, &c, "acme", NULL, NOW);
    cr_expect_eq(out.reason, VERDICT_REASON_OK, "%s: %s", verdict_reason_name(out.reason),
                 out.detail);
    validator_free(v);
    /* With one attempt only, the expired configured copy decides. */
    t.vc.max_path_attempts = 1;
    v = build(&t);
    expect_deny(check_at(v, NULL, &c, "acme", NULL, NOW), VERDICT_REASON_EXPIRED);
    chain_free(&c);
    validator_free(v);
    X509_free(expired_copy);
    X509_free(leaf);
}

Test(validator, intermediates_any_order_duplicates_extras)
{
    struct ts_cert mid = ts_ca_new("Mid CA", &g_root, NOW - DAY, NOW + 1825 * DAY);
    struct ts_cert issuing = ts_ca_new("Issuing CA", &mid, NOW - DAY, NOW + 1825 * DAY);
    X509 *leaf = tenant_leaf_ex("acme", NOW - DAY, NOW + 30 * DAY, "1.3.6.1.5.5.7.3.2", &issuing, 0);
    char issuing_file[128];
    struct test_cfg t;
    struct chain c = {0};

    write_pem(issuing_file, sizeof(issuing_file), "issuing.pem", issuing.cert);
    default_cfg(&t);
    t.tenant_issuers[0] = issuing_file;
    struct validator *v = build(&t);
    /* Mid CA is known only from the request. */
    chain_add(&c, leaf);
    chain_add(&c, g_device_ca.cert); /* unrelated extra */
    chain_add(&c, issuing.cert);
    chain_add(&c, g_root.cert);      /* the anchor itself, sent anyway */
    chain_add(&c, mid.cert);
    chain_add(&c, issuing.cert);     /* duplicate */
    struct verdict out = check_at(v, NULL, &c, "acme", NULL, NOW);
    cr_expect_eq(out.reason, VERDICT_REASON_OK, "%s: %s", verdict_reason_name(out.reason),
                 out.detail);
    cr_expect_eq(out.decision, DECISION_REQUIRE_PASSWORD);
    chain_free(&c);
    /* Without Mid CA there is no path. */
    chain_add(&c, leaf);
    chain_add(&c, issuing.cert);
    expect_deny(check_at(v, NULL, &c, "acme", NULL, NOW), VERDICT_REASON_UNTRUSTED_ISSUER);
    chain_free(&c);
    validator_free(v);
    X509_free(leaf);
    ts_cert_free(&mid);
    ts_cert_free(&issuing);
}

Test(validator, no_matching_profile)
{
    struct ts_cert other = ts_ca_new("Other CA", &g_root, NOW - DAY, NOW + 365 * DAY);
    X509 *leaf = tenant_leaf_ex("acme", NOW - DAY, NOW + 30 * DAY, "1.3.6.1.5.5.7.3.2", &other, 0);
    struct test_cfg t;
    struct chain c = {0};
    default_cfg(&t);
    struct validator *v = build(&t);
    chain_add(&c, leaf);
    chain_add(&c, other.cert);
    expect_deny(check_at(v, NULL, &c, "acme", NULL, NOW), VERDICT_REASON_NO_MATCHING_PROFILE);
    chain_free(&c);
    validator_free(v);
    X509_free(leaf);
    ts_cert_free(&other);
}

/* ---- revocation through the CRL cache ---- */

static void add_crl(struct crl_cache *cc, const uint64_t *serials, size_t n, int64_t next_update)
{
    char err[256];
    X509_CRL *crl = pki_crl_new(g_tenant_ca.cert, g_tenant_ca.key, serials, n, NOW - DAY,
                                next_update, 1);
    cr_assert_not_null(crl);
    cr_assert_eq(crl_cache_add_crl(cc, crl, g_tenant_ca.cert, "test", err, sizeof(err)), 0, "%s", err);
    X509_CRL_free(crl);
}

Test(validator, revocation)
{
    uint64_t revoked = 0x1234;
    X509 *bad = tenant_leaf_ex("acme", NOW - DAY, NOW + 30 * DAY, "1.3.6.1.5.5.7.3.2",
                               &g_tenant_ca, revoked);
    X509 *good = tenant_leaf_ex("acme", NOW - DAY, NOW + 30 * DAY, "1.3.6.1.5.5.7.3.2",
                                &g_tenant_ca, 0x5678);
    struct test_cfg t;
    struct chain cb = {0}, cg = {0};
    certval_rcu_reader_register();
    struct crl_cache *cc = crl_cache_new(), *empty = crl_cache_new();
    cr_assert_not_null(cc);
    add_crl(cc, &revoked, 1, NOW + 7 * DAY);
    default_cfg(&t);
    t.profiles[0].revocation = REVOCATION_LEAF;
    struct validator *v = build(&t);
    chain_add(&cb, bad);
    chain_add(&cg, good);

    expect_deny(check_at(v, cc, &cb, "acme", NULL, NOW), VERDICT_REASON_REVOKED);
    cr_expect_eq(check_at(v, cc, &cg, "acme", NULL, NOW).reason, VERDICT_REASON_OK);
    expect_deny(check_at(v, NULL, &cg, "acme", NULL, NOW), VERDICT_REASON_REVOCATION_UNKNOWN);
    expect_deny(check_at(v, empty, &cg, "acme", NULL, NOW), VERDICT_REASON_REVOCATION_UNKNOWN);
    /* Past nextUpdate: fail closed by default... */
    expect_deny(check_at(v, cc, &cg, "acme", NULL, NOW + 8 * DAY), VERDICT_REASON_REVOCATION_STALE);
    /* ...a stale CRL still revokes... */
    expect_deny(check_at(v, cc, &cb, "acme", NULL, NOW + 8 * DAY), VERDICT_REASON_REVOKED);
    validator_free(v);
    /* ...and STALE_ALLOW_WARN accepts with a warning. */
    t.profiles[0].on_stale = STALE_ALLOW_WARN;
    v = build(&t);
    struct verdict out = check_at(v, cc, &cg, "acme", NULL, NOW + 8 * DAY);
    cr_expect_eq(out.reason, VERDICT_REASON_OK, "%s", out.detail);
    cr_expect_neq(strstr(out.detail, "stale"), NULL, "detail warns: %s", out.detail);
    validator_free(v);

    chain_free(&cb);
    chain_free(&cg);
    crl_cache_free(cc);
    crl_cache_free(empty);
    certval_rcu_reader_unregister();
    X509_free(bad);
    X509_free(good);
}

/* A CRL with issuingDistributionPoint onlyContainsUserCerts covers end
 * entities only (RFC 5280 5.2.5): it cannot vouch for an intermediate. */
static void add_root_crl(struct crl_cache *cc, bool only_user_certs)
{
    struct crl_gen_spec spec = {.issuer = g_root.cert, .key = g_root.key,
                                .this_update = NOW - DAY, .next_update = NOW + 7 * DAY,
                                .has_crl_number = true, .crl_number = 1,
                                .only_user_certs = only_user_certs};
    uint8_t *der = NULL;
    size_t len = 0;
    char err[256];
    STACK_OF(X509) *issuers = sk_X509_new_null();

    cr_assert_eq(crl_gen_der(&spec, &der, &len), 0);
    sk_X509_push(issuers, g_root.cert);
    cr_assert_eq(crl_cache_add_der(cc, der, len, issuers, "test", err, sizeof(err)), 0, "%s", err);
    sk_X509_free(issuers);
    OPENSSL_free(der);
}

Test(validator, crl_scope_user_certs_only_does_not_cover_a_ca)
{
    X509 *leaf = tenant_leaf("acme");
    struct test_cfg t;
    struct chain c = {0};

    certval_rcu_reader_register();
    struct crl_cache *user_only = crl_cache_new(), *full = crl_cache_new();
    add_crl(user_only, NULL, 0, NOW + 7 * DAY);
    add_crl(full, NULL, 0, NOW + 7 * DAY);
    add_root_crl(user_only, true);
    add_root_crl(full, false);
    default_cfg(&t);
    t.profiles[0].revocation = REVOCATION_ALL;
    struct validator *v = build(&t);
    chain_add(&c, leaf);

    struct verdict ok = check_at(v, full, &c, "acme", NULL, NOW);
    cr_expect_eq(ok.reason, VERDICT_REASON_OK, "%s", ok.detail);
    struct verdict out = check_at(v, user_only, &c, "acme", NULL, NOW);
    expect_deny(out, VERDICT_REASON_REVOCATION_UNKNOWN);
    cr_expect_neq(strstr(out.detail, "depth 1"), NULL, "%s", out.detail);
    validator_free(v);
    chain_free(&c);
    crl_cache_free(user_only);
    crl_cache_free(full);
    certval_rcu_reader_unregister();
    X509_free(leaf);
}

/* ---- verdict cache and emergency deny list ---- */

static struct verdict check_src(const struct validator *v, const struct revocation_sources *src,
                                const struct chain *c, const char *tenant, int64_t now)
{
    struct chain_input in = {.id = 77, .certs = c->items, .n_certs = c->n};
    struct verdict out;

    in.tenant_id = (struct cv_bytes){(const uint8_t *)tenant, strlen(tenant)};
    validator_check_chain(v, src, &out, &in, now);
    cr_assert_eq(out.id, 77);
    return out;
}

static uint64_t hits(struct verdict_cache *vc)
{
    struct verdict_cache_stats st;

    verdict_cache_stats(vc, &st);
    return st.hits;
}

/* add_spec adds a crl_gen CRL of the tenant CA to |cc|. */
static void add_spec(struct crl_cache *cc, const struct crl_gen_spec *spec)
{
    uint8_t *der = NULL;
    size_t len = 0;
    char err[256];
    STACK_OF(X509) *issuers = sk_X509_new_null();

    cr_assert_eq(crl_gen_der(spec, &der, &len), 0);
    sk_X509_push(issuers, spec->issuer);
    cr_assert_eq(crl_cache_add_der(cc, der, len, issuers, "test", err, sizeof(err)), 0, "%s", err);
    sk_X509_free(issuers);
    OPENSSL_free(der);
}

static void delta_entry(void *arg, size_t i, struct crl_gen_entry *e)
{
    (void)i;
    crl_gen_serial_u64(e, *(const uint64_t *)arg);
    e->revoked_at = NOW - DAY;
    e->reason = 1;
}

/* The service path applies delta CRLs (RFC 5280 5.2.4): a revocation
 * published in a delta only is found by the full check and by the
 * verdict cache's re-check by reference. A DP-scoped partition added
 * later makes the reference unable to decide: the hit falls back to a
 * full check, which still answers. */
Test(validator, delta_crl_and_partitions_through_the_verdict_cache)
{
    uint64_t serial = 0x7777;
    X509 *leaf = tenant_leaf_ex("acme", NOW - DAY, NOW + 30 * DAY, "1.3.6.1.5.5.7.3.2",
                                &g_tenant_ca, serial);
    struct crl_gen_spec full = {.issuer = g_tenant_ca.cert, .key = g_tenant_ca.key,
                                .this_update = NOW - DAY, .next_update = NOW + 7 * DAY,
                                .has_crl_number = true, .crl_number = 4};
    struct crl_gen_spec delta = full, part = full;
    struct test_cfg t;
    struct chain c = {0};

    certval_rcu_reader_register();
    struct crl_cache *cc = crl_cache_new(), *cc2 = crl_cache_new();
    struct verdict_cache *vc = verdict_cache_new(1000, 1 << 20);
    struct revocation_sources src = {.crls = cc, .cache = vc}, src2 = {.crls = cc2, .cache = vc};
    cr_assert(cc && cc2 && vc);
    default_cfg(&t);
    t.profiles[0].revocation = REVOCATION_LEAF;
    struct validator *v = build(&t);
    chain_add(&c, leaf);
    add_spec(cc, &full);

    cr_assert_eq(check_src(v, &src, &c, "acme", NOW).reason, VERDICT_REASON_OK);
    cr_assert_eq(check_src(v, &src, &c, "acme", NOW).reason, VERDICT_REASON_OK);
    cr_assert_eq(hits(vc), 1, "a plain complete CRL: the verdict is cached");
    delta.delta = true;
    delta.crl_number = 5;
    delta.delta_base = 4;
    delta.n_entries = 1;
    delta.entry_at = delta_entry;
    delta.arg = &serial;
    add_spec(cc, &delta);
    struct verdict revoked = check_src(v, &src, &c, "acme", NOW);
    expect_deny(revoked, VERDICT_REASON_REVOKED);
    cr_expect_eq(hits(vc), 2, "denied on the hit, by reference");

    /* Another CRL cache, same chain key: a full CRL plus an onlyContainsUserCerts
     * partition. Not cacheable by reference, so each check is a full one. */
    verdict_cache_clear(vc);
    uint64_t h = hits(vc);
    part.only_user_certs = true;
    add_spec(cc2, &full);
    add_spec(cc2, &part);
    struct verdict out = check_src(v, &src2, &c, "acme", NOW);
    cr_expect_eq(out.reason, VERDICT_REASON_OK, "%s", out.detail);
    out = check_src(v, &src2, &c, "acme", NOW);
    cr_expect_eq(out.reason, VERDICT_REASON_OK, "%s", out.detail);
    cr_expect_eq(hits(vc), h, "nothing was cached");

    /* A cached verdict whose issuer gains a partition later: the hit cannot
     * be decided by reference and falls back to the full check. */
    struct crl_cache *cc3 = crl_cache_new();
    struct revocation_sources src3 = {.crls = cc3, .cache = vc};
    verdict_cache_clear(vc);
    add_spec(cc3, &full);
    cr_assert_eq(check_src(v, &src3, &c, "acme", NOW).reason, VERDICT_REASON_OK);
    add_spec(cc3, &part);
    h = hits(vc);
    out = check_src(v, &src3, &c, "acme", NOW);
    cr_expect_eq(out.reason, VERDICT_REASON_OK, "%s", out.detail);
    cr_expect_eq(hits(vc), h + 1, "found in the verdict cache, then checked in full");
    crl_cache_free(cc3);

    validator_free(v);
    chain_free(&c);
    crl_cache_free(cc);
    crl_cache_free(cc2);
    verdict_cache_free(vc);
    certval_rcu_reader_unregister();
    X509_free(leaf);
}

Test(validator, verdict_cache_hit_rechecks_revocation_and_time)
{
    uint64_t serial = 0x4242;
    X509 *leaf = tenant_leaf_ex("acme", NOW - DAY, NOW + 30 * DAY, "1.3.6.1.5.5.7.3.2",
                                &g_tenant_ca, serial);
    struct test_cfg t;
    struct chain c = {0};
    char err[256];

    certval_rcu_reader_register();
    struct crl_cache *cc = crl_cache_new();
    struct deny_list *dl = deny_list_new();
    struct verdict_cache *vc = verdict_cache_new(1000, 1 << 20);
    struct revocation_sources src = {.crls = cc, .deny = dl, .cache = vc};
    cr_assert(cc && dl && vc);
    add_crl(cc, NULL, 0, NOW + 7 * DAY);
    default_cfg(&t);
    t.profiles[0].revocation = REVOCATION_LEAF;
    struct validator *v = build(&t);
    chain_add(&c, leaf);

    struct verdict first = check_src(v, &src, &c, "acme", NOW);
    cr_assert_eq(first.reason, VERDICT_REASON_OK, "%s", first.detail);
    cr_assert_eq(hits(vc), 0);
    struct verdict again = check_src(v, &src, &c, "acme", NOW);
    cr_assert_eq(hits(vc), 1, "second check is a cache hit");
    cr_expect_eq(again.decision, first.decision);
    cr_expect_str_eq(again.serial_hex, first.serial_hex);
    cr_expect_str_eq(again.profile, "tenant");
    /* Another tenant claim is another key: a full check, WRONG_TENANT. */
    expect_deny(check_src(v, &src, &c, "globex", NOW), VERDICT_REASON_WRONG_TENANT);

    /* A newer CRL listing the serial: the next hit is denied at once. */
    X509_CRL *crl = pki_crl_new(g_tenant_ca.cert, g_tenant_ca.key, &serial, 1, NOW - DAY / 2,
                                NOW + 7 * DAY, 2);
    cr_assert_eq(crl_cache_add_crl(cc, crl, g_tenant_ca.cert, "test", err, sizeof(err)), 0, "%s",
                 err);
    X509_CRL_free(crl);
    uint64_t h = hits(vc);
    struct verdict revoked = check_src(v, &src, &c, "acme", NOW);
    expect_deny(revoked, VERDICT_REASON_REVOKED);
    cr_expect_eq(hits(vc), h + 1, "the revocation came from a cache hit");
    validator_free(v);
    chain_free(&c);
    crl_cache_free(cc);
    deny_list_free(dl);
    verdict_cache_free(vc);
    certval_rcu_reader_unregister();
    X509_free(leaf);
}

Test(validator, verdict_cache_respects_expiry_and_deny_list)
{
    X509 *leaf = tenant_leaf_ex("acme", NOW - DAY, NOW + 30 * DAY, "1.3.6.1.5.5.7.3.2",
                                &g_tenant_ca, 0x777);
    struct test_cfg t;
    struct chain c = {0};
    uint8_t issuer[32], serial[DENY_LIST_SERIAL_MAX];
    size_t serial_len;
    char err[256];

    certval_rcu_reader_register();
    struct deny_list *dl = deny_list_new();
    struct verdict_cache *vc = verdict_cache_new(1000, 1 << 20);
    struct revocation_sources src = {.deny = dl, .cache = vc};
    default_cfg(&t); /* revocation none: only the deny list applies */
    struct validator *v = build(&t);
    chain_add(&c, leaf);

    cr_assert_eq(check_src(v, &src, &c, "acme", NOW).reason, VERDICT_REASON_OK);
    cr_assert_eq(check_src(v, &src, &c, "acme", NOW).reason, VERDICT_REASON_OK);
    cr_assert_eq(hits(vc), 1);
    /* Past the leaf's notAfter (+ skew): not a hit, and EXPIRED. */
    struct verdict expired = check_src(v, &src, &c, "acme", NOW + 31 * DAY);
    expect_deny(expired, VERDICT_REASON_EXPIRED);
    cr_expect_eq(hits(vc), 1);

    /* Emergency deny by issuer + serial, then by leaf hash, on cache hits. */
    deny_list_issuer_key(issuer, X509_get_subject_name(g_tenant_ca.cert));
    cr_assert_eq(deny_list_serial_content(serial, &serial_len, X509_get0_serialNumber(leaf)), 0);
    cr_assert_eq(deny_list_add_serial(dl, issuer, serial, serial_len, "lost laptop", NOW, 0, err,
                                      sizeof(err)), 0, "%s", err);
    struct verdict out = check_src(v, &src, &c, "acme", NOW);
    expect_deny(out, VERDICT_REASON_REVOKED);
    cr_expect_neq(strstr(out.detail, "lost laptop"), NULL, "%s", out.detail);
    cr_assert_eq(deny_list_remove_serial(dl, issuer, serial, serial_len, err, sizeof(err)), 0);
    cr_expect_eq(check_src(v, &src, &c, "acme", NOW).reason, VERDICT_REASON_OK,
                 "removal takes effect");
    cr_assert_eq(deny_list_add_leaf(dl, out.leaf_sha256, "stolen", NOW, 0, err, sizeof(err)), 0);
    expect_deny(check_src(v, &src, &c, "acme", NOW), VERDICT_REASON_REVOKED);
    /* And without the cache, the same answers. */
    src.cache = NULL;
    expect_deny(check_src(v, &src, &c, "acme", NOW), VERDICT_REASON_REVOKED);

    validator_free(v);
    chain_free(&c);
    deny_list_free(dl);
    verdict_cache_free(vc);
    certval_rcu_reader_unregister();
    X509_free(leaf);
}

Test(validator, config_errors)
{
    struct test_cfg t;
    struct validator *v = NULL;
    char err[256] = "";
    char missing[] = "/nonexistent/anchor.pem";
    default_cfg(&t);
    t.anchors[0] = missing;
    cr_expect_eq(validator_new(&v, &t.vc, 1, err, sizeof(err)), -1);
    cr_expect_null(v);
    cr_expect_neq(strstr(err, "/nonexistent/anchor.pem"), NULL, "%s", err);
    default_cfg(&t);
    t.profiles[0].tenant_id.value = "1.2.bogus";
    cr_expect_eq(validator_new(&v, &t.vc, 1, err, sizeof(err)), -1);
    default_cfg(&t);
    v = build(&t);
    cr_expect_eq(validator_version(v), 7);
    validator_free(v);
    validator_free(NULL);
}
