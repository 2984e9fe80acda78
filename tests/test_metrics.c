/* Tests of server/metrics.c: what a scrape shows after verdicts, batches,
 * errors and front-end decisions are recorded (summed over the recording
 * threads' shards), label escaping, the buffer cap, collectors and the
 * /metrics HTTP endpoint. Each Criterion test runs in its own process, so
 * every test starts from empty counters. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "verdict.h"

/* scrape renders the exposition into a NUL-terminated string (caller
 * frees). */
static char *scrape(void)
{
    struct mbuf b;

    metrics_render(&b);
    cr_assert(!b.overflow, "exposition overflowed");
    cr_assert_not_null(b.data);
    mbuf_printf(&b, "%s", ""); /* data is NUL-terminated by vsnprintf */
    return b.data;
}

/* value_of returns the value of the sample whose name and labels are
 * exactly |series|, or -1 when the scrape has no such line. */
static long long value_of(const char *text, const char *series)
{
    size_t n = strlen(series);

    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
    }
    return -1;
}

static struct verdict make_verdict(enum verdict_decision d, enum verdict_reason r,
                                   const char *profile)
{
    struct verdict v;

    verdict_init(&v, 1);
    v.decision = d;
    v.reason = r;
    snprintf(v.profile, sizeof(v.profile), "%s", profile);
    return v;
}

static void verdicts_series(char *out, size_t cap, enum verdict_decision d, enum verdict_reason r,
                            const char *profile)
{
    snprintf(out, cap, "certval_verdicts_total{decision=\"%s\",reason=\"%s\",profile=\"%s\"}",
             verdict_decision_name(d), verdict_reason_name(r), profile);
}

Test(metrics, verdicts_are_counted_by_decision_reason_and_profile)
{
    static const struct {
        enum verdict_decision d;
        enum verdict_reason r;
        const char *profile;
        int times;
    } rows[] = {
        {DECISION_DENY, VERDICT_REASON_REVOKED, "tenant", 2},
        {DECISION_DENY, VERDICT_REASON_EXPIRED, "tenant", 1},
        {DECISION_ALLOW, VERDICT_REASON_OK, "device", 3},
        {DECISION_REQUIRE_PASSWORD, VERDICT_REASON_OK, "tenant", 1},
    };
    char series[256], *text;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        for (int k = 0; k < rows[i].times; k++) {
            struct verdict v = make_verdict(rows[i].d, rows[i].r, rows[i].profile);
            metrics_record_verdict(&v, "acme");
        }
    text = scrape();
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        verdicts_series(series, sizeof(series), rows[i].d, rows[i].r, rows[i].profile);
        cr_expect_eq(value_of(text, series), rows[i].times, "row %zu: %s", i, series);
    }
    /* A combination never recorded is not shown at all. */
    verdicts_series(series, sizeof(series), DECISION_ALLOW, VERDICT_REASON_OK, "tenant");
    cr_expect_eq(value_of(text, series), -1, "%s", series);
    free(text);
}

Test(metrics, verdict_without_a_profile_or_past_the_profile_table_counts_as_none)
{
    char name[32], series[256], *text;
    struct verdict v = make_verdict(DECISION_DENY, VERDICT_REASON_UNTRUSTED_ISSUER, "");

    metrics_record_verdict(&v, NULL);
    /* 31 profile names are interned; the 32nd and later count as "none". */
    for (int i = 0; i < 33; i++) {
        snprintf(name, sizeof(name), "p%02d", i);
        v = make_verdict(DECISION_DENY, VERDICT_REASON_UNTRUSTED_ISSUER, name);
        metrics_record_verdict(&v, NULL);
    }
    text = scrape();
    verdicts_series(series, sizeof(series), DECISION_DENY, VERDICT_REASON_UNTRUSTED_ISSUER, "none");
    cr_expect_eq(value_of(text, series), 3, "%s", series);
    verdicts_series(series, sizeof(series), DECISION_DENY, VERDICT_REASON_UNTRUSTED_ISSUER, "p30");
    cr_expect_eq(value_of(text, series), 1, "%s", series);
    verdicts_series(series, sizeof(series), DECISION_DENY, VERDICT_REASON_UNTRUSTED_ISSUER, "p31");
    cr_expect_eq(value_of(text, series), -1, "%s", series);
    free(text);
}

#define THREADS 4
#define PER_THREAD 1000

static void *record_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        struct verdict v = make_verdict(DECISION_DENY, VERDICT_REASON_REVOKED, "tenant");
        metrics_record_verdict(&v, NULL);
        metrics_record_rpc_error(8);
    }
    return NULL;
}

