/* The HTTP CRL fetcher (crl_fetch.h): one thread, one io_uring.
 *
 * Each URL is a |struct target| with a small state machine:
 *   IDLE --due--> CONNECT --> SEND (until the request is out) --> RECV (until
 *   the response is complete or the peer closes) --> IDLE
 * A redirect goes back to CONNECT for the new URL inside the same deadline.
 * One I/O operation is in flight per target at a time, always linked to an
 * IORING_OP_LINK_TIMEOUT carrying what is left of timeout_ms, so a server
 * that accepts and then says nothing costs exactly timeout_ms. The thread
 * sleeps in io_uring_submit_and_wait; it wakes for I/O, for the schedule
 * timer (one IORING_OP_TIMEOUT at the earliest due time) and for an eventfd
 * written by crl_fetch_stop / crl_fetch_reconfigure.
 *
 * Shared data: |targets| (the array and each target's counters) is written
 * by the fetcher thread under |stats_lock| and read by the metrics
 * collector under the same lock; everything else in a target belongs to
 * the fetcher thread. |stop| and |reconfig| are atomics. */
#include "crl_fetch.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>
#include <liburing.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "config.h"
#include "crl_cache.h"
#include "rcu_reader.h"
#include "crl_fetch_internal.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "validator.h"

/* Distinct URLs fetched (configured + from certificates); a slot index must
 * fit the 8 bits user_data gives it. */
#define CRL_FETCH_MAX_TARGETS 128
/* Two SQEs per target (operation + link timeout), the schedule timer and its
 * removal, the eventfd read. */
#define RING_ENTRIES 512
#define RECV_CHUNK 16384
/* Bound on the wait for cancelled operations when the thread stops. */
#define CANCEL_WAIT_MS 1000

enum result {
    FR_OK,
    FR_UNCHANGED,
    FR_NOT_MODIFIED,
    FR_REFUSED,
    FR_EXPIRED,
    FR_HTTP_ERROR,
    FR_TIMEOUT,
    FR_CONNECT_ERROR,
    FR_DNS_ERROR,
    FR_TOO_LARGE,
    FR_TRUNCATED,
    FR_BAD_RESPONSE,
    FR_REDIRECT_LIMIT,
    FR_BAD_URL,
    FR_COUNT
};

static const char *const result_names[FR_COUNT] = {
    [FR_OK] = "ok",
    [FR_UNCHANGED] = "unchanged",
    [FR_NOT_MODIFIED] = "not_modified",
    [FR_REFUSED] = "refused",
    [FR_EXPIRED] = "expired",
    [FR_HTTP_ERROR] = "http_error",
    [FR_TIMEOUT] = "timeout",
    [FR_CONNECT_ERROR] = "connect_error",
    [FR_DNS_ERROR] = "dns_error",
    [FR_TOO_LARGE] = "too_large",
    [FR_TRUNCATED] = "truncated",
    [FR_BAD_RESPONSE] = "bad_response",
    [FR_REDIRECT_LIMIT] = "redirect_limit",
    [FR_BAD_URL] = "bad_url",
};

enum tstate { T_IDLE, T_CONNECT, T_SEND, T_RECV };

/* user_data: bits 0-7 the kind, 8-15 the slot (OP_IO), 16-63 a sequence
 * number that tells a stale completion from the current one. */
enum { OP_EVENT = 1, OP_TIMER = 2, OP_TIMER_REMOVE = 3, OP_IO = 4, OP_LINK_TIMEOUT = 5, OP_CANCEL = 6 };

/* A captured response header value, bounded. */
struct hval {
    char buf[CRL_FETCH_URL_MAX];
    size_t len;
    bool overflow;
};

struct target {
    char url[CRL_FETCH_URL_MAX]; /* as configured: the CRL label and the metric label */
    char cur[CRL_FETCH_URL_MAX]; /* after redirects */
    unsigned slot;
    bool gone; /* no longer configured: removed once idle */
    enum tstate state;
    int fd;
    uint64_t seq;
    unsigned redirects, failures;
    int64_t due_ms, deadline_ms; /* CLOCK_MONOTONIC milliseconds */
    int64_t next_update;         /* of the CRL in force from here, 0 = unknown */
    uint8_t last_sha[SHA256_DIGEST_LENGTH];
    bool have_sha;
    char etag[256], last_modified[128];
    struct crl_fetch_url parts;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct __kernel_timespec ts;
    char req[CRL_FETCH_URL_MAX + 1024];
    size_t req_len, req_off;
    /* response */
    http_parser parser;
    char field[32];
    size_t field_len;
    bool in_value;
    struct hval *hdr; /* the header being captured, NULL = ignored */
    struct hval h_etag, h_last_modified, h_location;
    bool complete, too_large;
    uint32_t max_bytes;
    uint64_t body_seen;
    uint8_t *body;
    size_t body_len, body_cap;
    uint8_t rbuf[RECV_CHUNK];
    /* counters: under stats_lock */
    uint64_t counts[FR_COUNT];
    int64_t last_success; /* Unix seconds, 0 = never */
};

