/* Tests of validator/cert_read.c: each cheap reader gives exactly what the
 * BoringSSL call it replaces gives, on hand-picked edge cases and on many
 * generated inputs compared with that call directly. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/obj.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cert_read.h"
#include "pki_gen.h"
#include "support/clock.h"

/* ---- cert_cmp_time -------------------------------------------------------- */

static ASN1_TIME *time_of(int type, const char *s)
{
    ASN1_TIME *t = ASN1_STRING_type_new(type);

    cr_assert_not_null(t);
    cr_assert(ASN1_STRING_set(t, s, (int)strlen(s)));
    return t;
}

static int boringssl_cmp(const ASN1_TIME *t, int64_t at)
{
    time_t tt = (time_t)at;
    return X509_cmp_time(t, &tt);
}

Test(cert_read, cmp_time_edge_cases)
{
    static const int64_t mar1 = 1709251200; /* 2024-03-01T00:00:00Z */
    static const struct {
        int type;
        const char *s;
        int64_t at;
        int want;
    } rows[] = {
        {V_ASN1_UTCTIME, "240301000000Z", mar1, -1},  /* equal: at or before */
        {V_ASN1_UTCTIME, "240301000001Z", mar1, 1},
        {V_ASN1_UTCTIME, "240229235959Z", mar1, -1},
        {V_ASN1_UTCTIME, "240230000000Z", mar1, -1},  /* Feb 30 counts as Mar 1 */
        {V_ASN1_UTCTIME, "240231000000Z", mar1, 1},   /* ... Feb 31 as Mar 2 */
        {V_ASN1_UTCTIME, "240431000000Z", mar1, 1},
        {V_ASN1_UTCTIME, "240301000060Z", mar1, 0},   /* second 60 */
        {V_ASN1_UTCTIME, "240301240000Z", mar1, 0},   /* hour 24 */
        {V_ASN1_UTCTIME, "240300000000Z", mar1, 0},   /* day 0 */
        {V_ASN1_UTCTIME, "241301000000Z", mar1, 0},   /* month 13 */
        {V_ASN1_UTCTIME, "240001000000Z", mar1, 0},   /* month 0 */
        {V_ASN1_UTCTIME, "240132000000Z", mar1, 0},   /* day 32 */
        {V_ASN1_UTCTIME, "500101000000Z", mar1, -1},  /* 1950 */
        {V_ASN1_UTCTIME, "491231235959Z", mar1, 1},   /* 2049 */
        {V_ASN1_UTCTIME, "2403010000Z", mar1, 0},     /* no seconds */
        {V_ASN1_UTCTIME, "24030100000aZ", mar1, 0},
        {V_ASN1_UTCTIME, "24030100000 Z", mar1, 0},
        {V_ASN1_UTCTIME, "240301000000+", mar1, 0},
        {V_ASN1_UTCTIME, "", mar1, 0},
        {V_ASN1_GENERALIZEDTIME, "20240301000000Z", mar1, -1},
        {V_ASN1_GENERALIZEDTIME, "20240301000001Z", mar1, 1},
        {V_ASN1_GENERALIZEDTIME, "00000101000000Z", mar1, -1},
        {V_ASN1_GENERALIZEDTIME, "99991231235959Z", mar1, 1},
        {V_ASN1_GENERALIZEDTIME, "2024030100000Z", mar1, 0},
        {V_ASN1_GENERALIZEDTIME, "20240301000000.5Z", mar1, 0},
        {V_ASN1_GENERALIZEDTIME, "20240301000000+0000", mar1, 0},
        {V_ASN1_OCTET_STRING, "240301000000Z", mar1, 0},
        /* |at| outside 1970-9999: X509_cmp_time's own answer. */
        {V_ASN1_UTCTIME, "240301000000Z", -1, 1},
        {V_ASN1_UTCTIME, "240301000000Z", INT64_C(253402300800), 0},
        {V_ASN1_UTCTIME, "691231235959Z", 0, -1},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        ASN1_TIME *t = time_of(rows[i].type, rows[i].s);

        cr_expect_eq(boringssl_cmp(t, rows[i].at), rows[i].want, "row %zu (%s): BoringSSL", i,
                     rows[i].s);
        cr_expect_eq(cert_cmp_time(t, rows[i].at), rows[i].want, "row %zu (%s)", i, rows[i].s);
        ASN1_TIME_free(t);
    }
}

