/* Reading a certificate cheaply: see cert_read.h. */
#include "cert_read.h"
#include "validator_internal.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* ---- validity times --------------------------------------------------------- */

/* Years the fast path covers on the |at| side: X509_cmp_time formats |at|
 * as an ASN1_TIME first, which works for years 0 to 9999; 1970 on keeps
 * the arithmetic away from negative times. */
#define CMP_TIME_MIN_AT 0
#define CMP_TIME_MAX_AT INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

/* The time itself is read by cv_asn1_time_to_unix (validator/load.c), whose
 * checks are X509_cmp_time's (type, exact length, digits and a final 'Z')
 * and then its parser's field ranges (month 1-12, day 1-31, hour 0-23,
 * minute and second 0-59); a UTCTime year below 50 is 20YY; a day past
 * the end of its month counts on into the next month, as the Julian day
 * arithmetic of X509_cmp_time's ASN1_TIME_diff does. */

int cert_cmp_time(const ASN1_TIME *t, int64_t at)
{
    int64_t secs;

    if (at < CMP_TIME_MIN_AT || at > CMP_TIME_MAX_AT) {
        time_t tt = (time_t)at;
        return X509_cmp_time(t, &tt);
    }
    if (t == NULL || cv_asn1_time_to_unix(&secs, t) != 0)
        return 0;
    return secs <= at ? -1 : 1; /* X509_cmp_time: "at or before" is -1 */
}

/* ---- extensions ------------------------------------------------------------- */

/* is_oid: |o| is the OID of built-in |want| (OBJ_nid2obj's object, static:
 * no lock, no allocation), compared by its bytes. */
static bool is_oid(const ASN1_OBJECT *o, const ASN1_OBJECT *want)
{
    size_t len = OBJ_length(want);

    return len > 0 && OBJ_length(o) == len &&
           memcmp(OBJ_get0_data(o), OBJ_get0_data(want), len) == 0;
}

/* find_ext: the one extension of |x| with OID |want|; NULL when none, and
 * when there are two or more (*count says how many, up to 2). */
static X509_EXTENSION *find_ext(const X509 *x, const ASN1_OBJECT *want, int *count)
{
    X509_EXTENSION *found = NULL;
    int n = X509_get_ext_count(x);

    *count = 0;
    for (int i = 0; i < n && *count < 2; i++) {
        X509_EXTENSION *e = X509_get_ext(x, i);

        if (is_oid(X509_EXTENSION_get_object(e), want)) {
            found = e;
            (*count)++;
        }
    }
    return *count == 1 ? found : NULL; /* twice: X509_get_ext_d2i gives none */
}

void *cert_ext_d2i(const X509 *x, int nid)
{
    const ASN1_OBJECT *want = OBJ_nid2obj(nid);
    X509_EXTENSION *e;
    int count;

    if (want == NULL)
        return NULL;
    e = find_ext(x, want, &count);
    return e != NULL ? X509V3_EXT_d2i(e) : NULL;
}

void cert_exts_init(struct cert_exts *e, const X509 *x)
{
    const ASN1_OBJECT *san = OBJ_nid2obj(NID_subject_alt_name);
    const ASN1_OBJECT *nc = OBJ_nid2obj(NID_name_constraints);
    const ASN1_OBJECT *eku = OBJ_nid2obj(NID_ext_key_usage);
    X509_EXTENSION *found[3] = {NULL, NULL, NULL};
    int count[3] = {0, 0, 0};
    int n = X509_get_ext_count(x);

    memset(e, 0, sizeof(*e));
    /* One pass for the three; a second copy of one makes it none. */
    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext = X509_get_ext(x, i);
        const ASN1_OBJECT *o = X509_EXTENSION_get_object(ext);
        int k = is_oid(o, san) ? 0 : is_oid(o, nc) ? 1 : is_oid(o, eku) ? 2 : -1;

        if (k >= 0) {
            found[k] = ext;
            count[k]++;
        }
    }
    e->has_san = count[0] > 0;
    e->san = count[0] == 1 ? X509V3_EXT_d2i(found[0]) : NULL;
    e->nc = count[1] == 1 ? X509V3_EXT_d2i(found[1]) : NULL;
    e->eku = count[2] == 1 ? X509V3_EXT_d2i(found[2]) : NULL;
    e->undecoded = (count[0] == 1 && e->san == NULL) || (count[1] == 1 && e->nc == NULL) ||
                   (count[2] == 1 && e->eku == NULL);
    ERR_clear_error();
}

