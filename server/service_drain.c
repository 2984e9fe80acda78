/* Admission and the drain of certval.v1.Validator (service.h,
 * service_drain_internal.h): whether a Validate message is taken, and how
 * the calls that come in after SIGTERM are answered while gRPC still
 * accepts them.
 *
 * Shared state: the server's counters, atomics read without a lock (a
 * bound may be passed by one message per transport thread, never more). */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "server.h"
#include "service.h"
#include "service_drain_internal.h"
#include "workers.h"

/* Whether a drain has passed the time by which admitted work must end. */
static bool drain_over(const struct server *srv, uint64_t now)
{
    uint64_t until = atomic_load_explicit(&srv->drain_work_until_ns, memory_order_relaxed);

    return until != 0 && now >= until;
}

/* ---- admission ---- */

/* Kept free before a call's deadline when its work is admitted: an
 * answer's way back (packing, the transport thread, the wire) and the
 * error of the estimate, which grows with the time it looks ahead. */
#define ADMIT_MARGIN_MIN_NS (250u * 1000u)
#define ADMIT_MARGIN_SHIFT 3 /* 1/8 of the time left */

grpc_status_code service_admit(struct server *srv, uint64_t deadline_ns, size_t bytes, char *msg,
                               size_t msglen)
{
    const struct server_limits *l = &srv->limits;
    long chains = atomic_load_explicit(&srv->inflight_chains, memory_order_relaxed);
    long held = atomic_load_explicit(&srv->inflight_bytes, memory_order_relaxed);
    uint64_t now = server_mono_ns();

    if (now >= deadline_ns) {
        snprintf(msg, msglen, "deadline passed before the request was read: not validated");
        return GRPC_STATUS_DEADLINE_EXCEEDED;
    }
    /* The end of a drain (service_drain_until_quiet): refused unread
     * (service.c's recv_done holds the call). */
    if (drain_over(srv, now)) {
        snprintf(msg, msglen, DRAIN_REFUSED_MSG);
        return GRPC_STATUS_UNAVAILABLE;
    }
    if (chains >= (long)l->max_inflight_chains) {
        snprintf(msg, msglen,
                 "overloaded: %ld chains in flight, limit limits.max_inflight_chains is %u", chains,
                 l->max_inflight_chains);
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    }
    /* An idle server takes any message gRPC let through (max_message_bytes). */
    if (held > 0 && (uint64_t)held + bytes > l->max_inflight_request_bytes) {
        snprintf(msg, msglen,
                 "overloaded: %ld request bytes in flight, limit limits.max_inflight_request_bytes "
                 "is %u",
                 held, l->max_inflight_request_bytes);
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    }
    if (srv->pool != NULL) {
        uint64_t queued = worker_pool_queued_on(srv->pool, worker_pool_pick(srv->pool));
        uint64_t cost = atomic_load_explicit(&srv->chain_cost_ns, memory_order_relaxed);

        if (queued >= l->max_queued_chains_per_worker) {
            snprintf(msg, msglen,
                     "overloaded: every worker has %llu chains queued, limit "
                     "limits.max_queued_chains_per_worker is %u",
                     (unsigned long long)queued, l->max_queued_chains_per_worker);
            return GRPC_STATUS_RESOURCE_EXHAUSTED;
        }
        /* The bound that keeps admitted calls' latency: the queue in time,
         * at the recent cost of a chain (0 until a first slice ran). */
        if (queued * cost > (uint64_t)l->max_queue_delay_ms * 1000000u) {
            snprintf(msg, msglen,
                     "overloaded: about %llu ms of work queued on every worker, limit "
                     "limits.max_queue_delay_ms is %u",
                     (unsigned long long)(queued * cost / 1000000u), l->max_queue_delay_ms);
            return GRPC_STATUS_RESOURCE_EXHAUSTED;
        }
        /* Work that would start after the deadline is refused now, while the
         * client can still try another replica, rather than dropped later. */
        if (deadline_ns != UINT64_MAX && now + (queued + 1) * cost > deadline_ns) {
            snprintf(msg, msglen,
                     "overloaded: the %llu chains queued ahead (about %llu us) outlast the "
                     "call's deadline",
                     (unsigned long long)queued, (unsigned long long)(queued * cost / 1000));
            return GRPC_STATUS_RESOURCE_EXHAUSTED;
        }
    }
    return GRPC_STATUS_OK;
}

/* The time until one batch's work has ended: its slices go to the
 * least-loaded workers (worker_pool_pick), so it ends when the |n_slices|-th
 * least-loaded one has done what it holds and its own largest slice, at the
 * recent cost of a chain (0 before a first slice has measured it). */
static uint64_t batch_work_ns(const struct server *srv, size_t n_chains, unsigned n_slices)
{
    uint64_t cost = atomic_load_explicit(&srv->chain_cost_ns, memory_order_relaxed);
    unsigned workers = worker_pool_size(srv->pool);
    uint64_t q = 0, prev = 0;

    if (n_slices == 0)
        n_slices = 1;
    if (n_slices > workers)
        n_slices = workers;
    /* The n-th smallest queue: n rounds of "the smallest above the last";
     * equal queues count once per worker holding them. */
    for (unsigned r = 0, taken = 0; taken < n_slices && r < workers; r++) {
        uint64_t best = UINT64_MAX;
        unsigned ties = 0;

        for (unsigned i = 0; i < workers; i++) {
            uint64_t v = worker_pool_queued_on(srv->pool, i);

            if ((r == 0 || v > prev) && v < best) {
                best = v;
                ties = 1;
            } else if ((r == 0 || v > prev) && v == best) {
                ties++;
            }
        }
        if (best == UINT64_MAX)
            break;
        q = prev = best;
        taken += ties;
    }
    return (q + (n_chains + n_slices - 1) / n_slices) * cost;
}

