/* Tests of cache/name_norm.h (names compared by value, RFC 5280 7.1) and
 * of what it changes in revocation (issue 13 rule 7): an indirect CRL's
 * certificateIssuer, a distribution point's directoryName and cRLIssuer
 * written in another string encoding, case or spacing than the CA's own
 * name still match; a name that truly differs does not. The vectors are
 * made with the project's generator (validator/issue: crl_dp_raw, idp_raw).
 * A CRL issuer name re-encoded against the CA certificate is
 * tests/test_conformance.c (crl_issuer_name_compared_by_value). */
#include <criterion/criterion.h>

#include <ctype.h>
#include <string.h>

#include <openssl/bytestring.h>
#include <openssl/mem.h>
#include <openssl/x509.h>

#include "crl_cache.h"
#include "crl_gen.h"
#include "name_norm.h"
#include "rcu_reader.h"
#include "support/clock.h"
#include "support/pki_builders.h"
#include "validator.h"
#include "verdict.h"

/* One attribute of a test name; |set| as X509_NAME_add_entry_by_txt (0 a
 * new RDN, -1 added to the previous one). A NULL field ends the list. */
struct attr {
    const char *field;
    int type; /* V_ASN1_UTF8STRING, V_ASN1_PRINTABLESTRING, ... (raw bytes) */
    const char *value;
    size_t len; /* 0 = strlen(value) */
    int set;
};

static X509_NAME *name_of(const struct attr *a)
{
    X509_NAME *n = X509_NAME_new();

    cr_assert_not_null(n);
    for (; a->field != NULL; a++)
        cr_assert(X509_NAME_add_entry_by_txt(n, a->field, a->type, (const uint8_t *)a->value,
                                             a->len ? (int)a->len : -1, -1, a->set),
                  "%s", a->field);
    return n;
}

static void hash_of(uint8_t out[NAME_NORM_HASH_LEN], const X509_NAME *n, bool want_normalised)
{
    const uint8_t *der = NULL;
    size_t len = 0;

    cr_assert(X509_NAME_get0_der((X509_NAME *)n, &der, &len));
    cr_assert_eq(name_norm_hash(out, der, len), want_normalised);
}

#define U V_ASN1_UTF8STRING
#define P V_ASN1_PRINTABLESTRING
/* A: an attribute in a new RDN; A_SAME: in the previous RDN. */
#define A(f, t, v)                                                                                 \
    {                                                                                              \
        f, t, v, 0, 0                                                                              \
    }
#define A_SAME(f, t, v)                                                                            \
    {                                                                                              \
        f, t, v, 0, -1                                                                             \
    }

Test(name_norm, equal_and_different_names)
{
    static const struct {
        const char *what;
        struct attr a[4], b[4];
        bool equal;
    } rows[] = {
        {"PrintableString vs UTF8String, case and spaces",
         {A("CN", U, "Example CA"), A("O", U, "certval test")},
         {A("CN", P, "  EXAMPLE   ca "), A("O", P, "Certval\tTest")},
         true},
        {"BMPString vs UTF8String",
         {A("CN", U, "Example CA")},
         {{"CN", V_ASN1_BMPSTRING, "\0E\0x\0a\0m\0p\0l\0e\0 \0C\0A", 20, 0}},
         true},
        {"the attributes of a multi-valued RDN in another order",
         {A("CN", U, "a"), A_SAME("O", U, "b")},
         {A("O", P, "B"), A_SAME("CN", U, "a")},
         true},
        {"another value", {A("CN", U, "Example CA")}, {A("CN", U, "Example CB")}, false},
        {"an inner space is not nothing",
         {A("CN", U, "Example CA")},
         {A("CN", U, "ExampleCA")},
         false},
        {"another attribute type", {A("CN", U, "x")}, {A("O", U, "x")}, false},
        {"RDNs in another order",
         {A("CN", U, "a"), A("O", U, "b")},
         {A("O", U, "b"), A("CN", U, "a")},
         false},
        {"one RDN of two vs two RDNs",
         {A("CN", U, "a"), A_SAME("O", U, "b")},
         {A("CN", U, "a"), A("O", U, "b")},
         false},
        {"non-ASCII letters are not case folded",
         {A("CN", U, "\xc3\x89t\xc3\xa9")},
         {A("CN", U, "\xc3\xa9t\xc3\xa9")},
         false},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        X509_NAME *a = name_of(rows[i].a), *b = name_of(rows[i].b);
        uint8_t ha[32], hb[32];

        hash_of(ha, a, true);
        hash_of(hb, b, true);
        cr_expect_eq(memcmp(ha, hb, 32) == 0, rows[i].equal, "%s", rows[i].what);
        X509_NAME_free(a);
        X509_NAME_free(b);
    }
}

