/* Name constraints on dNSName, rfc822Name and iPAddress subjectAltNames
 * (RFC 5280 4.2.1.10, 6.1.3 (b)-(c)), checked by certval itself.
 *
 * This BoringSSL refuses an iPAddress constraint with "unsupported name
 * constraint type" as soon as a certificate below it has an IP SAN, and
 * stops checking that certificate's later SANs. pathval.c's verify
 * callback excuses that error when every SAN from the first IP SAN on is
 * a DNS, e-mail or IP name, and this file then checks those three forms
 * for every certificate against every CA above it. Directory names (and
 * SANs before the first IP SAN) remain BoringSSL's. */
#include "validator_internal.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/x509v3.h>

/* ip_in_subtree: RFC 5280 4.2.1.10: the constraint is address || mask (8
 * octets for IPv4, 32 for IPv6). An address of the other family is not in
 * the subtree. Returns 1 in, 0 out, -1 malformed constraint. */
static int ip_in_subtree(const ASN1_OCTET_STRING *name, const ASN1_OCTET_STRING *base)
{
    const uint8_t *a = ASN1_STRING_get0_data(name), *b = ASN1_STRING_get0_data(base);
    int alen = ASN1_STRING_length(name), blen = ASN1_STRING_length(base);

    if (blen != 8 && blen != 32)
        return -1;
    if (alen * 2 != blen)
        return 0;
    for (int i = 0; i < alen; i++)
        if ((a[i] & b[alen + i]) != (b[i] & b[alen + i]))
            return 0;
    return 1;
}

/* domain_within: |name| is |base| or ends in "." + |base| (case-insensitive
 * ASCII). A base with a leading dot takes only names below it. */
static bool domain_within(const char *name, size_t nlen, const char *base, size_t blen)
{
    if (blen == 0)
        return true; /* an empty base matches every name */
    if (base[0] == '.')
        return nlen > blen && strncasecmp(name + nlen - blen, base, blen) == 0;
    if (nlen == blen)
        return strncasecmp(name, base, blen) == 0;
    return nlen > blen && name[nlen - blen - 1] == '.' &&
           strncasecmp(name + nlen - blen, base, blen) == 0;
}

/* email_in_subtree: RFC 5280 4.2.1.10: a mailbox base matches exactly
 * that mailbox (the local part case-sensitive, RFC 5321 2.4), a host base
 * the mailboxes on that host, a ".domain" base the mailboxes on any host
 * below it. */
static bool email_in_subtree(const char *m, size_t mlen, const char *base, size_t blen)
{
    const char *at = memchr(m, '@', mlen);
    const char *bat = memchr(base, '@', blen);
    size_t host_len;

    if (at == NULL)
        return false;
    host_len = mlen - (size_t)(at - m) - 1;
    if (bat != NULL) {
        size_t local = (size_t)(bat - base);
        return (size_t)(at - m) == local && memcmp(m, base, local) == 0 &&
               host_len == blen - local - 1 && strncasecmp(at + 1, bat + 1, host_len) == 0;
    }
    if (base[0] == '.')
        return domain_within(at + 1, host_len, base, blen);
    return host_len == blen && strncasecmp(at + 1, base, blen) == 0;
}

/* name_in_subtree: 1 in, 0 out (or another form), -1 malformed. */
static int name_in_subtree(const GENERAL_NAME *name, const GENERAL_NAME *base)
{
    const ASN1_STRING *n, *b;

    if (name->type != base->type)
        return 0;
    switch (name->type) {
    case GEN_IPADD:
        return ip_in_subtree(name->d.iPAddress, base->d.iPAddress);
    case GEN_DNS:
    case GEN_EMAIL:
        n = name->d.ia5;
        b = base->d.ia5;
        if (memchr(ASN1_STRING_get0_data(n), 0, (size_t)ASN1_STRING_length(n)) != NULL)
            return -1; /* an embedded NUL would end the comparison early */
        if (name->type == GEN_DNS)
            return domain_within(
                (const char *)ASN1_STRING_get0_data(n), (size_t)ASN1_STRING_length(n),
                (const char *)ASN1_STRING_get0_data(b), (size_t)ASN1_STRING_length(b));
        return email_in_subtree(
            (const char *)ASN1_STRING_get0_data(n), (size_t)ASN1_STRING_length(n),
            (const char *)ASN1_STRING_get0_data(b), (size_t)ASN1_STRING_length(b));
    default:
        return 0;
    }
}

bool nc_is_own_form(int type)
{
    return type == GEN_DNS || type == GEN_EMAIL || type == GEN_IPADD;
}

/* nc_check_name applies |nc| to one name. NULL when it passes. */
const char *nc_check_name(const NAME_CONSTRAINTS *nc, const GENERAL_NAME *name)
{
    bool has_permitted = false, permitted = false;

    for (size_t i = 0; i < sk_GENERAL_SUBTREE_num(nc->excludedSubtrees); i++) {
        int m = name_in_subtree(name, sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, i)->base);
        if (m != 0)
            return m < 0 ? "malformed name or constraint" : "excluded subtree violation";
    }
    for (size_t i = 0; i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++) {
        const GENERAL_NAME *base = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i)->base;
        int m;

        if (base->type != name->type)
            continue;
        has_permitted = true;
        m = name_in_subtree(name, base);
        if (m < 0)
            return "malformed name or constraint";
        permitted = permitted || m == 1;
    }
    return has_permitted && !permitted ? "permitted subtree violation" : NULL;
}

