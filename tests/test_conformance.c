/* The strict rules beyond RFC 5280 section 6 (docs/conformance.md, "Strict
 * rules"): algorithm and key policy, RFC 5280 structure MUSTs and the
 * compat switch. Every case is a three-certificate path made by
 * validator/pki_gen.h (root -> CA -> leaf, each level with its own key type
 * and generator knobs) and checked twice: through path_validate, the code
 * behind `certvalctl verify`, and through validator_check_chain, the
 * service, with the case's policy on the profile. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/x509.h>

#include "config.h"
#include "crl_cache.h"
#include "rcu_reader.h"
#include "verdict_cache.h"
#include "pki_gen.h"
#include "support/clock.h"
#include "support/pki_builders.h"
#include "support/tmpdir.h"
#include "validator.h"
#include "verdict.h"

static char g_dir[TS_TMPDIR_MAX];

static void setup(void)
{
    ts_tmpdir_make(g_dir, "conformance");
}

static void teardown(void)
{
    ts_tmpdir_remove(g_dir);
}

TestSuite(conformance, .init = setup, .fini = teardown);

enum { ROOT = 0, CA = 1, LEAF = 2 };

/* One level of a generated path: its key and the generator knobs that make
 * it break (or keep) a rule. */
struct level {
    enum pki_key_type key;
    struct pki_cert_spec knobs; /* only the conformance knobs are read */
};

static void apply_knobs(struct pki_cert_spec *s, const struct pki_cert_spec *k)
{
    s->sig_digest_nid = k->sig_digest_nid;
    s->explicit_ec_params = k->explicit_ec_params;
    s->omit_ext = k->omit_ext;
    s->flip_critical = k->flip_critical;
    s->critical_oid = k->critical_oid;
    s->version = k->version;
    s->serial_raw = k->serial_raw;
    s->serial_raw_len = k->serial_raw_len;
    s->empty_subject = k->empty_subject;
    s->printable_subject = k->printable_subject;
    if (k->key_usage != 0)
        s->key_usage = k->key_usage;
    if (k->cn != NULL)
        s->cn = k->cn;
    s->san_dns = k->san_dns;
    s->n_san_dns = k->n_san_dns;
    s->san_ips = k->san_ips;
    s->n_san_ips = k->n_san_ips;
    s->san_emails = k->san_emails;
    s->n_san_emails = k->n_san_emails;
    s->nc_permitted = k->nc_permitted;
    s->n_nc_permitted = k->n_nc_permitted;
    s->nc_excluded = k->nc_excluded;
    s->n_nc_excluded = k->n_nc_excluded;
}

static void make_path(struct ts_chain *p, const struct level lv[3])
{
    static const char *const cns[3] = {"Conformance Root", "Conformance CA", "alice"};
    static const char *const tenant_uri[1] = {"urn:tenant:acme"};
    struct pki_cert_spec s[3];
    enum pki_key_type keys[3];

    for (int i = 0; i < 3; i++) {
        if (i == LEAF) {
            s[i] = ts_leaf_spec(cns[i], TS_NOW - 30 * TS_DAY, TS_NOW + 300 * TS_DAY);
            s[i].o = "acme";
            s[i].san_uris = tenant_uri;
            s[i].n_san_uris = 1;
        } else {
            s[i] = ts_ca_spec(cns[i], TS_NOW - 30 * TS_DAY, TS_NOW + 3650 * TS_DAY);
        }
        apply_knobs(&s[i], &lv[i].knobs);
        keys[i] = lv[i].key;
    }
    ts_chain_build(p, 3, s, keys);
}

/* via_path_validate: what `certvalctl verify` computes. */
static enum verdict_reason via_path_validate_opts(const struct ts_chain *p,
                                                  const struct path_options *opts, char *detail,
                                                  size_t len)
{
    STACK_OF(X509) *anchors = sk_X509_new_null(), *untrusted = sk_X509_new_null();
    struct path_options o = *opts;
    struct path_result res;
    enum verdict_reason got;

    cr_assert(sk_X509_push(anchors, p->cert[ROOT]));
    cr_assert(sk_X509_push(untrusted, p->cert[CA]));
    cr_assert_eq(path_validate(&res, &o, p->cert[LEAF], anchors, untrusted, NULL), 0, "%s",
                 res.detail);
    got = res.valid ? VERDICT_REASON_OK : res.reason;
    snprintf(detail, len, "%s", res.detail);
    path_result_clear(&res);
    sk_X509_free(anchors);
    sk_X509_free(untrusted);
    return got;
}

static enum verdict_reason via_path_validate(const struct ts_chain *p,
                                             const struct conformance_policy *pol, char *detail,
                                             size_t len)
{
    struct path_options o = {.at = TS_NOW, .purpose = PATH_PURPOSE_CLIENT, .conformance = *pol};
    return via_path_validate_opts(p, &o, detail, len);
}

/* tenant_service: the service every case here runs, a validator with one
 * "tenant" profile whose issuer is |issuer| under the anchor |anchor| (both
 * written to g_dir), and the tenant "acme". |prof| and |vc| carry the
 * case's knobs (conformance, revocation, max_depth, explicit_policy...);
 * the tenant id comes from the SAN URI unless |prof| says otherwise.
 * validator_new reads the files and copies the names, so nothing here
 * outlives the call. */
static struct validator *tenant_service(X509 *anchor, X509 *issuer, struct profile_config prof,
                                        struct validator_config vc)
{
    char root[128], ca[128], err[256];
    char *anchors[1] = {root}, *issuers[1] = {ca};
    struct tenant_config tenant = {"acme", false, false};
    struct validator *v = NULL;

