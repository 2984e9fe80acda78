/* The gRPC server of certvald (server.c): listeners, transport threads,
 * method dispatch and drain. Method handlers are registered by name
 * (server_register_method) and get each call through the call unit
 * (call.h); the server knows nothing else of them.
 *
 * Threads:
 *  - transport threads: one per completion queue; they own the calls that
 *    arrive on their queue and run every completion tag of those calls.
 *    An idle admin listener's thread polls its queue without blocking, so
 *    that it never reads the validator's sockets (server.c, transport_next).
 *  - workers (workers.c): validate; the last slice of a batch starts the
 *    response's send batch with grpc_call_start_batch (thread-safe), whose
 *    completion comes back to the owning transport thread.
 *  - main thread: start, registration, signals, reload, drain.
 *
 * Conventions: server_start returns 0 or -1 with a message in |err|. */
#ifndef CERTVAL_SERVER_H
#define CERTVAL_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <grpc/grpc.h>

#include "call.h"
#include "validator.h"
#include "workers.h"

struct crl_cache;
struct listen_set;
struct server;

/* One transport thread. Handlers read |srv| and |submitter| (through
 * call_base.tr); the rest is server.c's. */
struct transport {
    struct server *srv;
    struct pool_submitter *submitter; /* hands work to the workers; NULL = no pool */
    unsigned index;
    grpc_completion_queue *cq;
    pthread_t thread;
    bool started;
    /* Every live call of this transport, so a drain can end each one with
     * UNAVAILABLE. */
    struct call_list calls;
};

/* Bounds of one listener (docs/configuration.md, `limits`). The admission
 * bounds are resolved (no 0 = derived) before server_start. */
struct server_limits {
    uint32_t max_chains_per_batch;
    uint32_t max_message_bytes;
    uint32_t split_min_chains;
    uint32_t max_queued_chains_per_worker; /* admission: the least-loaded worker's queue */
    uint32_t max_inflight_chains;          /* admission: chains admitted, not yet answered */
    uint32_t max_inflight_request_bytes;   /* admission: request bytes admitted, not yet freed */
    uint32_t max_concurrent_streams;       /* per connection (HTTP/2 SETTINGS) */
    uint32_t max_queue_delay_ms;           /* admission: estimated wait on that worker */
    uint32_t max_transport_memory_bytes;   /* gRPC resource quota; 0 = none */
};

enum server_role {
    SERVER_ROLE_VALIDATOR = 0, /* certval.v1.Validator + health */
    SERVER_ROLE_ADMIN = 1,     /* certval.v1.Admin + health, token required */
};

/* A registered method: |name| is a full method name, or a service prefix
 * ending in '/' ("/certval.v1.Admin/") that takes every method under it. */
struct server_method {
    const char *name;
    call_handler_fn fn;
    void *arg;
    /* server_register_unary_method: gRPC reads the request message before
     * the call is handed over; |registered| is gRPC's handle of it. */
    bool unary;
    void *registered;
};

#define SERVER_MAX_METHODS 16

/* A drain hook: called on the main thread by every server_drain_begin;
 * |closing| is true the one time the listener stops accepting calls. */
typedef void (*server_drain_fn)(void *arg, bool closing);

struct server {
    enum server_role role;
    grpc_server *grpc;
    struct listen_set *listeners; /* certvald's own listening sockets (listen.h) */
    struct transport *transports;
    unsigned n_transports;
    struct worker_pool *pool;
    struct crl_cache *crls;        /* owned by main; also in |rev| */
    struct deny_list *deny;        /* owned by main; also in |rev| */
    struct verdict_cache *vcache;  /* owned by main; also in |rev|; NULL = off */
    struct revocation_sources rev; /* what validation reads */
    struct server_limits limits;
    _Atomic bool draining;
    /* Draining while gRPC still accepts (server_drain_announce, before
     * server_drain_begin): a Validate call whose work is not expected to
     * end by this time (CLOCK_MONOTONIC ns) is answered UNAVAILABLE
     * (service.c). 0 = no such bound. */
    _Atomic uint64_t drain_work_until_ns;
    /* Set when the drain grace is over: workers drop queued work and its
     * calls end with UNAVAILABLE. */
    _Atomic bool abandon;
    _Atomic long live_calls; /* calls accepted and not yet destroyed */
    /* Calls matched to a request slot since start (any method); relaxed. */
    _Atomic unsigned long received_calls;
    /* Admission (service.c): written by transport threads on admission and
     * by whichever thread frees a batch; relaxed atomics. */
    _Atomic long inflight_chains;
    _Atomic long inflight_bytes;
    /* Recent validation cost of one chain on a worker, in ns (a moving
     * average written by the workers), to tell whether a call's deadline
     * leaves time for the work queued ahead of it. */
    _Atomic uint64_t chain_cost_ns;
    struct server_method methods[SERVER_MAX_METHODS]; /* set before server_start */
    size_t n_methods;
    server_drain_fn on_drain; /* NULL = none */
    void *on_drain_arg;
    grpc_completion_queue *shutdown_cq; /* drain in progress; NULL before */
    uint64_t drain_started_ns;          /* CLOCK_MONOTONIC */
};

