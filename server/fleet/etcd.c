/* etcd v3 client (etcd.h) on the gRPC C core.
 *
 * Who does what: the endpoint list, the channels, the current endpoint and
 * the auth token are shared by every thread using the client and protected
 * by |lock|; each unary call has its own pluck completion queue; a watch
 * owns its call and completion queue and is used by one thread. */
#include "etcd.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "etcd/rpc.pb-c.h"

#define ETCD_DEFAULT_TIMEOUT_MS 5000
#define ETCD_TOKEN_MAX 1024
/* A pushed CRL is read back in chunks of at most 1 MiB, but a range of many
 * deny entries can be large: 256 MiB bounds what one answer may allocate. */
#define ETCD_MAX_RECV_BYTES (256 << 20)

struct etcd_client {
    char **endpoints;
    size_t n_endpoints;
    char *user, *password;
    unsigned timeout_ms;
    grpc_channel_credentials *creds;
    pthread_mutex_t lock;    /* protects everything below */
    grpc_channel **channels; /* created on first use, one per endpoint */
    size_t current;
    char token[ETCD_TOKEN_MAX]; /* "" = none yet */
};

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

struct etcd_client *etcd_client_new(const struct etcd_client_opts *opts)
{
    struct etcd_client *c;

    if (opts == NULL || opts->n_endpoints == 0)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->endpoints = calloc(opts->n_endpoints, sizeof(*c->endpoints));
    c->channels = calloc(opts->n_endpoints, sizeof(*c->channels));
    if (c->endpoints == NULL || c->channels == NULL)
        goto err;
    for (size_t i = 0; i < opts->n_endpoints; i++) {
        c->endpoints[i] = strdup(opts->endpoints[i]);
        if (c->endpoints[i] == NULL)
            goto err;
        c->n_endpoints++;
    }
    if (opts->user != NULL) {
        c->user = strdup(opts->user);
        c->password = strdup(opts->password != NULL ? opts->password : "");
        if (c->user == NULL || c->password == NULL)
            goto err;
    }
    c->timeout_ms = opts->timeout_ms ? opts->timeout_ms : ETCD_DEFAULT_TIMEOUT_MS;
    c->creds = grpc_insecure_credentials_create();
    if (c->creds == NULL)
        goto err;
    return c;
err:
    etcd_client_free(c);
    return NULL;
}

void etcd_client_free(struct etcd_client *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; c->channels != NULL && i < c->n_endpoints; i++)
        if (c->channels[i] != NULL)
            grpc_channel_destroy(c->channels[i]);
    for (size_t i = 0; c->endpoints != NULL && i < c->n_endpoints; i++)
        free(c->endpoints[i]);
    free(c->endpoints);
    free(c->channels);
    free(c->user);
    free(c->password);
    if (c->creds != NULL)
        grpc_channel_credentials_release(c->creds);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* channel_get returns the channel of endpoint |i| (created now if need
 * be; the client keeps it). Called with |lock| held. */
static grpc_channel *channel_get(struct etcd_client *c, size_t i)
{
    grpc_arg args[6];
    grpc_channel_args ca;

    if (c->channels[i] != NULL)
        return c->channels[i];
    memset(args, 0, sizeof(args));
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = ETCD_MAX_RECV_BYTES;
    /* Reconnect quickly when etcd comes back: the follower has its own
     * backoff with jitter above this one. */
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
    args[1].value.integer = 200;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args[2].value.integer = 2000;
    /* (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is also the connect timeout:
     * left at its default.) */
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS;
    args[3].value.integer = 0;
    /* A partitioned etcd is noticed by HTTP/2 pings on the watch stream
     * within about 15 s (etcd accepts pings every 5 s or more). */
    args[4].type = GRPC_ARG_INTEGER;
    args[4].key = GRPC_ARG_KEEPALIVE_TIME_MS;
    args[4].value.integer = 10000;
    args[5].type = GRPC_ARG_INTEGER;
    args[5].key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS;
    args[5].value.integer = 5000;
    ca.num_args = 6;
    ca.args = args;
    c->channels[i] = grpc_channel_create(c->endpoints[i], c->creds, &ca);
    return c->channels[i];
}

void etcd_kvs_clear(struct etcd_kvs *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->n; i++) {
        free(k->v[i].key);
        free(k->v[i].value);
    }
    free(k->v);
    memset(k, 0, sizeof(*k));
}

size_t etcd_prefix_end(uint8_t *out, size_t cap, const void *prefix, size_t len)
{
    const uint8_t *p = prefix;

    for (size_t i = len; i > 0; i--) {
        if (p[i - 1] != 0xff && i <= cap) {
            memcpy(out, p, i - 1);
            out[i - 1] = (uint8_t)(p[i - 1] + 1);
            return i;
        }
    }
    if (cap > 0)
        out[0] = 0;
    return 1;
}