struct crl_fetch {
    struct crl_cache *crls;
    pthread_t thread;
    bool running, detached; /* main thread only */
    _Atomic bool started;
    _Atomic bool stop, reconfig;
    int efd;
    bool ring_ok;
    struct io_uring ring;
    uint64_t evbuf;
    pthread_mutex_t done_lock;
    pthread_cond_t done_cond;
    bool done;
    pthread_mutex_t stats_lock;
    struct target *targets[CRL_FETCH_MAX_TARGETS];
    /* limits from the snapshot; fetcher thread only */
    uint32_t timeout_ms, max_bytes, max_redirects, refresh_ahead_s, max_interval_s, max_backoff_s;
    bool timer_armed;
    int64_t timer_due_ms;
    uint64_t timer_seq, io_seq;
    struct __kernel_timespec timer_ts;
};

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t rnd32(void)
{
    uint32_t r = 0;

    RAND_bytes((uint8_t *)&r, sizeof(r));
    return r;
}

/* Returns an SQE, submitting what is queued when the ring is full. */
static struct io_uring_sqe *get_sqe(struct crl_fetch *f)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring);

    if (sqe == NULL) {
        io_uring_submit(&f->ring);
        sqe = io_uring_get_sqe(&f->ring);
    }
    return sqe;
}

/* ---- HTTP response parsing (libhttp-parser callbacks) ---- */

static void hval_append(struct hval *h, const char *at, size_t len)
{
    if (h->len + len >= sizeof(h->buf)) {
        h->overflow = true;
        return;
    }
    memcpy(h->buf + h->len, at, len);
    h->len += len;
    h->buf[h->len] = '\0';
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct target *t = p->data;

    if (t->in_value) {
        t->in_value = false;
        t->field_len = 0;
    }
    /* A field longer than the buffer matches none of the names wanted. */
    if (t->field_len + len < sizeof(t->field)) {
        memcpy(t->field + t->field_len, at, len);
        t->field_len += len;
    } else {
        t->field_len = sizeof(t->field);
    }
    return 0;
}