    snprintf(root, sizeof(root), "%s/root.pem", g_dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", g_dir);
    cr_assert_eq(pki_write_cert_pem(root, anchor, false, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(pki_write_cert_pem(ca, issuer, false, err, sizeof(err)), 0, "%s", err);
    prof.name = "tenant";
    prof.kind = CERT_KIND_TENANT;
    prof.issuer_files = issuers;
    prof.n_issuer_files = 1;
    if (prof.tenant_id.type == ID_SOURCE_NONE)
        prof.tenant_id = (struct id_source){ID_SOURCE_SAN_URI, "urn:tenant:"};
    vc.anchor_files = anchors;
    vc.n_anchor_files = 1;
    vc.profiles = &prof;
    vc.n_profiles = 1;
    vc.tenants = &tenant;
    vc.n_tenants = 1;
    cr_assert_eq(validator_new(&v, &vc, 1, err, sizeof(err)), 0, "%s", err);
    return v;
}

/* service_check: validator_check_chain at |at| on a request carrying
 * |certs| (|n| of them, leaf first) for the tenant "acme". */
static void service_check(struct verdict *out, struct validator *v,
                          const struct revocation_sources *src, X509 *const *certs, size_t n,
                          int64_t at)
{
    uint8_t *der[8] = {NULL};
    struct cv_bytes items[8];
    struct chain_input in = {
        .id = 1, .certs = items, .n_certs = n, .tenant_id = {(const uint8_t *)"acme", 4}};

    cr_assert(n <= 8);
    for (size_t i = 0; i < n; i++) {
        int len = i2d_X509(certs[i], &der[i]);
        cr_assert(len > 0);
        items[i] = (struct cv_bytes){der[i], (size_t)len};
    }
    validator_check_chain(v, src, out, &in, at);
    for (size_t i = 0; i < n; i++)
        OPENSSL_free(der[i]);
}

/* service_reason: a verdict as a reason, OK standing for the profile's
 * normal answer (REQUIRE_PASSWORD). */
static enum verdict_reason service_reason(const struct verdict *out)
{
    return out->decision == DECISION_REQUIRE_PASSWORD ? VERDICT_REASON_OK : out->reason;
}

/* via_service: validator_check_chain with |pol| on the profile; OK stands
 * for the profile's normal answer (REQUIRE_PASSWORD). */
static enum verdict_reason via_service_at(const struct ts_chain *p,
                                          const struct conformance_policy *pol, int64_t at,
                                          bool explicit_policy, char *detail, size_t len)
{
    /* The tenant id: the SAN URI make_path writes, or the subject's O for
     * a leaf without subjectAltName. */
    bool has_san = X509_get_ext_by_NID(p->cert[LEAF], NID_subject_alt_name, -1) >= 0;
    struct profile_config prof = {.tenant_id =
                                      has_san ? (struct id_source){ID_SOURCE_SAN_URI, "urn:tenant:"}
                                              : (struct id_source){ID_SOURCE_SUBJECT_ATTR, "O"},
                                  .conformance = *pol};
    struct validator_config vc = {.explicit_policy = explicit_policy};
    struct validator *v = tenant_service(p->cert[ROOT], p->cert[CA], prof, vc);
    X509 *sent[2] = {p->cert[LEAF], p->cert[CA]};
    struct verdict out;

    service_check(&out, v, NULL, sent, 2, at);
    snprintf(detail, len, "%s", out.detail);
    validator_free(v);
    if (out.decision == DECISION_REQUIRE_PASSWORD && out.reason == VERDICT_REASON_OK)
        return VERDICT_REASON_OK;
    return out.decision == DECISION_DENY ? out.reason : VERDICT_REASON_UNSPECIFIED;
}

static enum verdict_reason via_service(const struct ts_chain *p,
                                       const struct conformance_policy *pol, char *detail,
                                       size_t len)
{
    return via_service_at(p, pol, TS_NOW, false, detail, len);
}

/* One rule, one vector: what the strict default and the relaxed policy
 * (legacy algorithms or compat, as |relaxed| says) must answer. */
struct rule_case {
    const char *name;
    struct level lv[3];
    struct conformance_policy relaxed;
    enum verdict_reason strict_want, relaxed_want;
};

static void run_case(const struct rule_case *rc)
{
    static const struct conformance_policy strict;
    const struct conformance_policy *pols[2] = {&strict, &rc->relaxed};
    const enum verdict_reason wants[2] = {rc->strict_want, rc->relaxed_want};
    struct ts_chain p;
    char detail[VERDICT_DETAIL_MAX];

    make_path(&p, rc->lv);
    for (int k = 0; k < 2; k++) {
        enum verdict_reason a = via_path_validate(&p, pols[k], detail, sizeof(detail));
        cr_expect_eq(a, wants[k], "%s (%s), path_validate: got %s (%s), want %s", rc->name,
                     k ? "relaxed" : "strict", verdict_reason_name(a), detail,
                     verdict_reason_name(wants[k]));
        enum verdict_reason b = via_service(&p, pols[k], detail, sizeof(detail));
        cr_expect_eq(b, wants[k], "%s (%s), service: got %s (%s), want %s", rc->name,
                     k ? "relaxed" : "strict", verdict_reason_name(b), detail,
                     verdict_reason_name(wants[k]));
    }
    ts_chain_free(&p);
}

#define P256 PKI_KEY_P256
#define RSA PKI_KEY_RSA2048
#define L(k)                                                                                       \
    {                                                                                              \
        .key = (k)                                                                                 \
    }
#define K(k, ...)                                                                                  \
    {                                                                                              \
        .key = (k), .knobs = { __VA_ARGS__ }                                                       \
    }
#define LEGACY                                                                                     \
    {                                                                                              \
        .algorithms = ALGORITHMS_LEGACY                                                            \
    }

static const struct rule_case algorithm_cases[] = {
    {"well-formed P-256 path",
     {L(P256), L(P256), L(P256)},
     LEGACY,
     VERDICT_REASON_OK,
     VERDICT_REASON_OK},
    {"well-formed RSA-2048 path",
     {L(RSA), L(RSA), L(RSA)},
     LEGACY,
     VERDICT_REASON_OK,
     VERDICT_REASON_OK},
    {"leaf signed with SHA-1 (RSA)",
     {L(RSA), L(RSA), K(P256, .sig_digest_nid = NID_sha1)},
     LEGACY,
     VERDICT_REASON_WEAK_ALGORITHM,
     VERDICT_REASON_OK},
    {"leaf signed with SHA-1 (ECDSA)",
     {L(P256), L(P256), K(P256, .sig_digest_nid = NID_sha1)},
     LEGACY,
     VERDICT_REASON_WEAK_ALGORITHM,
     VERDICT_REASON_OK},
    {"CA signed with SHA-1",
     {L(RSA), K(RSA, .sig_digest_nid = NID_sha1), L(P256)},
     LEGACY,
     VERDICT_REASON_WEAK_ALGORITHM,
     VERDICT_REASON_OK},
    {"leaf signed with MD5, even under legacy",
     {L(RSA), L(RSA), K(P256, .sig_digest_nid = NID_md5)},
     LEGACY,
     VERDICT_REASON_WEAK_ALGORITHM,
     VERDICT_REASON_WEAK_ALGORITHM},
    {"anchor's own SHA-1 self-signature does not count",
     {K(RSA, .sig_digest_nid = NID_sha1), L(RSA), L(P256)},
     LEGACY,
     VERDICT_REASON_OK,
     VERDICT_REASON_OK},
    {"leaf RSA-1024 key",
     {L(P256), L(P256), L(PKI_KEY_RSA1024)},
     LEGACY,
     VERDICT_REASON_WEAK_ALGORITHM,
     VERDICT_REASON_OK},
    {"CA RSA-1024 key",
     {L(P256), L(PKI_KEY_RSA1024), L(P256)},
     LEGACY,
     VERDICT_REASON_WEAK_ALGORITHM,
     VERDICT_REASON_OK},
    {"leaf RSA key of 2047 bits, even under legacy",
     {L(P256), L(P256), L(PKI_KEY_RSA2047_PUBLIC)},
     LEGACY,
     VERDICT_REASON_WEAK_ALGORITHM,
     VERDICT_REASON_WEAK_ALGORITHM},
    {"leaf on P-224",
     {L(P256), L(P256), L(PKI_KEY_P224)},
     LEGACY,
     VERDICT_REASON_WEAK_ALGORITHM,
     VERDICT_REASON_OK},
    {"leaf on P-384",
     {L(P256), L(P256), L(PKI_KEY_P384)},
     LEGACY,
     VERDICT_REASON_OK,
     VERDICT_REASON_OK},
    {"leaf with explicit EC parameters, even under legacy",
     {L(P256), L(P256), K(P256, .explicit_ec_params = true)},
     LEGACY,
     VERDICT_REASON_WEAK_ALGORITHM,
     VERDICT_REASON_WEAK_ALGORITHM},
    {"leaf DSA key",
     {L(P256), L(P256), L(PKI_KEY_DSA1024)},
     LEGACY,
     VERDICT_REASON_WEAK_ALGORITHM,
     VERDICT_REASON_OK},
    {"RSA-2048 leaf under min_rsa_bits 3072",
     {L(P256), L(P256), L(RSA)},
     {.min_rsa_bits = 3072},
     VERDICT_REASON_OK,
     VERDICT_REASON_WEAK_ALGORITHM},
};

Test(conformance, algorithm_and_key_policy, .timeout = 120)
{
    for (size_t i = 0; i < sizeof(algorithm_cases) / sizeof(algorithm_cases[0]); i++)
        run_case(&algorithm_cases[i]);
}

#define COMPAT                                                                                     \
    {                                                                                              \
        .compat = true                                                                             \
    }
#define CRIT_OID "1.3.6.1.4.1.55555.1"

static const uint8_t serial_zero[] = {0x00};
static const uint8_t serial_negative[] = {0xff, 0x01};
static const uint8_t serial_21[21] = {0x01, 1,  2,  3,  4,  5,  6,  7,  8,  9, 10,
                                      11,   12, 13, 14, 15, 16, 17, 18, 19, 20};
static const uint8_t serial_20[20] = {0x7f, 1,  2,  3,  4,  5,  6,  7,  8,  9,
                                      10,   11, 12, 13, 14, 15, 16, 17, 18, 19};

static const struct rule_case structure_cases[] = {
    {"unknown critical extension in the leaf",
     {L(P256), L(P256), K(P256, .critical_oid = CRIT_OID)},
     COMPAT,
     VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION,
     VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION},
    {"unknown critical extension in the anchor",
     {K(P256, .critical_oid = CRIT_OID), L(P256), L(P256)},
     COMPAT,
     VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION,
     VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION},
    /* BoringSSL does not process a critical AKI or SKI: it refuses them as
     * unhandled critical extensions, compat or not. */
    {"critical AKI in the leaf",
     {L(P256), L(P256), K(P256, .flip_critical = PKI_EXT_AKI)},
     COMPAT,
     VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION,
     VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION},
    {"critical SKI in the CA",
     {L(P256), K(P256, .flip_critical = PKI_EXT_SKI), L(P256)},
     COMPAT,
     VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION,
     VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION},
    {"leaf without AKI",
     {L(P256), L(P256), K(P256, .omit_ext = PKI_EXT_AKI)},
     COMPAT,
     VERDICT_REASON_MALFORMED,
     VERDICT_REASON_OK},
    {"CA without SKI",
     {L(P256), K(P256, .omit_ext = PKI_EXT_SKI), L(P256)},
     COMPAT,
     VERDICT_REASON_MALFORMED,
     VERDICT_REASON_OK},
    {"CA with non-critical basicConstraints",
     {L(P256), K(P256, .flip_critical = PKI_EXT_BASIC_CONSTRAINTS), L(P256)},
     COMPAT,
     VERDICT_REASON_BASIC_CONSTRAINTS,
     VERDICT_REASON_OK},
    {"CA without basicConstraints",
     {L(P256), K(P256, .omit_ext = PKI_EXT_BASIC_CONSTRAINTS), L(P256)},
     COMPAT,
     VERDICT_REASON_BASIC_CONSTRAINTS,
     VERDICT_REASON_BASIC_CONSTRAINTS},
    {"keyCertSign in a leaf",
     {L(P256), L(P256), K(P256, .key_usage = PKI_KU_DIGITAL_SIGNATURE | PKI_KU_KEY_CERT_SIGN)},
     COMPAT,
     VERDICT_REASON_KEY_USAGE,
     VERDICT_REASON_OK},
    {"empty subject, non-critical SAN",
     {L(P256), L(P256), K(P256, .empty_subject = true)},
     COMPAT,
     VERDICT_REASON_MALFORMED,
     VERDICT_REASON_OK},
    {"empty subject, critical SAN",
     {L(P256), L(P256), K(P256, .empty_subject = true, .flip_critical = PKI_EXT_SAN)},
     COMPAT,
     VERDICT_REASON_OK,
     VERDICT_REASON_OK},
    {"serial number zero",
     {L(P256), L(P256), K(P256, .serial_raw = serial_zero, .serial_raw_len = 1)},
     COMPAT,
     VERDICT_REASON_MALFORMED,
     VERDICT_REASON_OK},
    {"negative serial number",
     {L(P256), K(P256, .serial_raw = serial_negative, .serial_raw_len = 2), L(P256)},
     COMPAT,
     VERDICT_REASON_MALFORMED,
     VERDICT_REASON_OK},
    {"serial number of 21 octets",
     {L(P256), L(P256), K(P256, .serial_raw = serial_21, .serial_raw_len = 21)},
     COMPAT,
     VERDICT_REASON_MALFORMED,
     VERDICT_REASON_OK},
    {"serial number of 20 octets",
     {L(P256), L(P256), K(P256, .serial_raw = serial_20, .serial_raw_len = 20)},
     COMPAT,
     VERDICT_REASON_OK,
     VERDICT_REASON_OK},
};

Test(conformance, rfc5280_structure_rules_and_compat, .timeout = 120)
{
    for (size_t i = 0; i < sizeof(structure_cases) / sizeof(structure_cases[0]); i++)
        run_case(&structure_cases[i]);
}

/* Name-constraint vectors: the CA's subtrees and the leaf's SANs. */
#define LIST(...) ((const char *const[]){__VA_ARGS__})
#define N(...) (sizeof(LIST(__VA_ARGS__)) / sizeof(char *))
#define PERMIT(...) .nc_permitted = LIST(__VA_ARGS__), .n_nc_permitted = N(__VA_ARGS__)
#define EXCLUDE(...) .nc_excluded = LIST(__VA_ARGS__), .n_nc_excluded = N(__VA_ARGS__)
#define IPS(...) .san_ips = LIST(__VA_ARGS__), .n_san_ips = N(__VA_ARGS__)
#define EMAILS(...) .san_emails = LIST(__VA_ARGS__), .n_san_emails = N(__VA_ARGS__)
#define DNS(...) .san_dns = LIST(__VA_ARGS__), .n_san_dns = N(__VA_ARGS__)
#define COMMA ,
#define NC_CASE(name, ca, leaf, want)                                                              \
    {                                                                                              \
        name, {L(P256), K(P256, ca), K(P256, leaf)}, COMPAT, want, want                            \
    }
#define NC VERDICT_REASON_NAME_CONSTRAINTS

static const struct rule_case nc_cases[] = {
    NC_CASE("IPv4 in permitted 10/8", PERMIT("ip:10.0.0.0/8"), IPS("10.1.2.3"), VERDICT_REASON_OK),
    NC_CASE("IPv4 outside permitted 10/8", PERMIT("ip:10.0.0.0/8"), IPS("11.1.2.3"), NC),
    NC_CASE("IPv4 in excluded 10.1/16", EXCLUDE("ip:10.1.0.0/16"), IPS("10.1.2.3"), NC),
    NC_CASE("IPv4 next to excluded 10.1/16", EXCLUDE("ip:10.1.0.0/16"), IPS("10.2.0.1"),
            VERDICT_REASON_OK),
    NC_CASE("IPv6 in permitted 2001:db8::/32", PERMIT("ip:2001:db8::/32"), IPS("2001:db8::1"),
            VERDICT_REASON_OK),
    NC_CASE("IPv6 outside permitted 2001:db8::/32", PERMIT("ip:2001:db8::/32"), IPS("2001:db9::1"),
            NC),
    NC_CASE("IPv6 in excluded 2001:db8:1::/48", EXCLUDE("ip:2001:db8:1::/48"), IPS("2001:db8:1::5"),
            NC),
    NC_CASE("IPv6 name under an IPv4-only permitted set", PERMIT("ip:10.0.0.0/8"),
            IPS("2001:db8::1"), NC),
    NC_CASE("second IP outside permitted", PERMIT("ip:10.0.0.0/8"), IPS("10.0.0.1", "192.0.2.1"),
            NC),
    NC_CASE("e-mail after an IP: host outside permitted",
            PERMIT("ip:10.0.0.0/8", "email:example.com"),
            IPS("10.1.2.3") COMMA EMAILS("a@other.com"), NC),
    NC_CASE("e-mail after an IP: subdomain is not the host",
            PERMIT("ip:10.0.0.0/8", "email:example.com"),
            IPS("10.1.2.3") COMMA EMAILS("a@mail.example.com"), NC),
    NC_CASE("e-mail after an IP: .domain takes subdomains",
            PERMIT("ip:10.0.0.0/8", "email:.example.com"),
            IPS("10.1.2.3") COMMA EMAILS("a@mail.EXAMPLE.com"), VERDICT_REASON_OK),
    NC_CASE("e-mail after an IP: excluded mailbox, host case-insensitive",
            PERMIT("ip:10.0.0.0/8") COMMA EXCLUDE("email:a@example.com"),
            IPS("10.1.2.3") COMMA EMAILS("a@EXAMPLE.com"), NC),
    NC_CASE("e-mail after an IP: another mailbox on the excluded one's host",
            PERMIT("ip:10.0.0.0/8") COMMA EXCLUDE("email:a@example.com"),
            IPS("10.1.2.3") COMMA EMAILS("b@example.com"), VERDICT_REASON_OK),
    NC_CASE("DNS after an IP: outside permitted", PERMIT("ip:10.0.0.0/8", "dns:example.com"),
            IPS("10.1.2.3") COMMA DNS("a.other.com"), NC),
    NC_CASE("DNS after an IP: inside permitted", PERMIT("ip:10.0.0.0/8", "dns:example.com"),
            IPS("10.1.2.3") COMMA DNS("a.Example.COM"), VERDICT_REASON_OK),
    NC_CASE("IP under DNS-only constraints", PERMIT("dns:example.com"), IPS("10.1.2.3"),
            VERDICT_REASON_OK),
    /* The CN counts only for a leaf without SAN, and never for a CA. */
    NC_CASE("no SAN, CN inside permitted", PERMIT("dns:example.com"),
            .omit_ext = PKI_EXT_SAN COMMA.cn = "api.example.com", VERDICT_REASON_OK),
    NC_CASE("no SAN, CN outside permitted", PERMIT("dns:example.com"),
            .omit_ext = PKI_EXT_SAN COMMA.cn = "api.other.com", NC),
    NC_CASE("no SAN, IP CN in excluded", EXCLUDE("ip:10.0.0.0/8"),
            .omit_ext = PKI_EXT_SAN COMMA.cn = "10.9.9.9", NC),
    /* Directory names stay BoringSSL's, also when certval takes over the
     * SAN-less leaf's CN and when an IP SAN stops BoringSSL's SAN loop. */
    NC_CASE("no SAN, subject outside a permitted directoryName",
            PERMIT("dn:O=certval test", "dns:example.com"),
            .omit_ext = PKI_EXT_SAN COMMA.cn = "api.example.com", NC),
    NC_CASE("IP SAN, subject outside a permitted directoryName",
            PERMIT("dn:O=certval test", "ip:10.0.0.0/8"), IPS("10.1.2.3"), NC),
    NC_CASE("IP SAN, subject inside a permitted directoryName",
            PERMIT("dn:O=acme", "ip:10.0.0.0/8"), IPS("10.1.2.3"), VERDICT_REASON_OK),
    NC_CASE("SAN present, CN outside permitted", PERMIT("dns:example.com"),
            DNS("api.example.com") COMMA.cn = "api.other.com", VERDICT_REASON_OK),
    {"CA named like a host outside permitted",
     {K(P256, PERMIT("dns:example.com")), K(P256, .cn = "ca.other.com"),
      K(P256, DNS("a.example.com"))},
     COMPAT,
     VERDICT_REASON_OK,
     VERDICT_REASON_OK},
};

Test(conformance, ip_and_email_name_constraints, .timeout = 120)
{
    for (size_t i = 0; i < sizeof(nc_cases) / sizeof(nc_cases[0]); i++)
        run_case(&nc_cases[i]);
}

/* RFC 5280 4.1.2.1: extensions only in v3. BoringSSL refuses a v1 or v2
 * certificate with extensions when it parses it (and pki_gen cannot even
 * encode one), so the vector is a v3 leaf whose version field is patched
 * to v1 and v2: the service says MALFORMED, and the DER that `certvalctl
 * verify` would load does not parse. */
Test(conformance, v1_and_v2_certificates_with_extensions)
{
    static const struct conformance_policy compat = COMPAT;
    const struct level lv[3] = {L(P256), L(P256), L(P256)};
    static const uint8_t v3[] = {0xa0, 0x03, 0x02, 0x01, 0x02};
    struct profile_config prof = {.conformance = compat};
    struct validator_config vc = {0};
    struct validator *v = NULL;
    struct ts_chain p;
    uint8_t *der = NULL;
    int len;

    make_path(&p, lv);
    v = tenant_service(p.cert[ROOT], p.cert[CA], prof, vc);
    len = i2d_X509(p.cert[LEAF], &der);
    cr_assert(len > 16);
    uint8_t *ver = memmem(der, 16, v3, sizeof(v3)); /* inside the TBS header */
    cr_assert_not_null(ver);
    for (uint8_t version = 0; version < 3; version++) {
        struct cv_bytes item = {der, (size_t)len};
        struct chain_input in = {
            .id = 1, .certs = &item, .n_certs = 1, .tenant_id = {(const uint8_t *)"acme", 4}};
        const uint8_t *q = der;
        struct verdict out;
        X509 *x;

        ver[4] = version;
        x = d2i_X509(NULL, &q, len);
        validator_check_chain(v, NULL, &out, &in, TS_NOW);
        if (version < 2) {
            cr_expect_null(x, "v%d with extensions parsed", version + 1);
            cr_expect_eq(out.reason, VERDICT_REASON_MALFORMED, "v%d: %s (%s)", version + 1,
                         verdict_reason_name(out.reason), out.detail);
        } else {
            /* The unpatched v3 certificate: parses, and its chain goes on
             * (the CA is not in the request, the profile's copy serves). */
            cr_expect_not_null(x);
            cr_expect_eq(out.reason, VERDICT_REASON_OK, "v3: %s (%s)",
                         verdict_reason_name(out.reason), out.detail);
        }
        X509_free(x);
    }
    OPENSSL_free(der);
    validator_free(v);
    ts_chain_free(&p);
}

/* The profile keys that set the policy: algorithms, min_rsa_bits, compat,
 * max_depth (docs/configuration.md). */
Test(conformance, profile_keys_in_the_configuration)
{
    static const char head[] = "listen:\n  tcp: [\"127.0.0.1:1\"]\ntrust:\n  anchors: [a.pem]\n"
                               "profiles:\n  - name: t\n    kind: tenant\n    issuers: [a.pem]\n"
                               "    tenant_id: {from: subject, attribute: O}\n";
    static const struct {
        const char *extra;
        bool ok;
        enum algorithm_policy algorithms;
        uint32_t min_rsa_bits, max_depth;
        bool compat;
    } cases[] = {
        {"", true, ALGORITHMS_STRICT, 0, 0, false},
        {"    algorithms: legacy\n    min_rsa_bits: 1536\n    compat: true\n    max_depth: 4\n",
         true, ALGORITHMS_LEGACY, 1536, 4, true},
        {"    algorithms: strict\n    min_rsa_bits: 3072\n", true, ALGORITHMS_STRICT, 3072, 0,
         false},
        {"    algorithms: weak\n", false, 0, 0, 0, false},
        {"    min_rsa_bits: 512\n", false, 0, 0, 0, false},
        {"    max_depth: 1\n", false, 0, 0, 0, false},
    };
    char path[128], a[128], text[1024], err[512];

    snprintf(a, sizeof(a), "%s/a.pem", g_dir);
    FILE *f = fopen(a, "w");
    cr_assert_not_null(f);
    fputs("x", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/certval.yaml", g_dir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct certval_config *c = NULL;
        snprintf(text, sizeof(text), "%s%s", head, cases[i].extra);
        f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
        int rc = config_load(&c, path, err, sizeof(err));
        cr_expect_eq(rc == 0, cases[i].ok, "case %zu: %s", i, err);
        if (rc == 0 && cases[i].ok) {
            const struct profile_config *p = &c->validator.profiles[0];
            cr_expect_eq(p->conformance.algorithms, cases[i].algorithms, "case %zu", i);
            cr_expect_eq(p->conformance.min_rsa_bits, cases[i].min_rsa_bits, "case %zu", i);
            cr_expect_eq(p->conformance.compat, cases[i].compat, "case %zu", i);
            cr_expect_eq(p->max_depth, cases[i].max_depth, "case %zu", i);
        }
        config_free(c);
    }
}

/* RFC 5280 4.1.2.5: the validity period includes notAfter; one second
 * later the certificate has expired. */
Test(conformance, not_after_is_inclusive)
{
    static const struct conformance_policy strict;
    const struct level lv[3] = {L(P256), L(P256), L(P256)};
    char detail[VERDICT_DETAIL_MAX];
    struct ts_chain p;
    int64_t na;

    make_path(&p, lv);
    na = TS_NOW + 300 * TS_DAY; /* the leaf's notAfter (make_path) */
    for (int64_t d = -1; d <= 1; d++) {
        struct path_options o = {.at = na + d, .purpose = PATH_PURPOSE_CLIENT};
        enum verdict_reason want = d <= 0 ? VERDICT_REASON_OK : VERDICT_REASON_EXPIRED;
        enum verdict_reason a = via_path_validate_opts(&p, &o, detail, sizeof(detail));
        enum verdict_reason b = via_service_at(&p, &strict, na + d, false, detail, sizeof(detail));
        cr_expect_eq(a, want, "notAfter%+lld s, path_validate: %s (%s)", (long long)d,
                     verdict_reason_name(a), detail);
        cr_expect_eq(b, want, "notAfter%+lld s, service: %s (%s)", (long long)d,
                     verdict_reason_name(b), detail);
    }
    ts_chain_free(&p);
}

/* An error about the path as a whole (no explicit policy, RFC 5280 6.1.5
 * (g)) names the path: not a certificate, never "depth -1". */
Test(conformance, path_wide_failure_has_no_negative_depth)
{
    static const struct conformance_policy strict;
    const struct level lv[3] = {L(P256), L(P256), L(P256)};
    struct path_options o = {.at = TS_NOW, .purpose = PATH_PURPOSE_CLIENT, .explicit_policy = true};
    char detail[VERDICT_DETAIL_MAX];
    struct ts_chain p;

    make_path(&p, lv); /* no certificatePolicies anywhere */
    cr_expect_eq(via_path_validate_opts(&p, &o, detail, sizeof(detail)), VERDICT_REASON_POLICY,
                 "%s", detail);
    cr_expect_null(strstr(detail, "depth -"), "path_validate: %s", detail);
    cr_expect_eq(strncmp(detail, "path of 3 certificates: ", 24), 0, "path_validate: %s", detail);
    cr_expect_eq(via_service_at(&p, &strict, TS_NOW, true, detail, sizeof(detail)), VERDICT_REASON_POLICY,
                 "%s", detail);
    cr_expect_null(strstr(detail, "depth -"), "service: %s", detail);
    cr_expect_eq(strncmp(detail, "path of 3 certificates: ", 24), 0, "service: %s", detail);
    ts_chain_free(&p);
}

/* A configured anchor ends the path even when another CA issued it, and
 * even when the chain also presents that CA (RFC 5280 6.1: the trust
 * anchor is an input; the pattern of CVE-2024-0567). */
Test(conformance, anchor_need_not_be_self_signed)
{
    const struct level lv[3] = {L(P256), L(P256), L(P256)};
    STACK_OF(X509) *anchors = sk_X509_new_null(), *untrusted = sk_X509_new_null();
    struct path_options o = {.at = TS_NOW, .purpose = PATH_PURPOSE_CLIENT};
    struct profile_config prof = {0};
    struct validator_config vc = {0};
    struct validator *v = NULL;
    struct path_result res;
    struct ts_chain p, other;
    struct verdict out;

    make_path(&p, lv);
    make_path(&other, lv);
    cr_assert(sk_X509_push(anchors, p.cert[CA]));
    for (int with_issuer = 0; with_issuer < 2; with_issuer++) {
        if (with_issuer) {
            cr_assert(sk_X509_push(untrusted, p.cert[CA]));
            cr_assert(sk_X509_push(untrusted, p.cert[ROOT]));
        }
        cr_assert_eq(path_validate(&res, &o, p.cert[LEAF], anchors, untrusted, NULL), 0);
        cr_expect(res.valid, "%s issuer presented: %s (%s)", with_issuer ? "with" : "without",
                  verdict_reason_name(res.reason), res.detail);
        if (res.valid) {
            cr_expect_eq(sk_X509_num(res.chain), 2, "the path ends at the anchor");
            cr_expect_eq(X509_cmp(sk_X509_value(res.chain, 1), p.cert[CA]), 0);
        }
        path_result_clear(&res);
    }
    /* Control: an anchor the leaf does not chain to. */
    sk_X509_pop(anchors);
    cr_assert(sk_X509_push(anchors, other.cert[CA]));
    cr_assert_eq(path_validate(&res, &o, p.cert[LEAF], anchors, untrusted, NULL), 0);
    cr_expect_eq(res.reason, VERDICT_REASON_UNTRUSTED_ISSUER, "%s", res.detail);
    path_result_clear(&res);

    /* The service, with the intermediate as its only anchor and the
     * request carrying leaf, intermediate and root. */
    v = tenant_service(p.cert[CA], p.cert[CA], prof, vc);
    X509 *sent[3] = {p.cert[LEAF], p.cert[CA], p.cert[ROOT]};
    service_check(&out, v, NULL, sent, 3, TS_NOW);
    cr_expect_eq(out.decision, DECISION_REQUIRE_PASSWORD, "%s (%s)",
                 verdict_reason_name(out.reason), out.detail);
    validator_free(v);
    sk_X509_free(anchors);
    sk_X509_free(untrusted);
    ts_chain_free(&p);
    ts_chain_free(&other);
}

/* RFC 6125 host names, and the IP and e-mail a caller expects
 * (`certvalctl verify --hostname/--ip/--email`; the service's requests
 * carry no expected name). The leaf's SAN: the names below. */
static enum verdict_reason expect_name(const char *const *dns, size_t n_dns, const char *cn,
                                       const char *host, const char *ip, const char *email,
                                       char *detail, size_t len)
{
    static const char *const ips[] = {"192.0.2.7", "2001:db8::7"};
    static const char *const mails[] = {"ops@example.com"};
    struct pki_cert_spec specs[3];
    struct ts_chain chain;
    X509 **c = chain.cert;
    STACK_OF(X509) *anchors = sk_X509_new_null(), *untrusted = sk_X509_new_null();
    struct path_options o = {.at = TS_NOW,
                             .purpose = host ? PATH_PURPOSE_SERVER : PATH_PURPOSE_ANY,
                             .hostname = host,
                             .ip = ip,
                             .email = email};
    struct path_result res;
    enum verdict_reason got;

    for (int i = 0; i < 3; i++) {
        struct pki_cert_spec s = {.cn = i == LEAF ? cn : "Name CA",
                                  .not_before = TS_NOW - TS_DAY,
                                  .not_after = TS_NOW + 30 * TS_DAY,
                                  .is_ca = i != LEAF,
                                  .path_len = -1,
                                  .key_usage =
                                      i != LEAF ? PKI_KU_KEY_CERT_SIGN : PKI_KU_DIGITAL_SIGNATURE};
        if (i == LEAF) {
            s.san_dns = dns;
            s.n_san_dns = n_dns;
            s.san_ips = n_dns ? ips : NULL;
            s.n_san_ips = n_dns ? 2 : 0;
            s.san_emails = n_dns ? mails : NULL;
            s.n_san_emails = n_dns ? 1 : 0;
        }
        specs[i] = s;
    }
    ts_chain_build(&chain, 3, specs, NULL);
    cr_assert(sk_X509_push(anchors, c[ROOT]));
    cr_assert(sk_X509_push(untrusted, c[CA]));
    cr_assert_eq(path_validate(&res, &o, c[LEAF], anchors, untrusted, NULL), 0, "%s", res.detail);
    got = res.valid ? VERDICT_REASON_OK : res.reason;
    snprintf(detail, len, "%s", res.detail);
    path_result_clear(&res);
    sk_X509_free(anchors);
    sk_X509_free(untrusted);
    ts_chain_free(&chain);
    return got;
}

Test(conformance, host_ip_and_email_names, .timeout = 60)
{
    static const struct {
        const char *san, *cn, *host, *ip, *email;
        enum verdict_reason want;
    } cases[] = {
        {"api.example.com", "x", "api.example.com", NULL, NULL, VERDICT_REASON_OK},
        {"api.example.com", "x", "API.Example.COM", NULL, NULL, VERDICT_REASON_OK},
        {"*.example.com", "x", "api.example.com", NULL, NULL, VERDICT_REASON_OK},
        {"*.example.com", "x", "a.b.example.com", NULL, NULL, VERDICT_REASON_NAME_MISMATCH},
        {"*.example.com", "x", "example.com", NULL, NULL, VERDICT_REASON_NAME_MISMATCH},
        {"a*.example.com", "x", "api.example.com", NULL, NULL, VERDICT_REASON_NAME_MISMATCH},
        {"*.com", "x", "example.com", NULL, NULL, VERDICT_REASON_NAME_MISMATCH},
        /* Public suffixes (Debian's publicsuffix list): co.uk, and the
         * wildcard rule *.ck; www.ck is its exception. */
        {"*.co.uk", "x", "shop.co.uk", NULL, NULL, VERDICT_REASON_NAME_MISMATCH},
        {"*.example.co.uk", "x", "shop.example.co.uk", NULL, NULL, VERDICT_REASON_OK},
        {"*.foo.ck", "x", "a.foo.ck", NULL, NULL, VERDICT_REASON_NAME_MISMATCH},
        {"*.www.ck", "x", "a.www.ck", NULL, NULL, VERDICT_REASON_OK},
        /* The CN is never a host name: not without a SAN, not beside one. */
        {NULL, "api.example.com", "api.example.com", NULL, NULL, VERDICT_REASON_NAME_MISMATCH},
        {"other.example.com", "api.example.com", "api.example.com", NULL, NULL,
         VERDICT_REASON_NAME_MISMATCH},
        {"x.example.com", "x", NULL, "192.0.2.7", NULL, VERDICT_REASON_OK},
        {"x.example.com", "x", NULL, "2001:db8:0::7", NULL, VERDICT_REASON_OK},
        {"x.example.com", "x", NULL, "192.0.2.8", NULL, VERDICT_REASON_NAME_MISMATCH},
        {"x.example.com", "x", NULL, NULL, "ops@example.com", VERDICT_REASON_OK},
        {"x.example.com", "x", NULL, NULL, "ops@EXAMPLE.com", VERDICT_REASON_OK},
        {"x.example.com", "x", NULL, NULL, "dev@example.com", VERDICT_REASON_NAME_MISMATCH},
    };
    char detail[VERDICT_DETAIL_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *dns[1] = {cases[i].san};
        enum verdict_reason got = expect_name(dns, cases[i].san != NULL, cases[i].cn, cases[i].host,
                                              cases[i].ip, cases[i].email, detail, sizeof(detail));
        cr_expect_eq(got, cases[i].want, "SAN %s CN %s, host %s ip %s email %s: got %s (%s)",
                     cases[i].san, cases[i].cn, cases[i].host, cases[i].ip, cases[i].email,
                     verdict_reason_name(got), detail);
    }
}

/* RFC 5280 7.1: a CRL names its issuer by value. The CA's certificate
 * says PrintableString "certval test" / "Conformance CA"; its CRL, signed
 * by the same key, re-encodes the name as UTF8String with other case and
 * spacing. The leaf it lists must be REVOKED through path_validate and the
 * service's CRL cache; a CRL that does not list it leaves it valid. */
static X509_CRL *reencoded_crl(const struct ts_chain *p, bool list_leaf)
{
    uint64_t none = 1;
    X509_CRL *crl =
        pki_crl_new(p->cert[CA], p->key[CA], &none, 1, TS_NOW - TS_DAY, TS_NOW + 7 * TS_DAY, 7);
    X509_NAME *name = X509_NAME_new();

    cr_assert_not_null(crl);
    if (list_leaf) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_TIME *t = ASN1_TIME_set(NULL, TS_NOW - TS_DAY);
        cr_assert(r != NULL && t != NULL);
        cr_assert(X509_REVOKED_set_serialNumber(r, X509_get0_serialNumber(p->cert[LEAF])));
        cr_assert(X509_REVOKED_set_revocationDate(r, t));
        cr_assert(X509_CRL_add0_revoked(crl, r));
        ASN1_TIME_free(t);
        cr_assert(X509_CRL_sort(crl));
    }
    cr_assert(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const uint8_t *)"Certval  TEST",
                                         -1, -1, 0));
    cr_assert(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                         (const uint8_t *)" conformance ca ", -1, -1, 0));
    cr_assert(X509_CRL_set_issuer_name(crl, name));
    X509_NAME_free(name);
    cr_assert(X509_CRL_sign(crl, p->key[CA], EVP_sha256()));
    return crl;
}

