/* envoy.service.auth.v3.Authorization/Check (Envoy ext_authz v3, gRPC),
 * served on certval's gRPC listeners beside certval.v1.Validator
 * (docs/frontends.md).
 *
 * The chain comes from x-forwarded-client-cert (Chain=, else Cert=;
 * forward_client_cert_details SANITIZE_SET) or, failing that, from
 * attributes.source.certificate (the leaf only; the path is completed from
 * the configured intermediates). Every answer is a CheckResponse with gRPC
 * status OK: ALLOW and REQUIRE_PASSWORD are an OkHttpResponse that sets the
 * X-Certval-* headers (overwriting any copy the client sent); DENY, a
 * malformed request and "not ready" are a DeniedHttpResponse. certval never
 * answers Check with a gRPC error, so Envoy's failure_mode_allow can only
 * matter when certval cannot be reached at all.
 *
 * Path: the call arrives on a transport thread, which unpacks it, tries the
 * verdict cache (frontend_check_cached), and otherwise hands the check to a
 * worker of the same pool Validate uses; the worker validates
 * (frontend_check) and starts the send (grpc_call_start_batch is
 * thread-safe); the completion returns to the transport thread. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "call.h"
#include "config.h"
#include "envoy.h"
#include "envoy/service/auth/v3/external_auth.pb-c.h"
#include "frontend.h"
#include "frontend_internal.h"
#include "health.h"
#include "reload.h"
#include "server.h"
#include "verdict.h"

#define XFCC_HEADER "x-forwarded-client-cert"
/* google.rpc.Code values (grpc/status.h has the same numbers). */
#define RPC_OK 0
#define RPC_PERMISSION_DENIED 7
#define RPC_UNAVAILABLE 14

struct ecall {
    struct call_base base;
    struct work_item item;
    struct tag recv_tag;
    struct tag send_tag;
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;
    struct reload_snapshot *snap;
    struct frontend_certs certs;
    struct frontend_claims claims;
    struct verdict verdict;
};

static void ecall_destroy(struct call_base *cb)
{
    struct ecall *ec = container_of(cb, struct ecall, base);

    if (ec->recv_buf != NULL)
        grpc_byte_buffer_destroy(ec->recv_buf);
    if (ec->send_buf != NULL)
        grpc_byte_buffer_destroy(ec->send_buf);
    frontend_certs_clear(&ec->certs);
    reload_release(ec->snap);
    free(ec);
}

/* ---- response ---- */

struct header_set {
    Envoy__Config__Core__V3__HeaderValueOption opt[5];
    Envoy__Config__Core__V3__HeaderValue hv[5];
    Envoy__Config__Core__V3__HeaderValueOption *ptrs[5];
    char names[5][96];
};

static void header_set_fill(struct header_set *h, const struct frontends_config *f,
                            const struct verdict *v, const struct frontend_claims *cl)
{
    static const char *const suffix[5] = {"decision", "reason", "kind", "tenant", "device"};
    const char *values[5] = {verdict_decision_name(v->decision), verdict_reason_name(v->reason),
                             cert_kind_name(v->kind), cl->tenant, cl->device};

    for (int i = 0; i < 5; i++) {
        Envoy__Config__Core__V3__HeaderValueOption o =
            ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__INIT;
        Envoy__Config__Core__V3__HeaderValue hv = ENVOY__CONFIG__CORE__V3__HEADER_VALUE__INIT;

        frontend_header_name(h->names[i], sizeof(h->names[i]), f, suffix[i]);
        hv.key = h->names[i];
        hv.value = (char *)values[i];
        h->hv[i] = hv;
        o.header = &h->hv[i];
        /* Replace, never add to, a copy the client sent. */
        o.append_action =
            ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS_OR_ADD;
        h->opt[i] = o;
        h->ptrs[i] = &h->opt[i];
    }
}

