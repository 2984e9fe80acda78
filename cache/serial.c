/* The one serial normaliser (serial.h). */
#include "serial.h"

#include <string.h>

#include <openssl/asn1.h>

void serial_minimal(const uint8_t **p, size_t *n)
{
    while (*n > 1 && (((*p)[0] == 0x00 && !((*p)[1] & 0x80)) ||
                      ((*p)[0] == 0xff && ((*p)[1] & 0x80)))) {
        (*p)++;
        (*n)--;
    }
}

int serial_content(uint8_t *out, size_t cap, size_t *out_len, const ASN1_INTEGER *serial)
{
    uint8_t *w = out;
    const uint8_t *q = out;
    int n;
    size_t len;

    *out_len = 0;
    n = serial != NULL ? i2c_ASN1_INTEGER(serial, NULL) : -1;
    if (n <= 0 || (size_t)n > cap || i2c_ASN1_INTEGER(serial, &w) != n)
        return -1;
    /* BoringSSL writes the minimal form already; stripping again keeps
     * this function's promise independent of that. */
    len = (size_t)n;
    serial_minimal(&q, &len);
    memmove(out, q, len);
    *out_len = len;
    return 0;
}
