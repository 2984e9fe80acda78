/* certval.v1.Validator: Validate (unary) and ValidateStream (bidi).
 *
 * One batch: the transport thread unpacks the request, takes a reference to
 * the current configuration snapshot, cuts the chains into slices and hands
 * each slice to a worker over io_uring (workers.h). Small batches go whole to
 * one worker; larger ones are split so one big request uses every core. The
 * worker that finishes the last slice packs the response and starts the send;
 * its completion returns to the call's transport thread.
 *
 * Admission (before a request is unpacked) and deadlines: a message is
 * refused with RESOURCE_EXHAUSTED when a `limits` bound is reached or when
 * the work queued ahead of it would outlast its deadline; chains of a call
 * whose deadline has passed, that its client cancelled, or that a drain
 * abandoned are not validated: the worker drops them when it reaches them
 * and frees the batch. A cancel that arrives while no worker has begun the
 * batch frees its request at once (vcall_on_close, work_state_cancel). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "audit.h"
#include "call.h"
#include "certval/v1/certval.pb-c.h"
#include "claims.h"
#include "codec.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "server.h"
#include "service.h"
#include "service_drain_internal.h"
#include "validator.h"
#include "verdict.h"

/* Chains of up to this many certificates are described on the stack. */
#define STACK_CERTS 16
/* Batches of up to this many chains first try the verdict cache on the
 * transport thread: a hit costs a few microseconds, less than handing the
 * batch to a worker and waking it. Only the misses go to a worker. */
#define INLINE_MAX_CHAINS 8

struct vcall;

struct slice {
    struct work_item item;
    struct batch *batch;
    size_t begin, end;
};

struct batch {
    struct vcall *vc;
    struct codec_request rq; /* the request, its claims and its arena (rq.req NULL once freed) */
    struct reload_snapshot *snap;
    int64_t now;
    uint64_t received_ns; /* CLOCK_MONOTONIC at receipt, for the latency histogram */
    size_t bytes;         /* admitted request bytes, released by batch_free */
    /* 0, or the status the call ends with because a slice dropped its work
     * (deadline passed, cancelled, drain abandoned). */
    _Atomic int dropped;
    /* Set by the cancel that freed the payload (before it drops its
     * reference): gRPC has ended the call, no status is sent. The last
     * reference may then go on the transport thread during the drain,
     * after its completion queue is shut down, where gRPC aborts on a new
     * batch. */
    bool ended;
    /* The server's CRL cache, deny list and verdict cache, read by every
     * chain of the batch. */
    struct revocation_sources rev;
    /* One per chain, written by whoever answers it (inline from the
     * verdict cache, or a worker). Of a batch answer_inline may try
     * (INLINE_MAX_CHAINS chains or fewer) they start zeroed, so a miss
     * reads DECISION_UNSPECIFIED (chain_answered); of a larger one they
     * are not zeroed first (about 1 KiB a chain on the transport thread),
     * as only the worker writes them and nothing reads one before. */
    struct verdict *verdicts;
    bool inline_tried; /* answer_inline ran: the verdicts tell hits from misses */
    /* The verdict-cache keys of the chains answer_inline missed, so their
     * worker does not hash them again (validator_check_chain_keyed). */
    struct validator_key keys[INLINE_MAX_CHAINS];
    /* One per slice not yet run, plus, once the slices are handed to the
     * workers, one for the QUEUED state (workers.h): dropped by the first
     * slice to begin or by the cancel that wins, so a batch freed by a
     * cancel is never freed under it. The last one ends the call. */
    _Atomic unsigned remaining;
    unsigned n_slices;
    struct slice slices[];
};

struct vcall {
    struct call_base base;
    bool streaming;
    struct tag recv_tag;   /* RECV_MESSAGE (with SEND_INITIAL_METADATA the first time) */
    struct tag send_tag;   /* SEND_MESSAGE (+ SEND_STATUS for unary) */
    struct tag status_tag; /* SEND_STATUS for streams and errors */
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;
    uint64_t deadline_ns; /* CLOCK_MONOTONIC; UINT64_MAX = none */
    _Atomic bool gone;    /* cancelled by the client (or its deadline, by gRPC) */
    /* The call's batch on the workers (one at a time, streams included) and
     * who owns its payload (workers.h, enum work_state): a cancel that wins
     * QUEUED frees the payload at once, on the transport thread. */
    _Atomic int batch_state;
    struct batch *batch;
};

