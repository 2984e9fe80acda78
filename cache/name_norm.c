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

/* put_utf8 writes |cp| as UTF-8 at |p| (room for 4 bytes); returns the
 * length. */
static size_t put_utf8(uint8_t *p, uint32_t cp)
{
    if (cp < 0x80) {
        p[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        p[0] = (uint8_t)(0xc0 | (cp >> 6));
        p[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        p[0] = (uint8_t)(0xe0 | (cp >> 12));
        p[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        p[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    p[0] = (uint8_t)(0xf0 | (cp >> 18));
    p[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    p[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    p[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* fold_string writes |s| (content octets of type |tag|) as UTF-8, ASCII
 * lower-cased, white space trimmed and folded (RFC 4518 2.6.1). Output
 * goes through a small buffer: one CBB call per 256 bytes, not per byte. */
static int fold_string(CBB *out, CBS s, unsigned tag)
{
    uint8_t buf[256];
    size_t k = 0;
    bool pending_space = false, any = false;
    uint32_t cp;
    int rc;

    while ((rc = next_code_point(&s, tag, &cp)) == 1) {
        if (is_space(cp)) {
            pending_space = any;
            continue;
        }
        if (k + 5 > sizeof(buf)) { /* a space and one 4-byte character fit */
            if (!CBB_add_bytes(out, buf, k))
                return -1;
            k = 0;
        }
        if (pending_space)
            buf[k++] = ' ';
        pending_space = false;
        if (cp >= 'A' && cp <= 'Z')
            cp += 'a' - 'A';
        k += put_utf8(buf + k, cp);
        any = true;
    }
    if (rc != 0 || !CBB_add_bytes(out, buf, k))
        return -1;
    return 0;
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
        size_t n_ava = 0;
        for (; CBS_len(&rdn) > 0; n_ava++)
            if (!CBS_get_asn1(&rdn, &ava, CBS_ASN1_SEQUENCE) || add_ava(&set, ava) != 0)
                return -1;
        /* The order inside a multi-valued RDN does not matter: sort (it
         * allocates, so only when there is more than one). */
        if (n_ava > 1 && !CBB_flush_asn1_set_of(&set))
            return -1;
    }
    return CBB_flush(out) ? 0 : -1;
}

/* canonical_of writes the canonical form into |stack| when it fits (no
 * allocation: the common case, a name of a few hundred bytes), else into
 * a heap buffer returned in |*heap| (caller frees). */
static bool canonical_of(uint8_t *stack, size_t cap, uint8_t **heap, const uint8_t **out,
                         size_t *out_len, const uint8_t *der, size_t len)
{
    CBB cbb;

    *heap = NULL;
    if (CBB_init_fixed(&cbb, stack, cap) && name_norm_canonical(&cbb, der, len) == 0 &&
        CBB_finish(&cbb, NULL, out_len)) {
        *out = stack;
        return true;
    }
    CBB_cleanup(&cbb);
    CBB_zero(&cbb);
    if (CBB_init(&cbb, len + len / 2 + 16) && name_norm_canonical(&cbb, der, len) == 0 &&
        CBB_finish(&cbb, heap, out_len)) {
        *out = *heap;
        return true;
    }
    CBB_cleanup(&cbb);
    return false;
}

bool name_norm_hash(uint8_t out[NAME_NORM_HASH_LEN], const uint8_t *der, size_t len)
{
    /* One prefix octet keeps the two forms apart: a raw DER hashed on
     * failure never equals the canonical form of another name. */
    static const uint8_t canon_prefix = 'N', raw_prefix = 'D';
    uint8_t stack[1024], *heap = NULL;
    const uint8_t *canon = NULL;
    size_t canon_len = 0;
    SHA256_CTX ctx;
    bool ok;

    ok = der != NULL && len <= NAME_NORM_MAX_DER &&
         canonical_of(stack, sizeof(stack), &heap, &canon, &canon_len, der, len);
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
    OPENSSL_free(heap);
    return ok;
}
