/* Fleet (fleet.h): the etcd keys under the prefix, and deny entries in
 * their canonical key form. */
#include "fleet_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "serial.h"

/* ---- keys ---- */

size_t fleet_key_of(char *out, size_t cap, const struct fleet *f, const char *what,
                    const char *rest)
{
    int n = snprintf(out, cap, "%s%s%s", f->cfg.prefix, what, rest);

    /* The schema bounds the prefix to 200 bytes and every caller's |what|
     * and |rest| together to under 300 (FLEET_KEY_MAX is 512): a key that
     * does not fit is a bug here, and a truncated key would name another
     * key, so stop rather than go on. */
    if (n < 0 || (size_t)n >= cap)
        abort();
    return (size_t)n;
}

size_t fleet_deny_key_string(char *out, size_t cap, const struct fleet *f, const struct deny_key *k)
{
    char idhex[65], serhex[2 * DENY_LIST_SERIAL_MAX + 1], rest[256];

    fleet_hex_of(idhex, k->id, 32);
    if (k->leaf) {
        snprintf(rest, sizeof(rest), "leaf/%s", idhex);
    } else {
        fleet_hex_of(serhex, k->serial, k->serial_len);
        snprintf(rest, sizeof(rest), "serial/%s/%s", idhex, serhex);
    }
    return fleet_key_of(out, cap, f, "s/deny/", rest);
}

/* Parses "leaf/HEX" or "serial/HEX/SERIALHEX" (the part after s/deny/). */
int fleet_deny_key_parse(struct deny_key *k, const char *s)
{
    memset(k, 0, sizeof(*k));
    if (strncmp(s, "leaf/", 5) == 0 && strlen(s + 5) == 64) {
        k->leaf = true;
        return fleet_from_hex(k->id, s + 5, 64);
    }
    if (strncmp(s, "serial/", 7) == 0 && strlen(s + 7) > 65 && s[7 + 64] == '/') {
        const char *ser = s + 7 + 65;
        size_t n = strlen(ser);

        if (n == 0 || n % 2 != 0 || n / 2 > DENY_LIST_SERIAL_MAX ||
            fleet_from_hex(k->id, s + 7, 64) != 0 || fleet_from_hex(k->serial, ser, n) != 0)
            return -1;
        k->serial_len = n / 2;
        return 0;
    }
    return -1;
}

/* Minimal INTEGER content octets, as deny_list keeps them (cache/serial.h). */
static void deny_key_minimal(struct deny_key *k)
{
    const uint8_t *p = k->serial;
    size_t n = k->serial_len;

    serial_minimal(&p, &n);
    memmove(k->serial, p, n);
    k->serial_len = n;
}

/* fleet_deny_key_from_entry reads the selectors of an admin DenyEntry (the same
 * rules as admin.c: leaf_sha256, or an issuer and serial_hex). */
int fleet_deny_key_from_entry(struct deny_key *k, const Certval__V1__DenyEntry *e, char *msg,
                              size_t cap)
{
    bool has_serial = e->issuer_certificate.len > 0 || e->issuer_name_sha256.len > 0 ||
                      (e->serial_hex != NULL && e->serial_hex[0] != '\0');
    size_t n;

    memset(k, 0, sizeof(*k));
    if (e->leaf_sha256.len > 0 && has_serial) {
        snprintf(msg, cap, "give either leaf_sha256 or an issuer and serial_hex, not both");
        return -1;
    }
    if (e->leaf_sha256.len == 32) {
        k->leaf = true;
        memcpy(k->id, e->leaf_sha256.data, 32);
        return 0;
    }
    if (e->issuer_name_sha256.len == 32) {
        memcpy(k->id, e->issuer_name_sha256.data, 32);
    } else if (e->issuer_certificate.len > 0) {
        const uint8_t *p = e->issuer_certificate.data;
        X509 *x = d2i_X509(NULL, &p, (long)e->issuer_certificate.len);

        if (x == NULL || p != e->issuer_certificate.data + e->issuer_certificate.len) {
            X509_free(x);
            ERR_clear_error();
            goto bad;
        }
        deny_list_issuer_key(k->id, X509_get_subject_name(x));
        X509_free(x);
    } else {
        goto bad;
    }
    n = e->serial_hex != NULL ? strlen(e->serial_hex) : 0;
    if (n == 0 || (n + 1) / 2 > DENY_LIST_SERIAL_MAX)
        goto bad;
    {
        char buf[2 * DENY_LIST_SERIAL_MAX + 2];

        /* An odd count of digits gets a leading zero, as admin.c reads it. */
        snprintf(buf, sizeof(buf), "%s%s", n % 2 ? "0" : "", e->serial_hex);
        if (fleet_from_hex(k->serial, buf, strlen(buf)) != 0)
            goto bad;
        k->serial_len = strlen(buf) / 2;
    }
    deny_key_minimal(k);
    return 0;
bad:
    snprintf(msg, cap,
             "give leaf_sha256 (32 bytes), or an issuer (certificate DER or name SHA-256) and "
             "serial_hex");
    return -1;
}
