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

static struct revocation_sources fe_sources;

void frontends_set_sources(const struct revocation_sources *src)
{
    fe_sources = *src;
}

void frontend_certs_clear(struct frontend_certs *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->der[i]);
        c->der[i] = NULL;
    }
    c->n = 0;
}

int frontend_certs_add_der(struct frontend_certs *c, const uint8_t *der, size_t len)
{
    uint8_t *copy;

    if (c->n >= FRONTEND_MAX_CERTS || len == 0 || len > FRONTEND_MAX_INPUT)
        return -1;
    copy = malloc(len);
    if (copy == NULL)
        return -1;
    memcpy(copy, der, len);
    c->der[c->n] = copy;
    c->len[c->n] = len;
    c->n++;
    return 0;
}

/* der_element_len returns the length of the DER TLV at |p| (header
 * included) when it is a SEQUENCE that fits in |avail|, or 0. */
static size_t der_element_len(const uint8_t *p, size_t avail)
{
    size_t hdr = 2, body = 0;

    if (avail < 2 || p[0] != 0x30)
        return 0;
    if (p[1] < 0x80) {
        body = p[1];
    } else {
        size_t n = p[1] & 0x7f;

        /* A certificate under FRONTEND_MAX_INPUT needs at most 3 length bytes. */
        if (n == 0 || n > 3 || avail < 2 + n)
            return 0;
        for (size_t i = 0; i < n; i++)
            body = (body << 8) | p[2 + i];
        hdr += n;
    }
    return body <= avail - hdr ? hdr + body : 0;
}

int frontend_certs_add_der_list(struct frontend_certs *c, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        size_t n = der_element_len(buf, len);

        if (n == 0 || frontend_certs_add_der(c, buf, n) != 0)
            return -1;
        buf += n;
        len -= n;
    }
    return 0;
}

