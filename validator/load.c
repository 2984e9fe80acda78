/* Loading certificates and CRLs from files: PEM (one or several objects) or
 * a single DER object. */
#include "validator_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

/* read_file reads |path| whole, at most |max| bytes, into a new buffer
 * (caller frees). */
static int read_file(uint8_t **out, size_t *out_len, const char *path, size_t max, char *err,
                     size_t errlen)
{
    FILE *f = NULL;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;

    *out = NULL;
    *out_len = 0;
    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto err;
    }
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            uint8_t *nbuf;
            if (ncap > max + 1)
                ncap = max + 1;
            if (ncap == cap) {
                snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
                goto err;
            }
            nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto err;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                snprintf(err, errlen, "%s: read error", path);
                goto err;
            }
            break;
        }
    }
    fclose(f);
    if (len == 0) {
        snprintf(err, errlen, "%s: empty file", path);
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = len;
    return 0;
err:
    if (f != NULL)
        fclose(f);
    free(buf);
    return -1;
}

/* looks_like_pem: a PEM file has a "-----BEGIN " line; DER starts with a
 * SEQUENCE tag (0x30) and never contains that text at its start. */
static bool looks_like_pem(const uint8_t *buf, size_t len)
{
    static const char marker[] = "-----BEGIN ";
    size_t m = sizeof(marker) - 1;

    if (len > 0 && buf[0] == 0x30)
        return false;
    for (size_t i = 0; i + m <= len; i++) {
        if (memcmp(buf + i, marker, m) == 0)
            return true;
    }
    return false;
}

/* pem_end_ok: reading stopped because no further PEM block exists, not
 * because a block was damaged. */
static bool pem_end_ok(void)
{
    uint32_t e = ERR_peek_last_error();
    bool ok = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    ERR_clear_error();
    return ok;
}

int cv_certs_from_mem(STACK_OF(X509) **out, const uint8_t *buf, size_t len, const char *what,
                      char *err, size_t errlen)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    BIO *bio = NULL;
    X509 *x = NULL;

    *out = NULL;
    if (sk == NULL || len > CV_MAX_FILE_BYTES) {
        snprintf(err, errlen, "%s: %s", what, sk == NULL ? "out of memory" : "too large");
        goto err;
    }
    if (!looks_like_pem(buf, len)) {
        const uint8_t *p = buf;
        x = d2i_X509(NULL, &p, (long)len);
        if (x == NULL || p != buf + len) {
            snprintf(err, errlen, "%s: not a DER or PEM certificate", what);
            goto err;
        }
        if (!sk_X509_push(sk, x))
            goto oom;
        x = NULL;
    } else {
        bio = BIO_new_mem_buf(buf, (int)len);
        if (bio == NULL)
            goto oom;
        ERR_clear_error();
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
            if (!sk_X509_push(sk, x))
                goto oom;
            x = NULL;
        }
        if (!pem_end_ok()) {
            snprintf(err, errlen, "%s: damaged PEM certificate (block %zu)", what,
                     sk_X509_num(sk) + 1);
            goto err;
        }
        if (sk_X509_num(sk) == 0) {
            snprintf(err, errlen, "%s: no certificate found", what);
            goto err;
        }
    }
    BIO_free(bio);
    *out = sk;
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory", what);
err:
    ERR_clear_error();
    X509_free(x);
    BIO_free(bio);
    sk_X509_pop_free(sk, X509_free);
    return -1;
}