static struct hval *header_slot(struct target *t)
{
    static const struct {
        const char *name;
        size_t off;
    } wanted[] = {
        {"etag", offsetof(struct target, h_etag)},
        {"last-modified", offsetof(struct target, h_last_modified)},
        {"location", offsetof(struct target, h_location)},
    };

    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        if (t->field_len == strlen(wanted[i].name) &&
            strncasecmp(t->field, wanted[i].name, t->field_len) == 0)
            return (struct hval *)((char *)t + wanted[i].off);
    }
    return NULL;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct target *t = p->data;

    if (!t->in_value) {
        t->in_value = true;
        t->hdr = header_slot(t);
        if (t->hdr != NULL) {
            t->hdr->len = 0;
            t->hdr->buf[0] = '\0';
            t->hdr->overflow = false;
        }
    }
    if (t->hdr != NULL)
        hval_append(t->hdr, at, len);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct target *t = p->data;

    /* Refuse a declared body over the cap before reading any of it. */
    if (p->status_code == 200 && p->content_length != ULLONG_MAX &&
        p->content_length > t->max_bytes) {
        t->too_large = true;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct target *t = p->data;
    size_t need;

    /* Every status counts against the cap: a streaming error page must not
     * hold the fetcher longer than a CRL would. */
    t->body_seen += len;
    if (t->body_seen > t->max_bytes) {
        t->too_large = true;
        return -1;
    }
    if (p->status_code != 200)
        return 0;
    need = t->body_len + len;
    if (need > t->body_cap) {
        size_t cap = t->body_cap != 0 ? t->body_cap * 2 : 65536;
        uint8_t *nb;

        if (cap < need)
            cap = need;
        if (cap > t->max_bytes)
            cap = t->max_bytes;
        nb = realloc(t->body, cap);
        if (nb == NULL)
            return -1;
        t->body = nb;
        t->body_cap = cap;
    }
    memcpy(t->body + t->body_len, at, len);
    t->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct target *t = p->data;

    t->complete = true;
    /* Pause: bytes after the response (there should be none, the request
     * said Connection: close) are not parsed. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- targets ---- */

static void target_close(struct target *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

static void target_reset_response(struct target *t, uint32_t max_bytes)
{
    http_parser_init(&t->parser, HTTP_RESPONSE);
    t->parser.data = t;
    t->field_len = 0;
    t->in_value = false;
    t->hdr = NULL;
    t->h_etag.len = t->h_last_modified.len = t->h_location.len = 0;
    t->h_etag.buf[0] = t->h_last_modified.buf[0] = t->h_location.buf[0] = '\0';
    t->h_etag.overflow = t->h_last_modified.overflow = t->h_location.overflow = false;
    t->complete = t->too_large = false;
    t->max_bytes = max_bytes;
    t->body_seen = 0;
    t->body_len = 0;
}

static void target_free(struct target *t)
{
    if (t == NULL)
        return;
    target_close(t);
    free(t->body);
    free(t);
}

static void queue_io(struct crl_fetch *f, struct target *t)
{
    struct io_uring_sqe *sqe = get_sqe(f);
    struct io_uring_sqe *lt;
    int64_t left = t->deadline_ms - mono_ms();

    if (sqe == NULL)
        return; /* cannot happen after a submit; the deadline timer is the guard */
    switch (t->state) {
    case T_CONNECT:
        io_uring_prep_connect(sqe, t->fd, (struct sockaddr *)&t->addr, t->addrlen);
        break;
    case T_SEND:
        io_uring_prep_send(sqe, t->fd, t->req + t->req_off, t->req_len - t->req_off, MSG_NOSIGNAL);
        break;
    default:
        io_uring_prep_recv(sqe, t->fd, t->rbuf, sizeof(t->rbuf), 0);
        break;
    }
    t->seq = ++f->io_seq;
    io_uring_sqe_set_data64(sqe, OP_IO | (uint64_t)t->slot << 8 | t->seq << 16);
    sqe->flags |= IOSQE_IO_LINK;
    lt = get_sqe(f);
    if (lt == NULL)
        return;
    if (left < 1)
        left = 1;
    t->ts.tv_sec = left / 1000;
    t->ts.tv_nsec = (left % 1000) * 1000000;
    io_uring_prep_link_timeout(lt, &t->ts, 0);
    io_uring_sqe_set_data64(lt, OP_LINK_TIMEOUT);
}

static void remove_target(struct crl_fetch *f, struct target *t)
{
    pthread_mutex_lock(&f->stats_lock);
    f->targets[t->slot] = NULL;
    pthread_mutex_unlock(&f->stats_lock);
    target_free(t);
}

static bool is_success(enum result r)
{
    return r == FR_OK || r == FR_UNCHANGED || r == FR_NOT_MODIFIED;
}

/* finish ends a fetch: counts it, logs a failure, schedules the next. */
static void finish(struct crl_fetch *f, struct target *t, enum result r, const char *detail)
{
    int64_t now = mono_ms();
    int64_t wall = (int64_t)time(NULL);

    target_close(t);
    t->state = T_IDLE;
    /* The body buffer can be max_bytes: do not keep it between fetches. */
    free(t->body);
    t->body = NULL;
    t->body_cap = t->body_len = 0;
    pthread_mutex_lock(&f->stats_lock);
    t->counts[r]++;
    if (is_success(r))
        t->last_success = wall;
    pthread_mutex_unlock(&f->stats_lock);
    if (is_success(r)) {
        uint32_t wait_s = crl_fetch_next_success(wall, t->next_update, f->refresh_ahead_s,
                                                 f->max_interval_s);
        uint64_t wait_ms = (uint64_t)wait_s * 1000;

        t->failures = 0;
        /* Up to 10% earlier, so replicas started together spread out. */
        wait_ms -= rnd32() % (wait_ms / 10 + 1);
        t->due_ms = now + (int64_t)wait_ms;
        log_msg(r == FR_OK ? CV_LOG_INFO : CV_LOG_DEBUG, "CRL fetch %s: %s, next fetch in %.1f s", t->url,
                result_names[r], (double)wait_ms / 1000.0);
    } else {
        uint64_t wait_ms;

        t->failures++;
        wait_ms = crl_fetch_backoff_ms(t->failures, f->max_backoff_s, rnd32());
        t->due_ms = now + (int64_t)wait_ms;
        log_warn("CRL fetch %s failed (%s): %s; the CRL in force stays, retry %u in %.1f s", t->url,
                 result_names[r], detail, t->failures, (double)wait_ms / 1000.0);
    }
    if (t->gone)
        remove_target(f, t);
}

/* begin_hop resolves t->cur and starts connecting; failures finish. */
static void begin_hop(struct crl_fetch *f, struct target *t)
{
    struct addrinfo hints, *ai = NULL;
    char err[256];
    int rc;

    if (crl_fetch_parse_url(&t->parts, t->cur, err, sizeof(err)) < 0) {
        finish(f, t, FR_BAD_URL, err);
        return;
    }
    if (crl_fetch_build_request(t->req, sizeof(t->req), &t->req_len, &t->parts, t->etag,
                                t->last_modified, err, sizeof(err)) < 0) {
        finish(f, t, FR_BAD_URL, err);
        return;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    /* Blocking, on this thread only: no call path waits for it
     * (docs/revocation.md). The first address is used. */
    rc = getaddrinfo(t->parts.host, t->parts.port, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        finish(f, t, FR_DNS_ERROR, rc != 0 ? gai_strerror(rc) : "no address");
        return;
    }
    if (ai->ai_addrlen > sizeof(t->addr)) {
        freeaddrinfo(ai);
        finish(f, t, FR_DNS_ERROR, "address too long");
        return;
    }
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addrlen = ai->ai_addrlen;
    t->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    freeaddrinfo(ai);
    if (t->fd < 0) {
        snprintf(err, sizeof(err), "socket: %s", strerror(errno));
        finish(f, t, FR_CONNECT_ERROR, err);
        return;
    }
    target_reset_response(t, f->max_bytes);
    t->state = T_CONNECT;
    queue_io(f, t);
}

static void start_fetch(struct crl_fetch *f, struct target *t, int64_t now)
{
    snprintf(t->cur, sizeof(t->cur), "%s", t->url);
    t->redirects = 0;
    t->deadline_ms = now + f->timeout_ms;
    begin_hop(f, t);
}

static void keep_validator(char *dst, size_t cap, const struct hval *h)
{
    dst[0] = '\0';
    if (!h->overflow && h->len < cap)
        memcpy(dst, h->buf, h->len + 1);
}

/* take_body hands a complete 200 body to crl_push. */
static void take_body(struct crl_fetch *f, struct target *t)
{
    char err[600], issuer[300], label[CRL_FETCH_URL_MAX + 8];
    uint8_t sha[SHA256_DIGEST_LENGTH];
    int64_t this_update = 0, next_update = 0;
    uint64_t number = 0, entries = 0;

    /* A DER CRL's times are read before the push: a CRL already past its
     * nextUpdate is refused here so the one in force (possibly fresher)
     * stays. PEM and garbage go to crl_push, which judges them. */
    if (t->body_len > 0 && t->body[0] == 0x30 &&
        crl_fetch_crl_times(&this_update, &next_update, t->body, t->body_len) == 0 &&
        next_update != 0 && next_update < (int64_t)time(NULL)) {
        snprintf(err, sizeof(err), "the CRL's nextUpdate (%lld) has passed",
                 (long long)next_update);
        finish(f, t, FR_EXPIRED, err);
        return;
    }
    SHA256(t->body, t->body_len, sha);
    if (t->have_sha && memcmp(sha, t->last_sha, sizeof(sha)) == 0) {
        /* Same bytes as the CRL already pushed: nothing to publish (and the
         * verdict cache keeps its generation). */
        finish(f, t, FR_UNCHANGED, "");
        return;
    }
    snprintf(label, sizeof(label), "http:%s", t->url);
    if (crl_push(f->crls, t->body, t->body_len, label, issuer, sizeof(issuer), &number, &entries,
                 err, sizeof(err)) < 0) {
        finish(f, t, FR_REFUSED, err);
        return;
    }
    memcpy(t->last_sha, sha, sizeof(sha));
    t->have_sha = true;
    t->next_update = next_update;
    /* Validators that did not fit are dropped rather than sent truncated. */
    keep_validator(t->etag, sizeof(t->etag), &t->h_etag);
    keep_validator(t->last_modified, sizeof(t->last_modified), &t->h_last_modified);
    finish(f, t, FR_OK, "");
}

static void follow_redirect(struct crl_fetch *f, struct target *t)
{
    char next[CRL_FETCH_URL_MAX], err[300];

    if (t->h_location.len == 0 || t->h_location.overflow) {
        finish(f, t, FR_BAD_RESPONSE, "redirect without a usable Location");
        return;
    }
    if (++t->redirects > f->max_redirects) {
        snprintf(err, sizeof(err), "more than %u redirects (last to %.200s)", f->max_redirects,
                 t->h_location.buf);
        finish(f, t, FR_REDIRECT_LIMIT, err);
        return;
    }
    if (crl_fetch_resolve_location(next, sizeof(next), t->cur, t->h_location.buf, err,
                                   sizeof(err)) < 0) {
        finish(f, t, FR_BAD_URL, err);
        return;
    }
    target_close(t);
    snprintf(t->cur, sizeof(t->cur), "%s", next);
    begin_hop(f, t);
}

static void on_response(struct crl_fetch *f, struct target *t)
{
    unsigned status = t->parser.status_code;
    char err[64];

    switch (status) {
    case 200:
        take_body(f, t);
        return;
    case 304:
        finish(f, t, FR_NOT_MODIFIED, "");
        return;
    case 301:
    case 302:
    case 303:
    case 307:
    case 308:
        follow_redirect(f, t);
        return;
    default:
        snprintf(err, sizeof(err), "HTTP status %u", status);
        finish(f, t, FR_HTTP_ERROR, err);
    }
}

static void io_failed(struct crl_fetch *f, struct target *t, int res, const char *what)
{
    char err[200];

    /* -ECANCELED: the linked timeout fired first. */
    if (res == -ECANCELED || res == -ETIME) {
        snprintf(err, sizeof(err), "no answer within %u ms (%s)", f->timeout_ms, what);
        finish(f, t, FR_TIMEOUT, err);
        return;
    }
    snprintf(err, sizeof(err), "%s: %s", what, strerror(-res));
    finish(f, t, FR_CONNECT_ERROR, err);
}

static void on_recv(struct crl_fetch *f, struct target *t, int res)
{
    char err[200];

    if (res < 0) {
        io_failed(f, t, res, "receive");
        return;
    }
    /* 0 = the peer closed: tell the parser, which completes a body that
     * runs to the end of the connection and nothing else. */
    http_parser_execute(&t->parser, &parser_settings, (const char *)t->rbuf, (size_t)res);
    if (t->too_large) {
        snprintf(err, sizeof(err), "response body over max_bytes (%u)", t->max_bytes);
        finish(f, t, FR_TOO_LARGE, err);
    } else if (t->complete) {
        on_response(f, t);
    } else if (res == 0) {
        /* The parser reports this as HPE_INVALID_EOF_STATE; the name says
         * more. */
        finish(f, t, FR_TRUNCATED, "connection closed before the end of the response");
    } else if (HTTP_PARSER_ERRNO(&t->parser) != HPE_OK) {
        snprintf(err, sizeof(err), "malformed HTTP response: %s",
                 http_errno_description(HTTP_PARSER_ERRNO(&t->parser)));
        finish(f, t, FR_BAD_RESPONSE, err);
    } else {
        queue_io(f, t);
    }
}

static void on_io(struct crl_fetch *f, uint64_t data, int res)
{
    unsigned slot = (unsigned)(data >> 8) & 0xff;
    struct target *t = slot < CRL_FETCH_MAX_TARGETS ? f->targets[slot] : NULL;

    if (t == NULL || t->state == T_IDLE || t->seq != data >> 16)
        return;
    switch (t->state) {
    case T_CONNECT:
        if (res < 0) {
            io_failed(f, t, res, "connect");
            return;
        }
        t->state = T_SEND;
        t->req_off = 0;
        queue_io(f, t);
        return;
    case T_SEND:
        if (res <= 0) {
            io_failed(f, t, res == 0 ? -EPIPE : res, "send");
            return;
        }
        t->req_off += (size_t)res;
        if (t->req_off >= t->req_len)
            t->state = T_RECV;
        queue_io(f, t);
        return;
    default:
        on_recv(f, t, res);
    }
}

/* ---- URL set ---- */

/* Adds |url| to |list| (capacity CRL_FETCH_MAX_TARGETS) unless present. */
static void url_add(char **list, size_t *n, const char *url)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(list[i], url) == 0)
            return;
    }
    if (*n == CRL_FETCH_MAX_TARGETS) {
        log_warn("CRL fetch: more than %d URLs, %s is not fetched", CRL_FETCH_MAX_TARGETS, url);
        return;
    }
    list[*n] = strdup(url);
    if (list[*n] != NULL)
        (*n)++;
}

