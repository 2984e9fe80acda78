/* certval-load's gRPC engine: one completion queue per client thread, call
 * slots that are unary calls or long-lived streams, closed or open loop.
 * See load_internal.h for the threading rules.
 *
 * gRPC C core rules followed here (PLATFORM.md): a sent byte buffer is never
 * reused (a new one per message, destroyed after its batch completes); a
 * received message may be NULL; status details and metadata arrays are
 * released after every call. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "load_internal.h"

#define LD_METHOD_UNARY "/certval.v1.Validator/Validate"
#define LD_METHOD_STREAM "/certval.v1.Validator/ValidateStream"
#define LD_DRAIN_NS 5000000000ull   /* after the end, time left to calls in flight */
#define LD_LATE_NS 1000000ull       /* an open-loop send later than this is "late" */
#define LD_USER_MAX 24
/* grpc_completion_queue_next rounds its deadline up to gRPC's millisecond
 * clock and then sleeps in epoll: asked for 20-125 us it returns after
 * about 1.1 ms on this kind of machine (docs/benchmarks.md). An open loop
 * that waited for its next send that way sent calls up to a millisecond
 * late, in bursts, and counted the lag in their latency. A wait shorter
 * than LD_FINE_WAIT_NS is done instead as non-blocking polls of the queue
 * and naps of at most LD_NAP_NS (clock_nanosleep, 1 us timer slack); a
 * response that arrives during a nap is recorded at most that much late.
 * CERTVAL_LOAD_COARSE_PACING=1 restores the old wait, to compare. */
#define LD_FINE_WAIT_NS 2000000ull
#define LD_NAP_NS 50000ull

enum ld_tag_kind { LD_TAG_MSG, LD_TAG_STATUS, LD_TAG_CLOSE };

struct ld_slot;

struct ld_tag {
    struct ld_slot *slot;
    enum ld_tag_kind kind;
};

/* One call slot: a unary call at a time, or one stream carrying one message
 * at a time. Owned by its thread. */
struct ld_slot {
    struct ld_thread *t;
    grpc_channel *ch;
    grpc_call *call;          /* NULL when no call/stream is open */
    bool busy;                /* a message is in flight */
    bool msg_failed;          /* stream: a message batch failed; status decides */
    bool closing;             /* stream: SEND_CLOSE_FROM_CLIENT started */
    bool got_status;          /* stream: RECV_STATUS_ON_CLIENT completed */
    unsigned pending;         /* batches started and not completed */
    uint64_t intended_ns;     /* when this message was meant to be sent */
    grpc_byte_buffer *send_bb;
    grpc_byte_buffer *recv_bb;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    struct ld_tag tag_msg, tag_status, tag_close;
};

/* One chain picked for a request. */
struct ld_pick {
    struct lt_chain chain;
    uint64_t id;
    char user[LD_USER_MAX];
    size_t user_len;
    size_t size; /* encoded ChainRequest size */
};

struct ld_thread {
    struct ld_run *run;
    const struct ld_opts *o;
    unsigned index;
    grpc_completion_queue *cq;
    grpc_channel *channels[LD_MAX_CHANNELS];
    unsigned n_channels;
    struct ld_slot *slots;
    size_t n_slots;
    struct ld_slot **free_slots; /* open loop: slots that can take the next call */
    size_t n_free;
    struct ld_pick *picks;       /* batch scratch */
    uint64_t rng;
    uint64_t next_due, period_ns;
    size_t outstanding;          /* batches in the completion queue */
    bool stopping;
    struct ld_thread_result *out;
};

/* ---- protobuf wire helpers (certval.v1 messages, by hand: cheaper than
 * packing and unpacking whole messages in a load generator) ---- */

static size_t ld_varint_len(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80 && n < 10) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *ld_put_varint(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 10 && v >= 0x80; i++) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *ld_put_bytes(uint8_t *p, unsigned field, const void *data, size_t len)
{
    *p++ = (uint8_t)(field << 3 | 2);
    p = ld_put_varint(p, len);
    memcpy(p, data, len);
    return p + len;
}

static size_t ld_bytes_len(size_t len)
{
    return 1 + ld_varint_len(len) + len;
}

/* ld_get_varint reads a varint at |*p| below |end|; false when truncated. */
static bool ld_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;

        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            return true;
    }
    return false;
}

