/* Private to server/fetch/: the state of the CRL fetcher thread, shared by
 * crl_fetch.c (the URL set, the loop and the public functions),
 * crl_fetch_targets.c (one target's state machine) and crl_fetch_parse.c
 * (the libhttp-parser callbacks). Everything here runs on the fetcher
 * thread except where a field says otherwise (see crl_fetch.c).
 *
 * Conventions: as crl_fetch.h: 0, or -1 with a message in |err|. */
#ifndef CERTVAL_CRL_FETCH_THREAD_INTERNAL_H
#define CERTVAL_CRL_FETCH_THREAD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <http_parser.h>
#include <liburing.h>
#include <openssl/sha.h>

#include "crl_fetch_http.h"

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

/* Metric label of each result. */
extern const char *const crl_fetch_result_names[FR_COUNT];

/* The libhttp-parser callbacks; the parser's data is the struct target. */
extern const http_parser_settings crl_fetch_parser_settings;

static inline int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns an SQE, submitting what is queued when the ring is full. */
static inline struct io_uring_sqe *get_sqe(struct crl_fetch *f)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring);

    if (sqe == NULL) {
        io_uring_submit(&f->ring);
        sqe = io_uring_get_sqe(&f->ring);
    }
    return sqe;
}

/* ---- crl_fetch_targets.c ---- */

/* crl_fetch_target_close closes the target's socket, if any. */
void crl_fetch_target_close(struct target *t);

/* crl_fetch_target_free frees |t| and its socket and body; NULL is accepted. */
void crl_fetch_target_free(struct target *t);

/* crl_fetch_remove_target takes |t| out of its slot and frees it. */
void crl_fetch_remove_target(struct crl_fetch *f, struct target *t);

/* crl_fetch_target_start begins a fetch of |t| (its first hop) at |now|. */
void crl_fetch_target_start(struct crl_fetch *f, struct target *t, int64_t now);

/* crl_fetch_on_io handles the completion |res| of the I/O whose user_data
 * is |data|; stale completions are ignored. */
void crl_fetch_on_io(struct crl_fetch *f, uint64_t data, int res);

#endif
