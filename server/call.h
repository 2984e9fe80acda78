/* The call unit: what every gRPC method handler of certvald shares with the
 * server that accepts its calls (server.c). A handler is registered with
 * server_register_method (server.h) and gets each new call as a
 * struct call_request; it embeds a struct call_base in its own call state
 * and drives the call with operation batches whose completion tags run on
 * the transport thread the call arrived on.
 *
 * call.c knows nothing of the server, the workers or any method: the
 * server owns the call lists and the transport threads, the handlers own
 * their calls. Thread-safety is stated per function.
 *
 * Conventions: call_base_init returns bool (false: gRPC refused the close
 * batch, the caller drops its reference); batch starts return
 * grpc_call_error as gRPC does; a call's outcome is its gRPC status. */
#ifndef CERTVAL_CALL_H
#define CERTVAL_CALL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <grpc/grpc.h>

#include "container_of.h"

/* Every operation batch started on a call carries a tag; the transport
 * thread calls tag->fn with the batch's success flag. */
struct tag {
    void (*fn)(struct tag *t, bool ok);
};

struct call_base;
struct transport; /* server.h; call.c never looks inside */

/* The live calls of one transport thread, so that a drain can end each one
 * (call_list_cancel_all). |lock| protects |head|: taken on call start, on
 * call end and by the drain. |live|, if not NULL, counts the calls of
 * every list that shares it (the server's calls in flight). */
struct call_list {
    pthread_mutex_t lock;
    struct call_base *head;
    _Atomic long *live;
};

/* call_list_init sets up an empty |l| that counts into |live| (NULL =
 * no count). call_list_destroy frees its lock; the list must be empty. */
void call_list_init(struct call_list *l, _Atomic long *live);
void call_list_destroy(struct call_list *l);

/* call_list_cancel_all ends every call of |l| with |code| and |msg|
 * (grpc_call_cancel_with_status). Any thread; the list lock keeps each
 * call alive while it is cancelled. */
void call_list_cancel_all(struct call_list *l, grpc_status_code code, const char *msg);

/* One accepted call, as the server hands it to a method's handler. The
 * handler owns |call| (it must end up in a call_base, or be cancelled and
 * unreferenced). |method| and |md| are valid only until the handler
 * returns. */
struct call_request {
    grpc_call *call;
    struct transport *tr;          /* the transport thread it arrived on */
    struct call_list *calls;       /* that thread's live calls */
    const char *method;            /* full method name, NUL-terminated */
    gpr_timespec deadline;         /* gRPC's clock; infinite = none */
    const grpc_metadata_array *md; /* the request's metadata */
    /* A method registered with server_register_unary_method: true, and
     * |payload| is its request message (NULL: the client sent none), which
     * the handler takes over. Otherwise false and NULL: the handler reads
     * the message itself. */
    bool payload_read;
    grpc_byte_buffer *payload;
};

/* A method handler: takes over |req| on the transport thread. |arg| is the
 * one given at registration. */
typedef void (*call_handler_fn)(void *arg, const struct call_request *req);

/* A call's common part. Reference-counted: one reference per outstanding
 * operation batch, plus one held by the handler between batches. */
struct call_base {
    grpc_call *call;
    struct transport *tr; /* for the handler: the server's per-thread state */
    struct call_list *list;
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
    struct call_base *next, *prev; /* the list's live calls, under list->lock */
};

/* call_base_init sets up |cb| for |req|'s call (reference count 1), lists
 * it and starts the RECV_CLOSE_ON_SERVER batch. Returns false if gRPC
 * refused it; the caller then drops its reference with call_unref. */
bool call_base_init(struct call_base *cb, const struct call_request *req,
                    void (*destroy)(struct call_base *cb));

/* call_ref / call_unref: the last call_unref unlists the call, releases
 * the gRPC call and runs |destroy|. Any thread. */
void call_ref(struct call_base *cb);
void call_unref(struct call_base *cb);

/* call_send_status finishes |cb| with |code| and |msg| (no message body);
 * the batch's completion runs |t|, which must call call_unref. */
grpc_call_error call_send_status(struct call_base *cb, struct tag *t, grpc_status_code code,
                                 const char *msg);

/* call_reject answers |req| with |code| and |msg| only (unknown method). */
void call_reject(const struct call_request *req, grpc_status_code code, const char *msg);

#endif