/* The certificate extensions BoringSSL's own path processing looks up by
 * NID (x509v3_cache_extensions, the policy and name checks of
 * X509_verify_cert), the usual ones first. */
static const int known_ext_nids[] = {
    NID_basic_constraints,      NID_key_usage,           NID_ext_key_usage,
    NID_subject_key_identifier, NID_authority_key_identifier,
    NID_subject_alt_name,       NID_certificate_policies, NID_crl_distribution_points,
    NID_info_access,            NID_name_constraints,    NID_policy_constraints,
    NID_policy_mappings,        NID_inhibit_any_policy,  NID_issuer_alt_name,
    NID_freshest_crl,           NID_netscape_cert_type,  NID_sinfo_access,
    NID_proxyCertInfo,
};

void cert_intern_ext_oids(X509 *x)
{
    int n = X509_get_ext_count(x);

    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext = X509_get_ext(x, i);
        const ASN1_OBJECT *o = X509_EXTENSION_get_object(ext);

        for (size_t k = 0; k < sizeof(known_ext_nids) / sizeof(known_ext_nids[0]); k++) {
            const ASN1_OBJECT *want = OBJ_nid2obj(known_ext_nids[k]);

            if (want != NULL && is_oid(o, want)) {
                /* A built-in object is static: OBJ_dup returns it as is,
                 * so this cannot fail for want of memory. */
                X509_EXTENSION_set_object(ext, want);
                break;
            }
        }
    }
}

void cert_exts_clear(struct cert_exts *e)
{
    if (e == NULL)
        return;
    GENERAL_NAMES_free(e->san);
    NAME_CONSTRAINTS_free(e->nc);
    EXTENDED_KEY_USAGE_free(e->eku);
    memset(e, 0, sizeof(*e));
}

/* ---- algorithms ------------------------------------------------------------- */

void cert_algs_read(struct cert_algs *a, X509 *x)
{
    X509_PUBKEY *pub = X509_get_X509_PUBKEY(x);
    ASN1_OBJECT *alg_oid = NULL;
    X509_ALGOR *alg = NULL;
    const void *pval = NULL;
    int ptype = V_ASN1_UNDEF;
    EVP_PKEY *k;

    memset(a, 0, sizeof(*a));
    a->sig_nid = X509_get_signature_nid(x);
    a->complete = true;
    if (pub == NULL || !X509_PUBKEY_get0_param(&alg_oid, NULL, NULL, NULL, pub))
        goto done;
    a->key_read = true;
    a->key_nid = OBJ_obj2nid(alg_oid);
    switch (a->key_nid) {
    case NID_rsaEncryption:
        k = X509_get_pubkey(x);
        a->rsa_decoded = k != NULL && EVP_PKEY_get0_RSA(k) != NULL;
        a->rsa_bits = a->rsa_decoded ? RSA_bits(EVP_PKEY_get0_RSA(k)) : 0;
        a->complete = a->rsa_decoded;
        EVP_PKEY_free(k);
        break;
    case NID_X9_62_id_ecPublicKey:
        a->ec_params = X509_PUBKEY_get0_param(NULL, NULL, NULL, &alg, pub) && alg != NULL;
        if (a->ec_params) {
            X509_ALGOR_get0(NULL, &ptype, &pval, alg);
            a->ec_named = ptype == V_ASN1_OBJECT;
            a->ec_curve = a->ec_named ? OBJ_obj2nid(pval) : NID_undef;
        }
        a->complete = a->ec_params;
        break;
    default:
        break;
    }
done:
    ERR_clear_error();
}

/* ---- names in RFC 2253 form ------------------------------------------------- */

