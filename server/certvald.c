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

#include "admin.h"
#include "audit.h"
#include "config.h"
#include "frontend.h"
#include "crl_cache.h"
#include "rcu_reader.h"
#include "crl_fetch.h"
#include "deny_list.h"
#include "envoy.h"
#include "health.h"
#include "fleet.h" /* fleet (issue 11) */
#include "log.h"
#include "metrics.h"
#include "pki_gen.h"
#include "reload.h"
#include "server.h"
#include "service.h"
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
#define DEFAULT_TRANSPORT_MEMORY_MIN (16u << 20)
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
    /* What gRPC may hold before admission sees it: 16 MiB, or two of the
     * largest messages. gRPC overshoots its quota by more the larger it
     * is (docs/configuration.md, Memory): keep it tight. */
    l->max_transport_memory_bytes = cfg->max_transport_memory_bytes;
    if (l->max_transport_memory_bytes == 0) {
        l->max_transport_memory_bytes = 2 * cfg->max_message_bytes; /* at most 2 GiB */
        if (l->max_transport_memory_bytes < DEFAULT_TRANSPORT_MEMORY_MIN)
            l->max_transport_memory_bytes = DEFAULT_TRANSPORT_MEMORY_MIN;
    }
}

/* frontends (issue 12): starts the nginx and HAProxy listeners of the
 * installed configuration; they validate against |rev|, the server's own
 * revocation sources, like Validate. */
static int start_frontends(const struct revocation_sources *rev)
{
    struct reload_snapshot *s = reload_acquire();
    char err[256];
    int rc;

    if (s == NULL)
        return -1;
    rc = frontends_start(&s->cfg->frontends, rev, err, sizeof(err));
    if (rc < 0)
        log_error("%s", err);
    reload_release(s);
    return rc;
}

/* Everything certvald starts, so that one cleanup path (daemon_cleanup)
 * undoes whatever part of the start-up sequence ran. Main thread only. */
struct daemon {
    struct options o;
    char cfg_path[PATH_MAX];
    struct certval_config *cfg; /* owned until reload_install takes it */
    sigset_t signals;           /* taken by the main loop */
    unsigned transports, workers, grace;
    struct server srv, admin;
    struct crl_fetch *fetcher;
    struct metrics_crl_source crl_metrics;
    bool grpc_up, srv_up, admin_up, metrics_up, frontends_up, fleet_up;
};

/* The one readiness hook: whatever may make health ready (an installed
 * configuration or CRL, the fleet's first read, start-up) re-evaluates it
 * here, from whichever thread. */
static void on_readiness_change(void *arg)
{
    struct daemon *d = arg;

    health_readiness_update(d->srv.crls);
}

/* Reload hook (reload.h), from whichever thread changed the CRLs or the
 * configuration: the fetcher follows the configuration's URLs, and health
 * may now be ready. */
static void on_crl_change(bool config_changed, void *arg)
{
    struct daemon *d = arg;

    if (config_changed)
        crl_fetch_reconfigure(d->fetcher);
    on_readiness_change(d);
}

/* load_config reads (or, for --demo, generates) the configuration and
 * applies the command line's overrides. */
static int load_config(struct daemon *d)
{
    char err[1024];

    if (d->o.demo) {
        if (prepare_demo(&d->o, d->cfg_path, sizeof(d->cfg_path)) < 0)
            return -1;
        d->o.config = d->cfg_path;
    }
    if (config_load(&d->cfg, d->o.config, err, sizeof(err)) < 0) {
        fprintf(stderr, "certvald: %s\n", err);
        log_error("configuration refused: %s", err);
        return -1;
    }
    if (d->o.check_only)
        return 0;
    apply_overrides(d->cfg, &d->o);
    if (d->cfg->n_tcp > 64) {
        log_error("at most 64 TCP listeners");
        return -1;
    }
    return 0;
}

