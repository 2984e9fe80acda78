/* etcd v3 client (etcd.h): a watch, one bidirectional stream owned by one
 * thread, with its own completion queue. */
#include "etcd_internal.h"

#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>

/* ---- Watch ---- */

/* The outstanding operations of a watch call, each with its own tag. */
enum { W_SEND, W_RECV, W_STATUS, W_NTAGS };

struct etcd_watch {
    struct etcd_client *client;
    grpc_completion_queue *cq;
    grpc_call *call;
    char tags[W_NTAGS]; /* their addresses are the tags */
    bool pending[W_NTAGS];
    bool got_initial_md, ended;
    grpc_byte_buffer *send_buf, *recv_buf;
    grpc_metadata_array init_md, trail_md;
    grpc_metadata token_md;
    bool has_token;
    grpc_status_code status;
    grpc_slice details;
    int64_t watch_id;
};

void etcd_watch_batch_clear(struct etcd_watch_batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->v[i].kv.key);
        free(b->v[i].kv.value);
        free(b->v[i].prev.key);
        free(b->v[i].prev.value);
    }
    free(b->v);
    memset(b, 0, sizeof(*b));
}

static int watch_send(struct etcd_watch *w, const Etcdserverpb__WatchRequest *req, bool first)
{
    size_t len = etcdserverpb__watch_request__get_packed_size(req);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    grpc_slice s;
    grpc_op ops[2];
    size_t n = 0;

    if (buf == NULL)
        return -1;
    etcdserverpb__watch_request__pack(req, buf);
    s = grpc_slice_new(buf, len, free);
    w->send_buf = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    memset(ops, 0, sizeof(ops));
    if (first) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        if (w->has_token) {
            ops[n].data.send_initial_metadata.count = 1;
            ops[n].data.send_initial_metadata.metadata = &w->token_md;
        }
        n++;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = w->send_buf;
    n++;
    if (grpc_call_start_batch(w->call, ops, n, &w->tags[W_SEND], NULL) != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(w->send_buf);
        w->send_buf = NULL;
        return -1;
    }
    w->pending[W_SEND] = true;
    return 0;
}

static int watch_start_recv(struct etcd_watch *w)
{
    grpc_op ops[2];
    size_t n = 0;

    memset(ops, 0, sizeof(ops));
    if (!w->got_initial_md) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n].data.recv_initial_metadata.recv_initial_metadata = &w->init_md;
        n++;
        w->got_initial_md = true;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n].data.recv_message.recv_message = &w->recv_buf;
    n++;
    if (grpc_call_start_batch(w->call, ops, n, &w->tags[W_RECV], NULL) != GRPC_CALL_OK)
        return -1;
    w->pending[W_RECV] = true;
    return 0;
}

static void watch_status_err(struct etcd_watch *w, char *err, size_t errlen)
{
    char *d = grpc_slice_to_c_string(w->details);

    etcd_set_err(err, errlen, "etcd watch ended: %s%s", d[0] ? d : "stream closed", "");
    gpr_free(d);
}

/* watch_wait waits for one completion until |deadline|: the index of the
 * tag that completed (its pending flag cleared), or -1 on timeout. */
static int watch_wait(struct etcd_watch *w, gpr_timespec deadline, bool *ok)
{
    grpc_event ev = grpc_completion_queue_next(w->cq, deadline, NULL);

    if (ev.type != GRPC_OP_COMPLETE)
        return -1;
    for (int i = 0; i < W_NTAGS; i++) {
        if (ev.tag == &w->tags[i]) {
            w->pending[i] = false;
            *ok = ev.success != 0;
            if (i == W_SEND && w->send_buf != NULL) {
                grpc_byte_buffer_destroy(w->send_buf);
                w->send_buf = NULL;
            }
            if (i == W_STATUS)
                w->ended = true;
            return i;
        }
    }
    return -1;
}

static int event_copy(struct etcd_event *out, const Mvccpb__Event *e)
{
    memset(out, 0, sizeof(*out));
    out->is_delete = e->type == MVCCPB__EVENT__EVENT_TYPE__DELETE;
    if (etcd_kv_copy(&out->kv, e->kv) < 0 || etcd_kv_copy(&out->prev, e->prev_kv) < 0) {
        free(out->kv.key);
        free(out->kv.value);
        return -1;
    }
    return 0;
}

