/* Tests of validator/cert_read.c: each cheap reader gives exactly what the
 * BoringSSL call it replaces gives, on hand-picked edge cases and on many
 * generated inputs compared with that call directly. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/x509.h>

#include "cert_read.h"
#include "support/clock.h"

/* ---- cert_cmp_time -------------------------------------------------------- */

static ASN1_TIME *time_of(int type, const char *s)
{
    ASN1_TIME *t = ASN1_STRING_type_new(type);

    cr_assert_not_null(t);
    cr_assert(ASN1_STRING_set(t, s, (int)strlen(s)));
    return t;
}

static int boringssl_cmp(const ASN1_TIME *t, int64_t at)
{
    time_t tt = (time_t)at;
    return X509_cmp_time(t, &tt);
}

Test(cert_read, cmp_time_edge_cases)
{
    static const int64_t mar1 = 1709251200; /* 2024-03-01T00:00:00Z */
    static const struct {
        int type;
        const char *s;
        int64_t at;
        int want;
    } rows[] = {
        {V_ASN1_UTCTIME, "240301000000Z", mar1, -1},  /* equal: at or before */
        {V_ASN1_UTCTIME, "240301000001Z", mar1, 1},
        {V_ASN1_UTCTIME, "240229235959Z", mar1, -1},
        {V_ASN1_UTCTIME, "240230000000Z", mar1, -1},  /* Feb 30 counts as Mar 1 */
        {V_ASN1_UTCTIME, "240231000000Z", mar1, 1},   /* ... Feb 31 as Mar 2 */
        {V_ASN1_UTCTIME, "240431000000Z", mar1, 1},
        {V_ASN1_UTCTIME, "240301000060Z", mar1, 0},   /* second 60 */
        {V_ASN1_UTCTIME, "240301240000Z", mar1, 0},   /* hour 24 */
        {V_ASN1_UTCTIME, "240300000000Z", mar1, 0},   /* day 0 */
        {V_ASN1_UTCTIME, "241301000000Z", mar1, 0},   /* month 13 */
        {V_ASN1_UTCTIME, "240001000000Z", mar1, 0},   /* month 0 */
        {V_ASN1_UTCTIME, "240132000000Z", mar1, 0},   /* day 32 */
        {V_ASN1_UTCTIME, "500101000000Z", mar1, -1},  /* 1950 */
        {V_ASN1_UTCTIME, "491231235959Z", mar1, 1},   /* 2049 */
        {V_ASN1_UTCTIME, "2403010000Z", mar1, 0},     /* no seconds */
        {V_ASN1_UTCTIME, "24030100000aZ", mar1, 0},
        {V_ASN1_UTCTIME, "24030100000 Z", mar1, 0},
        {V_ASN1_UTCTIME, "240301000000+", mar1, 0},
        {V_ASN1_UTCTIME, "", mar1, 0},
        {V_ASN1_GENERALIZEDTIME, "20240301000000Z", mar1, -1},
        {V_ASN1_GENERALIZEDTIME, "20240301000001Z", mar1, 1},
        {V_ASN1_GENERALIZEDTIME, "00000101000000Z", mar1, -1},
        {V_ASN1_GENERALIZEDTIME, "99991231235959Z", mar1, 1},
        {V_ASN1_GENERALIZEDTIME, "2024030100000Z", mar1, 0},
        {V_ASN1_GENERALIZEDTIME, "20240301000000.5Z", mar1, 0},
        {V_ASN1_GENERALIZEDTIME, "20240301000000+0000", mar1, 0},
        {V_ASN1_OCTET_STRING, "240301000000Z", mar1, 0},
        /* |at| outside 1970-9999: X509_cmp_time's own answer. */
        {V_ASN1_UTCTIME, "240301000000Z", -1, 1},
        {V_ASN1_UTCTIME, "240301000000Z", INT64_C(253402300800), 0},
        {V_ASN1_UTCTIME, "691231235959Z", 0, -1},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        ASN1_TIME *t = time_of(rows[i].type, rows[i].s);

        cr_expect_eq(boringssl_cmp(t, rows[i].at), rows[i].want, "row %zu (%s): BoringSSL", i,
                     rows[i].s);
        cr_expect_eq(cert_cmp_time(t, rows[i].at), rows[i].want, "row %zu (%s)", i, rows[i].s);
        ASN1_TIME_free(t);
    }
}

/* A time string near the valid forms, for instant |u|: its fields,
 * sometimes one of them out of range, a stray character, one missing or
 * one extra. */
static void random_time(char *out, size_t cap, int *type, int64_t u, unsigned *seed)
{
    static const char junk[] = "0123456789Z+-. a";
    time_t tt = (time_t)u;
    struct tm tm;
    int f[6];
    size_t n;
    bool gen;

    gmtime_r(&tt, &tm);
    f[0] = tm.tm_year + 1900;
    f[1] = tm.tm_mon + 1;
    f[2] = tm.tm_mday;
    f[3] = tm.tm_hour;
    f[4] = tm.tm_min;
    f[5] = tm.tm_sec;
    gen = f[0] < 1950 || f[0] > 2049 || rand_r(seed) % 2 != 0;
    if (rand_r(seed) % 4 == 0) /* a field anywhere in 0-99 */
        f[1 + rand_r(seed) % 5] = rand_r(seed) % 100;
    snprintf(out, cap, gen ? "%04d%02d%02d%02d%02d%02dZ" : "%02d%02d%02d%02d%02d%02dZ",
             gen ? f[0] : f[0] % 100, f[1], f[2], f[3], f[4], f[5]);
    n = strlen(out);
    switch (rand_r(seed) % 16) {
    case 0:
        out[rand_r(seed) % n] = junk[rand_r(seed) % (sizeof(junk) - 1)];
        break;
    case 1:
        out[n - 1] = '\0';
        break;
    case 2:
        if (n + 1 < cap) {
            out[n] = 'Z';
            out[n + 1] = '\0';
        }
        break;
    default:
        break;
    }
    *type = rand_r(seed) % 32 == 0 ? V_ASN1_IA5STRING
            : gen                  ? V_ASN1_GENERALIZEDTIME
                                   : V_ASN1_UTCTIME;
}

Test(cert_read, cmp_time_matches_boringssl_on_generated_times)
{
    static const int64_t max_at = INT64_C(253402300799); /* 9999-12-31T23:59:59Z */
    unsigned seed = 15;

    for (int i = 0; i < 50000; i++) {
        /* The time itself: near the test clock, or anywhere in years 0-9999. */
        int64_t u = rand_r(&seed) % 2 ? TS_NOW + rand_r(&seed) % 20001 - 10000
                                      : ((int64_t)rand_r(&seed) << 16 | rand_r(&seed) % 65536) %
                                                (max_at + INT64_C(62167219200)) -
                                            INT64_C(62167219200);
        /* Compared at that instant, a second either side, or anywhere. */
        int64_t at = rand_r(&seed) % 4 != 0 ? u + rand_r(&seed) % 3 - 1
                                            : (int64_t)rand_r(&seed) * 117 % max_at;
        char s[32];
        int type;
        ASN1_TIME *t;

        random_time(s, sizeof(s), &type, u, &seed);
        t = time_of(type, s);
        cr_assert_eq(cert_cmp_time(t, at), boringssl_cmp(t, at), "%s (type %d) at %lld", s,
                     type, (long long)at);
        ASN1_TIME_free(t);
    }
}