struct dp_list {
    char **list;
    size_t *n;
};

/* Keeps an http:// distribution point; others are logged and skipped. */
static void take_dp(const char *uri, void *arg)
{
    struct dp_list *l = arg;

    if (strncasecmp(uri, "http://", 7) == 0)
        url_add(l->list, l->n, uri);
    else if (strncasecmp(uri, "https://", 8) == 0)
        log_warn("CRL fetch: distribution point %s refused: https:// is not supported "
                 "(CRLs are signed; configure an http:// URL)", uri);
    else
        log_info("CRL fetch: distribution point %s skipped (only http:// is fetched)", uri);
}

static void add_file_dps(char **list, size_t *n, char **files, size_t n_files)
{
    char err[300];

    for (size_t i = 0; i < n_files; i++) {
        STACK_OF(X509) *certs = NULL;

        if (cv_load_certs(&certs, files[i], err, sizeof(err)) < 0)
            continue;
        struct dp_list l = {.list = list, .n = n};

        for (size_t j = 0; j < sk_X509_num(certs); j++)
            crl_fetch_cert_dp_uris(sk_X509_value(certs, j), take_dp, &l);
        sk_X509_pop_free(certs, X509_free);
    }
}

static size_t collect_urls(char **list, const struct certval_config *cfg)
{
    const struct validator_config *v = &cfg->validator;
    size_t n = 0;

    for (size_t i = 0; i < cfg->fetch.n_urls; i++)
        url_add(list, &n, cfg->fetch.urls[i]);
    if (cfg->fetch.from_certificates) {
        add_file_dps(list, &n, v->anchor_files, v->n_anchor_files);
        add_file_dps(list, &n, v->intermediate_files, v->n_intermediate_files);
        for (size_t i = 0; i < v->n_profiles; i++)
            add_file_dps(list, &n, v->profiles[i].issuer_files, v->profiles[i].n_issuer_files);
    }
    return n;
}