grpc_status_code service_admit_batch(const struct server *srv, uint64_t deadline_ns,
                                     size_t n_chains, unsigned n_slices, char *msg, size_t msglen)
{
    uint64_t now, need, margin;

    if (deadline_ns == UINT64_MAX || srv->pool == NULL || n_chains == 0)
        return GRPC_STATUS_OK;
    now = server_mono_ns();
    need = batch_work_ns(srv, n_chains, n_slices);
    margin = now < deadline_ns ? (deadline_ns - now) >> ADMIT_MARGIN_SHIFT : 0;
    if (margin < ADMIT_MARGIN_MIN_NS)
        margin = ADMIT_MARGIN_MIN_NS;
    if (now + need + margin <= deadline_ns)
        return GRPC_STATUS_OK;
    snprintf(msg, msglen,
             "overloaded: the work queued ahead and this call's %zu chains (about %llu us) would "
             "end too close to or after the call's deadline",
             n_chains, (unsigned long long)(need / 1000));
    return GRPC_STATUS_RESOURCE_EXHAUSTED;
}


/* ---- drain ---- */

/* While certvald drains with gRPC still accepting (server.h,
 * drain_work_until_ns), a batch is taken only if the work queued ahead of
 * it on the least-loaded worker plus its own largest slice, at the recent
 * cost of a chain, ends by then; otherwise false (the call is answered
 * UNAVAILABLE). True when not draining, or before a first slice has
 * measured the cost. */
bool drain_leaves_time(const struct server *srv, size_t n_chains, unsigned n_slices)
{
    uint64_t until = atomic_load_explicit(&srv->drain_work_until_ns, memory_order_relaxed);
    uint64_t now;

    if (until == 0 || srv->pool == NULL)
        return true;
    now = server_mono_ns();
    return now < until && now + batch_work_ns(srv, n_chains, n_slices) <= until;
}

/* ---- drain (before gRPC's shutdown) ----
 * gRPC 1.51 ends with CANCELLED, unseen by certvald, every call whose
 * headers it reads once grpc_server_shutdown_and_notify has begun and
 * before the client has read the GOAWAY, and every call it read that no
 * request slot has taken yet; a client that does not wait for answers (an
 * open loop) can have a call on its way at any moment. So that shutdown
 * never starts while a connection is open: after SIGTERM (health is
 * NOT_SERVING at once) the validator listener keeps accepting and
 * certvald answers every call itself, OK when its work can end
 * DRAIN_SHUTDOWN_LEAD_MS before the grace does (drain_leaves_time), else
 * UNAVAILABLE "draining: ..." at once; then the connections are cut
 * (server_drain_cut, once the admitted work is answered) and only then
 * does gRPC's shutdown start. This waits until:
 *  - quiet: no call has come in for DRAIN_QUIET_MS with no work in
 *    flight (well over the gaps between a client's calls in a burst); or
 *  - DRAIN_SHUTDOWN_LEAD_MS before the grace ends, after which every new
 *    call is refused.
 * Timed on the main thread, every DRAIN_POLL_MS. */
#define DRAIN_QUIET_MS 200
#define DRAIN_SHUTDOWN_LEAD_MS 250
#define DRAIN_POLL_MS 10
#define MS(x) ((uint64_t)(x) * 1000000u)

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void service_drain_until_quiet(struct server *srv, unsigned grace_seconds)
{
    uint64_t grace = (uint64_t)grace_seconds * 1000000000u, lead = MS(DRAIN_SHUTDOWN_LEAD_MS);
    uint64_t start = srv->drain_started_ns, now = server_mono_ns(), quiet_since = now;
    /* |start| + |grace| - |lead|, or |start| when the grace is shorter. */
    uint64_t work_until = start + (grace > lead ? grace - lead : 0);
    unsigned long seen = atomic_load_explicit(&srv->received_calls, memory_order_relaxed);

    /* 1, not 0 (no bound), when the grace leaves no time at all. */
    atomic_store_explicit(&srv->drain_work_until_ns, work_until > 1 ? work_until : 1,
                          memory_order_relaxed);
    while (now < work_until) {
        unsigned long got = atomic_load_explicit(&srv->received_calls, memory_order_relaxed);

        if (got != seen ||
            atomic_load_explicit(&srv->inflight_chains, memory_order_relaxed) != 0) {
            seen = got;
            quiet_since = now;
        } else if (now - quiet_since >= MS(DRAIN_QUIET_MS)) {
            log_info("drain: no new call for %d ms and no work in flight, %llu ms after "
                     "SIGTERM: closing the connections",
                     DRAIN_QUIET_MS, (unsigned long long)((now - start) / 1000000u));
            return;
        }
        sleep_ns(work_until - now < MS(DRAIN_POLL_MS) ? work_until - now : MS(DRAIN_POLL_MS));
        now = server_mono_ns();
    }
    log_info("drain: calls kept coming until %llu ms after SIGTERM: refusing new ones, closing "
             "the connections once the admitted work is answered",
             (unsigned long long)((now - start) / 1000000u));
}
