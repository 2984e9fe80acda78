/* Issuing certval-load's calls: a slot carries a unary call at a time or
 * one long-lived stream carrying one message at a time; this file starts
 * their batches and decides what each completion does next (record, send
 * again, free the slot for the open loop, or end the stream).
 *
 * gRPC C core rules followed here (PLATFORM.md): a sent byte buffer is never
 * reused (a new one per message, destroyed after its batch completes); a
 * received message may be NULL; status details and metadata arrays are
 * released after every call. */
#include <stdio.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "load_client_internal.h"

#define LD_METHOD_UNARY "/certval.v1.Validator/Validate"
#define LD_METHOD_STREAM "/certval.v1.Validator/ValidateStream"

/* ---- requests ---- */

/* ld_pick_chain draws one chain from the mix. The id carries the class in
 * its top 32 bits so that verdicts can be checked against it. */
static void ld_pick_chain(struct ld_thread *t, struct ld_pick *k)
{
    enum lt_class c = lt_mix_pick(&t->o->mix, lt_rand64(&t->rng));
    size_t n = lt_bundle_count(t->run->bundle, c);
    size_t i = n > 1 ? (size_t)(lt_rand64(&t->rng) % n) : 0;
    int len;

    lt_bundle_get(t->run->bundle, c, i, &k->chain);
    k->id = (uint64_t)c << 32 | (uint64_t)(i & 0xffffffffu);
    /* The same tenant certificate presented by many users. */
    len = snprintf(k->user, sizeof(k->user), "user-%u",
                   (unsigned)(lt_rand64(&t->rng) % (t->o->users ? t->o->users : 1)));
    k->user_len = len > 0 && (size_t)len < sizeof(k->user) ? (size_t)len : 0;
}

/* ld_build_request encodes a ValidateRequest of o->batch chains into a new
 * byte buffer (the caller's to send and destroy). */
static grpc_byte_buffer *ld_build_request(struct ld_thread *t)
{
    for (unsigned b = 0; b < t->o->batch; b++)
        ld_pick_chain(t, &t->picks[b]);
    return ld_wire_request_new(t->picks, t->o->batch);
}

/* ---- call slots ---- */

void ld_slot_reset_buffers(struct ld_slot *s)
{
    if (s->send_bb != NULL)
        grpc_byte_buffer_destroy(s->send_bb);
    s->send_bb = NULL;
    if (s->recv_bb != NULL)
        grpc_byte_buffer_destroy(s->recv_bb);
    s->recv_bb = NULL;
}

void ld_slot_release_call(struct ld_slot *s)
{
    grpc_metadata_array_destroy(&s->init_md);
    grpc_metadata_array_destroy(&s->trail_md);
    grpc_slice_unref(s->details);
    s->details = grpc_empty_slice();
    grpc_metadata_array_init(&s->init_md);
    grpc_metadata_array_init(&s->trail_md);
    if (s->call != NULL)
        grpc_call_unref(s->call);
    s->call = NULL;
    s->closing = false;
    s->msg_failed = false;
    s->got_status = false;
}

gpr_timespec ld_deadline_in(uint64_t ns)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_nanos((int64_t)ns, GPR_TIMESPAN));
}

static int ld_start(struct ld_slot *s, const grpc_op *ops, size_t n, struct ld_tag *tag)
{
    if (grpc_call_start_batch(s->call, ops, n, tag, NULL) != GRPC_CALL_OK)
        return -1;
    s->pending++;
    s->t->outstanding++;
    return 0;
}

/* The time left of a call's deadline, which runs from its intended send
 * time: a login that waited for a free slot has spent part of its budget,
 * and the server must see only what is left. */
static uint64_t ld_deadline_left(const struct ld_slot *s)
{
    uint64_t dl = (uint64_t)s->t->o->deadline_ms * 1000000u, now = lt_now_ns();
    uint64_t spent = now > s->intended_ns ? now - s->intended_ns : 0;

    return spent < dl ? dl - spent : 0;
}

static int ld_unary_send(struct ld_slot *s)
{
    struct ld_thread *t = s->t;
    grpc_op ops[6];

    s->call = grpc_channel_create_call(s->ch, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq,
                                       grpc_slice_from_static_string(LD_METHOD_UNARY), NULL,
                                       ld_deadline_in(ld_deadline_left(s)), NULL);
    if (s->call == NULL)
        return -1;
    s->send_bb = ld_build_request(t);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &s->recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &s->trail_md;
    ops[5].data.recv_status_on_client.status = &s->status;
    ops[5].data.recv_status_on_client.status_details = &s->details;
    s->busy = true;
    return ld_start(s, ops, 6, &s->tag_msg);
}