/* ---- one unary call ---- */

struct raw_reply {
    grpc_status_code status;
    char details[256];
    uint8_t *body; /* malloc'd */
    size_t body_len;
};

/* raw_call makes one call on |ch|. 0 when it completed (whatever its
 * status), -1 when it could not be started. */
static int raw_call(grpc_channel *ch, const char *method, const char *token, const uint8_t *req,
                    size_t req_len, gpr_timespec deadline, struct raw_reply *res)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice req_slice = grpc_slice_from_copied_buffer((const char *)req, req_len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&req_slice, 1);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array init_md, trail_md;
    grpc_slice details = grpc_empty_slice();
    grpc_metadata md;
    grpc_op ops[6];
    grpc_call *call;
    int rc = -1, tag;

    memset(res, 0, sizeof(*res));
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                    grpc_slice_from_static_string(method), NULL, deadline, NULL);
    memset(ops, 0, sizeof(ops));
    memset(&md, 0, sizeof(md));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (token != NULL && token[0] != '\0') {
        md.key = grpc_slice_from_static_string("token");
        md.value = grpc_slice_from_copied_string(token);
        ops[0].data.send_initial_metadata.count = 1;
        ops[0].data.send_initial_metadata.metadata = &md;
    }
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &res->status;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (call != NULL && grpc_call_start_batch(call, ops, 6, &tag, NULL) == GRPC_CALL_OK) {
        grpc_event ev =
            grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

        rc = ev.type == GRPC_OP_COMPLETE ? 0 : -1;
    }
    if (rc == 0) {
        char *d = grpc_slice_to_c_string(details);

        snprintf(res->details, sizeof(res->details), "%s", d);
        gpr_free(d);
    }
    if (rc == 0 && recv != NULL && res->status == GRPC_STATUS_OK) {
        grpc_byte_buffer_reader reader;

        if (grpc_byte_buffer_reader_init(&reader, recv)) {
            grpc_slice s = grpc_byte_buffer_reader_readall(&reader);

            res->body_len = GRPC_SLICE_LENGTH(s);
            res->body = malloc(res->body_len > 0 ? res->body_len : 1);
            if (res->body != NULL)
                memcpy(res->body, GRPC_SLICE_START_PTR(s), res->body_len);
            else
                rc = -1;
            grpc_slice_unref(s);
            grpc_byte_buffer_reader_destroy(&reader);
        }
    }
    if (recv != NULL)
        grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(req_slice);
    grpc_slice_unref(details);
    if (token != NULL && token[0] != '\0')
        grpc_slice_unref(md.value);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    if (call != NULL)
        grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    return rc;
}

static bool unreachable(grpc_status_code s)
{
    return s == GRPC_STATUS_UNAVAILABLE || s == GRPC_STATUS_DEADLINE_EXCEEDED;
}

static bool token_refused(const struct raw_reply *r)
{
    return (r->status == GRPC_STATUS_UNAUTHENTICATED ||
            r->status == GRPC_STATUS_INVALID_ARGUMENT) &&
           strstr(r->details, "token") != NULL;
}

/* authenticate gets a token on |ch| into c->token. Called with |lock|
 * held (authentication is rare). */
static int authenticate(struct etcd_client *c, grpc_channel *ch, gpr_timespec deadline,
                        struct raw_reply *r)
{
    Etcdserverpb__AuthenticateRequest req = ETCDSERVERPB__AUTHENTICATE_REQUEST__INIT;
    Etcdserverpb__AuthenticateResponse *resp;
    uint8_t *buf;
    size_t len;
    int rc;

    req.name = c->user;
    req.password = c->password;
    len = etcdserverpb__authenticate_request__get_packed_size(&req);
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        return -1;
    etcdserverpb__authenticate_request__pack(&req, buf);
    rc = raw_call(ch, "/etcdserverpb.Auth/Authenticate", NULL, buf, len, deadline, r);
    free(buf);
    if (rc < 0 || r->status != GRPC_STATUS_OK)
        return -1;
    resp = etcdserverpb__authenticate_response__unpack(NULL, r->body_len, r->body);
    if (resp == NULL || resp->token == NULL) {
        if (resp != NULL)
            etcdserverpb__authenticate_response__free_unpacked(resp, NULL);
        r->status = GRPC_STATUS_INTERNAL;
        snprintf(r->details, sizeof(r->details), "bad Authenticate reply");
        return -1;
    }
    snprintf(c->token, sizeof(c->token), "%s", resp->token);
    etcdserverpb__authenticate_response__free_unpacked(resp, NULL);
    free(r->body);
    r->body = NULL;
    return 0;
}

