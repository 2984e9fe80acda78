#define _GNU_SOURCE /* pthread_setname_np */
/* gRPC listeners, transport threads, method dispatch and drain.
 * See docs/architecture.md for the path of one batch. */
#include "server.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "container_of.h"
#include "rcu_reader.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"

/* Outstanding request_call slots per transport thread: this many generic
 * ones, and as many again for each unary method. Generic slots are kept
 * even for known methods so that unknown methods are answered at once
 * instead of hanging until their deadline (PLATFORM.md). */
#define REQUEST_SLOTS_PER_TRANSPORT 64

/* A request_call slot: generic (|m| NULL: any method not registered as
 * unary, dispatched by name) or for one unary method (|m|: gRPC has read
 * the request into |payload| and matched the method). */
struct request_slot {
    struct tag tag;
    struct transport *tr;
    const struct server_method *m;
    grpc_call *call;
    grpc_call_details details;
    gpr_timespec deadline;
    grpc_byte_buffer *payload;
    grpc_metadata_array md;
};

/* ---- request slots and dispatch ---- */

static void slot_arm(struct request_slot *s);

int server_register_method(struct server *srv, const char *name, call_handler_fn fn, void *arg)
{
    if (srv->n_methods == SERVER_MAX_METHODS)
        return -1;
    srv->methods[srv->n_methods++] = (struct server_method){.name = name, .fn = fn, .arg = arg};
    return 0;
}

int server_register_unary_method(struct server *srv, const char *name, call_handler_fn fn,
                                 void *arg)
{
    size_t n = strlen(name);

    if ((n > 0 && name[n - 1] == '/') || server_register_method(srv, name, fn, arg) < 0)
        return -1;
    srv->methods[srv->n_methods - 1].unary = true;
    return 0;
}

void server_on_drain(struct server *srv, server_drain_fn fn, void *arg)
{
    srv->on_drain = fn;
    srv->on_drain_arg = arg;
}

static const struct server_method *method_find(const struct server *srv, const char *method)
{
    for (size_t i = 0; i < srv->n_methods; i++) {
        const struct server_method *m = &srv->methods[i];
        size_t n = strlen(m->name);

        if (n > 0 && m->name[n - 1] == '/' ? strncmp(method, m->name, n) == 0
                                           : strcmp(method, m->name) == 0)
            return m;
    }
    return NULL;
}

/* Method names longer than any registered one cannot match: they are
 * answered UNIMPLEMENTED without a copy. */
#define METHOD_NAME_MAX 128

static void dispatch(struct request_slot *s)
{
    char method[METHOD_NAME_MAX];
    size_t len = GRPC_SLICE_LENGTH(s->details.method);
    const struct server_method *m = NULL;
    struct call_request req = {
        .call = s->call,
        .tr = s->tr,
        .calls = &s->tr->calls,
        .method = method,
        .deadline = s->details.deadline,
        .md = &s->md,
    };

    method[0] = '\0';
    if (len < sizeof(method)) {
        memcpy(method, GRPC_SLICE_START_PTR(s->details.method), len);
        method[len] = '\0';
        if (memchr(method, '\0', len) == NULL)
            m = method_find(s->tr->srv, method);
    }
    if (m != NULL)
        m->fn(m->arg, &req);
    else
        call_reject(&req, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
}

/* A unary method's call: its handler takes the call and the message. */
static void dispatch_unary(struct request_slot *s)
{
    struct call_request req = {
        .call = s->call,
        .tr = s->tr,
        .calls = &s->tr->calls,
        .method = s->m->name,
        .deadline = s->deadline,
        .md = &s->md,
        .payload_read = true,
        .payload = s->payload,
    };

    s->payload = NULL;
    s->m->fn(s->m->arg, &req);
}

static void slot_done(struct tag *t, bool ok)
{
    struct request_slot *s = container_of(t, struct request_slot, tag);

    if (ok) {
        atomic_fetch_add_explicit(&s->tr->srv->received_calls, 1, memory_order_relaxed);
        if (s->m != NULL)
            dispatch_unary(s);
        else
            dispatch(s);
    }
    grpc_call_details_destroy(&s->details);
    grpc_metadata_array_destroy(&s->md);
    if (s->payload != NULL)
        grpc_byte_buffer_destroy(s->payload);
    s->payload = NULL;
    if (!ok) {
        /* The server is shutting down: this slot is retired. */
        free(s);
        return;
    }
    slot_arm(s);
}

static void slot_arm(struct request_slot *s)
{
    struct transport *tr = s->tr;
    grpc_call_error rc;

    s->call = NULL;
    s->payload = NULL;
    grpc_call_details_init(&s->details);
    grpc_metadata_array_init(&s->md);
    if (s->m != NULL)
        rc = grpc_server_request_registered_call(tr->srv->grpc, s->m->registered, &s->call,
                                                 &s->deadline, &s->md, &s->payload, tr->cq, tr->cq,
                                                 &s->tag);
    else
        rc = grpc_server_request_call(tr->srv->grpc, &s->call, &s->details, &s->md, tr->cq, tr->cq,
                                      &s->tag);
    if (rc != GRPC_CALL_OK) {
        grpc_call_details_destroy(&s->details);
        grpc_metadata_array_destroy(&s->md);
        free(s);
    }
}

/* Arms |n| slots on |tr| for |m| (NULL: generic). */
static void slots_arm(struct transport *tr, const struct server_method *m, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct request_slot *s = calloc(1, sizeof(*s));

        if (s == NULL)
            break;
        s->tag.fn = slot_done;
        s->tr = tr;
        s->m = m;
        slot_arm(s);
    }
}

