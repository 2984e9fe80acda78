/* Certificate issuance for pki_gen.h: subject names, serials, validity,
 * extensions, the conformance knobs, and pki_issue.
 *
 * Extensions are built directly from their ASN.1 structures and added with
 * X509_add1_ext_i2d: BoringSSL's string-driven X509V3_EXT_nconf is limited
 * and would hide encoding choices that the tests want to control. */
#include "pki_gen.h"
#include "pki_gen_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/digest.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

/* ---- small ASN.1 helpers ---- */

/* pki_serial_new returns |serial| as an INTEGER, or 16 random bytes when it
 * is 0. The top bit is cleared (a positive INTEGER, RFC 5280 4.1.2.2) and the
 * next one set so the encoding is always exactly 16 bytes. */
static ASN1_INTEGER *pki_serial_new(uint64_t serial, const uint8_t *raw, size_t raw_len)
{
    ASN1_INTEGER *ai = ASN1_INTEGER_new();
    uint8_t buf[16];
    BIGNUM *bn = NULL;

    if (ai == NULL)
        return NULL;
    if (raw != NULL) {
        /* Two's complement content octets, as they go on the wire:
         * ASN1_INTEGER keeps the magnitude and a negative type. */
        if (raw_len > 0 && (raw[0] & 0x80)) {
            uint8_t mag[64];
            size_t i = raw_len;
            int carry = 1;
            if (raw_len > sizeof(mag))
                goto err;
            while (i-- > 0) {
                int v = (uint8_t)~raw[i] + carry;
                mag[i] = (uint8_t)v;
                carry = v >> 8;
            }
            if (!ASN1_STRING_set(ai, mag, (int)raw_len))
                goto err;
            ai->type = V_ASN1_NEG_INTEGER;
        } else if (!ASN1_STRING_set(ai, raw, (int)raw_len)) {
            goto err;
        }
        return ai;
    }
    if (serial != 0) {
        if (!ASN1_INTEGER_set_uint64(ai, serial))
            goto err;
        return ai;
    }
    if (!RAND_bytes(buf, sizeof(buf)))
        goto err;
    buf[0] = (uint8_t)((buf[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(buf, sizeof(buf), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, ai) == NULL)
        goto err;
    BN_free(bn);
    return ai;
err:
    BN_free(bn);
    ASN1_INTEGER_free(ai);
    return NULL;
}

/* pki_time_new returns |t| as UTCTime (up to 2049) or GeneralizedTime, the
 * choice RFC 5280 4.1.2.5 requires; ASN1_TIME_set makes it. */
ASN1_TIME *pki_time_new(int64_t t)
{
    return ASN1_TIME_set(NULL, (time_t)t);
}

static int pki_name_add(X509_NAME *name, int nid, const char *value, bool printable)
{
    if (value == NULL)
        return 1;
    return X509_NAME_add_entry_by_NID(name, nid, printable ? V_ASN1_PRINTABLESTRING : MBSTRING_UTF8,
                                      (const uint8_t *)value, -1, -1, 0);
}

/* pki_name_new builds the subject from |spec|; NULL when no attribute is set. */
static X509_NAME *pki_name_new(const struct pki_cert_spec *spec)
{
    X509_NAME *name = X509_NAME_new();

    if (name == NULL || spec->empty_subject)
        return name;
    if (!pki_name_add(name, NID_organizationName, spec->o, spec->printable_subject) ||
        !pki_name_add(name, NID_organizationalUnitName, spec->ou, spec->printable_subject) ||
        !pki_name_add(name, NID_commonName, spec->cn, spec->printable_subject) ||
        !pki_name_add(name, NID_userId, spec->uid, spec->printable_subject) ||
        !pki_name_add(name, NID_serialNumber, spec->serial_number, spec->printable_subject))
        goto err;
    if (X509_NAME_entry_count(name) == 0)
        goto err;
    return name;
err:
    X509_NAME_free(name);
    return NULL;
}

/* pki_key_id_new computes the RFC 5280 4.2.1.2 method (1) key identifier:
 * SHA-1 of the subjectPublicKey BIT STRING (without tag, length and unused
 * bits count). */
static ASN1_OCTET_STRING *pki_key_id_new(const X509 *cert)
{
    const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(cert);
    uint8_t md[SHA_DIGEST_LENGTH];
    ASN1_OCTET_STRING *os = NULL;

    if (bits == NULL)
        return NULL;
    SHA1(ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits), md);
    os = ASN1_OCTET_STRING_new();
    if (os == NULL || !ASN1_OCTET_STRING_set(os, md, sizeof(md))) {
        ASN1_OCTET_STRING_free(os);
        return NULL;
    }
    return os;
}

/* ---- certificate extensions ---- */

static int pki_add_basic_constraints(X509 *x, const struct pki_cert_spec *spec)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    int ok = 0;

    if (bc == NULL)
        return 0;
    bc->ca = spec->is_ca ? 0xff : 0;
    if (spec->is_ca && spec->path_len >= 0) {
        bc->pathlen = ASN1_INTEGER_new();
        if (bc->pathlen == NULL || !ASN1_INTEGER_set_uint64(bc->pathlen, (uint64_t)spec->path_len))
            goto err;
    }
    /* RFC 5280 4.2.1.9: critical in CA certificates; leaves carry it too
     * (cA FALSE, non-critical) so nothing mistakes them for CAs. */
    ok = X509_add1_ext_i2d(x, NID_basic_constraints, bc, spec->is_ca ? 1 : 0, X509V3_ADD_REPLACE);
err:
    BASIC_CONSTRAINTS_free(bc);
    return ok;
}