Test(conformance, crl_issuer_name_compared_by_value)
{
    const struct level lv[3] = {L(P256), K(P256, .printable_subject = true), L(P256)};
    struct ts_chain p;

    certval_rcu_reader_register();
    make_path(&p, lv);
    cr_assert_eq(ASN1_STRING_type(X509_NAME_ENTRY_get_data(
                     X509_NAME_get_entry(X509_get_subject_name(p.cert[CA]), 0))),
                 V_ASN1_PRINTABLESTRING);
    for (int listed = 0; listed < 2; listed++) {
        X509_CRL *crl = reencoded_crl(&p, listed);
        enum verdict_reason want = listed ? VERDICT_REASON_REVOKED : VERDICT_REASON_OK;
        STACK_OF(X509) *anchors = sk_X509_new_null(), *untrusted = sk_X509_new_null();
        STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
        struct path_options o = {
            .at = TS_NOW, .purpose = PATH_PURPOSE_CLIENT, .crl_check = CRL_CHECK_LEAF};
        struct path_result res;
        char err[256];
        struct profile_config prof = {.revocation = REVOCATION_LEAF};
        struct validator_config vc = {0};
        struct validator *v = NULL;
        struct crl_cache *cache = crl_cache_new();
        struct revocation_sources src = {.crls = cache};
        uint8_t *crl_der = NULL;
        int crl_len;
        struct verdict out;

        cr_assert(sk_X509_push(anchors, p.cert[ROOT]) && sk_X509_push(untrusted, p.cert[CA]) &&
                  sk_X509_CRL_push(crls, crl));
        /* The vector means something only if the bytes differ. */
        uint8_t *n1 = NULL, *n2 = NULL;
        int l1 = i2d_X509_NAME(X509_CRL_get_issuer(crl), &n1);
        int l2 = i2d_X509_NAME(X509_get_subject_name(p.cert[CA]), &n2);
        cr_assert(l1 > 0 && l2 > 0 && (l1 != l2 || memcmp(n1, n2, (size_t)l1) != 0));
        OPENSSL_free(n1);
        OPENSSL_free(n2);
        cr_assert_eq(path_validate(&res, &o, p.cert[LEAF], anchors, untrusted, crls), 0);
        cr_expect_eq(res.valid ? VERDICT_REASON_OK : res.reason, want,
                     "path_validate, listed %d: %s (%s)", listed, verdict_reason_name(res.reason),
                     res.detail);
        path_result_clear(&res);

        v = tenant_service(p.cert[ROOT], p.cert[CA], prof, vc);
        crl_len = i2d_X509_CRL(crl, &crl_der);
        cr_assert_eq(
            crl_cache_add_der(cache, crl_der, (size_t)crl_len, untrusted, "test", err, sizeof(err)),
            0, "%s", err);
        service_check(&out, v, &src, &p.cert[LEAF], 1, TS_NOW);
        cr_expect_eq(out.reason, want, "service, listed %d: %s (%s)", listed,
                     verdict_reason_name(out.reason), out.detail);
        OPENSSL_free(crl_der);
        crl_cache_free(cache);
        validator_free(v);
        sk_X509_CRL_pop_free(crls, X509_CRL_free);
        sk_X509_free(anchors);
        sk_X509_free(untrusted);
    }
    ts_chain_free(&p);
    certval_rcu_reader_unregister();
}