/* The attributes the direct path knows; any other goes the long way. */
static const int plain_attr_nids[] = {
    NID_commonName,       NID_organizationName,  NID_organizationalUnitName,
    NID_countryName,      NID_localityName,      NID_stateOrProvinceName,
    NID_serialNumber,     NID_userId,            NID_domainComponent,
    NID_pkcs9_emailAddress,
};

/* plain_attr: the short name X509_NAME_print_ex(XN_FLAG_FN_SN) prints for
 * |o| when it is one of plain_attr_nids, else NULL. */
static const char *plain_attr(const ASN1_OBJECT *o)
{
    for (size_t i = 0; i < sizeof(plain_attr_nids) / sizeof(plain_attr_nids[0]); i++)
        if (is_oid(o, OBJ_nid2obj(plain_attr_nids[i])))
            return OBJ_nid2sn(plain_attr_nids[i]);
    return NULL;
}

/* plain_char: a character RFC 2253 never escapes anywhere in a value
 * (2.4: not one of ,+"\<>; and not '#' or a space at either end; '='
 * is left to the long way too). */
static bool plain_char(uint8_t c)
{
    static const char extra[] = " -._:@/'()*?!&%$~^`{}|[]";

    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr(extra, c) != NULL);
}

/* plain_value: |v| is a string type whose bytes print as they are (ASCII
 * in PrintableString, UTF8String or IA5String), none escaped. */
static bool plain_value(const ASN1_STRING *v)
{
    const uint8_t *p = ASN1_STRING_get0_data(v);
    int len = ASN1_STRING_length(v), type = ASN1_STRING_type(v);

    if (type != V_ASN1_PRINTABLESTRING && type != V_ASN1_UTF8STRING && type != V_ASN1_IA5STRING)
        return false;
    if (len <= 0 || p[0] == ' ' || p[len - 1] == ' ')
        return false;
    for (int i = 0; i < len; i++)
        if (!plain_char(p[i]))
            return false;
    return true;
}

/* put appends |len| bytes to |out| (|*n| used of |cap|, one kept for the
 * NUL), dropping what does not fit, as the BIO copy's cut does. */
static void put(char *out, size_t cap, size_t *n, const void *data, size_t len)
{
    if (*n + 1 >= cap)
        return;
    if (len > cap - 1 - *n)
        len = cap - 1 - *n;
    memcpy(out + *n, data, len);
    *n += len;
}

/* name_direct writes |name| when every entry is plain, its own RDN, in
 * the reverse order RFC 2253 prints (XN_FLAG_DN_REV), "," between RDNs.
 * False, with |out| undefined, when the long way must print it. */
static bool name_direct(char *out, size_t outlen, const X509_NAME *name)
{
    int count = X509_NAME_entry_count(name), prev_set = -1;
    size_t n = 0;

    for (int i = count - 1; i >= 0; i--) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
        const char *sn = plain_attr(X509_NAME_ENTRY_get_object(e));
        int set = X509_NAME_ENTRY_set(e);

        if (sn == NULL || set == prev_set || !plain_value(v))
            return false; /* an unusual attribute or value, or a multi-valued RDN */
        if (prev_set != -1)
            put(out, outlen, &n, ",", 1);
        prev_set = set;
        put(out, outlen, &n, sn, strlen(sn));
        put(out, outlen, &n, "=", 1);
        put(out, outlen, &n, ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v));
    }
    out[n] = '\0';
    return true;
}

/* name_printed is the long way: X509_NAME_print_ex into a memory BIO. */
static void name_printed(char *out, size_t outlen, const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    const uint8_t *data;
    size_t len;

    out[0] = '\0';
    if (b == NULL || X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) < 0 ||
        !BIO_mem_contents(b, &data, &len)) {
        X509_NAME_oneline(name, out, (int)outlen);
    } else {
        if (len >= outlen)
            len = outlen - 1;
        if (len > 0) /* an empty name: BoringSSL gives no buffer at all */
            memcpy(out, data, len);
        out[len] = '\0';
    }
    BIO_free(b);
    ERR_clear_error();
}

void cert_name_rfc2253(char *out, size_t outlen, const X509_NAME *name)
{
    if (!name_direct(out, outlen, name))
        name_printed(out, outlen, name);
}
