/* CRL fixture generator. See crl_gen.h. */
#include "crl_gen.h"

#include <string.h>

#include <openssl/bytestring.h>
#include <openssl/digest.h>
#include <openssl/mem.h>

static const uint8_t oid_ecdsa_sha256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t oid_rsa_sha256[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b};
static const uint8_t oid_crl_number[] = {0x55, 0x1d, 0x14};
static const uint8_t oid_reason[] = {0x55, 0x1d, 0x15};
static const uint8_t oid_delta[] = {0x55, 0x1d, 0x1b};
static const uint8_t oid_idp[] = {0x55, 0x1d, 0x1c};
static const uint8_t oid_cert_issuer[] = {0x55, 0x1d, 0x1d};
/* 1.3.6.1.4.1.55738.99: a private arc nobody implements. */
static const uint8_t oid_unknown[] = {0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb3, 0x3a, 0x63};

void crl_gen_serial_u64(struct crl_gen_entry *e, uint64_t v)
{
    uint8_t be[9];
    size_t n = 0;

    for (int i = 7; i >= 0; i--)
        be[n++] = (uint8_t)(v >> (8 * i));
    be[8] = 0;
    size_t skip = 0;
    while (skip < 7 && be[skip] == 0)
        skip++;
    e->serial_len = 0;
    if (be[skip] & 0x80)
        e->serial[e->serial_len++] = 0; /* keep it positive */
    memcpy(e->serial + e->serial_len, be + skip, 8 - skip);
    e->serial_len += 8 - skip;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static void put_digits(uint8_t *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)('0' + v % 10);
        v /= 10;
    }
}

/* add_time writes UTCTime for 1950..2049, else GeneralizedTime (RFC 5280
 * 4.1.2.5). */
static int add_time(CBB *cbb, int64_t t)
{
    int64_t days = (t >= 0 ? t : t - 86399) / 86400, secs = t - days * 86400;
    int y, m, d;
    uint8_t buf[15];
    CBB child;

    civil_from_days(days, &y, &m, &d);
    bool utc = y >= 1950 && y < 2050;
    size_t off = utc ? 2 : 4;
    put_digits(buf, utc ? y % 100 : y, (int)off);
    put_digits(buf + off, m, 2);
    put_digits(buf + off + 2, d, 2);
    put_digits(buf + off + 4, (int)(secs / 3600), 2);
    put_digits(buf + off + 6, (int)(secs / 60 % 60), 2);
    put_digits(buf + off + 8, (int)(secs % 60), 2);
    buf[off + 10] = 'Z';
    return CBB_add_asn1(cbb, &child, utc ? CBS_ASN1_UTCTIME : CBS_ASN1_GENERALIZEDTIME) &&
           CBB_add_bytes(&child, buf, off + 11) && CBB_flush(cbb);
}

/* add_ext writes Extension { oid, critical, OCTET STRING { value } }. */
static int add_ext(CBB *exts, const uint8_t *oid, size_t oid_len, bool critical,
                   const uint8_t *value, size_t value_len)
{
    CBB ext, o;

    return CBB_add_asn1(exts, &ext, CBS_ASN1_SEQUENCE) && CBB_add_asn1(&ext, &o, CBS_ASN1_OBJECT) &&
           CBB_add_bytes(&o, oid, oid_len) && (!critical || CBB_add_asn1_bool(&ext, 1)) &&
           CBB_add_asn1_octet_string(&ext, value, value_len) && CBB_flush(exts);
}

static int add_sig_alg(CBB *cbb, EVP_PKEY *key)
{
    CBB alg, oid, null;
    bool rsa = EVP_PKEY_id(key) == EVP_PKEY_RSA;

    return CBB_add_asn1(cbb, &alg, CBS_ASN1_SEQUENCE) &&
           CBB_add_asn1(&alg, &oid, CBS_ASN1_OBJECT) &&
           CBB_add_bytes(&oid, rsa ? oid_rsa_sha256 : oid_ecdsa_sha256,
                         rsa ? sizeof(oid_rsa_sha256) : sizeof(oid_ecdsa_sha256)) &&
           (!rsa || CBB_add_asn1(&alg, &null, CBS_ASN1_NULL)) && CBB_flush(cbb);
}