/* Path building: the first candidate path fails on an edge (a bridge's
 * name constraints or path length, a SHA-1 signature) and another path
 * (the same CA certified directly by the root) must be tried. The chain
 * offers the bad path first: leaf <- CA (via Bridge) <- Bridge <- Root,
 * and CA (direct) <- Root. */
enum bridge_fault { VIA_NAME_CONSTRAINTS, VIA_PATH_LENGTH, VIA_SHA1, VIA_MAX_DEPTH };

static void bridge_case(enum bridge_fault fault)
{
    static const char *const blocked[] = {"dns:blocked.example"};
    static const char *const leaf_dns[] = {"a.blocked.example"};
    static const char *const tenant_uri[] = {"urn:tenant:acme"};
    EVP_PKEY *kr = pki_key_new(P256), *kb = pki_key_new(P256), *kc = pki_key_new(P256),
             *kl = pki_key_new(P256);
    struct pki_cert_spec root = {.cn = "Bridge Test Root",
                                 .not_before = TS_NOW - TS_DAY,
                                 .not_after = TS_NOW + 3650 * TS_DAY,
                                 .is_ca = true,
                                 .path_len = -1,
                                 .key_usage = PKI_KU_KEY_CERT_SIGN | PKI_KU_CRL_SIGN};
    struct pki_cert_spec bridge = root, ca = root,
                         leaf = {.cn = "alice",
                                 .o = "acme",
                                 .not_before = TS_NOW - TS_DAY,
                                 .not_after = TS_NOW + 300 * TS_DAY,
                                 .path_len = -1,
                                 .key_usage = PKI_KU_DIGITAL_SIGNATURE,
                                 .eku = TS_CLIENT_AUTH,
                                 .san_dns = leaf_dns,
                                 .n_san_dns = 1,
                                 .san_uris = tenant_uri,
                                 .n_san_uris = 1};
    X509 *r, *b, *ca_bridged, *ca_direct, *l;
    char detail[VERDICT_DETAIL_MAX];

    bridge.cn = "Bridge CA";
    if (fault == VIA_NAME_CONSTRAINTS) {
        bridge.nc_excluded = blocked;
        bridge.n_nc_excluded = 1;
    }
    if (fault == VIA_PATH_LENGTH)
        bridge.path_len = 0; /* no CA below the bridge */
    ca.cn = "Conformance CA";
    r = pki_issue(&root, kr, NULL, kr);
    b = pki_issue(&bridge, kb, r, kr);
    if (fault == VIA_SHA1)
        ca.sig_digest_nid = NID_sha1;
    ca_bridged = pki_issue(&ca, kc, b, kb);
    ca.sig_digest_nid = 0;
    ca_direct = pki_issue(&ca, kc, r, kr);
    l = pki_issue(&leaf, kl, ca_direct, kc);
    cr_assert(r && b && ca_bridged && ca_direct && l);

    /* certvalctl verify's path: the bridged candidate first. */
    STACK_OF(X509) *anchors = sk_X509_new_null(), *untrusted = sk_X509_new_null();
    /* VIA_MAX_DEPTH: the bridged path has 4 certificates, the limit 3. */
    uint32_t max_depth = fault == VIA_MAX_DEPTH ? 3 : 0;
    struct path_options o = {.at = TS_NOW, .purpose = PATH_PURPOSE_CLIENT, .max_depth = max_depth};
    struct path_result res;
    cr_assert(sk_X509_push(anchors, r));
    cr_assert(sk_X509_push(untrusted, ca_bridged) && sk_X509_push(untrusted, b) &&
              sk_X509_push(untrusted, ca_direct));
    cr_assert_eq(path_validate(&res, &o, l, anchors, untrusted, NULL), 0);
    cr_expect(res.valid, "fault %d, path_validate: %s (%s)", (int)fault,
              verdict_reason_name(res.reason), res.detail);
    if (res.valid)
        cr_expect_eq(X509_cmp(sk_X509_value(res.chain, 1), ca_direct), 0, "the direct CA");
    path_result_clear(&res);

    /* The service: the profile names the bridged copy (tried first, as a
     * configured intermediate); the request carries both. */
    struct ts_chain p = {.cert = {r, ca_bridged, l}};
    enum verdict_reason got;
    {
        struct profile_config prof = {0};
        struct validator_config vc = {0};
        struct validator *v = tenant_service(p.cert[ROOT], p.cert[CA], prof, vc);
        X509 *sent[4] = {l, ca_bridged, b, ca_direct};
        struct verdict out;

        service_check(&out, v, NULL, sent, 4, TS_NOW);
        got = service_reason(&out);
        snprintf(detail, sizeof(detail), "%s", out.detail);
        validator_free(v);
    }
    cr_expect_eq(got, VERDICT_REASON_OK, "fault %d, service: %s (%s)", (int)fault,
                 verdict_reason_name(got), detail);
    sk_X509_free(anchors);
    sk_X509_free(untrusted);
    X509 *all[5] = {r, b, ca_bridged, ca_direct, l};
    for (int i = 0; i < 5; i++)
        X509_free(all[i]);
    EVP_PKEY_free(kr);
    EVP_PKEY_free(kb);
    EVP_PKEY_free(kc);
    EVP_PKEY_free(kl);
}

