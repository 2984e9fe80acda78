#include "claims.h"

void claims_apply(struct chain_input *in, const struct codec_claims *c,
                  const Certval__V1__ChainRequest *cr)
{
    in->tenant_id.data = (const uint8_t *)cr->tenant_id;
    in->tenant_id.len = c->tenant;
    in->device_id.data = (const uint8_t *)cr->device_id;
    in->device_id.len = c->device;
    in->user_id.data = (const uint8_t *)cr->user_id;
    in->user_id.len = c->user;
}
