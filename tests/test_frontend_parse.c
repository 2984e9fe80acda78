/* The front ends' parsing helpers (server/frontends/frontend_parse.c):
 * URL decoding, PEM and concatenated DER, Envoy's x-forwarded-client-cert,
 * claims and the host map. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "frontend.h"

/* Two small DER SEQUENCEs (short and long length form) and their PEM: the
 * parsers frame DER and decode PEM, they do not parse X.509. */
static const uint8_t der_a[] = {0x30, 0x03, 0x02, 0x01, 0x01};
static const uint8_t der_b[] = {0x30, 0x81, 0x03, 0x02, 0x01, 0x02};
static const char pem_a[] = "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
static const char pem_b[] = "-----BEGIN CERTIFICATE-----\nMIEDAgEC\n-----END CERTIFICATE-----\n";

static char *url_encode(const char *s)
{
    char *out = malloc(strlen(s) * 3 + 1), *p = out;

    for (; *s != '\0'; s++) {
        if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
            *s == '-')
            *p++ = *s;
        else
            p += sprintf(p, "%%%02X", (unsigned char)*s);
    }
    *p = '\0';
    return out;
}

Test(frontend_parse, url_decode)
{
    static const struct {
        const char *in;
        int rc;
        const char *out;
    } cases[] = {
        {"abc", 0, "abc"}, {"a%20b%0A", 0, "a b\n"}, {"%2B+", 0, "++"},   {"%", -1, NULL},
        {"%4", -1, NULL},  {"%ZZ", -1, NULL},        {"a%00b", -1, NULL}, {"", 0, ""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        size_t len = 0;
        int rc = frontend_url_decode(&out, &len, cases[i].in, strlen(cases[i].in));

        cr_expect_eq(rc, cases[i].rc, "%s", cases[i].in);
        if (rc == 0) {
            cr_expect_str_eq(out, cases[i].out, "%s", cases[i].in);
            cr_expect_eq(len, strlen(cases[i].out));
        } else {
            cr_expect_null(out);
        }
        free(out);
    }
}

Test(frontend_parse, pem_and_der_lists)
{
    struct frontend_certs c = {0};
    char two[256];
    uint8_t cat[sizeof(der_a) + sizeof(der_b)];

    snprintf(two, sizeof(two), "%s%s", pem_a, pem_b);
    cr_assert_eq(frontend_certs_add_pem(&c, two, strlen(two)), 0);
    cr_assert_eq(c.n, 2);
    cr_expect_eq(c.len[0], sizeof(der_a));
    cr_expect_arr_eq(c.der[0], der_a, sizeof(der_a));
    cr_expect_arr_eq(c.der[1], der_b, sizeof(der_b));
    frontend_certs_clear(&c);
    cr_expect_eq(c.n, 0);
    cr_expect_eq(frontend_certs_add_pem(&c, "", 0), -1);
    cr_expect_eq(frontend_certs_add_pem(&c, "hello", 5), -1);
    cr_expect_eq(frontend_certs_add_pem(&c, pem_a, 30), -1); /* truncated */
    frontend_certs_clear(&c);

    memcpy(cat, der_a, sizeof(der_a));
    memcpy(cat + sizeof(der_a), der_b, sizeof(der_b));
    cr_assert_eq(frontend_certs_add_der_list(&c, cat, sizeof(cat)), 0);
    cr_expect_eq(c.n, 2);
    cr_expect_eq(c.len[1], sizeof(der_b));
    frontend_certs_clear(&c);
    cr_expect_eq(frontend_certs_add_der_list(&c, cat, sizeof(cat) - 1), -1);
    frontend_certs_clear(&c);
    cr_expect_eq(frontend_certs_add_der_list(&c, (const uint8_t *)"\x31\x00", 2), -1);
    frontend_certs_clear(&c);
    cr_expect_eq(frontend_certs_add_der_list(&c, NULL, 0), 0);
    cr_expect_eq(c.n, 0);
}

Test(frontend_parse, xfcc)
{
    char *a = url_encode(pem_a), *b = url_encode(pem_b);
    char hdr[2048];
    struct frontend_certs c = {0};

    /* Chain= wins over Cert=, quoted or not, keys in any case. */
    snprintf(hdr, sizeof(hdr),
             "By=spiffe://x;Hash=00;Cert=\"%s\";Chain=\"%s%s\";Subject=\"CN=a,O=b;c\"", a, a, b);
    cr_expect_eq(frontend_xfcc_certs(&c, hdr, strlen(hdr)), 1);
    cr_expect_eq(c.n, 2);
    frontend_certs_clear(&c);
    snprintf(hdr, sizeof(hdr), "hash=00;cert=%s", b);
    cr_expect_eq(frontend_xfcc_certs(&c, hdr, strlen(hdr)), 1);
    cr_expect_eq(c.n, 1);
    cr_expect_arr_eq(c.der[0], der_b, sizeof(der_b));
    frontend_certs_clear(&c);
    /* The last element is the nearest proxy's. */
    snprintf(hdr, sizeof(hdr), "Cert=%s,By=x;Cert=%s", a, b);
    cr_expect_eq(frontend_xfcc_certs(&c, hdr, strlen(hdr)), 1);
    cr_expect_arr_eq(c.der[0], der_b, sizeof(der_b));
    frontend_certs_clear(&c);
    /* An earlier element's Chain= never counts. */
    snprintf(hdr, sizeof(hdr), "Chain=%s,By=x;Cert=%s", a, b);
    cr_expect_eq(frontend_xfcc_certs(&c, hdr, strlen(hdr)), 1);
    cr_assert_eq(c.n, 1);
    cr_expect_arr_eq(c.der[0], der_b, sizeof(der_b));
    frontend_certs_clear(&c);
    /* Neither key: 0; broken: -1. */
    cr_expect_eq(frontend_xfcc_certs(&c, "By=x;Hash=00", 12), 0);
    cr_expect_eq(frontend_xfcc_certs(&c, "Cert=%ZZ", 8), -1);
    cr_expect_eq(frontend_xfcc_certs(&c, "Chain=\"abc\"", 11), -1);
    frontend_certs_clear(&c);
    free(a);
    free(b);
}

Test(frontend_parse, claims_and_hosts)
{
    char out[FRONTEND_MAX_CLAIM], big[FRONTEND_MAX_CLAIM + 1];
    struct frontend_host_tenant hosts[] = {{"login.acme.example", "acme"}, {"[::1]", "v6"}};
    struct frontends_config f = {.hosts = hosts, .n_hosts = 2};

    cr_expect_eq(frontend_claim_copy(out, "acme", 4), 0);
    cr_expect_str_eq(out, "acme");
    cr_expect_eq(frontend_claim_copy(out, "a\nb", 3), -1);
    memset(big, 'x', sizeof(big));
    cr_expect_eq(frontend_claim_copy(out, big, sizeof(big)), -1);
    cr_expect_str_eq(frontend_tenant_for_host(&f, "LOGIN.acme.example:8443", 23), "acme");
    cr_expect_str_eq(frontend_tenant_for_host(&f, "login.acme.example", 18), "acme");
    cr_expect_null(frontend_tenant_for_host(&f, "login.acme.example.evil", 23));
    cr_expect_null(frontend_tenant_for_host(&f, "login", 5));
    cr_expect_null(frontend_tenant_for_host(&f, NULL, 0));
}