/* pki_add_key_usage maps KU_* values to BIT STRING bit numbers: bits 0..7
 * are 0x80 >> n, decipherOnly (bit 8) is 0x8000. */
static int pki_add_key_usage(X509 *x, unsigned ku)
{
    ASN1_BIT_STRING *bs = NULL;
    int ok = 0;

    if (ku == 0)
        return 1;
    bs = ASN1_BIT_STRING_new();
    if (bs == NULL)
        return 0;
    for (int n = 0; n < 8; n++) {
        if ((ku & (0x80u >> n)) && !ASN1_BIT_STRING_set_bit(bs, n, 1))
            goto err;
    }
    if ((ku & 0x8000u) && !ASN1_BIT_STRING_set_bit(bs, 8, 1))
        goto err;
    ok = X509_add1_ext_i2d(x, NID_key_usage, bs, 1, X509V3_ADD_REPLACE);
err:
    ASN1_BIT_STRING_free(bs);
    return ok;
}

/* pki_add_eku parses the comma-separated dotted OIDs of |list|. */
static int pki_add_eku(X509 *x, const char *list)
{
    EXTENDED_KEY_USAGE *eku = NULL;
    char oid[128];
    int ok = 0;

    if (list == NULL)
        return 1;
    eku = sk_ASN1_OBJECT_new_null();
    if (eku == NULL)
        return 0;
    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, ",");
        ASN1_OBJECT *obj;

        if (len == 0 || len >= sizeof(oid))
            goto err;
        memcpy(oid, p, len);
        oid[len] = '\0';
        obj = OBJ_txt2obj(oid, 1);
        if (obj == NULL || !sk_ASN1_OBJECT_push(eku, obj)) {
            ASN1_OBJECT_free(obj);
            goto err;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    ok = X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_REPLACE);
err:
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return ok;
}

/* pki_gn_push appends an IA5String name (URI or DNS) to |names|. */
static int pki_gn_push(GENERAL_NAMES *names, int type, const char *value)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

    if (gn == NULL || ia5 == NULL || !ASN1_STRING_set(ia5, value, -1))
        goto err;
    GENERAL_NAME_set0_value(gn, type, ia5);
    ia5 = NULL;
    if (!sk_GENERAL_NAME_push(names, gn))
        goto err;
    return 1;
