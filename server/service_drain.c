/* Admission and the drain of certval.v1.Validator (service.h,
 * service_drain_internal.h): whether a Validate message is taken, and how
 * the calls that come in after SIGTERM are answered while gRPC still
 * accepts them.
 *
 * Shared state: the park list (|parked|, |parking_over|) under
 * |parked_lock|; drain_holding_answers and the server's counters are
 * atomics read without a lock (a bound may be passed by one message per
 * transport thread, never more). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "server.h"
#include "service.h"
#include "service_drain_internal.h"
#include "workers.h"

/* The last moments before gRPC's shutdown (service_drain_until_quiet):
 * answers are held (drain_hold), so that no client starts its next call
 * into the shutdown. */
static _Atomic bool drain_holding_answers;

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

/* Calls the drain refused, held until gRPC's shutdown has sent its GOAWAY
 * (service_drain_release): a client told UNAVAILABLE before it would send
 * its next call at once, on the same connection, into the shutdown. One
 * validator listener per process, so one list. */
#define DRAIN_PARK_MAX_MS 1000 /* a held call waits at most this long */
#define DRAIN_PARK_MARGIN_MS 20 /* answered this long before its deadline */
static pthread_mutex_t parked_lock = PTHREAD_MUTEX_INITIALIZER;
static struct drain_park *parked;
static bool parking_over; /* service_drain_release ran: answer at once */

bool drain_holding(void)
{
    return atomic_load_explicit(&drain_holding_answers, memory_order_relaxed);
}

bool drain_hold(struct drain_park *p, uint64_t deadline_ns)
{
    uint64_t now = server_mono_ns(), margin = (uint64_t)DRAIN_PARK_MARGIN_MS * 1000000u;
    uint64_t until = now + (uint64_t)DRAIN_PARK_MAX_MS * 1000000u;

    if (deadline_ns != UINT64_MAX && deadline_ns < until + margin)
        until = deadline_ns > now + margin ? deadline_ns - margin : now;
    pthread_mutex_lock(&parked_lock);
    if (!parking_over && until > now) {
        p->until_ns = until;
        p->next = parked;
        parked = p;
        p = NULL;
    }
    pthread_mutex_unlock(&parked_lock);
    return p == NULL;
}

/* Answers the held calls due by |now| (all with UINT64_MAX) with
 * UNAVAILABLE; |over| ends the holding for good. Any thread (the main
 * thread's drain loop): starting the status batch is thread-safe. */
static void drain_unpark(uint64_t now, bool over)
{
    struct drain_park *due = NULL, **pp;

    pthread_mutex_lock(&parked_lock);
    parking_over = parking_over || over;
    if (over)
        atomic_store_explicit(&drain_holding_answers, false, memory_order_relaxed);
    for (pp = &parked; *pp != NULL;) {
        struct drain_park *p = *pp;

        if (p->until_ns <= now) {
            *pp = p->next;
            p->next = due;
            due = p;
        } else {
            pp = &p->next;
        }
    }
    pthread_mutex_unlock(&parked_lock);
    while (due != NULL) {
        struct drain_park *p = due;

        due = p->next;
        service_drain_answer(p);
    }
}

/* While certvald drains with gRPC still accepting (server.h,
 * drain_work_until_ns), a batch is taken only if the work queued ahead of
 * it on the least-loaded worker plus its own largest slice, at the recent
 * cost of a chain, ends before gRPC's shutdown; otherwise false (the call
 * is then held and answered UNAVAILABLE). True when not
 * draining, or before a first slice has measured the cost. */
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
 * request slot has taken yet. So the validator listener keeps accepting
 * after SIGTERM (health is NOT_SERVING at once) and certvald answers every
 * call itself, OK or UNAVAILABLE "draining: ..." (held, drain_hold), and
 * starts gRPC's shutdown only when no call is on its way:
 *  - quiet: no call has come in for DRAIN_QUIET_MS with no work in
 *    flight (well over the gaps between a client's calls in a burst, and
 *    short against the 1 s an idle drain adds after it); or else
 *  - DRAIN_SHUTDOWN_LEAD_MS before the grace ends. DRAIN_HOLD_MS before
 *    that, every answer is held until the GOAWAY is out (a client sends
 *    its next call when it reads an answer); the shutdown then waits until
 *    no call has come in for DRAIN_HOLD_QUIET_MS (those already on their
 *    way are taken and held), at the latest DRAIN_SHUTDOWN_LAST_MS before
 *    the grace ends.
 * After the shutdown, server_drain_and_stop answers what is left until
 * the grace ends, then ends it with UNAVAILABLE. Admitted work must be
 * expected to end DRAIN_SHUTDOWN_LEAD_MS before the grace ends
 * (drain_leaves_time). Timed on the main thread, every DRAIN_POLL_MS. */