static struct target *find_target(struct crl_fetch *f, const char *url)
{
    for (size_t i = 0; i < CRL_FETCH_MAX_TARGETS; i++) {
        if (f->targets[i] != NULL && strcmp(f->targets[i]->url, url) == 0)
            return f->targets[i];
    }
    return NULL;
}

static void add_target(struct crl_fetch *f, const char *url, int64_t now)
{
    struct target *t = NULL;
    size_t slot;

    for (slot = 0; slot < CRL_FETCH_MAX_TARGETS && f->targets[slot] != NULL; slot++)
        ;
    if (slot == CRL_FETCH_MAX_TARGETS || (t = calloc(1, sizeof(*t))) == NULL) {
        log_warn("CRL fetch: no room for %s", url);
        return;
    }
    snprintf(t->url, sizeof(t->url), "%s", url);
    t->slot = (unsigned)slot;
    t->fd = -1;
    t->due_ms = now;
    pthread_mutex_lock(&f->stats_lock);
    f->targets[slot] = t;
    pthread_mutex_unlock(&f->stats_lock);
    log_info("CRL fetch: %s", url);
}

/* reconfigure applies the current snapshot: limits, new URLs (fetched at
 * once), dropped URLs (removed once idle). URLs that stay keep their
 * schedule: a reload must not turn into a burst of fetches, since a
 * fetched CRL written under a watched folder would reload again. */
