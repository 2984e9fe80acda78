/* certval.v1.Validator: Validate (unary) and ValidateStream (bidi).
 *
 * One batch: the transport thread unpacks the request, takes a reference to
 * the current configuration snapshot, cuts the chains into slices and hands
 * each slice to a worker over io_uring (workers.h). Small batches go whole to
 * one worker; larger ones are split so one big request uses every core. The
 * worker that finishes the last slice packs the response and starts the send;
 * its completion returns to the call's transport thread. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "audit.h"
#include "certval/v1/certval.pb-c.h"
#include "claims.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "server_internal.h"
#include "validator.h"
#include "verdict.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

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
    Certval__V1__ValidateRequest *req;
    struct claims *claims; /* wire lengths of the claims; NULL = their strlen */
    struct snapshot *snap;
    int64_t now;
    uint64_t received_ns; /* CLOCK_MONOTONIC at receipt, for the latency histogram */
    struct verdict *verdicts;
    bool *done; /* answered inline from the verdict cache; NULL = none */
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

static void batch_free(struct batch *b)
{
    if (b == NULL)
        return;
    if (b->req != NULL)
        certval__v1__validate_request__free_unpacked(b->req, NULL);
    claims_free(b->claims);
    snapshot_release(b->snap);
    free(b->verdicts);
    free(b->done);
    free(b);
}

