#include "claims.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ChainRequest field numbers (proto/certval/v1/certval.proto). */
enum { FIELD_CHAINS = 1, FIELD_TENANT = 3, FIELD_DEVICE = 4, FIELD_USER = 5 };

struct claim_lens {
    size_t tenant, device, user;
};

struct claims {
    size_t n;
    struct claim_lens chain[];
};

/* Protobuf wire format: a cursor over one message's bytes. */
struct wire {
    const uint8_t *p, *end;
};

static bool read_varint(struct wire *w, uint64_t *out)
{
    uint64_t v = 0;

    for (unsigned shift = 0; shift < 64 && w->p < w->end; shift += 7) {
        uint8_t b = *w->p++;

        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* next_field reads one field: its number, and for a length-delimited one
 * its bytes in |out_data|/|out_len| (NULL for other wire types, skipped). */
static bool next_field(struct wire *w, uint32_t *out_num, const uint8_t **out_data, size_t *out_len)
{
    uint64_t tag, n;

    *out_data = NULL;
    *out_len = 0;
    if (!read_varint(w, &tag))
        return false;
    *out_num = (uint32_t)(tag >> 3);
    switch (tag & 7) {
    case 0:
        return read_varint(w, &n);
    case 1:
        n = 8;
        break;
    case 5:
        n = 4;
        break;
    case 2:
        if (!read_varint(w, &n) || n > (uint64_t)(w->end - w->p))
            return false;
        *out_data = w->p;
        *out_len = (size_t)n;
        break;
    default:
        return false; /* groups: protobuf-c refuses them, so never here */
    }
    if (n > (uint64_t)(w->end - w->p))
        return false;
    w->p += n;
    return true;
}

/* scan_chain records the length of the last occurrence of each claim (the
 * one protobuf-c keeps). */
static bool scan_chain(struct claim_lens *out, const uint8_t *data, size_t len)
{
    struct wire w = {data, data + len};
    const uint8_t *d;
    uint32_t num;
    size_t n;

    memset(out, 0, sizeof(*out));
    while (w.p < w.end) {
        if (!next_field(&w, &num, &d, &n))
            return false;
        if (d == NULL)
            continue;
        if (num == FIELD_TENANT)
            out->tenant = n;
        else if (num == FIELD_DEVICE)
            out->device = n;
        else if (num == FIELD_USER)
            out->user = n;
    }
    return true;
}

static size_t len_or_0(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

/* walk reads every chain's claim lengths, into |out| when it is not NULL;
 * true when some length is not the claim's strlen (a NUL inside). */
static bool walk(struct claims *out, const Certval__V1__ValidateRequest *req, const uint8_t *wire,
                 size_t len)
{
    struct wire w = {wire, wire + len};
    bool differs = false;
    size_t k = 0;

    while (w.p < w.end && k < req->n_chains) {
        const Certval__V1__ChainRequest *cr = req->chains[k];
        struct claim_lens l;
        const uint8_t *d;
        uint32_t num;
        size_t n;

        /* protobuf-c accepted these bytes, so they parse here too. */
        if (!next_field(&w, &num, &d, &n))
            return false;
        if (num != FIELD_CHAINS || d == NULL)
            continue;
        if (!scan_chain(&l, d, n))
            return false;
        differs |= l.tenant != len_or_0(cr->tenant_id) || l.device != len_or_0(cr->device_id) ||
                   l.user != len_or_0(cr->user_id);
        if (out != NULL)
            out->chain[k] = l;
        k++;
    }
    return differs && k == req->n_chains;
}

int claims_scan(struct claims **out, const Certval__V1__ValidateRequest *req, const uint8_t *wire,
                size_t len)
{
    struct claims *c;

    *out = NULL;
    /* First without allocating: almost every request has no NUL inside. */
    if (req->n_chains == 0 || !walk(NULL, req, wire, len))
        return 0;
    c = malloc(sizeof(*c) + req->n_chains * sizeof(c->chain[0]));
    if (c == NULL)
        return -1;
    c->n = req->n_chains;
    walk(c, req, wire, len);
    *out = c;
    return 0;
}

void claims_free(struct claims *c)
{
    free(c);
}

void claims_apply(struct chain_input *in, const struct claims *c, size_t i,
                  const Certval__V1__ChainRequest *cr)
{
    const struct claim_lens *l = c != NULL && i < c->n ? &c->chain[i] : NULL;

    in->tenant_id.data = (const uint8_t *)cr->tenant_id;
    in->tenant_id.len = l != NULL ? l->tenant : len_or_0(cr->tenant_id);
    in->device_id.data = (const uint8_t *)cr->device_id;
    in->device_id.len = l != NULL ? l->device : len_or_0(cr->device_id);
    in->user_id.data = (const uint8_t *)cr->user_id;
    in->user_id.len = l != NULL ? l->user : len_or_0(cr->user_id);
}
