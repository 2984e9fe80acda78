/* certval.v1.ValidateRequest from its wire bytes (codec.h), decoded by
 * hand instead of by protobuf-c's descriptor-driven unpacker.
 *
 * The request is two messages with six fields between them
 * (proto/certval/v1/certval.proto): ValidateRequest { repeated
 * ChainRequest chains = 1; } and ChainRequest { uint64 id = 1; repeated
 * bytes certificates = 2; string tenant_id = 3, device_id = 4,
 * user_id = 5; }. Each message is read twice, once to count and once to
 * copy, and everything goes into the request's arena: per call, the
 * request struct and its three arrays; per chain, one allocation for its
 * certificate array, the certificates' bytes and its strings.
 *
 * It accepts and refuses exactly what protobuf-c 1.4's unpacker accepts
 * and refuses, and fills the same structs with the same values (test_codec
 * and the fuzz_request target compare the two on the same bytes):
 *  - a field header is a varint of at most 5 bytes whose first byte does
 *    not name field 0; a varint value takes at most 10 bytes; a length
 *    prefix at most 5 bytes, at most INT_MAX, and no more than the bytes
 *    left; wire types 0, 1, 2 and 5 only (groups are refused);
 *  - a known field in another wire type than its own is refused;
 *  - an unknown field is skipped (protobuf-c keeps a copy of it that no
 *    one here reads: the only difference in the structs);
 *  - every occurrence of a repeated field counts, the last occurrence of
 *    a singular one wins; an absent string is protobuf_c_empty_string, an
 *    empty bytes field has data NULL.
 * What protobuf-c drops it keeps: each claim's length on the wire. */
#include "codec.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

/* Field numbers (proto/certval/v1/certval.proto). */
enum { F_CHAINS = 1 };
enum { F_CHAIN_ID = 1, F_CHAIN_CERT = 2, F_CHAIN_TENANT = 3, F_CHAIN_DEVICE = 4, F_CHAIN_USER = 5 };
enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

/* A cursor over one message's bytes. */
struct cursor {
    const uint8_t *p, *end;
};

/* One field as read: its number and wire type; for a length-delimited one
 * its contents, for a varint its bytes. */
struct field {
    uint32_t num;
    unsigned wire;
    const uint8_t *data;
    size_t len;
};

/* read_tag reads a field header as protobuf-c does: at most 5 bytes, the
 * number kept modulo 2^32, and a first byte naming field 0 refused. */
static bool read_tag(struct cursor *c, struct field *f)
{
    const uint8_t *p = c->p;
    size_t rem = (size_t)(c->end - p), max = rem < 5 ? rem : 5;
    uint32_t num = (uint32_t)(p[0] & 0x7f) >> 3;
    unsigned shift = 4;

    if ((p[0] & 0xf8) == 0)
        return false;
    f->wire = p[0] & 7u;
    if (p[0] < 0x80) { /* fields 1-15: one byte, every field of this schema */
        f->num = num;
        c->p = p + 1;
        return true;
    }
    for (size_t i = 0; i < max; i++) {
        if (i > 0) {
            num |= (uint32_t)(p[i] & 0x7f) << shift;
            shift += 7;
        }
        if (!(p[i] & 0x80)) {
            f->num = num;
            c->p = p + i + 1;
            return true;
        }
    }
    return false;
}

/* next_field reads the field at the cursor (which is not at its end) and
 * moves past it; false on bytes protobuf-c refuses. */
static bool next_field(struct cursor *c, struct field *f)
{
    size_t rem, max, i, n = 0;

    if (!read_tag(c, f))
        return false;
    rem = (size_t)(c->end - c->p);
    f->data = c->p;
    switch (f->wire) {
    case WIRE_VARINT:
        max = rem < 10 ? rem : 10;
        for (i = 0; i < max && (c->p[i] & 0x80); i++)
            ;
        if (i == max)
            return false;
        f->len = i + 1;
        break;
    case WIRE_I64:
        f->len = 8;
        break;
    case WIRE_I32:
        f->len = 4;
        break;
    case WIRE_LEN:
        max = rem < 5 ? rem : 5;
        if (max >= 2 && c->p[0] >= 0x80 && c->p[1] < 0x80) {
            /* 128 bytes to 16 KiB (a certificate): two bytes */
            n = (size_t)(c->p[0] & 0x7f) | (size_t)c->p[1] << 7;
            i = 1;
        } else {
            for (i = 0; i < max; i++) {
                n |= (size_t)(c->p[i] & 0x7f) << (7 * i);
                if (!(c->p[i] & 0x80))
                    break;
            }
        }
        if (i == max || n > INT_MAX || n > rem - (i + 1))
            return false;
        f->data = c->p + i + 1;
        f->len = n;
        break;
    default:
        return false; /* 3 and 4 (groups), 6 and 7 */
    }
    if (f->wire != WIRE_LEN && f->len > rem)
        return false;
    c->p = f->data + f->len;
    return true;
}

