/* certvald: the certval gRPC server.
 *
 *   certvald --config FILE [--listen HOST:PORT]... [--port-file FILE]
 *   certvald --check-config FILE
 *   certvald --demo [--demo-dir DIR] [--listen HOST:PORT]
 *
 * SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the configuration. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <openssl/crypto.h>
#include <openssl/is_boringssl.h> /* compile-time guard: BoringSSL headers only */

#include "audit.h"
#include "config.h"
#include "frontend.h"
#include "crl_cache.h"
#include "crl_fetch.h"
#include "deny_list.h"
#include "fleet.h" /* fleet (issue 11) */
#include "log.h"
#include "metrics.h"
#include "pki_gen.h"
#include "reload.h"
#include "server_internal.h"
#include "verdict_cache.h"
#include "watch.h"

#define MAX_LISTEN_OVERRIDES 8

struct options {
    const char *config;
    const char *port_file;
    const char *metrics_port_file;
    const char *admin_port_file;
    const char *demo_dir;
    char *listen[MAX_LISTEN_OVERRIDES];
    size_t n_listen;
    bool demo;
    bool check_only;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: certvald --config FILE [--listen HOST:PORT]... [--port-file FILE]\n"
               "                [--metrics-port-file FILE] [--admin-port-file FILE]\n"
               "       certvald --check-config FILE\n"
               "       certvald --demo [--demo-dir DIR] [--listen HOST:PORT]\n"
               "See docs/configuration.md and docs/operations.md.\n");
}