int frontend_certs_add_pem(struct frontend_certs *c, const char *pem, size_t len)
{
    BIO *bio;
    size_t added = 0;
    int rc = 0;

    if (len == 0 || len > FRONTEND_MAX_INPUT)
        return -1;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return -1;
    for (;;) {
        char *name = NULL, *header = NULL;
        uint8_t *data = NULL;
        long dlen = 0;

        if (!PEM_read_bio(bio, &name, &header, &data, &dlen)) {
            /* End of input, or a block that is not PEM: the latter when
             * bytes other than white space remain. */
            char rest;

            while (BIO_read(bio, &rest, 1) == 1)
                if (!isspace((unsigned char)rest))
                    rc = -1;
            break;
        }
        if (strcmp(name, "CERTIFICATE") != 0 || dlen <= 0 ||
            frontend_certs_add_der(c, data, (size_t)dlen) != 0)
            rc = -1;
        else
            added++;
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        if (rc != 0)
            break;
    }
    BIO_free(bio);
    return rc == 0 && added > 0 ? 0 : -1;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int frontend_url_decode(char **out, size_t *out_len, const char *in, size_t len)
{
    char *buf;
    size_t o = 0;

    *out = NULL;
    *out_len = 0;
    if (len > FRONTEND_MAX_INPUT)
        return -1;
    buf = malloc(len + 1);
    if (buf == NULL)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];

        if (ch == '%') {
            int hi = i + 2 < len ? hexval(in[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(in[i + 2]) : -1;

            if (hi < 0 || lo < 0) {
                free(buf);
                return -1;
            }
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (ch == '\0') {
            free(buf);
            return -1;
        }
        buf[o++] = ch;
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return 0;
}

/* xfcc_next_field finds the end of the field starting at |p| (up to |end|):
 * the first |sep| outside double quotes. */
static const char *xfcc_field_end(const char *p, const char *end, char sep)
{
    bool quoted = false;

    for (; p < end; p++) {
        if (*p == '"')
            quoted = !quoted;
        else if (*p == '\\' && quoted && p + 1 < end)
            p++;
        else if (*p == sep && !quoted)
            return p;
    }
    return end;
}

int frontend_xfcc_certs(struct frontend_certs *c, const char *xfcc, size_t len)
{
    const char *end = xfcc + len, *elem = xfcc, *p;
    const char *chain = NULL, *cert = NULL;
    size_t chain_len = 0, cert_len = 0;
    char *pem = NULL;
    size_t pem_len = 0;
    int rc;

    /* The last element is the one the nearest Envoy added. */
    for (p = xfcc; p < end;) {
        const char *e = xfcc_field_end(p, end, ',');

        elem = p;
        p = e < end ? e + 1 : end;
        if (e == end)
            break;
    }
    for (p = elem; p < end;) {
        const char *e = xfcc_field_end(p, end, ';');
        const char *eq;

        while (p < e && *p == ' ')
            p++;
        eq = e > p ? memchr(p, '=', (size_t)(e - p)) : NULL;
        if (eq != NULL) {
            const char *v = eq + 1;
            size_t vl = (size_t)(e - v);

            if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                v++;
                vl -= 2;
            }
            if ((size_t)(eq - p) == 5 && strncasecmp(p, "Chain", 5) == 0) {
                chain = v;
                chain_len = vl;
            } else if ((size_t)(eq - p) == 4 && strncasecmp(p, "Cert", 4) == 0) {
                cert = v;
                cert_len = vl;
            }
        }
        p = e < end ? e + 1 : end;
    }
    if (chain == NULL && cert == NULL)
        return 0;
    if (chain == NULL) {
        chain = cert;
        chain_len = cert_len;
    }
    if (frontend_url_decode(&pem, &pem_len, chain, chain_len) != 0)
        return -1;
    rc = frontend_certs_add_pem(c, pem, pem_len);
    free(pem);
    return rc == 0 ? 1 : -1;
}

int frontend_claim_copy(char *out, const char *value, size_t len)
{
    out[0] = '\0';
    if (len >= FRONTEND_MAX_CLAIM)
        return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
            return -1;
    memcpy(out, value, len);
    out[len] = '\0';
    return 0;
}

const char *frontend_tenant_for_host(const struct frontends_config *f, const char *host,
                                     size_t len)
{
    const char *colon;

    if (host == NULL)
        return NULL;
    /* Strip a port, but not from a bracketed IPv6 literal's inside. */
    colon = len > 0 ? memchr(host, ':', len) : NULL;
    if (colon != NULL && host[0] != '[')
        len = (size_t)(colon - host);
    for (size_t i = 0; i < f->n_hosts; i++)
        if (strlen(f->hosts[i].host) == len && strncasecmp(f->hosts[i].host, host, len) == 0)
            return f->hosts[i].tenant;
    return NULL;
}

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
    metrics_record_verdict(v, cl->tenant);
    metrics_record_frontend(fe, v->decision);
    audit_verdict(v, cl->tenant, cl->device, cl->user);
}

bool frontend_check_cached(struct verdict *out, enum metrics_frontend fe,
                           const struct snapshot *snap, const struct frontend_certs *c,
                           const struct frontend_claims *cl, int64_t now)
{
    struct cv_bytes certs[FRONTEND_MAX_CERTS];
    struct chain_input in;

    if (fe_sources.cache == NULL)
        return false;
    chain_input_fill(&in, certs, c, cl);
    if (!validator_check_cached(snap->validator, &fe_sources, out, &in, now))
        return false;
    record(out, fe, cl);
    return true;
}

void frontend_check(struct verdict *out, enum metrics_frontend fe, const struct snapshot *snap,
                    const struct frontend_certs *c, const struct frontend_claims *cl,
                    int64_t now)
{
    struct cv_bytes certs[FRONTEND_MAX_CERTS];
    struct chain_input in;

    chain_input_fill(&in, certs, c, cl);
    validator_check_chain(snap->validator, &fe_sources, out, &in, now);
    record(out, fe, cl);
}

void frontend_malformed(struct verdict *out, enum metrics_frontend fe,
                        const struct frontend_claims *cl, const char *why)
{
    verdict_init(out, 0);
    verdict_deny(out, REASON_MALFORMED, "%s", why);
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

int frontend_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
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

int frontends_start(const struct frontends_config *f, char *err, size_t errlen)
{
    int port = 0;

    if (f->nginx_listen != NULL) {
        if (nginx_http_start(f->nginx_listen, &port, err, errlen) != 0)
            return -1;
        log_info("nginx auth_request endpoint on %s (port %d)", f->nginx_listen, port);
    }
    if (f->spoe_listen != NULL) {
        if (spoe_start(f->spoe_listen, &port, err, errlen) != 0) {
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