/* call packs |req|, calls |method| (trying each endpoint in turn while
 * they are unreachable, authenticating when needed) and unpacks the reply
 * with |desc| into |*out|. */
static int call(struct etcd_client *c, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out, char *err,
                size_t errlen)
{
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(c->timeout_ms, GPR_TIMESPAN));
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    struct raw_reply r;
    bool reauth_done = false;
    int rc = ETCD_EUNAVAILABLE;

    *out = NULL;
    memset(&r, 0, sizeof(r));
    if (buf == NULL) {
        set_err(err, errlen, "out of memory");
        return ETCD_ENOMEM;
    }
    protobuf_c_message_pack(req, buf);
    set_err(err, errlen, "etcd unreachable");
    for (size_t attempt = 0; attempt < c->n_endpoints + 1; attempt++) {
        char token[ETCD_TOKEN_MAX], endpoint[256];
        grpc_channel *ch;
        size_t idx;

        pthread_mutex_lock(&c->lock);
        idx = c->current;
        ch = channel_get(c, idx);
        snprintf(endpoint, sizeof(endpoint), "%s", c->endpoints[idx]);
        if (c->user != NULL && c->token[0] == '\0' && ch != NULL &&
            authenticate(c, ch, deadline, &r) < 0) {
            pthread_mutex_unlock(&c->lock);
            if (unreachable(r.status) || ch == NULL) {
                set_err(err, errlen, "etcd %s: %s", endpoint, r.details);
                goto next;
            }
            set_err(err, errlen, "etcd %s: authentication refused: %s", endpoint, r.details);
            rc = ETCD_EERROR;
            break;
        }
        snprintf(token, sizeof(token), "%s", c->token);
        pthread_mutex_unlock(&c->lock);
        if (ch == NULL || raw_call(ch, method, token, buf, len, deadline, &r) < 0) {
            rc = ETCD_ENOMEM;
            set_err(err, errlen, "cannot start a call to etcd %s%s", endpoint, "");
            break;
        }
        if (r.status == GRPC_STATUS_OK) {
            *out = protobuf_c_message_unpack(desc, NULL, r.body_len, r.body);
            rc = *out != NULL ? ETCD_OK : ETCD_EERROR;
            if (*out == NULL)
                set_err(err, errlen, "etcd %s: unreadable reply to %s", endpoint, method);
            break;
        }
        if (token_refused(&r) && c->user != NULL && !reauth_done) {
            reauth_done = true;
            pthread_mutex_lock(&c->lock);
            c->token[0] = '\0';
            pthread_mutex_unlock(&c->lock);
            free(r.body);
            r.body = NULL;
            continue;
        }
        if (!unreachable(r.status)) {
            rc = r.status == GRPC_STATUS_OUT_OF_RANGE && strstr(r.details, "compacted") != NULL
                     ? ETCD_ECOMPACTED
                     : ETCD_EERROR;
            set_err(err, errlen, "etcd %s: %s", endpoint, r.details);
            break;
        }
        set_err(err, errlen, "etcd %s: %s", endpoint, r.details[0] ? r.details : "unreachable");
    next:
        free(r.body);
        r.body = NULL;
        /* Next endpoint, unless time has run out. */
        pthread_mutex_lock(&c->lock);
        if (c->current == idx)
            c->current = (idx + 1) % c->n_endpoints;
        pthread_mutex_unlock(&c->lock);
        if (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), deadline) >= 0)
            break;
    }
    free(r.body);
    free(buf);
    return rc;
}

/* ---- KV ---- */

static int kv_copy(struct etcd_kv *out, const Mvccpb__KeyValue *kv)
{
    memset(out, 0, sizeof(*out));
    if (kv == NULL)
        return 0;
    out->key = malloc(kv->key.len + 1);
    out->value = malloc(kv->value.len + 1);
    if (out->key == NULL || out->value == NULL) {
        free(out->key);
        free(out->value);
        memset(out, 0, sizeof(*out));
        return -1;
    }
    if (kv->key.len > 0)
        memcpy(out->key, kv->key.data, kv->key.len);
    if (kv->value.len > 0)
        memcpy(out->value, kv->value.data, kv->value.len);
    out->key[kv->key.len] = 0; /* keys read as strings stay terminated */
    out->value[kv->value.len] = 0;
    out->key_len = kv->key.len;
    out->value_len = kv->value.len;
    out->create_revision = kv->create_revision;
    out->mod_revision = kv->mod_revision;
    out->version = kv->version;
    out->lease = kv->lease;
    return 0;
}

static ProtobufCBinaryData bin(const void *p, size_t n)
{
    ProtobufCBinaryData b = {n, (uint8_t *)(uintptr_t)p};

    return b;
}

