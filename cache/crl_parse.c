/* CertificateList parser on CBS. See crl_parse_internal.h. */
#include "crl_parse_internal.h"
#include "civil_time.h"

#include <stdio.h>
#include <string.h>

#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/sha.h>

#include "crl_cache.h"
#include "crl_dp_internal.h"

#define ERRF(...) ((err) && (errlen) ? (void)snprintf((err), (errlen), __VA_ARGS__) : (void)0)

/* id-ce-* extension OIDs (2.5.29.x), DER content octets. */
static const uint8_t oid_crl_number[] = {0x55, 0x1d, 0x14};
static const uint8_t oid_reason_code[] = {0x55, 0x1d, 0x15};
static const uint8_t oid_invalidity_date[] = {0x55, 0x1d, 0x18};
static const uint8_t oid_delta_indicator[] = {0x55, 0x1d, 0x1b};
static const uint8_t oid_idp[] = {0x55, 0x1d, 0x1c};
static const uint8_t oid_cert_issuer[] = {0x55, 0x1d, 0x1d};
static const uint8_t oid_aki[] = {0x55, 0x1d, 0x23};
static const uint8_t oid_issuer_alt_name[] = {0x55, 0x1d, 0x12};
static const uint8_t oid_freshest_crl[] = {0x55, 0x1d, 0x2e};
static const uint8_t oid_aia[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01};

#define OID_IS(cbs, oid) CBS_mem_equal((cbs), (oid), sizeof(oid))

int crl_parse_integer_minimal(CBS *content)
{
    const uint8_t *p = CBS_data(content);
    size_t n = CBS_len(content);

    if (n == 0)
        return 0;
    serial_minimal(&p, &n); /* X.690 8.3.2 */
    CBS_init(content, p, n);
    return 1;
}

static int parse_digits(CBS *in, size_t n, int *out)
{
    int v = 0;
    uint8_t ch;

    for (size_t i = 0; i < n; i++) {
        if (!CBS_get_u8(in, &ch) || ch < '0' || ch > '9')
            return 0;
        v = v * 10 + (ch - '0');
    }
    *out = v;
    return 1;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

int crl_parse_time(CBS *in, int64_t *out)
{
    CBS t;
    unsigned tag;
    int y, mo, d, h, mi, s, yy;
    uint8_t z;

    if (!CBS_get_any_asn1(in, &t, &tag))
        return 0;
    if (tag == CBS_ASN1_UTCTIME && CBS_len(&t) == 13) {
        if (!parse_digits(&t, 2, &yy))
            return 0;
        y = yy < 50 ? 2000 + yy : 1900 + yy; /* RFC 5280 4.1.2.5.1 */
    } else if (tag == CBS_ASN1_GENERALIZEDTIME && CBS_len(&t) == 15) {
        if (!parse_digits(&t, 4, &y))
            return 0;
    } else {
        return 0;
    }
    if (!parse_digits(&t, 2, &mo) || !parse_digits(&t, 2, &d) || !parse_digits(&t, 2, &h) ||
        !parse_digits(&t, 2, &mi) || !parse_digits(&t, 2, &s) || !CBS_get_u8(&t, &z) || z != 'Z')
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59)
        return 0;
    *out = civil_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return 1;
}

/* parse_crl_number reads the cRLNumber extension value: a non-negative
 * INTEGER of at most 20 octets (RFC 5280 5.2.3). */
static int parse_crl_number(struct crl_parsed *out, CBS *value, char *err, size_t errlen)
{
    CBS n;
    int neg = 0;

    if (!CBS_get_asn1(value, &n, CBS_ASN1_INTEGER) || CBS_len(value) != 0 ||
        !CBS_is_valid_asn1_integer(&n, &neg) || neg) {
        ERRF("malformed cRLNumber");
        return -1;
    }
    crl_parse_integer_minimal(&n);
    if (CBS_len(&n) == 1 + CRL_NUMBER_MAX && CBS_data(&n)[0] == 0)
        CBS_skip(&n, 1); /* a 20-octet number with the top bit set */
    if (CBS_len(&n) > CRL_NUMBER_MAX) {
        ERRF("cRLNumber longer than %d octets", CRL_NUMBER_MAX);
        return -1;
    }
    memcpy(out->crl_number, CBS_data(&n), CBS_len(&n));
    out->crl_number_len = CBS_len(&n);
    out->has_crl_number = true;
    return 0;
}

