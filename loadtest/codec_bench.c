/* codec_bench: the codec work around one Validate call, in a loop,
 * for callgrind (loadtest/callgrind.sh): unpacking a ValidateRequest of
 * |chains| chains of one 1 KiB certificate each and packing the
 * ValidateResponse of as many verdicts, as certvald does it
 * (server/codec.h: the request decoded into one arena, the response into one
 * buffer; no gRPC byte buffer), or with --plain the way it did before
 * (protobuf-c's malloc allocator and free_unpacked; two callocs for the
 * verdicts, get_packed_size, malloc, pack).
 *
 *   codec_bench [--chains N] [--iterations N] [--plain]
 *
 * Prints the packed sizes. Not a server: certvald itself does not run
 * under valgrind 3.19 (docs/benchmarks.md, "callgrind"). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certval/v1/certval.pb-c.h"
#include "codec.h"
#define CERT_LEN 1024
#define MAX_CHAINS 64

static uint8_t *pack_request(size_t chains, size_t *out_len)
{
    static uint8_t cert[CERT_LEN];
    Certval__V1__ValidateRequest req = CERTVAL__V1__VALIDATE_REQUEST__INIT;
    Certval__V1__ChainRequest cr[MAX_CHAINS], *ptrs[MAX_CHAINS];
    ProtobufCBinaryData certs[1] = {{CERT_LEN, cert}};
    uint8_t *buf;

    for (size_t i = 0; i < sizeof(cert); i++)
        cert[i] = (uint8_t)(i * 31 + 7);
    for (size_t i = 0; i < chains; i++) {
        Certval__V1__ChainRequest init = CERTVAL__V1__CHAIN_REQUEST__INIT;

        cr[i] = init;
        cr[i].id = i + 1;
        cr[i].n_certificates = 1;
        cr[i].certificates = certs;
        cr[i].tenant_id = "acme";
        cr[i].device_id = "";
        cr[i].user_id = "user-123";
        ptrs[i] = &cr[i];
    }
    req.n_chains = chains;
    req.chains = ptrs;
    *out_len = certval__v1__validate_request__get_packed_size(&req);
    buf = malloc(*out_len);
    if (buf != NULL)
        certval__v1__validate_request__pack(&req, buf);
    return buf;
}

/* |n| OK verdicts of a tenant chain. */
static void verdicts_fill(struct verdict *v, size_t n)
{
    static const struct verdict ok = {
        .decision = DECISION_REQUIRE_PASSWORD,
        .reason = VERDICT_REASON_OK,
        .kind = CERT_KIND_TENANT,
        .has_leaf_sha256 = true,
        .leaf_sha256 = {1},
        .not_after_unix = 1800000000,
        .subject = "CN=alice,O=acme",
        .serial_hex = "0123456789abcdef",
        .profile = "tenant",
    };

    for (size_t i = 0; i < n; i++) {
        v[i] = ok;
        v[i].id = i + 1;
    }
}

/* The response as certvald packs it (codec_response_pack). */
static size_t pack_response(const struct verdict *v, size_t n)
{
    size_t len;
    uint8_t *buf = codec_response_pack(&len, v, n);

    free(buf);
    return buf != NULL ? len : 0;
}

/* The same response the way certvald packed it before (--plain). */
static size_t pack_response_plain(size_t n)
{
    static const uint8_t leaf_sha256[32] = {1};
    Certval__V1__ValidateResponse resp = CERTVAL__V1__VALIDATE_RESPONSE__INIT;
    Certval__V1__Verdict *pv = calloc(n, sizeof(*pv));
    Certval__V1__Verdict **ptrs = calloc(n, sizeof(*ptrs));
    uint8_t *buf = NULL;
    size_t len = 0;

    if (pv == NULL || ptrs == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        Certval__V1__Verdict init = CERTVAL__V1__VERDICT__INIT;

        pv[i] = init;
        pv[i].id = i + 1;
        pv[i].decision = CERTVAL__V1__DECISION__DECISION_REQUIRE_PASSWORD;
        pv[i].reason = CERTVAL__V1__REASON__REASON_OK;
        pv[i].kind = CERTVAL__V1__CERTIFICATE_KIND__CERTIFICATE_KIND_TENANT;
        pv[i].detail = "";
        pv[i].subject = "CN=alice,O=acme";
        pv[i].serial_hex = "0123456789abcdef";
        pv[i].profile = "tenant";
        pv[i].not_after_unix = 1800000000;
        pv[i].leaf_sha256.data = (uint8_t *)leaf_sha256;
        pv[i].leaf_sha256.len = sizeof(leaf_sha256);
        ptrs[i] = &pv[i];
    }
    resp.n_verdicts = n;
    resp.verdicts = ptrs;
    len = certval__v1__validate_response__get_packed_size(&resp);
    buf = malloc(len > 0 ? len : 1);
    if (buf != NULL)
        certval__v1__validate_response__pack(&resp, buf);
out:
    free(buf);
    free(pv);
    free(ptrs);
    return len;
}

int main(int argc, char **argv)
{
    static struct verdict verdicts[MAX_CHAINS];
    long iterations = 1000, chains = 1;
    size_t req_len = 0, resp_len = 0;
    bool plain = false;
    uint8_t *wire;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc)
            iterations = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--chains") == 0 && i + 1 < argc)
            chains = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--plain") == 0)
            plain = true;
        else {
            fprintf(stderr, "usage: codec_bench [--chains N] [--iterations N] [--plain]\n");
            return 2;
        }
    }
    if (chains < 1 || chains > MAX_CHAINS || iterations < 1) {
        fprintf(stderr, "codec_bench: --chains 1..%d, --iterations >= 1\n", MAX_CHAINS);
        return 2;
    }
    wire = pack_request((size_t)chains, &req_len);
    if (wire == NULL)
        return 1;
    verdicts_fill(verdicts, (size_t)chains);
    for (long it = 0; it < iterations; it++) {
        Certval__V1__ValidateRequest *req = NULL;
        struct codec_request rq;

        if (plain)
            req = certval__v1__validate_request__unpack(NULL, req_len, wire);
        else if (codec_request_unpack(&rq, wire, req_len, SIZE_MAX) == 0)
            req = rq.req;
        if (req == NULL || req->n_chains != (size_t)chains) {
            fprintf(stderr, "codec_bench: unpack failed\n");
            return 1;
        }
        if (plain) {
            certval__v1__validate_request__free_unpacked(req, NULL);
            resp_len = pack_response_plain((size_t)chains);
        } else {
            codec_request_free(&rq);
            resp_len = pack_response(verdicts, (size_t)chains);
        }
    }
    free(wire);
    printf("request %zu bytes, response %zu bytes, %ld iterations\n", req_len, resp_len,
           iterations);
    return 0;
}
