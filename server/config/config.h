/* certval configuration: one YAML file (docs/configuration.md), parsed with
 * libcyaml into |struct certval_config|.
 *
 * Relative paths in the file are resolved against the file's own folder.
 * config_load refuses a bad file with "FILE:LINE: problem" in |err|.
 * A loaded configuration is immutable and owned by whoever loaded it; it
 * does not depend on gRPC.
 *
 * Conventions: 0 on success, -1 with "FILE:LINE: problem" (or the problem)
 * in |err| on failure; config_free accepts NULL. */
#ifndef CERTVAL_CONFIG_H
#define CERTVAL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet_config.h" /* fleet (issue 11) */
#include "validator.h"

/* ---- frontends: Envoy ext_authz, nginx auth_request, HAProxy SPOE ---- */

/* One entry of frontends.tenant_by_host: a request for |host| claims |tenant|
 * when it names no tenant itself. */
struct frontend_host_tenant {
    char *host;
    char *tenant;
};

struct frontends_config {
    bool envoy_enabled;     /* envoy.service.auth.v3.Authorization/Check on the gRPC listeners; default true */
    char *nginx_listen;     /* "HOST:PORT" of the auth_request endpoint; NULL = off */
    char *spoe_listen;      /* "HOST:PORT" of the HAProxy SPOE agent; NULL = off */
    char *cert_header;      /* nginx: header with $ssl_client_escaped_cert; default "x-client-cert" */
    char *tenant_header;    /* default "x-tenant-id" */
    char *device_header;    /* default "x-device-id" */
    char *user_header;      /* default "x-user-id" */
    char *response_prefix;  /* names of the answers: PREFIX + decision/reason/kind/tenant/device; default "x-certval-" */
    uint32_t deny_status;   /* HTTP status of a DENY (Envoy, nginx); default 403 */
    struct frontend_host_tenant *hosts;
    size_t n_hosts;
};

struct certval_config {
    char *path;                 /* the file it was loaded from */

    /* listen */
    char **tcp;                 /* "HOST:PORT" listeners, at least one unless unix is set */
    size_t n_tcp;
    char *unix_socket;          /* path, or NULL */

    /* threads */
    uint32_t transport_threads; /* 0 = 1 per 4 CPUs, at least 1 */
    uint32_t worker_threads;    /* 0 = number of CPUs */

    /* limits */
    uint32_t max_chains_per_batch; /* default 1024 */
    uint32_t max_message_bytes;    /* default 4 MiB */
    uint32_t split_min_chains;     /* a batch is split across workers only above this; default 16 */
    /* admission (0 = derived from the worker count at start-up, see
     * docs/configuration.md) */
    uint32_t max_queued_chains_per_worker;
    uint32_t max_inflight_chains;
    uint32_t max_inflight_request_bytes;
    uint32_t max_concurrent_streams; /* per connection; default 100 */
    uint32_t max_queue_delay_ms;     /* estimated wait on the least-loaded worker; default 1000 */
    uint32_t max_transport_memory_bytes; /* gRPC's resource quota; 0 = derived */

    /* shutdown */
    uint32_t drain_grace_seconds;  /* default 20 */

    /* revocation data (loaded at start-up; the CRL cache owns it) */
    char **crl_files;
    size_t n_crl_files;
    char *crl_dir;              /* NULL = none */

    /* revocation.fetch: CRLs over HTTP (server/fetch/crl_fetch.h) */
    struct {
        char **urls;                   /* "http://..." as written */
        size_t n_urls;
        bool from_certificates;        /* add the configured CAs' cRLDistributionPoints */
        uint32_t timeout_ms;           /* whole fetch, connect included; default 10000 */
        uint32_t max_bytes;            /* body cap; default 64 MiB */
        uint32_t max_redirects;        /* default 3 */
        uint32_t refresh_ahead_seconds; /* fetch this long before nextUpdate; default 3600 */
        uint32_t max_interval_seconds; /* longest time between fetches; default 3600 */
        uint32_t max_backoff_seconds;  /* cap of the retry backoff; default 300 */
    } fetch;

    char *state_dir;            /* NULL = none */

    /* admin API (certval.v1.Admin on its own listener) */
    char *admin_listen;         /* "HOST:PORT", NULL = off */
    char *admin_token_file;     /* bearer token, first line; read on every call */
    uint32_t admin_max_message_bytes; /* a pushed CRL fits: default 256 MiB */

    /* verdict cache (read at start-up) */
    uint32_t verdict_cache_max_entries;   /* default 200000; 0 = no cache */
    uint32_t verdict_cache_max_megabytes; /* default 256 */

    /* observability */
    char *metrics_listen;       /* "HOST:PORT" of the Prometheus endpoint, NULL = off */
    bool audit_all_verdicts;    /* audit every verdict, not only DENY */
    uint32_t audit_max_lines_per_second; /* default 1000 */

    /* frontends (server/frontends/, docs/frontends.md) */
    struct frontends_config frontends;

    /* fleet (issue 11, docs/fleet.md): revocation state shared through etcd */
    struct fleet_config fleet;

    /* trust, profiles, tenants, per-chain limits */
    struct validator_config validator;
};

/* config_load parses |path| into a new configuration. Returns 0, or -1 with
 * "PATH:LINE: problem" (or "PATH: problem") in |err|. */
int config_load(struct certval_config **out, const char *path, char *err, size_t errlen);

/* config_free releases |c|; NULL is accepted. */
void config_free(struct certval_config *c);

#endif