static uint64_t varint_value(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    return v;
}

/* Certificates of a chain whose place the first pass keeps, so that the
 * second is needed only for chains of more. */
#define SCAN_CERTS 8

/* What the first pass over a ChainRequest found. */
struct chain_scan {
    uint64_t id;
    size_t n_certs, cert_bytes;
    const uint8_t *cert[SCAN_CERTS]; /* the first SCAN_CERTS certificates */
    size_t cert_len[SCAN_CERTS];
    const uint8_t *str[3]; /* tenant, device, user: the last occurrence; NULL = absent */
    size_t str_len[3];
};

static bool scan_chain(struct chain_scan *s, const uint8_t *data, size_t len)
{
    struct cursor c = {data, data + len};
    struct field f;

    s->id = 0;
    s->n_certs = s->cert_bytes = 0;
    memset(s->str, 0, sizeof(s->str));
    while (c.p < c.end) {
        if (!next_field(&c, &f))
            return false;
        switch (f.num) {
        case F_CHAIN_ID:
            if (f.wire != WIRE_VARINT)
                return false;
            s->id = varint_value(f.data, f.len);
            break;
        case F_CHAIN_CERT:
            if (f.wire != WIRE_LEN)
                return false;
            if (s->n_certs < SCAN_CERTS) {
                s->cert[s->n_certs] = f.data;
                s->cert_len[s->n_certs] = f.len;
            }
            s->n_certs++;
            s->cert_bytes += f.len;
            break;
        case F_CHAIN_TENANT:
        case F_CHAIN_DEVICE:
        case F_CHAIN_USER:
            if (f.wire != WIRE_LEN)
                return false;
            s->str[f.num - F_CHAIN_TENANT] = f.data;
            s->str_len[f.num - F_CHAIN_TENANT] = f.len;
            break;
        default:
            break; /* unknown: skipped */
        }
    }
    return true;
}

/* copy_str copies |len| bytes and a NUL to |*at| and moves it on. */
static char *copy_str(uint8_t **at, const uint8_t *s, size_t len)
{
    char *out = (char *)*at;

    memcpy(out, s, len);
    out[len] = '\0';
    *at += len + 1;
    return out;
}

/* copy_cert copies a certificate's |len| bytes to |at| (data NULL when
 * empty, as protobuf-c leaves it) and returns the end of the copy. */
static uint8_t *copy_cert(ProtobufCBinaryData *out, uint8_t *at, const uint8_t *der, size_t len)
{
    out->len = len;
    out->data = len > 0 ? at : NULL;
    memcpy(at, der, len);
    return at + len;
}

/* decode_chain fills |cr| and |cl| from the ChainRequest at |data|; 0,
 * -EINVAL or -ENOMEM. */
static int decode_chain(Certval__V1__ChainRequest *cr, struct codec_claims *cl,
                        struct codec_arena *a, const uint8_t *data, size_t len)
{
    static const Certval__V1__ChainRequest init = CERTVAL__V1__CHAIN_REQUEST__INIT;
    struct chain_scan s;
    size_t need;
    uint8_t *at;
    char **strs[3] = {&cr->tenant_id, &cr->device_id, &cr->user_id};
    uint32_t *lens[3] = {&cl->tenant, &cl->device, &cl->user};