/* The admin listener's transport thread must stay out of the validator's
 * I/O. gRPC 1.51's epoll1 poller is one epoll set for the whole process:
 * every thread blocked in grpc_completion_queue_next, on any queue, takes
 * turns as the poller and reads whichever socket is ready, then hands the
 * completion to the thread that owns its queue (a futex wake to pass the
 * poller role on, an eventfd kick for the completion). An idle admin
 * thread in that rotation read most validator requests (strace: 188 of 212
 * recvmsg) and cost each of them two or three thread wake-ups, which on a
 * busy machine wait for a CPU (docs/benchmarks.md, "Tail latency"). So
 * while it has no call in flight the admin thread polls its queue without
 * blocking every ADMIN_IDLE_POLL_MS (a non-blocking poll takes the poller
 * role only when no other thread holds it); with calls in flight it waits
 * as any transport thread does, ADMIN_BUSY_WAIT_MS at a time. */
#define ADMIN_IDLE_POLL_MS 2
#define ADMIN_BUSY_WAIT_MS 100

static grpc_event transport_next(struct transport *tr)
{
    const struct timespec nap = {.tv_sec = 0, .tv_nsec = ADMIN_IDLE_POLL_MS * 1000000L};
    grpc_event ev;

    if (tr->srv->role != SERVER_ROLE_ADMIN)
        return grpc_completion_queue_next(tr->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (atomic_load_explicit(&tr->srv->live_calls, memory_order_relaxed) > 0)
        return grpc_completion_queue_next(
            tr->cq,
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                         gpr_time_from_millis(ADMIN_BUSY_WAIT_MS, GPR_TIMESPAN)),
            NULL);
    ev = grpc_completion_queue_next(tr->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT)
        nanosleep(&nap, NULL);
    return ev;
}

static void *transport_main(void *arg)
{
    struct transport *tr = arg;
    char name[16];

    /* Named for top -H and perf: "cv-grpc-0", "cv-admin-0". */
    snprintf(name, sizeof(name), "cv-%s-%u", tr->srv->role == SERVER_ROLE_ADMIN ? "admin" : "grpc",
             tr->index);
    pthread_setname_np(pthread_self(), name);
    certval_rcu_reader_register();
    slots_arm(tr, NULL, REQUEST_SLOTS_PER_TRANSPORT);
    for (size_t i = 0; i < tr->srv->n_methods; i++) {
        if (tr->srv->methods[i].unary)
            slots_arm(tr, &tr->srv->methods[i], REQUEST_SLOTS_PER_TRANSPORT);
    }
    for (;;) {
        grpc_event ev = transport_next(tr);

        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE) {
            struct tag *t = ev.tag;

            t->fn(t, ev.success != 0);
        }
    }
    certval_rcu_reader_unregister();
    return NULL;
}

/* ---- start and drain ---- */

/* The server's channel arguments, which the connections certvald accepts
 * (listen.h) get too. Calls beyond max_concurrent_streams on one
 * connection wait in the client, so gRPC never holds more than that many
 * messages of a connection. */
