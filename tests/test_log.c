/* JSON-lines logging: escaping keeps every line valid JSON. */
#include <criterion/criterion.h>

#include <string.h>
/* Before log.h on purpose: its level names must not collide with
 * <syslog.h>'s LOG_* macros (this file would not compile). */
#include <syslog.h>

#include "log.h"

static const struct {
    const char *in, *out;
} cases[] = {
    {"plain", "plain"},
    {"quote \" and backslash \\", "quote \\\" and backslash \\\\"},
    {"new\nline", "new\\nline"},
    {"tab\tbell\a", "tab\\u0009bell\\u0007"},
    {"del\x7f", "del\\u007f"},
    {"utf-8 \xc3\xa9 stays", "utf-8 \xc3\xa9 stays"},
};

Test(log, json_escape_table)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[128];
        size_t len = 0;

        log_json_escape(out, sizeof(out), &len, cases[i].in);
        cr_assert_str_eq(out, cases[i].out, "case %zu", i);
        cr_assert_eq(len, strlen(cases[i].out));
    }
}

Test(log, json_escape_truncates_without_splitting_an_escape)
{
    char out[8];
    size_t len = 0;

    log_json_escape(out, sizeof(out), &len, "abcdef\"gh");
    /* "abcdef" fits; the 2-byte escape would not leave room for the NUL. */
    cr_assert_str_eq(out, "abcdef");
    cr_assert_lt(len, sizeof(out));
}