/* watch_read turns the received message into |out|. */
static int watch_read(struct etcd_watch *w, struct etcd_watch_batch *out, bool *out_created,
                      char *err, size_t errlen)
{
    grpc_byte_buffer_reader reader;
    grpc_slice s;
    Etcdserverpb__WatchResponse *resp;
    int rc = ETCD_OK;

    *out_created = false;
    if (w->recv_buf == NULL || !grpc_byte_buffer_reader_init(&reader, w->recv_buf)) {
        if (w->recv_buf != NULL)
            grpc_byte_buffer_destroy(w->recv_buf);
        w->recv_buf = NULL;
        etcd_set_err(err, errlen, "etcd closed the watch stream");
        return ETCD_EUNAVAILABLE;
    }
    s = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    grpc_byte_buffer_destroy(w->recv_buf);
    w->recv_buf = NULL;
    resp =
        etcdserverpb__watch_response__unpack(NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    if (resp == NULL) {
        etcd_set_err(err, errlen, "unreadable watch reply");
        return ETCD_EERROR;
    }
    out->revision = resp->header != NULL ? resp->header->revision : 0;
    if (resp->created) {
        *out_created = true;
        w->watch_id = resp->watch_id;
    }
    if (resp->canceled) {
        out->compact_revision = resp->compact_revision;
        rc = resp->compact_revision > 0 ? ETCD_ECOMPACTED : ETCD_EERROR;
        etcd_set_err(err, errlen, "etcd cancelled the watch: %s%s",
                     resp->compact_revision > 0    ? "history compacted"
                     : resp->cancel_reason != NULL ? resp->cancel_reason
                                                   : "",
                     "");
    } else if (resp->n_events > 0) {
        out->v = calloc(resp->n_events, sizeof(*out->v));
        if (out->v == NULL)
            rc = ETCD_ENOMEM;
        for (size_t i = 0; rc == ETCD_OK && i < resp->n_events; i++) {
            if (event_copy(&out->v[i], resp->events[i]) < 0)
                rc = ETCD_ENOMEM;
            else
                out->n++;
        }
        if (rc == ETCD_ENOMEM)
            etcd_set_err(err, errlen, "out of memory");
    } else if (!resp->created) {
        out->progress = true;
    }
    etcdserverpb__watch_response__free_unpacked(resp, NULL);
    return rc;
}

int etcd_watch_next(struct etcd_watch *w, struct etcd_watch_batch *out, int timeout_ms, char *err,
                    size_t errlen)
{
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));

    memset(out, 0, sizeof(out[0]));
    if (w->ended) {
        watch_status_err(w, err, errlen);
        return ETCD_EUNAVAILABLE;
    }
    if (!w->pending[W_RECV] && watch_start_recv(w) < 0) {
        etcd_set_err(err, errlen, "cannot read the watch stream");
        return ETCD_EERROR;
    }
    for (;;) {
        bool ok = false, created;
        int t = watch_wait(w, deadline, &ok);
        int rc;

        if (t < 0)
            return ETCD_OK; /* the wait ran out */
        if (t == W_STATUS) {
            watch_status_err(w, err, errlen);
            return ETCD_EUNAVAILABLE;
        }
        if (t != W_RECV)
            continue;
        if (!ok || w->recv_buf == NULL) {
            etcd_set_err(err, errlen, "etcd closed the watch stream");
            w->ended = true;
            return ETCD_EUNAVAILABLE;
        }
        rc = watch_read(w, out, &created, err, errlen);
        if (rc != ETCD_OK || out->n > 0 || out->progress)
            return rc;
        /* A "created" answer with nothing else: keep waiting. */
        if (watch_start_recv(w) < 0) {
            etcd_set_err(err, errlen, "cannot read the watch stream");
            return ETCD_EERROR;
        }
    }
}

int etcd_watch_request_progress(struct etcd_watch *w)
{
    Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
    Etcdserverpb__WatchProgressRequest pr = ETCDSERVERPB__WATCH_PROGRESS_REQUEST__INIT;

    if (w->ended || w->pending[W_SEND])
        return 0;
    req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST;
    req.progress_request = &pr;
    return watch_send(w, &req, false) < 0 ? ETCD_EERROR : ETCD_OK;
}

