/* Pure helpers of the HTTP CRL fetcher (crl_fetch_http.h). */
#include "crl_fetch_http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <openssl/asn1.h>
#include <openssl/bytestring.h>
#include <openssl/x509v3.h>

#include "validator.h"

/* Copies field |f| of |url| into |out|; -1 when it does not fit. */
static int url_field(char *out, size_t cap, const char *url, const struct http_parser_url *u,
                     enum http_parser_url_fields f)
{
    size_t len = u->field_data[f].len;

    if (len >= cap)
        return -1;
    memcpy(out, url + u->field_data[f].off, len);
    out[len] = '\0';
    return 0;
}

static bool has_ctl_or_space(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return true;
    }
    return false;
}

int crl_fetch_parse_url(struct crl_fetch_url *out, const char *url, char *err, size_t errlen)
{
    struct http_parser_url u;
    size_t len = strlen(url);
    int n;

    memset(out, 0, sizeof(*out));
    if (strncasecmp(url, "https://", 8) == 0) {
        snprintf(err, errlen, "https:// is not supported (CRLs are signed; use http://)");
        return -1;
    }
    if (strncasecmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "not an http:// URL");
        return -1;
    }
    if (len >= CRL_FETCH_URL_MAX || has_ctl_or_space(url)) {
        snprintf(err, errlen, len >= CRL_FETCH_URL_MAX ? "URL too long" : "space or control "
                                                                          "character in URL");
        return -1;
    }
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, len, 0, &u) != 0 || (u.field_set & (1u << UF_HOST)) == 0 ||
        u.field_data[UF_HOST].len == 0) {
        snprintf(err, errlen, "malformed URL");
        return -1;
    }
    if ((u.field_set & (1u << UF_USERINFO)) != 0) {
        snprintf(err, errlen, "user information in a CRL URL is not supported");
        return -1;
    }
    if (url_field(out->host, sizeof(out->host), url, &u, UF_HOST) < 0) {
        snprintf(err, errlen, "host name too long");
        return -1;
    }
    /* http_parser gives an IPv6 literal without its brackets. */
    out->ipv6_literal = url[u.field_data[UF_HOST].off - 1] == '[';
    if ((u.field_set & (1u << UF_PORT)) != 0 && u.port == 0) {
        snprintf(err, errlen, "port 0");
        return -1;
    }
    snprintf(out->port, sizeof(out->port), "%u",
             (u.field_set & (1u << UF_PORT)) != 0 ? (unsigned)u.port : 80u);
    if ((u.field_set & (1u << UF_PATH)) != 0) {
        size_t end = (u.field_set & (1u << UF_QUERY)) != 0
                         ? (size_t)u.field_data[UF_QUERY].off + u.field_data[UF_QUERY].len
                         : (size_t)u.field_data[UF_PATH].off + u.field_data[UF_PATH].len;

        n = snprintf(out->target, sizeof(out->target), "%.*s",
                     (int)(end - u.field_data[UF_PATH].off), url + u.field_data[UF_PATH].off);
    } else if ((u.field_set & (1u << UF_QUERY)) != 0) {
        n = snprintf(out->target, sizeof(out->target), "/?%.*s", (int)u.field_data[UF_QUERY].len,
                     url + u.field_data[UF_QUERY].off);
    } else {
        n = snprintf(out->target, sizeof(out->target), "/");
    }
    if (n < 0 || (size_t)n >= sizeof(out->target)) {
        snprintf(err, errlen, "URL too long");
        return -1;
    }
    return 0;
}

/* Length of "http://authority" at the start of |base|. */
static size_t origin_len(const char *base)
{
    const char *p = base + 7;

    return 7 + strcspn(p, "/?#");
}

int crl_fetch_resolve_location(char *out, size_t cap, const char *base, const char *location,
                               char *err, size_t errlen)
{
    size_t olen = origin_len(base);
    int n;

    if (location[0] == '\0' || has_ctl_or_space(location)) {
        snprintf(err, errlen, "empty or malformed Location");
        return -1;
    }
    if (strncasecmp(location, "https://", 8) == 0) {
        snprintf(err, errlen, "redirect to https:// refused (CRLs are fetched over http:// only)");
        return -1;
    }
    if (strncasecmp(location, "http://", 7) == 0) {
        n = snprintf(out, cap, "%s", location);
    } else if (location[0] == '/' && location[1] == '/') {
        n = snprintf(out, cap, "http:%s", location);
    } else if (location[0] == '/') {
        n = snprintf(out, cap, "%.*s%s", (int)olen, base, location);
    } else if (strcspn(location, ":/?#") < strlen(location) &&
               location[strcspn(location, ":/?#")] == ':') {
        /* A scheme before any '/', '?' or '#' (RFC 3986 3.1). */
        snprintf(err, errlen, "redirect to a non-http URL refused");
        return -1;
    } else {
        /* Relative path: replace the last segment of the base path. */
        const char *path = base + olen;
        size_t plen = strcspn(path, "?#");
        size_t dir = plen;

        while (dir > 0 && path[dir - 1] != '/')
            dir--;
        if (dir == 0)
            n = snprintf(out, cap, "%.*s/%s", (int)olen, base, location);
        else
            n = snprintf(out, cap, "%.*s%.*s%s", (int)olen, base, (int)dir, path, location);
    }
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errlen, "redirect URL too long");
        return -1;
    }
    return 0;
}

