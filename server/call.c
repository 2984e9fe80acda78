/* The call unit (call.h): reference counting, the live-call lists and the
 * status-only answers every method handler shares. */
#include "call.h"

#include <stdlib.h>
#include <string.h>

/* A call answered with a status only (unknown method). */
struct reject_call {
    struct call_base base;
    struct tag status_tag;
};

void call_list_init(struct call_list *l, _Atomic long *live)
{
    pthread_mutex_init(&l->lock, NULL);
    l->head = NULL;
    l->live = live;
}

void call_list_destroy(struct call_list *l)
{
    pthread_mutex_destroy(&l->lock);
}

void call_list_cancel_all(struct call_list *l, grpc_status_code code, const char *msg)
{
    pthread_mutex_lock(&l->lock);
    for (struct call_base *cb = l->head; cb != NULL; cb = cb->next)
        grpc_call_cancel_with_status(cb->call, code, msg, NULL);
    pthread_mutex_unlock(&l->lock);
}

static void call_close_done(struct tag *t, bool ok)
{
    struct call_base *cb = container_of(t, struct call_base, close_tag);

    (void)ok;
    cb->close_done = true;
    if (cb->on_close != NULL)
        cb->on_close(cb);
    call_unref(cb);
}

bool call_base_init(struct call_base *cb, const struct call_request *req,
                    void (*destroy)(struct call_base *cb))
{
    struct call_list *l = req->calls;
    grpc_op op;

    cb->call = req->call;
    cb->tr = req->tr;
    cb->list = l;
    cb->destroy = destroy;
    cb->close_tag.fn = call_close_done;
    atomic_store(&cb->refs, 2); /* the handler's and the close batch's */
    if (l->live != NULL)
        atomic_fetch_add(l->live, 1);
    pthread_mutex_lock(&l->lock);
    cb->prev = NULL;
    cb->next = l->head;
    if (l->head != NULL)
        l->head->prev = cb;
    l->head = cb;
    pthread_mutex_unlock(&l->lock);
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &cb->cancelled;
    if (grpc_call_start_batch(cb->call, &op, 1, &cb->close_tag, NULL) != GRPC_CALL_OK) {
        atomic_store(&cb->refs, 1);
        return false;
    }
    return true;
}

void call_ref(struct call_base *cb)
{
    atomic_fetch_add_explicit(&cb->refs, 1, memory_order_relaxed);
}

void call_unref(struct call_base *cb)
{
    if (atomic_fetch_sub_explicit(&cb->refs, 1, memory_order_acq_rel) == 1) {
        struct call_list *l = cb->list;

        /* Unlinked first: the drain may be cancelling listed calls. */
        pthread_mutex_lock(&l->lock);
        if (cb->prev != NULL)
            cb->prev->next = cb->next;
        else
            l->head = cb->next;
        if (cb->next != NULL)
            cb->next->prev = cb->prev;
        pthread_mutex_unlock(&l->lock);
        grpc_call_unref(cb->call);
        cb->call = NULL;
        cb->destroy(cb);
        if (l->live != NULL)
            atomic_fetch_sub(l->live, 1);
    }
}

grpc_call_error call_send_status(struct call_base *cb, struct tag *t, grpc_status_code code,
                                 const char *msg)
{
    grpc_slice details = grpc_slice_from_copied_string(msg);
    grpc_op ops[2];
    size_t nops = 0;
    grpc_call_error rc;

    memset(ops, 0, sizeof(ops));
    if (!cb->sent_initial_md) {
        /* gRPC 1.51 core did not deliver a status-only (trailers-only)
         * answer to a call whose request was never read: the client waited
         * for its deadline. Sending initial metadata with it does. */
        ops[nops++].op = GRPC_OP_SEND_INITIAL_METADATA;
        cb->sent_initial_md = true;
    }
    ops[nops].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[nops].data.send_status_from_server.status = code;
    ops[nops].data.send_status_from_server.status_details = &details;
    nops++;
    rc = grpc_call_start_batch(cb->call, ops, nops, t, NULL);
    /* gRPC copies the details slice when the batch starts. */
    grpc_slice_unref(details);
    return rc;
}

static void reject_destroy(struct call_base *cb)
{
    free(container_of(cb, struct reject_call, base));
}

static void reject_status_done(struct tag *t, bool ok)
{
    struct reject_call *rc = container_of(t, struct reject_call, status_tag);

    (void)ok;
    call_unref(&rc->base);
}

void call_reject(const struct call_request *req, grpc_status_code code, const char *msg)
{
    struct reject_call *rc = calloc(1, sizeof(*rc));

    if (rc == NULL) {
        grpc_call_cancel_with_status(req->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory",
                                     NULL);
        grpc_call_unref(req->call);
        return;
    }
    rc->status_tag.fn = reject_status_done;
    if (!call_base_init(&rc->base, req, reject_destroy)) {
        call_unref(&rc->base);
        return;
    }
    if (call_send_status(&rc->base, &rc->status_tag, code, msg) != GRPC_CALL_OK)
        call_unref(&rc->base);
}