int etcd_range(struct etcd_client *c, struct etcd_kvs *out, const void *key, size_t key_len,
               const void *end, size_t end_len, int64_t revision, int64_t limit, char *err,
               size_t errlen)
{
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    Etcdserverpb__RangeResponse *resp = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    req.key = bin(key, key_len);
    if (end != NULL)
        req.range_end = bin(end, end_len);
    req.revision = revision;
    req.limit = limit;
    rc = call(c, "/etcdserverpb.KV/Range", &req.base, &etcdserverpb__range_response__descriptor,
              (ProtobufCMessage **)&resp, err, errlen);
    if (rc != ETCD_OK)
        return rc;
    out->revision = resp->header != NULL ? resp->header->revision : 0;
    out->more = resp->more;
    out->v = calloc(resp->n_kvs > 0 ? resp->n_kvs : 1, sizeof(*out->v));
    if (out->v == NULL)
        rc = ETCD_ENOMEM;
    for (size_t i = 0; rc == ETCD_OK && i < resp->n_kvs; i++) {
        if (kv_copy(&out->v[i], resp->kvs[i]) < 0)
            rc = ETCD_ENOMEM;
        else
            out->n++;
    }
    etcdserverpb__range_response__free_unpacked(resp, NULL);
    if (rc != ETCD_OK) {
        etcd_kvs_clear(out);
        set_err(err, errlen, "out of memory");
    }
    return rc;
}

int etcd_put(struct etcd_client *c, int64_t *out_revision, const void *key, size_t key_len,
             const void *value, size_t value_len, int64_t lease, char *err, size_t errlen)
{
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    Etcdserverpb__PutResponse *resp = NULL;
    int rc;

    *out_revision = 0;
    req.key = bin(key, key_len);
    req.value = bin(value, value_len);
    req.lease = lease;
    rc = call(c, "/etcdserverpb.KV/Put", &req.base, &etcdserverpb__put_response__descriptor,
              (ProtobufCMessage **)&resp, err, errlen);
    if (rc != ETCD_OK)
        return rc;
    *out_revision = resp->header != NULL ? resp->header->revision : 0;
    etcdserverpb__put_response__free_unpacked(resp, NULL);
    return ETCD_OK;
}

int etcd_delete(struct etcd_client *c, int64_t *out_revision, int64_t *out_deleted, const void *key,
                size_t key_len, const void *end, size_t end_len, char *err, size_t errlen)
{
    Etcdserverpb__DeleteRangeRequest req = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    Etcdserverpb__DeleteRangeResponse *resp = NULL;
    int rc;

    *out_revision = 0;
    *out_deleted = 0;
    req.key = bin(key, key_len);
    if (end != NULL)
        req.range_end = bin(end, end_len);
    rc = call(c, "/etcdserverpb.KV/DeleteRange", &req.base,
              &etcdserverpb__delete_range_response__descriptor, (ProtobufCMessage **)&resp, err,
              errlen);
    if (rc != ETCD_OK)
        return rc;
    *out_revision = resp->header != NULL ? resp->header->revision : 0;
    *out_deleted = resp->deleted;
    etcdserverpb__delete_range_response__free_unpacked(resp, NULL);
    return ETCD_OK;
}