Test(conformance, path_building_tries_other_candidates_after_an_edge_fails)
{
    bridge_case(VIA_NAME_CONSTRAINTS);
    bridge_case(VIA_PATH_LENGTH);
    bridge_case(VIA_SHA1);
    bridge_case(VIA_MAX_DEPTH);
}

/* The maximum depth (certificates in the path, anchor included) from
 * path_options.max_depth (`certvalctl verify --max-depth`) and from the
 * profile's max_depth. */
Test(conformance, max_depth_from_options_and_profile)
{
    const struct level lv[3] = {L(P256), L(P256), L(P256)};
    char detail[VERDICT_DETAIL_MAX];
    struct ts_chain p;

    make_path(&p, lv);
    {
        /* certvalctl accepts --max-depth 1: a 3-certificate path is too
         * long, not "untrusted". */
        struct path_options o = {.at = TS_NOW, .purpose = PATH_PURPOSE_CLIENT, .max_depth = 1};
        enum verdict_reason a = via_path_validate_opts(&p, &o, detail, sizeof(detail));
        cr_expect_eq(a, VERDICT_REASON_PATH_TOO_LONG, "max_depth 1: %s (%s)",
                     verdict_reason_name(a), detail);
    }
    for (uint32_t depth = 2; depth <= 3; depth++) {
        enum verdict_reason want = depth < 3 ? VERDICT_REASON_PATH_TOO_LONG : VERDICT_REASON_OK;
        struct path_options o = {.at = TS_NOW, .purpose = PATH_PURPOSE_CLIENT, .max_depth = depth};
        enum verdict_reason a = via_path_validate_opts(&p, &o, detail, sizeof(detail));
        cr_expect_eq(a, want, "max_depth %u, path_validate: %s (%s)", depth, verdict_reason_name(a),
                     detail);

        struct profile_config prof = {.max_depth = depth};
        struct validator_config vc = {0};
        struct validator *v = tenant_service(p.cert[ROOT], p.cert[CA], prof, vc);
        struct verdict out;

        service_check(&out, v, NULL, &p.cert[LEAF], 1, TS_NOW);
        enum verdict_reason b = service_reason(&out);
        cr_expect_eq(b, want, "profile max_depth %u, service: %s (%s)", depth,
                     verdict_reason_name(b), out.detail);
        validator_free(v);
    }
    ts_chain_free(&p);
}

