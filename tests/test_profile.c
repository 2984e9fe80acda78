/* Tests of validator/profile.c: resolving an id source, reading the tenant
 * or device id from a leaf (subject attribute or SAN URI prefix, refusing
 * ambiguous, empty, NUL-holding and oversize ids), the EKU check, the
 * validity length and "same CA", through validator/profile.h. */
#include <criterion/criterion.h>

#include <string.h>

#include <openssl/asn1.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/x509.h>

#include "support/clock.h"
#include "support/pki_builders.h"
#include "profile.h"

Test(profile, id_sources_resolve_or_are_refused)
{
    static const struct {
        enum id_source_type type;
        const char *value;
        int rc;
        const char *err;
    } rows[] = {
        {ID_SOURCE_NONE, NULL, 0, ""},
        {ID_SOURCE_SUBJECT_ATTR, "CN", 0, ""},
        {ID_SOURCE_SUBJECT_ATTR, "serialNumber", 0, ""},
        {ID_SOURCE_SUBJECT_ATTR, "UID", 0, ""},
        {ID_SOURCE_SUBJECT_ATTR, "2.5.4.10", 0, ""},
        {ID_SOURCE_SUBJECT_ATTR, "noSuchAttribute", -1,
         "unknown subject attribute \"noSuchAttribute\""},
        {ID_SOURCE_SUBJECT_ATTR, NULL, -1, "unknown subject attribute \"(none)\""},
        {ID_SOURCE_SAN_URI, "urn:tenant:", 0, ""},
        {ID_SOURCE_SAN_URI, "", -1, "SAN URI id source needs a prefix"},
        {ID_SOURCE_SAN_URI, NULL, -1, "SAN URI id source needs a prefix"},
        {(enum id_source_type)99, "x", -1, "unknown id source type 99"},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct id_source src = {rows[i].type, (char *)rows[i].value};
        struct profile_id id;
        char err[128] = "";

        cr_expect_eq(profile_id_init(&id, &src, err, sizeof(err)), rows[i].rc, "row %zu (%s): %s",
                     i, rows[i].value ? rows[i].value : "NULL", err);
        cr_expect_str_eq(err, rows[i].err, "row %zu", i);
        if (rows[i].rc == 0 && rows[i].type == ID_SOURCE_SAN_URI)
            cr_expect_eq(id.prefix_len, strlen(rows[i].value), "row %zu", i);
        profile_id_clear(&id);
        profile_id_clear(&id); /* cleared twice: still fine */
    }
    profile_id_clear(NULL);
}

/* leaf_with issues a leaf whose subject and SAN URIs are |spec|'s. */
static struct ts_cert leaf_with(struct pki_cert_spec *spec)
{
    spec->not_before = TS_NOW - TS_DAY;
    spec->not_after = TS_NOW + 30 * TS_DAY;
    spec->path_len = -1;
    spec->key_usage = PKI_KU_DIGITAL_SIGNATURE;
    return ts_cert_new(spec, PKI_KEY_P256, NULL);
}

/* read_id reads the id twice, decoding the leaf's extensions itself and
 * from a cert_exts decoded beforehand (as validator.c does), and asserts
 * both give the same answer. */
static int read_id(X509 *leaf, enum id_source_type type, const char *value, char *out,
                   size_t outlen)
{
    struct id_source src = {type, (char *)value};
    struct profile_id id;
    struct cert_exts exts;
    char err[128], again[PROFILE_ID_MAX];
    int rc;

    cr_assert_leq(outlen, sizeof(again));
    cr_assert_eq(profile_id_init(&id, &src, err, sizeof(err)), 0, "%s", err);
    cert_exts_init(&exts, leaf);
    cr_expect_eq(profile_read_id(again, outlen, leaf, &exts, &id),
                 profile_read_id(out, outlen, leaf, NULL, &id), "%s", value);
    cr_expect_str_eq(again, out, "%s", value);
    rc = profile_read_id(out, outlen, leaf, NULL, &id);
    cert_exts_clear(&exts);
    profile_id_clear(&id);
    return rc;
}