/* server_register_method makes |srv| hand calls of |name| (see struct
 * server_method; the string must outlive the server) to |fn| with |arg|.
 * Any other method is answered UNIMPLEMENTED. Returns 0, or -1 when
 * SERVER_MAX_METHODS are registered. Not thread-safe: before server_start. */
int server_register_method(struct server *srv, const char *name, call_handler_fn fn, void *arg);

/* server_register_unary_method is server_register_method for a method
 * with exactly one request message and a full |name| (no prefix): gRPC
 * reads the message before the call is matched, so the handler gets it
 * in call_request.payload and the call costs its transport thread one
 * completion less. Returns 0, or -1 when SERVER_MAX_METHODS are registered
 * or |name| is a prefix. Not thread-safe: before server_start. */
int server_register_unary_method(struct server *srv, const char *name, call_handler_fn fn,
                                 void *arg);

/* server_on_drain sets |srv|'s drain hook (one; NULL = none). Not
 * thread-safe: before server_start. */
void server_on_drain(struct server *srv, server_drain_fn fn, void *arg);

/* server_collect is a metrics collector (metrics.h) for |arg|, a struct
 * server: calls in flight and the worker queue. Any thread. */
struct mbuf;
void server_collect(struct mbuf *b, void *arg);

/* server_mono_ns: CLOCK_MONOTONIC in nanoseconds, the clock of every
 * deadline and drain time in server/. Any thread. */
static inline uint64_t server_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* server_start starts |srv| (role set by the caller). worker_threads 0 =
 * no worker pool: handlers run on the transport threads (admin). */
int server_start(struct server *srv, char **tcp, size_t n_tcp, const char *unix_socket,
                 unsigned transport_threads, unsigned worker_threads, int *out_ports,
                 char *err, size_t errlen);
/* server_drain_announce turns health NOT_SERVING (validator role), marks
 * |srv| draining and starts the drain clock, but keeps gRPC accepting
 * calls, so that certvald answers each one itself (service.h,
 * service_drain_until_quiet); idempotent. Main thread. */
void server_drain_announce(struct server *srv);
/* server_drain_begin announces the drain if that was not done yet (the
 * clock keeps its start), stops accepting connections and calls (gRPC's
 * shutdown and GOAWAY); idempotent. Main thread. */
void server_drain_begin(struct server *srv);
/* server_drain_cut ends the part of a drain in which certvald answers
 * every call itself (service_drain_until_quiet), without ever starting
 * gRPC's shutdown while a connection is open: gRPC 1.51 ends with
 * CANCELLED every call that reaches that shutdown, and a call can be on
 * its way at any moment (an open-loop client does not wait for answers).
 * It waits until the chains admitted are answered or |grace_seconds| from
 * the drain's start are over (calls coming meanwhile are refused
 * UNAVAILABLE by certvald), ends every call still open with UNAVAILABLE,
 * gives those statuses DRAIN_CUT_FLUSH_MS to go out, then stops accepting
 * and closes every connection at the socket (listen_set_cut), without a
 * GOAWAY: a call in flight then ends at its client with UNAVAILABLE (the
 * connection went), and one sent after finds no listener, UNAVAILABLE
 * too. Then server_drain_begin. Nothing once the shutdown has begun. Main
 * thread. */
void server_drain_cut(struct server *srv, unsigned grace_seconds);
/* server_drain_and_stop begins the drain if needed, waits until every call
 * is answered or |grace_seconds| from the drain's start are over, ends what
 * is left with UNAVAILABLE, and stops the threads. Main thread. */
void server_drain_and_stop(struct server *srv, unsigned grace_seconds);

#endif
