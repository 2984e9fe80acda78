#include "metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "audit.h"
#include "crl_cache.h"
#include "deny_list.h"
#include "validator.h"
#include "verdict.h"
#include "verdict_cache.h"

#define N_DECISIONS 4
#define N_REASONS (VERDICT_REASON_MAX + 1)
/* Profiles are interned into a fixed table; names past it count as "other". */
#define MAX_PROFILES 31
#define PROFILE_OTHER MAX_PROFILES
#define N_PROFILE_SLOTS (MAX_PROFILES + 1)
#define N_GRPC_CODES 17
#define TENANT_CERTS_PER_SHARD 1024
/* A tenant certificate not seen for this long drops out of the gauge. */
#define TENANT_CERT_TTL_SECONDS 86400
#define SCRAPE_CAP (8u << 20)

/* Latency buckets, seconds (upper bounds). */
static const double latency_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                        0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                        0.5,     1,      2.5,     5};
#define N_LAT (sizeof(latency_bounds) / sizeof(latency_bounds[0]))
static const double size_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
#define N_SIZE (sizeof(size_bounds) / sizeof(size_bounds[0]))

struct tenant_cert {
    char tenant[64];
    char serial[VERDICT_SERIAL_HEX_MAX];
    int64_t not_after;
    int64_t last_seen;
};

/* One per recording thread; only its owner writes the counters. */
struct shard {
    struct shard *next;
    _Atomic uint64_t verdicts[N_DECISIONS][N_REASONS][N_PROFILE_SLOTS];
    _Atomic uint64_t lat_buckets[2][N_LAT + 1];
    _Atomic uint64_t lat_sum_ns[2];
    _Atomic uint64_t lat_count[2];
    _Atomic uint64_t size_buckets[N_SIZE + 1];
    _Atomic uint64_t size_sum;
    _Atomic uint64_t rpc_errors[N_GRPC_CODES];
    _Atomic uint64_t frontend_decisions[METRICS_FRONTEND_COUNT][N_DECISIONS];
    /* The tenant table is touched by its owner and by scrapes: |lock| is
     * uncontended except while a scrape reads it. */
    pthread_mutex_t lock;
    struct tenant_cert tenants[TENANT_CERTS_PER_SHARD];
    size_t n_tenants;
};

static pthread_mutex_t shards_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shard *shards;
static __thread struct shard *my_shard;

static pthread_mutex_t profiles_lock = PTHREAD_MUTEX_INITIALIZER;
static char *_Atomic profile_names[MAX_PROFILES];

static struct {
    metrics_collector_fn fn;
    void *arg;
} collectors[16];
static size_t n_collectors;

static struct MHD_Daemon *daemon_;

static struct shard *shard_get(void)
{
    struct shard *s = my_shard;

    if (s != NULL)
        return s;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_lock(&shards_lock);
    s->next = shards;
    shards = s;
    pthread_mutex_unlock(&shards_lock);
    my_shard = s;
    return s;
}

/* Returns the slot of |name|, interning it on first sight. Lock-free for
 * names already known (published with release, read with acquire). */
static unsigned profile_slot(const char *name)
{
    unsigned i;

    for (i = 0; i < MAX_PROFILES; i++) {
        char *p = atomic_load_explicit(&profile_names[i], memory_order_acquire);

        if (p == NULL)
            break;
        if (strcmp(p, name) == 0)
            return i;
    }
    pthread_mutex_lock(&profiles_lock);
    for (i = 0; i < MAX_PROFILES; i++) {
        char *p = atomic_load_explicit(&profile_names[i], memory_order_acquire);

        if (p == NULL) {
            p = strdup(name);
            if (p != NULL)
                atomic_store_explicit(&profile_names[i], p, memory_order_release);
            break;
        }
        if (strcmp(p, name) == 0)
            break;
    }
    pthread_mutex_unlock(&profiles_lock);
    return i < MAX_PROFILES ? i : PROFILE_OTHER;
}

static void inc(_Atomic uint64_t *c, uint64_t by)
{
    /* Single writer per shard: a relaxed load+store would do, fetch_add keeps
     * it obviously right and costs the same uncontended. */
    atomic_fetch_add_explicit(c, by, memory_order_relaxed);
}