int etcd_txn(struct etcd_client *c, int64_t *out_revision, bool *out_succeeded,
             const struct etcd_cmp *cmps, size_t n_cmps, const struct etcd_op *ops, size_t n_ops,
             char *err, size_t errlen)
{
    Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
    Etcdserverpb__TxnResponse *resp = NULL;
    Etcdserverpb__Compare *cv = calloc(n_cmps + 1, sizeof(*cv));
    Etcdserverpb__Compare **cp = calloc(n_cmps + 1, sizeof(*cp));
    Etcdserverpb__RequestOp *ov = calloc(n_ops + 1, sizeof(*ov));
    Etcdserverpb__RequestOp **op = calloc(n_ops + 1, sizeof(*op));
    Etcdserverpb__PutRequest *puts = calloc(n_ops + 1, sizeof(*puts));
    Etcdserverpb__DeleteRangeRequest *dels = calloc(n_ops + 1, sizeof(*dels));
    int rc = ETCD_ENOMEM;

    *out_revision = 0;
    *out_succeeded = false;
    if (cv == NULL || cp == NULL || ov == NULL || op == NULL || puts == NULL || dels == NULL) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_cmps; i++) {
        Etcdserverpb__Compare init = ETCDSERVERPB__COMPARE__INIT;

        cv[i] = init;
        cv[i].key = bin(cmps[i].key, cmps[i].key_len);
        cv[i].result = (Etcdserverpb__Compare__CompareResult)cmps[i].result;
        cv[i].target = (Etcdserverpb__Compare__CompareTarget)cmps[i].target;
        switch (cmps[i].target) {
        case ETCD_CMP_VERSION:
            cv[i].target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
            cv[i].version = cmps[i].value;
            break;
        case ETCD_CMP_CREATE:
            cv[i].target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
            cv[i].create_revision = cmps[i].value;
            break;
        case ETCD_CMP_MOD:
            cv[i].target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
            cv[i].mod_revision = cmps[i].value;
            break;
        }
        cp[i] = &cv[i];
    }
    for (size_t i = 0; i < n_ops; i++) {
        Etcdserverpb__RequestOp oinit = ETCDSERVERPB__REQUEST_OP__INIT;
        Etcdserverpb__PutRequest pinit = ETCDSERVERPB__PUT_REQUEST__INIT;
        Etcdserverpb__DeleteRangeRequest dinit = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;

        ov[i] = oinit;
        if (ops[i].is_delete) {
            dels[i] = dinit;
            dels[i].key = bin(ops[i].key, ops[i].key_len);
            if (ops[i].end != NULL)
                dels[i].range_end = bin(ops[i].end, ops[i].end_len);
            ov[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
            ov[i].request_delete_range = &dels[i];
        } else {
            puts[i] = pinit;
            puts[i].key = bin(ops[i].key, ops[i].key_len);
            puts[i].value = bin(ops[i].value, ops[i].value_len);
            puts[i].lease = ops[i].lease;
            ov[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
            ov[i].request_put = &puts[i];
        }
        op[i] = &ov[i];
    }
    req.n_compare = n_cmps;
    req.compare = cp;
    req.n_success = n_ops;
    req.success = op;
    rc = call(c, "/etcdserverpb.KV/Txn", &req.base, &etcdserverpb__txn_response__descriptor,
              (ProtobufCMessage **)&resp, err, errlen);
    if (rc == ETCD_OK) {
        *out_revision = resp->header != NULL ? resp->header->revision : 0;
        *out_succeeded = resp->succeeded;
        etcdserverpb__txn_response__free_unpacked(resp, NULL);
    }
out:
    free(cv);
    free(cp);
    free(ov);
    free(op);
    free(puts);
    free(dels);
    return rc;
}

/* ---- Lease, Maintenance ---- */

int etcd_lease_grant(struct etcd_client *c, int64_t *out_id, int64_t ttl_s, char *err,
                     size_t errlen)
{
    Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    Etcdserverpb__LeaseGrantResponse *resp = NULL;
    int rc;

    *out_id = 0;
    req.ttl = ttl_s;
    rc = call(c, "/etcdserverpb.Lease/LeaseGrant", &req.base,
              &etcdserverpb__lease_grant_response__descriptor, (ProtobufCMessage **)&resp, err,
              errlen);
    if (rc != ETCD_OK)
        return rc;
    if (resp->error != NULL && resp->error[0] != '\0') {
        set_err(err, errlen, "etcd refused the lease: %s%s", resp->error, "");
        rc = ETCD_EERROR;
    } else {
        *out_id = resp->id;
    }
    etcdserverpb__lease_grant_response__free_unpacked(resp, NULL);
    return rc;
}

int etcd_lease_revoke(struct etcd_client *c, int64_t id, char *err, size_t errlen)
{
    Etcdserverpb__LeaseRevokeRequest req = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
    Etcdserverpb__LeaseRevokeResponse *resp = NULL;
    int rc;

    req.id = id;
    rc = call(c, "/etcdserverpb.Lease/LeaseRevoke", &req.base,
              &etcdserverpb__lease_revoke_response__descriptor, (ProtobufCMessage **)&resp, err,
              errlen);
    if (rc == ETCD_OK)
        etcdserverpb__lease_revoke_response__free_unpacked(resp, NULL);
    return rc;
}

int etcd_lease_keepalive(struct etcd_client *c, int64_t *out_ttl, int64_t id, char *err,
                         size_t errlen)
{
    /* LeaseKeepAlive is a stream; one request and one answer on it renew
     * the lease once, which is all certval needs (it keeps no lease). */
    Etcdserverpb__LeaseKeepAliveRequest req = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
    Etcdserverpb__LeaseKeepAliveResponse *resp = NULL;
    int rc;

    *out_ttl = 0;
    req.id = id;
    rc = call(c, "/etcdserverpb.Lease/LeaseKeepAlive", &req.base,
              &etcdserverpb__lease_keep_alive_response__descriptor, (ProtobufCMessage **)&resp, err,
              errlen);
    if (rc != ETCD_OK)
        return rc;
    *out_ttl = resp->ttl;
    etcdserverpb__lease_keep_alive_response__free_unpacked(resp, NULL);
    return ETCD_OK;
}

int etcd_compact(struct etcd_client *c, int64_t revision, char *err, size_t errlen)
{
    Etcdserverpb__CompactionRequest req = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
    Etcdserverpb__CompactionResponse *resp = NULL;
    int rc;

    req.revision = revision;
    req.physical = true;
    rc = call(c, "/etcdserverpb.KV/Compact", &req.base,
              &etcdserverpb__compaction_response__descriptor, (ProtobufCMessage **)&resp, err,
              errlen);
    if (rc == ETCD_OK)
        etcdserverpb__compaction_response__free_unpacked(resp, NULL);
    return rc;
}

/* ---- Watch ---- */

/* The outstanding operations of a watch call, each with its own tag. */
enum { W_SEND, W_RECV, W_STATUS, W_NTAGS };

struct etcd_watch {
    struct etcd_client *client;
    grpc_completion_queue *cq;
    grpc_call *call;
    char tags[W_NTAGS]; /* their addresses are the tags */
    bool pending[W_NTAGS];
    bool got_initial_md, ended;
    grpc_byte_buffer *send_buf, *recv_buf;
    grpc_metadata_array init_md, trail_md;
    grpc_metadata token_md;
    bool has_token;
    grpc_status_code status;
    grpc_slice details;
    int64_t watch_id;
};

void etcd_watch_batch_clear(struct etcd_watch_batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->v[i].kv.key);
        free(b->v[i].kv.value);
        free(b->v[i].prev.key);
        free(b->v[i].prev.value);
    }
    free(b->v);
    memset(b, 0, sizeof(*b));
}