/* A time string near the valid forms, for instant |u|: its fields,
 * sometimes one of them out of range, a stray character, one missing or
 * one extra. */
static void random_time(char *out, size_t cap, int *type, int64_t u, unsigned *seed)
{
    static const char junk[] = "0123456789Z+-. a";
    time_t tt = (time_t)u;
    struct tm tm;
    int f[6];
    size_t n;
    bool gen;

    gmtime_r(&tt, &tm);
    f[0] = tm.tm_year + 1900;
    f[1] = tm.tm_mon + 1;
    f[2] = tm.tm_mday;
    f[3] = tm.tm_hour;
    f[4] = tm.tm_min;
    f[5] = tm.tm_sec;
    gen = f[0] < 1950 || f[0] > 2049 || rand_r(seed) % 2 != 0;
    if (rand_r(seed) % 4 == 0) /* a field anywhere in 0-99 */
        f[1 + rand_r(seed) % 5] = rand_r(seed) % 100;
    snprintf(out, cap, gen ? "%04d%02d%02d%02d%02d%02dZ" : "%02d%02d%02d%02d%02d%02dZ",
             gen ? f[0] : f[0] % 100, f[1], f[2], f[3], f[4], f[5]);
    n = strlen(out);
    switch (rand_r(seed) % 16) {
    case 0:
        out[rand_r(seed) % n] = junk[rand_r(seed) % (sizeof(junk) - 1)];
        break;
    case 1:
        out[n - 1] = '\0';
        break;
    case 2:
        if (n + 1 < cap) {
            out[n] = 'Z';
            out[n + 1] = '\0';
        }
        break;
    default:
        break;
    }
    *type = rand_r(seed) % 32 == 0 ? V_ASN1_IA5STRING
            : gen                  ? V_ASN1_GENERALIZEDTIME
                                   : V_ASN1_UTCTIME;
}

Test(cert_read, cmp_time_matches_boringssl_on_generated_times)
{
    static const int64_t max_at = INT64_C(253402300799); /* 9999-12-31T23:59:59Z */
    unsigned seed = 15;

    for (int i = 0; i < 50000; i++) {
        /* The time itself: near the test clock, or anywhere in years 0-9999. */
        int64_t u = rand_r(&seed) % 2 ? TS_NOW + rand_r(&seed) % 20001 - 10000
                                      : ((int64_t)rand_r(&seed) << 16 | rand_r(&seed) % 65536) %
                                                (max_at + INT64_C(62167219200)) -
                                            INT64_C(62167219200);
        /* Compared at that instant, a second either side, or anywhere. */
        int64_t at = rand_r(&seed) % 4 != 0 ? u + rand_r(&seed) % 3 - 1
                                            : (int64_t)rand_r(&seed) * 117 % max_at;
        char s[32];
        int type;
        ASN1_TIME *t;

        random_time(s, sizeof(s), &type, u, &seed);
        t = time_of(type, s);
        cr_assert_eq(cert_cmp_time(t, at), boringssl_cmp(t, at), "%s (type %d) at %lld", s,
                     type, (long long)at);
        ASN1_TIME_free(t);
    }
}

/* ---- cert_ext_d2i ------------------------------------------------------------ */

/* Extension values (DER), by what they are. */
static const uint8_t san_dns[] = {0x30, 0x0d, 0x82, 0x0b, 'e', 'x', 'a', 'm', 'p', 'l',
                                  'e', '.', 'c', 'o', 'm'};
static const uint8_t san_uri[] = {0x30, 0x0a, 0x86, 0x08, 'u', 'r', 'n', ':', 'x', ':', 'y', 'z'};
static const uint8_t nc_dns[] = {0x30, 0x0d, 0xa0, 0x0b, 0x30, 0x09, 0x82, 0x07,
                                 'e', 'x', 'a', '.', 'c', 'o', 'm'};