Test(profile, ids_are_read_from_the_subject_or_the_first_matching_san_uri)
{
    static const char *const uris[] = {"https://example.com/x", "urn:tenant:", "urn:tenant:acme",
                                       "urn:tenant:other"};
    static const struct {
        enum id_source_type type;
        const char *value, *want;
    } rows[] = {
        {ID_SOURCE_SUBJECT_ATTR, "CN", "alice"},
        {ID_SOURCE_SUBJECT_ATTR, "O", "Acme Corp"},
        {ID_SOURCE_SUBJECT_ATTR, "serialNumber", "SN-0042"},
        {ID_SOURCE_SUBJECT_ATTR, "UID", "dev-7"},
        {ID_SOURCE_SUBJECT_ATTR, "OU", NULL}, /* not in the subject */
        /* "urn:tenant:" alone holds no id; the first URI with one decides. */
        {ID_SOURCE_SAN_URI, "urn:tenant:", "acme"},
        {ID_SOURCE_SAN_URI, "https://example.com/", "x"},
        {ID_SOURCE_SAN_URI, "urn:device:", NULL},
    };
    struct pki_cert_spec spec = {.cn = "alice",
                                 .o = "Acme Corp",
                                 .serial_number = "SN-0042",
                                 .uid = "dev-7",
                                 .san_uris = uris,
                                 .n_san_uris = 4};
    struct ts_cert leaf = leaf_with(&spec);

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char out[PROFILE_ID_MAX];
        int rc = read_id(leaf.cert, rows[i].type, rows[i].value, out, sizeof(out));

        if (rows[i].want == NULL) {
            cr_expect_eq(rc, -1, "row %zu (%s): read \"%s\"", i, rows[i].value, out);
            cr_expect_str_eq(out, "", "row %zu: output not cleared", i);
        } else {
            cr_expect_eq(rc, 0, "row %zu (%s)", i, rows[i].value);
            cr_expect_str_eq(out, rows[i].want, "row %zu (%s)", i, rows[i].value);
        }
    }
    ts_cert_free(&leaf);
}

Test(profile, printable_string_subject_reads_like_utf8)
{
    struct pki_cert_spec spec = {.cn = "alice", .printable_subject = true};
    struct ts_cert leaf = leaf_with(&spec);
    char out[PROFILE_ID_MAX];

    cr_expect_eq(read_id(leaf.cert, ID_SOURCE_SUBJECT_ATTR, "CN", out, sizeof(out)), 0);
    cr_expect_str_eq(out, "alice");
    ts_cert_free(&leaf);
}

Test(profile, ambiguous_nul_holding_and_oversize_ids_are_refused)
{
    struct pki_cert_spec spec = {.cn = "alice", .o = "Acme"};
    struct ts_cert leaf = leaf_with(&spec);
    X509_NAME *subject = X509_get_subject_name(leaf.cert);
    static const uint8_t with_nul[] = {'a', 'c', 0, 'x'};
    char out[PROFILE_ID_MAX], small[5];

    /* An id exactly filling the buffer (with its NUL) fits; one more does not. */
    cr_expect_eq(read_id(leaf.cert, ID_SOURCE_SUBJECT_ATTR, "O", small, sizeof(small)), 0);
    cr_expect_str_eq(small, "Acme");
    cr_expect_eq(read_id(leaf.cert, ID_SOURCE_SUBJECT_ATTR, "CN", small, sizeof(small)), -1,
                 "a 5-byte id read into 5 bytes");

    /* profile_read_id does not verify signatures, so the subject can be
     * edited after issuance: a second CN makes the CN ambiguous. */
    cr_assert(X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                         (const uint8_t *)"mallory", -1, -1, 0));
    cr_expect_eq(read_id(leaf.cert, ID_SOURCE_SUBJECT_ATTR, "CN", out, sizeof(out)), -1,
                 "two CNs read as \"%s\"", out);
    /* An id holding a NUL could compare equal to a shorter one: refused. */
    cr_assert(X509_NAME_add_entry_by_NID(subject, NID_organizationalUnitName, V_ASN1_UTF8STRING,
                                         with_nul, sizeof(with_nul), -1, 0));
    cr_expect_eq(read_id(leaf.cert, ID_SOURCE_SUBJECT_ATTR, "OU", out, sizeof(out)), -1,
                 "an id with a NUL read as \"%s\"", out);
    /* An empty value is no id. */
    cr_assert(X509_NAME_add_entry_by_NID(subject, NID_localityName, V_ASN1_UTF8STRING,
                                         (const uint8_t *)"", 0, -1, 0));
    cr_expect_eq(read_id(leaf.cert, ID_SOURCE_SUBJECT_ATTR, "L", out, sizeof(out)), -1);
    ts_cert_free(&leaf);
}

