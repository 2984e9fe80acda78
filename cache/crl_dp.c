/* Distribution point names and reasons. See crl_dp_internal.h. */
#include "crl_dp_internal.h"

#include <string.h>

#include <openssl/bytestring.h>
#include <openssl/mem.h>
#include <openssl/sha.h>

#include "crl_cache.h"
#include "name_norm.h"

#define TAG_CTX(n) (CBS_ASN1_CONTEXT_SPECIFIC | (n))
#define TAG_CTX_C(n) (CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | (n))

int crl_dp_hash_general_names(CBS names, uint8_t (*out)[32], size_t cap, size_t *out_n, CBS *dn,
                              bool *has_dn)
{
    CBS gn, inner, name;
    unsigned tag;

    *out_n = 0;
    if (has_dn != NULL)
        *has_dn = false;
    while (CBS_len(&names) > 0) {
        if (!CBS_get_any_asn1_element(&names, &gn, &tag, NULL))
            return -1;
        if (*out_n == cap)
            return -2;
        if (tag != TAG_CTX_C(4)) {
            SHA256(CBS_data(&gn), CBS_len(&gn), out[(*out_n)++]);
            continue;
        }
        /* directoryName [4] EXPLICIT Name (RFC 5280 4.2.1.6), compared by
         * value (7.1): the hash of its normalised form. */
        inner = gn;
        if (!CBS_get_asn1(&inner, &inner, TAG_CTX_C(4)) ||
            !CBS_get_asn1_element(&inner, &name, CBS_ASN1_SEQUENCE) || CBS_len(&inner) != 0)
            return -1;
        name_norm_hash(out[(*out_n)++], CBS_data(&name), CBS_len(&name));
        if (dn != NULL && !*has_dn) {
            *dn = name;
            *has_dn = true;
        }
    }
    return 0;
}

/* relative_name_hash: RFC 5280 4.2.1.13, "the fragment is appended to the
 * X.500 distinguished name" of |base|; the result is hashed as the
 * directoryName a fullName would carry (its normalised form). */
static int relative_name_hash(CBS rdn, CBS base, uint8_t out[32])
{
    CBB cbb, name, set;
    CBS base_rdns;
    uint8_t *der = NULL;
    size_t len = 0;

    if (!CBS_get_asn1(&base, &base_rdns, CBS_ASN1_SEQUENCE))
        return -1;
    if (!CBB_init(&cbb, CBS_len(&base_rdns) + CBS_len(&rdn) + 16))
        return -1;
    if (!CBB_add_asn1(&cbb, &name, CBS_ASN1_SEQUENCE) ||
        !CBB_add_bytes(&name, CBS_data(&base_rdns), CBS_len(&base_rdns)) ||
        !CBB_add_asn1(&name, &set, CBS_ASN1_SET) ||
        !CBB_add_bytes(&set, CBS_data(&rdn), CBS_len(&rdn)) || !CBB_finish(&cbb, &der, &len)) {
        CBB_cleanup(&cbb);
        return -1;
    }
    name_norm_hash(out, der, len);
    OPENSSL_free(der);
    return 0;
}

int crl_dp_hash_names(CBS dpn, CBS base, uint8_t (*out)[32], size_t cap, size_t *out_n)
{
    CBS choice;
    unsigned tag;

    *out_n = 0;
    if (!CBS_get_any_asn1(&dpn, &choice, &tag) || CBS_len(&dpn) != 0)
        return -1;
    if (tag == TAG_CTX_C(0)) /* fullName [0] IMPLICIT GeneralNames */
        return crl_dp_hash_general_names(choice, out, cap, out_n, NULL, NULL);
    if (tag != TAG_CTX_C(1) || cap == 0) /* nameRelativeToCRLIssuer [1] IMPLICIT RDN */
        return -1;
    if (relative_name_hash(choice, base, out[0]) != 0)
        return -1;
    *out_n = 1;
    return 0;
}

int crl_dp_reasons(CBS bits, uint16_t *out)
{
    uint8_t unused;

    *out = 0;
    if (!CBS_get_u8(&bits, &unused) || unused > 7 || (CBS_len(&bits) == 0 && unused != 0))
        return -1;
    /* Bit n of the string (n = 0 is the first octet's top bit) is 1u << n;
     * only bits 1..8 name reasons (RFC 5280 4.2.1.13 ReasonFlags). */
    for (size_t n = 1; n <= 8 && n / 8 < CBS_len(&bits); n++)
        if (CBS_data(&bits)[n / 8] & (0x80u >> (n % 8)))
            *out |= (uint16_t)(1u << n);
    return 0;
}

/* parse_point reads one DistributionPoint (RFC 5280 4.2.1.13). */
static int parse_point(struct crl_cert_dp *dp, CBS point, CBS issuer)
{
    CBS dpn, reasons, crl_issuer, dn, base = issuer;
    int has_dpn = 0, has_reasons = 0, has_issuer = 0;

    memset(dp, 0, sizeof(*dp));
    dp->reasons = CRL_REASONS_ALL;
    if (!CBS_get_optional_asn1(&point, &dpn, &has_dpn, TAG_CTX_C(0)) ||
        !CBS_get_optional_asn1(&point, &reasons, &has_reasons, TAG_CTX(1)) ||
        !CBS_get_optional_asn1(&point, &crl_issuer, &has_issuer, TAG_CTX_C(2)) ||
        CBS_len(&point) != 0)
        return -1;
    if (has_reasons && crl_dp_reasons(reasons, &dp->reasons) != 0)
        return -1;
    if (has_issuer) {
        dp->has_crl_issuer = true;
        int rc = crl_dp_hash_general_names(crl_issuer, dp->crl_issuer_names, CRL_DP_NAMES_MAX,
                                           &dp->n_crl_issuer_names, &dn, &dp->crl_issuer_has_dn);
        if (rc != 0)
            return rc;
        if (dp->crl_issuer_has_dn) {
            name_norm_hash(dp->crl_issuer_name, CBS_data(&dn), CBS_len(&dn));
            base = dn; /* a relative name is relative to the cRLIssuer */
        }
    }
    if (has_dpn) {
        dp->has_name = true;
        return crl_dp_hash_names(dpn, base, dp->names, CRL_DP_NAMES_MAX, &dp->n_names);
    }
    return 0;
}

int crl_cache_parse_cdp(struct crl_cert_dp *out, size_t cap, size_t *out_n, bool *out_more,
                        const uint8_t *ext, size_t ext_len, const uint8_t *issuer_name,
                        size_t issuer_name_len)
{
    CBS in, seq, point, issuer;

    *out_n = 0;
    *out_more = false;
    CBS_init(&in, ext, ext_len);
    CBS_init(&issuer, issuer_name, issuer_name_len);
    if (!CBS_get_asn1(&in, &seq, CBS_ASN1_SEQUENCE) || CBS_len(&in) != 0 || CBS_len(&seq) == 0)
        return -1;
    while (CBS_len(&seq) > 0) {
        if (!CBS_get_asn1(&seq, &point, CBS_ASN1_SEQUENCE))
            return -1;
        if (*out_n == cap) {
            *out_more = true;
            continue;
        }
        if (parse_point(&out[*out_n], point, issuer) != 0)
            return -1;
        (*out_n)++;
    }
    return 0;
}
