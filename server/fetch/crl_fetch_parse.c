/* The CRL fetcher's HTTP response parsing (crl_fetch_thread_internal.h):
 * libhttp-parser callbacks that capture the few headers the fetcher needs
 * (ETag, Last-Modified, Location), bounded, and the body up to the
 * configured maximum. */
#include "crl_fetch_thread_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void hval_append(struct hval *h, const char *at, size_t len)
{
    if (h->len + len >= sizeof(h->buf)) {
        h->overflow = true;
        return;
    }
    memcpy(h->buf + h->len, at, len);
    h->len += len;
    h->buf[h->len] = '\0';
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct target *t = p->data;

    if (t->in_value) {
        t->in_value = false;
        t->field_len = 0;
    }
    /* A field longer than the buffer matches none of the names wanted. */
    if (t->field_len + len < sizeof(t->field)) {
        memcpy(t->field + t->field_len, at, len);
        t->field_len += len;
    } else {
        t->field_len = sizeof(t->field);
    }
    return 0;
}

static struct hval *header_slot(struct target *t)
{
    static const struct {
        const char *name;
        size_t off;
    } wanted[] = {
        {"etag", offsetof(struct target, h_etag)},
        {"last-modified", offsetof(struct target, h_last_modified)},
        {"location", offsetof(struct target, h_location)},
    };

    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        if (t->field_len == strlen(wanted[i].name) &&
            strncasecmp(t->field, wanted[i].name, t->field_len) == 0)
            return (struct hval *)((char *)t + wanted[i].off);
    }
    return NULL;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct target *t = p->data;

    if (!t->in_value) {
        t->in_value = true;
        t->hdr = header_slot(t);
        if (t->hdr != NULL) {
            t->hdr->len = 0;
            t->hdr->buf[0] = '\0';
            t->hdr->overflow = false;
        }
    }
    if (t->hdr != NULL)
        hval_append(t->hdr, at, len);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct target *t = p->data;

    /* Refuse a declared body over the cap before reading any of it. */
    if (p->status_code == 200 && p->content_length != ULLONG_MAX &&
        p->content_length > t->max_bytes) {
        t->too_large = true;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct target *t = p->data;
    size_t need;

    /* Every status counts against the cap: a streaming error page must not
     * hold the fetcher longer than a CRL would. */
    t->body_seen += len;
    if (t->body_seen > t->max_bytes) {
        t->too_large = true;
        return -1;
    }
    if (p->status_code != 200)
        return 0;
    need = t->body_len + len;
    if (need > t->body_cap) {
        size_t cap = t->body_cap != 0 ? t->body_cap * 2 : 65536;
        uint8_t *nb;

        if (cap < need)
            cap = need;
        if (cap > t->max_bytes)
            cap = t->max_bytes;
        nb = realloc(t->body, cap);
        if (nb == NULL)
            return -1;
        t->body = nb;
        t->body_cap = cap;
    }
    memcpy(t->body + t->body_len, at, len);
    t->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct target *t = p->data;

    t->complete = true;
    /* Pause: bytes after the response (there should be none, the request
     * said Connection: close) are not parsed. */
    http_parser_pause(p, 1);
    return 0;
}

const http_parser_settings crl_fetch_parser_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};