static int watch_send(struct etcd_watch *w, const Etcdserverpb__WatchRequest *req, bool first)
{
    size_t len = etcdserverpb__watch_request__get_packed_size(req);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    grpc_slice s;
    grpc_op ops[2];
    size_t n = 0;

    if (buf == NULL)
        return -1;
    etcdserverpb__watch_request__pack(req, buf);
    s = grpc_slice_new(buf, len, free);
    w->send_buf = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    memset(ops, 0, sizeof(ops));
    if (first) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        if (w->has_token) {
            ops[n].data.send_initial_metadata.count = 1;
            ops[n].data.send_initial_metadata.metadata = &w->token_md;
        }
        n++;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = w->send_buf;
    n++;
    if (grpc_call_start_batch(w->call, ops, n, &w->tags[W_SEND], NULL) != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(w->send_buf);
        w->send_buf = NULL;
        return -1;
    }
    w->pending[W_SEND] = true;
    return 0;
}

static int watch_start_recv(struct etcd_watch *w)
{
    grpc_op ops[2];
    size_t n = 0;

    memset(ops, 0, sizeof(ops));
    if (!w->got_initial_md) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n].data.recv_initial_metadata.recv_initial_metadata = &w->init_md;
        n++;
        w->got_initial_md = true;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n].data.recv_message.recv_message = &w->recv_buf;
    n++;
    if (grpc_call_start_batch(w->call, ops, n, &w->tags[W_RECV], NULL) != GRPC_CALL_OK)
        return -1;
    w->pending[W_RECV] = true;
    return 0;
}

static void watch_status_err(struct etcd_watch *w, char *err, size_t errlen)
{
    char *d = grpc_slice_to_c_string(w->details);

    set_err(err, errlen, "etcd watch ended: %s%s", d[0] ? d : "stream closed", "");
    gpr_free(d);
}

/* watch_wait waits for one completion until |deadline|: the index of the
 * tag that completed (its pending flag cleared), or -1 on timeout. */
static int watch_wait(struct etcd_watch *w, gpr_timespec deadline, bool *ok)
{
    grpc_event ev = grpc_completion_queue_next(w->cq, deadline, NULL);

    if (ev.type != GRPC_OP_COMPLETE)
        return -1;
    for (int i = 0; i < W_NTAGS; i++) {
        if (ev.tag == &w->tags[i]) {
            w->pending[i] = false;
            *ok = ev.success != 0;
            if (i == W_SEND && w->send_buf != NULL) {
                grpc_byte_buffer_destroy(w->send_buf);
                w->send_buf = NULL;
            }
            if (i == W_STATUS)
                w->ended = true;
            return i;
        }
    }
    return -1;
}

static int event_copy(struct etcd_event *out, const Mvccpb__Event *e)
{
    memset(out, 0, sizeof(*out));
    out->is_delete = e->type == MVCCPB__EVENT__EVENT_TYPE__DELETE;
    if (kv_copy(&out->kv, e->kv) < 0 || kv_copy(&out->prev, e->prev_kv) < 0) {
        free(out->kv.key);
        free(out->kv.value);
        return -1;
    }
    return 0;
}

