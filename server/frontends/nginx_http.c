/* nginx auth_request endpoint (docs/frontends.md).
 *
 * nginx sends a subrequest per request it authorises, with the client's
 * leaf certificate as $ssl_client_escaped_cert (URL-encoded PEM) in the
 * frontends.headers.certificate header and the claims in the tenant, device
 * and user headers. The answer:
 *   200 + PREFIX{decision,reason,kind,tenant,device}  ALLOW, REQUIRE_PASSWORD
 *   deny_status (403) + the same headers              DENY
 *   400                                               malformed request
 *   503                                               not ready
 * nginx treats any status but 2xx/401/403 as an error (500 to the client),
 * so every failure here fails closed.
 *
 * Thread: libmicrohttpd in external-polling mode, driven by one thread of
 * our own so that it can be a registered RCU reader for its whole life.
 * It validates inline (frontend_check): libmicrohttpd's connection model
 * has no completion the worker pool could hand the verdict back to without
 * suspend/resume bookkeeping, and nginx keeps one subrequest per client
 * request in flight, so one thread per endpoint is the design
 * (docs/architecture.md). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "rcu_reader.h"
#include "config.h"
#include "frontend.h"
#include "frontend_internal.h"
#include "health.h"
#include "reload.h"
#include "verdict.h"

static struct MHD_Daemon *nx_daemon;
static pthread_t nx_thread;
static atomic_bool nx_stop;
static bool nx_running;

struct nx_answer {
    unsigned status;
    struct verdict v;
    bool has_verdict;
    const char *message; /* body when there is no verdict */
    struct frontend_claims cl;
    char names[5][96]; /* PREFIX + decision, reason, kind, tenant, device */
};

static const char *header_n(struct MHD_Connection *conn, const char *name, size_t *len)
{
    const char *value = NULL;

    *len = 0;
    if (MHD_lookup_connection_value_n(conn, MHD_HEADER_KIND, name, strlen(name), &value, len) !=
        MHD_YES)
        return NULL;
    return value;
}

/* Reads the claims; the tenant falls back to tenant_by_host. */
static int read_claims(struct frontend_claims *cl, struct MHD_Connection *conn,
                       const struct frontends_config *f)
{
    const char *v;
    size_t len;

    memset(cl, 0, sizeof(*cl));
    v = header_n(conn, f->tenant_header, &len);
    if (v != NULL && len > 0) {
        if (frontend_claim_copy(cl->tenant, v, len) != 0)
            return -1;
    } else {
        v = header_n(conn, "host", &len);
        v = frontend_tenant_for_host(f, v, len);
        if (v != NULL && frontend_claim_copy(cl->tenant, v, strlen(v)) != 0)
            return -1;
    }
    v = header_n(conn, f->device_header, &len);
    if (v != NULL && frontend_claim_copy(cl->device, v, len) != 0)
        return -1;
    v = header_n(conn, f->user_header, &len);
    if (v != NULL && frontend_claim_copy(cl->user, v, len) != 0)
        return -1;
    return 0;
}

static void decide(struct nx_answer *a, struct MHD_Connection *conn,
                   const struct revocation_sources *src)
{
    struct reload_snapshot *snap = reload_acquire();
    const struct frontends_config *f;
    struct frontend_certs certs = {0};
    struct frontend_claims *cl = &a->cl;
    const char *cert;
    size_t len;

    if (snap == NULL || !health_is_serving()) {
        a->status = MHD_HTTP_SERVICE_UNAVAILABLE;
        a->message = "certval is not ready\n";
        reload_release(snap);
        return;
    }
    f = &snap->cfg->frontends;
    a->has_verdict = true;
    a->status = f->deny_status;
    if (read_claims(cl, conn, f) != 0) {
        a->status = MHD_HTTP_BAD_REQUEST;
        frontend_malformed(&a->v, METRICS_FRONTEND_NGINX, cl, "claim header too long or invalid");
        goto out;
    }
    cert = header_n(conn, f->cert_header, &len);
    if (cert != NULL && len > 0) {
        char *pem = NULL;
        size_t pem_len = 0;
        int rc = frontend_url_decode(&pem, &pem_len, cert, len);

        if (rc == 0)
            rc = frontend_certs_add_pem(&certs, pem, pem_len);
        free(pem);
        if (rc != 0) {
            a->status = MHD_HTTP_BAD_REQUEST;
            frontend_malformed(&a->v, METRICS_FRONTEND_NGINX, cl,
                               "certificate header is not URL-encoded PEM");
            goto out;
        }
    }
    /* No certificate is the validator's to judge (DENY), like Validate. */
    frontend_check(&a->v, METRICS_FRONTEND_NGINX, src, snap, &certs, cl, frontend_now());
    if (a->v.decision == DECISION_ALLOW || a->v.decision == DECISION_REQUIRE_PASSWORD)
        a->status = MHD_HTTP_OK;
out:
    frontend_certs_clear(&certs);
    if (a->has_verdict) {
        /* Header names are needed after the snapshot goes: copied now. */
        frontend_header_name(a->names[0], sizeof(a->names[0]), f, "decision");
        frontend_header_name(a->names[1], sizeof(a->names[1]), f, "reason");
        frontend_header_name(a->names[2], sizeof(a->names[2]), f, "kind");
        frontend_header_name(a->names[3], sizeof(a->names[3]), f, "tenant");
        frontend_header_name(a->names[4], sizeof(a->names[4]), f, "device");
    }
    reload_release(snap);
}

