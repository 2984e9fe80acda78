#include "codec.h"

#include <errno.h>
#include <stdlib.h>

/* Verdicts of up to this many chains get their packed sizes on the stack. */
#define STACK_VERDICTS 64
/* ValidateResponse.verdicts: field 1, length-delimited (wire type 2). */
#define TAG_VERDICTS ((1u << 3) | 2u)

size_t codec_request_arena_size(size_t len)
{
    /* The bytes fields (the certificates) are copied at their length; each
     * chain adds its ChainRequest, its certificate array and its strings,
     * about 200 bytes, against at least about 8 on the wire. A quarter more
     * than the wire, plus the top message, covers chains of one 500-byte
     * certificate or larger; smaller ones spill into a fallback chunk. */
    if (len > (SIZE_MAX - 512) / 2)
        return SIZE_MAX;
    return len + len / 4 + 512;
}

int codec_request_unpack(Certval__V1__ValidateRequest **out_req, struct codec_arena **out_arena,
                         const uint8_t *wire, size_t len)
{
    struct codec_arena *a;
    Certval__V1__ValidateRequest *req;

    *out_req = NULL;
    *out_arena = NULL;
    a = codec_arena_new(codec_request_arena_size(len), SIZE_MAX);
    if (a == NULL)
        return -ENOMEM;
    req = certval__v1__validate_request__unpack(codec_arena_allocator(a), len, wire);
    if (req == NULL) {
        /* protobuf-c says NULL for both; the arena knows which. */
        int err = codec_arena_failed(a) ? -ENOMEM : -EINVAL;

        codec_arena_free(a);
        return err;
    }
    *out_req = req;
    *out_arena = a;
    return 0;
}

/* The protobuf-c view of |v|: its strings borrowed, nothing allocated. */
static void verdict_to_pb(Certval__V1__Verdict *pv, const struct verdict *v)
{
    static const Certval__V1__Verdict init = CERTVAL__V1__VERDICT__INIT;

    *pv = init;
    pv->id = v->id;
    /* verdict-t.h keeps the protobuf enum values; see test_verdict. */
    pv->decision = (Certval__V1__Decision)v->decision;
    pv->reason = (Certval__V1__Reason)v->reason;
    pv->kind = (Certval__V1__CertificateKind)v->kind;
    pv->detail = (char *)v->detail;
    pv->subject = (char *)v->subject;
    pv->serial_hex = (char *)v->serial_hex;
    pv->profile = (char *)v->profile;
    pv->not_after_unix = v->not_after_unix;
    if (v->has_leaf_sha256) {
        pv->leaf_sha256.data = (uint8_t *)v->leaf_sha256;
        pv->leaf_sha256.len = sizeof(v->leaf_sha256);
    }
}

static size_t varint_len(size_t v)
{
    size_t n = 1;

    for (; v >= 0x80; v >>= 7)
        n++;
    return n;
}

static size_t varint_put(uint8_t *p, size_t v)
{
    size_t n = 0;

    for (; v >= 0x80; v >>= 7)
        p[n++] = (uint8_t)(v | 0x80);
    p[n++] = (uint8_t)v;
    return n;
}

/* A ValidateResponse is its verdicts, each a tag, a length and the packed
 * Verdict: packed here one at a time from one Verdict on the stack, rather
 * than through an array of them and an array of pointers to them. */
uint8_t *codec_response_pack(size_t *out_len, const struct verdict *v, size_t n)
{
    size_t stack_sizes[STACK_VERDICTS], *sizes = stack_sizes, total = 0, at = 0;
    Certval__V1__Verdict pv;
    uint8_t *buf = NULL;

    *out_len = 0;
    if (n > STACK_VERDICTS) {
        sizes = calloc(n, sizeof(*sizes));
        if (sizes == NULL)
            return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        verdict_to_pb(&pv, &v[i]);
        sizes[i] = certval__v1__verdict__get_packed_size(&pv);
        total += 1 + varint_len(sizes[i]) + sizes[i];
    }
    buf = malloc(total > 0 ? total : 1);
    if (buf == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        verdict_to_pb(&pv, &v[i]);
        buf[at++] = TAG_VERDICTS;
        at += varint_put(buf + at, sizes[i]);
        at += certval__v1__verdict__pack(&pv, buf + at);
    }
    *out_len = at;
out:
    if (sizes != stack_sizes)
        free(sizes);
    return buf;
}
