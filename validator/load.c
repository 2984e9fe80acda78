/* Loading certificates and CRLs from files: PEM (one or several objects) or
 * a single DER object. */
#include "cert_read.h"
#include "civil_time.h"
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

/* What load.c reads: certificates or CRLs, from PEM (one or several
 * blocks) or as one DER object. */
struct der_pem_kind {
    const char *noun;     /* "certificate", "CRL": in messages */
    const char *pem_name; /* the PEM block label */
    size_t max;           /* largest input accepted */
    d2i_of_void *d2i;     /* DER decoder, also used for each PEM block */
    void (*free)(void *obj);
};

static void *cert_d2i(void **out, const uint8_t **in, long len)
{
    X509 *x = d2i_X509((X509 **)out, in, len);

    if (x != NULL)
        cert_intern_ext_oids(x);
    return x;
}

static void *crl_d2i(void **out, const uint8_t **in, long len)
{
    return d2i_X509_CRL((X509_CRL **)out, in, len);
}

static void cert_free(void *x)
{
    X509_free(x);
}

static void crl_free(void *c)
{
    X509_CRL_free(c);
}

static const struct der_pem_kind cert_kind = {"certificate", PEM_STRING_X509, CV_MAX_FILE_BYTES,
                                              cert_d2i, cert_free};
static const struct der_pem_kind crl_kind = {"CRL", PEM_STRING_X509_CRL, CV_MAX_CRL_FILE_BYTES,
                                             crl_d2i, crl_free};

/* der_pem_free frees |sk|, a STACK_OF kind |k|'s type, and what it holds. */
static void der_pem_free(_STACK *sk, const struct der_pem_kind *k)
{
    while (sk != NULL && sk_num(sk) > 0)
        k->free(sk_pop(sk));
    sk_free(sk);
}

/* der_pem_read parses every object of kind |k| in |buf| into a new stack of
 * the kind's type (the caller's). Returns 0, or -1 with a message naming
 * |what| in |err| and |*out| NULL. */
static int der_pem_read(_STACK **out, const struct der_pem_kind *k, const uint8_t *buf, size_t len,
                        const char *what, char *err, size_t errlen)
{
    _STACK *sk = sk_new_null();
    BIO *bio = NULL;
    void *obj = NULL;

    *out = NULL;
    if (sk == NULL)
        goto oom;
    if (len > k->max) {
        snprintf(err, errlen, "%s: too large", what);
        goto err;
    }
    if (!looks_like_pem(buf, len)) {
        const uint8_t *p = buf;
        obj = k->d2i(NULL, &p, (long)len);
        if (obj == NULL || p != buf + len) {
            snprintf(err, errlen, "%s: not a DER or PEM %s", what, k->noun);
            goto err;
        }
        if (!sk_push(sk, obj))
            goto oom;
        obj = NULL;
    } else {
        bio = BIO_new_mem_buf(buf, (int)len);
        if (bio == NULL)
            goto oom;
        ERR_clear_error();
        while ((obj = PEM_ASN1_read_bio(k->d2i, k->pem_name, bio, NULL, NULL, NULL)) != NULL) {
            if (!sk_push(sk, obj))
                goto oom;
            obj = NULL;
        }
        if (!pem_end_ok()) {
            snprintf(err, errlen, "%s: damaged PEM %s (block %zu)", what, k->noun, sk_num(sk) + 1);
            goto err;
        }
        if (sk_num(sk) == 0) {
            snprintf(err, errlen, "%s: no %s found", what, k->noun);
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
    if (obj != NULL)
        k->free(obj);
    BIO_free(bio);
    der_pem_free(sk, k);
    return -1;
}

/* der_pem_load reads |path| (at most k->max bytes) and parses it as
 * der_pem_read does. */
static int der_pem_load(_STACK **out, const struct der_pem_kind *k, const char *path, char *err,
                        size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (read_file(&buf, &len, path, k->max, err, errlen) != 0)
        return -1;
    rc = der_pem_read(out, k, buf, len, path, err, errlen);
    free(buf);
    return rc;
}

int cv_certs_from_mem(STACK_OF(X509) **out, const uint8_t *buf, size_t len, const char *what,
                      char *err, size_t errlen)
{
    _STACK *sk;
    int rc = der_pem_read(&sk, &cert_kind, buf, len, what, err, errlen);

    *out = (STACK_OF(X509) *)sk;
    return rc;
}

int cv_load_certs(STACK_OF(X509) **out, const char *path, char *err, size_t errlen)
{
    _STACK *sk;
    int rc = der_pem_load(&sk, &cert_kind, path, err, errlen);

    *out = (STACK_OF(X509) *)sk;
    return rc;
}

int cv_load_crls(STACK_OF(X509_CRL) **out, const char *path, char *err, size_t errlen)
{
    _STACK *sk;
    int rc = der_pem_load(&sk, &crl_kind, path, err, errlen);

    *out = (STACK_OF(X509_CRL) *)sk;
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
    *out = civil_days(y, (int)mo, (int)d) * 86400 + h * 3600 + mi * 60 + s;
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