static int idp_bool(CBS *seq, unsigned tag, int *out)
{
    CBS b;
    int present = 0;

    *out = 0;
    /* [n] IMPLICIT BOOLEAN: primitive context tag around the boolean octet. */
    if (!CBS_get_optional_asn1(seq, &b, &present, CBS_ASN1_CONTEXT_SPECIFIC | tag))
        return 0;
    if (!present)
        return 1;
    if (CBS_len(&b) != 1 || (CBS_data(&b)[0] != 0x00 && CBS_data(&b)[0] != 0xff))
        return 0;
    *out = CBS_data(&b)[0] == 0xff;
    return 1;
}

/* parse_idp reads issuingDistributionPoint (RFC 5280 5.2.5): the scope
 * 6.3.3 (b)(2) and (d) check a CRL against. The distribution point names
 * are hashed (crl_dp_internal.h); onlyContainsAttributeCerts makes the CRL
 * unusable for public-key certificates. */
static int parse_idp(struct crl_parsed *out, CBS *value, char *err, size_t errlen)
{
    CBS seq, dpn, reasons;
    int present = 0, user = 0, ca = 0, indirect = 0, attr = 0, rc;

    SHA256(CBS_data(value), CBS_len(value), out->scope_id);
    if (!CBS_get_asn1(value, &seq, CBS_ASN1_SEQUENCE) || CBS_len(value) != 0 ||
        !CBS_get_optional_asn1(&seq, &dpn, &present,
                               CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 0))
        goto err;
    if (present) {
        out->scope |= CRL_SCOPE_DISTRIBUTION_POINT;
        out->has_dp_name = true;
        /* RFC 5280 5.2.5: a relative name is relative to the CRL issuer. */
        rc = crl_dp_hash_names(dpn, out->issuer, out->dp_names, CRL_DP_NAMES_MAX,
                               &out->n_dp_names);
        if (rc == -2)
            out->flags |= CRL_PF_TOO_MANY_NAMES;
        else if (rc != 0)
            goto err;
    }
    if (!idp_bool(&seq, 1, &user) || !idp_bool(&seq, 2, &ca))
        goto err;
    if (!CBS_get_optional_asn1(&seq, &reasons, &present, CBS_ASN1_CONTEXT_SPECIFIC | 3))
        goto err;
    if (present && crl_dp_reasons(reasons, &out->reasons) != 0)
        goto err;
    if (!idp_bool(&seq, 4, &indirect) || !idp_bool(&seq, 5, &attr) || CBS_len(&seq) != 0)
        goto err;
    if (user + ca + attr > 1) /* RFC 5280 5.2.5: at most one may be TRUE */
        goto err;
    out->scope |= (user ? CRL_SCOPE_ONLY_USER_CERTS : 0) | (ca ? CRL_SCOPE_ONLY_CA_CERTS : 0);
    out->indirect = indirect;
    out->flags |= attr ? CRL_PF_ATTRIBUTE_CERTS : 0;
    return 0;
err:
    ERRF("malformed issuingDistributionPoint");
    return -1;
}

/* parse_delta reads deltaCRLIndicator's BaseCRLNumber (RFC 5280 5.2.4),
 * the same form as a cRLNumber. */