err:
    ASN1_IA5STRING_free(ia5);
    GENERAL_NAME_free(gn);
    return 0;
}

/* pki_ip_octets parses an address ("10.1.2.3", "2001:db8::1") or, with
 * |prefix|, a network ("10.0.0.0/8") into address (+ mask) octets. Returns
 * the octet count (4, 8, 16 or 32) or 0. */
static size_t pki_ip_octets(uint8_t out[32], const char *text, bool prefix)
{
    char buf[64];
    const char *slash = prefix ? strchr(text, '/') : NULL;
    size_t alen, len = slash != NULL ? (size_t)(slash - text) : strlen(text);
    long bits = -1;

    if (len >= sizeof(buf) || (prefix && slash == NULL))
        return 0;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, out) == 1)
        alen = 4;
    else if (inet_pton(AF_INET6, buf, out) == 1)
        alen = 16;
    else
        return 0;
    if (!prefix)
        return alen;
    bits = strtol(slash + 1, NULL, 10);
    if (bits < 0 || bits > (long)alen * 8)
        return 0;
    for (size_t i = 0; i < alen; i++) {
        long b = bits - (long)i * 8;
        out[alen + i] = b >= 8 ? 0xff : b <= 0 ? 0 : (uint8_t)(0xff << (8 - b));
    }
    return alen * 2;
}

static int pki_gn_push_ip(GENERAL_NAMES *names, const char *text, bool prefix)
{
    uint8_t oct[32];
    size_t n = pki_ip_octets(oct, text, prefix);
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();

    if (n == 0 || gn == NULL || os == NULL || !ASN1_OCTET_STRING_set(os, oct, (int)n))
        goto err;
    GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
    os = NULL;
    if (!sk_GENERAL_NAME_push(names, gn))
        goto err;
    return 1;
err:
    ASN1_OCTET_STRING_free(os);
    GENERAL_NAME_free(gn);
    return 0;
}

/* pki_gn_push_constraint appends one "type:value" constraint base. */
static int pki_gn_push_constraint(GENERAL_NAMES *names, const char *c)
{
    if (strncmp(c, "dns:", 4) == 0)
        return pki_gn_push(names, GEN_DNS, c + 4);
    if (strncmp(c, "email:", 6) == 0)
        return pki_gn_push(names, GEN_EMAIL, c + 6);
    if (strncmp(c, "ip:", 3) == 0)
        return pki_gn_push_ip(names, c + 3, true);
    if (strncmp(c, "dn:O=", 5) == 0) {
        /* A one-attribute directoryName: "dn:O=value". */
        X509_NAME *dn = X509_NAME_new();
        GENERAL_NAME *gn = GENERAL_NAME_new();
        if (dn == NULL || gn == NULL ||
            !X509_NAME_add_entry_by_NID(dn, NID_organizationName, MBSTRING_UTF8,
                                        (const uint8_t *)c + 5, -1, -1, 0)) {
            X509_NAME_free(dn);
            GENERAL_NAME_free(gn);
            return 0;
        }
        GENERAL_NAME_set0_value(gn, GEN_DIRNAME, dn);
        if (!sk_GENERAL_NAME_push(names, gn)) {
            GENERAL_NAME_free(gn);
            return 0;
        }
        return 1;
    }
    return 0;
}

static int pki_subtrees(STACK_OF(GENERAL_SUBTREE) **out, const char *const *list, size_t n)
{
    GENERAL_NAMES *names = NULL;

    if (n == 0)
        return 1;
    *out = sk_GENERAL_SUBTREE_new_null();
    names = sk_GENERAL_NAME_new_null();
    if (*out == NULL || names == NULL)
        goto err;
    for (size_t i = 0; i < n; i++) {
        GENERAL_SUBTREE *st = GENERAL_SUBTREE_new();
        if (st == NULL || !pki_gn_push_constraint(names, list[i])) {
            GENERAL_SUBTREE_free(st);
            goto err;
        }
        GENERAL_NAME_free(st->base);
        st->base = sk_GENERAL_NAME_pop(names);
        if (!sk_GENERAL_SUBTREE_push(*out, st)) {
            GENERAL_SUBTREE_free(st);
            goto err;
        }
    }
    sk_GENERAL_NAME_free(names);
    return 1;
err:
    GENERAL_NAMES_free(names);
    return 0;
}

