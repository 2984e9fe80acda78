/* The Validate codec (server/codec.h) and its arena (server/codec_arena.h):
 * alignment, the fallback when the block is used up, the arena's bound; a
 * request decoded exactly as protobuf-c's unpacker reads it (random and
 * mutated requests and the wire format's corners, through codec_diff),
 * with each claim's wire length; and a response packed byte for byte as
 * protobuf-c's own pack packs it (both sides write and read the wire
 * format themselves). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "codec_diff.h"

static bool aligned(const void *p)
{
    return (uintptr_t)p % alignof(max_align_t) == 0;
}

Test(codec_arena, aligns_every_allocation)
{
    static const size_t sizes[] = {1, 3, 8, 15, 16, 17, 31, 100, 0, 7};
    struct codec_arena *a = codec_arena_new(4096, SIZE_MAX);
    unsigned char *prev = NULL;

    cr_assert_not_null(a);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *p = codec_arena_alloc(a, sizes[i]);

        cr_assert_not_null(p, "size %zu", sizes[i]);
        cr_assert(aligned(p), "size %zu at %p", sizes[i], (void *)p);
        if (prev != NULL)
            cr_assert(p >= prev, "bump order");
        memset(p, 0xab, sizes[i]);
        prev = p + sizes[i];
    }
    cr_assert_not(codec_arena_failed(a));
    codec_arena_free(a);
}

Test(codec_arena, falls_back_to_malloc_when_used_up)
{
    struct codec_arena *a = codec_arena_new(64, SIZE_MAX);
    unsigned char *p[200];

    cr_assert_not_null(a);
    /* 200 x 48 bytes against a 64-byte block: the rest comes from chunks. */
    for (size_t i = 0; i < 200; i++) {
        p[i] = codec_arena_alloc(a, 40);
        cr_assert_not_null(p[i], "allocation %zu", i);
        cr_assert(aligned(p[i]));
        memset(p[i], (int)i, 40);
    }
    /* One bigger than any chunk so far gets a chunk of its own. */
    cr_assert_not_null(codec_arena_alloc(a, 1 << 20));
    for (size_t i = 0; i < 200; i++)
        for (size_t j = 0; j < 40; j++)
            cr_assert_eq(p[i][j], (unsigned char)i, "allocation %zu overwritten", i);
    cr_assert_not(codec_arena_failed(a));
    cr_assert_geq(codec_arena_used(a), 200 * 48 + (1 << 20));
    codec_arena_free(a); /* LeakSanitizer: every chunk goes */
}

Test(codec_arena, fails_past_its_bound)
{
    struct codec_arena *a = codec_arena_new(64, 128);

    cr_assert_not_null(a);
    cr_assert_not_null(codec_arena_alloc(a, 64)); /* the block */
    cr_assert_not_null(codec_arena_alloc(a, 64)); /* a last chunk, cut to the bound */
    cr_assert_not(codec_arena_failed(a));
    cr_assert_null(codec_arena_alloc(a, 1));
    cr_assert(codec_arena_failed(a));
    cr_assert_null(codec_arena_alloc(a, SIZE_MAX), "size overflow");
    codec_arena_free(a);
    cr_assert_null(codec_arena_new(256, 128), "block over the bound");
    cr_assert_null(codec_arena_new(SIZE_MAX - 8, SIZE_MAX), "size overflow");
    codec_arena_free(NULL);
}

/* A packed request of |chains| chains of one |cert_len|-byte certificate. */
static uint8_t *request_wire(size_t chains, size_t cert_len, size_t *out_len)
{
    Certval__V1__ValidateRequest req = CERTVAL__V1__VALIDATE_REQUEST__INIT;
    Certval__V1__ChainRequest *cr = calloc(chains, sizeof(*cr));
    Certval__V1__ChainRequest **ptrs = calloc(chains, sizeof(*ptrs));
    uint8_t *cert = malloc(cert_len), *buf;
    ProtobufCBinaryData certs[1] = {{cert_len, cert}};

    cr_assert(cr != NULL && ptrs != NULL && cert != NULL);
    for (size_t i = 0; i < cert_len; i++)
        cert[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < chains; i++) {
        Certval__V1__ChainRequest init = CERTVAL__V1__CHAIN_REQUEST__INIT;

        cr[i] = init;
        cr[i].id = i + 1;
        cr[i].n_certificates = 1;
        cr[i].certificates = certs;
        cr[i].tenant_id = "acme";
        cr[i].device_id = "dev-1";
        cr[i].user_id = "user-123";
        ptrs[i] = &cr[i];
    }
    req.n_chains = chains;
    req.chains = ptrs;
    *out_len = certval__v1__validate_request__get_packed_size(&req);
    buf = malloc(*out_len);
    cr_assert_not_null(buf);
    certval__v1__validate_request__pack(&req, buf);
    free(cert);
    free(cr);
    free(ptrs);
    return buf;
}

