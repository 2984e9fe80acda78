/* Names compared by value, as a hash. See name_norm.h. */
#include "name_norm.h"

#include <openssl/mem.h>
#include <openssl/sha.h>

/* is_string_tag: the directory string types RFC 5280 7.1 compares by value
 * (plus IA5String and VisibleString, which some CAs use for DC and other
 * attributes, and UniversalString). */
static bool is_string_tag(unsigned tag)
{
    switch (tag) {
    case CBS_ASN1_UTF8STRING:
    case CBS_ASN1_PRINTABLESTRING:
    case CBS_ASN1_T61STRING:
    case CBS_ASN1_IA5STRING:
    case CBS_ASN1_VISIBLESTRING:
    case CBS_ASN1_UNIVERSALSTRING:
    case CBS_ASN1_BMPSTRING:
        return true;
    default:
        return false;
    }
}

static bool is_code_point(uint32_t cp)
{
    return cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
}

/* next_utf8 decodes one UTF-8 sequence, refusing overlong forms,
 * surrogates and values above U+10FFFF. */
static int next_utf8(CBS *s, uint32_t *cp)
{
    uint8_t c, b;
    size_t n;
    uint32_t min;

    if (!CBS_get_u8(s, &c))
        return 0;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xe0) == 0xc0) {
        n = 1, min = 0x80, *cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 2, min = 0x800, *cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 3, min = 0x10000, *cp = c & 0x07;
    } else {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!CBS_get_u8(s, &b) || (b & 0xc0) != 0x80)
            return -1;
        *cp = (*cp << 6) | (b & 0x3f);
    }
    return *cp >= min && is_code_point(*cp) ? 1 : -1;
}

/* next_code_point reads one character of a string of type |tag|: 1, 0 at
 * the end, -1 when the content is not valid for its type. */
static int next_code_point(CBS *s, unsigned tag, uint32_t *cp)
{
    uint8_t c;
    uint16_t u16;
    uint32_t u32;

    if (CBS_len(s) == 0)
        return 0;
    switch (tag) {
    case CBS_ASN1_UTF8STRING:
        return next_utf8(s, cp);
    case CBS_ASN1_BMPSTRING:
        if (!CBS_get_u16(s, &u16) || !is_code_point(u16))
            return -1;
        *cp = u16;
        return 1;
    case CBS_ASN1_UNIVERSALSTRING:
        if (!CBS_get_u32(s, &u32) || !is_code_point(u32))
            return -1;
        *cp = u32;
        return 1;
    case CBS_ASN1_T61STRING: /* read as Latin-1, as OpenSSL and BoringSSL do */
        if (!CBS_get_u8(s, &c))
            return -1;
        *cp = c;
        return 1;
    default: /* PrintableString, IA5String, VisibleString: ASCII */
        if (!CBS_get_u8(s, &c) || c >= 0x80)
            return -1;
        *cp = c;
        return 1;
    }
}

/* is_space: the characters RFC 4518 2.2 maps to SPACE (controls 0009-000D
 * and 0085, and the space separators). */
static bool is_space(uint32_t cp)
{
    return cp == 0x20 || (cp >= 0x09 && cp <= 0x0d) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
           cp == 0x205f || cp == 0x3000;
}

static int add_utf8(CBB *out, uint32_t cp)
{
    if (cp < 0x80)
        return CBB_add_u8(out, (uint8_t)cp);
    if (cp < 0x800)
        return CBB_add_u8(out, (uint8_t)(0xc0 | (cp >> 6))) &&
               CBB_add_u8(out, (uint8_t)(0x80 | (cp & 0x3f)));
    if (cp < 0x10000)
        return CBB_add_u8(out, (uint8_t)(0xe0 | (cp >> 12))) &&
               CBB_add_u8(out, (uint8_t)(0x80 | ((cp >> 6) & 0x3f))) &&
               CBB_add_u8(out, (uint8_t)(0x80 | (cp & 0x3f)));
    return CBB_add_u8(out, (uint8_t)(0xf0 | (cp >> 18))) &&
           CBB_add_u8(out, (uint8_t)(0x80 | ((cp >> 12) & 0x3f))) &&
           CBB_add_u8(out, (uint8_t)(0x80 | ((cp >> 6) & 0x3f))) &&
           CBB_add_u8(out, (uint8_t)(0x80 | (cp & 0x3f)));
}