static int pki_add_name_constraints(X509 *x, const struct pki_cert_spec *spec)
{
    NAME_CONSTRAINTS *nc = NULL;
    int ok = 0;

    if (spec->n_nc_permitted == 0 && spec->n_nc_excluded == 0)
        return 1;
    nc = NAME_CONSTRAINTS_new();
    if (nc == NULL ||
        !pki_subtrees(&nc->permittedSubtrees, spec->nc_permitted, spec->n_nc_permitted) ||
        !pki_subtrees(&nc->excludedSubtrees, spec->nc_excluded, spec->n_nc_excluded))
        goto err;
    /* RFC 5280 4.2.1.10: conforming CAs MUST mark it critical. */
    ok = X509_add1_ext_i2d(x, NID_name_constraints, nc, 1, X509V3_ADD_REPLACE);
err:
    NAME_CONSTRAINTS_free(nc);
    return ok;
}

static int pki_add_san(X509 *x, const struct pki_cert_spec *spec)
{
    GENERAL_NAMES *names = NULL;
    int ok = 0;

    if (spec->n_san_uris == 0 && spec->n_san_dns == 0 && spec->n_san_ips == 0 &&
        spec->n_san_emails == 0)
        return 1;
    names = sk_GENERAL_NAME_new_null();
    if (names == NULL)
        return 0;
    for (size_t i = 0; i < spec->n_san_uris; i++) {
        if (!pki_gn_push(names, GEN_URI, spec->san_uris[i]))
            goto err;
    }
    /* IP addresses before DNS names and mailboxes: BoringSSL stops at the
     * first IP SAN under an iPAddress constraint, so the names after it
     * exercise certval's own name-constraint code (name_constraints.c). */
    for (size_t i = 0; i < spec->n_san_ips; i++) {
        if (!pki_gn_push_ip(names, spec->san_ips[i], false))
            goto err;
    }
    for (size_t i = 0; i < spec->n_san_dns; i++) {
        if (!pki_gn_push(names, GEN_DNS, spec->san_dns[i]))
            goto err;
    }
    for (size_t i = 0; i < spec->n_san_emails; i++) {
        if (!pki_gn_push(names, GEN_EMAIL, spec->san_emails[i]))
            goto err;
    }

    /* RFC 5280 4.2.1.6: critical only when the subject is empty, which
     * pki_name_new never produces. */
    ok = X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_REPLACE);
err:
    GENERAL_NAMES_free(names);
    return ok;
}

static int pki_add_crl_dp(X509 *x, const char *uri)
{
    CRL_DIST_POINTS *dps = NULL;
    DIST_POINT *dp = NULL;
    int ok = 0;

    if (uri == NULL)
        return 1;
    dps = sk_DIST_POINT_new_null();
    dp = DIST_POINT_new();
    if (dps == NULL || dp == NULL)
        goto err;
    dp->distpoint = DIST_POINT_NAME_new();
    if (dp->distpoint == NULL)
        goto err;
    dp->distpoint->type = 0; /* fullName */
    dp->distpoint->name.fullname = sk_GENERAL_NAME_new_null();
    if (dp->distpoint->name.fullname == NULL ||
        !pki_gn_push(dp->distpoint->name.fullname, GEN_URI, uri))
        goto err;
    if (!sk_DIST_POINT_push(dps, dp))
        goto err;
    dp = NULL;
    ok = X509_add1_ext_i2d(x, NID_crl_distribution_points, dps, 0, X509V3_ADD_REPLACE);
err:
    DIST_POINT_free(dp);
    sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
    return ok;
}

/* pki_issuer_key_id returns a copy of |issuer|'s SKI, or computes one when
 * the issuer has none. */
