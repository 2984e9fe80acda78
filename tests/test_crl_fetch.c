/* Tests of the HTTP CRL fetcher's pure helpers (server/fetch/crl_fetch_http.h):
 * URL parsing, redirect resolution, the request text, the retry backoff,
 * the schedule after a success, and reading a CRL's times. Table-driven
 * where cases differ only in data. The fetcher itself (io_uring, faults) is
 * exercised end to end by tests/integration/test_crl_fetch.py. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/mem.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crl_fetch_http.h"
#include "pki_gen.h"

struct url_case {
    const char *url;
    int rc;
    const char *host, *port, *target;
    bool v6;
};

Test(crl_fetch, parse_url)
{
    static const struct url_case cases[] = {
        {"http://crl.example.com/ca.crl", 0, "crl.example.com", "80", "/ca.crl", false},
        {"HTTP://Crl.Example.com:8080/a/b.crl?x=1", 0, "Crl.Example.com", "8080", "/a/b.crl?x=1",
         false},
        {"http://127.0.0.1", 0, "127.0.0.1", "80", "/", false},
        {"http://127.0.0.1:9/", 0, "127.0.0.1", "9", "/", false},
        {"http://[::1]:8080/c.crl", 0, "::1", "8080", "/c.crl", true},
        {"http://h/p#frag", 0, "h", "80", "/p", false},
        {"https://crl.example.com/ca.crl", -1, NULL, NULL, NULL, false},
        {"ldap://dir.example.com/cn=CA", -1, NULL, NULL, NULL, false},
        {"http://", -1, NULL, NULL, NULL, false},
        {"http://user:pw@h/x", -1, NULL, NULL, NULL, false},
        {"http://h:0/x", -1, NULL, NULL, NULL, false},
        {"http://h/a b", -1, NULL, NULL, NULL, false},
        {"http://h/a\r\nX: y", -1, NULL, NULL, NULL, false},
        {"crl.example.com/ca.crl", -1, NULL, NULL, NULL, false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct url_case *c = &cases[i];
        struct crl_fetch_url u;
        char err[200] = "";
        int rc = crl_fetch_parse_url(&u, c->url, err, sizeof(err));

        cr_expect_eq(rc, c->rc, "%s: rc %d (%s)", c->url, rc, err);
        if (rc != 0 || c->rc != 0)
            continue;
        cr_expect_str_eq(u.host, c->host, "%s", c->url);
        cr_expect_str_eq(u.port, c->port, "%s", c->url);
        cr_expect_str_eq(u.target, c->target, "%s", c->url);
        cr_expect_eq(u.ipv6_literal, c->v6, "%s", c->url);
    }
}

Test(crl_fetch, https_refused_with_a_clear_message)
{
    struct crl_fetch_url u;
    char err[200] = "";

    cr_assert_eq(crl_fetch_parse_url(&u, "https://crl.example.com/x.crl", err, sizeof(err)), -1);
    cr_expect_not_null(strstr(err, "https:// is not supported"), "%s", err);
}

Test(crl_fetch, too_long_url_refused)
{
    char url[CRL_FETCH_URL_MAX + 10];
    struct crl_fetch_url u;
    char err[200];

    memset(url, 'a', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    memcpy(url, "http://h/", 9);
    cr_expect_eq(crl_fetch_parse_url(&u, url, err, sizeof(err)), -1);
}

struct loc_case {
    const char *base, *location, *want; /* want NULL = refused */
};

