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

/* The lengths of a verdict's four strings (NUL-terminated in their
 * arrays), measured once for its size and its writing. */
struct verdict_strs {
    size_t detail, subject, serial_hex, profile;
};

static void verdict_strs(struct verdict_strs *l, const struct verdict *v)
{
    l->detail = strnlen(v->detail, sizeof(v->detail));
    l->subject = strnlen(v->subject, sizeof(v->subject));
    l->serial_hex = strnlen(v->serial_hex, sizeof(v->serial_hex));
    l->profile = strnlen(v->profile, sizeof(v->profile));
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;

    for (; v >= 0x80; v >>= 7)
        n++;
    return n;
}

/* Every field number here is below 16: each tag is one byte. A proto3
 * scalar is absent when zero; enums and int64 go as their two's-complement
 * 64-bit value, as protobuf-c writes them. */
static size_t uint_size(uint64_t v)
{
    return v == 0 ? 0 : 1 + varint_size(v);
}

/* proto3: an empty string or bytes field is absent. */
static size_t bytes_size(size_t len)
{
    return len == 0 ? 0 : 1 + varint_size(len) + len;
}

static uint64_t enum_wire(int v)
{
    return (uint64_t)(int64_t)v;
}

static size_t verdict_size(const struct verdict *v, const struct verdict_strs *l)
{
    /* verdict-t.h keeps the protobuf enum values; see test_verdict. */
    return uint_size(v->id) + uint_size(enum_wire((int)v->decision)) +
           uint_size(enum_wire((int)v->reason)) + uint_size(enum_wire((int)v->kind)) +
           bytes_size(l->detail) + (v->has_leaf_sha256 ? bytes_size(sizeof(v->leaf_sha256)) : 0) +
           bytes_size(l->subject) + bytes_size(l->serial_hex) +
           uint_size((uint64_t)v->not_after_unix) + bytes_size(l->profile);
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    for (; v >= 0x80; v >>= 7)
        *p++ = (uint8_t)(v | 0x80);
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *put_uint(uint8_t *p, unsigned field, uint64_t v)
{
    if (v == 0)
        return p;
    *p++ = (uint8_t)(field << 3 | WIRE_VARINT);
    return put_varint(p, v);
}

static uint8_t *put_bytes(uint8_t *p, unsigned field, const void *data, size_t len)
{
    if (len == 0)
        return p;
    *p++ = (uint8_t)(field << 3 | WIRE_LEN);
    p = put_varint(p, len);
    memcpy(p, data, len);
    return p + len;
}

/* Verdict |v| in field order, as protobuf-c packs a proto3 message. */
static uint8_t *put_verdict(uint8_t *p, const struct verdict *v, const struct verdict_strs *l)
{
    p = put_uint(p, F_ID, v->id);
    p = put_uint(p, F_DECISION, enum_wire((int)v->decision));
    p = put_uint(p, F_REASON, enum_wire((int)v->reason));
    p = put_uint(p, F_KIND, enum_wire((int)v->kind));
    p = put_bytes(p, F_DETAIL, v->detail, l->detail);
    if (v->has_leaf_sha256)
        p = put_bytes(p, F_LEAF_SHA256, v->leaf_sha256, sizeof(v->leaf_sha256));
    p = put_bytes(p, F_SUBJECT, v->subject, l->subject);
    p = put_bytes(p, F_SERIAL_HEX, v->serial_hex, l->serial_hex);
    p = put_uint(p, F_NOT_AFTER_UNIX, (uint64_t)v->not_after_unix);
    return put_bytes(p, F_PROFILE, v->profile, l->profile);
}

/* What the first pass keeps of each verdict for the second. */
struct verdict_plan {
    size_t size;
    struct verdict_strs strs;
};

/* A ValidateResponse is its verdicts, each a tag, a length and the packed
 * Verdict, written here straight from struct verdict: no protobuf-c
 * Verdict structs, no arrays of them; each verdict's strings measured and
 * its size computed once. */
uint8_t *codec_response_pack(size_t *out_len, const struct verdict *v, size_t n)
{
    struct verdict_plan stack_plan[STACK_VERDICTS], *plan = stack_plan;
    size_t total = 0;
    uint8_t *buf, *p;

    *out_len = 0;
    if (n > STACK_VERDICTS) {
        plan = calloc(n, sizeof(*plan));
        if (plan == NULL)
            return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        verdict_strs(&plan[i].strs, &v[i]);
        plan[i].size = verdict_size(&v[i], &plan[i].strs);
        total += 1 + varint_size(plan[i].size) + plan[i].size;
    }
    buf = p = malloc(total > 0 ? total : 1);
    if (buf != NULL) {
        for (size_t i = 0; i < n; i++) {
            *p++ = TAG_VERDICTS;
            p = put_varint(p, plan[i].size);
            p = put_verdict(p, &v[i], &plan[i].strs);
        }
        *out_len = (size_t)(p - buf);
    }
    if (plan != stack_plan)
        free(plan);
    return buf;
}
