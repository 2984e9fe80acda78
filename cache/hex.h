/* The one hexadecimal decoder, for every hex field certval reads
 * (deny-list store lines, admin serials and leaf hashes, certvalctl
 * arguments, URL escapes from the front ends). Kept in cache/, the lowest
 * layer, so cache/, validator/ and server/ share it. Header-only; all
 * functions are thread-safe.
 *
 * Conventions: 0 or -1 for decoders (|*out_len| 0 on failure);
 * hex_digit_value returns the digit's value or -1 for a non-digit. */
#ifndef CERTVAL_HEX_H
#define CERTVAL_HEX_H

#include <stddef.h>
#include <stdint.h>

/* hex_digit_value returns the value (0 to 15) of the hex digit |c|, either
 * case, or -1 when |c| is not one. */
static inline int hex_digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* hex_decode_digits is the decoder behind hex_decode and
 * hex_decode_padded: |odd_ok| says whether an odd count of digits reads
 * with one more leading zero. */
static inline int hex_decode_digits(uint8_t *out, size_t cap, size_t *out_len, const char *hex,
                                    size_t len, int odd_ok)
{
    size_t odd = len % 2, n = (len + odd) / 2;

    *out_len = 0;
    if (len == 0 || (odd && !odd_ok) || n > cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = (i == 0 && odd) ? 0 : hex_digit_value(hex[2 * i - odd]);
        int lo = hex_digit_value(hex[2 * i + 1 - odd]);

        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *out_len = n;
    return 0;
}

/* hex_decode decodes the |len| hex digits at |hex| (either case, nothing
 * else: no spaces, signs or "0x") into |out|, at most |cap| bytes, and
 * sets |*out_len|. Returns 0, or -1 (|*out_len| 0) for an empty, odd-length,
 * too long or non-hex input. */
static inline int hex_decode(uint8_t *out, size_t cap, size_t *out_len, const char *hex,
                             size_t len)
{
    return hex_decode_digits(out, cap, out_len, hex, len, 0);
}

/* hex_decode_padded is hex_decode for numbers: an odd count of digits
 * reads as if it had one more leading zero ("1abc" is 01 ab bc), as
 * serials are often printed. */
static inline int hex_decode_padded(uint8_t *out, size_t cap, size_t *out_len, const char *hex,
                                    size_t len)
{
    return hex_decode_digits(out, cap, out_len, hex, len, 1);
}

#endif