/* fold_string writes |s| (content octets of type |tag|) as UTF-8, ASCII
 * lower-cased, white space trimmed and folded (RFC 4518 2.6.1). */
static int fold_string(CBB *out, CBS s, unsigned tag)
{
    bool pending_space = false, any = false;
    uint32_t cp;
    int rc;

    while ((rc = next_code_point(&s, tag, &cp)) == 1) {
        if (is_space(cp)) {
            pending_space = any;
            continue;
        }
        if (pending_space && !CBB_add_u8(out, ' '))
            return -1;
        pending_space = false;
        if (cp >= 'A' && cp <= 'Z')
            cp += 'a' - 'A';
        if (!add_utf8(out, cp))
            return -1;
        any = true;
    }
    return rc;
}

/* add_ava writes one AttributeTypeAndValue, its value folded when it is a
 * directory string. */
static int add_ava(CBB *set, CBS ava)
{
    CBS oid, value, content;
    unsigned tag;
    size_t header = 0;
    CBB seq, str;

    if (!CBS_get_asn1_element(&ava, &oid, CBS_ASN1_OBJECT) ||
        !CBS_get_any_asn1_element(&ava, &value, &tag, &header) || CBS_len(&ava) != 0)
        return -1;
    if (!CBB_add_asn1(set, &seq, CBS_ASN1_SEQUENCE) ||
        !CBB_add_bytes(&seq, CBS_data(&oid), CBS_len(&oid)))
        return -1;
    if (!is_string_tag(tag))
        return CBB_add_bytes(&seq, CBS_data(&value), CBS_len(&value)) && CBB_flush(set) ? 0 : -1;
    content = value;
    if (!CBS_skip(&content, header) || !CBB_add_asn1(&seq, &str, CBS_ASN1_UTF8STRING) ||
        fold_string(&str, content, tag) != 0)
        return -1;
    return CBB_flush(set) ? 0 : -1;
}

int name_norm_canonical(CBB *out, const uint8_t *der, size_t len)
{
    CBS in, rdns, rdn, ava;
    CBB seq, set;

    if (der == NULL || len > NAME_NORM_MAX_DER)
        return -1;
    CBS_init(&in, der, len);
    if (!CBS_get_asn1(&in, &rdns, CBS_ASN1_SEQUENCE) || CBS_len(&in) != 0 ||
        !CBB_add_asn1(out, &seq, CBS_ASN1_SEQUENCE))
        return -1;
    while (CBS_len(&rdns) > 0) {
        /* RFC 5280 4.1.2.4: an RDN is a non-empty SET OF attributes. */
        if (!CBS_get_asn1(&rdns, &rdn, CBS_ASN1_SET) || CBS_len(&rdn) == 0 ||
            !CBB_add_asn1(&seq, &set, CBS_ASN1_SET))
            return -1;
        while (CBS_len(&rdn) > 0)
            if (!CBS_get_asn1(&rdn, &ava, CBS_ASN1_SEQUENCE) || add_ava(&set, ava) != 0)
                return -1;
        /* The order inside a multi-valued RDN does not matter: sort. */
        if (!CBB_flush_asn1_set_of(&set))
            return -1;
    }
    return CBB_flush(out) ? 0 : -1;
}

bool name_norm_hash(uint8_t out[NAME_NORM_HASH_LEN], const uint8_t *der, size_t len)
{
    /* One prefix octet keeps the two forms apart: a raw DER hashed on
     * failure never equals the canonical form of another name. */
    static const uint8_t canon_prefix = 'N', raw_prefix = 'D';
    SHA256_CTX ctx;
    CBB cbb;
    uint8_t *canon = NULL;
    size_t canon_len = 0;
    bool ok;

    CBB_zero(&cbb);
    ok = der != NULL && len <= NAME_NORM_MAX_DER && CBB_init(&cbb, len + len / 2 + 16) &&
         name_norm_canonical(&cbb, der, len) == 0 && CBB_finish(&cbb, &canon, &canon_len);
    if (!ok)
        CBB_cleanup(&cbb);
    SHA256_Init(&ctx);
    if (ok) {
        SHA256_Update(&ctx, &canon_prefix, 1);
        SHA256_Update(&ctx, canon, canon_len);
    } else {
        SHA256_Update(&ctx, &raw_prefix, 1);
        if (der != NULL)
            SHA256_Update(&ctx, der, len);
    }
    SHA256_Final(out, &ctx);
    OPENSSL_free(canon);
    return ok;
}
