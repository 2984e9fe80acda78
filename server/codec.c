#include "codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* Verdict's fields (proto/certval/v1/certval.proto); test_codec checks
 * that the message has no others. */
enum {
    F_ID = 1,
    F_DECISION = 2,
    F_REASON = 3,
    F_KIND = 4,
    F_DETAIL = 5,
    F_LEAF_SHA256 = 6,
    F_SUBJECT = 7,
    F_SERIAL_HEX = 8,
    F_NOT_AFTER_UNIX = 9,
    F_PROFILE = 10,
};
enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

/* Writes protobuf's wire format at |p|, or with |p| NULL only counts. */
struct writer {
    uint8_t *p;
    size_t n;
};

static void put_varint(struct writer *w, uint64_t v)
{
    for (; v >= 0x80; v >>= 7, w->n++)
        if (w->p != NULL)
            w->p[w->n] = (uint8_t)(v | 0x80);
    if (w->p != NULL)
        w->p[w->n] = (uint8_t)v;
    w->n++;
}

/* A proto3 scalar: absent when zero. Enums and int64 go as their
 * two's-complement 64-bit value, as protobuf-c writes them. */
static void put_uint(struct writer *w, unsigned field, uint64_t v)
{
    if (v == 0)
        return;
    put_varint(w, (uint64_t)field << 3 | WIRE_VARINT);
    put_varint(w, v);
}

static void put_bytes(struct writer *w, unsigned field, const void *data, size_t len)
{
    if (len == 0)
        return; /* proto3: an empty string or bytes field is absent */
    put_varint(w, (uint64_t)field << 3 | WIRE_LEN);
    put_varint(w, len);
    if (w->p != NULL)
        memcpy(w->p + w->n, data, len);
    w->n += len;
}

/* A NUL-terminated field of struct verdict, at most its array. */
#define put_str(w, field, arr) put_bytes((w), (field), (arr), strnlen((arr), sizeof(arr)))

static uint64_t enum_wire(int v)
{
    return (uint64_t)(int64_t)v;
}

/* Verdict |v| in field order, as protobuf-c packs a proto3 message. */
static void put_verdict(struct writer *w, const struct verdict *v)
{
    put_uint(w, F_ID, v->id);
    /* verdict-t.h keeps the protobuf enum values; see test_verdict. */
    put_uint(w, F_DECISION, enum_wire((int)v->decision));
    put_uint(w, F_REASON, enum_wire((int)v->reason));
    put_uint(w, F_KIND, enum_wire((int)v->kind));
    put_str(w, F_DETAIL, v->detail);
    if (v->has_leaf_sha256)
        put_bytes(w, F_LEAF_SHA256, v->leaf_sha256, sizeof(v->leaf_sha256));
    put_str(w, F_SUBJECT, v->subject);
    put_str(w, F_SERIAL_HEX, v->serial_hex);
    put_uint(w, F_NOT_AFTER_UNIX, (uint64_t)v->not_after_unix);
    put_str(w, F_PROFILE, v->profile);
}

static size_t verdict_size(const struct verdict *v)
{
    struct writer w = {NULL, 0};

    put_verdict(&w, v);
    return w.n;
}

/* A ValidateResponse is its verdicts, each a tag, a length and the packed
 * Verdict, written here straight from struct verdict: no protobuf-c
 * Verdict structs, no arrays of them, each size computed once. */
uint8_t *codec_response_pack(size_t *out_len, const struct verdict *v, size_t n)
{
    size_t stack_sizes[STACK_VERDICTS], *sizes = stack_sizes, total = 0;
    struct writer w = {NULL, 0};

    *out_len = 0;
    if (n > STACK_VERDICTS) {
        sizes = calloc(n, sizeof(*sizes));
        if (sizes == NULL)
            return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        sizes[i] = verdict_size(&v[i]);
        w.n = 0;
        put_varint(&w, sizes[i]);
        total += 1 + w.n + sizes[i];
    }
    w.p = malloc(total > 0 ? total : 1);
    w.n = 0;
    if (w.p == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        put_varint(&w, TAG_VERDICTS);
        put_varint(&w, sizes[i]);
        put_verdict(&w, &v[i]);
    }
    *out_len = w.n;
out:
    if (sizes != stack_sizes)
        free(sizes);
    return w.p;
}