/* ld_skip skips a field of |wire| type; false on a malformed message. */
static bool ld_skip(const uint8_t **p, const uint8_t *end, unsigned wire)
{
    uint64_t v;

    switch (wire) {
    case 0: return ld_get_varint(p, end, &v);
    case 1: if (end - *p < 8) return false; *p += 8; return true;
    case 5: if (end - *p < 4) return false; *p += 4; return true;
    case 2:
        if (!ld_get_varint(p, end, &v) || v > (uint64_t)(end - *p))
            return false;
        *p += v;
        return true;
    default: return false;
    }
}

/* ---- requests ---- */

static size_t ld_chain_size(const struct ld_pick *k)
{
    size_t n = 1 + ld_varint_len(k->id);

    for (size_t i = 0; i < k->chain.n_certs; i++)
        n += ld_bytes_len(k->chain.cert_len[i]);
    if (k->chain.tenant_len > 0)
        n += ld_bytes_len(k->chain.tenant_len);
    if (k->chain.device_len > 0)
        n += ld_bytes_len(k->chain.device_len);
    return n + ld_bytes_len(k->user_len);
}

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
    k->size = ld_chain_size(k);
}

/* ld_build_request encodes a ValidateRequest of o->batch chains into a new
 * byte buffer (the caller's to send and destroy). */
