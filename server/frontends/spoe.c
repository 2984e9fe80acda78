/* HAProxy SPOE agent: SPOP 2.0 as HAProxy 2.6 speaks it (HAProxy's
 * doc/SPOE.txt, section 3), docs/frontends.md.
 *
 * HAProxy opens connections to the agent, sends HAPROXY-HELLO (answered
 * with AGENT-HELLO), then one NOTIFY per event; each NOTIFY carries one or
 * more messages whose arguments are read by name:
 *   leaf    BINARY  ssl_c_der        (empty or NULL: no certificate)
 *   chain   BINARY  ssl_c_chain_der  (the other certificates, concatenated
 *                                     DER, without the leaf; absent on a
 *                                     resumed TLS session)
 *   tenant, device, user  STRING     the claims
 *   host    STRING                   for frontends.tenant_by_host
 * The ACK sets, in the session scope, decision, reason, kind, tenant and
 * device (HAProxy prefixes them: sess.<var-prefix>.decision ...). Anything
 * malformed in a message is a DENY MALFORMED, never a silent success.
 *
 * We announce no capability (no pipelining, no fragmentation): HAProxy then
 * waits for each ACK before the next NOTIFY on a connection and opens more
 * connections for concurrency. One thread polls every connection and
 * validates inline with frontend_check: SPOP has no per-call completion the
 * worker pool could hand back to, and a verdict-cache hit (the usual case:
 * the same certificate on every connection) costs microseconds
 * (docs/architecture.md). */
#define _GNU_SOURCE /* accept4, memmem */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "rcu_reader.h"
#include "frontend.h"
#include "frontend_internal.h"
#include "health.h"
#include "log.h"
#include "reload.h"
#include "verdict.h"

#define SPOE_MAX_CONNS 256
/* Our max-frame-size: HAProxy's default (tune.bufsize 16384 - 4). A leaf
 * and a chain of a few certificates fit; HAProxy never sends more. */
#define SPOE_MAX_FRAME 16380u
#define SPOE_WBUF (4u * 1024u)

enum {
    FRAME_HAPROXY_HELLO = 1,
    FRAME_HAPROXY_DISCONNECT = 2,
    FRAME_NOTIFY = 3,
    FRAME_AGENT_HELLO = 101,
    FRAME_AGENT_DISCONNECT = 102,
    FRAME_ACK = 103,
};

enum {
    DATA_NULL = 0,
    DATA_BOOL = 1,
    DATA_INT32 = 2,
    DATA_UINT32 = 3,
    DATA_INT64 = 4,
    DATA_UINT64 = 5,
    DATA_IPV4 = 6,
    DATA_IPV6 = 7,
    DATA_STRING = 8,
    DATA_BINARY = 9,
};

#define FLAG_FIN 0x00000001u
#define ACTION_SET_VAR 1
#define SCOPE_SESSION 1

/* SPOP error codes (doc/SPOE.txt 3.5). */
#define ERR_NONE 0
#define ERR_INVALID 4
#define ERR_FRAG_NOT_SUPPORTED 10

struct sconn {
    int fd;
    uint8_t *rbuf; /* 4-byte length + frame */
    size_t rlen;
    uint8_t wbuf[SPOE_WBUF];
    size_t wlen;
    bool closing; /* close once wbuf is flushed */
};

static int sp_listen_fd = -1;
static pthread_t sp_thread;
static atomic_bool sp_stop;
static bool sp_running;
static struct sconn sp_conns[SPOE_MAX_CONNS];
static const struct revocation_sources *sp_src; /* set by spoe_start */

/* ---- encoding (varints: "Peers" encoding, doc/SPOE.txt 3.1) ---- */

struct rd {
    const uint8_t *p, *end;
    bool bad;
};