static enum MHD_Result nx_answer_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    static int first_call;
    struct nx_answer *a;
    struct MHD_Response *resp;
    enum MHD_Result rc;
    char body[VERDICT_DETAIL_MAX + 64];

    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        /* First call: headers only. A body (none is expected) is read and
         * dropped on the following calls. */
        *con_cls = &first_call;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return MHD_NO;
    decide(a, conn, cls);
    if (!a->has_verdict)
        snprintf(body, sizeof(body), "%s", a->message);
    else if (a->v.decision == DECISION_DENY)
        snprintf(body, sizeof(body), "certval: DENY %s\n", verdict_reason_name(a->v.reason));
    else
        body[0] = '\0';
    resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) {
        free(a);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/plain");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (a->has_verdict) {
        MHD_add_response_header(resp, a->names[0], verdict_decision_name(a->v.decision));
        MHD_add_response_header(resp, a->names[1], verdict_reason_name(a->v.reason));
        MHD_add_response_header(resp, a->names[2], cert_kind_name(a->v.kind));
        MHD_add_response_header(resp, a->names[3], a->cl.tenant);
        MHD_add_response_header(resp, a->names[4], a->cl.device);
    }
    rc = MHD_queue_response(conn, a->status, resp);
    MHD_destroy_response(resp);
    free(a);
    return rc;
}

static void *nx_main(void *arg)
{
    (void)arg;
    certval_rcu_reader_register();
    while (!atomic_load(&nx_stop))
        MHD_run_wait(nx_daemon, 100);
    certval_rcu_reader_unregister();
    return NULL;
}

int nginx_http_start(const char *listen, const struct revocation_sources *src, int *out_port,
                     char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_ERROR_LOG;

    *out_port = 0;
    if (frontend_parse_listen(&ss, &sl, listen) != 0) {
        snprintf(err, errlen, "frontends.nginx.listen '%s' is not IPv4:PORT or [IPv6]:PORT",
                 listen);
        return -1;
    }
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    nx_daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, nx_answer_cb, (void *)src, MHD_OPTION_SOCK_ADDR, &ss,
                         MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128u << 10), MHD_OPTION_END);
    if (nx_daemon == NULL) {
        snprintf(err, errlen, "cannot serve the nginx auth_request endpoint on %s", listen);
        return -1;
    }
    info = MHD_get_daemon_info(nx_daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info != NULL)
        *out_port = info->port;
    atomic_store(&nx_stop, false);
    if (pthread_create(&nx_thread, NULL, nx_main, NULL) != 0) {
        MHD_stop_daemon(nx_daemon);
        nx_daemon = NULL;
        snprintf(err, errlen, "cannot start the nginx endpoint thread");
        return -1;
    }
    nx_running = true;
    return 0;
}

void nginx_http_stop(void)
{
    if (!nx_running)
        return;
    atomic_store(&nx_stop, true);
    pthread_join(nx_thread, NULL);
    MHD_stop_daemon(nx_daemon);
    nx_daemon = NULL;
    nx_running = false;
}
