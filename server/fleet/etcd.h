/* A small etcd v3 client on the gRPC C core (grpc_unsecure: plaintext,
 * docs/fleet.md says how the connection is protected), speaking the
 * wire-compatible subset in proto/etcd/.
 *
 * Unary calls (range, put, delete, txn, lease, compact) are synchronous and
 * bounded by the client's timeout; each has its own completion queue, so
 * one client may be used from several threads at once. A watch is one
 * bidirectional stream owned by one thread.
 *
 * Endpoints are tried in turn: a call that finds its endpoint unreachable
 * moves to the next one (within the same timeout). With a user, the client
 * authenticates (etcdserverpb.Auth/Authenticate) and sends the token on
 * every call, authenticating again when etcd says the token is invalid.
 *
 * Conventions: functions return ETCD_OK (0) or a negative ETCD_E* code
 * with a message in |err| (when |err| is not NULL and |errlen| > 0).
 * Outputs are zeroed on entry. */
#ifndef CERTVAL_FLEET_ETCD_H
#define CERTVAL_FLEET_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETCD_OK 0
#define ETCD_EUNAVAILABLE (-1) /* no endpoint answered in time */
#define ETCD_ECOMPACTED (-2)   /* the revision asked for has been compacted */
#define ETCD_EERROR (-3)       /* etcd refused the call (status in |err|) or bad reply */
#define ETCD_ENOMEM (-4)

struct etcd_client;

struct etcd_client_opts {
    const char *const *endpoints; /* "HOST:PORT" or "unix:/path"; at least one */
    size_t n_endpoints;
    const char *user;     /* NULL: no authentication */
    const char *password; /* with |user| */
    unsigned timeout_ms;  /* per call (all endpoints tried within it); 0 = 5000 */
};

/* etcd_client_new copies |opts| and returns a client (no connection is
 * made yet), or NULL on allocation failure or no endpoint. grpc_init must
 * have been called. */
struct etcd_client *etcd_client_new(const struct etcd_client_opts *opts);

/* etcd_client_free closes every channel; NULL is accepted. No call or
 * watch may be using it. */
void etcd_client_free(struct etcd_client *c);

/* One key-value pair. Owned by the etcd_kvs or etcd_event that holds it. */
struct etcd_kv {
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
    int64_t create_revision, mod_revision, version, lease;
};

struct etcd_kvs {
    struct etcd_kv *v;
    size_t n;
    bool more;        /* a limit cut the answer short */
    int64_t revision; /* the store's revision the answer was read at */
};

/* etcd_kvs_clear frees what |k| holds and zeroes it; NULL is accepted. */
void etcd_kvs_clear(struct etcd_kvs *k);

/* etcd_prefix_end writes the end of the range of every key starting with
 * |prefix| (the prefix with its last byte that is not 0xff incremented)
 * into |out| (|cap| >= |len|) and returns its length; 1 ("\0": no end) for
 * an all-0xff prefix. */
size_t etcd_prefix_end(uint8_t *out, size_t cap, const void *prefix, size_t len);

/* etcd_range reads the keys in [key, end) (end NULL: |key| alone) at
 * |revision| (0: the newest), at most |limit| (0: no limit).
 * ETCD_ECOMPACTED when |revision| has been compacted. */
int etcd_range(struct etcd_client *c, struct etcd_kvs *out, const void *key, size_t key_len,
               const void *end, size_t end_len, int64_t revision, int64_t limit, char *err,
               size_t errlen);

/* etcd_put stores |value| under |key|, bound to |lease| (0: none), and
 * sets |*out_revision| to the revision of the write. */
int etcd_put(struct etcd_client *c, int64_t *out_revision, const void *key, size_t key_len,
             const void *value, size_t value_len, int64_t lease, char *err, size_t errlen);

/* etcd_delete removes the keys in [key, end) (end NULL: |key| alone);
 * |*out_deleted| is how many there were. */
int etcd_delete(struct etcd_client *c, int64_t *out_revision, int64_t *out_deleted, const void *key,
                size_t key_len, const void *end, size_t end_len, char *err, size_t errlen);

/* One comparison of a transaction: the key's mod_revision, version or
 * create_revision compared with |value| (mod_revision 0 = the key is
 * absent). */