/* add_cert_issuer writes certificateIssuer (RFC 5280 5.3.3): GeneralNames
 * with the directoryName of |name|, or a dNSName when |name| is NULL. */
static int add_cert_issuer(CBB *exts, const X509_NAME *name)
{
    static const uint8_t dns[] = {0x30, 0x0b, 0x82, 0x09, 'x', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e'};
    const uint8_t *der = NULL;
    size_t len = 0;
    uint8_t buf[600];
    CBB v, names, dn;

    if (name == NULL)
        return add_ext(exts, oid_cert_issuer, 3, true, dns, sizeof(dns));
    if (!X509_NAME_get0_der((X509_NAME *)name, &der, &len) ||
        !CBB_init_fixed(&v, buf, sizeof(buf)) || !CBB_add_asn1(&v, &names, CBS_ASN1_SEQUENCE) ||
        !CBB_add_asn1(&names, &dn, CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 4) ||
        !CBB_add_bytes(&dn, der, len) || !CBB_finish(&v, NULL, &len))
        return 0;
    return add_ext(exts, oid_cert_issuer, 3, true, buf, len);
}

static int add_entry(CBB *list, const struct crl_gen_entry *e)
{
    static const uint8_t dummy[] = {0x05, 0x00};
    uint8_t reason[3] = {CBS_ASN1_ENUMERATED, 1, 0};
    CBB seq, serial, exts;

    if (!CBB_add_asn1(list, &seq, CBS_ASN1_SEQUENCE) ||
        !CBB_add_asn1(&seq, &serial, CBS_ASN1_INTEGER) ||
        !CBB_add_bytes(&serial, e->serial, e->serial_len) || !add_time(&seq, e->revoked_at))
        return 0;
    if (e->reason >= 0 || e->unknown_critical || e->cert_issuer) {
        reason[2] = (uint8_t)e->reason;
        if (!CBB_add_asn1(&seq, &exts, CBS_ASN1_SEQUENCE) ||
            (e->reason >= 0 && !add_ext(&exts, oid_reason, 3, false, reason, 3)) ||
            (e->unknown_critical &&
             !add_ext(&exts, oid_unknown, sizeof(oid_unknown), true, dummy, 2)) ||
            (e->cert_issuer && !add_cert_issuer(&exts, e->cert_issuer_name)))
            return 0;
    }
    return CBB_flush(list);
}

static int add_crl_exts(CBB *tbs, const struct crl_gen_spec *s)
{
    static const uint8_t dummy[] = {0x05, 0x00};
    /* IDP SEQUENCE { [1] TRUE } or { [4] TRUE } */
    static const uint8_t idp_user[] = {0x30, 0x03, 0x81, 0x01, 0xff};
    static const uint8_t idp_indirect[] = {0x30, 0x03, 0x84, 0x01, 0xff};
    uint8_t num[16], base[16];
    CBB wrap, exts, n;
    size_t num_len = 0, base_len = 0;

    if (!CBB_init_fixed(&n, num, sizeof(num)) || !CBB_add_asn1_uint64(&n, s->crl_number) ||
        !CBB_finish(&n, NULL, &num_len))
        return 0;
    if (!CBB_init_fixed(&n, base, sizeof(base)) ||
        !CBB_add_asn1_uint64(&n, s->delta_base ? s->delta_base : s->crl_number) ||
        !CBB_finish(&n, NULL, &base_len))
        return 0;
    if (!CBB_add_asn1(tbs, &wrap, CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 0) ||
        !CBB_add_asn1(&wrap, &exts, CBS_ASN1_SEQUENCE))
        return 0;
    if ((s->has_crl_number && !add_ext(&exts, oid_crl_number, 3, false, num, num_len)) ||
        (s->delta && !add_ext(&exts, oid_delta, 3, true, base, base_len)) ||
        (s->idp_raw != NULL && !add_ext(&exts, oid_idp, 3, true, s->idp_raw, s->idp_raw_len)) ||
        (s->idp_raw == NULL && s->indirect &&
         !add_ext(&exts, oid_idp, 3, true, idp_indirect, sizeof(idp_indirect))) ||
        (s->idp_raw == NULL && s->only_user_certs &&
         !add_ext(&exts, oid_idp, 3, true, idp_user, sizeof(idp_user))) ||
        (s->unknown_critical &&
         !add_ext(&exts, oid_unknown, sizeof(oid_unknown), true, dummy, 2)) ||
        (s->unknown_noncritical &&
         !add_ext(&exts, oid_unknown, sizeof(oid_unknown), false, dummy, 2)))
        return 0;
    return CBB_flush(tbs);
}

static int add_entries(CBB *tbs, const struct crl_gen_spec *s)
{
    CBB list;
    struct crl_gen_entry e;

    if (s->n_entries == 0)
        return 1; /* RFC 5280 5.1.2.6: absent when empty */
    if (!CBB_add_asn1(tbs, &list, CBS_ASN1_SEQUENCE))
        return 0;
    for (size_t i = 0; i < s->n_entries; i++) {
        memset(&e, 0, sizeof(e));
        e.reason = -1;
        s->entry_at(s->arg, i, &e);
        if (!add_entry(&list, &e))
            return 0;
    }
    return CBB_flush(tbs);
}

static int build_tbs(CBB *crl, const struct crl_gen_spec *s)
{
    const uint8_t *name = NULL;
    size_t name_len = 0;
    CBB tbs;
    bool exts = s->has_crl_number || s->delta || s->indirect || s->only_user_certs ||
                s->idp_raw != NULL || s->unknown_critical || s->unknown_noncritical;

    if (!X509_NAME_get0_der(X509_get_subject_name(s->issuer), &name, &name_len))
        return 0;
    return CBB_add_asn1(crl, &tbs, CBS_ASN1_SEQUENCE) && CBB_add_asn1_uint64(&tbs, 1) &&
           add_sig_alg(&tbs, s->key) && CBB_add_bytes(&tbs, name, name_len) &&
           add_time(&tbs, s->this_update) &&
           (s->next_update == 0 || add_time(&tbs, s->next_update)) && add_entries(&tbs, s) &&
           (!exts || add_crl_exts(&tbs, s)) && CBB_flush(crl);
}

static int sign_and_finish(CBB *crl, const struct crl_gen_spec *s, size_t tbs_off)
{
    EVP_MD_CTX ctx;
    uint8_t sig[1024];
    size_t sig_len = sizeof(sig);
    CBB bits;
    int ok;

    EVP_MD_CTX_init(&ctx);
    ok = EVP_DigestSignInit(&ctx, NULL, EVP_sha256(), NULL, s->key) &&
         EVP_DigestSign(&ctx, sig, &sig_len, CBB_data(crl) + tbs_off, CBB_len(crl) - tbs_off);
    EVP_MD_CTX_cleanup(&ctx);
    if (!ok)
        return 0;
    if (s->corrupt_signature)
        sig[sig_len / 2] ^= 0x01;
    return add_sig_alg(crl, s->key) && CBB_add_asn1(crl, &bits, CBS_ASN1_BITSTRING) &&
           CBB_add_u8(&bits, 0) && CBB_add_bytes(&bits, sig, sig_len) && CBB_flush(crl);
}

int crl_gen_der(const struct crl_gen_spec *s, uint8_t **out, size_t *out_len)
{
    CBB cbb, crl;

    *out = NULL;
    *out_len = 0;
    if (!CBB_init(&cbb, 64 + s->n_entries * 48))
        return -1;
    /* The TBS starts right after the outer SEQUENCE header, which CBB
     * writes when the child is flushed; sign the child's bytes in place. */
    if (!CBB_add_asn1(&cbb, &crl, CBS_ASN1_SEQUENCE) || !build_tbs(&crl, s) ||
        !sign_and_finish(&crl, s, 0) || !CBB_finish(&cbb, out, out_len)) {
        CBB_cleanup(&cbb);
        return -1;
    }
    return 0;
}
