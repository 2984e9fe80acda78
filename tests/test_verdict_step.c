/* The verdict-cache step (validator/verdict_step.c): the key of a chain,
 * the entry format, and through validator_try_cached /
 * validator_check_chain what a hit answers: the stored verdict, unless the
 * revocation data of its path says otherwise now, under the profile's
 * stale policy.
 *
 * PKI: root "Root R1" -> "Tenant CA" (tenant profile "tenant", tenant id =
 * subject O, revocation of the leaf checked); tenant "acme". */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/mem.h>
#include <openssl/x509.h>

#include "crl_cache.h"
#include "deny_list.h"
#include "pki_gen.h"
#include "rcu_reader.h"
#include "validator.h"
#include "verdict.h"
#include "verdict_cache.h"
#include "verdict_step.h"

#define NOW 1795305600 /* 2026-11-22 */
#define DAY 86400
#define LEAF_SERIAL 0x4711

/* ---- key and entry format ------------------------------------------------ */

static const uint8_t leaf_der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
static const uint8_t ca_der[] = {0x30, 0x03, 0x02, 0x01, 0x02};

static struct chain_input input(const struct cv_bytes *certs, size_t n, const char *tenant,
                                const char *device)
{
    struct chain_input in = {
        .id = 7,
        .certs = certs,
        .n_certs = n,
        .tenant_id = {(const uint8_t *)tenant, strlen(tenant)},
        .device_id = {(const uint8_t *)device, strlen(device)},
    };
    return in;
}

static void sample_verdict(struct verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->decision = DECISION_REQUIRE_PASSWORD;
    v->reason = VERDICT_REASON_OK;
    v->kind = CERT_KIND_DEVICE;
    v->has_leaf_sha256 = true;
    for (int i = 0; i < 32; i++)
        v->leaf_sha256[i] = (uint8_t)(i * 7);
    v->not_after_unix = NOW + DAY;
    snprintf(v->detail, sizeof(v->detail), "detail text");
    memset(v->subject, 'S', sizeof(v->subject) - 1); /* longest strings */
    memset(v->issuer, 'I', sizeof(v->issuer) - 1);
    memset(v->serial_hex, 'f', sizeof(v->serial_hex) - 1);
    memset(v->profile, 'p', sizeof(v->profile) - 1);
}

static void sample_refs(struct verdict_step_refs *r)
{
    memset(r, 0, sizeof(*r));
    r->n = 2;
    r->profile = 3;
    for (size_t i = 0; i < 2; i++) {
        memset(r->ref[i].issuer_name_sha256, 0x10 + (int)i, 32);
        memset(r->ref[i].issuer_key_sha256, 0x20 + (int)i, 32);
        r->ref[i].serial_len = i == 0 ? 1 : VERDICT_STEP_SERIAL_MAX;
        memset(r->ref[i].serial, 0x30 + (int)i, r->ref[i].serial_len);
    }
}

