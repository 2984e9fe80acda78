/* The Validate codec (server/codec.h) and its arena (server/codec_arena.h):
 * alignment, the fallback when the block is used up, allocation failure
 * (the arena's bound) reported through protobuf-c's NULL, and a response
 * packed byte for byte as protobuf-c's own pack packs it (the packer writes
 * the wire format itself). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

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
    Certval__V1__ValidateRequest *req;
    struct codec_arena *a;

    cr_assert_eq(codec_request_unpack(&req, &a, wire, len), 0);
    memset(wire, 0, len); /* the request must not point into the wire */
    free(wire);
    cr_assert_eq(req->n_chains, 4);
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(req->chains[i]->id, i + 1);
        cr_assert_str_eq(req->chains[i]->tenant_id, "acme");
        cr_assert_str_eq(req->chains[i]->user_id, "user-123");
        cr_assert_eq(req->chains[i]->certificates[0].len, 600);
        cr_assert_eq(req->chains[i]->certificates[0].data[599], (uint8_t)(599 * 7));
    }
    /* Chains of a 600-byte certificate fit the block sized from the wire. */
    cr_assert_leq(codec_arena_used(a), codec_request_arena_size(len));
    codec_arena_free(a);
}

Test(codec, many_small_chains_spill_and_still_unpack)
{
    size_t len;
    uint8_t *wire = request_wire(500, 1, &len);
    Certval__V1__ValidateRequest *req;
    struct codec_arena *a;

    cr_assert_eq(codec_request_unpack(&req, &a, wire, len), 0);
    cr_assert_gt(codec_arena_used(a), codec_request_arena_size(len), "expected a spill");
    cr_assert_eq(req->n_chains, 500);
    cr_assert_eq(req->chains[499]->id, 500);
    codec_arena_free(a);
    free(wire);
}

Test(codec, refuses_garbage_as_einval)
{
    static const uint8_t junk[] = {0x0a, 0x7f, 0x01};
    Certval__V1__ValidateRequest *req = (void *)1;
    struct codec_arena *a = (void *)1;

    cr_assert_eq(codec_request_unpack(&req, &a, junk, sizeof(junk)), -EINVAL);
    cr_assert_null(req);
    cr_assert_null(a);
}

/* protobuf-c over an arena that runs out returns NULL without aborting,
 * and the arena tells that apart from a malformed message. */
Test(codec, allocation_failure_is_reported)
{
    size_t len;
    uint8_t *wire = request_wire(2, 300, &len);

    for (size_t bound = 16; bound < 2048; bound += 16) {
        struct codec_arena *a = codec_arena_new(16, bound);
        Certval__V1__ValidateRequest *req;

        cr_assert_not_null(a);
        req = certval__v1__validate_request__unpack(codec_arena_allocator(a), len, wire);
        if (req != NULL) {
            cr_assert_gt(bound, 600, "unpacked within %zu bytes", bound);
            cr_assert_not(codec_arena_failed(a));
            codec_arena_free(a);
            break;
        }
        cr_assert(codec_arena_failed(a), "bound %zu", bound);
        codec_arena_free(a);
    }
    free(wire);
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