/* RFC 5280 5.2.3: the cRLNumber is non-critical (a critical one makes the
 * CRL unusable, compat or not) and present in every CRL (strict; compat
 * accepts a CRL without one). */
enum crl_number_form { NUMBER_NORMAL, NUMBER_ABSENT, NUMBER_CRITICAL };

static X509_CRL *numbered_crl(const struct ts_chain *p, enum crl_number_form form)
{
    uint64_t other = 1;
    X509_CRL *crl =
        pki_crl_new(p->cert[CA], p->key[CA], &other, 1, TS_NOW - TS_DAY, TS_NOW + 7 * TS_DAY, 9);
    int idx;

    cr_assert_not_null(crl);
    idx = X509_CRL_get_ext_by_NID(crl, NID_crl_number, -1);
    cr_assert(idx >= 0);
    if (form == NUMBER_ABSENT)
        X509_EXTENSION_free(X509_CRL_delete_ext(crl, idx));
    if (form == NUMBER_CRITICAL)
        cr_assert(X509_EXTENSION_set_critical(X509_CRL_get_ext(crl, idx), 1));
    cr_assert(X509_CRL_sign(crl, p->key[CA], EVP_sha256()));
    return crl;
}

static enum verdict_reason crl_case(const struct ts_chain *p, X509_CRL *crl,
                                    const struct conformance_policy *pol, bool service,
                                    char *detail, size_t len)
{
    STACK_OF(X509) *anchors = sk_X509_new_null(), *untrusted = sk_X509_new_null();
    enum verdict_reason got;

    cr_assert(sk_X509_push(anchors, p->cert[ROOT]) && sk_X509_push(untrusted, p->cert[CA]));
    if (!service) {
        STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
        struct path_options o = {.at = TS_NOW,
                                 .purpose = PATH_PURPOSE_CLIENT,
                                 .crl_check = CRL_CHECK_LEAF,
                                 .conformance = *pol};
        struct path_result res;
        cr_assert(sk_X509_CRL_push(crls, crl));
        cr_assert_eq(path_validate(&res, &o, p->cert[LEAF], anchors, untrusted, crls), 0);
        got = res.valid ? VERDICT_REASON_OK : res.reason;
        snprintf(detail, len, "%s", res.detail);
        path_result_clear(&res);
        sk_X509_CRL_free(crls);
    } else {
        struct profile_config prof = {.revocation = REVOCATION_LEAF, .conformance = *pol};
        struct validator_config vc = {0};
        struct validator *v = tenant_service(p->cert[ROOT], p->cert[CA], prof, vc);
        struct crl_cache *cache = crl_cache_new();
        struct revocation_sources src = {.crls = cache};
        uint8_t *crl_der = NULL;
        int crl_len = i2d_X509_CRL(crl, &crl_der);
        X509 *leaf = p->cert[LEAF];
        char err[256];
        struct verdict out;

        crl_cache_add_der(cache, crl_der, (size_t)crl_len, untrusted, "test", err, sizeof(err));
        service_check(&out, v, &src, &leaf, 1, TS_NOW);
        got = service_reason(&out);
        snprintf(detail, len, "%s", out.detail);
        OPENSSL_free(crl_der);
        crl_cache_free(cache);
        validator_free(v);
    }
    sk_X509_free(anchors);
    sk_X509_free(untrusted);
    return got;
}