/* Hostile DER: every truncation of a name, a bad UTF-8 value, junk. Each
 * is hashed as its bytes (false), deterministically, and never like a
 * valid name. */
Test(name_norm, malformed_names_hash_as_bytes)
{
    static const struct attr good[] = {A("CN", U, "Example CA"), A("O", U, "certval test"), {0}};
    /* CN = UTF8String "a" and an overlong "/" (C0 AF) */
    static const uint8_t bad_utf8[] = {0x30, 0x0e, 0x31, 0x0c, 0x30, 0x0a, 0x06, 0x03,
                                       0x55, 0x04, 0x03, 0x0c, 0x03, 0x61, 0xc0, 0xaf};
    static const uint8_t empty_rdn[] = {0x30, 0x02, 0x31, 0x00};
    static const uint8_t junk[] = {0x30, 0x80, 0x31, 0x05, 0x30, 0x03, 0x06, 0x01, 0x00};
    X509_NAME *n = name_of(good);
    const uint8_t *der = NULL;
    size_t len = 0;
    uint8_t h[32], h2[32], hgood[32];

    hash_of(hgood, n, true);
    cr_assert(X509_NAME_get0_der(n, &der, &len));
    for (size_t cut = 0; cut < len; cut++) {
        cr_expect_not(name_norm_hash(h, der, cut), "truncated at %zu", cut);
        cr_expect_neq(memcmp(h, hgood, 32), 0);
    }
    cr_expect_not(name_norm_hash(h, bad_utf8, sizeof(bad_utf8)));
    cr_expect_not(name_norm_hash(h2, bad_utf8, sizeof(bad_utf8)));
    cr_expect_eq(memcmp(h, h2, 32), 0, "deterministic");
    cr_expect_not(name_norm_hash(h, empty_rdn, sizeof(empty_rdn)));
    cr_expect_not(name_norm_hash(h, junk, sizeof(junk)));
    cr_expect_not(name_norm_hash(h, NULL, 0));
    X509_NAME_free(n);
}

/* ---- revocation through revocation_check_chain ------------------------- */

enum { ROOT = 0, CRL_CA = 1 };
#define LEAF_SERIAL 1001
#define TAG_C(n) (CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | (n))

/* shouted returns |src| written again as PrintableString, upper case, with
 * a leading space and every space doubled: the same name by value,
 * different bytes. */
static X509_NAME *shouted(const X509_NAME *src)
{
    X509_NAME *n = X509_NAME_new();
    const uint8_t *d1 = NULL, *d2 = NULL;
    size_t l1 = 0, l2 = 0;

    cr_assert_not_null(n);
    for (int i = 0; i < X509_NAME_entry_count(src); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(src, i);
        const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
        char buf[128];
        size_t k = 0;

        buf[k++] = ' ';
        for (int j = 0; j < ASN1_STRING_length(v) && k + 2 < sizeof(buf); j++) {
            char c = (char)ASN1_STRING_get0_data(v)[j];
            buf[k++] = (char)toupper((unsigned char)c);
            if (c == ' ')
                buf[k++] = ' ';
        }
        cr_assert(X509_NAME_add_entry(n, (X509_NAME_ENTRY *)e, -1, 0));
        cr_assert(
            X509_NAME_ENTRY_set_data(X509_NAME_get_entry(n, i), P, (const uint8_t *)buf, (int)k));
    }
    /* The vector means something only if the bytes differ. */
    cr_assert(X509_NAME_get0_der(n, &d1, &l1) && X509_NAME_get0_der((X509_NAME *)src, &d2, &l2));
    cr_assert(l1 != l2 || memcmp(d1, d2, l1) != 0);
    return n;
}

static void add_dirname(CBB *gns, const X509_NAME *n)
{
    const uint8_t *der = NULL;
    size_t len = 0;
    CBB dn;

    cr_assert(X509_NAME_get0_der((X509_NAME *)n, &der, &len));
    cr_assert(CBB_add_asn1(gns, &dn, TAG_C(4)) && CBB_add_bytes(&dn, der, len) && CBB_flush(gns));
}

/* cdp_der: cRLDistributionPoints { { fullName dirName |dp|, cRLIssuer
 * dirName |crl_issuer| } }. */