static uint64_t rd_varint(struct rd *r)
{
    uint64_t v;
    unsigned shift = 4;

    if (r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    v = *r->p++;
    if (v < 240)
        return v;
    for (;;) {
        uint8_t b;

        if (r->p >= r->end || shift > 60) {
            r->bad = true;
            return 0;
        }
        b = *r->p++;
        v += (uint64_t)b << shift;
        shift += 7;
        if (b < 128)
            return v;
    }
}

static const uint8_t *rd_bytes(struct rd *r, size_t *len)
{
    uint64_t n = rd_varint(r);
    const uint8_t *p = r->p;

    *len = 0;
    if (r->bad || n > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        return NULL;
    }
    r->p += n;
    *len = (size_t)n;
    return p;
}

/* A decoded TYPED-DATA value: strings and binaries point into the frame. */
struct value {
    int type;
    bool boolean;
    uint64_t u;
    const uint8_t *data;
    size_t len;
};

static void rd_value(struct rd *r, struct value *v)
{
    uint8_t tb;

    memset(v, 0, sizeof(*v));
    if (r->p >= r->end) {
        r->bad = true;
        return;
    }
    tb = *r->p++;
    v->type = tb & 0x0f;
    switch (v->type) {
    case DATA_NULL:
        break;
    case DATA_BOOL:
        v->boolean = (tb & 0x10) != 0;
        break;
    case DATA_INT32:
    case DATA_UINT32:
    case DATA_INT64:
    case DATA_UINT64:
        v->u = rd_varint(r);
        break;
    case DATA_IPV4:
    case DATA_IPV6: {
        size_t n = v->type == DATA_IPV4 ? 4 : 16;

        if ((size_t)(r->end - r->p) < n) {
            r->bad = true;
            return;
        }
        v->data = r->p;
        v->len = n;
        r->p += n;
        break;
    }
    case DATA_STRING:
    case DATA_BINARY:
        v->data = rd_bytes(r, &v->len);
        break;
    default:
        r->bad = true;
    }
}

struct wr {
    uint8_t *p, *end;
    bool full;
};

static void wr_byte(struct wr *w, uint8_t b)
{
    if (w->p >= w->end) {
        w->full = true;
        return;
    }
    *w->p++ = b;
}

static void wr_varint(struct wr *w, uint64_t v)
{
    if (v < 240) {
        wr_byte(w, (uint8_t)v);
        return;
    }
    wr_byte(w, (uint8_t)(v | 240));
    v = (v - 240) >> 4;
    while (v >= 128) {
        wr_byte(w, (uint8_t)(v | 128));
        v = (v - 128) >> 7;
    }
    wr_byte(w, (uint8_t)v);
}

static void wr_string(struct wr *w, const char *s)
{
    size_t n = strlen(s);

    wr_varint(w, n);
    if ((size_t)(w->end - w->p) < n) {
        w->full = true;
        return;
    }
    memcpy(w->p, s, n);
    w->p += n;
}

static void wr_typed_string(struct wr *w, const char *s)
{
    wr_byte(w, DATA_STRING);
    wr_string(w, s);
}

static void wr_kv_string(struct wr *w, const char *k, const char *v)
{
    wr_string(w, k);
    wr_typed_string(w, v);
}

static void wr_kv_uint32(struct wr *w, const char *k, uint32_t v)
{
    wr_string(w, k);
    wr_byte(w, DATA_UINT32);
    wr_varint(w, v);
}

/* Starts a frame in |c|'s write buffer; frame_end writes its length. */
static struct wr frame_begin(struct sconn *c, uint8_t type, uint64_t stream, uint64_t frame)
{
    struct wr w = {c->wbuf + c->wlen + 4, c->wbuf + sizeof(c->wbuf), false};

    if (c->wlen + 4 > sizeof(c->wbuf))
        w.full = true;
    wr_byte(&w, type);
    wr_byte(&w, 0);
    wr_byte(&w, 0);
    wr_byte(&w, 0);
    wr_byte(&w, FLAG_FIN);
    wr_varint(&w, stream);
    wr_varint(&w, frame);
    return w;
}

static int frame_end(struct sconn *c, struct wr *w)
{
    uint8_t *start = c->wbuf + c->wlen;
    size_t n;

    if (w->full)
        return -1;
    n = (size_t)(w->p - start) - 4;
    start[0] = (uint8_t)(n >> 24);
    start[1] = (uint8_t)(n >> 16);
    start[2] = (uint8_t)(n >> 8);
    start[3] = (uint8_t)n;
    c->wlen += n + 4;
    return 0;
}

static void send_disconnect(struct sconn *c, uint32_t code, const char *msg)
{
    struct wr w = frame_begin(c, FRAME_AGENT_DISCONNECT, 0, 0);

    wr_kv_uint32(&w, "status-code", code);
    wr_kv_string(&w, "message", msg);
    frame_end(c, &w);
    c->closing = true;
}

/* ---- frames ---- */

static void on_hello(struct sconn *c, struct rd *r)
{
    uint32_t max_frame = 0;
    bool version_ok = false, healthcheck = false;
    struct wr w;

    while (r->p < r->end && !r->bad) {
        size_t klen;
        const uint8_t *k = rd_bytes(r, &klen);
        struct value v;

        rd_value(r, &v);
        if (r->bad)
            break;
        if (klen == 18 && memcmp(k, "supported-versions", 18) == 0 && v.type == DATA_STRING)
            version_ok = memmem(v.data, v.len, "2.", 2) != NULL;
        else if (klen == 14 && memcmp(k, "max-frame-size", 14) == 0 &&
                 (v.type == DATA_UINT32 || v.type == DATA_UINT64))
            max_frame = v.u > SPOE_MAX_FRAME ? SPOE_MAX_FRAME : (uint32_t)v.u;
        else if (klen == 11 && memcmp(k, "healthcheck", 11) == 0 && v.type == DATA_BOOL)
            healthcheck = v.boolean;
    }
    if (r->bad || !version_ok || max_frame < 256) {
        send_disconnect(c, r->bad ? ERR_INVALID : 8, "unsupported HAPROXY-HELLO");
        return;
    }
    w = frame_begin(c, FRAME_AGENT_HELLO, 0, 0);
    wr_kv_string(&w, "version", "2.0");
    wr_kv_uint32(&w, "max-frame-size", max_frame);
    wr_kv_string(&w, "capabilities", "");
    frame_end(c, &w);
    if (healthcheck)
        c->closing = true;
}

/* The arguments of one message, borrowed from the frame. */
struct notify_args {
    struct value leaf, chain, tenant, device, user, host;
};

static int parse_messages(struct rd *r, struct notify_args *a)
{
    memset(a, 0, sizeof(*a));
    while (r->p < r->end && !r->bad) {
        size_t nlen;
        unsigned nargs;

        rd_bytes(r, &nlen); /* message name: any (one message per event) */
        if (r->bad || r->p >= r->end)
            return -1;
        nargs = *r->p++;
        for (unsigned i = 0; i < nargs && !r->bad; i++) {
            size_t klen;
            const uint8_t *k = rd_bytes(r, &klen);
            struct value v, *dst = NULL;

            rd_value(r, &v);
            if (r->bad)
                return -1;
            if (klen == 4 && memcmp(k, "leaf", 4) == 0)
                dst = &a->leaf;
            else if (klen == 5 && memcmp(k, "chain", 5) == 0)
                dst = &a->chain;
            else if (klen == 6 && memcmp(k, "tenant", 6) == 0)
                dst = &a->tenant;
            else if (klen == 6 && memcmp(k, "device", 6) == 0)
                dst = &a->device;
            else if (klen == 4 && memcmp(k, "user", 4) == 0)
                dst = &a->user;
            else if (klen == 4 && memcmp(k, "host", 4) == 0)
                dst = &a->host;
            if (dst != NULL)
                *dst = v;
        }
    }
    return r->bad ? -1 : 0;
}

static bool is_bytes(const struct value *v)
{
    return v->type == DATA_STRING || v->type == DATA_BINARY;
}

/* Decides one NOTIFY; fills |out| and the claims. */
static void decide(struct verdict *out, struct frontend_claims *cl, struct rd *r)
{
    struct reload_snapshot *snap = reload_acquire();
    struct frontend_certs certs = {0};
    struct notify_args a;
    const char *why = NULL;

    memset(cl, 0, sizeof(*cl));
    if (snap == NULL || !health_is_serving()) {
        verdict_init(out, 0);
        verdict_deny(out, VERDICT_REASON_INTERNAL_ERROR, "certval is not ready");
        reload_release(snap);
        return;
    }
    if (parse_messages(r, &a) != 0)
        why = "NOTIFY frame is malformed";
    else if ((a.tenant.type != DATA_NULL && !is_bytes(&a.tenant)) ||
             (is_bytes(&a.tenant) &&
              frontend_claim_copy(cl->tenant, (const char *)a.tenant.data, a.tenant.len) != 0))
        why = "tenant argument is invalid";
    else if (is_bytes(&a.device) &&
             frontend_claim_copy(cl->device, (const char *)a.device.data, a.device.len) != 0)
        why = "device argument is invalid";
    else if (is_bytes(&a.user) &&
             frontend_claim_copy(cl->user, (const char *)a.user.data, a.user.len) != 0)
        why = "user argument is invalid";
    if (why == NULL && cl->tenant[0] == '\0' && is_bytes(&a.host)) {
        const char *t =
            frontend_tenant_for_host(&snap->cfg->frontends, (const char *)a.host.data, a.host.len);

        if (t != NULL && frontend_claim_copy(cl->tenant, t, strlen(t)) != 0)
            why = "mapped tenant is invalid";
    }
    if (why == NULL && is_bytes(&a.leaf) && a.leaf.len > 0 &&
        frontend_certs_add_der(&certs, a.leaf.data, a.leaf.len) != 0)
        why = "leaf argument is not one DER certificate";
    if (why == NULL && certs.n > 0 && is_bytes(&a.chain) &&
        frontend_certs_add_der_list(&certs, a.chain.data, a.chain.len) != 0)
        why = "chain argument is not concatenated DER certificates";
    if (why != NULL)
        frontend_malformed(out, METRICS_FRONTEND_HAPROXY, cl, why);
    else
        frontend_check(out, METRICS_FRONTEND_HAPROXY, sp_src, snap, &certs, cl, frontend_now());
    frontend_certs_clear(&certs);
    reload_release(snap);
}

static void wr_set_var(struct wr *w, const char *name, const char *value)
{
    wr_byte(w, ACTION_SET_VAR);
    wr_byte(w, 3);
    wr_byte(w, SCOPE_SESSION);
    wr_string(w, name);
    wr_typed_string(w, value);
}

static void on_notify(struct sconn *c, struct rd *r, uint64_t stream, uint64_t frame)
{
    struct verdict v;
    struct frontend_claims cl;
    struct wr w;

    decide(&v, &cl, r);
    w = frame_begin(c, FRAME_ACK, stream, frame);
    wr_set_var(&w, "decision", verdict_decision_name(v.decision));
    wr_set_var(&w, "reason", verdict_reason_name(v.reason));
    wr_set_var(&w, "kind", cert_kind_name(v.kind));
    wr_set_var(&w, "tenant", cl.tenant);
    wr_set_var(&w, "device", cl.device);
    if (frame_end(c, &w) != 0)
        send_disconnect(c, 13, "ACK does not fit");
}

/* Handles one complete frame (|f|, |len| bytes, length prefix removed). */
static void on_frame(struct sconn *c, const uint8_t *f, size_t len)
{
    struct rd r = {f, f + len, false};
    uint8_t type;
    uint32_t flags;
    uint64_t stream, frame;

    if (len < 5) {
        send_disconnect(c, ERR_INVALID, "frame too short");
        return;
    }
    type = f[0];
    flags = (uint32_t)f[1] << 24 | (uint32_t)f[2] << 16 | (uint32_t)f[3] << 8 | f[4];
    r.p += 5;
    stream = rd_varint(&r);
    frame = rd_varint(&r);
    if (r.bad) {
        send_disconnect(c, ERR_INVALID, "bad frame metadata");
        return;
    }
    if (!(flags & FLAG_FIN)) {
        send_disconnect(c, ERR_FRAG_NOT_SUPPORTED, "fragmentation is not supported");
        return;
    }
    switch (type) {
    case FRAME_HAPROXY_HELLO:
        on_hello(c, &r);
        break;
    case FRAME_NOTIFY:
        on_notify(c, &r, stream, frame);
        break;
    case FRAME_HAPROXY_DISCONNECT:
        send_disconnect(c, ERR_NONE, "bye");
        break;
    default:
        break; /* unknown frames may be skipped (doc/SPOE.txt 3.2.2) */
    }
}

/* ---- connections ---- */

static void conn_close(struct sconn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->rbuf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

static void conn_read(struct sconn *c)
{
    for (;;) {
        size_t want = c->rlen < 4 ? 4
                                  : 4 + ((size_t)c->rbuf[0] << 24 | (size_t)c->rbuf[1] << 16 |
                                         (size_t)c->rbuf[2] << 8 | c->rbuf[3]);
        ssize_t n;

        if (want > 4 + SPOE_MAX_FRAME) {
            send_disconnect(c, 3, "frame is too big");
            return;
        }
        n = read(c->fd, c->rbuf + c->rlen, want - c->rlen);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(c);
            return;
        }
        if (n < 0)
            return;
        c->rlen += (size_t)n;
        if (c->rlen == want && want > 4) {
            on_frame(c, c->rbuf + 4, want - 4);
            c->rlen = 0;
            /* One frame at a time: the answer goes out before the next read. */
            return;
        }
    }
}

static void conn_write(struct sconn *c)
{
    while (c->wlen > 0) {
        ssize_t n = write(c->fd, c->wbuf, c->wlen);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
        c->wlen -= (size_t)n;
    }
    if (c->closing)
        conn_close(c);
}

static void accept_one(void)
{
    int fd = accept4(sp_listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0)
        return;
    for (int i = 0; i < SPOE_MAX_CONNS; i++)
        if (sp_conns[i].fd < 0) {
            sp_conns[i].rbuf = malloc(4 + SPOE_MAX_FRAME);
            if (sp_conns[i].rbuf == NULL)
                break;
            sp_conns[i].fd = fd;
            return;
        }
    close(fd); /* full: HAProxy retries on another connection */
}

static void *sp_main(void *arg)
{
    struct pollfd pfd[SPOE_MAX_CONNS + 1];
    int idx[SPOE_MAX_CONNS + 1];

    (void)arg;
    certval_rcu_reader_register();
    while (!atomic_load(&sp_stop)) {
        int n = 1;

        pfd[0].fd = sp_listen_fd;
        pfd[0].events = POLLIN;
        for (int i = 0; i < SPOE_MAX_CONNS; i++) {
            if (sp_conns[i].fd < 0)
                continue;
            pfd[n].fd = sp_conns[i].fd;
            pfd[n].events = sp_conns[i].wlen > 0 ? POLLOUT : POLLIN;
            idx[n++] = i;
        }
        if (poll(pfd, (nfds_t)n, 100) <= 0)
            continue;
        for (int k = 1; k < n; k++) {
            struct sconn *c = &sp_conns[idx[k]];

            if (pfd[k].revents & (POLLERR | POLLNVAL)) {
                conn_close(c);
                continue;
            }
            if (pfd[k].revents & POLLOUT)
                conn_write(c);
            else if (pfd[k].revents & (POLLIN | POLLHUP)) {
                conn_read(c);
                if (c->fd >= 0 && c->wlen > 0)
                    conn_write(c);
            }
        }
        if (pfd[0].revents & POLLIN)
            accept_one();
    }
    for (int i = 0; i < SPOE_MAX_CONNS; i++)
        conn_close(&sp_conns[i]);
    certval_rcu_reader_unregister();
    return NULL;
}

int spoe_start(const char *addr, const struct revocation_sources *src, int *out_port, char *err,
               size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int one = 1;

    *out_port = 0;
    if (frontend_parse_listen(&ss, &sl, addr) != 0) {
        snprintf(err, errlen, "frontends.haproxy.listen '%s' is not IPv4:PORT or [IPv6]:PORT",
                 addr);
        return -1;
    }
    sp_listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (sp_listen_fd < 0 ||
        setsockopt(sp_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(sp_listen_fd, (struct sockaddr *)&ss, sl) != 0 || listen(sp_listen_fd, 128) != 0) {
        snprintf(err, errlen, "cannot serve the SPOE agent on %s: %s", addr, strerror(errno));
        if (sp_listen_fd >= 0)
            close(sp_listen_fd);
        sp_listen_fd = -1;
        return -1;
    }
    (void)frontend_bound_port(sp_listen_fd, out_port); /* 0 when unknown: only logged */
    sp_src = src;
    for (int i = 0; i < SPOE_MAX_CONNS; i++)
        sp_conns[i].fd = -1;
    atomic_store(&sp_stop, false);
    if (pthread_create(&sp_thread, NULL, sp_main, NULL) != 0) {
        close(sp_listen_fd);
        sp_listen_fd = -1;
        snprintf(err, errlen, "cannot start the SPOE agent thread");
        return -1;
    }
    sp_running = true;
    return 0;
}

void spoe_stop(void)
{
    if (!sp_running)
        return;
    atomic_store(&sp_stop, true);
    pthread_join(sp_thread, NULL);
    close(sp_listen_fd);
    sp_listen_fd = -1;
    sp_running = false;
}