enum etcd_cmp_target { ETCD_CMP_VERSION = 0, ETCD_CMP_CREATE = 1, ETCD_CMP_MOD = 2 };
enum etcd_cmp_result {
    ETCD_CMP_EQUAL = 0,
    ETCD_CMP_GREATER = 1,
    ETCD_CMP_LESS = 2,
    ETCD_CMP_NOT_EQUAL = 3
};
struct etcd_cmp {
    enum etcd_cmp_target target;
    enum etcd_cmp_result result;
    const void *key;
    size_t key_len;
    int64_t value;
};

/* One operation of a transaction: a put of |value| (with |lease|), or a
 * delete of [key, end) (end NULL: |key| alone). */
struct etcd_op {
    bool is_delete;
    const void *key;
    size_t key_len;
    const void *value; /* put */
    size_t value_len;
    int64_t lease;
    const void *end; /* delete */
    size_t end_len;
};

/* etcd_txn applies |ops| atomically if every comparison holds:
 * |*out_succeeded| says whether they held (nothing is done otherwise), and
 * |*out_revision| is the store's revision after the transaction. */
int etcd_txn(struct etcd_client *c, int64_t *out_revision, bool *out_succeeded,
             const struct etcd_cmp *cmps, size_t n_cmps, const struct etcd_op *ops, size_t n_ops,
             char *err, size_t errlen);

/* etcd_lease_grant creates a lease of |ttl_s| seconds: keys put with it
 * are deleted when it expires. */
int etcd_lease_grant(struct etcd_client *c, int64_t *out_id, int64_t ttl_s, char *err,
                     size_t errlen);

/* etcd_lease_revoke ends lease |id| now (its keys are deleted). */
int etcd_lease_revoke(struct etcd_client *c, int64_t id, char *err, size_t errlen);

/* etcd_lease_keepalive renews lease |id| once; |*out_ttl| is its new TTL
 * (0 or less: the lease is gone). */
int etcd_lease_keepalive(struct etcd_client *c, int64_t *out_ttl, int64_t id, char *err,
                         size_t errlen);

/* etcd_compact drops the history before |revision| (an operator's or a
 * test's call: certvald never compacts). */
int etcd_compact(struct etcd_client *c, int64_t revision, char *err, size_t errlen);

/* ---- watch ---- */

struct etcd_watch;

struct etcd_event {
    bool is_delete;
    struct etcd_kv kv;   /* a delete carries the key and its mod_revision only */
    struct etcd_kv prev; /* the value before, when asked for (may be empty) */
};

struct etcd_watch_batch {
    struct etcd_event *v;
    size_t n;
    int64_t revision; /* the store's revision when etcd sent it */
    bool progress;    /* no events: a progress report (everything up to |revision| was sent) */
    int64_t compact_revision; /* ETCD_ECOMPACTED: the oldest revision still kept */
};

/* etcd_watch_batch_clear frees the events of |b| and zeroes it. */
void etcd_watch_batch_clear(struct etcd_watch_batch *b);

/* etcd_watch_open opens a watch of [key, end) from |start_revision|
 * (inclusive) and waits (within the client's timeout) until etcd has
 * created it. When |start_revision| is compacted, etcd 3.4 creates the
 * watch and cancels it in its next answer: the first etcd_watch_next
 * returns ETCD_ECOMPACTED (etcd_watch_open does when both come in one
 * answer, setting *out_compact_revision). *out is NULL on failure. */
int etcd_watch_open(struct etcd_client *c, struct etcd_watch **out, int64_t *out_compact_revision,
                    const void *key, size_t key_len, const void *end, size_t end_len,
                    int64_t start_revision, bool prev_kv, char *err, size_t errlen);

/* etcd_watch_next waits up to |timeout_ms| for the next batch: ETCD_OK
 * with events, a progress report, or nothing (n 0, progress false: the
 * wait ran out); ETCD_ECOMPACTED when etcd cancelled the watch for
 * compaction; ETCD_EUNAVAILABLE or ETCD_EERROR when the stream ended (the
 * watch is dead: close it). */
int etcd_watch_next(struct etcd_watch *w, struct etcd_watch_batch *out, int timeout_ms, char *err,
                    size_t errlen);

/* etcd_watch_request_progress asks etcd for a progress report (answered
 * in a later etcd_watch_next). Skipped while a previous request is still
 * being sent. */
int etcd_watch_request_progress(struct etcd_watch *w);

/* etcd_watch_close cancels the stream and frees |w|; NULL is accepted. */
void etcd_watch_close(struct etcd_watch *w);

#endif