static const uint8_t eku_client[] = {0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01,
                                     0x05, 0x05, 0x07, 0x03, 0x02};
static const uint8_t garbage[] = {0x04, 0x02, 0xff, 0x00};
static const uint8_t empty_seq[] = {0x30, 0x00};

struct ext_spec {
    const char *oid; /* dotted */
    const uint8_t *der;
    size_t len;
};

/* cert_with makes a certificate holding |exts| in that order, signed and
 * parsed back from DER when |parsed| (so its OIDs are decoded objects, as
 * in a presented certificate), else as built in memory. */
static X509 *cert_with(const struct ext_spec *exts, size_t n, bool parsed, EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    uint8_t *der = NULL;
    const uint8_t *p;
    int len;

    cr_assert(x != NULL && name != NULL);
    cr_assert(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const uint8_t *)"ext test",
                                         -1, -1, 0));
    cr_assert(X509_set_version(x, X509_VERSION_3));
    cr_assert(ASN1_INTEGER_set(X509_get_serialNumber(x), 7));
    cr_assert(X509_set_subject_name(x, name) && X509_set_issuer_name(x, name));
    cr_assert(X509_gmtime_adj(X509_getm_notBefore(x), 0) != NULL);
    cr_assert(X509_gmtime_adj(X509_getm_notAfter(x), 86400) != NULL);
    cr_assert(X509_set_pubkey(x, key));
    for (size_t i = 0; i < n; i++) {
        ASN1_OBJECT *o = OBJ_txt2obj(exts[i].oid, 1);
        ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
        X509_EXTENSION *e;

        cr_assert(o != NULL && v != NULL);
        cr_assert(ASN1_OCTET_STRING_set(v, exts[i].der, (int)exts[i].len));
        e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, v);
        cr_assert_not_null(e);
        cr_assert(X509_add_ext(x, e, -1));
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(v);
        ASN1_OBJECT_free(o);
    }
    X509_NAME_free(name);
    cr_assert(X509_sign(x, key, EVP_sha256()) > 0);
    if (!parsed)
        return x;
    len = i2d_X509(x, &der);
    cr_assert_gt(len, 0);
    X509_free(x);
    p = der;
    x = d2i_X509(NULL, &p, len);
    cr_assert_not_null(x);
    OPENSSL_free(der);
    return x;
}

/* same_value: both NULL, or both the same DER. */
static bool same_value(int nid, void *a, void *b)
{
    uint8_t *da = NULL, *db = NULL;
    int la, lb;
    bool same;

    if (a == NULL || b == NULL)
        return a == b;
    switch (nid) {
    case NID_subject_alt_name:
        la = i2d_GENERAL_NAMES(a, &da);
        lb = i2d_GENERAL_NAMES(b, &db);
        GENERAL_NAMES_free(a);
        GENERAL_NAMES_free(b);
        break;
    case NID_name_constraints:
        la = ASN1_item_i2d(a, &da, ASN1_ITEM_rptr(NAME_CONSTRAINTS));
        lb = ASN1_item_i2d(b, &db, ASN1_ITEM_rptr(NAME_CONSTRAINTS));
        NAME_CONSTRAINTS_free(a);
        NAME_CONSTRAINTS_free(b);
        break;
    default:
        la = i2d_EXTENDED_KEY_USAGE(a, &da);
        lb = i2d_EXTENDED_KEY_USAGE(b, &db);
        EXTENDED_KEY_USAGE_free(a);
        EXTENDED_KEY_USAGE_free(b);
        break;
    }
    same = la > 0 && la == lb && memcmp(da, db, (size_t)la) == 0;
    OPENSSL_free(da);
    OPENSSL_free(db);
    return same;
}

