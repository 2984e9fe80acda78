/* grpc.health.v1.Health for certvald (health.c): one status for "" and
 * "certval.v1.Validator", the Check and Watch handlers (call.h), the
 * start-up readiness that turns it SERVING, and the drain hook that turns
 * it NOT_SERVING.
 *
 * Thread-safe: the status and the watcher list are under one lock.
 *
 * Conventions: nothing fails to the caller; a call's outcome is its gRPC
 * status, readiness a bool. */
#ifndef CERTVAL_HEALTH_H
#define CERTVAL_HEALTH_H

#include <stdbool.h>

#include "call.h"

struct crl_cache;
struct mbuf;

#define HEALTH_CHECK_METHOD "/grpc.health.v1.Health/Check"
#define HEALTH_WATCH_METHOD "/grpc.health.v1.Health/Watch"

/* health_check_start / health_watch_start take over a Check or Watch call
 * (call_handler_fn; |arg| unused). Transport thread. */
void health_check_start(void *arg, const struct call_request *req);
void health_watch_start(void *arg, const struct call_request *req);

/* health_set_serving sets the status and tells every watcher of a change. */
void health_set_serving(bool serving);
bool health_is_serving(void);

/* health_finish_watchers ends every Watch stream with UNAVAILABLE (drain). */
void health_finish_watchers(void);

/* health_on_drain is the validator listener's drain hook (server_drain_fn):
 * NOT_SERVING, and when the listener closes, every Watch stream ends. */
void health_on_drain(void *arg, bool closing);

/* health_readiness_update turns health SERVING once the current snapshot
 * is in and every profile that checks revocation has a CRL for each of its
 * issuers (revocation_ready, reload.h); it then stays latched. Logs the
 * reason it waits when that changes. Any thread (the reload.h change hook
 * calls it); |crls| is read under the RCU read lock. */
void health_readiness_update(const struct crl_cache *crls);

/* health_readiness_freeze stops the evaluation for good (drain): nothing
 * turns health back on after it. */
void health_readiness_freeze(void);

/* health_collect is a metrics collector (metrics.h; |arg| unused):
 * certval_up_serving, and the version and trust-anchor expiries of the
 * configuration in use. Any thread. */
void health_collect(struct mbuf *b, void *arg);

#endif