/* watch_read turns the received message into |out|. */
static int watch_read(struct etcd_watch *w, struct etcd_watch_batch *out, bool *out_created,
                      char *err, size_t errlen)
{
    grpc_byte_buffer_reader reader;
    grpc_slice s;
    Etcdserverpb__WatchResponse *resp;
    int rc = ETCD_OK;

    *out_created = false;
    if (w->recv_buf == NULL || !grpc_byte_buffer_reader_init(&reader, w->recv_buf)) {
        if (w->recv_buf != NULL)
            grpc_byte_buffer_destroy(w->recv_buf);
        w->recv_buf = NULL;
        set_err(err, errlen, "etcd closed the watch stream");
        return ETCD_EUNAVAILABLE;
    }
    s = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    grpc_byte_buffer_destroy(w->recv_buf);
    w->recv_buf = NULL;
    resp =
        etcdserverpb__watch_response__unpack(NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    if (resp == NULL) {
        set_err(err, errlen, "unreadable watch reply");
        return ETCD_EERROR;
    }
    out->revision = resp->header != NULL ? resp->header->revision : 0;
    if (resp->created) {
        *out_created = true;
        w->watch_id = resp->watch_id;
    }
    if (resp->canceled) {
        out->compact_revision = resp->compact_revision;
        rc = resp->compact_revision > 0 ? ETCD_ECOMPACTED : ETCD_EERROR;
        set_err(err, errlen, "etcd cancelled the watch: %s%s",
                resp->compact_revision > 0    ? "history compacted"
                : resp->cancel_reason != NULL ? resp->cancel_reason
                                              : "",
                "");
    } else if (resp->n_events > 0) {
        out->v = calloc(resp->n_events, sizeof(*out->v));
        if (out->v == NULL)
            rc = ETCD_ENOMEM;
        for (size_t i = 0; rc == ETCD_OK && i < resp->n_events; i++) {
            if (event_copy(&out->v[i], resp->events[i]) < 0)
                rc = ETCD_ENOMEM;
            else
                out->n++;
        }
        if (rc == ETCD_ENOMEM)
            set_err(err, errlen, "out of memory");
    } else if (!resp->created) {
        out->progress = true;
    }
    etcdserverpb__watch_response__free_unpacked(resp, NULL);
    return rc;
}

int etcd_watch_next(struct etcd_watch *w, struct etcd_watch_batch *out, int timeout_ms, char *err,
                    size_t errlen)
{
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));

    memset(out, 0, sizeof(out[0]));
    if (w->ended) {
        watch_status_err(w, err, errlen);
        return ETCD_EUNAVAILABLE;
    }
    if (!w->pending[W_RECV] && watch_start_recv(w) < 0) {
        set_err(err, errlen, "cannot read the watch stream");
        return ETCD_EERROR;
    }
    for (;;) {
        bool ok = false, created;
        int t = watch_wait(w, deadline, &ok);
        int rc;

        if (t < 0)
            return ETCD_OK; /* the wait ran out */
        if (t == W_STATUS) {
            watch_status_err(w, err, errlen);
            return ETCD_EUNAVAILABLE;
        }
        if (t != W_RECV)
            continue;
        if (!ok || w->recv_buf == NULL) {
            set_err(err, errlen, "etcd closed the watch stream");
            w->ended = true;
            return ETCD_EUNAVAILABLE;
        }
        rc = watch_read(w, out, &created, err, errlen);
        if (rc != ETCD_OK || out->n > 0 || out->progress)
            return rc;
        /* A "created" answer with nothing else: keep waiting. */
        if (watch_start_recv(w) < 0) {
            set_err(err, errlen, "cannot read the watch stream");
            return ETCD_EERROR;
        }
    }
}

int etcd_watch_request_progress(struct etcd_watch *w)
{
    Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
    Etcdserverpb__WatchProgressRequest pr = ETCDSERVERPB__WATCH_PROGRESS_REQUEST__INIT;

    if (w->ended || w->pending[W_SEND])
        return 0;
    req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST;
    req.progress_request = &pr;
    return watch_send(w, &req, false) < 0 ? ETCD_EERROR : ETCD_OK;
}