static ASN1_OCTET_STRING *pki_issuer_key_id(X509 *issuer, bool self)
{
    const ASN1_OCTET_STRING *ski;

    /* Never ask a half-built certificate for its SKI: that would fill
     * BoringSSL's extension cache too early. */
    if (self)
        return pki_key_id_new(issuer);
    ski = X509_get0_subject_key_id(issuer);

    if (ski != NULL)
        return ASN1_OCTET_STRING_dup(ski);
    return pki_key_id_new(issuer);
}

/* pki_add_aki adds authorityKeyIdentifier (keyIdentifier only) to a cert
 * (|x|) or a CRL (|crl|); exactly one of them is set. |issuer| == |x| means
 * self-signed. */
int pki_add_aki(X509 *x, X509_CRL *crl, X509 *issuer)
{
    AUTHORITY_KEYID *aki = AUTHORITY_KEYID_new();
    int ok = 0;

    if (aki == NULL)
        return 0;
    aki->keyid = pki_issuer_key_id(issuer, issuer == x);
    if (aki->keyid == NULL)
        goto err;
    if (x != NULL)
        ok = X509_add1_ext_i2d(x, NID_authority_key_identifier, aki, 0, X509V3_ADD_REPLACE);
    else
        ok = X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, aki, 0, X509V3_ADD_REPLACE);
err:
    AUTHORITY_KEYID_free(aki);
    return ok;
}

static int pki_add_ski(X509 *x)
{
    ASN1_OCTET_STRING *ski = pki_key_id_new(x);
    int ok;

    if (ski == NULL)
        return 0;
    ok = X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_REPLACE);
    ASN1_OCTET_STRING_free(ski);
    return ok;
}

/* pki_set_tbs fills version, serial, names, validity and key. */
static int pki_set_tbs(X509 *x, const struct pki_cert_spec *spec, EVP_PKEY *subject_key,
                       X509 *issuer)
{
    ASN1_INTEGER *serial = pki_serial_new(spec->serial, spec->serial_raw, spec->serial_raw_len);
    X509_NAME *name = pki_name_new(spec);
    ASN1_TIME *nb = pki_time_new(spec->not_before);
    ASN1_TIME *na = pki_time_new(spec->not_after);
    int ok = 0;

    if (serial == NULL || name == NULL || nb == NULL || na == NULL)
        goto err;
    if (!X509_set_version(x, spec->version ? spec->version - 1 : X509_VERSION_3) ||
        !X509_set_serialNumber(x, serial) ||
        !X509_set_subject_name(x, name) ||
        !X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) ||
        !X509_set1_notBefore(x, nb) || !X509_set1_notAfter(x, na) ||
        !X509_set_pubkey(x, subject_key))
        goto err;
    ok = 1;
err:
    ASN1_INTEGER_free(serial);
    X509_NAME_free(name);
    ASN1_TIME_free(nb);
    ASN1_TIME_free(na);
    return ok;
}

/* pki_explicit_ec_params rewrites |x|'s EC public key to carry its curve
 * as specifiedCurve (RFC 3279 2.3.5 ECParameters) instead of a name. */
