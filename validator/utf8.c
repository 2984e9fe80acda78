#include "utf8.h"

size_t utf8_seq_len(const uint8_t *s, size_t n)
{
    unsigned c = s[0];
    uint32_t cp;
    size_t k;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0)
        k = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4, cp = c & 0x07;
    else
        return 0;
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

size_t utf8_first_bad(const uint8_t *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t k = utf8_seq_len(s + i, n - i);

        if (k == 0)
            return i;
        i += k;
    }
    return i;
}