int etcd_watch_open(struct etcd_client *c, struct etcd_watch **out, int64_t *out_compact_revision,
                    const void *key, size_t key_len, const void *end, size_t end_len,
                    int64_t start_revision, bool prev_kv, char *err, size_t errlen)
{
    Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
    Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(c->timeout_ms, GPR_TIMESPAN));
    struct etcd_watch *w;
    grpc_channel *ch;
    grpc_op op;
    size_t idx;
    int rc = ETCD_EUNAVAILABLE;

    *out = NULL;
    *out_compact_revision = 0;
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        set_err(err, errlen, "out of memory");
        return ETCD_ENOMEM;
    }
    w->client = c;
    w->details = grpc_empty_slice();
    grpc_metadata_array_init(&w->init_md);
    grpc_metadata_array_init(&w->trail_md);
    w->cq = grpc_completion_queue_create_for_next(NULL);
    pthread_mutex_lock(&c->lock);
    idx = c->current;
    ch = channel_get(c, idx);
    if (c->user != NULL && c->token[0] == '\0' && ch != NULL) {
        struct raw_reply r;

        memset(&r, 0, sizeof(r));
        if (authenticate(c, ch, deadline, &r) < 0) {
            set_err(err, errlen, "etcd authentication: %s%s", r.details, "");
            rc = unreachable(r.status) ? ETCD_EUNAVAILABLE : ETCD_EERROR;
            if (rc == ETCD_EUNAVAILABLE && c->current == idx)
                c->current = (idx + 1) % c->n_endpoints;
            pthread_mutex_unlock(&c->lock);
            free(r.body);
            goto fail;
        }
    }
    if (c->token[0] != '\0') {
        w->token_md.key = grpc_slice_from_static_string("token");
        w->token_md.value = grpc_slice_from_copied_string(c->token);
        w->has_token = true;
    }
    pthread_mutex_unlock(&c->lock);
    if (ch == NULL)
        goto fail;
    /* The stream lives until closed: no deadline. */
    w->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq,
                                       grpc_slice_from_static_string("/etcdserverpb.Watch/Watch"),
                                       NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (w->call == NULL)
        goto fail;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &w->trail_md;
    op.data.recv_status_on_client.status = &w->status;
    op.data.recv_status_on_client.status_details = &w->details;
    if (grpc_call_start_batch(w->call, &op, 1, &w->tags[W_STATUS], NULL) != GRPC_CALL_OK)
        goto fail;
    w->pending[W_STATUS] = true;
    cr.key = bin(key, key_len);
    if (end != NULL)
        cr.range_end = bin(end, end_len);
    cr.start_revision = start_revision;
    cr.prev_kv = prev_kv;
    req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    req.create_request = &cr;
    if (watch_send(w, &req, true) < 0 || watch_start_recv(w) < 0)
        goto fail;
    for (;;) {
        struct etcd_watch_batch b;
        bool ok = false, created = false;
        int t = watch_wait(w, deadline, &ok);

        if (t < 0) {
            set_err(err, errlen, "etcd %s: no answer to the watch in time%s", c->endpoints[idx],
                    "");
            rc = ETCD_EUNAVAILABLE;
            break;
        }
        if (t == W_STATUS) {
            watch_status_err(w, err, errlen);
            rc = unreachable(w->status) ? ETCD_EUNAVAILABLE : ETCD_EERROR;
            break;
        }
        if (t != W_RECV)
            continue;
        if (!ok || w->recv_buf == NULL) {
            /* The status tells why; wait for it (bounded by the deadline). */
            continue;
        }
        memset(&b, 0, sizeof(b));
        rc = watch_read(w, &b, &created, err, errlen);
        if (rc == ETCD_ECOMPACTED)
            *out_compact_revision = b.compact_revision;
        etcd_watch_batch_clear(&b);
        if (rc != ETCD_OK)
            break;
        if (created) {
            *out = w;
            return ETCD_OK;
        }
        if (watch_start_recv(w) < 0) {
            rc = ETCD_EERROR;
            break;
        }
    }
fail:
    if (rc == ETCD_EUNAVAILABLE) {
        pthread_mutex_lock(&c->lock);
        if (c->current == idx)
            c->current = (idx + 1) % c->n_endpoints;
        pthread_mutex_unlock(&c->lock);
    }
    if (err != NULL && errlen > 0 && err[0] == '\0')
        set_err(err, errlen, "cannot open a watch on etcd");
    etcd_watch_close(w);
    return rc;
}

void etcd_watch_close(struct etcd_watch *w)
{
    if (w == NULL)
        return;
    if (w->call != NULL) {
        grpc_call_cancel(w->call, NULL);
        /* Every started operation completes after a cancel. */
        while (w->pending[W_SEND] || w->pending[W_RECV] || w->pending[W_STATUS]) {
            bool ok;

            if (watch_wait(w, gpr_inf_future(GPR_CLOCK_MONOTONIC), &ok) < 0)
                break;
            if (w->recv_buf != NULL) {
                grpc_byte_buffer_destroy(w->recv_buf);
                w->recv_buf = NULL;
            }
        }
        grpc_call_unref(w->call);
    }
    if (w->send_buf != NULL)
        grpc_byte_buffer_destroy(w->send_buf);
    if (w->recv_buf != NULL)
        grpc_byte_buffer_destroy(w->recv_buf);
    if (w->cq != NULL) {
        grpc_completion_queue_shutdown(w->cq);
        while (grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(w->cq);
    }
    if (w->has_token)
        grpc_slice_unref(w->token_md.value);
    grpc_slice_unref(w->details);
    grpc_metadata_array_destroy(&w->init_md);
    grpc_metadata_array_destroy(&w->trail_md);
    free(w);
}
