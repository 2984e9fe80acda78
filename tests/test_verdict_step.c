/* The verdict cache's entries (validator/verdict_step.c): the key of a
 * chain and the entry format. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>


#include "verdict_cache.h"
#include "verdict_step.h"

#define NOW 1795305600 /* 2026-11-22 */
#define DAY 86400

/* ---- key and entry format ------------------------------------------------ */

static const uint8_t leaf_der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
static const uint8_t ca_der[] = {0x30, 0x03, 0x02, 0x01, 0x02};

static struct chain_input input(const struct cv_bytes *certs, size_t n, const char *tenant,
                                const char *device)
{
    struct chain_input in = {
        .id = 7,
        .certs = certs,
        .n_certs = n,
        .tenant_id = {(const uint8_t *)tenant, strlen(tenant)},
        .device_id = {(const uint8_t *)device, strlen(device)},
    };
    return in;
}

static void sample_verdict(struct verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->decision = DECISION_REQUIRE_PASSWORD;
    v->reason = REASON_OK;
    v->kind = CERT_KIND_DEVICE;
    v->has_leaf_sha256 = true;
    for (int i = 0; i < 32; i++)
        v->leaf_sha256[i] = (uint8_t)(i * 7);
    v->not_after_unix = NOW + DAY;
    snprintf(v->detail, sizeof(v->detail), "detail text");
    memset(v->subject, 'S', sizeof(v->subject) - 1); /* longest strings */
    memset(v->issuer, 'I', sizeof(v->issuer) - 1);
    memset(v->serial_hex, 'f', sizeof(v->serial_hex) - 1);
    memset(v->profile, 'p', sizeof(v->profile) - 1);
}

static void sample_refs(struct verdict_step_refs *r)
{
    memset(r, 0, sizeof(*r));
    r->n = 2;
    r->profile = 3;
    for (size_t i = 0; i < 2; i++) {
        memset(r->ref[i].issuer_name_sha256, 0x10 + (int)i, 32);
        memset(r->ref[i].issuer_key_sha256, 0x20 + (int)i, 32);
        r->ref[i].serial_len = i == 0 ? 1 : VERDICT_STEP_SERIAL_MAX;
        memset(r->ref[i].serial, 0x30 + (int)i, r->ref[i].serial_len);
    }
}

Test(verdict_step, entry_round_trip)
{
    struct verdict_cache *c = verdict_cache_new(100, 1 << 20);
    struct verdict_step_refs refs, got_refs;
    struct verdict v, got;
    uint8_t key[32];
    struct cv_bytes one = {leaf_der, sizeof(leaf_der)};
    struct chain_input in = input(&one, 1, "t", "d");

    verdict_step_key(key, &in, 1);
    sample_verdict(&v);
    sample_refs(&refs);
    cr_assert_not(verdict_step_get(c, &got, &got_refs, key, NOW));
    cr_assert_eq(got.decision, DECISION_UNSPECIFIED, "a miss zeroes the verdict");
    cr_assert(verdict_step_put(c, key, &v, &refs, NOW - 10, NOW + 10));
    cr_assert(verdict_step_get(c, &got, &got_refs, key, NOW));
    cr_assert_arr_eq(&got, &v, sizeof(v), "every field of the verdict comes back");
    cr_assert_eq(got_refs.n, 2);
    cr_assert_eq(got_refs.profile, 3);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_arr_eq(got_refs.ref[i].issuer_name_sha256, refs.ref[i].issuer_name_sha256, 32);
        cr_assert_arr_eq(got_refs.ref[i].issuer_key_sha256, refs.ref[i].issuer_key_sha256, 32);
        cr_assert_eq(got_refs.ref[i].serial_len, refs.ref[i].serial_len);
        cr_assert_arr_eq(got_refs.ref[i].serial, refs.ref[i].serial, refs.ref[i].serial_len);
    }
    cr_assert(verdict_step_get(c, &got, NULL, key, NOW), "references are optional");
    /* Out-of-bounds references are refused; strings without a NUL are cut. */
    refs.n = VERDICT_STEP_MAX_REFS + 1;
    cr_assert_not(verdict_step_put(c, key, &v, &refs, NOW, NOW));
    refs.n = 1;
    refs.ref[0].serial_len = VERDICT_STEP_SERIAL_MAX + 1;
    cr_assert_not(verdict_step_put(c, key, &v, &refs, NOW, NOW));
    memset(v.detail, 'x', sizeof(v.detail));
    cr_assert(verdict_step_put(c, key, &v, NULL, NOW, NOW));
    cr_assert(verdict_step_get(c, &got, &got_refs, key, NOW));
    cr_assert_eq(strlen(got.detail), sizeof(got.detail) - 1);
    cr_assert_eq(got_refs.n, 0);
    verdict_cache_free(c);
}