Test(profile, none_source_reads_nothing)
{
    struct pki_cert_spec spec = {.cn = "alice"};
    struct ts_cert leaf = leaf_with(&spec);
    struct profile_id id = {.type = ID_SOURCE_NONE};
    char out[PROFILE_ID_MAX] = "stale";

    cr_expect_eq(profile_read_id(out, sizeof(out), leaf.cert, NULL, &id), -1);
    cr_expect_str_eq(out, "");
    ts_cert_free(&leaf);
}

Test(profile, eku_must_be_listed_and_any_eku_does_not_stand_in)
{
    static const struct {
        const char *leaf_eku; /* NULL = no extension */
        const char *want;
        bool has;
    } rows[] = {
        {TS_CLIENT_AUTH, TS_CLIENT_AUTH, true},
        {TS_CLIENT_AUTH, TS_SERVER_AUTH, false},
        {TS_SERVER_AUTH "," TS_CLIENT_AUTH, TS_CLIENT_AUTH, true},
        {"2.5.29.37.0", TS_CLIENT_AUTH, false}, /* anyExtendedKeyUsage */
        {NULL, TS_CLIENT_AUTH, false},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct pki_cert_spec spec = {.cn = "alice", .eku = rows[i].leaf_eku};
        struct ts_cert leaf = leaf_with(&spec);
        ASN1_OBJECT *want = OBJ_txt2obj(rows[i].want, 1);
        struct cert_exts exts;

        cr_assert_not_null(want);
        cert_exts_init(&exts, leaf.cert);
        cr_expect_eq(profile_has_eku(leaf.cert, NULL, want), rows[i].has,
                     "row %zu: %s wanted in %s", i, rows[i].want,
                     rows[i].leaf_eku ? rows[i].leaf_eku : "(no EKU)");
        cr_expect_eq(profile_has_eku(leaf.cert, &exts, want), rows[i].has,
                     "row %zu, decoded beforehand", i);
        cert_exts_clear(&exts);
        ASN1_OBJECT_free(want);
        ts_cert_free(&leaf);
    }
}

Test(profile, validity_seconds_is_not_after_minus_not_before)
{
    static const int64_t lengths[] = {1, TS_DAY, 396 * TS_DAY, 1827 * TS_DAY};

    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        struct pki_cert_spec spec = ts_leaf_spec("alice", TS_NOW, TS_NOW + lengths[i]);
        struct ts_cert leaf = ts_cert_new(&spec, PKI_KEY_P256, NULL);

        int64_t got = -1;

        cr_expect_eq(profile_validity_seconds(&got, leaf.cert), 0, "row %zu", i);
        cr_expect_eq(got, lengths[i], "row %zu", i);
        ts_cert_free(&leaf);
    }
}

Test(profile, same_ca_means_same_subject_and_key)
{
    struct ts_cert root = ts_ca_new("Root", NULL, TS_NOW - TS_DAY, TS_NOW + 365 * TS_DAY);
    struct ts_cert other_root = ts_ca_new("Other Root", NULL, TS_NOW - TS_DAY, TS_NOW + TS_DAY);
    struct ts_cert ca = ts_ca_new("Issuing CA", &root, TS_NOW - TS_DAY, TS_NOW + 365 * TS_DAY);
    struct pki_cert_spec s = ts_ca_spec("Issuing CA", TS_NOW - 2 * TS_DAY, TS_NOW + TS_DAY);
    /* The same name and key under another issuer (a cross-signed copy). */
    X509 *cross = ts_issue(&s, ca.key, &other_root);
    /* The same name with another key. */
    struct ts_cert rekeyed = ts_ca_new("Issuing CA", &root, TS_NOW - TS_DAY, TS_NOW + TS_DAY);
    /* Another name with the same key. */
    struct pki_cert_spec renamed_spec = ts_ca_spec("Renamed CA", TS_NOW - TS_DAY, TS_NOW + TS_DAY);
    X509 *renamed = ts_issue(&renamed_spec, ca.key, &root);

    cr_expect(profile_same_ca(ca.cert, ca.cert));
    cr_expect(profile_same_ca(ca.cert, cross), "cross-signed copy");
    cr_expect(profile_same_ca(cross, ca.cert), "cross-signed copy, other order");
    cr_expect(!profile_same_ca(ca.cert, rekeyed.cert), "same name, other key");
    cr_expect(!profile_same_ca(ca.cert, renamed), "same key, other name");
    cr_expect(!profile_same_ca(ca.cert, root.cert));
    X509_free(cross);
    X509_free(renamed);
    ts_cert_free(&rekeyed);
    ts_cert_free(&ca);
    ts_cert_free(&other_root);
    ts_cert_free(&root);
}
