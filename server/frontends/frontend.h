/* Shared part of the front ends that call certval in their own protocol
 * (docs/frontends.md): Envoy ext_authz (envoy.c), nginx auth_request
 * (nginx_http.c) and the HAProxy SPOE agent (spoe.c).
 *
 * Each front end turns what it receives into a |struct frontend_certs| (the
 * DER certificates, leaf first) and a |struct frontend_claims|, and asks
 * frontend_check: the same validator_check_chain (or validator_try_cached)
 * on the same configuration snapshot, deny list, CRL cache and verdict cache
 * as certval.v1.Validator, with the same metrics and audit log. No verdict
 * rule lives here.
 *
 * Conventions: 0 on success, -1 on failure. Thread-safe unless said. */
#ifndef CERTVAL_FRONTEND_H
#define CERTVAL_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "validator.h"

struct frontends_config;
struct reload_snapshot;

/* Certificates accepted from one front-end request: the validator's own
 * limit (limits.max_chain_certs) refuses more, this only bounds memory. */
#define FRONTEND_MAX_CERTS 16
/* Bytes of certificate input (PEM, URL-encoded or DER) one request may carry. */
#define FRONTEND_MAX_INPUT (64u * 1024u)
/* Bytes of a claim (tenant, device, user). */
#define FRONTEND_MAX_CLAIM 256

/* DER certificates, leaf first; each |der[i]| is owned. */
struct frontend_certs {
    uint8_t *der[FRONTEND_MAX_CERTS];
    size_t len[FRONTEND_MAX_CERTS];
    size_t n;
};

/* The request's claims, NUL-terminated ("" when absent). */
struct frontend_claims {
    char tenant[FRONTEND_MAX_CLAIM];
    char device[FRONTEND_MAX_CLAIM];
    char user[FRONTEND_MAX_CLAIM];
};

/* frontend_certs_clear frees what |c| holds and empties it. */
void frontend_certs_clear(struct frontend_certs *c);

/* frontend_certs_add_der appends a copy of |der|. Fails when |c| is full. */
int frontend_certs_add_der(struct frontend_certs *c, const uint8_t *der, size_t len);

/* frontend_certs_add_der_list appends every certificate of |buf|, DER
 * certificates concatenated (HAProxy's ssl_c_chain_der). Fails on bytes that
 * are not a sequence of complete DER SEQUENCEs. */
int frontend_certs_add_der_list(struct frontend_certs *c, const uint8_t *buf, size_t len);

/* frontend_certs_add_pem appends every CERTIFICATE block of |pem| (in
 * order). Fails when |pem| holds no certificate, a block that is not
 * base64, or more certificates than fit. */
int frontend_certs_add_pem(struct frontend_certs *c, const char *pem, size_t len);

/* frontend_url_decode decodes %XX escapes (and '+' as a space is NOT
 * decoded: nginx and Envoy escape with %XX only) of |in| into a new
 * NUL-terminated string in |*out| (caller frees), its length in |*out_len|.
 * Fails on a bad escape, a NUL byte or input over FRONTEND_MAX_INPUT. */
int frontend_url_decode(char **out, size_t *out_len, const char *in, size_t len);

/* frontend_xfcc_certs reads Envoy's x-forwarded-client-cert header |xfcc|:
 * the last element (the one the nearest Envoy set), its Chain= value, or
 * Cert= when it has no chain, URL-decoded PEM, appended to |c|. Returns 1
 * when certificates were added, 0 when the element carries neither key, -1
 * when the header or the PEM is malformed. */
int frontend_xfcc_certs(struct frontend_certs *c, const char *xfcc, size_t len);

/* frontend_claim_copy copies |len| bytes of |value| into |out| (capacity
 * FRONTEND_MAX_CLAIM) as a C string. Fails when it is too long or holds a
 * NUL or a control character. */
int frontend_claim_copy(char *out, const char *value, size_t len);

/* frontend_tenant_for_host returns the tenant that frontends.tenant_by_host
 * maps |host| (port stripped, compared without case) to, or NULL. */
const char *frontend_tenant_for_host(const struct frontends_config *f, const char *host,
                                     size_t len);

/* frontend_check_cached answers from the verdict cache of |src| only (a
 * few microseconds, no signature work): true with |out| filled, recorded in
 * the metrics and audit log, or false when a full validation is needed
 * (also when |src| has no verdict cache). */
bool frontend_check_cached(struct verdict *out, enum metrics_frontend fe,
                           const struct revocation_sources *src, const struct reload_snapshot *snap,
                           const struct frontend_certs *c, const struct frontend_claims *cl,
                           int64_t now);

/* frontend_check validates |c| with the claims |cl| on |snap| against the
 * revocation sources |src| (the server's own: CRL cache, deny list, verdict
 * cache) exactly as Validate does (validator_check_chain), records the
 * verdict in the
 * metrics (also labelled |fe|) and the audit log, and fills |out|. The
 * caller must be a registered RCU reader (certval_rcu_reader_register). */
void frontend_check(struct verdict *out, enum metrics_frontend fe,
                    const struct revocation_sources *src, const struct reload_snapshot *snap,
                    const struct frontend_certs *c, const struct frontend_claims *cl, int64_t now);

/* frontend_malformed fills |out| with DENY MALFORMED naming |why|, records
 * it like a verdict, for input that never reached the validator (a bad
 * escape, bad PEM). */
void frontend_malformed(struct verdict *out, enum metrics_frontend fe,
                        const struct frontend_claims *cl, const char *why);

/* ---- listeners (certvald.c) ---- */

/* frontends_start starts the nginx auth_request endpoint and the SPOE agent
 * that |f| enables (the Envoy service is served by the gRPC listeners);
 * both validate against |src|, which must outlive frontends_stop. Returns
 * 0, or -1 with the reason in |err|; on failure nothing is left running.
 * Not thread-safe: called by the main thread. */
int frontends_start(const struct frontends_config *f, const struct revocation_sources *src,
                    char *err, size_t errlen);

/* frontends_stop stops what frontends_start started (idempotent). */
void frontends_stop(void);

#endif