static void reconfigure(struct crl_fetch *f)
{
    struct snapshot *s = snapshot_acquire();
    char *urls[CRL_FETCH_MAX_TARGETS];
    bool keep[CRL_FETCH_MAX_TARGETS] = {false};
    int64_t now = mono_ms();
    size_t n;

    if (s == NULL)
        return;
    f->timeout_ms = s->cfg->fetch.timeout_ms;
    f->max_bytes = s->cfg->fetch.max_bytes;
    f->max_redirects = s->cfg->fetch.max_redirects;
    f->refresh_ahead_s = s->cfg->fetch.refresh_ahead_seconds;
    f->max_interval_s = s->cfg->fetch.max_interval_seconds;
    f->max_backoff_s = s->cfg->fetch.max_backoff_seconds;
    n = collect_urls(urls, s->cfg);
    snapshot_release(s);
    for (size_t i = 0; i < n; i++) {
        struct target *t = find_target(f, urls[i]);

        if (t == NULL) {
            add_target(f, urls[i], now);
            t = find_target(f, urls[i]);
        }
        if (t != NULL) {
            keep[t->slot] = true;
            t->gone = false;
        }
        free(urls[i]);
    }
    for (size_t i = 0; i < CRL_FETCH_MAX_TARGETS; i++) {
        struct target *t = f->targets[i];

        if (t == NULL || keep[i])
            continue;
        log_info("CRL fetch: %s no longer configured", t->url);
        t->gone = true;
        if (t->state == T_IDLE)
            remove_target(f, t);
    }
}

/* ---- the loop ---- */

static void arm_event(struct crl_fetch *f)
{
    struct io_uring_sqe *sqe = get_sqe(f);

    if (sqe == NULL)
        return;
    io_uring_prep_read(sqe, f->efd, &f->evbuf, sizeof(f->evbuf), 0);
    io_uring_sqe_set_data64(sqe, OP_EVENT);
}

/* Keeps one IORING_OP_TIMEOUT armed at the earliest due time of an idle
 * target; a later-armed timer is removed and replaced. */
static void arm_schedule(struct crl_fetch *f, int64_t now)
{
    int64_t due = INT64_MAX, ms;
    struct io_uring_sqe *sqe;

    for (size_t i = 0; i < CRL_FETCH_MAX_TARGETS; i++) {
        const struct target *t = f->targets[i];

        if (t != NULL && t->state == T_IDLE && t->due_ms < due)
            due = t->due_ms;
    }
    if (due == INT64_MAX || (f->timer_armed && f->timer_due_ms <= due))
        return;
    if (f->timer_armed && (sqe = get_sqe(f)) != NULL) {
        io_uring_prep_timeout_remove(sqe, OP_TIMER | f->timer_seq << 16, 0);
        io_uring_sqe_set_data64(sqe, OP_TIMER_REMOVE);
    }
    if ((sqe = get_sqe(f)) == NULL)
        return;
    ms = due > now ? due - now : 0;
    f->timer_seq++;
    f->timer_ts.tv_sec = ms / 1000;
    f->timer_ts.tv_nsec = (ms % 1000) * 1000000;
    io_uring_prep_timeout(sqe, &f->timer_ts, 0, 0);
    io_uring_sqe_set_data64(sqe, OP_TIMER | f->timer_seq << 16);
    f->timer_armed = true;
    f->timer_due_ms = due;
}

