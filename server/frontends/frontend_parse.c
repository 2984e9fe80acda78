/* Parsing helpers of the front ends (frontend.h): certificates as the
 * front ends send them (URL-encoded PEM, XFCC, concatenated DER), claims and
 * the host map. No I/O, no validation: tests/test_frontend_parse.c drives
 * them directly. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/mem.h>
#include <openssl/pem.h>

#include "config.h"
#include "frontend.h"
#include "hex.h"

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
            int hi = i + 2 < len ? hex_digit_value(in[i + 1]) : -1;
            int lo = i + 2 < len ? hex_digit_value(in[i + 2]) : -1;

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

const char *frontend_tenant_for_host(const struct frontends_config *f, const char *host, size_t len)
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