static void remember_tenant_cert(struct shard *s, const struct verdict *v, const char *tenant)
{
    int64_t now = (int64_t)time(NULL);
    size_t i, oldest = 0;

    pthread_mutex_lock(&s->lock);
    for (i = 0; i < s->n_tenants; i++) {
        struct tenant_cert *t = &s->tenants[i];

        if (strcmp(t->serial, v->serial_hex) == 0 && strcmp(t->tenant, tenant) == 0) {
            t->last_seen = now;
            goto out;
        }
        if (t->last_seen < s->tenants[oldest].last_seen)
            oldest = i;
    }
    if (s->n_tenants < TENANT_CERTS_PER_SHARD)
        i = s->n_tenants++;
    else
        i = oldest;
    snprintf(s->tenants[i].tenant, sizeof(s->tenants[i].tenant), "%s", tenant);
    snprintf(s->tenants[i].serial, sizeof(s->tenants[i].serial), "%s", v->serial_hex);
    s->tenants[i].not_after = v->not_after_unix;
    s->tenants[i].last_seen = now;
out:
    pthread_mutex_unlock(&s->lock);
}

void metrics_record_verdict(const struct verdict *v, const char *tenant)
{
    struct shard *s = shard_get();
    unsigned d = (unsigned)v->decision < N_DECISIONS ? (unsigned)v->decision : 0;
    unsigned r = (unsigned)v->reason < N_REASONS ? (unsigned)v->reason : 0;
    unsigned p = v->profile[0] != '\0' ? profile_slot(v->profile) : PROFILE_OTHER;

    if (s == NULL)
        return;
    inc(&s->verdicts[d][r][p], 1);
    if (v->kind == CERT_KIND_TENANT && v->reason == VERDICT_REASON_OK && tenant != NULL)
        remember_tenant_cert(s, v, tenant);
}

void metrics_record_batch(size_t n_chains, uint64_t latency_ns, bool streaming)
{
    struct shard *s = shard_get();
    double secs = (double)latency_ns / 1e9;
    unsigned k = streaming ? 1 : 0;
    size_t b;

    if (s == NULL)
        return;
    for (b = 0; b < N_LAT && secs > latency_bounds[b]; b++)
        ;
    inc(&s->lat_buckets[k][b], 1);
    inc(&s->lat_sum_ns[k], latency_ns);
    inc(&s->lat_count[k], 1);
    for (b = 0; b < N_SIZE && (double)n_chains > size_bounds[b]; b++)
        ;
    inc(&s->size_buckets[b], 1);
    inc(&s->size_sum, n_chains);
}

void metrics_record_frontend(enum metrics_frontend fe, enum verdict_decision d)
{
    struct shard *s = shard_get();

    if (s != NULL && (unsigned)fe < METRICS_FRONTEND_COUNT && (unsigned)d < N_DECISIONS)
        inc(&s->frontend_decisions[fe][d], 1);
}

void metrics_record_rpc_error(int code)
{
    struct shard *s = shard_get();

    if (s != NULL && code > 0 && code < N_GRPC_CODES)
        inc(&s->rpc_errors[code], 1);
}

static _Atomic bool deny_list_durable = true;

void metrics_set_deny_list_durable(bool durable)
{
    atomic_store(&deny_list_durable, durable);
}

void metrics_add_collector(metrics_collector_fn fn, void *arg)
{
    if (n_collectors < sizeof(collectors) / sizeof(collectors[0])) {
        collectors[n_collectors].fn = fn;
        collectors[n_collectors].arg = arg;
        n_collectors++;
    }
}

/* ---- exposition ---- */

void mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->overflow)
        return;
    for (;;) {
        size_t room = b->size - b->len;

        va_start(ap, fmt);
        n = vsnprintf(b->data != NULL ? b->data + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->overflow = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t want = b->size ? b->size * 2 : 16384;
        while (want < b->len + (size_t)n + 1)
            want *= 2;
        if (want > b->cap) {
            b->overflow = true;
            return;
        }
        char *p = realloc(b->data, want);
        if (p == NULL) {
            b->overflow = true;
            return;
        }
        b->data = p;
        b->size = want;
    }
}

void mbuf_label(struct mbuf *b, const char *s)
{
    char esc[512];
    size_t n = 0;

    for (; *s != '\0' && n + 2 < sizeof(esc); s++) {
        if (*s == '\\' || *s == '"') {
            esc[n++] = '\\';
            esc[n++] = *s;
        } else if (*s == '\n') {
            esc[n++] = '\\';
            esc[n++] = 'n';
        } else {
            esc[n++] = *s;
        }
    }
    esc[n] = '\0';
    mbuf_printf(b, "%s", esc);
}

