/* One hexadecimal digit, for every hex field certval reads (deny-list
 * store lines, admin serials, URL escapes from the front ends). Kept in
 * cache/, the lowest layer, so cache/, validator/ and server/ share it. */
#ifndef CERTVAL_HEX_H
#define CERTVAL_HEX_H

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

#endif