/* pack_check_response builds the CheckResponse for |v| (NULL: not ready). */
static grpc_byte_buffer *pack_check_response(const struct reload_snapshot *snap,
                                             const struct verdict *v,
                                             const struct frontend_claims *cl)
{
    Envoy__Service__Auth__V3__CheckResponse resp = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__INIT;
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    Envoy__Service__Auth__V3__OkHttpResponse ok = ENVOY__SERVICE__AUTH__V3__OK_HTTP_RESPONSE__INIT;
    Envoy__Service__Auth__V3__DeniedHttpResponse denied =
        ENVOY__SERVICE__AUTH__V3__DENIED_HTTP_RESPONSE__INIT;
    Envoy__Type__V3__HttpStatus hs = ENVOY__TYPE__V3__HTTP_STATUS__INIT;
    struct header_set h;
    char body[VERDICT_DETAIL_MAX + 64], msg[64];
    grpc_byte_buffer *bb;
    grpc_slice s;
    size_t len;
    uint8_t *buf;

    resp.status = &st;
    if (v == NULL || snap == NULL) {
        st.code = RPC_UNAVAILABLE;
        st.message = "certval is not ready";
        hs.code = 503;
        denied.status = &hs;
        denied.body = "certval: not ready\n";
        resp.http_response_case =
            ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_DENIED_RESPONSE;
        resp.denied_response = &denied;
    } else if (v->decision == DECISION_ALLOW || v->decision == DECISION_REQUIRE_PASSWORD) {
        header_set_fill(&h, &snap->cfg->frontends, v, cl);
        st.code = RPC_OK;
        ok.n_headers = 5;
        ok.headers = h.ptrs;
        resp.http_response_case =
            ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_OK_RESPONSE;
        resp.ok_response = &ok;
    } else {
        header_set_fill(&h, &snap->cfg->frontends, v, cl);
        snprintf(msg, sizeof(msg), "DENY %s", verdict_reason_name(v->reason));
        snprintf(body, sizeof(body), "certval: DENY %s\n", verdict_reason_name(v->reason));
        st.code = RPC_PERMISSION_DENIED;
        st.message = msg;
        hs.code = (Envoy__Type__V3__StatusCode)snap->cfg->frontends.deny_status;
        denied.status = &hs;
        denied.body = body;
        denied.n_headers = 5;
        denied.headers = h.ptrs;
        resp.http_response_case =
            ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_DENIED_RESPONSE;
        resp.denied_response = &denied;
    }
    len = envoy__service__auth__v3__check_response__get_packed_size(&resp);
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        return NULL;
    envoy__service__auth__v3__check_response__pack(&resp, buf);
    s = grpc_slice_new(buf, len, free);
    bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

static void send_done(struct tag *t, bool ok)
{
    struct ecall *ec = container_of(t, struct ecall, send_tag);

    (void)ok;
    call_unref(&ec->base);
}

/* Sends the answer and the OK status; consumes the handler's reference.
 * Runs on the transport thread or a worker. */
static void ecall_respond(struct ecall *ec, const struct verdict *v)
{
    grpc_slice empty = grpc_empty_slice();
    grpc_op ops[2];

    ec->send_buf = pack_check_response(ec->snap, v, &ec->claims);
    if (ec->send_buf == NULL) {
        /* Out of memory: a gRPC error is all that is left; Envoy's
         * failure_mode_allow (default false) keeps it closed. */
        grpc_call_cancel_with_status(ec->base.call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory",
                                     NULL);
        call_unref(&ec->base);
        return;
    }
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_MESSAGE;
    ops[0].data.send_message.send_message = ec->send_buf;
    ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[1].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[1].data.send_status_from_server.status_details = &empty;
    if (grpc_call_start_batch(ec->base.call, ops, 2, &ec->send_tag, NULL) != GRPC_CALL_OK)
        call_unref(&ec->base);
}

/* ---- request ---- */

static const char *find_header(const Envoy__Service__Auth__V3__AttributeContext__HttpRequest *http,
                               const char *name, size_t *len)
{
    *len = 0;
    if (http == NULL)
        return NULL;
    for (size_t i = 0; i < http->n_headers; i++)
        if (http->headers[i]->key != NULL && strcasecmp(http->headers[i]->key, name) == 0) {
            *len = strlen(http->headers[i]->value);
            return http->headers[i]->value;
        }
    if (http->header_map != NULL)
        for (size_t i = 0; i < http->header_map->n_headers; i++) {
            const Envoy__Config__Core__V3__HeaderValue *hv = http->header_map->headers[i];

            if (hv->key == NULL || strcasecmp(hv->key, name) != 0)
                continue;
            if (hv->raw_value.len > 0) {
                *len = hv->raw_value.len;
                return (const char *)hv->raw_value.data;
            }
            *len = strlen(hv->value);
            return hv->value;
        }
    return NULL;
}

/* Fills the claims and certificates of |ec| from |req|; NULL, or the
 * reason the request is malformed. */
static const char *read_request(struct ecall *ec, const Envoy__Service__Auth__V3__CheckRequest *req)
{
    const struct frontends_config *f = &ec->snap->cfg->frontends;
    const Envoy__Service__Auth__V3__AttributeContext *a = req->attributes;
    const Envoy__Service__Auth__V3__AttributeContext__HttpRequest *http =
        a != NULL && a->request != NULL ? a->request->http : NULL;
    const char *v;
    size_t len;
    int rc;

    v = find_header(http, f->tenant_header, &len);
    if (v != NULL && len > 0) {
        if (frontend_claim_copy(ec->claims.tenant, v, len) != 0)
            return "tenant header too long or invalid";
    } else if (http != NULL && http->host != NULL) {
        v = frontend_tenant_for_host(f, http->host, strlen(http->host));
        if (v != NULL && frontend_claim_copy(ec->claims.tenant, v, strlen(v)) != 0)
            return "mapped tenant too long";
    }
    v = find_header(http, f->device_header, &len);
    if (v != NULL && frontend_claim_copy(ec->claims.device, v, len) != 0)
        return "device header too long or invalid";
    v = find_header(http, f->user_header, &len);
    if (v != NULL && frontend_claim_copy(ec->claims.user, v, len) != 0)
        return "user header too long or invalid";
    v = find_header(http, XFCC_HEADER, &len);
    rc = v != NULL && len > 0 ? frontend_xfcc_certs(&ec->certs, v, len) : 0;
    if (rc < 0)
        return "x-forwarded-client-cert is malformed";
    if (rc == 0 && a != NULL && a->source != NULL && a->source->certificate != NULL &&
        a->source->certificate[0] != '\0') {
        char *pem = NULL;
        size_t pem_len = 0;

        rc = frontend_url_decode(&pem, &pem_len, a->source->certificate,
                                 strlen(a->source->certificate));
        if (rc == 0)
            rc = frontend_certs_add_pem(&ec->certs, pem, pem_len);
        free(pem);
        if (rc != 0)
            return "attributes.source.certificate is not URL-encoded PEM";
    }
    return NULL;
}

static void check_run(struct work_item *item)
{
    struct ecall *ec = container_of(item, struct ecall, item);

    frontend_check(&ec->verdict, METRICS_FRONTEND_ENVOY, &ec->base.tr->srv->rev, ec->snap,
                   &ec->certs, &ec->claims, frontend_now());
    ecall_respond(ec, &ec->verdict);
}

static Envoy__Service__Auth__V3__CheckRequest *unpack_check(grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader reader;
    Envoy__Service__Auth__V3__CheckRequest *req;
    grpc_slice s;

    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return NULL;
    s = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    req = envoy__service__auth__v3__check_request__unpack(NULL, GRPC_SLICE_LENGTH(s),
                                                          GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    return req;
}

static void recv_done(struct tag *t, bool ok)
{
    struct ecall *ec = container_of(t, struct ecall, recv_tag);
    struct server *srv = ec->base.tr->srv;
    Envoy__Service__Auth__V3__CheckRequest *req = NULL;
    grpc_byte_buffer *bb = ec->recv_buf;
    const char *bad = NULL;

    ec->recv_buf = NULL;
    if (!ok) {
        if (bb != NULL)
            grpc_byte_buffer_destroy(bb);
        call_unref(&ec->base);
        return;
    }
    ec->snap = reload_acquire();
    /* Not ready: no configuration, or health not SERVING for another reason
     * than the drain (while draining, calls still in flight are answered,
     * as Validate's are, and Envoy moves to other replicas on health). */
    if (ec->snap == NULL || (!health_is_serving() && !atomic_load(&srv->draining))) {
        if (bb != NULL)
            grpc_byte_buffer_destroy(bb);
        ecall_respond(ec, NULL);
        return;
    }
    /* Malformed input is a DENY, never a gRPC error Envoy could fail open on. */
    if (bb == NULL) {
        bad = "no CheckRequest message";
    } else {
        req = unpack_check(bb);
        grpc_byte_buffer_destroy(bb);
        bad = req == NULL ? "request is not an envoy.service.auth.v3.CheckRequest"
                          : read_request(ec, req);
    }
    if (req != NULL)
        envoy__service__auth__v3__check_request__free_unpacked(req, NULL);
    if (bad != NULL) {
        frontend_malformed(&ec->verdict, METRICS_FRONTEND_ENVOY, &ec->claims, bad);
        ecall_respond(ec, &ec->verdict);
        return;
    }
    if (frontend_check_cached(&ec->verdict, METRICS_FRONTEND_ENVOY, &srv->rev, ec->snap, &ec->certs,
                              &ec->claims, frontend_now())) {
        ecall_respond(ec, &ec->verdict);
        return;
    }
    ec->item.run = check_run;
    worker_pool_submit(ec->base.tr->submitter, worker_pool_pick(srv->pool), &ec->item);
}

static void status_only_done(struct tag *t, bool ok)
{
    struct ecall *ec = container_of(t, struct ecall, send_tag);

    (void)ok;
    call_unref(&ec->base);
}

void envoy_check_start(void *arg, const struct call_request *req)
{
    grpc_call *call = req->call;
    struct ecall *ec = calloc(1, sizeof(*ec));
    struct reload_snapshot *snap;
    grpc_op ops[2];

    if (ec == NULL) {
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        return;
    }
    (void)arg;
    ec->recv_tag.fn = recv_done;
    ec->send_tag.fn = send_done;
    if (!call_base_init(&ec->base, req, ecall_destroy)) {
        call_unref(&ec->base);
        return;
    }
    snap = reload_acquire();
    if (snap != NULL && !snap->cfg->frontends.envoy_enabled) {
        reload_release(snap);
        ec->send_tag.fn = status_only_done;
        if (call_send_status(&ec->base, &ec->send_tag, GRPC_STATUS_UNIMPLEMENTED,
                             "frontends.envoy.enabled is false") != GRPC_CALL_OK)
            call_unref(&ec->base);
        return;
    }
    reload_release(snap);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ec->base.sent_initial_md = true;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &ec->recv_buf;
    if (grpc_call_start_batch(call, ops, 2, &ec->recv_tag, NULL) != GRPC_CALL_OK)
        call_unref(&ec->base);
}
