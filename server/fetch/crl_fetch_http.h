/* Pure helpers of the HTTP CRL fetcher (server/fetch/crl_fetch.c), public to
 * the reload code and the tests: URL parsing,
 * redirect resolution, the request text, the fetch schedule and the times of
 * a DER CRL. No I/O, no global state: they live in certval_runtime so the
 * Criterion test (tests/test_crl_fetch.c) links them without the server.
 *
 * Conventions: 0 on success, -1 with a message in |err| on failure, unless
 * stated. All are thread-safe. */
#ifndef CERTVAL_CRL_FETCH_HTTP_H
#define CERTVAL_CRL_FETCH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>

/* Longest URL handled (configured, from a certificate, or a Location). */
#define CRL_FETCH_URL_MAX 2048

/* An http:// URL cut into what a request needs. */
struct crl_fetch_url {
    char host[256];                 /* without the brackets of an IPv6 literal */
    char port[8];                   /* decimal; "80" when the URL has none */
    bool ipv6_literal;              /* the Host header needs brackets again */
    char target[CRL_FETCH_URL_MAX]; /* path and query; "/" when empty; no fragment */
};

/* crl_fetch_parse_url parses |url|, which must be "http://HOST[:PORT][/PATH]
 * [?QUERY]" (scheme in any case). Refused: https:// (with its own message:
 * CRLs are signed, TLS is not spoken), any other scheme, userinfo, an empty
 * host, port 0, control characters or spaces, and anything too long. */
int crl_fetch_parse_url(struct crl_fetch_url *out, const char *url, char *err, size_t errlen);

/* crl_fetch_resolve_location writes into |out| (capacity |cap|) the
 * absolute URL a redirect's Location value |location| names, relative to
 * |base| (an absolute http:// URL): absolute "http://...", scheme-relative
 * "//host/...", absolute-path "/..." or a relative path (RFC 7231 7.1.2,
 * RFC 3986 5.2 without dot-segment removal: servers resolve those). A
 * Location with another scheme (https:// included) is refused. */
int crl_fetch_resolve_location(char *out, size_t cap, const char *base, const char *location,
                               char *err, size_t errlen);

/* crl_fetch_build_request writes an HTTP/1.1 GET for |u| into |out|, with
 * If-None-Match when |etag| is non-empty and If-Modified-Since when
 * |last_modified| is non-empty (NULL means empty). Sets |*out_len|.
 * Refused: values holding CR or LF, or a request longer than |cap|. */
int crl_fetch_build_request(char *out, size_t cap, size_t *out_len, const struct crl_fetch_url *u,
                            const char *etag, const char *last_modified, char *err,
                            size_t errlen);

/* crl_fetch_backoff_ms returns the wait before retry number |failures|
 * (1 = after the first failure): 1 s, 2 s, 4 s, ... capped at
 * |max_backoff_s| seconds, then "equal jitter" from |rnd|: the wait is
 * drawn in [base/2, base]. |failures| 0 is treated as 1. */
uint64_t crl_fetch_backoff_ms(unsigned failures, uint32_t max_backoff_s, uint32_t rnd);

/* crl_fetch_next_success returns, in seconds from now (at least 1), when
 * to fetch again after a success: at nextUpdate - |refresh_ahead_s| but no
 * later than |max_interval_s| from now, and no sooner than
 * min(30 s, |max_interval_s|) so that a CRL inside its refresh window does
 * not make the fetcher spin. |next_update| 0 (no nextUpdate, or unknown)
 * means |max_interval_s|. */
uint32_t crl_fetch_next_success(int64_t now, int64_t next_update, uint32_t refresh_ahead_s,
                                uint32_t max_interval_s);

/* crl_fetch_crl_times reads thisUpdate and nextUpdate (0 when absent) from
 * the TBSCertList of the DER CRL |der| without parsing the revoked list,
 * so it costs the same for a 1M-entry CRL as for an empty one. Returns 0,
 * or -1 when the outer structure is not a CRL (the cache gives the full
 * reason when the CRL is pushed). */
int crl_fetch_crl_times(int64_t *out_this_update, int64_t *out_next_update, const uint8_t *der,
                        size_t len);

/* crl_fetch_cert_dp_uris calls |fn| with each fullName URI of |x|'s
 * cRLDistributionPoints (RFC 5280 4.2.1.13), whatever its scheme; URIs
 * with an embedded NUL or of CRL_FETCH_URL_MAX bytes or more are skipped.
 * Returns how many |fn| got. */
size_t crl_fetch_cert_dp_uris(X509 *x, void (*fn)(const char *uri, void *arg), void *arg);

#endif
