/* Test support: CA and chain builders (pki_builders.h). */
#include "pki_builders.h"

#include <criterion/criterion.h>

#include <string.h>

#include "tmpdir.h"

struct pki_cert_spec ts_ca_spec(const char *cn, int64_t not_before, int64_t not_after)
{
    struct pki_cert_spec s = {.cn = cn,
                              .o = "certval test",
                              .not_before = not_before,
                              .not_after = not_after,
                              .is_ca = true,
                              .path_len = -1,
                              .key_usage = PKI_KU_KEY_CERT_SIGN | PKI_KU_CRL_SIGN};
    return s;
}

struct pki_cert_spec ts_leaf_spec(const char *cn, int64_t not_before, int64_t not_after)
{
    struct pki_cert_spec s = {.cn = cn,
                              .not_before = not_before,
                              .not_after = not_after,
                              .path_len = -1,
                              .key_usage = PKI_KU_DIGITAL_SIGNATURE,
                              .eku = TS_CLIENT_AUTH};
    return s;
}

X509 *ts_issue(const struct pki_cert_spec *spec, EVP_PKEY *key, const struct ts_cert *issuer)
{
    X509 *x = pki_issue(spec, key, issuer != NULL ? issuer->cert : NULL,
                        issuer != NULL ? issuer->key : key);

    cr_assert_not_null(x, "pki_issue %s", spec->cn != NULL ? spec->cn : "(no CN)");
    return x;
}

struct ts_cert ts_cert_new(const struct pki_cert_spec *spec, enum pki_key_type type,
                           const struct ts_cert *issuer)
{
    struct ts_cert c;

    c.key = pki_key_new(type);
    cr_assert_not_null(c.key, "key type %d", (int)type);
    c.cert = ts_issue(spec, c.key, issuer);
    return c;
}

struct ts_cert ts_ca_new(const char *cn, const struct ts_cert *issuer, int64_t not_before,
                         int64_t not_after)
{
    struct pki_cert_spec s = ts_ca_spec(cn, not_before, not_after);

    return ts_cert_new(&s, PKI_KEY_P256, issuer);
}

void ts_cert_free(struct ts_cert *c)
{
    X509_free(c->cert);
    EVP_PKEY_free(c->key);
    memset(c, 0, sizeof(*c));
}

void ts_chain_build(struct ts_chain *c, size_t n, const struct pki_cert_spec *specs,
                    const enum pki_key_type *keys)
{
    cr_assert(n >= 1 && n <= TS_CHAIN_MAX, "chain of %zu", n);
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        struct ts_cert above = {i ? c->key[i - 1] : NULL, i ? c->cert[i - 1] : NULL};
        struct ts_cert here = ts_cert_new(&specs[i], keys != NULL ? keys[i] : PKI_KEY_P256,
                                          i ? &above : NULL);

        c->key[i] = here.key;
        c->cert[i] = here.cert;
        c->n = i + 1;
    }
}

void ts_chain_free(struct ts_chain *c)
{
    for (size_t i = 0; i < c->n; i++) {
        X509_free(c->cert[i]);
        EVP_PKEY_free(c->key[i]);
    }
    memset(c, 0, sizeof(*c));
}

STACK_OF(X509) *ts_stack_of(X509 *const *certs, size_t n)
{
    STACK_OF(X509) *sk = sk_X509_new_null();

    cr_assert_not_null(sk);
    for (size_t i = 0; i < n; i++)
        cr_assert(sk_X509_push(sk, certs[i]));
    return sk;
}

void ts_write_cert_pem(char *path, size_t cap, const char *dir, const char *name, X509 *x)
{
    char err[256];

    ts_path(path, cap, dir, name);
    cr_assert_eq(pki_write_cert_pem(path, x, false, err, sizeof(err)), 0, "%s", err);
}