Test(verdict_step, entry_round_trip)
{
    struct verdict_cache *c = verdict_cache_new(100, 1 << 20);
    struct verdict_step_refs refs, got_refs;
    struct verdict v, got;
    uint8_t key[32];
    struct cv_bytes one = {leaf_der, sizeof(leaf_der)};
    struct chain_input in = input(&one, 1, "t", "d");

    verdict_step_key(key, &in, 1);
    sample_verdict(&v);
    sample_refs(&refs);
    cr_assert_not(verdict_step_get(c, &got, &got_refs, key, NOW));
    cr_assert_eq(got.decision, DECISION_UNSPECIFIED, "a miss zeroes the verdict");
    cr_assert(verdict_step_put(c, key, &v, &refs, NOW - 10, NOW + 10));
    cr_assert(verdict_step_get(c, &got, &got_refs, key, NOW));
    cr_assert_arr_eq(&got, &v, sizeof(v), "every field of the verdict comes back");
    cr_assert_eq(got_refs.n, 2);
    cr_assert_eq(got_refs.profile, 3);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_arr_eq(got_refs.ref[i].issuer_name_sha256, refs.ref[i].issuer_name_sha256, 32);
        cr_assert_arr_eq(got_refs.ref[i].issuer_key_sha256, refs.ref[i].issuer_key_sha256, 32);
        cr_assert_eq(got_refs.ref[i].serial_len, refs.ref[i].serial_len);
        cr_assert_arr_eq(got_refs.ref[i].serial, refs.ref[i].serial, refs.ref[i].serial_len);
    }
    cr_assert(verdict_step_get(c, &got, NULL, key, NOW), "references are optional");
    /* Out-of-bounds references are refused; strings without a NUL are cut. */
    refs.n = VERDICT_STEP_MAX_REFS + 1;
    cr_assert_not(verdict_step_put(c, key, &v, &refs, NOW, NOW));
    refs.n = 1;
    refs.ref[0].serial_len = VERDICT_STEP_SERIAL_MAX + 1;
    cr_assert_not(verdict_step_put(c, key, &v, &refs, NOW, NOW));
    memset(v.detail, 'x', sizeof(v.detail));
    cr_assert(verdict_step_put(c, key, &v, NULL, NOW, NOW));
    cr_assert(verdict_step_get(c, &got, &got_refs, key, NOW));
    cr_assert_eq(strlen(got.detail), sizeof(got.detail) - 1);
    cr_assert_eq(got_refs.n, 0);
    verdict_cache_free(c);
}

Test(verdict_step, key_separates_inputs)
{
    struct cv_bytes ab[2] = {{leaf_der, sizeof(leaf_der)}, {ca_der, sizeof(ca_der)}};
    struct cv_bytes ba[2] = {{ca_der, sizeof(ca_der)}, {leaf_der, sizeof(leaf_der)}};
    struct cv_bytes a1[1] = {{leaf_der, sizeof(leaf_der)}};
    struct chain_input in = input(ab, 2, "tenant", "device");
    uint8_t base[32], k[32];

    verdict_step_key(base, &in, 5);
    /* The same input gives the same key; id and user_id are not part of it. */
    in.id = 12345;
    in.user_id = (struct cv_bytes){(const uint8_t *)"u", 1};
    verdict_step_key(k, &in, 5);
    cr_assert_arr_eq(k, base, 32);

    struct chain_input variants[] = {
        input(ab, 2, "tenant2", "device"), input(ab, 2, "tenant", "device2"),
        input(ba, 2, "tenant", "device"),  input(a1, 1, "tenant", "device"),
        input(ab, 2, "tenantd", "evice"), /* moving bytes between fields */
        input(ab, 2, "", "tenantdevice"),
    };
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        verdict_step_key(k, &variants[i], 5);
        cr_assert(memcmp(k, base, 32) != 0, "variant %zu collides", i);
    }
    verdict_step_key(k, &in, 6); /* configuration version */
    cr_assert(memcmp(k, base, 32) != 0);
}

/* Ids and versions past one LEB128 byte (127): moving the boundary between
 * tenant and device, or between the device and the version, must still
 * change the key. */
Test(verdict_step, key_separates_long_ids)
{
    struct cv_bytes a1[1] = {{leaf_der, sizeof(leaf_der)}};
    char t[301], d[301];
    uint8_t k[6][32];

    memset(t, 'a', sizeof(t) - 1);
    t[300] = '\0';
    memcpy(d, t, sizeof(d));
    struct chain_input in[] = {
        input(a1, 1, t, ""),
        input(a1, 1, t + 1, "a"),
        input(a1, 1, t + 172, d + 172),
        input(a1, 1, t + 173, d + 171),
        input(a1, 1, "", t),
        input(a1, 1, "", t),
    };
    for (size_t i = 0; i < 5; i++)
        verdict_step_key(k[i], &in[i], 1);
    verdict_step_key(k[5], &in[5], 300);
    for (size_t i = 0; i < 6; i++)
        for (size_t j = i + 1; j < 6; j++)
            cr_assert(memcmp(k[i], k[j], 32) != 0, "inputs %zu and %zu collide", i, j);
}