static void vcall_recv_next(struct vcall *vc);

static void vcall_destroy(struct call_base *cb)
{
    struct vcall *vc = container_of(cb, struct vcall, base);

    if (vc->recv_buf != NULL)
        grpc_byte_buffer_destroy(vc->recv_buf);
    if (vc->send_buf != NULL)
        grpc_byte_buffer_destroy(vc->send_buf);
    free(vc);
}

/* Gives back what admission counted for a batch. Any thread. */
static void admission_release(struct server *srv, size_t chains, size_t bytes)
{
    atomic_fetch_sub_explicit(&srv->inflight_chains, (long)chains, memory_order_relaxed);
    atomic_fetch_sub_explicit(&srv->inflight_bytes, (long)bytes, memory_order_relaxed);
}

/* Frees what a batch holds of its request (the unpacked chains, claims,
 * verdicts, snapshot) and gives back its admission, leaving the batch
 * itself and its slices, which the workers may still hold. */
static void batch_release_payload(struct batch *b)
{
    admission_release(b->vc->base.tr->srv, b->rq.req != NULL ? b->rq.req->n_chains : 0, b->bytes);
    b->bytes = 0;
    codec_request_free(&b->rq);
    if (b->snap != NULL)
        reload_release(b->snap);
    b->snap = NULL;
    free(b->verdicts);
    b->verdicts = NULL;
}

static void batch_free(struct batch *b)
{
    if (b == NULL)
        return;
    batch_release_payload(b);
    free(b);
}

static void status_done(struct tag *t, bool ok)
{
    struct vcall *vc = container_of(t, struct vcall, status_tag);

    (void)ok;
    call_unref(&vc->base);
}

/* Finish the call with an error status. Consumes the handler's reference. */
static void vcall_fail(struct vcall *vc, grpc_status_code code, const char *msg)
{
    if (code != GRPC_STATUS_OK)
        metrics_record_rpc_error((int)code);
    if (call_send_status(&vc->base, &vc->status_tag, code, msg) != GRPC_CALL_OK)
        call_unref(&vc->base);
}

/* ---- response ---- */

