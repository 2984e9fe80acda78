/* PEM and DER writers for pki_gen.h: certificates, keys (0600 from the
 * start) and CRLs, with a message naming the file on failure. */
#include "pki_gen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/mem.h>
#include <openssl/pem.h>

static void pki_errf(char *err, size_t errlen, const char *what, const char *path)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: %s: %s", path, what, errno != 0 ? strerror(errno) : "failed");
}

/* pki_fopen opens |path| for writing with |mode_bits| permissions (the
 * private key gets 0600 from the start, never a window at 0644). */
static FILE *pki_fopen(const char *path, bool append, mode_t mode_bits)
{
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
    int fd = open(path, flags, mode_bits);
    FILE *fp;

    if (fd < 0)
        return NULL;
    fp = fdopen(fd, append ? "a" : "w");
    if (fp == NULL)
        close(fd);
    return fp;
}

/* pki_fclose closes |fp| and returns 1 when every write reached the file. */
static int pki_fclose(FILE *fp, int ok)
{
    if (ferror(fp))
        ok = 0;
    if (fclose(fp) != 0)
        ok = 0;
    return ok;
}

int pki_write_cert_pem(const char *path, X509 *cert, bool append, char *err, size_t errlen)
{
    FILE *fp;
    int ok;

    errno = 0;
    fp = pki_fopen(path, append, 0644);
    if (fp == NULL) {
        pki_errf(err, errlen, "cannot open", path);
        return -1;
    }
    ok = pki_fclose(fp, PEM_write_X509(fp, cert));
    if (!ok) {
        pki_errf(err, errlen, "cannot write certificate", path);
        return -1;
    }
    return 0;
}

/* pki_write_der writes |len| bytes of |der| to |path|. */
static int pki_write_der(const char *path, const uint8_t *der, int len, char *err, size_t errlen)
{
    FILE *fp;
    int ok;

    errno = 0;
    if (len <= 0) {
        pki_errf(err, errlen, "cannot encode", path);
        return -1;
    }
    fp = pki_fopen(path, false, 0644);
    if (fp == NULL) {
        pki_errf(err, errlen, "cannot open", path);
        return -1;
    }
    ok = pki_fclose(fp, fwrite(der, 1, (size_t)len, fp) == (size_t)len);
    if (!ok) {
        pki_errf(err, errlen, "cannot write", path);
        return -1;
    }
    return 0;
}

int pki_write_cert_der(const char *path, X509 *cert, char *err, size_t errlen)
{
    uint8_t *der = NULL;
    int len = i2d_X509(cert, &der);
    int rc = pki_write_der(path, der, len, err, errlen);

    OPENSSL_free(der);
    return rc;
}

int pki_write_crl_der(const char *path, X509_CRL *crl, char *err, size_t errlen)
{
    uint8_t *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    int rc = pki_write_der(path, der, len, err, errlen);

    OPENSSL_free(der);
    return rc;
}

int pki_write_key_pem(const char *path, EVP_PKEY *key, char *err, size_t errlen)
{
    FILE *fp;
    int ok;

    errno = 0;
    fp = pki_fopen(path, false, 0600);
    if (fp == NULL) {
        pki_errf(err, errlen, "cannot open", path);
        return -1;
    }
    /* An existing file keeps its old mode through O_TRUNC: force 0600. */
    ok = fchmod(fileno(fp), 0600) == 0;
    ok = pki_fclose(fp, ok && PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL));
    if (!ok) {
        pki_errf(err, errlen, "cannot write key", path);
        return -1;
    }
    return 0;
}