int crl_fetch_build_request(char *out, size_t cap, size_t *out_len, const struct crl_fetch_url *u,
                            const char *etag, const char *last_modified, char *err,
                            size_t errlen)
{
    char host[300];
    int n;

    *out_len = 0;
    etag = etag != NULL ? etag : "";
    last_modified = last_modified != NULL ? last_modified : "";
    /* A stored validator with CR/LF would let a server inject headers. */
    if (strpbrk(etag, "\r\n") != NULL || strpbrk(last_modified, "\r\n") != NULL) {
        snprintf(err, errlen, "validator with CR or LF");
        return -1;
    }
    if (strcmp(u->port, "80") == 0)
        snprintf(host, sizeof(host), u->ipv6_literal ? "[%s]" : "%s", u->host);
    else
        snprintf(host, sizeof(host), u->ipv6_literal ? "[%s]:%s" : "%s:%s", u->host, u->port);
    n = snprintf(out, cap,
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: certval-crl-fetch\r\n"
                 "Accept: application/pkix-crl, application/x-pkcs7-crl, */*\r\n"
                 "Connection: close\r\n%s%s%s%s%s%s\r\n",
                 u->target, host, etag[0] ? "If-None-Match: " : "", etag, etag[0] ? "\r\n" : "",
                 last_modified[0] ? "If-Modified-Since: " : "", last_modified,
                 last_modified[0] ? "\r\n" : "");
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errlen, "request too long");
        return -1;
    }
    *out_len = (size_t)n;
    return 0;
}

uint64_t crl_fetch_backoff_ms(unsigned failures, uint32_t max_backoff_s, uint32_t rnd)
{
    uint64_t cap = (uint64_t)(max_backoff_s > 0 ? max_backoff_s : 1) * 1000;
    uint64_t base = 1000;

    /* Doubling stops at the cap; 40 doublings exceed any uint32 seconds. */
    for (unsigned i = 1; i < failures && i < 40 && base < cap; i++)
        base *= 2;
    if (base > cap)
        base = cap;
    return base / 2 + (uint64_t)rnd % (base / 2 + 1);
}

uint32_t crl_fetch_next_success(int64_t now, int64_t next_update, uint32_t refresh_ahead_s,
                                uint32_t max_interval_s)
{
    uint32_t floor_s = max_interval_s < 30 ? max_interval_s : 30;
    int64_t wait = max_interval_s;

    if (next_update > 0 && next_update - (int64_t)refresh_ahead_s - now < wait)
        wait = next_update - (int64_t)refresh_ahead_s - now;
    if (wait < floor_s)
        wait = floor_s;
    return wait < 1 ? 1 : (uint32_t)wait;
}

/* Reads one Time (UTCTime or GeneralizedTime) from |cbs|. */
static int read_time(int64_t *out, CBS *cbs)
{
    CBS elem;
    const uint8_t *p;
    ASN1_TIME *t;
    int rc;

    if (!CBS_get_any_asn1_element(cbs, &elem, NULL, NULL))
        return -1;
    p = CBS_data(&elem);
    t = d2i_ASN1_TIME(NULL, &p, (long)CBS_len(&elem));
    if (t == NULL)
        return -1;
    rc = cv_asn1_time_to_unix(out, t);
    ASN1_TIME_free(t);
    return rc;
}

int crl_fetch_crl_times(int64_t *out_this_update, int64_t *out_next_update, const uint8_t *der,
                        size_t len)
{
    CBS in, crl, tbs, skip;

    *out_this_update = 0;
    *out_next_update = 0;
    CBS_init(&in, der, len);
    /* RFC 5280 5.1: CertificateList ::= SEQUENCE { tbsCertList SEQUENCE {
     * version INTEGER OPTIONAL, signature, issuer, thisUpdate, nextUpdate
     * OPTIONAL, ... } ... } */
    if (!CBS_get_asn1(&in, &crl, CBS_ASN1_SEQUENCE) || !CBS_get_asn1(&crl, &tbs, CBS_ASN1_SEQUENCE))
        return -1;
    if (CBS_peek_asn1_tag(&tbs, CBS_ASN1_INTEGER) && !CBS_get_asn1(&tbs, &skip, CBS_ASN1_INTEGER))
        return -1;
    if (!CBS_get_asn1(&tbs, &skip, CBS_ASN1_SEQUENCE) ||
        !CBS_get_asn1(&tbs, &skip, CBS_ASN1_SEQUENCE))
        return -1;
    if (read_time(out_this_update, &tbs) < 0)
        return -1;
    if ((CBS_peek_asn1_tag(&tbs, CBS_ASN1_UTCTIME) ||
         CBS_peek_asn1_tag(&tbs, CBS_ASN1_GENERALIZEDTIME)) &&
        read_time(out_next_update, &tbs) < 0)
        return -1;
    return 0;
}

size_t crl_fetch_cert_dp_uris(X509 *x, void (*fn)(const char *uri, void *arg), void *arg)
{
    STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
    size_t count = 0;

    for (size_t i = 0; dps != NULL && i < sk_DIST_POINT_num(dps); i++) {
        const DIST_POINT *dp = sk_DIST_POINT_value(dps, i);

        /* type 0: fullName; 1 (nameRelativeToCRLIssuer) is not a URL. */
        if (dp->distpoint == NULL || dp->distpoint->type != 0)
            continue;
        for (size_t j = 0; j < sk_GENERAL_NAME_num(dp->distpoint->name.fullname); j++) {
            const GENERAL_NAME *gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, j);
            char uri[CRL_FETCH_URL_MAX];
            int len;

            if (gn->type != GEN_URI)
                continue;
            len = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
            if (len <= 0 || (size_t)len >= sizeof(uri))
                continue;
            memcpy(uri, ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier), (size_t)len);
            uri[len] = '\0';
            if (strlen(uri) != (size_t)len)
                continue;
            fn(uri, arg);
            count++;
        }
    }
    sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
    return count;
}