int etcd_watch_open(struct etcd_client *c, struct etcd_watch **out, int64_t *out_compact_revision,
                    const void *key, size_t key_len, const void *end, size_t end_len,
                    int64_t start_revision, bool prev_kv, char *err, size_t errlen)
{
    Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
    Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(c->timeout_ms, GPR_TIMESPAN));
    struct etcd_watch *w;
    grpc_channel *ch;
    grpc_op op;
    size_t idx;
    int rc = ETCD_EUNAVAILABLE;

    *out = NULL;
    *out_compact_revision = 0;
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        etcd_set_err(err, errlen, "out of memory");
        return ETCD_ENOMEM;
    }
    w->client = c;
    w->details = grpc_empty_slice();
    grpc_metadata_array_init(&w->init_md);
    grpc_metadata_array_init(&w->trail_md);
    w->cq = grpc_completion_queue_create_for_next(NULL);
    pthread_mutex_lock(&c->lock);
    idx = c->current;
    ch = etcd_channel_get(c, idx);
    if (c->user != NULL && c->token[0] == '\0' && ch != NULL) {
        struct rpc_unary_reply r;

        memset(&r, 0, sizeof(r));
        if (etcd_authenticate(c, ch, deadline, &r) < 0) {
            etcd_set_err(err, errlen, "etcd authentication: %s%s", r.details, "");
            rc = etcd_unreachable(r.status) ? ETCD_EUNAVAILABLE : ETCD_EERROR;
            if (rc == ETCD_EUNAVAILABLE && c->current == idx)
                c->current = (idx + 1) % c->n_endpoints;
            pthread_mutex_unlock(&c->lock);
            free(r.body);
            goto fail;
        }
    }
    if (c->token[0] != '\0') {
        w->token_md.key = grpc_slice_from_static_string("token");
        w->token_md.value = grpc_slice_from_copied_string(c->token);
        w->has_token = true;
    }
    pthread_mutex_unlock(&c->lock);
    if (ch == NULL)
        goto fail;
    /* The stream lives until closed: no deadline. */
    w->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq,
                                       grpc_slice_from_static_string("/etcdserverpb.Watch/Watch"),
                                       NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (w->call == NULL)
        goto fail;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &w->trail_md;
    op.data.recv_status_on_client.status = &w->status;
    op.data.recv_status_on_client.status_details = &w->details;
    if (grpc_call_start_batch(w->call, &op, 1, &w->tags[W_STATUS], NULL) != GRPC_CALL_OK)
        goto fail;
    w->pending[W_STATUS] = true;
    cr.key = etcd_bin(key, key_len);
    if (end != NULL)
        cr.range_end = etcd_bin(end, end_len);
    cr.start_revision = start_revision;
    cr.prev_kv = prev_kv;
    req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    req.create_request = &cr;
    if (watch_send(w, &req, true) < 0 || watch_start_recv(w) < 0)
        goto fail;
    for (;;) {
        struct etcd_watch_batch b;
        bool ok = false, created = false;
        int t = watch_wait(w, deadline, &ok);

        if (t < 0) {
            etcd_set_err(err, errlen, "etcd %s: no answer to the watch in time%s",
                         c->endpoints[idx], "");
            rc = ETCD_EUNAVAILABLE;
            break;
        }
        if (t == W_STATUS) {
            watch_status_err(w, err, errlen);
            rc = etcd_unreachable(w->status) ? ETCD_EUNAVAILABLE : ETCD_EERROR;
            break;
        }
        if (t != W_RECV)
            continue;
        if (!ok || w->recv_buf == NULL) {
            /* The status tells why; wait for it (bounded by the deadline). */
            continue;
        }
        memset(&b, 0, sizeof(b));
        rc = watch_read(w, &b, &created, err, errlen);
        if (rc == ETCD_ECOMPACTED)
            *out_compact_revision = b.compact_revision;
        etcd_watch_batch_clear(&b);
        if (rc != ETCD_OK)
            break;
        if (created) {
            *out = w;
            return ETCD_OK;
        }
        if (watch_start_recv(w) < 0) {
            rc = ETCD_EERROR;
            break;
        }
    }
fail:
    if (rc == ETCD_EUNAVAILABLE) {
        pthread_mutex_lock(&c->lock);
        if (c->current == idx)
            c->current = (idx + 1) % c->n_endpoints;
        pthread_mutex_unlock(&c->lock);
    }
    if (err != NULL && errlen > 0 && err[0] == '\0')
        etcd_set_err(err, errlen, "cannot open a watch on etcd");
    etcd_watch_close(w);
    return rc;
}

void etcd_watch_close(struct etcd_watch *w)
{
    if (w == NULL)
        return;
    if (w->call != NULL) {
        grpc_call_cancel(w->call, NULL);
        /* Every started operation completes after a cancel. */
        while (w->pending[W_SEND] || w->pending[W_RECV] || w->pending[W_STATUS]) {
            bool ok;

            if (watch_wait(w, gpr_inf_future(GPR_CLOCK_MONOTONIC), &ok) < 0)
                break;
            if (w->recv_buf != NULL) {
                grpc_byte_buffer_destroy(w->recv_buf);
                w->recv_buf = NULL;
            }
        }
        grpc_call_unref(w->call);
    }
    if (w->send_buf != NULL)
        grpc_byte_buffer_destroy(w->send_buf);
    if (w->recv_buf != NULL)
        grpc_byte_buffer_destroy(w->recv_buf);
    if (w->cq != NULL) {
        grpc_completion_queue_shutdown(w->cq);
        while (grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(w->cq);
    }
    if (w->has_token)
        grpc_slice_unref(w->token_md.value);
    grpc_slice_unref(w->details);
    grpc_metadata_array_destroy(&w->init_md);
    grpc_metadata_array_destroy(&w->trail_md);
    free(w);
}