static int parse_args(struct options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", required_argument, NULL, 'C'},
        {"listen", required_argument, NULL, 'l'},
        {"port-file", required_argument, NULL, 'p'},
        {"metrics-port-file", required_argument, NULL, 'm'},
        {"admin-port-file", required_argument, NULL, 'a'},
        {"demo", no_argument, NULL, 'd'},
        {"demo-dir", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    while ((c = getopt_long(argc, argv, "c:C:l:p:m:a:dD:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'C':
            o->config = optarg;
            o->check_only = true;
            break;
        case 'l':
            if (o->n_listen == MAX_LISTEN_OVERRIDES) {
                fprintf(stderr, "certvald: at most %d --listen\n", MAX_LISTEN_OVERRIDES);
                return -1;
            }
            o->listen[o->n_listen++] = optarg;
            break;
        case 'p':
            o->port_file = optarg;
            break;
        case 'm':
            o->metrics_port_file = optarg;
            break;
        case 'a':
            o->admin_port_file = optarg;
            break;
        case 'd':
            o->demo = true;
            break;
        case 'D':
            o->demo_dir = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind != argc || (o->demo == (o->config != NULL))) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* PLATFORM.md: BoringSSL and OpenSSL 3 export the same symbols; with both
 * loaded, calls bind to whichever comes first. Refuse to run unless the
 * crypto in use is BoringSSL and OpenSSL's libraries are not mapped. */
static int check_crypto(void)
{
    char line[4096];
    FILE *maps;
    int bad = 0;

    if (strstr(OpenSSL_version(OPENSSL_VERSION), "BoringSSL") == NULL) {
        log_error("crypto library is '%s', not BoringSSL: refusing to run",
                  OpenSSL_version(OPENSSL_VERSION));
        return -1;
    }
    maps = fopen("/proc/self/maps", "r");
    if (maps == NULL)
        return 0;
    while (fgets(line, sizeof(line), maps) != NULL) {
        if (strstr(line, "libcrypto.so.3") != NULL || strstr(line, "libssl.so.3") != NULL) {
            bad = 1;
            break;
        }
    }
    fclose(maps);
    if (bad) {
        log_error("OpenSSL 3 is loaded into certvald next to BoringSSL: refusing to run "
                  "(see PLATFORM notes in docs/architecture.md)");
        return -1;
    }
    return 0;
}

static unsigned ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n > 0 ? (unsigned)n : 1;
}

static int write_port_file(const char *path, int port)
{
    char tmp[PATH_MAX];
    FILE *f;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0)
        return -1;
    /* rename: a reader never sees a half-written file. */
    return rename(tmp, path);
}

static void self_dir(char *out, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", out, cap - 1);
    char *slash;

    if (n <= 0) {
        snprintf(out, cap, ".");
        return;
    }
    out[n] = '\0';
    slash = strrchr(out, '/');
    if (slash != NULL)
        *slash = '\0';
}

static void print_demo_commands(const char *dir, const char *addr)
{
    char bin[PATH_MAX], ctl[PATH_MAX + 16];
    static const struct {
        const char *file, *tenant, *device, *expect;
    } demo[] = {
        {"tenant-acme-chain.pem", "acme", "", "REQUIRE_PASSWORD (tenant certificate)"},
        {"tenant-acme-reissued-chain.pem", "acme", "", "REQUIRE_PASSWORD (reissued, both live)"},
        {"device-acme-dev1-chain.pem", "acme", "dev-001", "ALLOW (device certificate)"},
        {"device-globex-dev2-chain.pem", "globex", "dev-002", "REQUIRE_PASSWORD (globex requires it)"},
        {"device-acme-dev1-chain.pem", "acme", "dev-999", "DENY DEVICE_MISMATCH"},
        {"tenant-acme-chain.pem", "globex", "", "DENY WRONG_TENANT"},
        {"device-acme-revoked-chain.pem", "acme", "dev-003", "DENY REVOKED"},
        {"tenant-acme-expired-chain.pem", "acme", "", "DENY EXPIRED"},
        {"rogue-client-chain.pem", "acme", "", "DENY UNTRUSTED_ISSUER"},
    };

    self_dir(bin, sizeof(bin));
    snprintf(ctl, sizeof(ctl), "%s/certvalctl", bin);
    printf("\ncertval demo is serving on %s with the demo PKI in %s\n"
           "Try these in another terminal (expected verdict after #):\n\n",
           addr, dir);
    for (size_t i = 0; i < sizeof(demo) / sizeof(demo[0]); i++) {
        printf("  %s validate --server %s --tenant %s%s%s %s/%s   # %s\n", ctl, addr,
               demo[i].tenant, demo[i].device[0] ? " --device " : "", demo[i].device, dir,
               demo[i].file, demo[i].expect);
    }
    printf("  %s health --server %s   # SERVING\n", ctl, addr);
    printf("\nCtrl-C drains and stops the server. See docs/demo.md.\n\n");
    fflush(stdout);
}

static int prepare_demo(struct options *o, char *cfg_path, size_t cap)
{
    char err[512], dir[PATH_MAX];
    const char *listen = o->n_listen > 0 ? o->listen[0] : "127.0.0.1:50051";

    snprintf(dir, sizeof(dir), "%s", o->demo_dir != NULL ? o->demo_dir : "certval-demo");
    if (demo_pki_generate(dir, (int64_t)time(NULL), listen, err, sizeof(err)) < 0) {
        log_error("demo PKI: %s", err);
        return -1;
    }
    if (realpath(dir, cfg_path) == NULL || strlen(cfg_path) + 14 >= cap)
        return -1;
    strncat(cfg_path, "/certval.yaml", cap - strlen(cfg_path) - 1);
    return 0;
}

static void apply_overrides(struct certval_config *cfg, const struct options *o)
{
    if (o->n_listen == 0)
        return;
    /* The overrides replace the file's TCP listeners; config_free frees
     * cfg->tcp's strings, so they are duplicated here. */
    for (size_t i = 0; i < cfg->n_tcp; i++)
        free(cfg->tcp[i]);
    free(cfg->tcp);
    cfg->tcp = calloc(o->n_listen, sizeof(char *));
    cfg->n_tcp = 0;
    if (cfg->tcp == NULL)
        return;
    for (size_t i = 0; i < o->n_listen; i++) {
        cfg->tcp[i] = strdup(o->listen[i]);
        if (cfg->tcp[i] != NULL)
            cfg->n_tcp++;
    }
}

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

/* Per-issuer CRL gauges, read from the CRL cache at scrape time. */
static void collect_crls(struct mbuf *b, void *arg)
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
    struct crl_cache *crls = arg;

    for (int i = 0; i < 5; i++) {
        struct crl_render r = {.b = b, .family = fam[i].name, .what = i};

        mbuf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", fam[i].name, fam[i].help,
                    fam[i].name);
        crl_cache_foreach(crls, crl_metric_cb, &r);
    }
    mbuf_printf(b, "# HELP certval_crl_refused_total CRLs refused (bad signature, older, ...).\n"
                   "# TYPE certval_crl_refused_total counter\ncertval_crl_refused_total %llu\n",
                (unsigned long long)crl_refused_total());
}

/* The deny list kept in STATE/deny-list.txt by the admin API. A missing
 * file is an empty list; a corrupt one stops the start: serving without
 * the operator's emergency entries would silently allow what they deny. */
