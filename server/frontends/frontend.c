/* Shared part of the front ends (frontend.h): certificate extraction and
 * the one call into the validator. */
#include "frontend.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/mem.h>
#include <openssl/pem.h>

#include "audit.h"
#include "config.h"
#include "frontend_internal.h"
#include "log.h"
#include "reload.h"
#include "verdict.h"

/* ---- the one call into the validator ---- */

static void chain_input_fill(struct chain_input *in, struct cv_bytes *certs,
                             const struct frontend_certs *c, const struct frontend_claims *cl)
{
    memset(in, 0, sizeof(*in));
    for (size_t i = 0; i < c->n; i++) {
        certs[i].data = c->der[i];
        certs[i].len = c->len[i];
    }
    in->certs = certs;
    in->n_certs = c->n;
    in->tenant_id.data = (const uint8_t *)cl->tenant;
    in->tenant_id.len = strlen(cl->tenant);
    in->device_id.data = (const uint8_t *)cl->device;
    in->device_id.len = strlen(cl->device);
    in->user_id.data = (const uint8_t *)cl->user;
    in->user_id.len = strlen(cl->user);
}

static void record(const struct verdict *v, enum metrics_frontend fe,
                   const struct frontend_claims *cl)
{
    struct cv_bytes tenant = {(const uint8_t *)cl->tenant, strlen(cl->tenant)};
    struct cv_bytes device = {(const uint8_t *)cl->device, strlen(cl->device)};
    struct cv_bytes user = {(const uint8_t *)cl->user, strlen(cl->user)};

    metrics_record_verdict(v, cl->tenant);
    metrics_record_frontend(fe, v->decision);
    audit_verdict(v, tenant, device, user);
}

bool frontend_check_cached(struct verdict *out, enum metrics_frontend fe,
                           const struct revocation_sources *src, const struct reload_snapshot *snap,
                           const struct frontend_certs *c, const struct frontend_claims *cl,
                           int64_t now)
{
    struct cv_bytes certs[FRONTEND_MAX_CERTS];
    struct chain_input in;

    if (src->cache == NULL)
        return false;
    chain_input_fill(&in, certs, c, cl);
    if (!validator_try_cached(snap->validator, src, out, &in, now))
        return false;
    record(out, fe, cl);
    return true;
}

void frontend_check(struct verdict *out, enum metrics_frontend fe,
                    const struct revocation_sources *src, const struct reload_snapshot *snap,
                    const struct frontend_certs *c, const struct frontend_claims *cl, int64_t now)
{
    struct cv_bytes certs[FRONTEND_MAX_CERTS];
    struct chain_input in;

    chain_input_fill(&in, certs, c, cl);
    validator_check_chain(snap->validator, src, out, &in, now);
    record(out, fe, cl);
}

void frontend_malformed(struct verdict *out, enum metrics_frontend fe,
                        const struct frontend_claims *cl, const char *why)
{
    verdict_init(out, 0);
    verdict_deny(out, VERDICT_REASON_MALFORMED, "%s", why);
    record(out, fe, cl);
}

/* ---- listeners ---- */

int frontend_parse_listen(struct sockaddr_storage *ss, socklen_t *len, const char *listen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    char *end;
    unsigned long port;
    size_t hl;

    if (colon == NULL || (size_t)(colon - listen) >= sizeof(host))
        return -1;
    hl = (size_t)(colon - listen);
    memcpy(host, listen, hl);
    host[hl] = '\0';
    port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port > 65535)
        return -1;
    memset(ss, 0, sizeof(*ss));
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

        host[hl - 1] = '\0';
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a);
        return inet_pton(AF_INET6, host + 1, &a->sin6_addr) == 1 ? 0 : -1;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;

        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        *len = sizeof(*a);
        return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
    }
}

int frontend_bound_port(int fd, int *out_port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    *out_port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        *out_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    else
        *out_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

void frontend_header_name(char *out, size_t cap, const struct frontends_config *f,
                          const char *suffix)
{
    snprintf(out, cap, "%s%s", f->response_prefix, suffix);
}

long long frontend_now(void)
{
    return (long long)time(NULL);
}

int frontends_start(const struct frontends_config *f, const struct revocation_sources *src,
                    char *err, size_t errlen)
{
    int port = 0;

    if (f->nginx_listen != NULL) {
        if (nginx_http_start(f->nginx_listen, src, &port, err, errlen) != 0)
            return -1;
        log_info("nginx auth_request endpoint on %s (port %d)", f->nginx_listen, port);
    }
    if (f->spoe_listen != NULL) {
        if (spoe_start(f->spoe_listen, src, &port, err, errlen) != 0) {
            nginx_http_stop();
            return -1;
        }
        log_info("HAProxy SPOE agent on %s (port %d)", f->spoe_listen, port);
    }
    return 0;
}

void frontends_stop(void)
{
    nginx_http_stop();
    spoe_stop();
}
