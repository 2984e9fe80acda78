/* The CRL fetcher's targets (crl_fetch_thread_internal.h): one URL's state
 * machine, connect, send, receive, redirects, and what a finished fetch
 * does (hand the CRL to the cache, schedule the next one). See crl_fetch.c
 * for the whole picture. */
#include "crl_fetch_thread_internal.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "crl_cache.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"

static uint32_t rnd32(void)
{
    uint32_t r = 0;

    RAND_bytes((uint8_t *)&r, sizeof(r));
    return r;
}

void crl_fetch_target_close(struct target *t)
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

void crl_fetch_target_free(struct target *t)
{
    if (t == NULL)
        return;
    crl_fetch_target_close(t);
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

void crl_fetch_remove_target(struct crl_fetch *f, struct target *t)
{
    pthread_mutex_lock(&f->stats_lock);
    f->targets[t->slot] = NULL;
    pthread_mutex_unlock(&f->stats_lock);
    crl_fetch_target_free(t);
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

    crl_fetch_target_close(t);
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
                crl_fetch_result_names[r], (double)wait_ms / 1000.0);
    } else {
        uint64_t wait_ms;

        t->failures++;
        wait_ms = crl_fetch_backoff_ms(t->failures, f->max_backoff_s, rnd32());
        t->due_ms = now + (int64_t)wait_ms;
        log_warn("CRL fetch %s failed (%s): %s; the CRL in force stays, retry %u in %.1f s", t->url,
                 crl_fetch_result_names[r], detail, t->failures, (double)wait_ms / 1000.0);
    }
    if (t->gone)
        crl_fetch_remove_target(f, t);
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

void crl_fetch_target_start(struct crl_fetch *f, struct target *t, int64_t now)
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

/* take_body hands a complete 200 body to reload_crl_push. */
static void take_body(struct crl_fetch *f, struct target *t)
{
    char err[600], issuer[300], label[CRL_FETCH_URL_MAX + 8];
    uint8_t sha[SHA256_DIGEST_LENGTH];
    int64_t this_update = 0, next_update = 0;
    uint64_t number = 0, entries = 0;

    /* A DER CRL's times are read before the push: a CRL already past its
     * nextUpdate is refused here so the one in force (possibly fresher)
     * stays. PEM and garbage go to reload_crl_push, which judges them. */
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
    if (reload_crl_push(f->crls, t->body, t->body_len, label, issuer, sizeof(issuer), &number,
                        &entries, err, sizeof(err)) < 0) {
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
    crl_fetch_target_close(t);
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
    http_parser_execute(&t->parser, &crl_fetch_parser_settings, (const char *)t->rbuf, (size_t)res);
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

void crl_fetch_on_io(struct crl_fetch *f, uint64_t data, int res)
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
