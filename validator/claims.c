/* The claims of a chain (tenant, device and user ids) as text: each must be
 * valid UTF-8 without NUL bytes, or the chain is DENY MALFORMED. A claim is
 * compared byte for byte with what the certificate says, so "acme\0evil"
 * must never be read as "acme"; and it goes into the audit log and metric
 * labels, which must stay text. */
#include <stdint.h>
#include <string.h>

#include "validator_internal.h"
#include "verdict.h"

/* utf8_bad returns the offset of the first byte of |b| that is not part of
 * a well-formed UTF-8 sequence (RFC 3629 3: no overlong forms, surrogates,
 * values above U+10FFFF or truncated sequences), or b->len. */
static size_t utf8_bad(const struct cv_bytes *b)
{
    const uint8_t *s = b->data;
    size_t i = 0;

    while (i < b->len) {
        unsigned c = s[i];
        uint32_t cp;
        size_t k;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            k = 2, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
            k = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            k = 4, cp = c & 0x07;
        else
            return i;
        if (b->len - i < k)
            return i;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += k;
    }
    return i;
}

static int claim_check(struct verdict *out, const char *name, const struct cv_bytes *b)
{
    const uint8_t *nul;
    size_t bad;

    if (b->len == 0 || b->data == NULL)
        return 0;
    nul = memchr(b->data, 0, b->len);
    if (nul != NULL) {
        verdict_deny(out, REASON_MALFORMED, "%s holds a NUL byte (byte %zu of %zu)", name,
                     (size_t)(nul - b->data), b->len);
        return -1;
    }
    bad = utf8_bad(b);
    if (bad < b->len) {
        verdict_deny(out, REASON_MALFORMED, "%s is not valid UTF-8 (byte %zu of %zu)", name, bad,
                     b->len);
        return -1;
    }
    return 0;
}

int cv_claims_check(struct verdict *out, const struct chain_input *in)
{
    if (claim_check(out, "tenant_id", &in->tenant_id) != 0 ||
        claim_check(out, "device_id", &in->device_id) != 0 ||
        claim_check(out, "user_id", &in->user_id) != 0)
        return -1;
    return 0;
}