static int load_deny_list(struct deny_list *d, const struct certval_config *cfg)
{
    char path[4200], err[600];

    if (cfg->state_dir == NULL)
        return 0;
    snprintf(path, sizeof(path), "%s/deny-list.txt", cfg->state_dir);
    if (deny_list_load(d, path, (int64_t)time(NULL), err, sizeof(err)) < 0) {
        log_error("emergency deny list: %s", err);
        return -1;
    }
    if (deny_list_count(d) > 0)
        log_warn("emergency deny list: %zu entries in force", deny_list_count(d));
    return 0;
}

static void collect_vcache(struct mbuf *b, void *arg)
{
    struct server *srv = arg;
    struct verdict_cache_stats st;

    mbuf_printf(b, "# HELP certval_deny_list_entries Emergency deny entries in force.\n"
                   "# TYPE certval_deny_list_entries gauge\ncertval_deny_list_entries %zu\n",
                deny_list_count(srv->deny));
    if (srv->vcache == NULL)
        return;
    verdict_cache_stats(srv->vcache, &st);
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

/* Gauges read at scrape time. */
static void collect_server(struct mbuf *b, void *arg)
{
    struct server *srv = arg;
    struct snapshot *snap = snapshot_acquire();

    mbuf_printf(b, "# HELP certval_up_serving 1 while health is SERVING.\n"
                   "# TYPE certval_up_serving gauge\ncertval_up_serving %d\n",
                health_is_serving() ? 1 : 0);
    mbuf_printf(b, "# HELP certval_calls_in_flight Calls accepted and not finished.\n"
                   "# TYPE certval_calls_in_flight gauge\ncertval_calls_in_flight %ld\n",
                atomic_load(&srv->live_calls));
    if (srv->pool != NULL)
        mbuf_printf(b, "# HELP certval_worker_queue_depth Work items queued or running on "
                       "the workers.\n# TYPE certval_worker_queue_depth gauge\n"
                       "certval_worker_queue_depth %llu\n",
                    (unsigned long long)worker_pool_queued(srv->pool));
    mbuf_printf(b, "# HELP certval_audit_suppressed_total Audit lines dropped by the rate "
                   "limit.\n# TYPE certval_audit_suppressed_total counter\n"
                   "certval_audit_suppressed_total %llu\n",
                (unsigned long long)audit_suppressed_total());
    if (snap == NULL)
        return;
    mbuf_printf(b, "# HELP certval_config_version Generation of the configuration in use.\n"
                   "# TYPE certval_config_version gauge\ncertval_config_version %llu\n",
                (unsigned long long)snap->version);
    mbuf_printf(b, "# HELP certval_trust_anchor_expiry_timestamp_seconds notAfter of each "
                   "configured trust anchor.\n"
                   "# TYPE certval_trust_anchor_expiry_timestamp_seconds gauge\n");
    for (size_t i = 0; i < snap->n_anchors; i++) {
        mbuf_printf(b, "certval_trust_anchor_expiry_timestamp_seconds{subject=\"");
        mbuf_label(b, snap->anchors[i].subject);
        mbuf_printf(b, "\"} %lld\n", (long long)snap->anchors[i].not_after);
    }
    snapshot_release(snap);
}

/* ---- CRL fetch and start-up readiness (crl_fetch.h, issue 4) ----
 * Health turns SERVING once a configuration is in AND every profile that
 * checks revocation has a CRL of each of its issuers (revocation_ready).
 * It is re-evaluated after every install and every accepted CRL (the
 * reload.h hook, from whichever thread), and latched: once SERVING, a CRL
 * going stale does not flip health (on_stale decides per verdict), and
 * once draining starts nothing turns it back on. */
static struct crl_fetch *fetcher;
static pthread_mutex_t ready_lock = PTHREAD_MUTEX_INITIALIZER;
static bool ready_latched;
static char ready_why[512];

static void readiness_update(struct crl_cache *crls)
{
    struct snapshot *snap;
    char why[512];

    pthread_mutex_lock(&ready_lock);
    snap = ready_latched ? NULL : snapshot_acquire();
    if (snap != NULL && revocation_ready(snap, crls, why, sizeof(why)) &&
        fleet_ready(&snap->cfg->fleet, why, sizeof(why))) { /* fleet (issue 11): after its first read */
        ready_latched = true;
        health_set_serving(true);
    } else if (snap != NULL && strcmp(why, ready_why) != 0) {
        /* Logged when the reason changes, not on every CRL. */
        snprintf(ready_why, sizeof(ready_why), "%s", why);
        log_warn("health stays NOT_SERVING until the required CRLs are in: %s", why);
    }
    pthread_mutex_unlock(&ready_lock);
    snapshot_release(snap);
}

/* fleet (issue 11): the fleet's first read (or its fall-back to the local
 * copy) re-evaluates readiness. */
static void on_fleet_ready(void *arg)
{
    readiness_update(arg);
}

/* readiness_freeze stops the evaluation (drain). */
static void readiness_freeze(void)
{
    pthread_mutex_lock(&ready_lock);
    ready_latched = true;
    pthread_mutex_unlock(&ready_lock);
}

static void on_crl_change(bool config_changed, void *arg)
{
    if (config_changed)
        crl_fetch_reconfigure(fetcher);
    readiness_update(arg);
}
/* ---- end CRL fetch and start-up readiness ---- */

/* Admission bounds (docs/configuration.md, `limits`): 0 in the file means
 * derived from the worker count. 512 queued chains are some 0.2-0.4 s of
 * cold validation per worker (a few ms hot), room for closed-loop clients
 * with big batches; calls with shorter deadlines are refused by the
 * deadline check of admission instead. The byte bound keeps the unpacked
 * requests of admitted calls well under the 256 MiB RSS target. */
#define DEFAULT_QUEUED_CHAINS_PER_WORKER 512
#define DEFAULT_INFLIGHT_BYTES_PER_WORKER (8u << 20)
#define DEFAULT_INFLIGHT_BYTES_MIN (16u << 20)
#define DEFAULT_INFLIGHT_BYTES_MAX (64u << 20)
static void resolve_limits(struct server_limits *l, const struct certval_config *cfg,
                           unsigned workers)
{
    uint64_t bytes = (uint64_t)DEFAULT_INFLIGHT_BYTES_PER_WORKER * workers;

    l->max_chains_per_batch = cfg->max_chains_per_batch;
    l->max_message_bytes = cfg->max_message_bytes;
    l->split_min_chains = cfg->split_min_chains;
    l->max_concurrent_streams = cfg->max_concurrent_streams;
    l->max_queue_delay_ms = cfg->max_queue_delay_ms;
    l->max_queued_chains_per_worker = cfg->max_queued_chains_per_worker
                                          ? cfg->max_queued_chains_per_worker
                                          : DEFAULT_QUEUED_CHAINS_PER_WORKER;
    /* Queued on the workers, plus as many being answered or sent. */
    l->max_inflight_chains = cfg->max_inflight_chains
                                 ? cfg->max_inflight_chains
                                 : 2 * workers * l->max_queued_chains_per_worker;
    if (bytes < DEFAULT_INFLIGHT_BYTES_MIN)
        bytes = DEFAULT_INFLIGHT_BYTES_MIN;
    if (bytes > DEFAULT_INFLIGHT_BYTES_MAX)
        bytes = DEFAULT_INFLIGHT_BYTES_MAX;
    l->max_inflight_request_bytes =
        cfg->max_inflight_request_bytes ? cfg->max_inflight_request_bytes : (uint32_t)bytes;
}

/* frontends (issue 12): starts the nginx and HAProxy listeners of the
 * installed configuration. */
static int start_frontends(void)
{
    struct snapshot *s = snapshot_acquire();
    char err[256];
    int rc;

    if (s == NULL)
        return -1;
    rc = frontends_start(&s->cfg->frontends, err, sizeof(err));
    if (rc < 0)
        log_error("%s", err);
    snapshot_release(s);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o;
    struct certval_config *cfg = NULL;
    struct server srv, admin;
    char err[1024], cfg_path[PATH_MAX];
    int ports[MAX_LISTEN_OVERRIDES + 64];
    unsigned transports, workers, grace;
    sigset_t set;
    int rc = 1;

    if (parse_args(&o, argc, argv) < 0)
        return 2;
    /* CRL snapshots, pushed CRLs and responses are large, short-lived
     * allocations. glibc raises its mmap threshold after freeing one, after
     * which the next ones come from the heap and freed snapshots stay
     * resident; a fixed threshold keeps them mmapped and returned to the
     * system when an RCU grace period frees them. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    if (check_crypto() < 0)
        return 1;
    if (o.demo) {
        if (prepare_demo(&o, cfg_path, sizeof(cfg_path)) < 0)
            return 1;
        o.config = cfg_path;
    }
    if (config_load(&cfg, o.config, err, sizeof(err)) < 0) {
        fprintf(stderr, "certvald: %s\n", err);
        log_error("configuration refused: %s", err);
        return 1;
    }
    if (o.check_only) {
        printf("%s: OK\n", o.config);
        config_free(cfg);
        return 0;
    }
    apply_overrides(cfg, &o);
    if (cfg->n_tcp > 64) {
        log_error("at most 64 TCP listeners");
        config_free(cfg);
        return 1;
    }

    /* Signals are taken synchronously by the main thread only. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&srv, 0, sizeof(srv));
    memset(&admin, 0, sizeof(admin));
    transports = cfg->transport_threads ? cfg->transport_threads : (ncpus() + 3) / 4;
    workers = cfg->worker_threads ? cfg->worker_threads : ncpus();
    resolve_limits(&srv.limits, cfg, workers);
    grace = cfg->drain_grace_seconds;
    grpc_init();
    srv.crls = crl_cache_new();
    srv.deny = deny_list_new();
    if (srv.crls == NULL || srv.deny == NULL) {
        config_free(cfg);
        goto out;
    }
    crl_cache_reader_register();
    if (load_deny_list(srv.deny, cfg) < 0) {
        config_free(cfg);
        goto out;
    }
    if (cfg->verdict_cache_max_entries > 0) {
        srv.vcache = verdict_cache_new(cfg->verdict_cache_max_entries,
                                       (size_t)cfg->verdict_cache_max_megabytes << 20);
        if (srv.vcache == NULL) {
            log_error("cannot allocate the verdict cache");
            config_free(cfg);
            goto out;
        }
    }
    srv.rev.crls = srv.crls;
    srv.rev.deny = srv.deny;
    srv.rev.cache = srv.vcache;
    srv.rev.revocation_unknown = fleet_revocation_unknown; /* fleet (issue 11): fail closed */
    frontends_set_sources(&srv.rev); /* frontends: the same sources as Validate */
    /* crl_fetch: created now so its metrics collector can be registered. */
    fetcher = crl_fetch_new(srv.crls);
    if (fetcher == NULL) {
        config_free(cfg);
        goto out;
    }
    crl_set_change_hook(on_crl_change, srv.crls);

    if (server_start(&srv, cfg->tcp, cfg->n_tcp, cfg->unix_socket, transports, workers, ports,
                     err, sizeof(err)) < 0) {
        log_error("%s", err);
        fprintf(stderr, "certvald: %s\n", err);
        config_free(cfg);
        goto out;
    }
    for (size_t i = 0; i < cfg->n_tcp; i++)
        log_info("listening on %s (port %d)", cfg->tcp[i], ports[i]);
    if (cfg->unix_socket != NULL)
        log_info("listening on unix:%s", cfg->unix_socket);
    if (o.port_file != NULL && cfg->n_tcp > 0 && write_port_file(o.port_file, ports[0]) < 0)
        log_warn("cannot write port file %s", o.port_file);
    if (o.demo) {
        char addr[300];
        char *colon;

        snprintf(addr, sizeof(addr), "%s", cfg->tcp[0]);
        colon = strrchr(addr, ':');
        if (colon != NULL)
            snprintf(colon + 1, sizeof(addr) - (size_t)(colon + 1 - addr), "%d", ports[0]);
        char demo_dir[PATH_MAX];
        char *slash;

        snprintf(demo_dir, sizeof(demo_dir), "%s", o.config);
        slash = strrchr(demo_dir, '/');
        if (slash != NULL)
            *slash = '\0';
        print_demo_commands(demo_dir, addr);
    }
    audit_configure(cfg->audit_all_verdicts, cfg->audit_max_lines_per_second);
    if (cfg->metrics_listen != NULL) {
        int mport = 0;

        metrics_add_collector(collect_server, &srv);
        metrics_add_collector(collect_crls, srv.crls);
        metrics_add_collector(collect_vcache, &srv);
        metrics_add_collector(crl_fetch_collect, fetcher);
        metrics_add_collector(fleet_collect, NULL); /* fleet (issue 11) */
        if (metrics_start(cfg->metrics_listen, &mport, err, sizeof(err)) < 0) {
            log_error("%s", err);
            config_free(cfg);
            server_drain_and_stop(&srv, 0);
            goto out;
        }
        log_info("metrics on http://%s/metrics (port %d)", cfg->metrics_listen, mport);
        if (o.metrics_port_file != NULL && write_port_file(o.metrics_port_file, mport) < 0)
            log_warn("cannot write port file %s", o.metrics_port_file);
    }
    if (cfg->admin_listen != NULL) {
        int aport = 0;

        admin.role = ROLE_ADMIN;
        admin.crls = srv.crls;
        admin.deny = srv.deny;
        admin.limits = srv.limits;
        /* A pushed CRL is one message: a 1,000,000-entry CRL is about 40 MB. */
        admin.limits.max_message_bytes = cfg->admin_max_message_bytes;
        admin_configure(cfg->admin_token_file, cfg->state_dir, o.config);
        if (server_start(&admin, &cfg->admin_listen, 1, NULL, 1, 0, &aport, err,
                         sizeof(err)) < 0) {
            log_error("admin listener: %s", err);
            config_free(cfg);
            server_drain_and_stop(&admin, 0);
            server_drain_and_stop(&srv, 0);
            goto out;
        }
        log_info("admin API on %s (port %d)", cfg->admin_listen, aport);
        if (o.admin_port_file != NULL && write_port_file(o.admin_port_file, aport) < 0)
            log_warn("cannot write port file %s", o.admin_port_file);
    }
    /* Health turns SERVING only once a configuration with anchors is in. */
    if (snapshot_install(cfg, srv.crls, err, sizeof(err)) < 0) {
        log_error("configuration %s: %s", o.config, err);
        server_drain_and_stop(&srv, 0);
        goto out;
    }
    /* frontends (issue 12): snapshot_install took |cfg|; the listeners are
     * read from the published snapshot (start-up only, like listen). */
    if (start_frontends() < 0) {
        server_drain_and_stop(&srv, 0);
        server_drain_and_stop(&admin, 0);
        metrics_stop();
        goto out;
    }
    cfg = NULL;
    log_info("certvald ready: %u transport threads, %u workers; admission: %u queued chains or "
             "%u ms of work per worker, %u chains and %u request bytes in flight, %u streams per "
             "connection",
             transports, workers, srv.limits.max_queued_chains_per_worker,
             srv.limits.max_queue_delay_ms, srv.limits.max_inflight_chains,
             srv.limits.max_inflight_request_bytes, srv.limits.max_concurrent_streams);
    /* fleet (issue 11): follow etcd; SERVING waits for its first read. */
    {
        struct snapshot *fs = snapshot_acquire();
        int frc = fleet_start(&fs->cfg->fleet, srv.crls, srv.deny, fs->cfg->state_dir,
                              on_fleet_ready, srv.crls, err, sizeof(err));

        snapshot_release(fs);
        if (frc < 0) {
            log_error("fleet: %s", err);
            frontends_stop();
            server_drain_and_stop(&srv, 0);
            server_drain_and_stop(&admin, 0);
            metrics_stop();
            goto out;
        }
    }
    /* crl_fetch: SERVING only once the required CRLs are in (issue 4). */
    readiness_update(srv.crls);
    if (crl_fetch_start(fetcher, err, sizeof(err)) < 0)
        log_error("%s: CRLs are not fetched over HTTP", err);

    if (main_loop(o.config, srv.crls, &set) < 0)
        log_error("main loop failed: draining");
    /* Health NOT_SERVING and both listeners closed first, at once; the one
     * grace period counts from here for both. crl_fetch: stopped (bounded)
     * before the wait, readiness frozen so nothing turns health back on. */
    readiness_freeze();
    server_drain_begin(&srv);
    server_drain_begin(&admin);
    crl_fetch_stop(fetcher, 500);
    frontends_stop(); /* frontends: no new decisions once draining */
    server_drain_and_stop(&srv, grace);
    server_drain_and_stop(&admin, grace);
    metrics_stop();
    log_info("stopped");
    rc = 0;
out:
    readiness_freeze();
    fleet_stop(); /* fleet (issue 11) */
    crl_fetch_free(fetcher); /* crl_fetch: after metrics_stop (collector) */
    fetcher = NULL;
    snapshot_shutdown();
    crl_cache_reader_unregister();
    verdict_cache_free(srv.vcache);
    deny_list_free(srv.deny);
    crl_cache_free(srv.crls);
    grpc_shutdown_blocking();
    return rc;
}