static void start_due(struct crl_fetch *f)
{
    int64_t now = mono_ms();

    for (size_t i = 0; i < CRL_FETCH_MAX_TARGETS; i++) {
        struct target *t = f->targets[i];

        if (t != NULL && t->state == T_IDLE && t->due_ms <= now && !atomic_load(&f->stop))
            start_fetch(f, t, now);
    }
}

static void handle_cqe(struct crl_fetch *f, uint64_t data, int res)
{
    switch (data & 0xff) {
    case OP_EVENT:
        arm_event(f);
        break;
    case OP_TIMER:
        if (data >> 16 == f->timer_seq)
            f->timer_armed = false;
        break;
    case OP_IO:
        on_io(f, data, res);
        break;
    default: /* link timeouts, timer removals, cancellations */
        break;
    }
}

static void drain_cqes(struct crl_fetch *f)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;

    /* Collect first, then handle: handlers queue new SQEs. */
    struct {
        uint64_t data;
        int res;
    } done[RING_ENTRIES];

    io_uring_for_each_cqe(&f->ring, head, cqe)
    {
        if (n == RING_ENTRIES)
            break;
        done[n].data = io_uring_cqe_get_data64(cqe);
        done[n].res = cqe->res;
        n++;
    }
    io_uring_cq_advance(&f->ring, n);
    for (unsigned i = 0; i < n; i++)
        handle_cqe(f, done[i].data, done[i].res);
}

/* Cancels the operations in flight and waits (bounded) for their
 * completions, so no buffer is freed while the kernel may still write it. */
static void cancel_all(struct crl_fetch *f)
{
    int64_t deadline = mono_ms() + CANCEL_WAIT_MS;
    bool busy = true;

    for (size_t i = 0; i < CRL_FETCH_MAX_TARGETS; i++) {
        struct target *t = f->targets[i];
        struct io_uring_sqe *sqe;

        if (t == NULL || t->state == T_IDLE || (sqe = get_sqe(f)) == NULL)
            continue;
        io_uring_prep_cancel64(sqe, OP_IO | (uint64_t)t->slot << 8 | t->seq << 16, 0);
        io_uring_sqe_set_data64(sqe, OP_CANCEL);
    }
    io_uring_submit(&f->ring);
    while (busy && mono_ms() < deadline) {
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
        struct io_uring_cqe *cqe;

        if (io_uring_wait_cqe_timeout(&f->ring, &cqe, &ts) == 0) {
            uint64_t data = io_uring_cqe_get_data64(cqe);

            io_uring_cqe_seen(&f->ring, cqe);
            if ((data & 0xff) == OP_IO) {
                unsigned slot = (unsigned)(data >> 8) & 0xff;

                if (slot < CRL_FETCH_MAX_TARGETS && f->targets[slot] != NULL &&
                    f->targets[slot]->seq == data >> 16)
                    f->targets[slot]->state = T_IDLE;
            }
        }
        busy = false;
        for (size_t i = 0; i < CRL_FETCH_MAX_TARGETS; i++) {
            if (f->targets[i] != NULL && f->targets[i]->state != T_IDLE)
                busy = true;
        }
    }
}

static void *fetch_thread(void *arg)
{
    struct crl_fetch *f = arg;
    unsigned errors = 0;

    certval_rcu_reader_register();
    reconfigure(f);
    arm_event(f);
    while (!atomic_load(&f->stop)) {
        int rc;

        if (atomic_exchange(&f->reconfig, false))
            reconfigure(f);
        start_due(f);
        arm_schedule(f, mono_ms());
        rc = io_uring_submit_and_wait(&f->ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -ETIME) {
            /* Should not happen; pause so an error cannot spin a core. */
            if (errors++ < 5)
                log_error("CRL fetch: io_uring_submit_and_wait: %s", strerror(-rc));
            usleep(100000);
        }
        drain_cqes(f);
    }
    cancel_all(f);
    for (size_t i = 0; i < CRL_FETCH_MAX_TARGETS; i++) {
        if (f->targets[i] != NULL)
            target_close(f->targets[i]);
    }
    certval_rcu_reader_unregister();
    pthread_mutex_lock(&f->done_lock);
    f->done = true;
    pthread_cond_signal(&f->done_cond);
    pthread_mutex_unlock(&f->done_lock);
    return NULL;
}

/* ---- public ---- */