#define DRAIN_QUIET_MS 200
#define DRAIN_SHUTDOWN_LEAD_MS 250
#define DRAIN_HOLD_MS 300
#define DRAIN_HOLD_SLOTS 1024
#define DRAIN_HOLD_QUIET_MS 30
#define DRAIN_SHUTDOWN_LAST_MS 100
#define DRAIN_POLL_MS 10
#define MS(x) ((uint64_t)(x) * 1000000u)

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* |start| + |grace| - |lead|, or |start| when the grace is shorter. */
static uint64_t before_grace_end(uint64_t start, uint64_t grace, uint64_t lead)
{
    return start + (grace > lead ? grace - lead : 0);
}

void service_drain_until_quiet(struct server *srv, unsigned grace_seconds)
{
    uint64_t grace = (uint64_t)grace_seconds * 1000000000u;
    uint64_t start = srv->drain_started_ns, now = server_mono_ns(), quiet_since = now;
    uint64_t work_until = before_grace_end(start, grace, MS(DRAIN_SHUTDOWN_LEAD_MS));
    uint64_t hold_at = before_grace_end(start, grace, MS(DRAIN_SHUTDOWN_LEAD_MS + DRAIN_HOLD_MS));
    uint64_t last = before_grace_end(start, grace, MS(DRAIN_SHUTDOWN_LAST_MS));
    unsigned long seen = atomic_load_explicit(&srv->received_calls, memory_order_relaxed);
    bool holding = false, calm = false;

    /* 1, not 0 (no bound), when the grace leaves no time at all. */
    atomic_store_explicit(&srv->drain_work_until_ns, work_until > 1 ? work_until : 1,
                          memory_order_relaxed);
    while (now < last) {
        unsigned long got = atomic_load_explicit(&srv->received_calls, memory_order_relaxed);
        uint64_t quiet = holding ? MS(DRAIN_HOLD_QUIET_MS) : MS(DRAIN_QUIET_MS);
        bool busy = !holding && atomic_load_explicit(&srv->inflight_chains,
                                                     memory_order_relaxed) != 0;

        if (got != seen || busy) {
            seen = got;
            quiet_since = now;
        } else if (now - quiet_since >= quiet && (!holding || now >= work_until)) {
            calm = true;
            break;
        }
        if (!holding && now >= hold_at) {
            holding = true;
            quiet_since = now;
            server_add_request_slots(srv, DRAIN_HOLD_SLOTS);
            atomic_store_explicit(&drain_holding_answers, true, memory_order_relaxed);
        }
        sleep_ns(last - now < MS(DRAIN_POLL_MS) ? last - now : MS(DRAIN_POLL_MS));
        now = server_mono_ns();
        drain_unpark(now, false);
    }
    if (calm && !holding)
        log_info("drain: no new call for %d ms and no work in flight, %llu ms after SIGTERM: "
                 "closing the listener",
                 DRAIN_QUIET_MS, (unsigned long long)((now - start) / 1000000u));
    else if (!holding)
        log_info("drain: the grace leaves no time to answer new calls: closing the listener");
    else
        log_info("drain: calls came in or work was in flight until %llu ms after SIGTERM: "
                 "closing the listener, answers held since %llu ms",
                 (unsigned long long)((now - start) / 1000000u),
                 (unsigned long long)((hold_at - start) / 1000000u));
}

void service_drain_release(void)
{
    drain_unpark(UINT64_MAX, true);
}