static void cdp_der(uint8_t **out, size_t *len, const X509_NAME *dp, const X509_NAME *crl_issuer)
{
    CBB cbb, seq, point, dpn, full, issuer;

    cr_assert(CBB_init(&cbb, 256) && CBB_add_asn1(&cbb, &seq, CBS_ASN1_SEQUENCE) &&
              CBB_add_asn1(&seq, &point, CBS_ASN1_SEQUENCE) &&
              CBB_add_asn1(&point, &dpn, TAG_C(0)) && CBB_add_asn1(&dpn, &full, TAG_C(0)));
    add_dirname(&full, dp);
    cr_assert(CBB_flush(&point) && CBB_add_asn1(&point, &issuer, TAG_C(2)));
    add_dirname(&issuer, crl_issuer);
    cr_assert(CBB_finish(&cbb, out, len));
}

/* idp_der: issuingDistributionPoint { fullName dirName |dp|, indirectCRL }. */
static void idp_der(uint8_t **out, size_t *len, const X509_NAME *dp)
{
    CBB cbb, seq, dpn, full, ind;

    cr_assert(CBB_init(&cbb, 256) && CBB_add_asn1(&cbb, &seq, CBS_ASN1_SEQUENCE) &&
              CBB_add_asn1(&seq, &dpn, TAG_C(0)) && CBB_add_asn1(&dpn, &full, TAG_C(0)));
    add_dirname(&full, dp);
    cr_assert(CBB_flush(&seq) && CBB_add_asn1(&seq, &ind, CBS_ASN1_CONTEXT_SPECIFIC | 4) &&
              CBB_add_u8(&ind, 0xff) && CBB_finish(&cbb, out, len));
}

/* The indirect CRL's one entry: LEAF_SERIAL of the CA named |arg|. */
static void indirect_entry(void *arg, size_t i, struct crl_gen_entry *e)
{
    (void)i;
    crl_gen_serial_u64(e, LEAF_SERIAL);
    e->revoked_at = TS_NOW - TS_DAY;
    e->reason = 1;
    e->cert_issuer = true;
    e->cert_issuer_name = arg;
}

static void add_der(struct crl_cache *c, const uint8_t *der, size_t len, X509 *issuer)
{
    STACK_OF(X509) *issuers = ts_stack_of(&issuer, 1);
    char err[256] = "";

    cr_assert_eq(crl_cache_add_der(c, der, len, issuers, "test", err, sizeof(err)), 0, "%s", err);
    sk_X509_free(issuers);
}

/* An indirect CRL signed by "Indirect CRL Issuer" for the distribution
 * point "Partition One", listing serial 1001 of "Second CA" under a
 * certificateIssuer written in capitals as PrintableString. Leaves with
 * serial 1001 of "Second CA" and of "Third CA" name the point and the CRL
 * issuer in yet other encodings. */