static void server_channel_args(const struct server *srv, grpc_resource_quota *quota,
                                grpc_channel_args *out, grpc_arg *args)
{
    size_t n = 0;

    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[n++].value.integer = (int)srv->limits.max_message_bytes;
    /* A response is at most max_chains_per_batch verdicts of under 1 KiB. */
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[n++].value.integer = -1;
    /* gRPC 1.51 inflates a compressed message whole and only then checks
     * it against the receive limit (300 KiB of gzip became 300 MiB of
     * RSS). Only identity is accepted: a compressed request is refused
     * before its body is read (docs/api.md). */
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET;
    args[n++].value.integer = 1u << GRPC_COMPRESS_NONE;
    if (srv->limits.max_concurrent_streams > 0) {
        args[n].type = GRPC_ARG_INTEGER;
        args[n].key = GRPC_ARG_MAX_CONCURRENT_STREAMS;
        args[n++].value.integer = (int)srv->limits.max_concurrent_streams;
    }
    /* gRPC reads a registered method's whole message before the call is
     * matched, so admission sees a message only once it is in memory, and
     * max_concurrent_streams bounds that per connection only. Over this
     * quota gRPC cancels streams (ENHANCE_YOUR_CALM: RESOURCE_EXHAUSTED at
     * the client) and sends GOAWAY to idle connections. It reclaims after
     * the fact: a soft bound (docs/configuration.md). */
    if (quota != NULL) {
        args[n].type = GRPC_ARG_POINTER;
        args[n].key = GRPC_ARG_RESOURCE_QUOTA;
        args[n].value.pointer.p = quota;
        args[n++].value.pointer.vtable = grpc_resource_quota_arg_vtable();
    }
    out->num_args = n;
    out->args = args;
}