Test(verdict_step, key_separates_inputs)
{
    struct cv_bytes ab[2] = {{leaf_der, sizeof(leaf_der)}, {ca_der, sizeof(ca_der)}};
    struct cv_bytes ba[2] = {{ca_der, sizeof(ca_der)}, {leaf_der, sizeof(leaf_der)}};
    struct cv_bytes a1[1] = {{leaf_der, sizeof(leaf_der)}};
    struct chain_input in = input(ab, 2, "tenant", "device");
    uint8_t base[32], k[32];

    verdict_step_key(base, &in, 5);
    /* The same input gives the same key; id and user_id are not part of it. */
    in.id = 12345;
    in.user_id = (struct cv_bytes){(const uint8_t *)"u", 1};
    verdict_step_key(k, &in, 5);
    cr_assert_arr_eq(k, base, 32);

    struct chain_input variants[] = {
        input(ab, 2, "tenant2", "device"), input(ab, 2, "tenant", "device2"),
        input(ba, 2, "tenant", "device"),  input(a1, 1, "tenant", "device"),
        input(ab, 2, "tenantd", "evice"), /* moving bytes between fields */
        input(ab, 2, "", "tenantdevice"),
    };
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        verdict_step_key(k, &variants[i], 5);
        cr_assert(memcmp(k, base, 32) != 0, "variant %zu collides", i);
    }
    verdict_step_key(k, &in, 6); /* configuration version */
    cr_assert(memcmp(k, base, 32) != 0);
}

/* The per-thread memo of certificate digests answers only for the same
 * bytes: once a chain's certificates are remembered, a certificate of the
 * same length with one byte changed still gets its own key. */
Test(verdict_step, key_memo_compares_bytes)
{
    uint8_t flipped[sizeof(ca_der)];
    struct cv_bytes ab[2] = {{leaf_der, sizeof(leaf_der)}, {ca_der, sizeof(ca_der)}};
    struct cv_bytes af[2] = {{leaf_der, sizeof(leaf_der)}, {flipped, sizeof(flipped)}};
    struct chain_input in = input(ab, 2, "tenant", "device");
    struct chain_input inf = input(af, 2, "tenant", "device");
    uint8_t first[32], k[32], kf[32];

    memcpy(flipped, ca_der, sizeof(flipped));
    flipped[sizeof(flipped) / 2] ^= 0x01;
    verdict_step_key(first, &in, 5);
    for (int i = 0; i < 4; i++) { /* remembered from the second sighting on */
        verdict_step_key(k, &in, 5);
        cr_assert_arr_eq(k, first, 32, "key changed once remembered (round %d)", i);
    }
    verdict_step_key(kf, &inf, 5);
    cr_assert(memcmp(kf, first, 32) != 0, "a changed certificate of the same length collides");
    verdict_step_key(k, &inf, 5);
    cr_assert_arr_eq(k, kf, 32);
    verdict_step_key(k, &in, 5);
    cr_assert_arr_eq(k, first, 32);
}