Test(conformance, crl_number_rules)
{
    static const struct conformance_policy strict, compat = COMPAT;
    static const struct {
        const char *name;
        enum crl_number_form form;
        enum verdict_reason strict_want, compat_want;
    } cases[] = {
        {"non-critical cRLNumber", NUMBER_NORMAL, VERDICT_REASON_OK, VERDICT_REASON_OK},
        {"no cRLNumber", NUMBER_ABSENT, VERDICT_REASON_REVOCATION_UNKNOWN, VERDICT_REASON_OK},
        {"critical cRLNumber", NUMBER_CRITICAL, VERDICT_REASON_REVOCATION_UNKNOWN,
         VERDICT_REASON_REVOCATION_UNKNOWN},
    };
    const struct level lv[3] = {L(P256), L(P256), L(P256)};
    char detail[VERDICT_DETAIL_MAX];
    struct ts_chain p;

    certval_rcu_reader_register();
    make_path(&p, lv);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509_CRL *crl = numbered_crl(&p, cases[i].form);
        for (int k = 0; k < 2; k++) {
            for (int service = 0; service < 2; service++) {
                enum verdict_reason want = k ? cases[i].compat_want : cases[i].strict_want;
                enum verdict_reason got =
                    crl_case(&p, crl, k ? &compat : &strict, service, detail, sizeof(detail));
                cr_expect_eq(got, want, "%s, %s, %s: %s (%s)", cases[i].name,
                             k ? "compat" : "strict", service ? "service" : "path_validate",
                             verdict_reason_name(got), detail);
            }
        }
        X509_CRL_free(crl);
    }
    ts_chain_free(&p);
    certval_rcu_reader_unregister();
}