Test(name_norm, indirect_crl_names_compared_by_value)
{
    const struct pki_cert_spec specs[2] = {
        ts_ca_spec("Names Root", TS_NOW - 30 * TS_DAY, TS_NOW + 3650 * TS_DAY),
        ts_ca_spec("Indirect CRL Issuer", TS_NOW - 30 * TS_DAY, TS_NOW + 3650 * TS_DAY)};
    static const struct attr part1[] = {
        A("CN", U, "Partition One"), A("O", U, "certval test"), {0}};
    static const struct attr part1_other[] = {
        A("CN", P, "partition   ONE "), A("O", P, "Certval Test"), {0}};
    static const struct attr part2[] = {
        A("CN", P, "Partition Two"), A("O", P, "certval test"), {0}};
    struct ts_chain pki;
    struct ts_cert root, second, third;
    X509_NAME *p1 = name_of(part1), *p1_other = name_of(part1_other), *p2 = name_of(part2);
    X509_NAME *second_shouted, *crl_ca_shouted;
    uint8_t *idp = NULL, *crl = NULL;
    size_t idp_len = 0, crl_len = 0;
    struct crl_cache *c = crl_cache_new();
    struct revocation_sources src = {.crls = c};

    certval_rcu_reader_register();
    ts_chain_build(&pki, 2, specs, NULL);
    root = (struct ts_cert){pki.key[ROOT], pki.cert[ROOT]};
    second = ts_ca_new("Second CA", &root, TS_NOW - 30 * TS_DAY, TS_NOW + 3650 * TS_DAY);
    third = ts_ca_new("Third CA", &root, TS_NOW - 30 * TS_DAY, TS_NOW + 3650 * TS_DAY);
    second_shouted = shouted(X509_get_subject_name(second.cert));
    crl_ca_shouted = shouted(X509_get_subject_name(pki.cert[CRL_CA]));

    /* The CRL issuer's own certificate must not be revoked (6.3.3 (f)): a
     * clean CRL of the root. */
    uint64_t other = 77;
    X509_CRL *root_crl = pki_crl_new(pki.cert[ROOT], pki.key[ROOT], &other, 1, TS_NOW - TS_DAY,
                                     TS_NOW + 7 * TS_DAY, 1);
    uint8_t *root_der = NULL;
    int root_len = i2d_X509_CRL(root_crl, &root_der);
    cr_assert_gt(root_len, 0);
    add_der(c, root_der, (size_t)root_len, pki.cert[ROOT]);

    idp_der(&idp, &idp_len, p1);
    struct crl_gen_spec gs = {.issuer = pki.cert[CRL_CA],
                              .key = pki.key[CRL_CA],
                              .this_update = TS_NOW - TS_DAY,
                              .next_update = TS_NOW + 7 * TS_DAY,
                              .has_crl_number = true,
                              .crl_number = 3,
                              .idp_raw = idp,
                              .idp_raw_len = idp_len,
                              .n_entries = 1,
                              .entry_at = indirect_entry,
                              .arg = second_shouted};
    cr_assert_eq(crl_gen_der(&gs, &crl, &crl_len), 0);
    add_der(c, crl, crl_len, pki.cert[CRL_CA]);

    static const struct {
        const char *what;
        int issuer; /* 0 second, 1 third */
        int dp;     /* 0 part1 re-encoded, 1 part1 as the IDP writes it, 2 part2 */
        enum verdict_reason want;
    } rows[] = {
        {"certificateIssuer, DP name and cRLIssuer re-encoded: revoked", 0, 0,
         VERDICT_REASON_REVOKED},
        {"same encoding of the DP name: revoked", 0, 1, VERDICT_REASON_REVOKED},
        {"another CA's certificate with the same serial: not revoked", 1, 0, VERDICT_REASON_OK},
        {"a DP name that truly differs: no CRL covers it", 0, 2, VERDICT_REASON_REVOCATION_UNKNOWN},
    };
    X509_NAME *dps[3] = {p1_other, p1, p2};

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct ts_cert *ca = rows[i].issuer == 0 ? &second : &third;
        struct pki_cert_spec ls = ts_leaf_spec("leaf", TS_NOW - TS_DAY, TS_NOW + 300 * TS_DAY);
        uint8_t *cdp = NULL;
        size_t cdp_len = 0;

        cdp_der(&cdp, &cdp_len, dps[rows[i].dp], crl_ca_shouted);
        ls.serial = LEAF_SERIAL;
        ls.crl_dp_raw = cdp;
        ls.crl_dp_raw_len = cdp_len;
        X509 *leaf = ts_issue(&ls, ca->key, ca);
        X509 *path[3] = {leaf, ca->cert, pki.cert[ROOT]};
        STACK_OF(X509) *chain = ts_stack_of(path, 3);
        STACK_OF(X509) *candidates = ts_stack_of(&pki.cert[CRL_CA], 1);
        struct verdict v;

        verdict_init(&v, 1);
        int rc = revocation_check_chain(&v, NULL, &src, chain, REVOCATION_LEAF, 0,
                                        STALE_FAIL_CLOSED, TS_NOW, candidates, NULL);
        if (rows[i].want == VERDICT_REASON_OK)
            cr_expect_eq(rc, 0, "%s: %s (%s)", rows[i].what, verdict_reason_name(v.reason),
                         v.detail);
        else
            cr_expect(rc == -1 && v.reason == rows[i].want, "%s: %s (%s)", rows[i].what,
                      rc == 0 ? "accepted" : verdict_reason_name(v.reason), v.detail);
        sk_X509_free(candidates);
        sk_X509_free(chain);
        X509_free(leaf);
        OPENSSL_free(cdp);
    }
    OPENSSL_free(root_der);
    X509_CRL_free(root_crl);
    OPENSSL_free(crl);
    OPENSSL_free(idp);
    X509_NAME_free(second_shouted);
    X509_NAME_free(crl_ca_shouted);
    X509_NAME_free(p1);
    X509_NAME_free(p1_other);
    X509_NAME_free(p2);
    crl_cache_free(c);
    ts_cert_free(&second);
    ts_cert_free(&third);
    ts_chain_free(&pki);
    certval_rcu_reader_unregister();
}