Test(crl_fetch, resolve_location)
{
    static const struct loc_case cases[] = {
        {"http://a/b/c.crl", "http://x:81/y.crl", "http://x:81/y.crl"},
        {"http://a/b/c.crl", "HTTP://x/y", "HTTP://x/y"},
        {"http://a:8080/b/c.crl", "/d.crl", "http://a:8080/d.crl"},
        {"http://a/b/c.crl", "d.crl", "http://a/b/d.crl"},
        {"http://a/b/c.crl?q=1", "d.crl", "http://a/b/d.crl"},
        {"http://a", "d.crl", "http://a/d.crl"},
        {"http://a/c.crl", "//m.example/z.crl", "http://m.example/z.crl"},
        {"http://a/b/c.crl", "https://a/b/c.crl", NULL},
        {"http://a/b/c.crl", "ftp://a/c.crl", NULL},
        {"http://a/b/c.crl", "", NULL},
        {"http://a/b/c.crl", "/x\r\nSet-Cookie: 1", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct loc_case *c = &cases[i];
        char out[CRL_FETCH_URL_MAX], err[200] = "";
        int rc = crl_fetch_resolve_location(out, sizeof(out), c->base, c->location, err,
                                            sizeof(err));

        if (c->want == NULL) {
            cr_expect_eq(rc, -1, "%s + %s gave %s", c->base, c->location, out);
            continue;
        }
        cr_expect_eq(rc, 0, "%s + %s: %s", c->base, c->location, err);
        if (rc == 0)
            cr_expect_str_eq(out, c->want, "%s + %s", c->base, c->location);
    }
}

Test(crl_fetch, resolve_location_too_long)
{
    char out[32], err[200];

    cr_expect_eq(crl_fetch_resolve_location(out, sizeof(out), "http://a/b",
                                            "/a-path-that-does-not-fit-in-32-bytes", err,
                                            sizeof(err)),
                 -1);
}

Test(crl_fetch, request_plain_and_conditional)
{
    struct crl_fetch_url u;
    char req[1024], err[200];
    size_t len;

    cr_assert_eq(crl_fetch_parse_url(&u, "http://crl.example:8080/ca.crl", err, sizeof(err)), 0);
    cr_assert_eq(crl_fetch_build_request(req, sizeof(req), &len, &u, NULL, "", err, sizeof(err)),
                 0);
    cr_expect_eq(len, strlen(req));
    cr_expect_eq(strncmp(req, "GET /ca.crl HTTP/1.1\r\nHost: crl.example:8080\r\n", 46), 0, "%s",
                 req);
    cr_expect_null(strstr(req, "If-None-Match"));
    cr_expect_null(strstr(req, "If-Modified-Since"));
    cr_expect_not_null(strstr(req, "Connection: close\r\n"));
    cr_expect_eq(strcmp(req + len - 4, "\r\n\r\n"), 0);

    cr_assert_eq(crl_fetch_build_request(req, sizeof(req), &len, &u, "\"v1\"",
                                         "Sun, 22 Nov 2026 10:00:00 GMT", err, sizeof(err)),
                 0);
    cr_expect_not_null(strstr(req, "\r\nIf-None-Match: \"v1\"\r\n"), "%s", req);
    cr_expect_not_null(strstr(req, "\r\nIf-Modified-Since: Sun, 22 Nov 2026 10:00:00 GMT\r\n"));
}

Test(crl_fetch, request_ipv6_host_and_refusals)
{
    struct crl_fetch_url u;
    char req[1024], err[200];
    size_t len;

    cr_assert_eq(crl_fetch_parse_url(&u, "http://[::1]/x", err, sizeof(err)), 0);
    cr_assert_eq(crl_fetch_build_request(req, sizeof(req), &len, &u, "", "", err, sizeof(err)), 0);
    cr_expect_not_null(strstr(req, "\r\nHost: [::1]\r\n"), "%s", req);
    /* A validator with CR/LF (a hostile server) is never sent. */
    cr_expect_eq(crl_fetch_build_request(req, sizeof(req), &len, &u, "\"a\"\r\nX: 1", "", err,
                                         sizeof(err)),
                 -1);
    cr_expect_eq(crl_fetch_build_request(req, 40, &len, &u, "", "", err, sizeof(err)), -1);
}

Test(crl_fetch, backoff_doubles_caps_and_jitters)
{
    static const struct {
        unsigned failures;
        uint32_t max_s;
        uint64_t base_ms;
    } cases[] = {
        {0, 300, 1000},   {1, 300, 1000},   {2, 300, 2000},    {3, 300, 4000},
        {9, 300, 256000}, {10, 300, 300000}, {1000, 300, 300000}, {5, 1, 1000},
        {40, 86400, 86400000},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t base = cases[i].base_ms;
        uint64_t lo = crl_fetch_backoff_ms(cases[i].failures, cases[i].max_s, 0);
        uint64_t hi = crl_fetch_backoff_ms(cases[i].failures, cases[i].max_s, (uint32_t)(base / 2));
        uint64_t any = crl_fetch_backoff_ms(cases[i].failures, cases[i].max_s, 0xdeadbeef);

        cr_expect_eq(lo, base / 2, "failures %u: %llu", cases[i].failures,
                     (unsigned long long)lo);
        cr_expect_eq(hi, base, "failures %u: %llu", cases[i].failures, (unsigned long long)hi);
        cr_expect(any >= base / 2 && any <= base, "failures %u: %llu", cases[i].failures,
                  (unsigned long long)any);
    }
}

Test(crl_fetch, next_fetch_after_success)
{
    static const struct {
        int64_t now, next_update;
        uint32_t ahead, max_interval, want;
    } cases[] = {
        /* nextUpdate far away: the max interval */
        {1000000, 1000000 + 7 * 86400, 3600, 3600, 3600},
        /* nextUpdate soon: refresh ahead of it */
        {1000000, 1000000 + 5400, 3600, 3600, 1800},
        /* inside the refresh window: the 30 s floor, no spinning */
        {1000000, 1000000 + 600, 3600, 3600, 30},
        /* already past nextUpdate: the floor too */
        {1000000, 1000000 - 600, 3600, 3600, 30},
        /* no nextUpdate */
        {1000000, 0, 3600, 900, 900},
        /* a short max interval is its own floor */
        {1000000, 1000000 + 10, 3600, 1, 1},
        {1000000, 1000000 + 86400, 0, 60, 60},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t got = crl_fetch_next_success(cases[i].now, cases[i].next_update, cases[i].ahead,
                                              cases[i].max_interval);

        cr_expect_eq(got, cases[i].want, "case %zu: %u", i, got);
    }
}

static uint8_t *make_crl(size_t *len, int64_t at, int64_t next)
{
    struct pki_cert_spec spec = {.cn = "Fetch Test CA", .not_before = at - 86400,
                                 .not_after = at + 86400 * 365, .is_ca = true, .path_len = -1};
    EVP_PKEY *key = pki_key_new(PKI_KEY_P256);
    uint64_t serials[] = {5, 7};
    uint8_t *der = NULL;
    X509_CRL *crl;
    X509 *ca;
    int n;

    cr_assert_not_null(key);
    ca = pki_issue(&spec, key, NULL, key);
    cr_assert_not_null(ca);
    crl = pki_crl_new(ca, key, serials, 2, at, next, 42);
    cr_assert_not_null(crl);
    n = i2d_X509_CRL(crl, &der);
    cr_assert_gt(n, 0);
    *len = (size_t)n;
    X509_CRL_free(crl);
    X509_free(ca);
    EVP_PKEY_free(key);
    return der;
}

Test(crl_fetch, crl_times)
{
    int64_t at = 1795000000, t = -1, nx = -1;
    size_t len;
    uint8_t *der = make_crl(&len, at, at + 7 * 86400);

    cr_assert_eq(crl_fetch_crl_times(&t, &nx, der, len), 0);
    cr_expect_eq(t, at);
    cr_expect_eq(nx, at + 7 * 86400);
    /* Truncated or garbage input is refused, never read past its end. */
    cr_expect_eq(crl_fetch_crl_times(&t, &nx, der, len / 3), -1);
    cr_expect_eq(crl_fetch_crl_times(&t, &nx, (const uint8_t *)"garbage", 7), -1);
    OPENSSL_free(der);

    der = make_crl(&len, at, 0); /* no nextUpdate */
    cr_assert_eq(crl_fetch_crl_times(&t, &nx, der, len), 0);
    cr_expect_eq(t, at);
    cr_expect_eq(nx, 0);
    OPENSSL_free(der);
}

static void collect_uri(const char *uri, void *arg)
{
    char *out = arg;

    snprintf(out, 256, "%s", uri);
}

Test(crl_fetch, cert_distribution_points)
{
    struct pki_cert_spec spec = {.cn = "DP CA", .not_before = 1700000000,
                                 .not_after = 1900000000, .is_ca = true, .path_len = -1,
                                 .crl_dp_uri = "http://crl.example/dp.crl"};
    EVP_PKEY *key = pki_key_new(PKI_KEY_P256);
    char got[256] = "";
    X509 *x;

    cr_assert_not_null(key);
    x = pki_issue(&spec, key, NULL, key);
    cr_assert_not_null(x);
    cr_expect_eq(crl_fetch_cert_dp_uris(x, collect_uri, got), 1);
    cr_expect_str_eq(got, "http://crl.example/dp.crl");
    X509_free(x);

    spec.crl_dp_uri = NULL;
    got[0] = '\0';
    x = pki_issue(&spec, key, NULL, key);
    cr_assert_not_null(x);
    cr_expect_eq(crl_fetch_cert_dp_uris(x, collect_uri, got), 0);
    cr_expect_str_eq(got, "");
    X509_free(x);
    EVP_PKEY_free(key);
}
