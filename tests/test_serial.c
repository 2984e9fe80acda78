/* The one serial normaliser and its limit (cache/serial.h), shared by the
 * CRL cache, the deny list and the verdict cache. */
#include <criterion/criterion.h>

#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>

#include "deny_list.h"
#include "serial.h"
#include "verdict_step.h"

static const struct {
    const char *name;
    size_t in_len;
    uint8_t in[4];
    size_t out_len;
    uint8_t out[4];
} minimal_cases[] = {
    {"redundant zero", 2, {0x00, 0x01}, 1, {0x01}},
    {"two redundant zeros", 3, {0x00, 0x00, 0x05}, 1, {0x05}},
    {"sign octet kept", 2, {0x00, 0x80}, 2, {0x00, 0x80}},
    {"redundant ff of a negative", 2, {0xff, 0x80}, 1, {0x80}},
    {"ff that carries the sign", 2, {0xff, 0x7f}, 2, {0xff, 0x7f}},
    {"zero", 1, {0x00}, 1, {0x00}},
    {"minus one, twice", 2, {0xff, 0xff}, 1, {0xff}},
    {"already minimal", 3, {0x12, 0x00, 0x00}, 3, {0x12, 0x00, 0x00}},
    {"empty", 0, {0}, 0, {0}},
};

Test(serial, minimal_table)
{
    for (size_t i = 0; i < sizeof(minimal_cases) / sizeof(minimal_cases[0]); i++) {
        const uint8_t *p = minimal_cases[i].in;
        size_t n = minimal_cases[i].in_len;

        serial_minimal(&p, &n);
        cr_expect_eq(n, minimal_cases[i].out_len, "%s: %zu octets", minimal_cases[i].name, n);
        cr_expect_arr_eq(p, minimal_cases[i].out, n, "%s", minimal_cases[i].name);
    }
}

/* A positive serial whose top bit is number |bit|: bit / 8 + 1 content
 * octets, one more when the top bit of its first octet is set. */
static ASN1_INTEGER *serial_with_bit(int bit)
{
    BIGNUM *bn = BN_new();
    ASN1_INTEGER *s;

    cr_assert(bn != NULL && BN_set_bit(bn, bit));
    s = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    cr_assert_not_null(s);
    return s;
}

Test(serial, content_forms_and_the_limit)
{
    uint8_t out[SERIAL_MAX_OCTETS];
    size_t n = 99;
    ASN1_INTEGER *s = ASN1_INTEGER_new();

    cr_assert(ASN1_INTEGER_set(s, -5));
    cr_expect_eq(serial_content(out, sizeof(out), &n, s), 0);
    cr_expect_eq(n, 1);
    cr_expect_eq(out[0], 0xfb);
    cr_assert(ASN1_INTEGER_set_uint64(s, 0x80));
    cr_expect_eq(serial_content(out, sizeof(out), &n, s), 0);
    cr_expect_eq(n, 2);
    cr_expect_eq(out[0], 0x00);
    cr_expect_eq(out[1], 0x80);
    cr_expect_eq(serial_content(out, 1, &n, s), -1, "two octets do not fit one");
    cr_expect_eq(n, 0);
    ASN1_INTEGER_free(s);

    /* Bit 8 * 64 - 2: 64 octets, the longest serial kept; bit 8 * 64 - 1
     * needs a sign octet: 65, refused. */
    s = serial_with_bit(8 * SERIAL_MAX_OCTETS - 2);
    cr_expect_eq(serial_content(out, sizeof(out), &n, s), 0);
    cr_expect_eq(n, SERIAL_MAX_OCTETS);
    ASN1_INTEGER_free(s);
    s = serial_with_bit(8 * SERIAL_MAX_OCTETS - 1);
    cr_expect_eq(serial_content(out, sizeof(out), &n, s), -1);
    cr_expect_eq(n, 0);
    cr_expect_eq(deny_list_serial_content(out, &n, s), -1, "the deny list has the same limit");
    ASN1_INTEGER_free(s);
    cr_expect_eq(serial_content(out, sizeof(out), &n, NULL), -1);
}

Test(serial, one_limit)
{
    cr_expect_eq(DENY_LIST_SERIAL_MAX, SERIAL_MAX_OCTETS);
    cr_expect_eq(VERDICT_STEP_SERIAL_MAX, SERIAL_MAX_OCTETS);
}