struct crl_fetch *crl_fetch_new(struct crl_cache *crls)
{
    struct crl_fetch *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return NULL;
    f->crls = crls;
    f->efd = -1;
    pthread_mutex_init(&f->done_lock, NULL);
    pthread_cond_init(&f->done_cond, NULL);
    pthread_mutex_init(&f->stats_lock, NULL);
    return f;
}

int crl_fetch_start(struct crl_fetch *f, char *err, size_t errlen)
{
    int rc;

    if (f->running) {
        snprintf(err, errlen, "CRL fetcher already running");
        return -1;
    }
    f->efd = eventfd(0, EFD_CLOEXEC);
    if (f->efd < 0) {
        snprintf(err, errlen, "CRL fetch: eventfd: %s", strerror(errno));
        return -1;
    }
    rc = io_uring_queue_init(RING_ENTRIES, &f->ring, 0);
    if (rc < 0) {
        snprintf(err, errlen, "CRL fetch: io_uring_queue_init: %s", strerror(-rc));
        return -1;
    }
    f->ring_ok = true;
    rc = pthread_create(&f->thread, NULL, fetch_thread, f);
    if (rc != 0) {
        snprintf(err, errlen, "CRL fetch: pthread_create: %s", strerror(rc));
        return -1;
    }
    f->running = true;
    atomic_store(&f->started, true);
    return 0;
}

static void wake(struct crl_fetch *f)
{
    uint64_t one = 1;

    if (write(f->efd, &one, sizeof(one)) < 0)
        log_warn("CRL fetch: eventfd write: %s", strerror(errno));
}

void crl_fetch_reconfigure(struct crl_fetch *f)
{
    if (f == NULL || !atomic_load(&f->started))
        return;
    atomic_store(&f->reconfig, true);
    wake(f);
}

void crl_fetch_stop(struct crl_fetch *f, unsigned timeout_ms)
{
    struct timespec until;
    bool done;

    if (f == NULL || !f->running)
        return;
    atomic_store(&f->started, false);
    atomic_store(&f->stop, true);
    wake(f);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->done_lock);
    while (!f->done) {
        if (pthread_cond_timedwait(&f->done_cond, &f->done_lock, &until) == ETIMEDOUT)
            break;
    }
    done = f->done;
    pthread_mutex_unlock(&f->done_lock);
    if (done) {
        pthread_join(f->thread, NULL);
    } else {
        log_warn("CRL fetch: the fetcher thread did not stop within %u ms (a name lookup?); "
                 "leaving it behind",
                 timeout_ms);
        pthread_detach(f->thread);
        f->detached = true;
    }
    f->running = false;
}

void crl_fetch_free(struct crl_fetch *f)
{
    if (f == NULL)
        return;
    crl_fetch_stop(f, 2000);
    /* A thread left behind still uses all of it: exiting frees it. */
    if (f->detached)
        return;
    for (size_t i = 0; i < CRL_FETCH_MAX_TARGETS; i++)
        target_free(f->targets[i]);
    if (f->ring_ok)
        io_uring_queue_exit(&f->ring);
    if (f->efd >= 0)
        close(f->efd);
    pthread_mutex_destroy(&f->done_lock);
    pthread_cond_destroy(&f->done_cond);
    pthread_mutex_destroy(&f->stats_lock);
    free(f);
}

void crl_fetch_collect(struct mbuf *b, void *arg)
{
    struct crl_fetch *f = arg;

    mbuf_printf(b, "# HELP certval_crl_fetch_total CRL fetches over HTTP by URL and result.\n"
                   "# TYPE certval_crl_fetch_total counter\n");
    pthread_mutex_lock(&f->stats_lock);
    for (size_t i = 0; i < CRL_FETCH_MAX_TARGETS; i++) {
        const struct target *t = f->targets[i];

        for (int r = 0; t != NULL && r < FR_COUNT; r++) {
            mbuf_printf(b, "certval_crl_fetch_total{url=\"");
            mbuf_label(b, t->url);
            mbuf_printf(b, "\",result=\"%s\"} %llu\n", result_names[r],
                        (unsigned long long)t->counts[r]);
        }
    }
    mbuf_printf(b, "# HELP certval_crl_fetch_last_success_timestamp_seconds Last successful "
                   "fetch (new CRL, unchanged or 304) of the URL; 0 = never.\n"
                   "# TYPE certval_crl_fetch_last_success_timestamp_seconds gauge\n");
    for (size_t i = 0; i < CRL_FETCH_MAX_TARGETS; i++) {
        const struct target *t = f->targets[i];

        if (t == NULL)
            continue;
        mbuf_printf(b, "certval_crl_fetch_last_success_timestamp_seconds{url=\"");
        mbuf_label(b, t->url);
        mbuf_printf(b, "\"} %lld\n", (long long)t->last_success);
    }
    pthread_mutex_unlock(&f->stats_lock);
}
