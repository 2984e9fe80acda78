/* grpc.health.v1.Health: Check and Watch, and the start-up readiness that
 * decides when it turns SERVING.
 *
 * One status serves "" and "certval.v1.Validator": NOT_SERVING until a
 * configuration with trust anchors is installed, SERVING after, NOT_SERVING
 * again while draining. Watch streams get the current status at once and
 * every change after it.
 *
 * The watcher list and each watcher's flags are protected by |lock|;
 * transport threads (completions) and the main thread (status changes) take
 * it. */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>

#include "call.h"
#include "config.h"
#include "fleet.h" /* fleet (issue 11) */
#include "grpc/health/v1/health.pb-c.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"

struct hcall {
    struct call_base base;
    bool watch;
    struct tag recv_tag, send_tag, status_tag;
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;
    bool known_service;
    /* Watch state, under |lock|. */
    struct hcall *next, *prev;
    bool listed, sending, closed, finishing;
    int last_sent;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool serving;
static struct hcall watchers; /* list head; next/prev only */

static int current_status(const struct hcall *h)
{
    if (!h->known_service)
        return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
    return serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                   : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

static grpc_byte_buffer *pack_status(int status)
{
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    uint8_t buf[16];
    size_t len;
    grpc_slice s;
    grpc_byte_buffer *bb;

    resp.status = status;
    len = grpc__health__v1__health_check_response__pack(&resp, buf);
    s = grpc_slice_from_copied_buffer((const char *)buf, len);
    bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

static void hcall_destroy(struct call_base *cb)
{
    struct hcall *h = container_of(cb, struct hcall, base);

    if (h->recv_buf != NULL)
        grpc_byte_buffer_destroy(h->recv_buf);
    if (h->send_buf != NULL)
        grpc_byte_buffer_destroy(h->send_buf);
    free(h);
}

static void status_done(struct tag *t, bool ok)
{
    struct hcall *h = container_of(t, struct hcall, status_tag);

    (void)ok;
    call_unref(&h->base);
}

static void finish(struct hcall *h, grpc_status_code code, const char *msg)
{
    if (call_send_status(&h->base, &h->status_tag, code, msg) != GRPC_CALL_OK)
        call_unref(&h->base);
}

static void unlist(struct hcall *h)
{
    if (!h->listed)
        return;
    h->prev->next = h->next;
    h->next->prev = h->prev;
    h->listed = false;
}

/* Start sending |status| on a watcher. Called with |lock| held. */
static bool watch_send_locked(struct hcall *h, int status)
{
    grpc_op op;

    h->send_buf = pack_status(status);
    h->last_sent = status;
    h->sending = true;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = h->send_buf;
    if (grpc_call_start_batch(h->base.call, &op, 1, &h->send_tag, NULL) != GRPC_CALL_OK) {
        h->sending = false;
        return false;
    }
    return true;
}

/* What a watcher does once nothing is in flight. Called with |lock| held;
 * returns 1 to drop the handler reference, 2 to finish the call (after the
 * lock is released), 0 to keep waiting. */
static int watch_settle_locked(struct hcall *h)
{
    if (h->closed) {
        unlist(h);
        return 1;
    }
    if (h->finishing) {
        unlist(h);
        return 2;
    }
    if (current_status(h) != h->last_sent && !watch_send_locked(h, current_status(h))) {
        unlist(h);
        return 1;
    }
    return 0;
}

static void settle_outcome(struct hcall *h, int what)
{
    if (what == 1)
        call_unref(&h->base);
    else if (what == 2)
        finish(h, GRPC_STATUS_UNAVAILABLE, "server draining");
}

static void watch_send_done(struct tag *t, bool ok)
{
    struct hcall *h = container_of(t, struct hcall, send_tag);
    int what;

    pthread_mutex_lock(&lock);
    grpc_byte_buffer_destroy(h->send_buf);
    h->send_buf = NULL;
    h->sending = false;
    if (!ok)
        h->closed = true;
    what = watch_settle_locked(h);
    pthread_mutex_unlock(&lock);
    settle_outcome(h, what);
}

static void watch_on_close(struct call_base *cb)
{
    struct hcall *h = container_of(cb, struct hcall, base);
    int what = 0;

    pthread_mutex_lock(&lock);
    h->closed = true;
    if (h->listed && !h->sending)
        what = watch_settle_locked(h);
    pthread_mutex_unlock(&lock);
    settle_outcome(h, what);
}

static void unary_send_done(struct tag *t, bool ok)
{
    struct hcall *h = container_of(t, struct hcall, send_tag);

    (void)ok;
    call_unref(&h->base);
}

static void check_respond(struct hcall *h)
{
    grpc_slice empty = grpc_empty_slice();
    grpc_op ops[2];
    int status;

    if (!h->known_service) {
        finish(h, GRPC_STATUS_NOT_FOUND, "unknown service");
        return;
    }
    pthread_mutex_lock(&lock);
    status = current_status(h);
    pthread_mutex_unlock(&lock);
    h->send_buf = pack_status(status);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_MESSAGE;
    ops[0].data.send_message.send_message = h->send_buf;
    ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[1].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[1].data.send_status_from_server.status_details = &empty;
    if (grpc_call_start_batch(h->base.call, ops, 2, &h->send_tag, NULL) != GRPC_CALL_OK)
        call_unref(&h->base);
}

static void watch_begin(struct hcall *h)
{
    bool ok = true;

    pthread_mutex_lock(&lock);
    if (h->closed) {
        ok = false;
    } else {
        h->next = &watchers;
        h->prev = watchers.prev;
        watchers.prev->next = h;
        watchers.prev = h;
        h->listed = true;
        if (!watch_send_locked(h, current_status(h))) {
            unlist(h);
            ok = false;
        }
    }
    pthread_mutex_unlock(&lock);
    if (!ok)
        call_unref(&h->base);
}

static bool parse_service(struct hcall *h, grpc_byte_buffer *bb)
{
    Grpc__Health__V1__HealthCheckRequest *req;
    grpc_byte_buffer_reader reader;
    grpc_slice s;

    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return false;
    s = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    req = grpc__health__v1__health_check_request__unpack(NULL, GRPC_SLICE_LENGTH(s),
                                                          GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    if (req == NULL)
        return false;
    h->known_service = req->service == NULL || req->service[0] == '\0' ||
                       strcmp(req->service, "certval.v1.Validator") == 0;
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);
    return true;
}

static void recv_done(struct tag *t, bool ok)
{
    struct hcall *h = container_of(t, struct hcall, recv_tag);
    grpc_byte_buffer *bb = h->recv_buf;
    bool parsed;

    h->recv_buf = NULL;
    if (!ok || bb == NULL) {
        if (bb != NULL)
            grpc_byte_buffer_destroy(bb);
        if (ok)
            finish(h, GRPC_STATUS_INVALID_ARGUMENT, "no request message");
        else
            call_unref(&h->base);
        return;
    }
    parsed = parse_service(h, bb);
    grpc_byte_buffer_destroy(bb);
    if (!parsed) {
        finish(h, GRPC_STATUS_INVALID_ARGUMENT, "not a grpc.health.v1.HealthCheckRequest");
        return;
    }
    if (h->watch)
        watch_begin(h);
    else
        check_respond(h);
}

static void health_start(const struct call_request *req, bool watch)
{
    grpc_call *call = req->call;
    struct hcall *h = calloc(1, sizeof(*h));
    grpc_op ops[2];

    if (h == NULL) {
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        return;
    }
    h->watch = watch;
    h->recv_tag.fn = recv_done;
    h->send_tag.fn = watch ? watch_send_done : unary_send_done;
    h->status_tag.fn = status_done;
    h->last_sent = -1;
    if (watch)
        h->base.on_close = watch_on_close;
    if (!call_base_init(&h->base, req, hcall_destroy)) {
        call_unref(&h->base);
        return;
    }
    memset(ops, 0, sizeof(ops));
    h->base.sent_initial_md = true;
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &h->recv_buf;
    if (grpc_call_start_batch(call, ops, 2, &h->recv_tag, NULL) != GRPC_CALL_OK)
        call_unref(&h->base);
}

void health_check_start(void *arg, const struct call_request *req)
{
    (void)arg;
    health_start(req, false);
}

void health_watch_start(void *arg, const struct call_request *req)
{
    (void)arg;
    health_start(req, true);
}

static void list_init_locked(void)
{
    if (watchers.next == NULL) {
        watchers.next = &watchers;
        watchers.prev = &watchers;
    }
}

__attribute__((constructor)) static void health_init(void)
{
    list_init_locked();
}

void health_set_serving(bool on)
{
    struct hcall *drop[64];
    size_t n_drop = 0;

    pthread_mutex_lock(&lock);
    if (serving != on)
        log_info("health: %s", on ? "SERVING" : "NOT_SERVING");
    serving = on;
    for (struct hcall *h = watchers.next; h != &watchers;) {
        struct hcall *next = h->next;

        if (!h->sending && current_status(h) != h->last_sent &&
            !watch_send_locked(h, current_status(h)) && n_drop < 64) {
            unlist(h);
            drop[n_drop++] = h;
        }
        h = next;
    }
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < n_drop; i++)
        call_unref(&drop[i]->base);
}

bool health_is_serving(void)
{
    bool on;

    pthread_mutex_lock(&lock);
    on = serving;
    pthread_mutex_unlock(&lock);
    return on;
}

void health_finish_watchers(void)
{
    struct hcall *fin[256];
    size_t n_fin = 0;
    bool more = true;

    /* Bounded batches: finish calls outside the lock. */
    while (more) {
        more = false;
        n_fin = 0;
        pthread_mutex_lock(&lock);
        for (struct hcall *h = watchers.next; h != &watchers;) {
            struct hcall *next = h->next;

            h->finishing = true;
            if (!h->sending) {
                if (n_fin == 256) {
                    more = true;
                    break;
                }
                unlist(h);
                fin[n_fin++] = h;
            }
            h = next;
        }
        pthread_mutex_unlock(&lock);
        for (size_t i = 0; i < n_fin; i++)
            finish(fin[i], GRPC_STATUS_UNAVAILABLE, "server draining");
    }
}

void health_on_drain(void *arg, bool closing)
{
    (void)arg;
    health_set_serving(false);
    if (closing)
        health_finish_watchers();
}

/* ---- start-up readiness (crl_fetch.h, issue 4) ----
 * Health turns SERVING once a configuration is in AND every profile that
 * checks revocation has a CRL of each of its issuers (revocation_ready).
 * It is re-evaluated after every install and every accepted CRL (the
 * reload.h hook, from whichever thread), and latched: once SERVING, a CRL
 * going stale does not flip health (on_stale decides per verdict), and
 * once draining starts nothing turns it back on. |ready_lock| protects
 * the latch and the last reason logged. */
static pthread_mutex_t ready_lock = PTHREAD_MUTEX_INITIALIZER;
static bool ready_latched;
static char ready_why[512];

void health_readiness_update(const struct crl_cache *crls)
{
    struct reload_snapshot *snap;
    char why[512];

    pthread_mutex_lock(&ready_lock);
    snap = ready_latched ? NULL : reload_acquire();
    if (snap != NULL && reload_revocation_ready(snap, crls, why, sizeof(why)) &&
        fleet_ready(&snap->cfg->fleet, why, sizeof(why))) { /* fleet (issue 11): after its first read */
        ready_latched = true;
        health_set_serving(true);
    } else if (snap != NULL && strcmp(why, ready_why) != 0) {
        /* Logged when the reason changes, not on every CRL. */
        snprintf(ready_why, sizeof(ready_why), "%s", why);
        log_warn("health stays NOT_SERVING until the required CRLs are in: %s", why);
    }
    pthread_mutex_unlock(&ready_lock);
    reload_release(snap);
}

void health_readiness_freeze(void)
{
    pthread_mutex_lock(&ready_lock);
    ready_latched = true;
    pthread_mutex_unlock(&ready_lock);
}

void health_collect(struct mbuf *b, void *arg)
{
    struct reload_snapshot *snap = reload_acquire();

    (void)arg;
    mbuf_printf(b, "# HELP certval_up_serving 1 while health is SERVING.\n"
                   "# TYPE certval_up_serving gauge\ncertval_up_serving %d\n",
                health_is_serving() ? 1 : 0);
    if (snap == NULL)
        return;
    mbuf_printf(b, "# HELP certval_config_version Generation of the configuration in use.\n"
                   "# TYPE certval_config_version gauge\ncertval_config_version %llu\n",
                (unsigned long long)snap->version);
    mbuf_printf(b, "# HELP certval_trust_anchor_expiry_timestamp_seconds notAfter of each "
                   "configured trust anchor.\n"
                   "# TYPE certval_trust_anchor_expiry_timestamp_seconds gauge\n");
    for (size_t i = 0; i < snap->n_anchors; i++) {
        mbuf_printf(b, "certval_trust_anchor_expiry_timestamp_seconds{subject=\"");
        mbuf_label(b, snap->anchors[i].subject);
        mbuf_printf(b, "\"} %lld\n", (long long)snap->anchors[i].not_after);
    }
    reload_release(snap);
}