static int crls_from_mem(STACK_OF(X509_CRL) **out, const uint8_t *buf, size_t len,
                         const char *what, char *err, size_t errlen)
{
    STACK_OF(X509_CRL) *sk = sk_X509_CRL_new_null();
    BIO *bio = NULL;
    X509_CRL *c = NULL;

    *out = NULL;
    if (sk == NULL)
        goto oom;
    if (!looks_like_pem(buf, len)) {
        const uint8_t *p = buf;
        c = d2i_X509_CRL(NULL, &p, (long)len);
        if (c == NULL || p != buf + len) {
            snprintf(err, errlen, "%s: not a DER or PEM CRL", what);
            goto err;
        }
        if (!sk_X509_CRL_push(sk, c))
            goto oom;
        c = NULL;
    } else {
        bio = BIO_new_mem_buf(buf, (int)len);
        if (bio == NULL)
            goto oom;
        ERR_clear_error();
        while ((c = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
            if (!sk_X509_CRL_push(sk, c))
                goto oom;
            c = NULL;
        }
        if (!pem_end_ok() || sk_X509_CRL_num(sk) == 0) {
            snprintf(err, errlen, "%s: no usable PEM CRL (block %zu)", what,
                     sk_X509_CRL_num(sk) + 1);
            goto err;
        }
    }
    BIO_free(bio);
    *out = sk;
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory", what);
err:
    ERR_clear_error();
    X509_CRL_free(c);
    BIO_free(bio);
    sk_X509_CRL_pop_free(sk, X509_CRL_free);
    return -1;
}

int cv_load_certs(STACK_OF(X509) **out, const char *path, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (read_file(&buf, &len, path, CV_MAX_FILE_BYTES, err, errlen) != 0)
        return -1;
    rc = cv_certs_from_mem(out, buf, len, path, err, errlen);
    free(buf);
    return rc;
}

int cv_load_crls(STACK_OF(X509_CRL) **out, const char *path, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (read_file(&buf, &len, path, CV_MAX_CRL_FILE_BYTES, err, errlen) != 0)
        return -1;
    rc = crls_from_mem(out, buf, len, path, err, errlen);
    free(buf);
    return rc;
}

int cv_stack_append_certs(STACK_OF(X509) *to, const STACK_OF(X509) *from)
{
    for (size_t i = 0; i < sk_X509_num(from); i++) {
        X509 *x = sk_X509_value(from, i);
        if (!sk_X509_push(to, x))
            return -1;
        X509_up_ref(x);
    }
    return 0;
}

/* days_from_civil: days since 1970-01-01 of a proleptic Gregorian date
 * (H. Hinnant's algorithm); avoids timegm and the TZ environment. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const uint8_t *p, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    *out = v;
    return 0;
}

int cv_asn1_time_to_unix(int64_t *out, const ASN1_TIME *t)
{
    const uint8_t *p = ASN1_STRING_get0_data(t);
    size_t len = (size_t)ASN1_STRING_length(t);
    unsigned y, mo, d, h, mi, s;
    size_t yl;

    *out = 0;
    if (ASN1_STRING_type(t) == V_ASN1_UTCTIME)
        yl = 2; /* RFC 5280 4.1.2.5.1: YYMMDDHHMMSSZ */
    else if (ASN1_STRING_type(t) == V_ASN1_GENERALIZEDTIME)
        yl = 4; /* RFC 5280 4.1.2.5.2: YYYYMMDDHHMMSSZ */
    else
        return -1;
    if (len != yl + 11 || p[len - 1] != 'Z')
        return -1;
    if (digits(p, yl, &y) || digits(p + yl, 2, &mo) || digits(p + yl + 2, 2, &d) ||
        digits(p + yl + 4, 2, &h) || digits(p + yl + 6, 2, &mi) || digits(p + yl + 8, 2, &s))
        return -1;
    if (yl == 2)
        y += y >= 50 ? 1900 : 2000;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59)
        return -1;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return 0;
}

int cv_append_certs(STACK_OF(X509) *to, const char *const *files, size_t n, char *err,
                    size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        STACK_OF(X509) *sk = NULL;

        if (cv_load_certs(&sk, files[i], err, errlen) != 0)
            return -1;
        while (sk_X509_num(sk) > 0) {
            X509 *x = sk_X509_shift(sk);

            if (!sk_X509_push(to, x)) {
                X509_free(x);
                sk_X509_pop_free(sk, X509_free);
                snprintf(err, errlen, "%s: out of memory", files[i]);
                return -1;
            }
        }
        sk_X509_free(sk);
    }
    return 0;
}
