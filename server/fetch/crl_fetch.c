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
 * the fetcher thread. |stop| and |reconfig| are atomics.
 *
 * Files: this one holds the URL set, the loop and the public functions;
 * crl_fetch_targets.c one target's state machine; crl_fetch_parse.c the
 * HTTP response callbacks; crl_fetch_http.c the pure helpers (URL,
 * request, schedule) that tests link without the thread. */

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
#include "crl_fetch_http.h"
#include "crl_fetch_thread_internal.h"
#include "log.h"
#include "rcu_reader.h"
#include "metrics.h"
#include "reload.h"
#include "validator.h"

const char *const crl_fetch_result_names[FR_COUNT] = {
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
    struct reload_snapshot *s = reload_acquire();
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
    reload_release(s);
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
            crl_fetch_remove_target(f, t);
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
            crl_fetch_target_start(f, t, now);
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
        crl_fetch_on_io(f, data, res);
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
            crl_fetch_target_close(f->targets[i]);
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
        crl_fetch_target_free(f->targets[i]);
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
            mbuf_printf(b, "\",result=\"%s\"} %llu\n", crl_fetch_result_names[r],
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
