/* certval-load's certval.v1 messages, encoded and parsed by hand: cheaper
 * than packing and unpacking whole messages with protobuf-c in a load
 * generator, and it keeps certval-load free of the proto library. Only the
 * fields certval-load sends or reads are known here (proto/certval/v1). */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "load_client_internal.h"

static size_t ld_varint_len(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80 && n < 10) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *ld_put_varint(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 10 && v >= 0x80; i++) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *ld_put_bytes(uint8_t *p, unsigned field, const void *data, size_t len)
{
    *p++ = (uint8_t)(field << 3 | 2);
    p = ld_put_varint(p, len);
    memcpy(p, data, len);
    return p + len;
}

static size_t ld_bytes_len(size_t len)
{
    return 1 + ld_varint_len(len) + len;
}

/* ld_get_varint reads a varint at |*p| below |end|; false when truncated. */
static bool ld_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;

        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            return true;
    }
    return false;
}

/* ld_skip skips a field of |wire| type; false on a malformed message. */
static bool ld_skip(const uint8_t **p, const uint8_t *end, unsigned wire)
{
    uint64_t v;

    switch (wire) {
    case 0:
        return ld_get_varint(p, end, &v);
    case 1:
        if (end - *p < 8)
            return false;
        *p += 8;
        return true;
    case 5:
        if (end - *p < 4)
            return false;
        *p += 4;
        return true;
    case 2:
        if (!ld_get_varint(p, end, &v) || v > (uint64_t)(end - *p))
            return false;
        *p += v;
        return true;
    default:
        return false;
    }
}

/* ---- requests ---- */

static size_t ld_chain_size(const struct ld_pick *k)
{
    size_t n = 1 + ld_varint_len(k->id);

    for (size_t i = 0; i < k->chain.n_certs; i++)
        n += ld_bytes_len(k->chain.cert_len[i]);
    if (k->chain.tenant_len > 0)
        n += ld_bytes_len(k->chain.tenant_len);
    if (k->chain.device_len > 0)
        n += ld_bytes_len(k->chain.device_len);
    return n + ld_bytes_len(k->user_len);
}

grpc_byte_buffer *ld_wire_request_new(struct ld_pick *picks, unsigned n)
{
    size_t total = 0;
    grpc_slice s;
    grpc_byte_buffer *bb;
    uint8_t *p;

    for (unsigned b = 0; b < n; b++) {
        picks[b].size = ld_chain_size(&picks[b]);
        total += ld_bytes_len(picks[b].size);
    }
    s = grpc_slice_malloc(total);
    p = GRPC_SLICE_START_PTR(s);
    for (unsigned b = 0; b < n; b++) {
        const struct ld_pick *k = &picks[b];

        *p++ = 1 << 3 | 2; /* ValidateRequest.chains */
        p = ld_put_varint(p, k->size);
        *p++ = 1 << 3 | 0; /* ChainRequest.id */
        p = ld_put_varint(p, k->id);
        for (size_t i = 0; i < k->chain.n_certs; i++)
            p = ld_put_bytes(p, 2, k->chain.cert[i], k->chain.cert_len[i]);
        if (k->chain.tenant_len > 0)
            p = ld_put_bytes(p, 3, k->chain.tenant, k->chain.tenant_len);
        if (k->chain.device_len > 0)
            p = ld_put_bytes(p, 4, k->chain.device, k->chain.device_len);
        p = ld_put_bytes(p, 5, k->user, k->user_len);
    }
    bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

/* ---- responses ---- */

/* ld_count_verdict parses one Verdict and counts it; false when malformed. */
static bool ld_count_verdict(struct lt_result *r, const uint8_t *p, const uint8_t *end,
                             unsigned *victims, unsigned *victim_denies)
{
    /* proto3: a field equal to its default (0) is absent on the wire. */
    uint64_t id = 0, decision = 0, reason = 0, key;
    int cls;

    while (p < end) {
        uint64_t *dst = NULL;

        if (!ld_get_varint(&p, end, &key))
            return false;
        if ((key & 7) == 0 && key >> 3 >= 1 && key >> 3 <= 3)
            dst = key >> 3 == 1 ? &id : key >> 3 == 2 ? &decision : &reason;
        if (dst != NULL ? !ld_get_varint(&p, end, dst) : !ld_skip(&p, end, (unsigned)(key & 7)))
            return false;
    }
    cls = id >> 32 < LT_N_CLASSES ? (int)(id >> 32) : -1;
    if (cls == LT_CLASS_VICTIM) {
        (*victims)++;
        if (decision == LT_DECISION_DENY)
            (*victim_denies)++;
    }
    lt_result_verdict(r, cls, (unsigned)decision, (unsigned)reason);
    return true;
}

int ld_wire_count_response(struct lt_result *r, size_t *out_verdicts, grpc_byte_buffer *bb,
                           unsigned *victims, unsigned *victim_denies)
{
    grpc_byte_buffer_reader reader;
    grpc_slice s;
    const uint8_t *p, *end;
    size_t n = 0;
    int rc = 0;

    *out_verdicts = 0;
    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return -1;
    s = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    p = GRPC_SLICE_START_PTR(s);
    end = p + GRPC_SLICE_LENGTH(s);
    while (p < end) {
        uint64_t key, len;

        if (!ld_get_varint(&p, end, &key)) {
            rc = -1;
            break;
        }
        if (key != (1 << 3 | 2)) {
            if (!ld_skip(&p, end, (unsigned)(key & 7))) {
                rc = -1;
                break;
            }
            continue;
        }
        if (!ld_get_varint(&p, end, &len) || len > (uint64_t)(end - p) ||
            !ld_count_verdict(r, p, p + len, victims, victim_denies)) {
            rc = -1;
            break;
        }
        p += len;
        n++;
    }
    grpc_slice_unref(s);
    *out_verdicts = rc == 0 ? n : 0;
    return rc;
}