/* The per-thread memo of certificate digests answers only for the same
 * bytes: once a chain's certificates are remembered, a certificate of the
 * same length with one byte changed still gets its own key. */
Test(verdict_step, key_memo_compares_bytes)
{
    uint8_t flipped[sizeof(ca_der)];
    struct cv_bytes ab[2] = {{leaf_der, sizeof(leaf_der)}, {ca_der, sizeof(ca_der)}};
    struct cv_bytes af[2] = {{leaf_der, sizeof(leaf_der)}, {flipped, sizeof(flipped)}};
    struct chain_input in = input(ab, 2, "tenant", "device");
    struct chain_input inf = input(af, 2, "tenant", "device");
    uint8_t first[32], k[32], kf[32];

    memcpy(flipped, ca_der, sizeof(flipped));
    flipped[sizeof(flipped) / 2] ^= 0x01;
    verdict_step_key(first, &in, 5);
    for (int i = 0; i < 4; i++) { /* remembered from the second sighting on */
        verdict_step_key(k, &in, 5);
        cr_assert_arr_eq(k, first, 32, "key changed once remembered (round %d)", i);
    }
    verdict_step_key(kf, &inf, 5);
    cr_assert(memcmp(kf, first, 32) != 0, "a changed certificate of the same length collides");
    verdict_step_key(k, &inf, 5);
    cr_assert_arr_eq(k, kf, 32);
    verdict_step_key(k, &in, 5);
    cr_assert_arr_eq(k, first, 32);
}

/* ---- the step, through the validator ---------------------------------------- */

struct ca {
    EVP_PKEY *key;
    X509 *cert;
};

static char g_dir[64], g_root_file[128], g_tenant_file[128];
static struct ca g_root, g_tenant_ca;
static X509 *g_leaf;
static uint8_t *g_leaf_der;
static struct cv_bytes g_chain[1];

static X509 *issue(const struct pki_cert_spec *s, EVP_PKEY *key, const struct ca *issuer)
{
    X509 *x = pki_issue(s, key, issuer ? issuer->cert : NULL, issuer ? issuer->key : key);
    cr_assert_not_null(x, "pki_issue failed");
    return x;
}

static struct ca make_ca(const char *cn, const struct ca *issuer, char *file, size_t file_len,
                         const char *name)
{
    struct pki_cert_spec s = {.cn = cn, .o = "certval test", .not_before = NOW - 365 * DAY,
                              .not_after = NOW + 1825 * DAY, .is_ca = true, .path_len = -1,
                              .key_usage = PKI_KU_KEY_CERT_SIGN | PKI_KU_CRL_SIGN};
    struct ca ca;
    char err[256];

    ca.key = pki_key_new(PKI_KEY_P256);
    cr_assert_not_null(ca.key);
    ca.cert = issue(&s, ca.key, issuer);
    snprintf(file, file_len, "%s/%s", g_dir, name);
    cr_assert_eq(pki_write_cert_pem(file, ca.cert, false, err, sizeof(err)), 0, "%s", err);
    return ca;
}