Test(metrics, a_scrape_sums_every_threads_shard)
{
    pthread_t th[THREADS];
    char series[256], *text;

    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, record_many, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    text = scrape();
    verdicts_series(series, sizeof(series), DECISION_DENY, VERDICT_REASON_REVOKED, "tenant");
    cr_expect_eq(value_of(text, series), THREADS * PER_THREAD);
    cr_expect_eq(value_of(text, "certval_rpc_errors_total{code=\"8\"}"), THREADS * PER_THREAD);
    free(text);
}

Test(metrics, batch_latency_and_size_histograms_are_cumulative)
{
    static const struct {
        const char *series;
        long long want;
    } rows[] = {
        /* one unary batch of 3 chains in 300 us, one stream batch of 1 in 2 ms */
        {"certval_batch_latency_seconds_bucket{method=\"Validate\",le=\"0.00025\"}", 0},
        {"certval_batch_latency_seconds_bucket{method=\"Validate\",le=\"0.0005\"}", 1},
        {"certval_batch_latency_seconds_bucket{method=\"Validate\",le=\"+Inf\"}", 1},
        {"certval_batch_latency_seconds_count{method=\"Validate\"}", 1},
        {"certval_batch_latency_seconds_bucket{method=\"ValidateStream\",le=\"0.001\"}", 0},
        {"certval_batch_latency_seconds_bucket{method=\"ValidateStream\",le=\"0.0025\"}", 1},
        {"certval_batch_latency_seconds_count{method=\"ValidateStream\"}", 1},
        {"certval_batch_chains_bucket{le=\"1\"}", 1},
        {"certval_batch_chains_bucket{le=\"2\"}", 1},
        {"certval_batch_chains_bucket{le=\"4\"}", 2},
        {"certval_batch_chains_bucket{le=\"+Inf\"}", 2},
        {"certval_batch_chains_sum{}", 4},
        {"certval_batch_chains_count{}", 2},
    };
    char *text;

    metrics_record_batch(3, 300 * 1000, false);
    metrics_record_batch(1, 2 * 1000 * 1000, true);
    text = scrape();
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        cr_expect_eq(value_of(text, rows[i].series), rows[i].want, "row %zu: %s", i,
                     rows[i].series);
    free(text);
}

Test(metrics, rpc_errors_and_frontend_decisions_ignore_out_of_range_values)
{
    char *text;

    metrics_record_rpc_error(14);
    metrics_record_rpc_error(0);  /* OK is not an error */
    metrics_record_rpc_error(17); /* past the gRPC codes */
    metrics_record_rpc_error(-1);
    metrics_record_frontend(METRICS_FRONTEND_NGINX, DECISION_DENY);
    metrics_record_frontend(METRICS_FRONTEND_NGINX, DECISION_DENY);
    metrics_record_frontend(METRICS_FRONTEND_ENVOY, DECISION_ALLOW);
    metrics_record_frontend(METRICS_FRONTEND_COUNT, DECISION_ALLOW);
    text = scrape();
    cr_expect_eq(value_of(text, "certval_rpc_errors_total{code=\"14\"}"), 1);
    cr_expect_null(strstr(text, "certval_rpc_errors_total{code=\"0\"}"));
    cr_expect_null(strstr(text, "certval_rpc_errors_total{code=\"17\"}"));
    cr_expect_eq(
        value_of(text, "certval_frontend_decisions_total{frontend=\"nginx\",decision=\"DENY\"}"),
        2);
    cr_expect_eq(
        value_of(text, "certval_frontend_decisions_total{frontend=\"envoy\",decision=\"ALLOW\"}"),
        1);
    free(text);
}