static grpc_byte_buffer *ld_build_request(struct ld_thread *t)
{
    size_t total = 0;
    grpc_slice s;
    grpc_byte_buffer *bb;
    uint8_t *p;

    for (unsigned b = 0; b < t->o->batch; b++) {
        ld_pick_chain(t, &t->picks[b]);
        total += ld_bytes_len(t->picks[b].size);
    }
    s = grpc_slice_malloc(total);
    p = GRPC_SLICE_START_PTR(s);
    for (unsigned b = 0; b < t->o->batch; b++) {
        const struct ld_pick *k = &t->picks[b];

        *p++ = 1 << 3 | 2; /* ValidateRequest.chains */
        p = ld_put_varint(p, k->size);
        *p++ = 1 << 3 | 0; /* ChainRequest.id */
        p = ld_put_varint(p, k->id);
        for (size_t i = 0; i < k->chain.n_certs; i++)
            p = ld_put_bytes(p, 2, k->chain.cert[i], k->chain.cert_len[i]);
        if (k->chain.tenant_len > 0)
            p = ld_put_bytes(p, 3, k->chain.tenant, k->chain.tenant_len);
        if (k->chain.device_len > 0)
            p = ld_put_bytes(p, 4, k->chain.device, k->chain.device_len);
        p = ld_put_bytes(p, 5, k->user, k->user_len);
    }
    bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

/* ---- responses ---- */

static double ld_realtime(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ld_count_verdict parses one Verdict and counts it; false when malformed. */
static bool ld_count_verdict(struct lt_result *r, const uint8_t *p, const uint8_t *end,
                             unsigned *victims, unsigned *victim_denies)
{
    /* proto3: a field equal to its default (0) is absent on the wire. */
    uint64_t id = 0, decision = 0, reason = 0, key;
    int cls;

    while (p < end) {
        uint64_t *dst = NULL;

        if (!ld_get_varint(&p, end, &key))
            return false;
        if ((key & 7) == 0 && key >> 3 >= 1 && key >> 3 <= 3)
            dst = key >> 3 == 1 ? &id : key >> 3 == 2 ? &decision : &reason;
        if (dst != NULL ? !ld_get_varint(&p, end, dst) : !ld_skip(&p, end, (unsigned)(key & 7)))
            return false;
    }
    cls = id >> 32 < LT_N_CLASSES ? (int)(id >> 32) : -1;
    if (cls == LT_CLASS_VICTIM) {
        (*victims)++;
        if (decision == LT_DECISION_DENY)
            (*victim_denies)++;
    }
    lt_result_verdict(r, cls, (unsigned)decision, (unsigned)reason);
    return true;
}

/* ld_count_response counts the verdicts of one ValidateResponse; returns
 * the number of verdicts, or -1 when the message does not parse. */
static long ld_count_response(struct ld_thread *t, struct lt_result *r, grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader reader;
    grpc_slice s;
    const uint8_t *p, *end;
    unsigned victims = 0, denies = 0;
    long n = 0;

    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return -1;
    s = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    p = GRPC_SLICE_START_PTR(s);
    end = p + GRPC_SLICE_LENGTH(s);
    while (p < end) {
        uint64_t key, len;

        if (!ld_get_varint(&p, end, &key)) {
            n = -1;
            break;
        }
        if (key != (1 << 3 | 2)) {
            if (!ld_skip(&p, end, (unsigned)(key & 7))) {
                n = -1;
                break;
            }
            continue;
        }
        if (!ld_get_varint(&p, end, &len) || len > (uint64_t)(end - p) ||
            !ld_count_verdict(r, p, p + len, &victims, &denies)) {
            n = -1;
            break;
        }
        p += len;
        n++;
    }
    grpc_slice_unref(s);
    if (denies > 0 && t->out->first_victim_deny == 0)
        t->out->first_victim_deny = ld_realtime();
    if (victims > 0 && denies == victims && t->out->first_all_deny == 0) {
        t->out->first_all_deny = ld_realtime();
        if (t->o->stop_on_all_deny)
            t->run->stop = 1;
    }
    return n;
}

/* ---- recording ---- */

static struct ld_second *ld_second_at(struct ld_thread *t, uint64_t now)
{
    size_t i;

    if (t->out->timeline == NULL || now < t->run->t_measure)
        return NULL;
    i = (size_t)((now - t->run->t_measure) / 1000000000u);
    return i < t->out->n_seconds ? &t->out->timeline[i] : NULL;
}

static bool ld_in_window(const struct ld_thread *t, uint64_t now)
{
    return now >= t->run->t_measure && now <= t->run->t_end;
}

/* ld_record counts a finished message: verdicts when |bb| holds a response,
 * an error by |status| otherwise. Only inside the measured window. */
static void ld_record(struct ld_thread *t, struct ld_slot *s, grpc_byte_buffer *bb,
                      unsigned status)
{
    uint64_t now = lt_now_ns();
    struct ld_second *sec = ld_second_at(t, now);
    struct lt_result *r = &t->out->res;
    struct lt_result scratch;
    long n;

    if (!ld_in_window(t, now)) {
        /* Outside the window the verdicts are not counted, but a probe
         * still watches for DENY. */
        if (bb != NULL && t->o->stop_on_all_deny && lt_result_init(&scratch) == 0) {
            ld_count_response(t, &scratch, bb);
            lt_result_clear(&scratch);
        }
        return;
    }
    if (bb != NULL && status == GRPC_STATUS_OK) {
        n = ld_count_response(t, r, bb);
        if (n < 0) {
            r->errors[LT_STATUS_CLIENT_FAILED]++;
            return;
        }
        r->calls++;
        lt_hist_record(&r->lat, now - s->intended_ns);
        /* Goodput: in time for a client that meant to send at the intended
         * time (the open loop's queueing for a slot counts). */
        if (now - s->intended_ns <= (uint64_t)t->o->deadline_ms * 1000000u)
            t->out->in_deadline++;
        if (sec != NULL) {
            sec->calls++;
            sec->chains += (uint64_t)n;
            lt_hist_record(&sec->lat, now - s->intended_ns);
        }
        return;
    }
    r->errors[status < LT_N_STATUS ? status : LT_STATUS_CLIENT_FAILED]++;
    if (sec != NULL)
        sec->errors++;
}

/* ---- call slots ---- */

static void ld_slot_reset_buffers(struct ld_slot *s)
{
    if (s->send_bb != NULL)
        grpc_byte_buffer_destroy(s->send_bb);
    s->send_bb = NULL;
    if (s->recv_bb != NULL)
        grpc_byte_buffer_destroy(s->recv_bb);
    s->recv_bb = NULL;
}

static void ld_slot_release_call(struct ld_slot *s)
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

static gpr_timespec ld_deadline_in(uint64_t ns)
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

static void ld_stream_close(struct ld_slot *s)
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
static void ld_send(struct ld_slot *s, uint64_t intended)
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
static void ld_slot_idle(struct ld_slot *s)
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
        ld_record(t, s, NULL, s->status != GRPC_STATUS_OK ? (unsigned)s->status
                                                          : LT_STATUS_CLIENT_FAILED);
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

static void ld_handle(struct ld_thread *t, struct ld_tag *tag, bool ok)
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

/* ---- the thread ---- */

static grpc_channel *ld_channel_new(const char *target)
{
    grpc_arg args[2];
    grpc_channel_args ca = {.num_args = 2, .args = args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch;

    /* Each channel its own subchannel, hence its own TCP connection. */
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[0].value.integer = 1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = -1;
    ch = grpc_channel_create(target, creds, &ca);
    grpc_channel_credentials_release(creds);
    return ch;
}

static int ld_thread_setup(struct ld_thread *t)
{
    const struct ld_opts *o = t->o;

    t->cq = grpc_completion_queue_create_for_next(NULL);
    for (unsigned c = t->index; c < o->channels; c += o->threads)
        t->channels[t->n_channels++] = ld_channel_new(o->target);
    /* Slot k of the run lives on channel k % channels. */
    for (unsigned k = 0; k < o->concurrency; k++)
        t->n_slots += (k % o->channels) % o->threads == t->index;
    t->slots = calloc(t->n_slots ? t->n_slots : 1, sizeof(*t->slots));
    t->free_slots = calloc(t->n_slots ? t->n_slots : 1, sizeof(*t->free_slots));
    t->picks = calloc(o->batch, sizeof(*t->picks));
    if (t->slots == NULL || t->free_slots == NULL || t->picks == NULL)
        return -1;
    for (size_t i = 0, k = 0; k < o->concurrency; k++) {
        struct ld_slot *s;

        if ((k % o->channels) % o->threads != t->index)
            continue;
        s = &t->slots[i++];
        s->t = t;
        s->ch = t->channels[(k % o->channels) / o->threads];
        s->details = grpc_empty_slice();
        grpc_metadata_array_init(&s->init_md);
        grpc_metadata_array_init(&s->trail_md);
        s->tag_msg = (struct ld_tag){s, LD_TAG_MSG};
        s->tag_status = (struct ld_tag){s, LD_TAG_STATUS};
        s->tag_close = (struct ld_tag){s, LD_TAG_CLOSE};
    }
    if (o->open_loop && o->rate > 0)
        t->period_ns = (uint64_t)(1e9 * o->threads / o->rate);
    return 0;
}

static void ld_thread_teardown(struct ld_thread *t)
{
    grpc_event ev;

    if (t->cq != NULL) {
        grpc_completion_queue_shutdown(t->cq);
        do {
            ev = grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        } while (ev.type != GRPC_QUEUE_SHUTDOWN);
    }
    for (size_t i = 0; t->slots != NULL && i < t->n_slots; i++) {
        ld_slot_reset_buffers(&t->slots[i]);
        ld_slot_release_call(&t->slots[i]);
        grpc_metadata_array_destroy(&t->slots[i].init_md);
        grpc_metadata_array_destroy(&t->slots[i].trail_md);
    }
    for (unsigned c = 0; c < t->n_channels; c++)
        grpc_channel_destroy(t->channels[c]);
    if (t->cq != NULL)
        grpc_completion_queue_destroy(t->cq);
    free(t->slots);
    free(t->free_slots);
    free(t->picks);
}

/* ld_issue_due sends every open-loop call whose intended time has come, as
 * long as a slot is free; a call that waits for a slot keeps its intended
 * time, so its queueing shows in its latency. */
static void ld_issue_due(struct ld_thread *t, uint64_t now)
{
    uint64_t dl = (uint64_t)t->o->deadline_ms * 1000000u;

    /* Calls whose whole deadline passed while they waited for a slot: the
     * client gives up on them without sending (a login past its deadline
     * is lost), counted as DEADLINE_EXCEEDED and as expired_unsent. */
    if (!t->o->stream && t->period_ns > 0 && now >= t->next_due && now - t->next_due >= dl) {
        uint64_t n = (now - t->next_due - dl) / t->period_ns + 1;

        if (ld_in_window(t, now)) {
            t->out->expired_unsent += n;
            t->out->res.errors[GRPC_STATUS_DEADLINE_EXCEEDED] += n;
        }
        t->next_due += n * t->period_ns;
    }
    for (size_t guard = 0; guard < t->n_slots && now >= t->next_due && t->n_free > 0; guard++) {
        struct ld_slot *s = t->free_slots[--t->n_free];
        uint64_t lag = now - t->next_due;

        if (lag > t->out->max_lag_ns && now >= t->run->t_measure)
            t->out->max_lag_ns = lag;
        if (lag > LD_LATE_NS && ld_in_window(t, now))
            t->out->late_calls++;
        ld_send(s, t->next_due);
        t->next_due += t->period_ns;
    }
}

static void ld_begin_stop(struct ld_thread *t)
{
    t->stopping = true;
    for (size_t i = 0; i < t->n_slots; i++) {
        struct ld_slot *s = &t->slots[i];

        if (t->o->stream)
            ld_stream_close(s);
    }
}

static void ld_nap(uint64_t ns)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ns};

    clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

static void ld_thread_loop(struct ld_thread *t)
{
    const char *coarse = getenv("CERTVAL_LOAD_COARSE_PACING");
    bool cancelled = false, fine = coarse == NULL || strcmp(coarse, "1") != 0;

    if (fine)
        prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* naps of ~50 us, not 50 us + 50 us */

    for (size_t i = 0; i < t->n_slots; i++)
        ld_slot_idle(&t->slots[i]);
    t->next_due = t->run->t_start;
    for (;;) {
        uint64_t now = lt_now_ns(), wait = 100000000u;
        grpc_event ev;

        if (!t->stopping && (now >= t->run->t_end || t->run->stop))
            ld_begin_stop(t);
        if (t->stopping && t->outstanding == 0)
            break;
        if (t->stopping && !cancelled && now > t->run->t_end + LD_DRAIN_NS) {
            for (size_t i = 0; i < t->n_slots; i++) {
                if (t->slots[i].call != NULL)
                    grpc_call_cancel(t->slots[i].call, NULL);
            }
            cancelled = true;
        }
        if (!t->stopping && t->o->open_loop) {
            ld_issue_due(t, now);
            wait = t->next_due > now ? t->next_due - now : 0;
            if (t->n_free == 0)
                wait = 100000000u; /* nothing to send with until a slot frees */
        }
        if (!t->stopping && t->run->t_end > now && t->run->t_end - now < wait)
            wait = t->run->t_end - now;
        if (fine && !t->stopping && t->o->open_loop && wait < LD_FINE_WAIT_NS) {
            ev = grpc_completion_queue_next(t->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
            if (ev.type == GRPC_OP_COMPLETE)
                ld_handle(t, ev.tag, ev.success != 0);
            else if (wait > 0)
                ld_nap(wait < LD_NAP_NS ? wait : LD_NAP_NS);
            continue;
        }
        ev = grpc_completion_queue_next(t->cq, ld_deadline_in(wait), NULL);
        if (ev.type == GRPC_OP_COMPLETE)
            ld_handle(t, ev.tag, ev.success != 0);
    }
}

void ld_thread_result_clear(struct ld_thread_result *r)
{
    lt_result_clear(&r->res);
    for (size_t i = 0; r->timeline != NULL && i < r->n_seconds; i++)
        lt_hist_clear(&r->timeline[i].lat);
    free(r->timeline);
    memset(r, 0, sizeof(*r));
}

static int ld_result_init(const struct ld_opts *o, struct ld_thread_result *r)
{
    memset(r, 0, sizeof(*r));
    if (lt_result_init(&r->res) != 0)
        return -1;
    if (o->plot_prefix == NULL)
        return 0;
    r->n_seconds = (size_t)o->duration_s + 1;
    r->timeline = calloc(r->n_seconds, sizeof(*r->timeline));
    if (r->timeline == NULL)
        return -1;
    for (size_t i = 0; i < r->n_seconds; i++) {
        if (lt_hist_init(&r->timeline[i].lat, LD_TIMELINE_SUB_BITS) != 0)
            return -1;
    }
    return 0;
}

int ld_client_run(struct ld_run *run, unsigned index, struct ld_thread_result *out)
{
    struct ld_thread t = {
        .run = run,
        .o = run->o,
        .index = index,
        .rng = UINT64_C(0x5eed) + index * UINT64_C(0x9e3779b97f4a7c15) + (uint64_t)time(NULL),
        .out = out,
    };
    int rc = -1;

    if (ld_result_init(run->o, out) != 0 || ld_thread_setup(&t) != 0) {
        fprintf(stderr, "certval-load: out of memory\n");
        goto err;
    }
    ld_thread_loop(&t);
    rc = 0;
err:
    ld_thread_teardown(&t);
    return rc;
}
