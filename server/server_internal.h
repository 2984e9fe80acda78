/* Types shared by the gRPC parts of certvald: server.c (listeners,
 * transport threads, dispatch, drain), service.c (certval.v1.Validator) and
 * health.c (grpc.health.v1.Health).
 *
 * Threads:
 *  - transport threads: one per completion queue; they own the calls that
 *    arrive on their queue and run every completion tag of those calls.
 *  - workers (workers.c): validate; the last slice of a batch starts the
 *    response's send batch with grpc_call_start_batch (thread-safe), whose
 *    completion comes back to the owning transport thread.
 *  - main thread: signals, reload, drain. */
#ifndef CERTVAL_SERVER_INTERNAL_H
#define CERTVAL_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "validator.h"
#include "workers.h"

struct crl_cache;
struct server;

/* Every operation batch started on a call carries a tag; the transport
 * thread calls tag->fn with the batch's success flag. */
struct tag {
    void (*fn)(struct tag *t, bool ok);
};

struct call_base;

struct transport {
    struct server *srv;
    unsigned index;
    grpc_completion_queue *cq;
    struct pool_submitter *submitter;
    pthread_t thread;
    bool started;
    /* Every live call of this transport, so a drain can end each one with
     * UNAVAILABLE; |calls_lock| protects the list (taken on call start, on
     * call end, and by the drain). */
    pthread_mutex_t calls_lock;
    struct call_base *calls;
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
};

enum server_role {
    SERVER_ROLE_VALIDATOR = 0, /* certval.v1.Validator + health */
    SERVER_ROLE_ADMIN = 1,     /* certval.v1.Admin + health, token required */
};

struct server {
    enum server_role role;
    grpc_server *grpc;
    struct transport *transports;
    unsigned n_transports;
    struct worker_pool *pool;
    struct crl_cache *crls;        /* owned by main; also in |rev| */
    struct deny_list *deny;        /* owned by main; also in |rev| */
    struct verdict_cache *vcache;  /* owned by main; also in |rev|; NULL = off */
    struct revocation_sources rev; /* what validation reads */
    struct server_limits limits;
    _Atomic bool draining;
    /* Set when the drain grace is over: workers drop queued work and its
     * calls end with UNAVAILABLE. */
    _Atomic bool abandon;
    _Atomic long live_calls; /* calls accepted and not yet destroyed */
    /* Admission (service.c): written by transport threads on admission and
     * by whichever thread frees a batch; relaxed atomics. */
    _Atomic long inflight_chains;
    _Atomic long inflight_bytes;
    /* Recent validation cost of one chain on a worker, in ns (a moving
     * average written by the workers), to tell whether a call's deadline
     * leaves time for the work queued ahead of it. */
    _Atomic uint64_t chain_cost_ns;
    grpc_completion_queue *shutdown_cq; /* drain in progress; NULL before */
    uint64_t drain_started_ns;          /* CLOCK_MONOTONIC */
};

/* A call's common part. Reference-counted: one reference per outstanding
 * operation batch, plus one held by the handler between batches. */
struct call_base {
    grpc_call *call;
    struct transport *tr;
    _Atomic int refs;
    struct tag close_tag; /* RECV_CLOSE_ON_SERVER */
    int cancelled;        /* set when close_tag completes */
    bool close_done;
    bool sent_initial_md; /* SEND_INITIAL_METADATA has been started */
    void (*destroy)(struct call_base *cb);
    /* Optional: called on the transport thread when the call ends from the
     * client's side or the network (before the close batch's reference is
     * dropped). */
    void (*on_close)(struct call_base *cb);
    struct call_base *next, *prev; /* the transport's live calls, under calls_lock */
};

/* call_base_init sets up |cb| for |call| (reference count 1) and starts the
 * RECV_CLOSE_ON_SERVER batch. Returns false if gRPC refused it. */
bool call_base_init(struct call_base *cb, grpc_call *call, struct transport *tr,
                    void (*destroy)(struct call_base *cb));

void call_ref(struct call_base *cb);
void call_unref(struct call_base *cb);

/* call_send_status finishes |cb| with |code| and |msg| (no message body);
 * the batch's completion runs |t|, which must call call_unref. */
grpc_call_error call_send_status(struct call_base *cb, struct tag *t, grpc_status_code code,
                                 const char *msg);

/* Method handlers: take over a freshly accepted call. |deadline| is the
 * call's deadline from its details (gRPC's clock; infinite = none). */
void service_validate_start(struct transport *tr, grpc_call *call, bool streaming,
                            gpr_timespec deadline);
void health_check_start(struct transport *tr, grpc_call *call, bool watch);
/* admin.c: |method| is the full method name; |md| the request metadata
 * (read before this returns). */
void admin_call_start(struct transport *tr, grpc_call *call, const char *method,
                      const grpc_metadata_array *md);
/* admin_configure copies the token file path, the state folder (NULL = none) and
 * the configuration path Reload uses. Not thread-safe: call before serving. */
void admin_configure(const char *token_file, const char *state_dir, const char *config_path);

/* Health state ("" and "certval.v1.Validator" share it). */
void health_set_serving(bool serving);
bool health_is_serving(void);
/* health_finish_watchers ends every Watch stream (drain). */
void health_finish_watchers(void);

/* server_start starts |srv| (role set by the caller). worker_threads 0 =
 * no worker pool: handlers run on the transport threads (admin). */
int server_start(struct server *srv, char **tcp, size_t n_tcp, const char *unix_socket,
                 unsigned transport_threads, unsigned worker_threads, int *out_ports,
                 char *err, size_t errlen);
/* server_drain_begin turns health NOT_SERVING (validator role), stops
 * accepting calls and starts the drain clock; idempotent. Main thread. */
void server_drain_begin(struct server *srv);
/* server_drain_and_stop begins the drain if needed, waits until every call
 * is answered or |grace_seconds| from the drain's start are over, ends what
 * is left with UNAVAILABLE, and stops the threads. Main thread. */
void server_drain_and_stop(struct server *srv, unsigned grace_seconds);

#endif
