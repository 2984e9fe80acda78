/* UTF-8 well-formedness (RFC 3629 3), shared by the claims check and the
 * log escaper: one table of sequences and what each must measure. */
#include <criterion/criterion.h>

#include <string.h>

#include "utf8.h"

static const struct {
    const char *name, *in;
    size_t seq_len; /* utf8_seq_len at the first byte */
} cases[] = {
    {"ascii", "a", 1},
    {"two bytes", "\xc3\xa9", 2},
    {"three bytes", "\xe2\x82\xac", 3},
    {"four bytes", "\xf0\x9f\x98\x80", 4},
    {"overlong two", "\xc0\xaf", 0},
    {"overlong three", "\xe0\x80\xaf", 0},
    {"overlong four", "\xf0\x80\x80\xaf", 0},
    {"surrogate", "\xed\xa0\x80", 0},
    {"above U+10FFFF", "\xf4\x90\x80\x80", 0},
    {"lead byte f5", "\xf5\x80\x80\x80", 0},
    {"lone continuation", "\x80", 0},
    {"bad continuation", "\xc3\x28", 0},
    {"truncated", "\xe2\x82", 0},
};

Test(utf8, seq_len_table)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const uint8_t *s = (const uint8_t *)cases[i].in;
        size_t n = strlen(cases[i].in);

        cr_expect_eq(utf8_seq_len(s, n), cases[i].seq_len, "%s", cases[i].name);
        cr_expect_eq(utf8_first_bad(s, n), cases[i].seq_len ? n : 0, "%s", cases[i].name);
    }
}

Test(utf8, first_bad_points_at_the_offending_byte)
{
    static const char s[] = "ok \xc3\xa9 then \xed\xa0\x80";

    cr_assert_eq(utf8_first_bad((const uint8_t *)s, strlen(s)), 11);
}
