/* CRLs over HTTP: one dedicated thread with its own io_uring fetches the CRL
 * distribution points of the configuration (revocation.fetch.urls, and with
 * from_certificates the cRLDistributionPoints of the configured CA
 * certificates) and hands each body to reload_crl_push (server/reload.h), which
 * verifies it, publishes it to the CRL cache and keeps it in STATE/crls/.
 *
 * connect, send and recv are io_uring operations, each linked
 * (IOSQE_IO_LINK) to an IORING_OP_LINK_TIMEOUT holding what is left of the
 * fetch's timeout; the schedule is one IORING_OP_TIMEOUT; an eventfd read
 * wakes the thread for stop and reconfiguration. HTTP/1.1, http:// only,
 * responses parsed with libhttp-parser. Names are resolved with a blocking
 * getaddrinfo on the fetcher thread (not on any call path).
 * Design and limits: docs/revocation.md "Fetching CRLs over HTTP".
 *
 * Who: crl_fetch_new/start/stop/free from the main thread;
 * crl_fetch_reconfigure from any thread; crl_fetch_collect from the metrics
 * thread. Conventions: 0, or -1 with a message in |err|. */
#ifndef CERTVAL_CRL_FETCH_H
#define CERTVAL_CRL_FETCH_H

#include <stddef.h>

struct crl_cache;
struct crl_fetch;
struct mbuf;

/* crl_fetch_new returns a stopped fetcher that will push into |crls|, or
 * NULL on allocation failure. Its metrics collector may be registered at
 * once (it reports nothing until started). */
struct crl_fetch *crl_fetch_new(struct crl_cache *crls);

/* crl_fetch_start reads the URLs and limits of the current snapshot and
 * starts the fetcher thread, which fetches every URL at once. Returns 0, or
 * -1 with |err| (io_uring or thread creation failed). */
int crl_fetch_start(struct crl_fetch *f, char *err, size_t errlen);

/* crl_fetch_reconfigure asks the running fetcher to re-read the URLs and
 * limits of the current snapshot (after a reload) and to fetch every URL
 * now (a conditional request when the server gave a validator). No-op when
 * |f| is NULL or not running. Thread-safe, never blocks. */
void crl_fetch_reconfigure(struct crl_fetch *f);

/* crl_fetch_stop stops the thread, waiting at most |timeout_ms| (a fetch in
 * getaddrinfo cannot be interrupted). A thread that does not stop in time
 * is left detached and crl_fetch_free will not free what it uses.
 * Idempotent; NULL is accepted. */
void crl_fetch_stop(struct crl_fetch *f, unsigned timeout_ms);

/* crl_fetch_free stops the fetcher if needed and frees it; NULL accepted.
 * Call after metrics_stop (the collector reads it). */
void crl_fetch_free(struct crl_fetch *f);

/* crl_fetch_collect is a metrics collector (metrics_add_collector with |f|
 * as the argument): certval_crl_fetch_total{url,result} and
 * certval_crl_fetch_last_success_timestamp_seconds{url}. */
void crl_fetch_collect(struct mbuf *out, void *f);

#endif