static int parse_delta(struct crl_parsed *out, CBS *value, char *err, size_t errlen)
{
    struct crl_parsed tmp;

    memset(&tmp, 0, sizeof(tmp));
    if (parse_crl_number(&tmp, value, err, errlen) != 0) {
        ERRF("malformed deltaCRLIndicator");
        return -1;
    }
    out->delta = true;
    memcpy(out->base_number, tmp.crl_number, tmp.crl_number_len);
    out->base_number_len = tmp.crl_number_len;
    return 0;
}

/* next_extension splits one Extension (RFC 5280 4.1) into OID, criticality
 * and the contents of extnValue. */
static int next_extension(CBS *exts, CBS *oid, int *critical, CBS *value)
{
    CBS ext;

    *critical = 0;
    if (!CBS_get_asn1(exts, &ext, CBS_ASN1_SEQUENCE) || !CBS_get_asn1(&ext, oid, CBS_ASN1_OBJECT) ||
        CBS_len(oid) == 0)
        return 0;
    if (CBS_peek_asn1_tag(&ext, CBS_ASN1_BOOLEAN) && !CBS_get_asn1_bool(&ext, critical))
        return 0;
    return CBS_get_asn1(&ext, value, CBS_ASN1_OCTETSTRING) && CBS_len(&ext) == 0;
}

/* crl_extension handles one CRL extension. Known OIDs are parsed; unknown
 * critical ones make the CRL unusable (RFC 5280 5.2); unknown non-critical
 * ones are ignored as 5.2 allows. */
static int crl_extension(struct crl_parsed *out, CBS *oid, int critical, CBS *value, char *err,
                         size_t errlen)
{
    if (OID_IS(oid, oid_crl_number)) {
        /* RFC 5280 5.2.3: "a non-critical extension"; a CA that marks it
         * critical does not follow the profile: the CRL is unusable. */
        if (critical)
            out->flags |= CRL_PF_UNKNOWN_CRITICAL;
        return parse_crl_number(out, value, err, errlen);
    }
    if (OID_IS(oid, oid_idp))
        return parse_idp(out, value, err, errlen);
    if (OID_IS(oid, oid_delta_indicator))
        return parse_delta(out, value, err, errlen);
    if (OID_IS(oid, oid_aki) || OID_IS(oid, oid_issuer_alt_name) || OID_IS(oid, oid_freshest_crl) ||
        OID_IS(oid, oid_aia))
        return 0; /* informational for a cache keyed by verified issuer key */
    if (critical)
        out->flags |= CRL_PF_UNKNOWN_CRITICAL;
    return 0;
}

/* seen_before rejects a repeated extension (RFC 5280 4.2: "MUST NOT include
 * more than one instance of a particular extension"). Extension lists are
 * short, so the quadratic scan over the already-parsed prefix is fine. */
static bool seen_before(const uint8_t *start, const CBS *rest_before, const CBS *oid)
{
    CBS prev, o, v;
    int crit;

    CBS_init(&prev, start, (size_t)(CBS_data(rest_before) - start));
    while (CBS_len(&prev) > 0 && next_extension(&prev, &o, &crit, &v)) {
        if (CBS_len(&o) == CBS_len(oid) && memcmp(CBS_data(&o), CBS_data(oid), CBS_len(oid)) == 0)
            return true;
    }
    return false;
}