static int pki_explicit_ec_params(X509 *x, EVP_PKEY *key)
{
    static const uint8_t prime_field[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x01, 0x01};
    const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(key);
    const EC_GROUP *g = ec != NULL ? EC_KEY_get0_group(ec) : NULL;
    X509_PUBKEY *pub = X509_get_X509_PUBKEY(x);
    BIGNUM *p = BN_new(), *a = BN_new(), *b = BN_new();
    uint8_t fa[66], fb[66], gen[133], *der = NULL, *kcopy = NULL;
    const uint8_t *k = NULL;
    size_t flen, glen, der_len;
    ASN1_STRING *params = NULL;
    CBB cbb, seq, f, c, o;
    int klen = 0, ok = 0;

    if (!CBB_init(&cbb, 256))
        goto out;
    if (g == NULL || pub == NULL || p == NULL || a == NULL || b == NULL ||
        !EC_GROUP_get_curve_GFp(g, p, a, b, NULL))
        goto out;
    flen = BN_num_bytes(p);
    glen = EC_POINT_point2oct(g, EC_GROUP_get0_generator(g), POINT_CONVERSION_UNCOMPRESSED, gen,
                              sizeof(gen), NULL);
    if (flen > sizeof(fa) || glen == 0 || !BN_bn2bin_padded(fa, flen, a) ||
        !BN_bn2bin_padded(fb, flen, b))
        goto out;
    if (!CBB_add_asn1(&cbb, &seq, CBS_ASN1_SEQUENCE) || !CBB_add_asn1_uint64(&seq, 1) ||
        !CBB_add_asn1(&seq, &f, CBS_ASN1_SEQUENCE) || !CBB_add_asn1(&f, &o, CBS_ASN1_OBJECT) ||
        !CBB_add_bytes(&o, prime_field, sizeof(prime_field)) || !BN_marshal_asn1(&f, p) ||
        !CBB_add_asn1(&seq, &c, CBS_ASN1_SEQUENCE) || !CBB_add_asn1(&c, &o, CBS_ASN1_OCTETSTRING) ||
        !CBB_add_bytes(&o, fa, flen) || !CBB_add_asn1(&c, &o, CBS_ASN1_OCTETSTRING) ||
        !CBB_add_bytes(&o, fb, flen) || !CBB_add_asn1(&seq, &o, CBS_ASN1_OCTETSTRING) ||
        !CBB_add_bytes(&o, gen, glen) || !BN_marshal_asn1(&seq, EC_GROUP_get0_order(g)) ||
        !CBB_add_asn1_uint64(&seq, 1) || !CBB_finish(&cbb, &der, &der_len))
        goto out;
    params = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
    if (params == NULL || !ASN1_STRING_set(params, der, (int)der_len) ||
        !X509_PUBKEY_get0_param(NULL, &k, &klen, NULL, pub) ||
        (kcopy = OPENSSL_memdup(k, (size_t)klen)) == NULL)
        goto out;
    if (!X509_PUBKEY_set0_param(pub, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_SEQUENCE,
                                params, kcopy, klen))
        goto out;
    params = NULL;
    kcopy = NULL;
    ok = 1;
out:
    CBB_cleanup(&cbb);
    OPENSSL_free(der);
    OPENSSL_free(kcopy);
    ASN1_STRING_free(params);
    BN_free(p);
    BN_free(a);
    BN_free(b);
    return ok;
}

/* pki_ext_index: the X509 extension NID behind a PKI_EXT_* bit. */
static int pki_ext_nid(unsigned bit)
{
    switch (bit) {
    case PKI_EXT_AKI:
        return NID_authority_key_identifier;
    case PKI_EXT_SKI:
        return NID_subject_key_identifier;
    case PKI_EXT_BASIC_CONSTRAINTS:
        return NID_basic_constraints;
    case PKI_EXT_SAN:
        return NID_subject_alt_name;
    default:
        return NID_key_usage;
    }
}

/* pki_add_raw_crl_dp adds a cRLDistributionPoints extension whose value is
 * |spec->crl_dp_raw| exactly (any DistributionPoint names, cRLIssuer and
 * string encodings a test wants), replacing one made from crl_dp_uri. */
static int pki_add_raw_crl_dp(X509 *x, const struct pki_cert_spec *spec)
{
    ASN1_OCTET_STRING *val = NULL;
    X509_EXTENSION *ext = NULL;
    int ok, pos;

    if (spec->crl_dp_raw == NULL)
        return 1;
    if ((pos = X509_get_ext_by_NID(x, NID_crl_distribution_points, -1)) >= 0)
        X509_EXTENSION_free(X509_delete_ext(x, pos));
    val = ASN1_OCTET_STRING_new();
    ok = val != NULL && spec->crl_dp_raw_len <= INT32_MAX &&
         ASN1_OCTET_STRING_set(val, spec->crl_dp_raw, (int)spec->crl_dp_raw_len) &&
         (ext = X509_EXTENSION_create_by_NID(NULL, NID_crl_distribution_points, 0, val)) != NULL &&
         X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(val);
    return ok;
}