static const char *profile_label(unsigned p)
{
    char *name = p < MAX_PROFILES ? atomic_load(&profile_names[p]) : NULL;

    return name != NULL ? name : "none";
}

static void render_verdicts(struct mbuf *b)
{
    mbuf_printf(b, "# HELP certval_verdicts_total Verdicts by decision, reason and profile.\n"
                   "# TYPE certval_verdicts_total counter\n");
    for (unsigned d = 1; d < N_DECISIONS; d++) {
        for (unsigned r = 0; r < N_REASONS; r++) {
            for (unsigned p = 0; p < N_PROFILE_SLOTS; p++) {
                uint64_t sum = 0;

                for (struct shard *s = shards; s != NULL; s = s->next)
                    sum += atomic_load_explicit(&s->verdicts[d][r][p], memory_order_relaxed);
                if (sum == 0)
                    continue;
                mbuf_printf(b, "certval_verdicts_total{decision=\"%s\",reason=\"%s\",profile=\"",
                            verdict_decision_name((enum verdict_decision)d),
                            verdict_reason_name((enum verdict_reason)r));
                mbuf_label(b, profile_label(p));
                mbuf_printf(b, "\"} %llu\n", (unsigned long long)sum);
            }
        }
    }
}

static void render_histogram(struct mbuf *b, const char *name, const char *labels,
                             const double *bounds, size_t n, const uint64_t *buckets,
                             double sum, uint64_t count)
{
    uint64_t cum = 0;

    for (size_t i = 0; i < n; i++) {
        cum += buckets[i];
        mbuf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, labels[0] ? "," : "",
                    bounds[i], (unsigned long long)cum);
    }
    cum += buckets[n];
    mbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, labels[0] ? "," : "",
                (unsigned long long)cum);
    mbuf_printf(b, "%s_sum{%s} %.9f\n%s_count{%s} %llu\n", name, labels, sum, name, labels,
                (unsigned long long)count);
}

static void render_batches(struct mbuf *b)
{
    static const char *const kinds[2] = {"method=\"Validate\"", "method=\"ValidateStream\""};
    uint64_t sizes[N_SIZE + 1] = {0}, size_sum = 0, size_count = 0;

    mbuf_printf(b, "# HELP certval_batch_latency_seconds Time from a batch's receipt to its "
                   "answer being sent.\n# TYPE certval_batch_latency_seconds histogram\n");
    for (unsigned k = 0; k < 2; k++) {
        uint64_t lat[N_LAT + 1] = {0}, ns = 0, count = 0;

        for (struct shard *s = shards; s != NULL; s = s->next) {
            for (size_t i = 0; i <= N_LAT; i++)
                lat[i] += atomic_load(&s->lat_buckets[k][i]);
            ns += atomic_load(&s->lat_sum_ns[k]);
            count += atomic_load(&s->lat_count[k]);
        }
        render_histogram(b, "certval_batch_latency_seconds", kinds[k], latency_bounds, N_LAT,
                         lat, (double)ns / 1e9, count);
    }
    for (struct shard *s = shards; s != NULL; s = s->next) {
        for (size_t i = 0; i <= N_SIZE; i++) {
            sizes[i] += atomic_load(&s->size_buckets[i]);
            size_count += atomic_load(&s->size_buckets[i]);
        }
        size_sum += atomic_load(&s->size_sum);
    }
    mbuf_printf(b, "# HELP certval_batch_chains Chains per batch.\n"
                   "# TYPE certval_batch_chains histogram\n");
    render_histogram(b, "certval_batch_chains", "", size_bounds, N_SIZE, sizes, (double)size_sum,
                     size_count);
}

static void render_errors(struct mbuf *b)
{
    mbuf_printf(b, "# HELP certval_rpc_errors_total Calls answered with a non-OK gRPC status.\n"
                   "# TYPE certval_rpc_errors_total counter\n");
    for (int c = 1; c < N_GRPC_CODES; c++) {
        uint64_t sum = 0;

        for (struct shard *s = shards; s != NULL; s = s->next)
            sum += atomic_load(&s->rpc_errors[c]);
        if (sum > 0)
            mbuf_printf(b, "certval_rpc_errors_total{code=\"%d\"} %llu\n", c,
                        (unsigned long long)sum);
    }
}