    if (!scan_chain(&s, data, len))
        return -EINVAL;
    *cr = init;
    cr->id = s.id;
    memset(cl, 0, sizeof(*cl));
    need = s.n_certs * sizeof(ProtobufCBinaryData) + s.cert_bytes;
    for (int k = 0; k < 3; k++)
        if (s.str[k] != NULL)
            need += s.str_len[k] + 1;
    if (need == 0)
        return 0;
    at = codec_arena_alloc(a, need);
    if (at == NULL)
        return -ENOMEM;
    if (s.n_certs > 0) {
        cr->certificates = (ProtobufCBinaryData *)(void *)at;
        cr->n_certificates = s.n_certs;
        at += s.n_certs * sizeof(ProtobufCBinaryData);
        if (s.n_certs <= SCAN_CERTS) {
            for (size_t i = 0; i < s.n_certs; i++)
                at = copy_cert(&cr->certificates[i], at, s.cert[i], s.cert_len[i]);
        } else {
            struct cursor c = {data, data + len};
            struct field f;
            size_t i = 0;

            /* The first pass accepted these bytes. */
            while (c.p < c.end && next_field(&c, &f))
                if (f.num == F_CHAIN_CERT)
                    at = copy_cert(&cr->certificates[i++], at, f.data, f.len);
        }
    }
    for (int k = 0; k < 3; k++) {
        if (s.str[k] == NULL)
            continue;
        *strs[k] = copy_str(&at, s.str[k], s.str_len[k]);
        *lens[k] = (uint32_t)s.str_len[k];
    }
    return 0;
}

/* count_chains is the first pass over the ValidateRequest: its chains, or
 * -EINVAL. */
static long long count_chains(const uint8_t *wire, size_t len)
{
    struct cursor c = {wire, wire + len};
    struct field f;
    long long n = 0;

    while (c.p < c.end) {
        if (!next_field(&c, &f))
            return -EINVAL;
        if (f.num == F_CHAINS) {
            if (f.wire != WIRE_LEN)
                return -EINVAL;
            n++;
        }
    }
    return n;
}

static int decode_request(struct codec_request *out, const uint8_t *wire, size_t len,
                          size_t n)
{
    static const Certval__V1__ValidateRequest init = CERTVAL__V1__VALIDATE_REQUEST__INIT;
    struct codec_arena *a = out->arena;
    Certval__V1__ValidateRequest *req = codec_arena_alloc(a, sizeof(*req));
    Certval__V1__ChainRequest *chains = NULL;
    struct codec_claims *claims = NULL;
    struct cursor c = {wire, wire + len};
    struct field f;
    size_t i = 0;

    if (req == NULL)
        return -ENOMEM;
    *req = init;
    if (n > 0) {
        req->chains = codec_arena_alloc(a, n * sizeof(*req->chains));
        chains = codec_arena_alloc(a, n * sizeof(*chains));
        claims = codec_arena_alloc(a, n * sizeof(*claims));
        if (req->chains == NULL || chains == NULL || claims == NULL)
            return -ENOMEM;
    }
    /* count_chains accepted the framing of these bytes. */
    while (c.p < c.end && next_field(&c, &f)) {
        int err;

        if (f.num != F_CHAINS)
            continue;
        err = decode_chain(&chains[i], &claims[i], a, f.data, f.len);
        if (err < 0)
            return err;
        req->chains[i] = &chains[i];
        i++;
    }
    req->n_chains = i;
    out->req = req;
    out->claims = claims;
    return 0;
}

int codec_request_unpack(struct codec_request *out, const uint8_t *wire, size_t len,
                         size_t max_chains)
{
    long long n = len > 0 ? count_chains(wire, len) : 0;
    int err;

    memset(out, 0, sizeof(*out));
    if (n < 0)
        return -EINVAL;
    out->n_chains = (size_t)n;
    if ((size_t)n > max_chains)
        return -E2BIG;
    out->arena = codec_arena_new(codec_request_arena_size(len), SIZE_MAX);
    if (out->arena == NULL)
        return -ENOMEM;
    err = decode_request(out, wire, len, (size_t)n);
    if (err < 0) {
        codec_arena_free(out->arena);
        out->arena = NULL;
        out->req = NULL;
        out->claims = NULL;
    }
    return err;
}

void codec_request_free(struct codec_request *r)
{
    if (r == NULL)
        return;
    codec_arena_free(r->arena);
    memset(r, 0, sizeof(*r));
}