static int parse_crl_extensions(struct crl_parsed *out, CBS *tbs, char *err, size_t errlen)
{
    CBS wrap, exts, oid, value;
    int present = 0, critical;

    if (!CBS_get_optional_asn1(tbs, &wrap, &present,
                               CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 0)) {
        ERRF("malformed crlExtensions");
        return -1;
    }
    if (!present)
        return 0;
    if (!CBS_get_asn1(&wrap, &exts, CBS_ASN1_SEQUENCE) || CBS_len(&wrap) != 0 ||
        CBS_len(&exts) == 0) {
        ERRF("malformed crlExtensions");
        return -1;
    }
    const uint8_t *start = CBS_data(&exts);
    while (CBS_len(&exts) > 0) {
        CBS before = exts;
        if (!next_extension(&exts, &oid, &critical, &value)) {
            ERRF("malformed CRL extension");
            return -1;
        }
        if (seen_before(start, &before, &oid)) {
            ERRF("duplicate CRL extension");
            return -1;
        }
        if (crl_extension(out, &oid, critical, &value, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* parse_tbs_header reads TBSCertList up to and including nextUpdate. */
static int parse_tbs_header(struct crl_parsed *out, CBS *tbs, char *err, size_t errlen)
{
    uint64_t version = 0;

    if (CBS_peek_asn1_tag(tbs, CBS_ASN1_INTEGER)) {
        /* RFC 5280 5.1.2.1: if present, version MUST be v2 (1). */
        if (!CBS_get_asn1_uint64(tbs, &version) || version != 1) {
            ERRF("unsupported CRL version");
            return -1;
        }
    }
    if (!CBS_get_asn1_element(tbs, &out->tbs_sig_alg, CBS_ASN1_SEQUENCE) ||
        !CBS_get_asn1_element(tbs, &out->issuer, CBS_ASN1_SEQUENCE)) {
        ERRF("malformed TBSCertList");
        return -1;
    }
    if (!crl_parse_time(tbs, &out->this_update)) {
        ERRF("malformed thisUpdate");
        return -1;
    }
    if ((CBS_peek_asn1_tag(tbs, CBS_ASN1_UTCTIME) ||
         CBS_peek_asn1_tag(tbs, CBS_ASN1_GENERALIZEDTIME)) &&
        !crl_parse_time(tbs, &out->next_update)) {
        ERRF("malformed nextUpdate");
        return -1;
    }
    return 0;
}

static int parse_tbs(struct crl_parsed *out, CBS tbs_element, char *err, size_t errlen)
{
    CBS tbs;

    if (!CBS_get_asn1(&tbs_element, &tbs, CBS_ASN1_SEQUENCE) ||
        parse_tbs_header(out, &tbs, err, errlen) != 0)
        goto err;
    CBS_init(&out->revoked, NULL, 0);
    if (CBS_peek_asn1_tag(&tbs, CBS_ASN1_SEQUENCE) &&
        !CBS_get_asn1(&tbs, &out->revoked, CBS_ASN1_SEQUENCE)) {
        ERRF("malformed revokedCertificates");
        goto err;
    }
    if (parse_crl_extensions(out, &tbs, err, errlen) != 0)
        goto err;
    if (CBS_len(&tbs) != 0) {
        ERRF("trailing data in TBSCertList");
        goto err;
    }
    return 0;
err:
    if (err && errlen && err[0] == '\0')
        ERRF("malformed TBSCertList");
    return -1;
}

int crl_parse_der(struct crl_parsed *out, const uint8_t *der, size_t len, char *err, size_t errlen)
{
    CBS in, crl, bits;
    uint8_t unused = 0;

    memset(out, 0, sizeof(*out));
    if (err && errlen)
        err[0] = '\0';
    if (der == NULL) {
        ERRF("no CRL data");
        return -1;
    }
    out->der = der;
    out->der_len = len;
    CBS_init(&in, der, len);
    if (!CBS_get_asn1(&in, &crl, CBS_ASN1_SEQUENCE) || CBS_len(&in) != 0 ||
        !CBS_get_asn1_element(&crl, &out->tbs, CBS_ASN1_SEQUENCE) ||
        !CBS_get_asn1_element(&crl, &out->sig_alg, CBS_ASN1_SEQUENCE) ||
        !CBS_get_asn1(&crl, &bits, CBS_ASN1_BITSTRING) || CBS_len(&crl) != 0 ||
        !CBS_get_u8(&bits, &unused) || unused != 0) {
        ERRF("not a DER CertificateList");
        return -1;
    }
    out->sig = bits;
    out->reasons = CRL_REASONS_ALL;
    {
        /* The digest decides whether a profile's algorithm policy
         * accepts the CRL (validator/revocation.c). */
        CBS alg = out->sig_alg, seq, oid;
        out->sig_nid = CBS_get_asn1(&alg, &seq, CBS_ASN1_SEQUENCE) &&
                               CBS_get_asn1(&seq, &oid, CBS_ASN1_OBJECT)
                           ? OBJ_cbs2nid(&oid)
                           : NID_undef;
    }
    return parse_tbs(out, out->tbs, err, errlen);
}

int crl_parse_count_entries(const CBS *revoked, size_t *out_count)
{
    CBS rest = *revoked, entry;
    size_t n = 0;

    while (CBS_len(&rest) > 0) {
        if (!CBS_get_asn1(&rest, &entry, CBS_ASN1_SEQUENCE))
            return -1;
        n++;
    }
    *out_count = n;
    return 0;
}

static int parse_reason(CBS *value, int *reason)
{
    CBS e;

    /* CRLReason ::= ENUMERATED, values 0..10 with 7 unused (RFC 5280 5.3.1). */
    if (!CBS_get_asn1(value, &e, CBS_ASN1_ENUMERATED) || CBS_len(value) != 0 || CBS_len(&e) != 1 ||
        CBS_data(&e)[0] > 10 || CBS_data(&e)[0] == 7)
        return 0;
    *reason = CBS_data(&e)[0];
    return 1;
}

static int parse_entry_extensions(CBS *entry, struct crl_parsed_entry *out, uint32_t *flags)
{
    CBS exts, oid, value;
    int critical;

    if (CBS_len(entry) == 0)
        return 1;
    if (!CBS_get_asn1(entry, &exts, CBS_ASN1_SEQUENCE) || CBS_len(entry) != 0)
        return 0;
    while (CBS_len(&exts) > 0) {
        if (!next_extension(&exts, &oid, &critical, &value))
            return 0;
        if (OID_IS(&oid, oid_reason_code)) {
            if (!parse_reason(&value, &out->reason))
                return 0;
        } else if (OID_IS(&oid, oid_cert_issuer)) {
            /* RFC 5280 5.3.3: this and the following entries are for the
             * named issuer. Only its directoryName can match a certificate's
             * issuer; the caller decides whether the CRL may carry it. */
            CBS names;
            uint8_t scratch[CRL_DP_NAMES_MAX][32];
            size_t n;
            bool has_dn = false;
            if (!CBS_get_asn1(&value, &names, CBS_ASN1_SEQUENCE) || CBS_len(&value) != 0 ||
                crl_dp_hash_general_names(names, scratch, CRL_DP_NAMES_MAX, &n,
                                          &out->cert_issuer, &has_dn) == -1)
                return 0;
            out->has_cert_issuer = true;
            if (!has_dn)
                CBS_init(&out->cert_issuer, NULL, 0);
        } else if (!OID_IS(&oid, oid_invalidity_date) && critical) {
            *flags |= CRL_PF_UNKNOWN_CRITICAL_ENTRY;
        }
    }
    return 1;
}

int crl_parse_next_entry(CBS *revoked, struct crl_parsed_entry *out, uint32_t *flags, char *err,
                         size_t errlen)
{
    CBS entry;

    if (CBS_len(revoked) == 0)
        return 0;
    out->reason = -1;
    out->has_cert_issuer = false;
    CBS_init(&out->cert_issuer, NULL, 0);
    if (!CBS_get_asn1(revoked, &entry, CBS_ASN1_SEQUENCE) ||
        !CBS_get_asn1(&entry, &out->serial, CBS_ASN1_INTEGER) ||
        !crl_parse_integer_minimal(&out->serial) || !crl_parse_time(&entry, &out->revoked_at) ||
        !parse_entry_extensions(&entry, out, flags)) {
        ERRF("malformed revokedCertificates entry");
        return -1;
    }
    if (CBS_len(&out->serial) > CRL_SERIAL_MAX) {
        ERRF("revoked serial longer than %d octets", CRL_SERIAL_MAX);
        return -1;
    }
    return 1;
}
