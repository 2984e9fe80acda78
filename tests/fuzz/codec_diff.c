#include "codec_diff.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certval/v1/certval.pb-c.h"
#include "codec.h"

/* protobuf-c's allocations with their sizes in front, so the length of a
 * string it copied (allocated length + 1) can be read back. */
#define HEAD 16

static void *sized_alloc(void *data, size_t size)
{
    unsigned char *p = malloc(size + HEAD);

    (void)data;
    if (p == NULL)
        return NULL;
    memcpy(p, &size, sizeof(size));
    return p + HEAD;
}

static void sized_free(void *data, void *p)
{
    (void)data;
    if (p != NULL)
        free((unsigned char *)p - HEAD);
}

static size_t sized_len(const void *p)
{
    size_t size;

    memcpy(&size, (const unsigned char *)p - HEAD, sizeof(size));
    return size;
}

/* same_str compares one string field: absent in both, or present in both
 * with the claim length |len| being what protobuf-c copied. */
static bool same_str(const char *mine, uint32_t len, const char *pc)
{
    if ((mine == protobuf_c_empty_string) != (pc == protobuf_c_empty_string))
        return false;
    if (pc == protobuf_c_empty_string)
        return len == 0;
    return sized_len(pc) == (size_t)len + 1 && memcmp(mine, pc, (size_t)len + 1) == 0;
}

static int chain_diff(const Certval__V1__ChainRequest *m, const struct codec_claims *cl,
                      const Certval__V1__ChainRequest *p, size_t i, char *why, size_t cap)
{
    if (m->id != p->id) {
        snprintf(why, cap, "chain %zu: id %llu, protobuf-c %llu", i, (unsigned long long)m->id,
                 (unsigned long long)p->id);
        return -1;
    }
    if (m->n_certificates != p->n_certificates) {
        snprintf(why, cap, "chain %zu: %zu certificates, protobuf-c %zu", i, m->n_certificates,
                 p->n_certificates);
        return -1;
    }
    for (size_t j = 0; j < m->n_certificates; j++) {
        const ProtobufCBinaryData *a = &m->certificates[j], *b = &p->certificates[j];

        if (a->len != b->len || (a->data == NULL) != (b->data == NULL) ||
            (a->len > 0 && memcmp(a->data, b->data, a->len) != 0)) {
            snprintf(why, cap, "chain %zu: certificate %zu differs (%zu / %zu bytes)", i, j,
                     a->len, b->len);
            return -1;
        }
    }
    if (!same_str(m->tenant_id, cl->tenant, p->tenant_id) ||
        !same_str(m->device_id, cl->device, p->device_id) ||
        !same_str(m->user_id, cl->user, p->user_id)) {
        snprintf(why, cap, "chain %zu: a claim differs (lengths %u %u %u)", i, cl->tenant,
                 cl->device, cl->user);
        return -1;
    }
    return 0;
}

int codec_diff(const uint8_t *wire, size_t len, char *why, size_t cap)
{
    ProtobufCAllocator sized = {sized_alloc, sized_free, NULL};
    Certval__V1__ValidateRequest *p = certval__v1__validate_request__unpack(&sized, len, wire);
    struct codec_request rq;
    int err = codec_request_unpack(&rq, wire, len, SIZE_MAX), rc = 1;

    snprintf(why, cap, "agree");
    if (err == -ENOMEM || (p == NULL) != (err < 0)) {
        snprintf(why, cap, "decoder says %d, protobuf-c %s", err, p != NULL ? "accepts" : "refuses");
        rc = -1;
    } else if (p == NULL) {
        rc = 0;
    } else if (rq.req->n_chains != p->n_chains || rq.n_chains != p->n_chains) {
        snprintf(why, cap, "%zu chains (counted %zu), protobuf-c %zu", rq.req->n_chains,
                 rq.n_chains, p->n_chains);
        rc = -1;
    } else {
        for (size_t i = 0; i < p->n_chains && rc == 1; i++)
            if (chain_diff(rq.req->chains[i], &rq.claims[i], p->chains[i], i, why, cap) < 0)
                rc = -1;
    }
    if (p != NULL)
        certval__v1__validate_request__free_unpacked(p, &sized);
    codec_request_free(&rq);
    return rc;
}