int server_start(struct server *srv, char **tcp, size_t n_tcp, const char *unix_socket,
                 unsigned transport_threads, unsigned worker_threads, int *out_ports,
                 char *err, size_t errlen)
{
    grpc_arg args[8];
    grpc_channel_args chargs;
    grpc_resource_quota *quota = NULL;
    int rc;

    if (worker_threads > 0) {
        rc = worker_pool_new(&srv->pool, worker_threads, err, errlen);
        if (rc < 0)
            return -1;
    }
    if (srv->limits.max_transport_memory_bytes > 0) {
        quota = grpc_resource_quota_create("certvald");
        grpc_resource_quota_resize(quota, (size_t)srv->limits.max_transport_memory_bytes);
    }
    server_channel_args(srv, quota, &chargs, args);
    srv->grpc = grpc_server_create(&chargs, NULL);
    if (quota != NULL)
        grpc_resource_quota_unref(quota); /* the server holds its own reference */
    for (size_t i = 0; i < srv->n_methods; i++) {
        struct server_method *m = &srv->methods[i];

        if (!m->unary)
            continue;
        m->registered = grpc_server_register_method(srv->grpc, m->name, NULL,
                                                    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (m->registered == NULL) {
            snprintf(err, errlen, "cannot register method %s", m->name);
            return -1;
        }
    }
    srv->n_transports = transport_threads;
    srv->transports = calloc(transport_threads, sizeof(*srv->transports));
    if (srv->transports == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < transport_threads; i++) {
        struct transport *tr = &srv->transports[i];

        tr->srv = srv;
        tr->index = i;
        call_list_init(&tr->calls, &srv->live_calls);
        tr->cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(srv->grpc, tr->cq, NULL);
        if (srv->pool != NULL && pool_submitter_new(srv->pool, &tr->submitter) < 0) {
            snprintf(err, errlen, "cannot create a submitting io_uring");
            return -1;
        }
    }
    if (listen_set_open(&srv->listeners, tcp, n_tcp, unix_socket, out_ports, err, errlen) < 0)
        return -1;
    grpc_server_start(srv->grpc);
    for (unsigned i = 0; i < transport_threads; i++) {
        struct transport *tr = &srv->transports[i];

        if (pthread_create(&tr->thread, NULL, transport_main, tr) != 0) {
            snprintf(err, errlen, "pthread_create failed");
            return -1;
        }
        tr->started = true;
    }
    return listen_set_start(srv->listeners, srv->grpc, err, errlen);
}

/* Waits for the drain's shutdown tag until |until_ns| (CLOCK_MONOTONIC). */
static bool drain_wait_until(struct server *srv, uint64_t until_ns)
{
    uint64_t now = server_mono_ns();
    gpr_timespec t = gpr_time_add(
        gpr_now(GPR_CLOCK_MONOTONIC),
        gpr_time_from_millis(until_ns > now ? (int64_t)((until_ns - now) / 1000000u) : 0,
                             GPR_TIMESPAN));

    return grpc_completion_queue_pluck(srv->shutdown_cq, srv, t, NULL).type == GRPC_OP_COMPLETE;
}

#define GRACE_OVER_MSG "server shutting down: drain grace over, retry"

/* Ends every live call with UNAVAILABLE and |msg|, which clients retry on
 * another replica (CANCELLED, which grpc_server_cancel_all_calls gives, is
 * not retried by default). Queued work of these calls is dropped by the
 * workers once |abandon| is set. grpc_call_cancel_with_status is
 * thread-safe; the list lock keeps each call alive while it is used here. */
static void end_calls_unavailable(struct server *srv, const char *msg)
{
    for (unsigned i = 0; i < srv->n_transports; i++)
        call_list_cancel_all(&srv->transports[i].calls, GRPC_STATUS_UNAVAILABLE, msg);
}

/* Waits for the shutdown tag, which gRPC delivers once every call is done
 * and every client has closed its connection after the GOAWAY. Idle
 * clients may keep a connection open for a while; once no call has been in
 * flight for DRAIN_QUIET_MS nothing can be half-answered any more, so the
 * connections are cut then rather than at the end of the grace period.
 * DRAIN_QUIET_MS is a second, not less: a stream ended with OK while its
 * client was still writing must have its trailers read by that client
 * before the socket goes, and on a loaded machine 250 ms was seen to be too
 * short (the client got UNAVAILABLE "Broken pipe" instead of OK).
 * Calls still open when the grace period (counted from the drain's start)
 * is over end with UNAVAILABLE; DRAIN_ABANDON_MS later whatever is left is
 * cancelled, so the drain ends by grace + DRAIN_ABANDON_MS. */
#define DRAIN_POLL_MS 50
#define DRAIN_QUIET_MS 1000
#define DRAIN_ABANDON_MS 500
static void wait_calls_answered(struct server *srv, unsigned grace_seconds)
{
    uint64_t deadline = srv->drain_started_ns + (uint64_t)grace_seconds * 1000000000u;
    uint64_t quiet_since = server_mono_ns(); /* the shutdown's start, not the drain's */

    for (;;) {
        uint64_t now = server_mono_ns(), poll = now + DRAIN_POLL_MS * 1000000u;

        if (drain_wait_until(srv, poll < deadline ? poll : deadline))
            return;
        long live = atomic_load(&srv->live_calls);

        now = server_mono_ns();
        if (live != 0)
            quiet_since = now;
        /* Quiet for a while, or the grace is over with nothing left open. */
        if (now - quiet_since >= DRAIN_QUIET_MS * 1000000u || (now >= deadline && live == 0)) {
            log_info("drain: every call answered; closing idle connections");
            break;
        }
        if (now >= deadline) {
            log_warn("drain grace of %u s over with %ld calls open: ending them with UNAVAILABLE",
                     grace_seconds, live);
            atomic_store(&srv->abandon, true);
            end_calls_unavailable(srv, GRACE_OVER_MSG);
            if (drain_wait_until(srv, server_mono_ns() + DRAIN_ABANDON_MS * 1000000u))
                return;
            break;
        }
    }
    atomic_store(&srv->abandon, true);
    grpc_server_cancel_all_calls(srv->grpc);
    grpc_completion_queue_pluck(srv->shutdown_cq, srv, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
}

void server_drain_announce(struct server *srv)
{
    if (atomic_exchange(&srv->draining, true))
        return;
    srv->drain_started_ns = server_mono_ns();
    if (srv->on_drain != NULL)
        srv->on_drain(srv->on_drain_arg, false);
}

void server_drain_begin(struct server *srv)
{
    bool closing = srv->grpc != NULL && srv->shutdown_cq == NULL;

    if (!atomic_exchange(&srv->draining, true))
        srv->drain_started_ns = server_mono_ns();
    if (srv->on_drain != NULL)
        srv->on_drain(srv->on_drain_arg, closing);
    if (!closing)
        return;
    srv->shutdown_cq = grpc_completion_queue_create_for_pluck(NULL);
    /* Stop accepting; calls in flight go on and are answered. */
    listen_set_close(srv->listeners);
    grpc_server_shutdown_and_notify(srv->grpc, srv->shutdown_cq, srv);
}

/* After the last statuses of a drain, the time they get to reach their
 * clients before the connections are cut under them; and how often the
 * cut looks whether admitted work is answered. */
#define DRAIN_CUT_FLUSH_MS 50
#define DRAIN_CUT_POLL_MS 5

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void server_drain_cut(struct server *srv, unsigned grace_seconds)
{
    uint64_t end = srv->drain_started_ns + (uint64_t)grace_seconds * 1000000000u;
    bool over;
    size_t n;

    if (srv->grpc == NULL || srv->shutdown_cq != NULL)
        return;
    /* Admitted work is answered, or the grace ends. New calls meanwhile
     * are refused by certvald itself (UNAVAILABLE "draining: ..."). */
    while (atomic_load_explicit(&srv->inflight_chains, memory_order_relaxed) > 0 &&
           server_mono_ns() < end)
        sleep_ms(DRAIN_CUT_POLL_MS);
    over = atomic_load_explicit(&srv->inflight_chains, memory_order_relaxed) > 0;
    if (over) {
        log_warn("drain grace of %u s over with %ld chains not answered: ending their calls "
                 "with UNAVAILABLE",
                 grace_seconds, atomic_load(&srv->inflight_chains));
        atomic_store(&srv->abandon, true);
    }
    /* Whatever is still open (a ValidateStream, a health watch, a call
     * over the grace) is told why before its connection goes. */
    end_calls_unavailable(srv, over ? GRACE_OVER_MSG
                                    : "server shutting down: retry on another replica");
    sleep_ms(DRAIN_CUT_FLUSH_MS);
    n = listen_set_cut(srv->listeners);
    log_info("drain: %zu connections closed, %llu ms after SIGTERM", n,
             (unsigned long long)((server_mono_ns() - srv->drain_started_ns) / 1000000u));
}

void server_drain_and_stop(struct server *srv, unsigned grace_seconds)
{
    server_drain_begin(srv);
    if (srv->grpc != NULL) {
        if (srv->role == SERVER_ROLE_VALIDATOR)
            log_info("draining: %ld calls in flight, grace %u s", atomic_load(&srv->live_calls),
                     grace_seconds);
        else
            log_info("draining the admin listener: %ld calls in flight",
                     atomic_load(&srv->live_calls));
        wait_calls_answered(srv, grace_seconds);
        /* Calls that reached gRPC but never a request slot are not counted:
         * on the validator listener they end with their connection, cut
         * before the shutdown (server_drain_cut). */
        log_info("drain done: %lu calls received since start",
                 atomic_load_explicit(&srv->received_calls, memory_order_relaxed));
    }
    listen_set_free(srv->listeners);
    srv->listeners = NULL;
    /* Every call is answered or ended; the workers drop what they hold. */
    worker_pool_free(srv->pool);
    srv->pool = NULL;
    if (srv->grpc != NULL)
        grpc_server_destroy(srv->grpc);
    srv->grpc = NULL;
    for (unsigned i = 0; i < srv->n_transports; i++) {
        struct transport *tr = &srv->transports[i];

        if (tr->cq != NULL)
            grpc_completion_queue_shutdown(tr->cq);
        if (tr->started)
            pthread_join(tr->thread, NULL);
        if (tr->cq != NULL)
            grpc_completion_queue_destroy(tr->cq);
        pool_submitter_free(tr->submitter);
        call_list_destroy(&tr->calls);
    }
    free(srv->transports);
    srv->transports = NULL;
    if (srv->shutdown_cq != NULL) {
        grpc_completion_queue_shutdown(srv->shutdown_cq);
        grpc_completion_queue_destroy(srv->shutdown_cq);
        srv->shutdown_cq = NULL;
    }
}

void server_collect(struct mbuf *b, void *arg)
{
    struct server *srv = arg;

    mbuf_printf(b, "# HELP certval_calls_in_flight Calls accepted and not finished.\n"
                   "# TYPE certval_calls_in_flight gauge\ncertval_calls_in_flight %ld\n",
                atomic_load(&srv->live_calls));
    mbuf_printf(b,
                "# HELP certval_calls_received_total Calls handed to certval by gRPC.\n"
                "# TYPE certval_calls_received_total counter\ncertval_calls_received_total %lu\n",
                atomic_load_explicit(&srv->received_calls, memory_order_relaxed));
    mbuf_printf(b,
                "# HELP certval_inflight_request_bytes Request bytes admitted and not yet freed "
                "(a cancelled call's queued request is freed at once).\n"
                "# TYPE certval_inflight_request_bytes gauge\ncertval_inflight_request_bytes %ld\n"
                "# HELP certval_inflight_chains Chains admitted and not yet answered or freed.\n"
                "# TYPE certval_inflight_chains gauge\ncertval_inflight_chains %ld\n",
                atomic_load_explicit(&srv->inflight_bytes, memory_order_relaxed),
                atomic_load_explicit(&srv->inflight_chains, memory_order_relaxed));
    if (srv->pool != NULL)
        mbuf_printf(b, "# HELP certval_worker_queue_depth Work items queued or running on "
                       "the workers.\n# TYPE certval_worker_queue_depth gauge\n"
                       "certval_worker_queue_depth %llu\n",
                    (unsigned long long)worker_pool_queued(srv->pool));
}
