/* The one hex decoder (cache/hex.h): what hex_decode and hex_decode_padded
 * accept and refuse, one table. */
#include <criterion/criterion.h>

#include <string.h>

#include "hex.h"

static const struct {
    const char *name, *in;
    size_t cap;
    int even_rc, padded_rc;        /* hex_decode, hex_decode_padded */
    size_t out_len;                /* when the call that succeeds succeeds */
    const uint8_t out[4];
} cases[] = {
    {"two octets", "00ff", 4, 0, 0, 2, {0x00, 0xff}},
    {"either case", "AbCd", 4, 0, 0, 2, {0xab, 0xcd}},
    {"odd count", "abc", 4, -1, 0, 2, {0x0a, 0xbc}},
    {"one digit", "7", 4, -1, 0, 1, {0x07}},
    {"exactly the capacity", "01020304", 4, 0, 0, 4, {1, 2, 3, 4}},
    {"odd count at the capacity", "1020304", 4, -1, 0, 4, {0x01, 0x02, 0x03, 0x04}},
    {"one octet too many", "0102030405", 4, -1, -1, 0, {0}},
    {"empty", "", 4, -1, -1, 0, {0}},
    {"not a digit", "0g", 4, -1, -1, 0, {0}},
    {"leading space", " 1", 4, -1, -1, 0, {0}},
    {"sign", "+1", 4, -1, -1, 0, {0}},
    {"0x prefix", "0x12", 4, -1, -1, 0, {0}},
    {"NUL inside the length", "1\0002", 4, -1, -1, 0, {0}},
};

Test(hex, decode_table)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* The NUL case measures past the NUL on purpose. */
        size_t len = strcmp(cases[i].name, "NUL inside the length") == 0 ? 3 : strlen(cases[i].in);
        uint8_t out[4];
        size_t n = 99;
        int rc;

        rc = hex_decode(out, cases[i].cap, &n, cases[i].in, len);
        cr_expect_eq(rc, cases[i].even_rc, "%s: hex_decode %d", cases[i].name, rc);
        if (rc == 0) {
            cr_expect_eq(n, cases[i].out_len, "%s", cases[i].name);
            cr_expect_arr_eq(out, cases[i].out, n, "%s", cases[i].name);
        } else {
            cr_expect_eq(n, 0, "%s: out_len not cleared", cases[i].name);
        }
        n = 99;
        rc = hex_decode_padded(out, cases[i].cap, &n, cases[i].in, len);
        cr_expect_eq(rc, cases[i].padded_rc, "%s: hex_decode_padded %d", cases[i].name, rc);
        if (rc == 0) {
            cr_expect_eq(n, cases[i].out_len, "%s", cases[i].name);
            cr_expect_arr_eq(out, cases[i].out, n, "%s", cases[i].name);
        } else {
            cr_expect_eq(n, 0, "%s: out_len not cleared", cases[i].name);
        }
    }
}

Test(hex, digit_values)
{
    for (int c = 0; c < 256; c++) {
        int want = c >= '0' && c <= '9'   ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : -1;
        cr_expect_eq(hex_digit_value(c), want, "character %d", c);
    }
}