static void render_frontends(struct mbuf *b)
{
    static const char *const names[METRICS_FRONTEND_COUNT] = {"envoy", "nginx", "haproxy"};

    mbuf_printf(b, "# HELP certval_frontend_decisions_total Decisions answered to each front end "
                   "(Envoy ext_authz, nginx auth_request, HAProxy SPOE).\n"
                   "# TYPE certval_frontend_decisions_total counter\n");
    for (int f = 0; f < METRICS_FRONTEND_COUNT; f++)
        for (int d = 1; d < N_DECISIONS; d++) {
            uint64_t sum = 0;

            for (struct shard *s = shards; s != NULL; s = s->next)
                sum += atomic_load(&s->frontend_decisions[f][d]);
            if (sum > 0)
                mbuf_printf(
                    b, "certval_frontend_decisions_total{frontend=\"%s\",decision=\"%s\"} %llu\n",
                    names[f], verdict_decision_name((enum verdict_decision)d),
                    (unsigned long long)sum);
        }
}

static void render_tenant_expiry(struct mbuf *b)
{
    int64_t now = (int64_t)time(NULL);

    mbuf_printf(b, "# HELP certval_tenant_certificate_expiry_timestamp_seconds notAfter of each "
                   "tenant certificate seen in traffic in the last 24 h.\n"
                   "# TYPE certval_tenant_certificate_expiry_timestamp_seconds gauge\n");
    for (struct shard *s = shards; s != NULL; s = s->next) {
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n_tenants; i++) {
            const struct tenant_cert *t = &s->tenants[i];

            if (now - t->last_seen > TENANT_CERT_TTL_SECONDS)
                continue;
            mbuf_printf(b, "certval_tenant_certificate_expiry_timestamp_seconds{tenant=\"");
            mbuf_label(b, t->tenant);
            mbuf_printf(b, "\",serial=\"%s\"} %lld\n", t->serial, (long long)t->not_after);
        }
        pthread_mutex_unlock(&s->lock);
    }
}

void metrics_render(struct mbuf *out)
{
    memset(out, 0, sizeof(*out));
    out->cap = SCRAPE_CAP;
    pthread_mutex_lock(&shards_lock);
    render_verdicts(out);
    render_batches(out);
    render_errors(out);
    render_frontends(out);
    render_tenant_expiry(out);
    pthread_mutex_unlock(&shards_lock);
    mbuf_printf(out,
                "# HELP certval_deny_list_durable 1 when deny-list changes are kept on "
                "stable storage, 0 when they cannot be (see the admin status).\n"
                "# TYPE certval_deny_list_durable gauge\ncertval_deny_list_durable %d\n",
                atomic_load(&deny_list_durable) ? 1 : 0);
    for (size_t i = 0; i < n_collectors; i++)
        collectors[i].fn(out, collectors[i].arg);
}

/* ---- HTTP ---- */

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    struct MHD_Response *resp;
    struct mbuf b;
    enum MHD_Result rc;
    unsigned status = MHD_HTTP_OK;

    (void)cls;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    if (strcmp(method, "GET") != 0) {
        static const char msg[] = "only GET\n";

        resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
                                               MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (strcmp(url, "/metrics") == 0) {
        metrics_render(&b);
        resp = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
    } else {
        static const char msg[] = "not found: try /metrics\n";

        resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
                                               MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_NOT_FOUND;
    }
    if (resp == NULL)
        return MHD_NO;
    rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, char *err,
                        size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    char *end;
    unsigned long port;
    size_t hl;

    if (colon == NULL)
        goto bad;
    hl = (size_t)(colon - listen);
    if (hl >= sizeof(host))
        goto bad;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port > 65535)
        goto bad;
    memset(ss, 0, sizeof(*ss));
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

        host[hl - 1] = '\0';
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
            goto bad;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;

        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            goto bad;
    }
    return 0;
bad:
    snprintf(err, errlen, "metrics listen address '%s' is not IPv4:PORT or [IPv6]:PORT", listen);
    return -1;
}