Test(cert_read, ext_d2i_matches_x509_get_ext_d2i)
{
    /* Each row: the extensions of a certificate, and whether SAN, NC and
     * EKU decode from it (X509_get_ext_d2i's answer, asserted too). */
    static const struct {
        struct ext_spec ext[4];
        size_t n;
        bool san, nc, eku;
    } rows[] = {
        {{{0}}, 0, false, false, false},
        {{{"2.5.29.17", san_dns, sizeof(san_dns)}}, 1, true, false, false},
        {{{"2.5.29.19", empty_seq, sizeof(empty_seq)},
          {"2.5.29.17", san_uri, sizeof(san_uri)},
          {"2.5.29.37", eku_client, sizeof(eku_client)},
          {"2.5.29.30", nc_dns, sizeof(nc_dns)}},
         4, true, true, true},
        /* Twice: none. */
        {{{"2.5.29.17", san_dns, sizeof(san_dns)}, {"2.5.29.17", san_uri, sizeof(san_uri)}},
         2, false, false, false},
        {{{"2.5.29.37", eku_client, sizeof(eku_client)},
          {"2.5.29.30", nc_dns, sizeof(nc_dns)},
          {"2.5.29.37", eku_client, sizeof(eku_client)}},
         3, false, true, false},
        /* Not decodable: none. */
        {{{"2.5.29.17", garbage, sizeof(garbage)}, {"2.5.29.37", garbage, sizeof(garbage)}},
         2, false, false, false},
        /* OIDs that share SAN's first bytes are other extensions. */
        {{{"2.5.29.17.1", san_dns, sizeof(san_dns)},
          {"2.5.29.1", san_dns, sizeof(san_dns)},
          {"2.5.29.170", san_dns, sizeof(san_dns)}},
         3, false, false, false},
        {{{"2.5.29.17.1", san_dns, sizeof(san_dns)}, {"2.5.29.17", san_uri, sizeof(san_uri)}},
         2, true, false, false},
    };
    static const int nids[] = {NID_subject_alt_name, NID_name_constraints, NID_ext_key_usage};
    EVP_PKEY *key = pki_key_new(PKI_KEY_P256);

    cr_assert_not_null(key);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        for (int parsed = 0; parsed < 2; parsed++) {
            X509 *x = cert_with(rows[i].ext, rows[i].n, parsed != 0, key);
            const bool want[] = {rows[i].san, rows[i].nc, rows[i].eku};

            for (size_t k = 0; k < 3; k++) {
                void *ours = cert_ext_d2i(x, nids[k]);
                void *theirs = X509_get_ext_d2i(x, nids[k], NULL, NULL);

                cr_expect_eq(theirs != NULL, want[k], "row %zu parsed %d nid %d: BoringSSL", i,
                             parsed, nids[k]);
                cr_expect(same_value(nids[k], ours, theirs), "row %zu parsed %d nid %d", i,
                          parsed, nids[k]);
            }
            X509_free(x);
        }
    }
    EVP_PKEY_free(key);
}

/* ---- cert_intern_ext_oids ------------------------------------------------------ */

static const uint8_t ku_sign[] = {0x03, 0x02, 0x07, 0x80};
static const uint8_t ski[] = {0x04, 0x02, 0x01, 0x02};