bool nc_after_first_ip_only_own_forms(X509 *x)
{
    GENERAL_NAMES *gens = cert_ext_d2i(x, NID_subject_alt_name);
    bool seen_ip = false, ok = true;

    for (size_t i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        int t = sk_GENERAL_NAME_value(gens, i)->type;
        seen_ip = seen_ip || t == GEN_IPADD;
        if (seen_ip && !nc_is_own_form(t))
            ok = false;
    }
    GENERAL_NAMES_free(gens);
    return ok;
}

/* cn_as_san: CA/B BR 7.1.4.3: a leaf's commonName, when present, is one
 * of its SAN values (a DNS name or an IP address). For a leaf with no
 * subjectAltName at all, its CNs are taken as those SANs so the name
 * constraints see them; NULL when there is none (no names to check). */
static GENERAL_NAMES *cn_as_san(X509 *leaf)
{
    X509_NAME *subj = X509_get_subject_name(leaf);
    GENERAL_NAMES *out = sk_GENERAL_NAME_new_null();

    for (int idx = -1;
         out != NULL && (idx = X509_NAME_get_index_by_NID(subj, NID_commonName, idx)) >= 0;) {
        ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
        uint8_t *utf8 = NULL, ip[16];
        int len = ASN1_STRING_to_UTF8(&utf8, v);
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_STRING *s = NULL;
        bool ok = false;

        if (len > 0 && g != NULL && memchr(utf8, 0, (size_t)len) == NULL) {
            char text[256];
            size_t n = (size_t)len < sizeof(text) - 1 ? (size_t)len : sizeof(text) - 1;
            int alen = 0;
            memcpy(text, utf8, n);
            text[n] = '\0';
            alen = inet_pton(AF_INET, text, ip) == 1    ? 4
                   : inet_pton(AF_INET6, text, ip) == 1 ? 16
                                                        : 0;
            s = ASN1_STRING_type_new(alen ? V_ASN1_OCTET_STRING : V_ASN1_IA5STRING);
            ok = s != NULL && (alen ? ASN1_STRING_set(s, ip, alen) : ASN1_STRING_set(s, utf8, len));
            if (ok) {
                GENERAL_NAME_set0_value(g, alen ? GEN_IPADD : GEN_DNS, s);
                s = NULL;
                ok = sk_GENERAL_NAME_push(out, g) != 0;
            }
        }
        if (!ok)
            GENERAL_NAME_free(g);
        ASN1_STRING_free(s);
        OPENSSL_free(utf8);
    }
    ERR_clear_error();
    return out;
}

/* cert_san: the SAN of |x|, decoded already (|px|) or now (*owned set:
 * the caller frees it). For a leaf without any subjectAltName the CNs
 * stand in (cn_as_san), never for a CA's own name. */
static GENERAL_NAMES *cert_san(const struct pathval_exts *px, X509 *x, bool leaf, bool *owned)
{
    const struct cert_exts *e = pathval_exts_of(px, x);
    GENERAL_NAMES *gens = e != NULL ? e->san : cert_ext_d2i(x, NID_subject_alt_name);

    *owned = e == NULL;
    if (gens == NULL && leaf &&
        !(e != NULL ? e->has_san : X509_get_ext_by_NID(x, NID_subject_alt_name, -1) >= 0)) {
        *owned = true;
        gens = cn_as_san(x);
    }
    return gens;
}

/* check_under applies the nameConstraints of |ca| (at depth |j|) to
 * |gens|, the SANs of the certificate at depth |d|. */
static enum verdict_reason check_under(struct pathval_failure *f, const STACK_OF(X509) *chain,
                                       const struct pathval_exts *px, const GENERAL_NAMES *gens,
                                       size_t d, size_t j)
{
    X509 *ca = sk_X509_value(chain, j);
    const struct cert_exts *e = pathval_exts_of(px, ca);
    NAME_CONSTRAINTS *own = e == NULL ? cert_ext_d2i(ca, NID_name_constraints) : NULL;
    const NAME_CONSTRAINTS *nc = e != NULL ? e->nc : own;
    enum verdict_reason r = VERDICT_REASON_OK;

    for (size_t i = 0; nc != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const char *why = nc_is_own_form(g->type) ? nc_check_name(nc, g) : NULL;
        if (why != NULL) {
            r = pathval_failure_set(f, VERDICT_REASON_NAME_CONSTRAINTS, chain, d,
                                    "%s (constraint of depth %zu)", why, j);
            break;
        }
    }
    NAME_CONSTRAINTS_free(own);
    return r;
}

enum verdict_reason nc_check_path(struct pathval_failure *f, const STACK_OF(X509) * chain,
                                  const struct pathval_exts *px)
{
    size_t n = sk_X509_num(chain);
    enum verdict_reason r = VERDICT_REASON_OK;

    for (size_t d = 0; d + 1 < n && r == VERDICT_REASON_OK; d++) {
        X509 *x = sk_X509_value(chain, d);
        GENERAL_NAMES *gens;
        bool owned;

        /* RFC 5280 6.1.3 (b): a self-issued CA certificate is exempt. */
        if (d > 0 && (X509_get_extension_flags(x) & EXFLAG_SI))
            continue;
        gens = cert_san(px, x, d == 0, &owned);
        for (size_t j = d + 1; gens != NULL && j < n && r == VERDICT_REASON_OK; j++)
            r = check_under(f, chain, px, gens, d, j);
        if (owned)
            GENERAL_NAMES_free(gens);
    }
    return r;
}