/* Rule 1 on CRLs: a CRL signed with MD5, or SHA-1 unless legacy, does not
 * count, through path_validate and the service; and a verdict cached under
 * a SHA-256 CRL is not answered from the cache once a SHA-1 CRL (a higher
 * cRLNumber) replaces it. */
static X509_CRL *signed_crl(const struct ts_chain *p, int digest_nid, uint64_t number)
{
    uint64_t other = 1;
    X509_CRL *crl = pki_crl_new(p->cert[CA], p->key[CA], &other, 1, TS_NOW - TS_DAY,
                                TS_NOW + 7 * TS_DAY, number);

    cr_assert_not_null(crl);
    cr_assert(X509_CRL_sign(crl, p->key[CA], EVP_get_digestbynid(digest_nid)));
    return crl;
}

Test(conformance, crl_signature_algorithm_policy)
{
    static const struct conformance_policy strict, legacy = LEGACY;
    static const struct {
        int digest;
        enum verdict_reason strict_want, legacy_want;
    } cases[] = {
        {NID_sha256, VERDICT_REASON_OK, VERDICT_REASON_OK},
        {NID_sha1, VERDICT_REASON_REVOCATION_UNKNOWN, VERDICT_REASON_OK},
        {NID_md5, VERDICT_REASON_REVOCATION_UNKNOWN, VERDICT_REASON_REVOCATION_UNKNOWN},
    };
    const struct level lv[3] = {L(RSA), L(RSA), L(P256)};
    char detail[VERDICT_DETAIL_MAX];
    struct ts_chain p;

    certval_rcu_reader_register();
    make_path(&p, lv);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509_CRL *crl = signed_crl(&p, cases[i].digest, 5);
        cr_assert_eq(X509_CRL_get_signature_nid(crl) != NID_undef, 1);
        for (int k = 0; k < 2; k++) {
            for (int service = 0; service < 2; service++) {
                enum verdict_reason want = k ? cases[i].legacy_want : cases[i].strict_want;
                enum verdict_reason got =
                    crl_case(&p, crl, k ? &legacy : &strict, service, detail, sizeof(detail));
                cr_expect_eq(got, want, "CRL digest %s, %s, %s: %s (%s)",
                             OBJ_nid2sn(cases[i].digest), k ? "legacy" : "strict",
                             service ? "service" : "path_validate", verdict_reason_name(got),
                             detail);
            }
        }
        X509_CRL_free(crl);
    }

    /* The verdict cache: OK and cached under a SHA-256 CRL, then the CA's
     * next CRL is SHA-1-signed. */
    {
        char err[256];
        struct profile_config prof = {.revocation = REVOCATION_LEAF};
        struct validator_config vc = {0};
        STACK_OF(X509) *cands = sk_X509_new_null();
        struct validator *v = tenant_service(p.cert[ROOT], p.cert[CA], prof, vc);
        struct crl_cache *cache = crl_cache_new();
        struct verdict_cache *vcache = verdict_cache_new(100, 1 << 20);
        struct revocation_sources src = {.crls = cache, .cache = vcache};
        struct verdict out;

        cr_assert(sk_X509_push(cands, p.cert[CA]));
        for (int round = 0; round < 3; round++) {
            if (round != 1) {
                X509_CRL *crl = signed_crl(&p, round == 0 ? NID_sha256 : NID_sha1, 10 + round);
                uint8_t *crl_der = NULL;
                int crl_len = i2d_X509_CRL(crl, &crl_der);
                cr_assert_eq(crl_cache_add_der(cache, crl_der, (size_t)crl_len, cands, "test", err,
                                               sizeof(err)),
                             0, "%s", err);
                OPENSSL_free(crl_der);
                X509_CRL_free(crl);
            }
            service_check(&out, v, &src, &p.cert[LEAF], 1, TS_NOW);
            enum verdict_reason want = round < 2 ? VERDICT_REASON_OK : VERDICT_REASON_REVOCATION_UNKNOWN;
            enum verdict_reason got = service_reason(&out);
            cr_expect_eq(got, want, "verdict cache round %d: %s (%s)", round,
                         verdict_reason_name(got), out.detail);
            if (round == 1) {
                struct verdict_cache_stats st;
                verdict_cache_stats(vcache, &st);
                cr_expect_eq(st.hits, 1, "round 1 is answered from the verdict cache");
            }
        }
        verdict_cache_free(vcache);
        crl_cache_free(cache);
        validator_free(v);
        sk_X509_free(cands);
    }
    ts_chain_free(&p);
    certval_rcu_reader_unregister();
}