Test(cert_read, intern_ext_oids_keeps_the_certificate_and_binds_known_oids)
{
    /* Known extensions, OIDs next to known ones, and an unknown one. */
    static const struct ext_spec exts[] = {
        {"2.5.29.19", empty_seq, sizeof(empty_seq)},
        {"2.5.29.15", ku_sign, sizeof(ku_sign)},
        {"2.5.29.17.1", san_dns, sizeof(san_dns)},
        {"2.5.29.17", san_dns, sizeof(san_dns)},
        {"2.5.29.14", ski, sizeof(ski)},
        {"2.5.29.170", san_dns, sizeof(san_dns)},
        {"2.5.29.37", eku_client, sizeof(eku_client)},
        {"1.2.3.4.5", garbage, sizeof(garbage)},
        {"2.5.29.30", nc_dns, sizeof(nc_dns)},
    };
    static const bool known[] = {true, true, false, true, true, false, true, false, true};
    const size_t n = sizeof(exts) / sizeof(exts[0]);
    EVP_PKEY *key = pki_key_new(PKI_KEY_P256);
    X509 *x;
    uint8_t *before = NULL, *after = NULL;
    int nid_before[sizeof(exts) / sizeof(exts[0])];
    int lb, la;

    cr_assert_not_null(key);
    x = cert_with(exts, n, true, key);
    lb = i2d_X509(x, &before);
    cr_assert_gt(lb, 0);
    for (size_t i = 0; i < n; i++)
        nid_before[i] = OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, (int)i)));

    cert_intern_ext_oids(x);
    cert_intern_ext_oids(x); /* again: already the built-in objects */

    cr_assert_eq(X509_get_ext_count(x), (int)n);
    for (size_t i = 0; i < n; i++) {
        const ASN1_OBJECT *o = X509_EXTENSION_get_object(X509_get_ext(x, (int)i));
        char txt[64];

        OBJ_obj2txt(txt, sizeof(txt), o, 1);
        cr_expect_str_eq(txt, exts[i].oid, "extension %zu keeps its OID", i);
        cr_expect_eq(OBJ_obj2nid(o), nid_before[i], "extension %zu keeps its NID", i);
        cr_expect_eq(nid_before[i] != NID_undef, known[i], "extension %zu: BoringSSL's NID", i);
        if (known[i])
            cr_expect_eq(o, OBJ_nid2obj(nid_before[i]), "extension %zu is the built-in object",
                         i);
        else
            cr_expect_neq(o, OBJ_nid2obj(NID_subject_alt_name), "extension %zu untouched", i);
    }
    /* Same bytes, same signature, same decoded values. */
    la = i2d_X509(x, &after);
    cr_assert_eq(la, lb);
    cr_expect(memcmp(before, after, (size_t)lb) == 0, "the encoding is unchanged");
    cr_expect_eq(X509_verify(x, key), 1, "the signature still verifies");
    cr_expect_neq(X509_get_extension_flags(x) & EXFLAG_INVALID, EXFLAG_INVALID);
    cr_expect_eq(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    cr_expect(same_value(NID_subject_alt_name, cert_ext_d2i(x, NID_subject_alt_name),
                         X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL)));
    OPENSSL_free(before);
    OPENSSL_free(after);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* ---- cert_name_rfc2253 --------------------------------------------------------- */

/* printed: the reference, what validator.c printed before
 * cert_name_rfc2253: X509_NAME_print_ex(XN_FLAG_RFC2253) into a memory
 * BIO, cut at outlen - 1. */
static void printed(char *out, size_t outlen, const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    const uint8_t *data;
    size_t len;

    cr_assert_not_null(b);
    cr_assert_geq(X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253), 0);
    cr_assert(BIO_mem_contents(b, &data, &len));
    if (len >= outlen)
        len = outlen - 1;
    if (len > 0)
        memcpy(out, data, len);
    out[len] = '\0';
    BIO_free(b);
}

static void expect_same(const X509_NAME *name, const char *what)
{
    static const size_t caps[] = {256, 1, 2, 9, 17, 40};

    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        char want[256], got[256];

        memset(got, 'x', sizeof(got));
        printed(want, caps[i], name);
        cert_name_rfc2253(got, caps[i], name);
        cr_expect_str_eq(got, want, "%s (buffer %zu)", what, caps[i]);
    }
}

static void add(X509_NAME *name, const char *attr, int type, const char *value, int set)
{
    cr_assert(X509_NAME_add_entry_by_txt(name, attr, type, (const uint8_t *)value,
                                         (int)strlen(value), -1, set),
              "%s=%s", attr, value);
}