Test(codec, unpacks_into_one_block)
{
    size_t len;
    uint8_t *wire = request_wire(4, 600, &len);
    struct codec_request rq;

    cr_assert_eq(codec_request_unpack(&rq, wire, len, SIZE_MAX), 0);
    memset(wire, 0, len); /* the request must not point into the wire */
    free(wire);
    cr_assert_eq(rq.req->n_chains, 4);
    cr_assert_eq(rq.n_chains, 4);
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(rq.req->chains[i]->id, i + 1);
        cr_assert_str_eq(rq.req->chains[i]->tenant_id, "acme");
        cr_assert_str_eq(rq.req->chains[i]->user_id, "user-123");
        cr_assert_eq(rq.claims[i].tenant, 4);
        cr_assert_eq(rq.claims[i].device, 5);
        cr_assert_eq(rq.claims[i].user, 8);
        cr_assert_eq(rq.req->chains[i]->certificates[0].len, 600);
        cr_assert_eq(rq.req->chains[i]->certificates[0].data[599], (uint8_t)(599 * 7));
    }
    /* Chains of a 600-byte certificate fit the block sized from the wire. */
    cr_assert_leq(codec_arena_used(rq.arena), codec_request_arena_size(len));
    codec_request_free(&rq);
    cr_assert_null(rq.arena);
    codec_request_free(&rq); /* a zeroed one is accepted */
}

Test(codec, many_small_chains_spill_and_still_unpack)
{
    size_t len;
    uint8_t *wire = request_wire(500, 1, &len);
    struct codec_request rq;

    cr_assert_eq(codec_request_unpack(&rq, wire, len, 500), 0);
    cr_assert_gt(codec_arena_used(rq.arena), codec_request_arena_size(len), "expected a spill");
    cr_assert_eq(rq.req->n_chains, 500);
    cr_assert_eq(rq.req->chains[499]->id, 500);
    codec_request_free(&rq);
    free(wire);
}

/* The chains are counted before anything is decoded: a request over the
 * bound costs no allocation, and says how many chains it had. */
Test(codec, counts_chains_against_the_bound_first)
{
    size_t len;
    uint8_t *wire = request_wire(3, 10, &len);
    struct codec_request rq;

    cr_assert_eq(codec_request_unpack(&rq, wire, len, 2), -E2BIG);
    cr_assert_eq(rq.n_chains, 3);
    cr_assert_null(rq.req);
    cr_assert_null(rq.arena);
    cr_assert_eq(codec_request_unpack(&rq, wire, len, 3), 0);
    codec_request_free(&rq);
    free(wire);
}

Test(codec, refuses_garbage_as_einval)
{
    static const uint8_t junk[] = {0x0a, 0x7f, 0x01};
    struct codec_request rq;

    memset(&rq, 0xff, sizeof(rq));
    cr_assert_eq(codec_request_unpack(&rq, junk, sizeof(junk), SIZE_MAX), -EINVAL);
    cr_assert_null(rq.req);
    cr_assert_null(rq.claims);
    cr_assert_null(rq.arena);
}

/* ---- the decoder against protobuf-c's unpacker ---- */

/* A little writer of protobuf's wire format, for requests protobuf-c's
 * pack would never write (repeats, unknown fields, odd encodings). */
struct wbuf {
    uint8_t b[4096];
    size_t n;
};