static void status_done(struct tag *t, bool ok)
{
    struct vcall *vc = container_of(t, struct vcall, status_tag);

    (void)ok;
    call_unref(&vc->base);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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
    Certval__V1__ValidateResponse resp = CERTVAL__V1__VALIDATE_RESPONSE__INIT;
    Certval__V1__Verdict *pv = NULL, **ptrs = NULL;
    grpc_byte_buffer *bb = NULL;
    uint8_t *buf = NULL;
    size_t len;

    if (n > 0) {
        pv = calloc(n, sizeof(*pv));
        ptrs = calloc(n, sizeof(*ptrs));
        if (pv == NULL || ptrs == NULL)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        Certval__V1__Verdict init = CERTVAL__V1__VERDICT__INIT;

        pv[i] = init;
        pv[i].id = v[i].id;
        /* verdict-t.h keeps the protobuf enum values; see test_verdict. */
        pv[i].decision = (Certval__V1__Decision)v[i].decision;
        pv[i].reason = (Certval__V1__Reason)v[i].reason;
        pv[i].kind = (Certval__V1__CertificateKind)v[i].kind;
        pv[i].detail = (char *)v[i].detail;
        pv[i].subject = (char *)v[i].subject;
        pv[i].serial_hex = (char *)v[i].serial_hex;
        pv[i].profile = (char *)v[i].profile;
        pv[i].not_after_unix = v[i].not_after_unix;
        if (v[i].has_leaf_sha256) {
            pv[i].leaf_sha256.data = (uint8_t *)v[i].leaf_sha256;
            pv[i].leaf_sha256.len = sizeof(v[i].leaf_sha256);
        }
        ptrs[i] = &pv[i];
    }
    resp.n_verdicts = n;
    resp.verdicts = ptrs;
    len = certval__v1__validate_response__get_packed_size(&resp);
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        goto out;
    certval__v1__validate_response__pack(&resp, buf);
    {
        /* The slice takes ownership of |buf|: no copy of the response. */
        grpc_slice s = grpc_slice_new(buf, len, free);

        buf = NULL;
        bb = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
    }
out:
    free(buf);
    free(pv);
    free(ptrs);
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

/* Runs on the worker that completes the last slice. */
static void batch_respond(struct batch *b)
{
    struct vcall *vc = b->vc;
    size_t n = b->req->n_chains;
    grpc_slice empty = grpc_empty_slice();
    grpc_op ops[2];
    size_t nops = 0;

    vc->send_buf = pack_response(b->verdicts, n);
    metrics_record_batch(n, mono_ns() - b->received_ns, vc->streaming);
    batch_free(b);
    if (vc->send_buf == NULL) {
        vcall_fail(vc, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory packing the response");
        return;
    }
    memset(ops, 0, sizeof(ops));
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
    const Certval__V1__ChainRequest *cr = b->req->chains[i];
    struct chain_input in;

    claims_apply(&in, b->claims, i, cr);
    metrics_record_verdict(&b->verdicts[i], cr->tenant_id);
    audit_verdict(&b->verdicts[i], in.tenant_id, in.device_id, in.user_id);
}

/* Runs validator_check_chain, or with |cached_only| validator_check_cached;
 * returns whether chain |i| is answered. */
static bool validate_one(struct batch *b, size_t i, bool cached_only)
{
    const Certval__V1__ChainRequest *cr = b->req->chains[i];
    struct cv_bytes stack_certs[STACK_CERTS], *certs = stack_certs;
    const struct revocation_sources *src = &b->vc->base.tr->srv->rev;
    struct chain_input in;
    bool answered = true;

    if (cr->n_certificates > STACK_CERTS) {
        if (cached_only)
            return false;
        certs = calloc(cr->n_certificates, sizeof(*certs));
        if (certs == NULL) {
            verdict_init(&b->verdicts[i], cr->id);
            verdict_deny(&b->verdicts[i], REASON_INTERNAL_ERROR, "out of memory");
            record(b, i);
            return true;
        }
    }
    chain_input_from(&in, certs, cr);
    claims_apply(&in, b->claims, i, cr);
    if (cached_only)
        answered = validator_check_cached(b->snap->validator, src, &b->verdicts[i], &in, b->now);
    else
        validator_check_chain(b->snap->validator, src, &b->verdicts[i], &in, b->now);
    if (certs != stack_certs)
        free(certs);
    if (answered)
        record(b, i);
    return answered;
}

static void slice_run(struct work_item *item)
{
    struct slice *s = container_of(item, struct slice, item);
    struct batch *b = s->batch;

    for (size_t i = s->begin; i < s->end; i++)
        if (b->done == NULL || !b->done[i])
            validate_one(b, i, false);
    /* acq_rel: the last slice must see every other slice's verdicts. */
    if (atomic_fetch_sub_explicit(&b->remaining, 1, memory_order_acq_rel) == 1)
        batch_respond(b);
}

static struct batch *batch_new(struct vcall *vc, Certval__V1__ValidateRequest *req,
                               struct snapshot *snap, unsigned n_slices)
{
    struct batch *b = calloc(1, sizeof(*b) + n_slices * sizeof(struct slice));
    size_t n = req->n_chains;

    if (b == NULL)
        return NULL;
    b->verdicts = calloc(n > 0 ? n : 1, sizeof(*b->verdicts));
    if (b->verdicts == NULL) {
        free(b);
        return NULL;
    }
    b->vc = vc;
    b->req = req;
    b->snap = snap;
    b->now = (int64_t)time(NULL);
    b->received_ns = mono_ns();
    b->n_slices = n_slices;
    atomic_store(&b->remaining, n_slices);
    for (unsigned k = 0; k < n_slices; k++) {
        b->slices[k].item.run = slice_run;
        b->slices[k].batch = b;
        b->slices[k].begin = n * k / n_slices;
        b->slices[k].end = n * (k + 1) / n_slices;
    }
    return b;
}

/* Tries the verdict cache for every chain of a small batch on the
 * transport thread. True when all are answered; otherwise the misses are
 * left for a worker (b->done marks the hits). */
static bool answer_inline(struct batch *b)
{
    size_t n = b->req->n_chains, hits = 0;

    if (n > INLINE_MAX_CHAINS || b->vc->base.tr->srv->rev.cache == NULL)
        return false;
    b->done = calloc(n, sizeof(*b->done));
    if (b->done == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        b->done[i] = validate_one(b, i, true);
        hits += b->done[i];
    }
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

static void dispatch_batch(struct vcall *vc, Certval__V1__ValidateRequest *req,
                           struct claims *claims)
{
    struct server *srv = vc->base.tr->srv;
    struct snapshot *snap = snapshot_acquire();
    struct batch *b;
    char msg[160];
    unsigned n_slices;

    if (snap == NULL) {
        claims_free(claims);
        certval__v1__validate_request__free_unpacked(req, NULL);
        vcall_fail(vc, GRPC_STATUS_UNAVAILABLE, "no configuration loaded");
        return;
    }
    if (req->n_chains > srv->limits.max_chains_per_batch) {
        snprintf(msg, sizeof(msg), "batch has %zu chains; limit max_chains_per_batch is %u",
                 req->n_chains, srv->limits.max_chains_per_batch);
        claims_free(claims);
        certval__v1__validate_request__free_unpacked(req, NULL);
        snapshot_release(snap);
        vcall_fail(vc, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
        return;
    }
    n_slices = slices_for(srv, req->n_chains);
    b = batch_new(vc, req, snap, n_slices);
    if (b != NULL)
        b->claims = claims;
    else
        claims_free(claims);
    if (b == NULL) {
        certval__v1__validate_request__free_unpacked(req, NULL);
        snapshot_release(snap);
        vcall_fail(vc, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (req->n_chains == 0 || answer_inline(b)) {
        batch_respond(b); /* empty, or every chain answered from the cache */
        return;
    }
    for (unsigned k = 0; k < n_slices; k++)
        worker_pool_submit(vc->base.tr->submitter, worker_pool_pick(srv->pool),
                           &b->slices[k].item);
}

/* ---- receiving ---- */

static Certval__V1__ValidateRequest *unpack_request(grpc_byte_buffer *bb,
                                                    struct claims **out_claims)
{
    grpc_byte_buffer_reader reader;
    Certval__V1__ValidateRequest *req;
    grpc_slice s;

    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return NULL;
    s = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    req = certval__v1__validate_request__unpack(NULL, GRPC_SLICE_LENGTH(s),
                                                GRPC_SLICE_START_PTR(s));
    if (req != NULL &&
        claims_scan(out_claims, req, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s)) < 0) {
        certval__v1__validate_request__free_unpacked(req, NULL); /* out of memory */
        req = NULL;
    }
    grpc_slice_unref(s);
    return req;
}

static void recv_done(struct tag *t, bool ok)
{
    struct vcall *vc = container_of(t, struct vcall, recv_tag);
    Certval__V1__ValidateRequest *req;
    struct claims *claims = NULL;
    grpc_byte_buffer *bb = vc->recv_buf;

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
    req = unpack_request(bb, &claims);
    grpc_byte_buffer_destroy(bb);
    if (req == NULL) {
        vcall_fail(vc, GRPC_STATUS_INVALID_ARGUMENT,
                   "request is not a valid certval.v1.ValidateRequest");
        return;
    }
    dispatch_batch(vc, req, claims);
}

static void vcall_recv_next(struct vcall *vc)
{
    grpc_op ops[2];
    size_t nops = 0;

    memset(ops, 0, sizeof(ops));
    if (!vc->base.sent_initial_md) {
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

void service_validate_start(struct transport *tr, grpc_call *call, bool streaming)
{
    struct vcall *vc = calloc(1, sizeof(*vc));

    if (vc == NULL) {
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        return;
    }
    vc->streaming = streaming;
    vc->recv_tag.fn = recv_done;
    vc->send_tag.fn = send_done;
    vc->status_tag.fn = status_done;
    if (!call_base_init(&vc->base, call, tr, vcall_destroy)) {
        call_unref(&vc->base);
        return;
    }
    vcall_recv_next(vc);
}