static grpc_byte_buffer *pack_response(const struct verdict *v, size_t n)
{
    grpc_byte_buffer *bb;
    grpc_slice s;
    size_t len;
    uint8_t *buf = codec_response_pack(&len, v, n);

    if (buf == NULL)
        return NULL;
    /* The slice takes ownership of |buf|: no copy of the response. */
    s = grpc_slice_new(buf, len, free);
    bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

static void send_done(struct tag *t, bool ok)
{
    struct vcall *vc = container_of(t, struct vcall, send_tag);

    grpc_byte_buffer_destroy(vc->send_buf);
    vc->send_buf = NULL;
    if (vc->streaming && ok && !atomic_load(&vc->base.tr->srv->draining)) {
        vcall_recv_next(vc); /* keeps the handler's reference */
        return;
    }
    if (vc->streaming && ok) {
        /* Draining: every message received has been answered; end the
         * stream cleanly so the client moves to another replica. */
        vcall_fail(vc, GRPC_STATUS_OK, "");
        return;
    }
    call_unref(&vc->base);
}

static void vcall_send_response(struct vcall *vc);

/* Runs on the worker that completes the last slice. */
static void batch_respond(struct batch *b)
{
    struct vcall *vc = b->vc;
    size_t n = b->rq.req->n_chains;
    vc->send_buf = pack_response(b->verdicts, n);
    metrics_record_batch(n, server_mono_ns() - b->received_ns, vc->streaming);
    batch_free(b);
    if (vc->send_buf == NULL) {
        vcall_fail(vc, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory packing the response");
        return;
    }
    vcall_send_response(vc);
}

/* Starts the send batch of |vc|'s packed response (|send_buf|). Any
 * thread. */
static void vcall_send_response(struct vcall *vc)
{
    grpc_slice empty = grpc_empty_slice();
    grpc_op ops[3];
    size_t nops = 0;

    memset(ops, 0, sizeof(ops));
    if (!vc->base.sent_initial_md) {
        ops[nops++].op = GRPC_OP_SEND_INITIAL_METADATA; /* unary: see vcall_recv_next */
        vc->base.sent_initial_md = true;
    }
    ops[nops].op = GRPC_OP_SEND_MESSAGE;
    ops[nops].data.send_message.send_message = vc->send_buf;
    nops++;
    if (!vc->streaming) {
        ops[nops].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[nops].data.send_status_from_server.status = GRPC_STATUS_OK;
        ops[nops].data.send_status_from_server.status_details = &empty;
        nops++;
    }
    if (grpc_call_start_batch(vc->base.call, ops, nops, &vc->send_tag, NULL) != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(vc->send_buf);
        vc->send_buf = NULL;
        call_unref(&vc->base);
    }
}

/* ---- validation on the workers ---- */

static void chain_input_from(struct chain_input *in, struct cv_bytes *certs,
                             const Certval__V1__ChainRequest *cr)
{
    for (size_t j = 0; j < cr->n_certificates; j++) {
        certs[j].data = cr->certificates[j].data;
        certs[j].len = cr->certificates[j].len;
    }
    in->id = cr->id;
    in->certs = certs;
    in->n_certs = cr->n_certificates;
}

static void record(const struct batch *b, size_t i)
{
    const Certval__V1__ChainRequest *cr = b->rq.req->chains[i];
    struct chain_input in;

    claims_apply(&in, &b->rq.claims[i], cr);
    metrics_record_verdict(&b->verdicts[i], cr->tenant_id);
    audit_verdict(&b->verdicts[i], in.tenant_id, in.device_id, in.user_id);
}

/* Answers chain |i| from the verdict cache if it can (validator_try_cached)
 * and records the verdict. False leaves the verdict zeroed for a worker.
 * On the transport thread. */
static bool chain_try_cached(struct batch *b, size_t i)
{
    const Certval__V1__ChainRequest *cr = b->rq.req->chains[i];
    struct cv_bytes certs[STACK_CERTS];
    struct chain_input in;

    if (cr->n_certificates > STACK_CERTS)
        return false; /* described on the heap by chain_validate, on a worker */
    chain_input_from(&in, certs, cr);
    claims_apply(&in, &b->rq.claims[i], cr);
    if (!validator_try_cached_key(b->snap->validator, &b->rev, &b->verdicts[i], &b->keys[i], &in,
                                  b->now))
        return false;
    record(b, i);
    return true;
}

/* Validates chain |i| (validator_check_chain) and records the verdict. */
static void chain_validate(struct batch *b, size_t i)
{
    const Certval__V1__ChainRequest *cr = b->rq.req->chains[i];
    struct cv_bytes stack_certs[STACK_CERTS], *certs = stack_certs;
    struct chain_input in;

    if (cr->n_certificates > STACK_CERTS) {
        certs = calloc(cr->n_certificates, sizeof(*certs));
        if (certs == NULL) {
            verdict_init(&b->verdicts[i], cr->id);
            verdict_deny(&b->verdicts[i], VERDICT_REASON_INTERNAL_ERROR, "out of memory");
            record(b, i);
            return;
        }
    }
    chain_input_from(&in, certs, cr);
    claims_apply(&in, &b->rq.claims[i], cr);
    validator_check_chain_keyed(b->snap->validator, &b->rev, &b->verdicts[i], &in, b->now,
                                i < INLINE_MAX_CHAINS ? &b->keys[i] : NULL);
    if (certs != stack_certs)
        free(certs);
    record(b, i);
}

/* Whether chain |i| has its verdict: every verdict the validator gives has
 * a decision, and the verdicts of a batch answer_inline tried start
 * zeroed; no chain of another batch is answered before its worker. */
static bool chain_answered(const struct batch *b, size_t i)
{
    return b->inline_tried && b->verdicts[i].decision != DECISION_UNSPECIFIED;
}

/* Whether a batch's remaining chains are still worth validating: OK, or
 * the status its call ends with. Cheap (two loads and a clock read), so it
 * runs before every chain. */
static grpc_status_code batch_stop_reason(const struct batch *b, uint64_t now)
{
    const struct vcall *vc = b->vc;

    if (atomic_load_explicit(&vc->base.tr->srv->abandon, memory_order_relaxed))
        return GRPC_STATUS_UNAVAILABLE;
    if (atomic_load_explicit(&vc->gone, memory_order_relaxed))
        return GRPC_STATUS_CANCELLED;
    if (now >= vc->deadline_ns)
        return GRPC_STATUS_DEADLINE_EXCEEDED;
    return GRPC_STATUS_OK;
}

/* Ends the call of a batch whose work was dropped and frees the batch. */
static void batch_drop(struct batch *b, grpc_status_code code)
{
    struct vcall *vc = b->vc;
    const char *msg = "deadline passed before validation: not validated";

    if (code == GRPC_STATUS_UNAVAILABLE)
        msg = "server shutting down: drain grace over, retry";
    else if (code == GRPC_STATUS_CANCELLED)
        msg = "cancelled by the client: not validated";
    if (b->ended) {
        batch_free(b);
        metrics_record_rpc_error((int)code);
        call_unref(&vc->base); /* the handler's reference, which the batch held */
        return;
    }
    batch_free(b);
    vcall_fail(vc, code, msg);
}

/* A moving average (1/8 weight) of one chain's validation time; racy
 * updates from several workers only blur it. */
static void chain_cost_update(struct server *srv, uint64_t ns, size_t chains)
{
    uint64_t per = ns / chains;
    uint64_t old = atomic_load_explicit(&srv->chain_cost_ns, memory_order_relaxed);

    atomic_store_explicit(&srv->chain_cost_ns, old == 0 ? per : old - old / 8 + per / 8,
                          memory_order_relaxed);
}

/* Drops one of |b|'s references (see |remaining|); the last one answers
 * the call or ends it with the status its work was dropped with. */
static void batch_unref(struct batch *b)
{
    /* acq_rel: the last slice must see every other slice's verdicts. */
    if (atomic_fetch_sub_explicit(&b->remaining, 1, memory_order_acq_rel) == 1) {
        int why = atomic_load(&b->dropped);

        if (why != 0)
            batch_drop(b, (grpc_status_code)why);
        else
            batch_respond(b);
    }
}

static void slice_run(struct work_item *item)
{
    struct slice *s = container_of(item, struct slice, item);
    struct batch *b = s->batch;
    uint64_t start = server_mono_ns(), now = start;
    size_t ran = 0;
    enum work_state was = work_state_begin(&b->vc->batch_state);
    bool run = was != WORK_CANCELLED; /* else vcall_on_close freed the payload */

    if (was == WORK_QUEUED)
        batch_unref(b); /* the QUEUED reference: never the last, ours remains */
    for (size_t i = s->begin; run && i < s->end; i++) {
        grpc_status_code why = batch_stop_reason(b, now);
        int none = 0;

        if (why != GRPC_STATUS_OK) {
            atomic_compare_exchange_strong(&b->dropped, &none, (int)why);
            break;
        }
        if (atomic_load_explicit(&b->dropped, memory_order_relaxed) != 0)
            break;
        if (!chain_answered(b, i)) {
            chain_validate(b, i);
            ran++;
            now = server_mono_ns();
        }
    }
    if (ran > 0)
        chain_cost_update(b->vc->base.tr->srv, now - start, ran);
    batch_unref(b);
}

static struct batch *batch_new(struct vcall *vc, const struct codec_request *rq, size_t bytes,
                               struct reload_snapshot *snap, unsigned n_slices)
{
    struct batch *b = calloc(1, sizeof(*b) + n_slices * sizeof(struct slice));
    size_t n = rq->req->n_chains;

    if (b == NULL)
        return NULL;
    b->verdicts = n > INLINE_MAX_CHAINS ? malloc(n * sizeof(*b->verdicts))
                                        : calloc(n > 0 ? n : 1, sizeof(*b->verdicts));
    if (b->verdicts == NULL) {
        free(b);
        return NULL;
    }
    b->vc = vc;
    b->rq = *rq;
    b->rev = vc->base.tr->srv->rev;
    b->bytes = bytes;
    b->snap = snap;
    b->now = (int64_t)time(NULL);
    b->received_ns = server_mono_ns();
    b->n_slices = n_slices;
    atomic_store(&b->remaining, n_slices);
    for (unsigned k = 0; k < n_slices; k++) {
        b->slices[k].item.run = slice_run;
        b->slices[k].item.cost = (uint32_t)(n * (k + 1) / n_slices - n * k / n_slices);
        b->slices[k].batch = b;
        b->slices[k].begin = n * k / n_slices;
        b->slices[k].end = n * (k + 1) / n_slices;
    }
    return b;
}

/* Tries the verdict cache for every chain of a small batch on the
 * transport thread. True when all are answered; otherwise the misses are
 * left for a worker (chain_answered tells them apart). */
static bool answer_inline(struct batch *b)
{
    size_t n = b->rq.req->n_chains, hits = 0;

    if (n > INLINE_MAX_CHAINS || b->rev.cache == NULL)
        return false;
    b->inline_tried = true;
    for (size_t i = 0; i < n; i++)
        hits += chain_try_cached(b, i);
    return hits == n;
}

static unsigned slices_for(const struct server *srv, size_t n_chains)
{
    unsigned workers = worker_pool_size(srv->pool);
    size_t per = srv->limits.split_min_chains > 0 ? srv->limits.split_min_chains : 16;
    size_t want = (n_chains + per - 1) / per;

    if (want < 1)
        want = 1;
    return want < workers ? (unsigned)want : workers;
}

/* Frees a request that never became a batch and gives back its admission. */
static void request_refuse(struct vcall *vc, struct codec_request *rq, size_t bytes,
                           grpc_status_code code, const char *msg)
{
    admission_release(vc->base.tr->srv, rq->req->n_chains, bytes);
    codec_request_free(rq);
    vcall_fail(vc, code, msg);
}

/* |req| and its |bytes| are admitted (counted in the server's in-flight
 * totals); the batch made of them gives them back when it is freed. The
 * batch takes |rq| (its arena holds the request and its claims). */
static void dispatch_batch(struct vcall *vc, struct codec_request *rq, size_t bytes)
{
    Certval__V1__ValidateRequest *req = rq->req;
    struct server *srv = vc->base.tr->srv;
    struct reload_snapshot *snap;
    struct batch *b;
    grpc_status_code code;
    char msg[200];
    unsigned n_slices;

    atomic_fetch_add_explicit(&srv->inflight_chains, (long)req->n_chains, memory_order_relaxed);
    snap = reload_acquire();
    if (snap == NULL) {
        request_refuse(vc, rq, bytes, GRPC_STATUS_UNAVAILABLE,
                       "no configuration loaded");
        return;
    }
    n_slices = slices_for(srv, req->n_chains);
    if (!drain_leaves_time(srv, req->n_chains, n_slices)) {
        reload_release(snap);
        admission_release(srv, req->n_chains, bytes);
        codec_request_free(rq);
        vcall_fail(vc, GRPC_STATUS_UNAVAILABLE, DRAIN_REFUSED_MSG);
        return;
    }
    b = batch_new(vc, rq, bytes, snap, n_slices);
    if (b == NULL) {
        reload_release(snap);
        request_refuse(vc, rq, bytes, GRPC_STATUS_RESOURCE_EXHAUSTED,
                       "out of memory");
        return;
    }
    if (req->n_chains == 0 || answer_inline(b)) {
        batch_respond(b); /* empty, or every chain answered from the cache */
        return;
    }
    code = service_admit_batch(srv, vc->deadline_ns, req->n_chains, n_slices, msg, sizeof(msg));
    if (code != GRPC_STATUS_OK) {
        batch_free(b);
        vcall_fail(vc, code, msg);
        return;
    }
    vc->batch = b;
    atomic_fetch_add_explicit(&b->remaining, 1, memory_order_relaxed); /* the QUEUED one */
    work_state_queue(&vc->batch_state);
    for (unsigned k = 0; k < n_slices; k++)
        worker_pool_submit(vc->base.tr->submitter, worker_pool_pick(srv->pool), &b->slices[k].item);
}


/* ---- receiving ---- */

/* Decodes |bb| into |*rq| (codec_request_unpack; at most |max_chains|
 * chains). 0, -EINVAL (not a ValidateRequest), -E2BIG (too many chains:
 * rq->n_chains says how many) or -ENOMEM. */
static int unpack_request(struct codec_request *rq, grpc_byte_buffer *bb, size_t max_chains)
{
    grpc_byte_buffer_reader reader;
    grpc_slice_buffer *sb;
    grpc_slice s;
    int err;

    if (!grpc_byte_buffer_reader_init(&reader, bb)) {
        memset(rq, 0, sizeof(*rq));
        return -EINVAL;
    }
    /* A message in one slice (the usual small request) is read in place;
     * the reader's buffer (decompressed, if it was) lives until the end. */
    sb = &reader.buffer_out->data.raw.slice_buffer;
    s = sb->count == 1 ? grpc_slice_ref(sb->slices[0]) : grpc_byte_buffer_reader_readall(&reader);
    err = codec_request_unpack(rq, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), max_chains);
    grpc_slice_unref(s);
    grpc_byte_buffer_reader_destroy(&reader);
    return err;
}

static void recv_done(struct tag *t, bool ok)
{
    struct vcall *vc = container_of(t, struct vcall, recv_tag);
    struct server *srv = vc->base.tr->srv;
    struct codec_request rq;
    grpc_byte_buffer *bb = vc->recv_buf;
    grpc_status_code code;
    char msg[200];
    size_t bytes;
    int err;

    vc->recv_buf = NULL;
    if (!ok) {
        /* Cancelled or the connection went away. */
        if (bb != NULL)
            grpc_byte_buffer_destroy(bb);
        call_unref(&vc->base);
        return;
    }
    if (bb == NULL) {
        /* The client half-closed: a stream ends cleanly, a unary call that
         * sent nothing is a client error. */
        if (vc->streaming)
            vcall_fail(vc, GRPC_STATUS_OK, "");
        else
            vcall_fail(vc, GRPC_STATUS_INVALID_ARGUMENT, "no request message");
        return;
    }
    bytes = grpc_byte_buffer_length(bb);
    code = service_admit(vc->base.tr->srv, vc->deadline_ns, bytes, msg, sizeof(msg));
    if (code != GRPC_STATUS_OK) {
        grpc_byte_buffer_destroy(bb);
        vcall_fail(vc, code, msg);
        return;
    }
    atomic_fetch_add_explicit(&vc->base.tr->srv->inflight_bytes, (long)bytes, memory_order_relaxed);
    err = unpack_request(&rq, bb, srv->limits.max_chains_per_batch);
    grpc_byte_buffer_destroy(bb);
    if (err < 0) {
        admission_release(srv, 0, bytes);
        if (err == -ENOMEM) {
            vcall_fail(vc, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory unpacking the request");
        } else if (err == -E2BIG) {
            /* Counted before any chain is decoded or allocated. */
            snprintf(msg, sizeof(msg), "batch has %zu chains; limit max_chains_per_batch is %u",
                     rq.n_chains, srv->limits.max_chains_per_batch);
            vcall_fail(vc, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
        } else {
            vcall_fail(vc, GRPC_STATUS_INVALID_ARGUMENT,
                       "request is not a valid certval.v1.ValidateRequest");
        }
        return;
    }
    dispatch_batch(vc, &rq, bytes);
}

static void vcall_recv_next(struct vcall *vc)
{
    grpc_op ops[2];
    size_t nops = 0;

    memset(ops, 0, sizeof(ops));
    /* A unary call's initial metadata goes out with its answer
     * (batch_respond, call_send_status): one write and one read for the
     * client instead of two. */
    if (vc->streaming && !vc->base.sent_initial_md) {
        ops[nops].op = GRPC_OP_SEND_INITIAL_METADATA;
        nops++;
        vc->base.sent_initial_md = true;
    }
    ops[nops].op = GRPC_OP_RECV_MESSAGE;
    ops[nops].data.recv_message.recv_message = &vc->recv_buf;
    nops++;
    if (grpc_call_start_batch(vc->base.call, ops, nops, &vc->recv_tag, NULL) != GRPC_CALL_OK)
        call_unref(&vc->base);
}

/* The client cancelled (or gRPC did, at the deadline): a batch no worker
 * has begun loses its payload now (work_state_cancel decides who frees it)
 * and its slices are skipped; chains of one that a worker has begun are
 * dropped before the next chain. Transport thread: the same one that
 * dispatches the call's batches, so |vc->batch| is the queued one. */
static void vcall_on_close(struct call_base *cb)
{
    struct vcall *vc = container_of(cb, struct vcall, base);

    if (!cb->cancelled)
        return;
    atomic_store_explicit(&vc->gone, true, memory_order_relaxed);
    if (work_state_cancel(&vc->batch_state)) {
        struct batch *b = vc->batch;
        int none = 0, why = GRPC_STATUS_CANCELLED;

        /* What the client was told, for certval_rpc_errors_total. */
        if (atomic_load_explicit(&cb->tr->srv->abandon, memory_order_relaxed))
            why = GRPC_STATUS_UNAVAILABLE;
        else if (server_mono_ns() >= vc->deadline_ns)
            why = GRPC_STATUS_DEADLINE_EXCEEDED;
        b->ended = true;
        atomic_compare_exchange_strong(&b->dropped, &none, why);
        batch_release_payload(b);
        batch_unref(b); /* the QUEUED reference; the last one ends the call */
    }
}

/* |d| (gRPC's clock) as CLOCK_MONOTONIC ns; UINT64_MAX = no deadline. */
static uint64_t deadline_mono_ns(gpr_timespec d)
{
    gpr_timespec left;
    int64_t ns;

    d = gpr_convert_clock_type(d, GPR_CLOCK_MONOTONIC);
    left = gpr_time_sub(d, gpr_now(GPR_CLOCK_MONOTONIC));
    if (d.tv_sec == INT64_MAX || left.tv_sec > 100000000)
        return UINT64_MAX;
    ns = left.tv_sec * 1000000000 + left.tv_nsec;
    return server_mono_ns() + (uint64_t)(ns > 0 ? ns : 0);
}

static void validate_start(const struct call_request *req, bool streaming)
{
    grpc_call *call = req->call;
    struct vcall *vc = calloc(1, sizeof(*vc));

    if (vc == NULL) {
        if (req->payload != NULL)
            grpc_byte_buffer_destroy(req->payload);
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        return;
    }
    vc->recv_buf = req->payload; /* unary: gRPC has read it (freed with |vc| on failure) */
    vc->streaming = streaming;
    vc->recv_tag.fn = recv_done;
    vc->send_tag.fn = send_done;
    vc->status_tag.fn = status_done;
    vc->deadline_ns = deadline_mono_ns(req->deadline);
    vc->base.on_close = vcall_on_close;
    if (!call_base_init(&vc->base, req, vcall_destroy)) {
        call_unref(&vc->base);
        return;
    }
    if (req->payload_read)
        recv_done(&vc->recv_tag, true); /* as its RECV_MESSAGE would complete */
    else
        vcall_recv_next(vc);
}

void service_validate_start(void *arg, const struct call_request *req)
{
    (void)arg;
    validate_start(req, false);
}

void service_validate_stream_start(void *arg, const struct call_request *req)
{
    (void)arg;
    validate_start(req, true);
}