static void w_raw(struct wbuf *w, const void *p, size_t n)
{
    cr_assert_leq(w->n + n, sizeof(w->b));
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void w_varint(struct wbuf *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;

    for (; v >= 0x80; v >>= 7)
        b[n++] = (uint8_t)(v | 0x80);
    b[n++] = (uint8_t)v;
    w_raw(w, b, n);
}

static void w_len(struct wbuf *w, unsigned field, const void *p, size_t n)
{
    w_varint(w, (uint64_t)field << 3 | 2);
    w_varint(w, n);
    w_raw(w, p, n);
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    /* xorshift64*: repeatable, so a failure can be run again. */
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return rnd_state * 0x2545f4914f6cdd1du;
}

/* One ChainRequest's fields in random order and number: ids (some of ten
 * bytes), certificates (some empty), claims (some with a NUL, some
 * repeated), unknown fields of every wire type, now and then a known
 * field in the wrong wire type. */
static void random_chain(struct wbuf *w)
{
    static const char *const claims[] = {"acme", "", "dev-001", "a\0b", "\xff\xfe", "user-123"};
    size_t fields = rnd() % 9;

    for (size_t f = 0; f < fields; f++) {
        uint64_t r = rnd();
        uint8_t blob[40];

        for (size_t i = 0; i < sizeof(blob); i++)
            blob[i] = (uint8_t)rnd();
        switch (r % 10) {
        case 0:
        case 1:
            w_varint(w, 1 << 3 | 0);
            w_varint(w, r % 3 == 0 ? UINT64_MAX - r % 1000 : r % 100000);
            break;
        case 2:
        case 3:
            w_len(w, 2, blob, r % 4 == 0 ? 0 : 1 + (r >> 8) % sizeof(blob));
            break;
        case 4:
        case 5: {
            const char *c = claims[(r >> 8) % 6];
            size_t n = c[0] == 'a' && c[1] == '\0' && c[2] == 'b' ? 3 : strlen(c);

            w_len(w, 3 + (unsigned)((r >> 16) % 3), c, n);
            break;
        }
        case 6: /* unknown varint, fixed64, fixed32, length-delimited */
            w_varint(w, (6 + (r >> 8) % 100) << 3 | 0);
            w_varint(w, r >> 20);
            w_varint(w, 7 << 3 | 1);
            w_raw(w, blob, 8);
            w_varint(w, 9 << 3 | 5);
            w_raw(w, blob, 4);
            w_len(w, 1000 + (unsigned)((r >> 8) % 100000), blob, (r >> 30) % 20);
            break;
        case 7: /* a tag in more bytes than it needs: field 2 in five */
            w_raw(w, (const uint8_t[]){0x92, 0x80, 0x80, 0x80, 0x00}, 5);
            w_varint(w, 3);
            w_raw(w, "abc", 3);
            break;
        case 8: /* a known field in the wrong wire type (refused) */
            if (r % 16 == 0) {
                w_varint(w, (1 + (r >> 8) % 5) << 3 | ((r >> 12) % 2 ? 5 : 1));
                w_raw(w, blob, 8);
            }
            break;
        default: /* the id as a length-delimited field (refused), rarely */
            if (r % 32 == 0)
                w_len(w, 1, blob, 2);
            break;
        }
    }
}

static size_t random_request(uint8_t *out, size_t cap)
{
    struct wbuf req = {.n = 0};
    size_t chains = rnd() % 6;

    for (size_t i = 0; i < chains; i++) {
        struct wbuf c = {.n = 0};

        random_chain(&c);
        w_len(&req, 1, c.b, c.n);
        if (rnd() % 8 == 0) /* an unknown top-level field */
            w_len(&req, 2 + (unsigned)(rnd() % 5), c.b, c.n % 7);
    }
    cr_assert_leq(req.n, cap);
    memcpy(out, req.b, req.n);
    return req.n;
}

/* Random requests, then each cut short, bytes flipped, bytes inserted:
 * the decoder accepts, refuses and reads exactly what protobuf-c does. */
Test(codec, decodes_as_protobuf_c_does)
{
    static uint8_t wire[4096], mut[4096 + 8];
    size_t accepted = 0, refused = 0;
    char why[200];

    for (int round = 0; round < 20000; round++) {
        size_t n = random_request(wire, sizeof(wire)), m = n;
        int rc;

        memcpy(mut, wire, n);
        switch (round % 4) {
        case 0:
            break; /* as made */
        case 1:
            m = n > 0 ? rnd() % n : 0;
            break;
        case 2:
            for (int k = 0; k < 3 && n > 0; k++)
                mut[rnd() % n] ^= (uint8_t)(1u << rnd() % 8);
            break;
        default:
            if (n > 0) {
                size_t at = rnd() % n;

                memmove(mut + at + 1, mut + at, n - at);
                mut[at] = (uint8_t)rnd();
                m = n + 1;
            }
            break;
        }
        rc = codec_diff(mut, m, why, sizeof(why));
        cr_assert_neq(rc, -1, "round %d (%zu bytes): %s", round, m, why);
        accepted += rc == 1;
        refused += rc == 0;
    }
    /* Both sides of the comparison were exercised. */
    cr_assert_gt(accepted, 5000, "accepted %zu", accepted);
    cr_assert_gt(refused, 2000, "refused %zu", refused);
}

/* The corners of the wire format, one by one, each against protobuf-c. */
Test(codec, wire_format_corners_as_protobuf_c)
{
    static const struct {
        const char *what;
        uint8_t b[24];
        size_t n;
        int want; /* 1 accepted, 0 refused (protobuf-c's answer) */
    } cases[] = {
        {"empty request", {0}, 0, 1},
        {"one empty chain", {0x0a, 0x00}, 2, 1},
        {"field 0", {0x02, 0x00}, 2, 0},
        {"field 0 in two bytes", {0x80, 0x00, 0x00}, 3, 1},
        {"tag of six bytes", {0x8a, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00}, 7, 0},
        {"tag of five bytes", {0x8a, 0x80, 0x80, 0x80, 0x00, 0x00}, 6, 1},
        {"group start", {0x0b}, 1, 0},
        {"group end", {0x0c}, 1, 0},
        {"wire type 6", {0x0e}, 1, 0},
        {"chains as a varint", {0x08, 0x01}, 2, 0},
        {"length past the end", {0x0a, 0x05, 0x00}, 3, 0},
        {"length of six bytes", {0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 7, 0},
        {"length of 2^31, past the end", {0x0a, 0x80, 0x80, 0x80, 0x80, 0x08}, 6, 0},
        {"unknown varint of ten bytes", {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 11, 1},
        {"unknown varint of eleven bytes", {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 12, 0},
        {"unknown fixed64 cut short", {0x11, 1, 2, 3}, 4, 0},
        {"unknown fixed32", {0x15, 1, 2, 3, 4}, 5, 1},
        {"id of ten bytes, high bits dropped", {0x0a, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 13, 1},
        {"id as fixed64", {0x0a, 0x09, 0x09, 1, 2, 3, 4, 5, 6, 7, 8}, 11, 0},
        {"tenant as a varint", {0x0a, 0x02, 0x18, 0x01}, 4, 0},
        {"certificate, empty", {0x0a, 0x02, 0x12, 0x00}, 4, 1},
        {"tenant twice, the last wins", {0x0a, 0x08, 0x1a, 0x02, 'a', 'b', 0x1a, 0x02, 'c', 0}, 10, 1},
        {"a chain cut inside", {0x0a, 0x03, 0x12, 0x05, 0x00}, 5, 0},
    };
    char why[200];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = codec_diff(cases[i].b, cases[i].n, why, sizeof(why));

        cr_assert_eq(rc, cases[i].want, "%s: %d (%s)", cases[i].what, rc, why);
    }
}

/* What protobuf-c's char * drops: the claim's length on the wire. */
Test(codec, keeps_each_claims_wire_length)
{
    struct wbuf c = {.n = 0}, req = {.n = 0};
    struct codec_request rq;

    w_len(&c, 3, "acme\0evil", 9);
    w_len(&c, 4, "dev-001", 7);
    w_len(&c, 4, "dev-001\0x", 9); /* the last one counts */
    w_len(&req, 1, c.b, c.n);
    cr_assert_eq(codec_request_unpack(&rq, req.b, req.n, SIZE_MAX), 0);
    cr_assert_eq(rq.claims[0].tenant, 9);
    cr_assert_eq(rq.claims[0].device, 9);
    cr_assert_eq(rq.claims[0].user, 0);
    cr_assert(memcmp(rq.req->chains[0]->tenant_id, "acme\0evil", 10) == 0);
    cr_assert_str_eq(rq.req->chains[0]->user_id, "");
    codec_request_free(&rq);
}

static void verdict_sample(struct verdict *v, size_t i)
{
    memset(v, 0, sizeof(*v));
    v->id = i * 1000003u;
    v->decision = (enum verdict_decision)(1 + i % 3);
    v->reason = (enum verdict_reason)(i % 5);
    v->kind = (enum cert_kind)(i % 3);
    v->has_leaf_sha256 = i % 2 == 0;
    for (size_t j = 0; j < sizeof(v->leaf_sha256); j++)
        v->leaf_sha256[j] = (uint8_t)(i + j);
    v->not_after_unix = i % 4 == 0 ? 0 : 1800000000 + (int64_t)i;
    if (i % 11 == 5)
        v->not_after_unix = -(int64_t)i; /* before 1970: ten bytes */
    /* Some details over 127 bytes: two-byte lengths. */
    memset(v->detail, 'd', i % 7 == 0 ? 200 : i % 10);
    snprintf(v->subject, sizeof(v->subject), "CN=user %zu,O=acme", i);
    snprintf(v->serial_hex, sizeof(v->serial_hex), "%zx", i);
    snprintf(v->profile, sizeof(v->profile), "%s", i % 2 ? "tenant" : "");
}

/* The reference: protobuf-c's pack of the same verdicts. */
static uint8_t *pack_reference(const struct verdict *v, size_t n, size_t *out_len)
{
    Certval__V1__ValidateResponse resp = CERTVAL__V1__VALIDATE_RESPONSE__INIT;
    Certval__V1__Verdict *pv = calloc(n + 1, sizeof(*pv));
    Certval__V1__Verdict **ptrs = calloc(n + 1, sizeof(*ptrs));
    uint8_t *buf;

    for (size_t i = 0; i < n; i++) {
        Certval__V1__Verdict init = CERTVAL__V1__VERDICT__INIT;

        pv[i] = init;
        pv[i].id = v[i].id;
        pv[i].decision = (Certval__V1__Decision)v[i].decision;
        pv[i].reason = (Certval__V1__Reason)v[i].reason;
        pv[i].kind = (Certval__V1__CertificateKind)v[i].kind;
        pv[i].detail = (char *)v[i].detail;
        pv[i].subject = (char *)v[i].subject;
        pv[i].serial_hex = (char *)v[i].serial_hex;
        pv[i].profile = (char *)v[i].profile;
        pv[i].not_after_unix = v[i].not_after_unix;
        if (v[i].has_leaf_sha256) {
            pv[i].leaf_sha256.data = (uint8_t *)v[i].leaf_sha256;
            pv[i].leaf_sha256.len = sizeof(v[i].leaf_sha256);
        }
        ptrs[i] = &pv[i];
    }
    resp.n_verdicts = n;
    resp.verdicts = ptrs;
    *out_len = certval__v1__validate_response__get_packed_size(&resp);
    buf = malloc(*out_len + 1);
    certval__v1__validate_response__pack(&resp, buf);
    free(pv);
    free(ptrs);
    return buf;
}

/* codec_response_pack writes Verdict's fields itself: a field added to
 * the message must be added there too. */
/* codec_unpack.c reads ValidateRequest's and ChainRequest's fields by
 * number: a field added to either must be added there too. */
Test(codec, request_has_the_fields_the_decoder_reads)
{
    static const char *const names[] = {"id", "certificates", "tenant_id", "device_id", "user_id"};

    cr_assert_eq(certval__v1__validate_request__descriptor.n_fields, 1);
    cr_assert_eq(certval__v1__validate_request__descriptor.fields[0].id, 1);
    cr_assert_eq(certval__v1__chain_request__descriptor.n_fields, 5);
    for (unsigned i = 0; i < 5; i++) {
        cr_assert_eq(certval__v1__chain_request__descriptor.fields[i].id, i + 1);
        cr_assert_str_eq(certval__v1__chain_request__descriptor.fields[i].name, names[i]);
    }
}

Test(codec, verdict_has_the_fields_the_packer_writes)
{
    cr_assert_eq(certval__v1__verdict__descriptor.n_fields, 10);
    cr_assert_eq(certval__v1__validate_response__descriptor.n_fields, 1);
}

Test(codec, packs_as_protobuf_c_does)
{
    /* 0, small, and past the stack's 64 sizes. */
    static const size_t counts[] = {0, 1, 3, 64, 65, 300};
    struct verdict *v = calloc(300, sizeof(*v));

    cr_assert_not_null(v);
    for (size_t i = 0; i < 300; i++)
        verdict_sample(&v[i], i);
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        size_t n = counts[c], len, ref_len;
        uint8_t *buf = codec_response_pack(&len, v, n);
        uint8_t *ref = pack_reference(v, n, &ref_len);
        Certval__V1__ValidateResponse *back;

        cr_assert_not_null(buf, "%zu verdicts", n);
        cr_assert_eq(len, ref_len, "%zu verdicts: %zu bytes, protobuf-c %zu", n, len, ref_len);
        cr_assert(memcmp(buf, ref, len) == 0, "%zu verdicts: bytes differ", n);
        back = certval__v1__validate_response__unpack(NULL, len, buf);
        cr_assert_not_null(back);
        cr_assert_eq(back->n_verdicts, n);
        if (n > 0)
            cr_assert_eq(back->verdicts[n - 1]->id, v[n - 1].id);
        certval__v1__validate_response__free_unpacked(back, NULL);
        free(buf);
        free(ref);
    }
    free(v);
}