/* pki_apply_knobs removes or flips the extensions |spec| asks for and adds
 * its extra critical extension. */
static int pki_apply_knobs(X509 *x, const struct pki_cert_spec *spec)
{
    for (unsigned bit = PKI_EXT_AKI; bit <= PKI_EXT_KEY_USAGE; bit <<= 1) {
        int idx = X509_get_ext_by_NID(x, pki_ext_nid(bit), -1);
        X509_EXTENSION *ext = idx >= 0 ? X509_get_ext(x, idx) : NULL;

        if (ext == NULL)
            continue;
        if (spec->omit_ext & bit) {
            X509_EXTENSION_free(X509_delete_ext(x, idx));
            continue;
        }
        if ((spec->flip_critical & bit) &&
            !X509_EXTENSION_set_critical(ext, !X509_EXTENSION_get_critical(ext)))
            return 0;
    }
    if (spec->critical_oid != NULL) {
        ASN1_OBJECT *obj = OBJ_txt2obj(spec->critical_oid, 1);
        ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
        X509_EXTENSION *ext = NULL;
        static const uint8_t null_der[] = {0x05, 0x00};
        int ok = obj != NULL && val != NULL && ASN1_OCTET_STRING_set(val, null_der, 2) &&
                 (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, val)) != NULL &&
                 X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        ASN1_OCTET_STRING_free(val);
        ASN1_OBJECT_free(obj);
        if (!ok)
            return 0;
    }
    return pki_add_raw_crl_dp(x, spec);
}

/* pki_reparse_cert returns a fresh parse of |x| and frees |x|. BoringSSL
 * caches decoded extensions and the certificate hash on first use; a
 * certificate built field by field would keep a cache of its unsigned,
 * half-built state (X509_cmp, X509_check_ca would lie). Parsing the final
 * DER gives callers an object exactly like one read from a file. */
static X509 *pki_reparse_cert(X509 *x)
{
    uint8_t *der = NULL;
    const uint8_t *p;
    int len = i2d_X509(x, &der);
    X509 *out = NULL;

    if (len > 0) {
        p = der;
        out = d2i_X509(NULL, &p, len);
    }
    OPENSSL_free(der);
    X509_free(x);
    return out;
}

X509 *pki_issue(const struct pki_cert_spec *spec, EVP_PKEY *subject_key, X509 *issuer,
                EVP_PKEY *issuer_key)
{
    X509 *x = NULL;

    if (spec == NULL || subject_key == NULL || issuer_key == NULL)
        return NULL;
    /* Self-signed means signed by the subject's own key (pki_gen.h). */
    if (issuer == NULL && EVP_PKEY_cmp(subject_key, issuer_key) != 1)
        return NULL;
    x = X509_new();
    if (x == NULL || !pki_set_tbs(x, spec, subject_key, issuer))
        goto err;
    if (spec->explicit_ec_params && !pki_explicit_ec_params(x, subject_key))
        goto err;
    if (!pki_add_basic_constraints(x, spec) || !pki_add_key_usage(x, spec->key_usage) ||
        !pki_add_eku(x, spec->eku) || !pki_add_san(x, spec) ||
        !pki_add_crl_dp(x, spec->crl_dp_uri) || !pki_add_name_constraints(x, spec) ||
        !pki_add_ski(x))
        goto err;
    /* A self-signed certificate's AKI names its own key. */
    if (!pki_add_aki(x, NULL, issuer != NULL ? issuer : x) || !pki_apply_knobs(x, spec))
        goto err;
    if (!X509_sign(x, issuer_key,
                   spec->sig_digest_nid ? EVP_get_digestbynid(spec->sig_digest_nid) : EVP_sha256()))
        goto err;
    return pki_reparse_cert(x);
err:
    X509_free(x);
    return NULL;
}
