/* Prometheus metrics for certvald, served as text on HTTP (libmicrohttpd)
 * at /metrics on the metrics listener.
 *
 * Recording is per thread: each recording thread owns a shard that only it
 * writes (relaxed atomics), and a scrape sums the shards. The hot path never
 * takes a shared lock. Gauges owned by other modules are read at scrape time
 * through collectors.
 *
 * Conventions: 0 or -1 with a message in |err|. Thread-safe unless said. */
#ifndef CERTVAL_METRICS_H
#define CERTVAL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "verdict-t.h"

/* A growable text buffer for the exposition; capped at |cap| bytes. */
struct mbuf {
    char *data;
    size_t len, size, cap;
    bool overflow;
};

void mbuf_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* mbuf_label appends |s| escaped as a Prometheus label value. */
void mbuf_label(struct mbuf *b, const char *s);

/* metrics_record_verdict counts one verdict (by decision, reason, profile)
 * and, for tenant certificates, remembers the certificate's expiry for the
 * per-tenant expiry gauge. |tenant| is the claimed tenant. */
void metrics_record_verdict(const struct verdict *v, const char *tenant);

/* Front ends that call certval in their own protocol (server/frontends/). */
enum metrics_frontend {
    METRICS_FRONTEND_ENVOY = 0, /* envoy.service.auth.v3.Authorization/Check */
    METRICS_FRONTEND_NGINX = 1, /* auth_request endpoint */
    METRICS_FRONTEND_HAPROXY = 2, /* SPOE agent */
    METRICS_FRONTEND_COUNT = 3,
};

/* metrics_record_frontend counts one decision answered to front end |fe|
 * (certval_frontend_decisions_total{frontend,decision}); the verdict itself
 * is also counted by metrics_record_verdict. */
void metrics_record_frontend(enum metrics_frontend fe, enum verdict_decision d);

/* metrics_record_batch counts one answered batch: its size and the time from
 * receipt to the start of the send, in nanoseconds. */
void metrics_record_batch(size_t n_chains, uint64_t latency_ns, bool streaming);

/* metrics_record_rpc_error counts one call answered with gRPC status |code|. */
void metrics_record_rpc_error(int code);

/* A collector appends gauge families at scrape time. */
/* metrics_set_deny_list_durable sets certval_deny_list_durable: 1 (the
 * default) while every deny-list change is kept on stable storage, 0 when
 * a change could not be (no state_dir, or the state folder is unwritable).
 * Any thread. */
void metrics_set_deny_list_durable(bool durable);

typedef void (*metrics_collector_fn)(struct mbuf *out, void *arg);

/* metrics_add_collector registers |fn| (at most 16). Not thread-safe: call
 * before metrics_start. */
void metrics_add_collector(metrics_collector_fn fn, void *arg);

/* Collectors of gauges that other modules own (any thread, at scrape
 * time). */
struct crl_cache;

/* What metrics_collect_crls reads: the CRL cache and the count of CRLs
 * refused since start (reload_crl_refused_total, reload.h). */
struct metrics_crl_source {
    const struct crl_cache *crls;
    uint64_t (*refused_total)(void);
};

/* metrics_collect_crls: per-issuer CRL gauges and the refused counter;
 * |arg| is a struct metrics_crl_source. */
void metrics_collect_crls(struct mbuf *out, void *arg);

/* metrics_collect_revocation: deny-list entries and verdict-cache counters;
 * |arg| is the server's struct revocation_sources (validator.h). */
void metrics_collect_revocation(struct mbuf *out, void *arg);

/* metrics_collect_audit: audit lines the rate limit dropped (|arg| unused). */
void metrics_collect_audit(struct mbuf *out, void *arg);

/* metrics_render writes the whole exposition into |out| (caller frees
 * out->data). */
void metrics_render(struct mbuf *out);

/* metrics_start serves /metrics on |listen| ("HOST:PORT", port 0 = any);
 * |*out_port| gets the bound port. */
int metrics_start(const char *listen, int *out_port, char *err, size_t errlen);

/* metrics_stop stops the HTTP server (idempotent). */
void metrics_stop(void);

#endif