/* Signals are taken synchronously by the main thread only. */
static void block_signals(struct daemon *d)
{
    sigemptyset(&d->signals);
    sigaddset(&d->signals, SIGTERM);
    sigaddset(&d->signals, SIGINT);
    sigaddset(&d->signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &d->signals, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* start_state sets up gRPC and what validation reads: the CRL cache, the
 * deny list, the verdict cache and the CRL fetcher (not started yet). */
static int start_state(struct daemon *d)
{
    const struct certval_config *cfg = d->cfg;
    struct server *srv = &d->srv;

    d->transports = cfg->transport_threads ? cfg->transport_threads : (ncpus() + 3) / 4;
    d->workers = cfg->worker_threads ? cfg->worker_threads : ncpus();
    resolve_limits(&srv->limits, cfg, d->workers);
    d->grace = cfg->drain_grace_seconds;
    grpc_init();
    d->grpc_up = true;
    srv->crls = crl_cache_new();
    srv->deny = deny_list_new();
    if (srv->crls == NULL || srv->deny == NULL)
        return -1;
    certval_rcu_reader_register();
    if (load_deny_list(srv->deny, cfg) < 0)
        return -1;
    if (cfg->verdict_cache_max_entries > 0) {
        srv->vcache = verdict_cache_new(cfg->verdict_cache_max_entries,
                                        (size_t)cfg->verdict_cache_max_megabytes << 20);
        if (srv->vcache == NULL) {
            log_error("cannot allocate the verdict cache");
            return -1;
        }
    }
    srv->rev.crls = srv->crls;
    srv->rev.deny = srv->deny;
    srv->rev.cache = srv->vcache;
    srv->rev.revocation_unknown = fleet_revocation_unknown; /* fleet (issue 11): fail closed */
    /* crl_fetch: created now so its metrics collector can be registered. */
    d->fetcher = crl_fetch_new(srv->crls);
    if (d->fetcher == NULL)
        return -1;
    reload_set_crl_change_hook(on_crl_change, d);
    return 0;
}

/* The validator listener: certval.v1.Validator, health and Envoy's
 * ext_authz; health turns NOT_SERVING when it drains. The table is well
 * under SERVER_MAX_METHODS, so registration cannot fail. */
static void register_validator_methods(struct server *srv)
{
    server_register_unary_method(srv, SERVICE_VALIDATE_METHOD, service_validate_start, NULL);
    server_register_method(srv, SERVICE_VALIDATE_STREAM_METHOD, service_validate_stream_start,
                           NULL);
    server_register_method(srv, HEALTH_CHECK_METHOD, health_check_start, NULL);
    server_register_method(srv, HEALTH_WATCH_METHOD, health_watch_start, NULL);
    server_register_method(srv, ENVOY_CHECK_METHOD, envoy_check_start, NULL); /* frontends */
    server_on_drain(srv, health_on_drain, NULL);
}

/* The admin listener: certval.v1.Admin and health Check (no Watch). */
static void register_admin_methods(struct server *srv)
{
    server_register_method(srv, HEALTH_CHECK_METHOD, health_check_start, NULL);
    server_register_method(srv, ADMIN_SERVICE_PREFIX, admin_call_start, NULL);
}

static void print_demo_address(const struct daemon *d, int port)
{
    char addr[300], demo_dir[PATH_MAX];
    char *colon, *slash;

    snprintf(addr, sizeof(addr), "%s", d->cfg->tcp[0]);
    colon = strrchr(addr, ':');
    if (colon != NULL)
        snprintf(colon + 1, sizeof(addr) - (size_t)(colon + 1 - addr), "%d", port);
    snprintf(demo_dir, sizeof(demo_dir), "%s", d->o.config);
    slash = strrchr(demo_dir, '/');
    if (slash != NULL)
        *slash = '\0';
    print_demo_commands(demo_dir, addr);
}

/* start_validator starts the validator listener (calls are accepted; health
 * says NOT_SERVING until start_serving). */
static int start_validator(struct daemon *d)
{
    const struct certval_config *cfg = d->cfg;
    int ports[MAX_LISTEN_OVERRIDES + 64];
    char err[1024];

    register_validator_methods(&d->srv);
    if (server_start(&d->srv, cfg->tcp, cfg->n_tcp, cfg->unix_socket, d->transports, d->workers,
                     ports, err, sizeof(err)) < 0) {
        log_error("%s", err);
        fprintf(stderr, "certvald: %s\n", err);
        return -1;
    }
    d->srv_up = true;
    for (size_t i = 0; i < cfg->n_tcp; i++)
        log_info("listening on %s (port %d)", cfg->tcp[i], ports[i]);
    if (cfg->unix_socket != NULL)
        log_info("listening on unix:%s", cfg->unix_socket);
    if (d->o.port_file != NULL && cfg->n_tcp > 0 && write_port_file(d->o.port_file, ports[0]) < 0)
        log_warn("cannot write port file %s", d->o.port_file);
    if (d->o.demo)
        print_demo_address(d, ports[0]);
    return 0;
}

/* start_observability configures the audit log and serves /metrics. */
static int start_observability(struct daemon *d)
{
    const struct certval_config *cfg = d->cfg;
    char err[1024];
    int mport = 0;

    audit_configure(cfg->audit_all_verdicts, cfg->audit_max_lines_per_second);
    if (cfg->metrics_listen == NULL)
        return 0;
    d->crl_metrics.crls = d->srv.crls;
    d->crl_metrics.refused_total = reload_crl_refused_total;
    metrics_add_collector(health_collect, NULL);
    metrics_add_collector(server_collect, &d->srv);
    metrics_add_collector(metrics_collect_audit, NULL);
    metrics_add_collector(metrics_collect_crls, &d->crl_metrics);
    metrics_add_collector(metrics_collect_revocation, &d->srv.rev);
    metrics_add_collector(crl_fetch_collect, d->fetcher);
    metrics_add_collector(fleet_collect, NULL); /* fleet (issue 11) */
    if (metrics_start(cfg->metrics_listen, &mport, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    d->metrics_up = true;
    log_info("metrics on http://%s/metrics (port %d)", cfg->metrics_listen, mport);
    if (d->o.metrics_port_file != NULL && write_port_file(d->o.metrics_port_file, mport) < 0)
        log_warn("cannot write port file %s", d->o.metrics_port_file);
    return 0;
}

/* start_admin starts the admin listener, if configured. */
static int start_admin(struct daemon *d)
{
    const struct certval_config *cfg = d->cfg;
    struct server *admin = &d->admin;
    char err[1024];
    int aport = 0;

    if (cfg->admin_listen == NULL)
        return 0;
    admin->role = SERVER_ROLE_ADMIN;
    admin->limits = d->srv.limits;
    /* A pushed CRL is one message: a 1,000,000-entry CRL is about 40 MB. */
    admin->limits.max_message_bytes = cfg->admin_max_message_bytes;
    /* Operators push CRLs of up to admin_max_message_bytes (256 MiB by
     * default) with a token: no quota to cancel them. */
    admin->limits.max_transport_memory_bytes = 0;
    admin_configure(cfg->admin_token_file, cfg->state_dir, d->o.config, d->srv.crls, d->srv.deny);
    register_admin_methods(admin);
    /* Marked up before the start: a listener that failed half-way is
     * stopped too. */
    d->admin_up = true;
    if (server_start(admin, &d->cfg->admin_listen, 1, NULL, 1, 0, &aport, err, sizeof(err)) < 0) {
        log_error("admin listener: %s", err);
        return -1;
    }
    log_info("admin API on %s (port %d)", cfg->admin_listen, aport);
    if (d->o.admin_port_file != NULL && write_port_file(d->o.admin_port_file, aport) < 0)
        log_warn("cannot write port file %s", d->o.admin_port_file);
    return 0;
}

/* start_fleet follows etcd when the configuration has a fleet section
 * (nothing is started otherwise). */
static int start_fleet(struct daemon *d)
{
    struct reload_snapshot *fs = reload_acquire();
    char err[1024];
    int rc;

    if (fs == NULL)
        return -1;
    rc = fleet_start(&fs->cfg->fleet, d->srv.crls, d->srv.deny, fs->cfg->state_dir,
                     on_readiness_change, d, err, sizeof(err));
    reload_release(fs);
    if (rc < 0) {
        log_error("fleet: %s", err);
        return -1;
    }
    d->fleet_up = true;
    return 0;
}

/* start_serving installs the first configuration, starts the nginx and
 * HAProxy front ends and the CRL fetcher, and lets health turn SERVING
 * once the required CRLs are in. */
static int start_serving(struct daemon *d)
{
    struct certval_config *cfg = d->cfg;
    char err[1024];

    /* Health turns SERVING only once a configuration with anchors is in;
     * reload_install takes |cfg|, also on failure. */
    d->cfg = NULL;
    if (reload_install(cfg, d->srv.crls, err, sizeof(err)) < 0) {
        log_error("configuration %s: %s", d->o.config, err);
        return -1;
    }
    /* frontends (issue 12): the listeners are read from the published
     * snapshot (start-up only, like listen). */
    if (start_frontends(&d->srv.rev) < 0)
        return -1;
    d->frontends_up = true;
    log_info("certvald ready: %u transport threads, %u workers; admission: %u queued chains or "
             "%u ms of work per worker, %u chains and %u request bytes in flight, %u streams per "
             "connection, gRPC memory quota %u bytes",
             d->transports, d->workers, d->srv.limits.max_queued_chains_per_worker,
             d->srv.limits.max_queue_delay_ms, d->srv.limits.max_inflight_chains,
             d->srv.limits.max_inflight_request_bytes, d->srv.limits.max_concurrent_streams,
             d->srv.limits.max_transport_memory_bytes);
    /* fleet (issue 11): follow etcd; SERVING waits for its first read. */
    if (start_fleet(d) < 0)
        return -1;
    /* crl_fetch: SERVING only once the required CRLs are in (issue 4). */
    on_readiness_change(d);
    if (crl_fetch_start(d->fetcher, err, sizeof(err)) < 0)
        log_error("%s: CRLs are not fetched over HTTP", err);
    return 0;
}

/* daemon_stop drains after the main loop. Health NOT_SERVING and the
 * admin listener closed first, at once; the one grace period counts from
 * here for both listeners. The validator listener keeps accepting until
 * its calls have stopped coming (service_drain_until_quiet) and its
 * admitted work is answered, or the grace ends; then its connections are
 * cut before gRPC's shutdown (server_drain_cut): certvald answers each
 * call itself, where that shutdown would end some with CANCELLED. crl_fetch: stopped (bounded) before the wait, readiness
 * frozen so nothing turns health back on. */
static void daemon_stop(struct daemon *d)
{
    health_readiness_freeze();
    server_drain_announce(&d->srv);
    server_drain_begin(&d->admin);
    crl_fetch_stop(d->fetcher, 500);
    frontends_stop(); /* frontends: no new decisions once draining */
    d->frontends_up = false;
    service_drain_until_quiet(&d->srv, d->grace);
    server_drain_cut(&d->srv, d->grace); /* no connection is left for gRPC's shutdown */
    server_drain_begin(&d->srv);
    server_drain_and_stop(&d->srv, d->grace);
    d->srv_up = false;
    server_drain_and_stop(&d->admin, d->grace);
    d->admin_up = false;
    fleet_stop(); /* fleet (issue 11): after the admin API, which writes through it */
    d->fleet_up = false;
    metrics_stop();
    d->metrics_up = false;
    log_info("stopped");
}

/* daemon_cleanup undoes whatever the start-up sequence got to, in reverse:
 * after daemon_stop, or at once (no grace) when a step failed. */
static void daemon_cleanup(struct daemon *d)
{
    if (d->frontends_up)
        frontends_stop();
    if (d->admin_up)
        server_drain_and_stop(&d->admin, 0);
    if (d->srv_up)
        server_drain_and_stop(&d->srv, 0);
    if (d->fleet_up)
        fleet_stop();
    if (d->metrics_up)
        metrics_stop();
    if (d->grpc_up) {
        health_readiness_freeze();
        crl_fetch_free(d->fetcher); /* crl_fetch: after metrics_stop (collector) */
        d->fetcher = NULL;
        reload_shutdown();
        certval_rcu_reader_unregister();
        verdict_cache_free(d->srv.vcache);
        deny_list_free(d->srv.deny);
        crl_cache_free(d->srv.crls);
        grpc_shutdown_blocking();
    }
    config_free(d->cfg);
    d->cfg = NULL;
}

int main(int argc, char **argv)
{
    static struct daemon d; /* the reload hook's argument: lives until exit */
    int rc = 1;

    if (parse_args(&d.o, argc, argv) < 0)
        return 2;
    /* CRL snapshots, pushed CRLs and responses are large, short-lived
     * allocations. glibc raises its mmap threshold after freeing one, after
     * which the next ones come from the heap and freed snapshots stay
     * resident; a fixed threshold keeps them mmapped and returned to the
     * system when an RCU grace period frees them. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    if (check_crypto() < 0 || load_config(&d) < 0)
        goto out;
    if (d.o.check_only) {
        printf("%s: OK\n", d.o.config);
        rc = 0;
        goto out;
    }
    block_signals(&d);
    if (start_state(&d) < 0 || start_validator(&d) < 0 || start_observability(&d) < 0 ||
        start_admin(&d) < 0 || start_serving(&d) < 0)
        goto out;
    if (main_loop(d.o.config, d.srv.crls, &d.signals) < 0)
        log_error("main loop failed: draining");
    daemon_stop(&d);
    rc = 0;
out:
    daemon_cleanup(&d);
    return rc;
}