/* ld_stream_send sends the next request on the slot's stream, opening the
 * stream first when it has none. */
static int ld_stream_send(struct ld_slot *s)
{
    struct ld_thread *t = s->t;
    grpc_op ops[4], st;
    size_t n = 0;
    bool opening = s->call == NULL;

    if (opening) {
        /* A stream lives for the run; its deadline only guards a hang. */
        s->call = grpc_channel_create_call(
            s->ch, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq,
            grpc_slice_from_static_string(LD_METHOD_STREAM), NULL,
            ld_deadline_in(t->run->t_end - lt_now_ns() + LD_DRAIN_NS + 60000000000ull), NULL);
        if (s->call == NULL)
            return -1;
    }
    s->send_bb = ld_build_request(t);
    memset(ops, 0, sizeof(ops));
    if (opening) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = s->send_bb;
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &s->recv_bb;
    s->busy = true;
    if (ld_start(s, ops, n, &s->tag_msg) != 0)
        return -1;
    if (opening) {
        memset(&st, 0, sizeof(st));
        st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        st.data.recv_status_on_client.trailing_metadata = &s->trail_md;
        st.data.recv_status_on_client.status = &s->status;
        st.data.recv_status_on_client.status_details = &s->details;
        return ld_start(s, &st, 1, &s->tag_status);
    }
    return 0;
}

void ld_stream_close(struct ld_slot *s)
{
    grpc_op op;

    if (s->call == NULL || s->closing || s->busy)
        return;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    s->closing = true;
    if (ld_start(s, &op, 1, &s->tag_close) != 0)
        grpc_call_cancel(s->call, NULL);
}

/* ld_send starts the slot's next message, meant to leave at |intended|. */
void ld_send(struct ld_slot *s, uint64_t intended)
{
    int rc;

    s->intended_ns = intended;
    rc = s->t->o->stream ? ld_stream_send(s) : ld_unary_send(s);
    if (rc != 0) {
        s->t->out->res.errors[LT_STATUS_CLIENT_FAILED]++;
        s->busy = false;
        ld_slot_reset_buffers(s);
        if (s->call != NULL && s->pending == 0)
            ld_slot_release_call(s);
    }
}

/* ld_slot_idle is called when a slot can take its next message. */
void ld_slot_idle(struct ld_slot *s)
{
    struct ld_thread *t = s->t;

    if (t->stopping) {
        if (t->o->stream)
            ld_stream_close(s);
        return;
    }
    if (!t->o->open_loop) {
        ld_send(s, lt_now_ns());
        return;
    }
    t->free_slots[t->n_free++] = s;
}

static void ld_on_msg(struct ld_slot *s, bool ok)
{
    struct ld_thread *t = s->t;

    s->busy = false;
    if (!t->o->stream) {
        ld_record(t, s, ok ? s->recv_bb : NULL, ok ? (unsigned)s->status : LT_STATUS_CLIENT_FAILED);
        ld_slot_reset_buffers(s);
        ld_slot_release_call(s);
        ld_slot_idle(s);
        return;
    }
    if (!ok || s->recv_bb == NULL) {
        /* The stream ended under us: its status says why. */
        s->msg_failed = true;
        ld_slot_reset_buffers(s);
        return;
    }
    ld_record(t, s, s->recv_bb, GRPC_STATUS_OK);
    ld_slot_reset_buffers(s);
    ld_slot_idle(s);
}

static void ld_on_status(struct ld_slot *s)
{
    struct ld_thread *t = s->t;

    s->got_status = true;
    if (s->msg_failed || (s->status != GRPC_STATUS_OK && !t->stopping))
        ld_record(t, s, NULL,
                  s->status != GRPC_STATUS_OK ? (unsigned)s->status : LT_STATUS_CLIENT_FAILED);
}

/* ld_stream_finish releases a stream once its status has arrived and no
 * batch of it is pending, and opens a new one when the run goes on. */
static void ld_stream_finish(struct ld_slot *s)
{
    if (!s->got_status || s->pending > 0)
        return;
    ld_slot_release_call(s);
    if (!s->t->stopping)
        ld_slot_idle(s);
}

void ld_handle(struct ld_thread *t, struct ld_tag *tag, bool ok)
{
    struct ld_slot *s = tag->slot;

    t->outstanding--;
    s->pending--;
    switch (tag->kind) {
    case LD_TAG_MSG:
        ld_on_msg(s, ok);
        break;
    case LD_TAG_STATUS:
        ld_on_status(s);
        break;
    case LD_TAG_CLOSE:
        break;
    }
    if (t->o->stream)
        ld_stream_finish(s);
}