int metrics_start(const char *listen, int *out_port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;

    *out_port = 0;
    if (parse_listen(listen, &ss, err, errlen) < 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    daemon_ = MHD_start_daemon(flags, 0, NULL, NULL, answer, NULL, MHD_OPTION_SOCK_ADDR, &ss,
                               MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT,
                               10u, MHD_OPTION_END);
    if (daemon_ == NULL) {
        snprintf(err, errlen, "cannot serve metrics on %s", listen);
        return -1;
    }
    info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    if (info != NULL)
        *out_port = info->port;
    return 0;
}

void metrics_stop(void)
{
    if (daemon_ != NULL)
        MHD_stop_daemon(daemon_);
    daemon_ = NULL;
}

/* ---- collectors of other modules' gauges ---- */

struct crl_render {
    struct mbuf *b;
    const char *family;
    int what;
};

static void crl_metric_cb(const struct crl_issuer_status *st, void *arg)
{
    struct crl_render *r = arg;
    long long v = 0;

    switch (r->what) {
    case 0: v = st->this_update; break;
    case 1: v = st->next_update; break;
    case 2: v = (long long)st->entries; break;
    case 3: v = (long long)st->crl_number_low; break;
    default: v = st->unusable ? 1 : 0; break;
    }
    mbuf_printf(r->b, "%s{issuer=\"", r->family);
    mbuf_label(r->b, st->issuer);
    mbuf_printf(r->b, "\"} %lld\n", v);
}

void metrics_collect_crls(struct mbuf *b, void *arg)
{
    static const struct {
        const char *name, *help;
    } fam[] = {
        {"certval_crl_this_update_timestamp_seconds", "thisUpdate of the issuer's current CRL."},
        {"certval_crl_next_update_timestamp_seconds", "nextUpdate of the issuer's current CRL (0: none)."},
        {"certval_crl_entries", "Revoked serials in the issuer's current CRL."},
        {"certval_crl_number", "cRLNumber (low 64 bits) of the issuer's current CRL."},
        {"certval_crl_unusable", "1 when the issuer's CRL cannot decide (unknown critical extension, ...)."},
    };
    const struct metrics_crl_source *src = arg;

    for (int i = 0; i < 5; i++) {
        struct crl_render r = {.b = b, .family = fam[i].name, .what = i};

        mbuf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", fam[i].name, fam[i].help,
                    fam[i].name);
        crl_cache_foreach(src->crls, crl_metric_cb, &r);
    }
    mbuf_printf(b, "# HELP certval_crl_refused_total CRLs refused (bad signature, older, ...).\n"
                   "# TYPE certval_crl_refused_total counter\ncertval_crl_refused_total %llu\n",
                (unsigned long long)src->refused_total());
}

void metrics_collect_revocation(struct mbuf *b, void *arg)
{
    const struct revocation_sources *rev = arg;
    struct verdict_cache_stats st;

    mbuf_printf(b, "# HELP certval_deny_list_entries Emergency deny entries in force.\n"
                   "# TYPE certval_deny_list_entries gauge\ncertval_deny_list_entries %zu\n",
                deny_list_count(rev->deny));
    if (rev->cache == NULL)
        return;
    verdict_cache_stats(rev->cache, &st);
    mbuf_printf(b, "# HELP certval_verdict_cache_hits_total Chains answered from the cache.\n"
                   "# TYPE certval_verdict_cache_hits_total counter\n"
                   "certval_verdict_cache_hits_total %llu\n"
                   "# HELP certval_verdict_cache_misses_total Chains validated in full.\n"
                   "# TYPE certval_verdict_cache_misses_total counter\n"
                   "certval_verdict_cache_misses_total %llu\n"
                   "# HELP certval_verdict_cache_evictions_total Entries evicted by the bounds.\n"
                   "# TYPE certval_verdict_cache_evictions_total counter\n"
                   "certval_verdict_cache_evictions_total %llu\n"
                   "# HELP certval_verdict_cache_entries Entries held.\n"
                   "# TYPE certval_verdict_cache_entries gauge\ncertval_verdict_cache_entries %zu\n"
                   "# HELP certval_verdict_cache_bytes Bytes held.\n"
                   "# TYPE certval_verdict_cache_bytes gauge\ncertval_verdict_cache_bytes %zu\n",
                (unsigned long long)st.hits, (unsigned long long)st.misses,
                (unsigned long long)st.evictions, st.entries, st.bytes);
}

void metrics_collect_audit(struct mbuf *b, void *arg)
{
    (void)arg;
    mbuf_printf(b, "# HELP certval_audit_suppressed_total Audit lines dropped by the rate "
                   "limit.\n# TYPE certval_audit_suppressed_total counter\n"
                   "certval_audit_suppressed_total %llu\n",
                (unsigned long long)audit_suppressed_total());
}
