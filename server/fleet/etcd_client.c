/* etcd v3 client (etcd.h) on the gRPC C core: the client, its channels,
 * authentication and the one unary call every KV and Lease request makes.
 *
 * Who does what: the endpoint list, the channels, the current endpoint and
 * the auth token are shared by every thread using the client and protected
 * by |lock|; each unary call has its own pluck completion queue; a watch
 * owns its call and completion queue and is used by one thread
 * (etcd_watch.c). */
#include "etcd_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>

__attribute__((format(printf, 3, 4))) void etcd_set_err(char *err, size_t errlen, const char *fmt,
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

static void int_arg(grpc_arg *a, char *key, int value)
{
    a->type = GRPC_ARG_INTEGER;
    a->key = key;
    a->value.integer = value;
}

/* etcd_channel_get returns the channel of endpoint |i| (created now if need
 * be; the client keeps it). Called with |lock| held. */
grpc_channel *etcd_channel_get(struct etcd_client *c, size_t i)
{
    grpc_arg args[6];
    grpc_channel_args ca;

    if (c->channels[i] != NULL)
        return c->channels[i];
    memset(args, 0, sizeof(args));
    int_arg(&args[0], GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, ETCD_MAX_RECV_BYTES);
    /* Reconnect quickly when etcd comes back: the follower has its own
     * backoff with jitter above this one. */
    int_arg(&args[1], GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
    int_arg(&args[2], GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    /* (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is also the connect timeout:
     * left at its default.) */
    int_arg(&args[3], GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
    /* A partitioned etcd is noticed by HTTP/2 pings on the watch stream
     * within about 15 s (etcd accepts pings every 5 s or more). */
    int_arg(&args[4], GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    int_arg(&args[5], GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    ca.num_args = 6;
    ca.args = args;
    c->channels[i] = grpc_channel_create(c->endpoints[i], c->creds, &ca);
    return c->channels[i];
}
/* ---- one unary call ---- */

bool etcd_unreachable(grpc_status_code s)
{
    return s == GRPC_STATUS_UNAVAILABLE || s == GRPC_STATUS_DEADLINE_EXCEEDED;
}

static bool token_refused(const struct rpc_unary_reply *r)
{
    return (r->status == GRPC_STATUS_UNAUTHENTICATED ||
            r->status == GRPC_STATUS_INVALID_ARGUMENT) &&
           strstr(r->details, "token") != NULL;
}

/* etcd_authenticate gets a token on |ch| into c->token. Called with |lock|
 * held (authentication is rare). */
int etcd_authenticate(struct etcd_client *c, grpc_channel *ch, gpr_timespec deadline,
                      struct rpc_unary_reply *r)
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
    rc =
        rpc_unary_call(r, ch, "/etcdserverpb.Auth/Authenticate", "token", NULL, buf, len, deadline);
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

/* etcd_call packs |req|, calls |method| (trying each endpoint in turn while
 * they are unreachable, authenticating when needed) and unpacks the reply
 * with |desc| into |*out|. */
int etcd_call(struct etcd_client *c, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out, char *err,
              size_t errlen)
{
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(c->timeout_ms, GPR_TIMESPAN));
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    struct rpc_unary_reply r;
    bool reauth_done = false;
    int rc = ETCD_EUNAVAILABLE;

    *out = NULL;
    memset(&r, 0, sizeof(r));
    if (buf == NULL) {
        etcd_set_err(err, errlen, "out of memory");
        return ETCD_ENOMEM;
    }
    protobuf_c_message_pack(req, buf);
    etcd_set_err(err, errlen, "etcd unreachable");
    for (size_t attempt = 0; attempt < c->n_endpoints + 1; attempt++) {
        char token[ETCD_TOKEN_MAX], endpoint[256];
        grpc_channel *ch;
        size_t idx;

        pthread_mutex_lock(&c->lock);
        idx = c->current;
        ch = etcd_channel_get(c, idx);
        snprintf(endpoint, sizeof(endpoint), "%s", c->endpoints[idx]);
        if (c->user != NULL && c->token[0] == '\0' && ch != NULL &&
            etcd_authenticate(c, ch, deadline, &r) < 0) {
            pthread_mutex_unlock(&c->lock);
            if (etcd_unreachable(r.status) || ch == NULL) {
                etcd_set_err(err, errlen, "etcd %s: %s", endpoint, r.details);
                goto next;
            }
            etcd_set_err(err, errlen, "etcd %s: authentication refused: %s", endpoint, r.details);
            rc = ETCD_EERROR;
            break;
        }
        snprintf(token, sizeof(token), "%s", c->token);
        pthread_mutex_unlock(&c->lock);
        if (ch == NULL || rpc_unary_call(&r, ch, method, "token", token, buf, len, deadline) < 0) {
            rc = ETCD_ENOMEM;
            etcd_set_err(err, errlen, "cannot start a call to etcd %s%s", endpoint, "");
            break;
        }
        if (r.status == GRPC_STATUS_OK) {
            *out = protobuf_c_message_unpack(desc, NULL, r.body_len, r.body);
            rc = *out != NULL ? ETCD_OK : ETCD_EERROR;
            if (*out == NULL)
                etcd_set_err(err, errlen, "etcd %s: unreadable reply to %s", endpoint, method);
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
        if (!etcd_unreachable(r.status)) {
            rc = r.status == GRPC_STATUS_OUT_OF_RANGE && strstr(r.details, "compacted") != NULL
                     ? ETCD_ECOMPACTED
                     : ETCD_EERROR;
            etcd_set_err(err, errlen, "etcd %s: %s", endpoint, r.details);
            break;
        }
        etcd_set_err(err, errlen, "etcd %s: %s", endpoint,
                     r.details[0] ? r.details : "unreachable");
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

int etcd_call_drop_reply(struct etcd_client *c, const char *method, const ProtobufCMessage *req,
                         const ProtobufCMessageDescriptor *desc, char *err, size_t errlen)
{
    ProtobufCMessage *resp = NULL;
    int rc = etcd_call(c, method, req, desc, &resp, err, errlen);

    if (rc == ETCD_OK)
        protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
}