Test(cert_read, names_print_as_x509_name_print_ex)
{
    static const struct {
        const char *attr;
        int type;
        const char *value;
        int set; /* 0: an RDN of its own, -1: with the one before */
    } rows[][4] = {
        {{"CN", V_ASN1_UTF8STRING, "alice", 0}},
        {{"C", V_ASN1_PRINTABLESTRING, "DE", 0}, {"O", V_ASN1_UTF8STRING, "Acme Corp", 0},
         {"OU", V_ASN1_UTF8STRING, "Devices", 0}, {"CN", V_ASN1_UTF8STRING, "dev-7", 0}},
        {{"CN", V_ASN1_UTF8STRING, "a,b", 0}},       /* escaped */
        {{"CN", V_ASN1_UTF8STRING, "#x", 0}},        /* '#' first */
        {{"CN", V_ASN1_UTF8STRING, " x", 0}},        /* space first */
        {{"CN", V_ASN1_UTF8STRING, "x ", 0}},        /* space last */
        {{"CN", V_ASN1_UTF8STRING, "a=b", 0}},
        {{"CN", V_ASN1_UTF8STRING, "a+b;c<d>e\"f\\g", 0}},
        {{"CN", V_ASN1_UTF8STRING, "caf\xc3\xa9", 0}},   /* UTF-8 */
        {{"CN", V_ASN1_T61STRING, "caf\xe9", 0}},        /* Latin-1 */
        {{"CN", V_ASN1_UTF8STRING, "", 0}},
        {{"CN", V_ASN1_UTF8STRING, "tab\there", 0}},
        {{"CN", V_ASN1_UTF8STRING, "a", 0}, {"O", V_ASN1_UTF8STRING, "b", -1}}, /* a+b */
        {{"title", V_ASN1_UTF8STRING, "boss", 0}},
        {{"1.2.3.4", V_ASN1_UTF8STRING, "x", 0}},
        {{"serialNumber", V_ASN1_PRINTABLESTRING, "SN-42", 0},
         {"UID", V_ASN1_UTF8STRING, "u1", 0}, {"DC", V_ASN1_IA5STRING, "example", 0},
         {"emailAddress", V_ASN1_IA5STRING, "a@b.example", 0}},
        {{"L", V_ASN1_UTF8STRING, "St. John's (old) town/x", 0},
         {"ST", V_ASN1_UTF8STRING, "a-b_c:d*e?f!g&h%i$j~k^l`m{n}o|p[q]r", 0}},
        {{"CN", V_ASN1_BMPSTRING, "\x00" "a", 0}},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        X509_NAME *name = X509_NAME_new();
        char what[32];

        cr_assert_not_null(name);
        for (size_t j = 0; j < 4 && rows[i][j].attr != NULL; j++) {
            if (rows[i][j].type == V_ASN1_BMPSTRING) {
                static const uint8_t bmp[] = {0x00, 'a', 0x00, 'b'};
                cr_assert(X509_NAME_add_entry_by_txt(name, rows[i][j].attr, V_ASN1_BMPSTRING,
                                                     bmp, sizeof(bmp), -1, 0));
                continue;
            }
            add(name, rows[i][j].attr, rows[i][j].type, rows[i][j].value, rows[i][j].set);
        }
        snprintf(what, sizeof(what), "row %zu", i);
        expect_same(name, what);
        X509_NAME_free(name);
    }
}

Test(cert_read, generated_names_print_as_x509_name_print_ex)
{
    static const char *const attrs[] = {"CN", "O", "OU", "C", "L", "ST", "serialNumber", "UID",
                                        "DC", "emailAddress", "title", "1.2.3.4"};
    static const int types[] = {V_ASN1_UTF8STRING, V_ASN1_PRINTABLESTRING, V_ASN1_IA5STRING,
                                V_ASN1_UTF8STRING, V_ASN1_T61STRING};
    /* Mostly characters the direct path takes, some it must leave. */
    static const char plain[] = "abcxyzABCXYZ0189 -._:@/'()*?!&%$~^`{}|[]";
    static const char special[] = ",+\"\\<>;#=\t\x01\x7f\xc3\xa9";
    unsigned seed = 2253;

    for (int i = 0; i < 3000; i++) {
        X509_NAME *name = X509_NAME_new();
        int entries = rand_r(&seed) % 5;
        char what[64];

        cr_assert_not_null(name);
        for (int j = 0; j < entries; j++) {
            char v[24];
            int len = 1 + rand_r(&seed) % 20;

            for (int k = 0; k < len; k++)
                v[k] = rand_r(&seed) % 12 == 0 ? special[rand_r(&seed) % (sizeof(special) - 1)]
                                               : plain[rand_r(&seed) % (sizeof(plain) - 1)];
            v[len] = '\0';
            add(name, attrs[rand_r(&seed) % 12], types[rand_r(&seed) % 5], v,
                j > 0 && rand_r(&seed) % 10 == 0 ? -1 : 0);
        }
        snprintf(what, sizeof(what), "name %d", i);
        expect_same(name, what);
        X509_NAME_free(name);
    }
}
