/* libFuzzer target: certval's own name-constraint matching
 * (validator/name_constraints.c) on arbitrary inputs. The input is
 * [2 bytes: length N][N bytes: NameConstraints DER][rest: GeneralNames
 * DER]: every parsed name is checked against the parsed constraints. The
 * rest is also taken raw, as an IP address (first 0..16 bytes), a DNS name
 * and an e-mail address, against every subtree, so the matchers see odd
 * lengths, NULs and malformed masks even when the DER does not parse. Any
 * crash or sanitizer report is a bug. */
#include <stdint.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "name_constraints.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static GENERAL_NAME *raw_name(int type, const uint8_t *p, size_t len)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_STRING *s =
        ASN1_STRING_type_new(type == GEN_IPADD ? V_ASN1_OCTET_STRING : V_ASN1_IA5STRING);

    if (g == NULL || s == NULL || !ASN1_STRING_set(s, p, (int)len)) {
        GENERAL_NAME_free(g);
        ASN1_STRING_free(s);
        return NULL;
    }
    GENERAL_NAME_set0_value(g, type, s);
    return g;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    NAME_CONSTRAINTS *nc = NULL;
    GENERAL_NAMES *names = NULL;
    const uint8_t *p;
    size_t n, rest_len;

    if (size < 2)
        return 0;
    n = ((size_t)data[0] << 8) | data[1];
    if (n > size - 2)
        n = size - 2;
    p = data + 2;
    nc = (NAME_CONSTRAINTS *)ASN1_item_d2i(NULL, &p, (long)n, ASN1_ITEM_rptr(NAME_CONSTRAINTS));
    if (nc == NULL)
        return 0;
    p = data + 2 + n;
    rest_len = size - 2 - n;
    names = d2i_GENERAL_NAMES(NULL, &p, (long)rest_len);
    for (size_t i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++)
        (void)nc_check_name(nc, sk_GENERAL_NAME_value(names, i));
    {
        const uint8_t *r = data + 2 + n;
        GENERAL_NAME *raw[3] = {raw_name(GEN_IPADD, r, rest_len < 16 ? rest_len : 16),
                                raw_name(GEN_DNS, r, rest_len), raw_name(GEN_EMAIL, r, rest_len)};
        for (int k = 0; k < 3; k++) {
            if (raw[k] != NULL)
                (void)nc_check_name(nc, raw[k]);
            GENERAL_NAME_free(raw[k]);
        }
    }
    GENERAL_NAMES_free(names);
    NAME_CONSTRAINTS_free(nc);
    return 0;
}