static void setup(void)
{
    struct pki_cert_spec s = {.cn = "alice", .o = "acme", .not_before = NOW - DAY,
                              .not_after = NOW + 30 * DAY, .path_len = -1,
                              .key_usage = PKI_KU_DIGITAL_SIGNATURE, .eku = "1.3.6.1.5.5.7.3.2",
                              .serial = LEAF_SERIAL};
    EVP_PKEY *k;
    int len;

    snprintf(g_dir, sizeof(g_dir), "/tmp/certval-vstep-XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir));
    g_root = make_ca("Root R1", NULL, g_root_file, sizeof(g_root_file), "root.pem");
    g_tenant_ca = make_ca("Tenant CA", &g_root, g_tenant_file, sizeof(g_tenant_file), "ca.pem");
    k = pki_key_new(PKI_KEY_P256);
    g_leaf = issue(&s, k, &g_tenant_ca);
    EVP_PKEY_free(k);
    len = i2d_X509(g_leaf, &g_leaf_der);
    cr_assert_gt(len, 0);
    g_chain[0] = (struct cv_bytes){g_leaf_der, (size_t)len};
    certval_rcu_reader_register();
}

static void teardown(void)
{
    char cmd[128];

    certval_rcu_reader_unregister();
    OPENSSL_free(g_leaf_der);
    X509_free(g_leaf);
    X509_free(g_tenant_ca.cert);
    EVP_PKEY_free(g_tenant_ca.key);
    X509_free(g_root.cert);
    EVP_PKEY_free(g_root.key);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(verdict_step, .init = setup, .fini = teardown);

/* A validator with one tenant profile that checks the leaf's revocation,
 * with CRLs tolerated |grace| seconds past nextUpdate under |on_stale|. */
static struct validator *build(enum stale_policy on_stale, uint32_t grace)
{
    static char *anchors[1], *issuers[1];
    struct profile_config p = {.name = "tenant", .kind = CERT_KIND_TENANT,
                               .issuer_files = issuers, .n_issuer_files = 1,
                               .tenant_id = {ID_SOURCE_SUBJECT_ATTR, "O"},
                               .revocation = REVOCATION_LEAF, .crl_grace_seconds = grace,
                               .on_stale = on_stale};
    struct tenant_config t = {"acme", false, false};
    struct validator_config vc = {.anchor_files = anchors, .n_anchor_files = 1, .profiles = &p,
                                  .n_profiles = 1, .tenants = &t, .n_tenants = 1};
    struct validator *v = NULL;
    char err[256];

    anchors[0] = g_root_file;
    issuers[0] = g_tenant_file;
    cr_assert_eq(validator_new(&v, &vc, 7, err, sizeof(err)), 0, "validator_new: %s", err);
    return v;
}

/* add_crl adds a CRL of the tenant CA listing |serial| (0 = none) that
 * is current from NOW - DAY to |next_update|. */
static void add_crl(struct crl_cache *cc, uint64_t serial, int64_t next_update, uint64_t number)
{
    X509_CRL *crl = pki_crl_new(g_tenant_ca.cert, g_tenant_ca.key, &serial, serial != 0,
                                NOW - DAY + (int64_t)number, next_update, number);
    char err[256];

    cr_assert_not_null(crl);
    cr_assert_eq(crl_cache_add_crl(cc, crl, g_tenant_ca.cert, "test", err, sizeof(err)), 0, "%s",
                 err);
    X509_CRL_free(crl);
}

static struct chain_input leaf_input(void)
{
    struct chain_input in = {.id = 42, .certs = g_chain, .n_certs = 1,
                             .tenant_id = {(const uint8_t *)"acme", 4}};
    return in;
}

static struct verdict check(const struct validator *v, const struct revocation_sources *src,
                            int64_t now)
{
    struct chain_input in = leaf_input();
    struct verdict out;

    validator_check_chain(v, src, &out, &in, now);
    cr_assert_eq(out.id, 42);
    return out;
}

/* try_cached returns whether the cache answered, with the verdict in |out|. */
static bool try_cached(const struct validator *v, const struct revocation_sources *src,
                       struct verdict *out, int64_t now)
{
    struct chain_input in = leaf_input();

    return validator_try_cached(v, src, out, &in, now);
}

Test(verdict_step, hit_returns_the_stored_verdict)
{
    struct crl_cache *cc = crl_cache_new();
    struct verdict_cache *vc = verdict_cache_new(100, 1 << 20);
    struct revocation_sources src = {.crls = cc, .cache = vc};
    struct validator *v = build(STALE_FAIL_CLOSED, 0);
    struct verdict first, hit;

    add_crl(cc, 0, NOW + 7 * DAY, 1);
    cr_assert_not(try_cached(v, &src, &hit, NOW), "nothing cached yet");
    cr_assert_eq(hit.decision, DECISION_UNSPECIFIED, "a miss leaves the verdict zeroed");
    first = check(v, &src, NOW);
    cr_assert_eq(first.reason, VERDICT_REASON_OK, "%s", first.detail);
    cr_assert(try_cached(v, &src, &hit, NOW), "the full check's verdict was stored");
    cr_assert_arr_eq(&hit, &first, sizeof(hit), "the hit is the stored verdict, field for field");
    validator_free(v);
    verdict_cache_free(vc);
    crl_cache_free(cc);
}

/* The server's miss path: the key of the transport thread's probe is
 * carried to the full check, which stores under it without hashing again;
 * the next lookup (which hashes afresh) must find that entry. */
Test(verdict_step, carried_key_stores_what_a_lookup_finds)
{
    struct crl_cache *cc = crl_cache_new();
    struct verdict_cache *vc = verdict_cache_new(100, 1 << 20);
    struct revocation_sources src = {.crls = cc, .cache = vc};
    struct validator *v = build(STALE_FAIL_CLOSED, 0);
    struct chain_input in = leaf_input();
    struct validator_key key;
    struct verdict probe, first, hit;
    uint8_t want[32];

    add_crl(cc, 0, NOW + 7 * DAY, 1);
    cr_assert_not(validator_try_cached_key(v, &src, &probe, &key, &in, NOW), "nothing cached yet");
    cr_assert(key.set, "a miss hands back the key it looked up");
    verdict_step_key(want, &in, validator_version(v));
    cr_assert_arr_eq(key.key, want, 32, "the key is the chain's cache key");
    validator_check_chain_keyed(v, &src, &first, &in, NOW, &key);
    cr_assert_eq(first.id, 42);
    cr_assert_eq(first.reason, VERDICT_REASON_OK, "%s", first.detail);
    cr_assert(try_cached(v, &src, &hit, NOW), "the verdict was stored under the carried key");
    cr_assert_arr_eq(&hit, &first, sizeof(hit), "the hit is the stored verdict, field for field");
    validator_free(v);
    verdict_cache_free(vc);
    crl_cache_free(cc);
}

/* Without a cache there is no key to carry, and the keyed check is the
 * plain one. */
Test(verdict_step, no_cache_no_key)
{
    struct crl_cache *cc = crl_cache_new();
    struct revocation_sources src = {.crls = cc};
    struct validator *v = build(STALE_FAIL_CLOSED, 0);
    struct chain_input in = leaf_input();
    struct validator_key key;
    struct verdict out;

    add_crl(cc, 0, NOW + 7 * DAY, 1);
    cr_assert_not(validator_try_cached_key(v, &src, &out, &key, &in, NOW));
    cr_assert_not(key.set);
    validator_check_chain_keyed(v, &src, &out, &in, NOW, &key);
    cr_assert_eq(out.reason, VERDICT_REASON_OK, "%s", out.detail);
    validator_free(v);
    crl_cache_free(cc);
}

Test(verdict_step, changed_revocation_is_not_served_from_the_cache)
{
    struct crl_cache *cc = crl_cache_new();
    struct deny_list *dl = deny_list_new();
    struct verdict_cache *vc = verdict_cache_new(100, 1 << 20);
    struct revocation_sources src = {.crls = cc, .deny = dl, .cache = vc};
    struct validator *v = build(STALE_FAIL_CLOSED, 0);
    uint8_t issuer[32], serial[DENY_LIST_SERIAL_MAX];
    size_t serial_len;
    struct verdict out;
    char err[256];

    add_crl(cc, 0, NOW + 7 * DAY, 1);
    cr_assert_eq(check(v, &src, NOW).reason, VERDICT_REASON_OK);
    cr_assert(try_cached(v, &src, &out, NOW));
    cr_assert_eq(out.reason, VERDICT_REASON_OK);

    /* The emergency deny list gains the leaf's serial: the hit is denied. */
    deny_list_issuer_key(issuer, X509_get_subject_name(g_tenant_ca.cert));
    cr_assert_eq(deny_list_serial_content(serial, &serial_len, X509_get0_serialNumber(g_leaf)), 0);
    cr_assert_eq(deny_list_add_serial(dl, issuer, serial, serial_len, "lost", NOW, 0, err,
                                      sizeof(err)), 0, "%s", err);
    cr_assert(try_cached(v, &src, &out, NOW));
    cr_expect_eq(out.reason, VERDICT_REASON_REVOKED, "%s", out.detail);
    cr_assert_eq(deny_list_remove_serial(dl, issuer, serial, serial_len, err, sizeof(err)), 0);
    cr_assert(try_cached(v, &src, &out, NOW));
    cr_expect_eq(out.reason, VERDICT_REASON_OK, "%s", out.detail);

    /* A newer CRL lists the leaf: the hit is denied, as the full check is. */
    add_crl(cc, LEAF_SERIAL, NOW + 7 * DAY, 2);
    cr_assert(try_cached(v, &src, &out, NOW));
    cr_expect_eq(out.decision, DECISION_DENY);
    cr_expect_eq(out.reason, VERDICT_REASON_REVOKED, "%s", out.detail);
    src.cache = NULL;
    cr_expect_eq(check(v, &src, NOW).reason, VERDICT_REASON_REVOKED);

    validator_free(v);
    verdict_cache_free(vc);
    deny_list_free(dl);
    crl_cache_free(cc);
}

/* A CRL current at the first check and stale (past nextUpdate + grace) at
 * the hit: fail-closed denies REVOCATION_STALE, allow-warn keeps the
 * verdict with the warning; either way the same answer as a full check. */
Test(verdict_step, stale_policy_is_honoured_on_a_hit)
{
    static const struct {
        enum stale_policy on_stale;
        enum verdict_reason reason;
    } cases[] = {
        {STALE_FAIL_CLOSED, VERDICT_REASON_REVOCATION_STALE},
        {STALE_ALLOW_WARN, VERDICT_REASON_OK},
    };
    const int64_t later = NOW + 2 * DAY; /* nextUpdate NOW + DAY, grace one hour */

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct crl_cache *cc = crl_cache_new();
        struct verdict_cache *vc = verdict_cache_new(100, 1 << 20);
        struct revocation_sources src = {.crls = cc, .cache = vc}, full = {.crls = cc};
        struct validator *v = build(cases[i].on_stale, 3600);
        struct verdict out, uncached;

        add_crl(cc, 0, NOW + DAY, 1);
        cr_assert_eq(check(v, &src, NOW).reason, VERDICT_REASON_OK);
        cr_assert(try_cached(v, &src, &out, NOW + DAY + 3600), "case %zu: within grace", i);
        cr_expect_eq(out.reason, VERDICT_REASON_OK, "case %zu: %s", i, out.detail);
        cr_expect_str_eq(out.detail, "", "case %zu", i);
        cr_assert(try_cached(v, &src, &out, later), "case %zu: answered from the cache", i);
        cr_expect_eq(out.reason, cases[i].reason, "case %zu: %s", i, out.detail);
        uncached = check(v, &full, later);
        cr_expect_eq(uncached.reason, cases[i].reason, "case %zu: %s", i, uncached.detail);
        if (cases[i].reason == VERDICT_REASON_OK) {
            cr_expect_str_eq(out.detail, "warning: stale CRL for leaf at depth 0");
            cr_expect_str_eq(out.detail, uncached.detail, "the hit says what a full check says");
        }
        validator_free(v);
        verdict_cache_free(vc);
        crl_cache_free(cc);
    }
}