Test(metrics, tenant_expiry_gauge_shows_valid_tenant_certificates_only)
{
    static const struct {
        enum cert_kind kind;
        enum verdict_reason reason;
        const char *tenant, *serial;
        int64_t not_after;
        bool shown;
    } rows[] = {
        {CERT_KIND_TENANT, VERDICT_REASON_OK, "acme", "0a", 1800000000, true},
        {CERT_KIND_TENANT, VERDICT_REASON_OK, "quote\"co", "0b", 1800000001, true},
        {CERT_KIND_TENANT, VERDICT_REASON_EXPIRED, "acme", "0c", 1700000000, false},
        {CERT_KIND_DEVICE, VERDICT_REASON_OK, "acme", "0d", 1800000002, false},
    };
    char series[256], *text;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct verdict v = make_verdict(
            rows[i].reason == VERDICT_REASON_OK ? DECISION_REQUIRE_PASSWORD : DECISION_DENY,
            rows[i].reason, "tenant");
        v.kind = rows[i].kind;
        v.not_after_unix = rows[i].not_after;
        snprintf(v.serial_hex, sizeof(v.serial_hex), "%s", rows[i].serial);
        metrics_record_verdict(&v, rows[i].tenant);
        metrics_record_verdict(&v, rows[i].tenant); /* seen twice: one sample */
    }
    text = scrape();
    cr_expect_eq(value_of(text, "certval_tenant_certificate_expiry_timestamp_seconds{"
                                "tenant=\"acme\",serial=\"0a\"}"),
                 1800000000);
    cr_expect_eq(value_of(text, "certval_tenant_certificate_expiry_timestamp_seconds{"
                                "tenant=\"quote\\\"co\",serial=\"0b\"}"),
                 1800000001);
    for (size_t i = 2; i < sizeof(rows) / sizeof(rows[0]); i++) {
        snprintf(series, sizeof(series), "serial=\"%s\"", rows[i].serial);
        cr_expect_null(strstr(text, series), "row %zu shown", i);
    }
    free(text);
}

Test(metrics, label_values_are_escaped)
{
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"plain", "plain"},
        {"a\"b", "a\\\"b"},
        {"back\\slash", "back\\\\slash"},
        {"new\nline", "new\\nline"},
        {"", ""},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct mbuf b = {.cap = 1 << 20};

        mbuf_label(&b, rows[i].in);
        mbuf_printf(&b, "%s", "");
        cr_expect_str_eq(b.data, rows[i].out, "row %zu", i);
        free(b.data);
    }
}

Test(metrics, buffer_stops_at_its_cap)
{
    struct mbuf b = {.cap = 16384};
    char chunk[10001];

    memset(chunk, 'x', sizeof(chunk) - 1);
    chunk[sizeof(chunk) - 1] = '\0';
    mbuf_printf(&b, "%s", chunk);
    cr_assert(!b.overflow);
    cr_assert_eq(b.len, 10000);
    mbuf_printf(&b, "%s", chunk); /* 20000 bytes do not fit in 16384 */
    cr_assert(b.overflow);
    cr_assert_eq(b.len, 10000);
    mbuf_printf(&b, "y"); /* nothing more after an overflow */
    cr_assert_eq(b.len, 10000);
    free(b.data);
}

static void collector(struct mbuf *out, void *arg)
{
    mbuf_printf(out, "test_collected_gauge %d\n", *(const int *)arg);
}

Test(metrics, durable_gauge_and_collectors_are_in_the_scrape)
{
    static const int value = 7;
    char *text;

    metrics_add_collector(collector, (void *)&value);
    text = scrape();
    cr_expect_eq(value_of(text, "certval_deny_list_durable"), 1);
    cr_expect_eq(value_of(text, "test_collected_gauge"), 7);
    free(text);
    metrics_set_deny_list_durable(false);
    text = scrape();
    cr_expect_eq(value_of(text, "certval_deny_list_durable"), 0);
    free(text);
}

/* http_request sends one request to 127.0.0.1:|port| and returns the response
 * (caller frees). */
static char *http_request(int port, const char *method, const char *path)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[256], *resp = calloc(1, 1 << 20);
    size_t len = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_not_null(resp);
    cr_assert_geq(fd, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    while (len + 1 < (1 << 20) && (n = read(fd, resp + len, (1 << 20) - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    return resp;
}

Test(metrics, http_endpoint_serves_the_exposition_on_get_only)
{
    static const struct {
        const char *method, *path, *status, *body;
    } rows[] = {
        {"GET", "/metrics", "200", "certval_deny_list_durable 1"},
        {"POST", "/metrics", "405", "only GET"},
        {"GET", "/other", "404", "not found"},
    };
    char err[256];
    int port = 0;

    cr_assert_lt(metrics_start("not-an-address", &port, err, sizeof(err)), 0);
    cr_expect_neq(strstr(err, "not IPv4:PORT"), NULL, "%s", err);
    cr_assert_eq(metrics_start("127.0.0.1:0", &port, err, sizeof(err)), 0, "%s", err);
    cr_assert_gt(port, 0);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char *resp = http_request(port, rows[i].method, rows[i].path);

        /* "HTTP/1.x NNN ..." */
        cr_expect(strncmp(resp, "HTTP/1.", 7) == 0 && strncmp(resp + 9, rows[i].status, 3) == 0,
                  "row %zu: %.40s", i, resp);
        cr_expect_neq(strstr(resp, rows[i].body), NULL, "row %zu: no \"%s\"", i, rows[i].body);
        free(resp);
    }
    metrics_stop();
    metrics_stop(); /* idempotent */
}
