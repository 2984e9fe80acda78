/* Tests of server/audit.c: which verdicts give an audit line, what the line
 * holds (and never holds), how hostile claims are cut and escaped, and the
 * one-second rate limit with its "audit_suppressed" report. The lines go to
 * stdout through log.c; each test captures fd 1 in a temporary file. Each
 * Criterion test runs in its own process, so the audit policy and the rate
 * limit window start fresh. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "support/tmpdir.h"
#include "verdict.h"

static char g_dir[TS_TMPDIR_MAX];
static char g_out[128];
static int g_saved_stdout = -1;

/* capture_start sends fd 1 to a fresh file; capture_end restores it and
 * returns what was written (caller frees). */
static void capture_start(void)
{
    int fd;

    if (g_dir[0] == '\0')
        ts_tmpdir_make(g_dir, "audit");
    ts_path(g_out, sizeof(g_out), g_dir, "stdout");
    fd = open(g_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    fflush(stdout);
    g_saved_stdout = dup(STDOUT_FILENO);
    cr_assert_geq(g_saved_stdout, 0);
    cr_assert_geq(dup2(fd, STDOUT_FILENO), 0);
    close(fd);
}

static char *capture_end(void)
{
    FILE *f;
    long len;
    char *text;

    fflush(stdout);
    cr_assert_geq(dup2(g_saved_stdout, STDOUT_FILENO), 0);
    close(g_saved_stdout);
    g_saved_stdout = -1;
    f = fopen(g_out, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)len + 1);
    cr_assert_not_null(text);
    cr_assert_eq(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return text;
}

static void cleanup(void)
{
    ts_tmpdir_remove(g_dir);
}

TestSuite(audit, .fini = cleanup);

static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;

    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static struct cv_bytes bytes(const char *s)
{
    struct cv_bytes b = {(const uint8_t *)s, s != NULL ? strlen(s) : 0};
    return b;
}

static struct verdict deny_revoked(void)
{
    struct verdict v;

    verdict_init(&v, 42);
    verdict_deny(&v, VERDICT_REASON_REVOKED, "leaf revoked");
    v.kind = CERT_KIND_TENANT;
    snprintf(v.profile, sizeof(v.profile), "tenant");
    snprintf(v.issuer, sizeof(v.issuer), "CN=Tenant CA");
    snprintf(v.serial_hex, sizeof(v.serial_hex), "0a1b");
    v.has_leaf_sha256 = true;
    memset(v.leaf_sha256, 0xab, sizeof(v.leaf_sha256));
    return v;
}

static struct verdict allow_ok(void)
{
    struct verdict v;

    verdict_init(&v, 43);
    v.decision = DECISION_ALLOW;
    v.reason = VERDICT_REASON_OK;
    snprintf(v.profile, sizeof(v.profile), "device");
    return v;
}

Test(audit, deny_line_holds_the_verdict_and_claims)
{
    static const char *const want[] = {
        "\"level\":\"warn\"",
        "\"type\":\"audit\"",
        "\"decision\":\"DENY\"",
        "\"reason\":\"REVOKED\"",
        "\"tenant\":\"acme\"",
        "\"device\":\"dev-1\"",
        "\"user\":\"alice\"",
        "\"profile\":\"tenant\"",
        "\"issuer\":\"CN=Tenant CA\"",
        "\"serial\":\"0a1b\"",
        "\"leaf_sha256\":\"abababababababababababababababababababababababababababababababab\"",
        "\"detail\":\"leaf revoked\"",
    };
    struct verdict v = deny_revoked();
    char *text;

    audit_configure(false, 100);
    capture_start();
    audit_verdict(&v, bytes("acme"), bytes("dev-1"), bytes("alice"));
    text = capture_end();
    cr_assert_eq(count_of(text, "\n"), 1, "one line: %s", text);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_expect_neq(strstr(text, want[i]), NULL, "no %s in %s", want[i], text);
    free(text);
}

Test(audit, allow_is_logged_only_when_all_verdicts_are_configured)
{
    static const struct {
        bool all;
        bool deny;
        size_t lines;
        const char *level;
    } rows[] = {
        {false, false, 0, NULL},
        {false, true, 1, "\"level\":\"warn\""},
        {true, false, 1, "\"level\":\"info\""},
        {true, true, 1, "\"level\":\"warn\""},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct verdict v = rows[i].deny ? deny_revoked() : allow_ok();
        char *text;

        audit_configure(rows[i].all, 1000);
        capture_start();
        audit_verdict(&v, bytes("acme"), bytes(NULL), bytes(NULL));
        text = capture_end();
        cr_expect_eq(count_of(text, "\"type\":\"audit\""), rows[i].lines, "row %zu: %s", i, text);
        if (rows[i].level != NULL)
            cr_expect_neq(strstr(text, rows[i].level), NULL, "row %zu: %s", i, text);
        free(text);
    }
}

Test(audit, hostile_claims_are_cut_and_escaped)
{
    static const uint8_t tenant[] = {'a', 0, 'b', '"', '\n', 0xff, 'c'};
    static const struct {
        const char *field, *want;
    } rows[] = {
        /* NUL, quote and newline escaped, the stray 0xff byte replaced */
        {"tenant", "\"tenant\":\"a\\u0000b\\\"\\n\\ufffdc\""},
        /* empty claims (no data) are empty strings */
        {"device", "\"device\":\"\""},
    };
    struct verdict v = deny_revoked();
    struct cv_bytes t = {tenant, sizeof(tenant)}, none = {NULL, 0};
    char user[AUDIT_FIELD_MAX + 100], cut[AUDIT_FIELD_MAX + 16], *text;

    memset(user, 'u', sizeof(user) - 1);
    user[sizeof(user) - 1] = '\0';
    audit_configure(false, 100);
    capture_start();
    audit_verdict(&v, t, none, bytes(user));
    text = capture_end();
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        cr_expect_neq(strstr(text, rows[i].want), NULL, "row %zu (%s): %s", i, rows[i].field,
                      text);
    /* The user claim: its first AUDIT_FIELD_MAX bytes, then "...". */
    snprintf(cut, sizeof(cut), "\"user\":\"%.*s...\"", AUDIT_FIELD_MAX, user);
    cr_expect_neq(strstr(text, cut), NULL, "user not cut at %d bytes", AUDIT_FIELD_MAX);
    cr_expect_eq(count_of(text, "\n"), 1, "a claim's newline split the line: %s", text);
    free(text);
}

/* wait_for_new_second sleeps until time(NULL) has just changed, so the next
 * few calls fall in one rate-limit window. */
static time_t wait_for_new_second(void)
{
    time_t t0 = time(NULL), t;

    while ((t = time(NULL)) == t0)
        usleep(1000);
    return t;
}

Test(audit, rate_limit_drops_lines_past_the_limit_and_reports_them)
{
    struct verdict v = deny_revoked();
    char *text;
    time_t w;
    bool one_window = false;

    audit_configure(false, 3);
    for (int attempt = 0; attempt < 5 && !one_window; attempt++) {
        uint64_t before = audit_suppressed_total();

        w = wait_for_new_second();
        capture_start();
        for (int i = 0; i < 10; i++)
            audit_verdict(&v, bytes("acme"), bytes(NULL), bytes(NULL));
        text = capture_end();
        one_window = time(NULL) == w;
        if (one_window) {
            cr_expect_eq(count_of(text, "\"type\":\"audit\""), 3, "%s", text);
            cr_expect_eq(audit_suppressed_total() - before, 7);
        }
        free(text);
    }
    cr_assert(one_window, "ten calls never fitted in one second");

    /* The first line of the next window reports the 7 dropped ones. */
    wait_for_new_second();
    capture_start();
    audit_verdict(&v, bytes("acme"), bytes(NULL), bytes(NULL));
    text = capture_end();
    cr_expect_neq(strstr(text, "\"type\":\"audit_suppressed\""), NULL, "%s", text);
    cr_expect_neq(strstr(text, "\"suppressed\":7"), NULL, "%s", text);
    cr_expect_eq(count_of(text, "\"type\":\"audit\""), 1, "%s", text);
    free(text);
}
