/* The claims of a chain (tenant, device and user ids) as text: each must be
 * valid UTF-8 without NUL bytes, or the chain is DENY MALFORMED. A claim is
 * compared byte for byte with what the certificate says, so "acme\0evil"
 * must never be read as "acme"; and it goes into the audit log and metric
 * labels, which must stay text. */
#include <stdint.h>
#include <string.h>

#include "utf8.h"
#include "validator_internal.h"
#include "verdict.h"

static int claim_check(struct verdict *out, const char *name, const struct cv_bytes *b)
{
    const uint8_t *nul;
    size_t bad;

    if (b->len == 0 || b->data == NULL)
        return 0;
    nul = memchr(b->data, 0, b->len);
    if (nul != NULL) {
        verdict_deny(out, VERDICT_REASON_MALFORMED, "%s holds a NUL byte (byte %zu of %zu)", name,
                     (size_t)(nul - b->data), b->len);
        return -1;
    }
    bad = utf8_first_bad(b->data, b->len);
    if (bad < b->len) {
        verdict_deny(out, VERDICT_REASON_MALFORMED, "%s is not valid UTF-8 (byte %zu of %zu)", name,
                     bad, b->len);
        return -1;
    }
    return 0;
}

int cv_claims_check(struct verdict *out, const struct chain_input *in)
{
    if (claim_check(out, "tenant_id", &in->tenant_id) != 0 ||
        claim_check(out, "device_id", &in->device_id) != 0 ||
        claim_check(out, "user_id", &in->user_id) != 0)
        return -1;
    return 0;
}
