/* certval configuration, pass 3: checks a schema cannot express (ranges,
 * uniqueness, consistency, files), defaults, relative paths resolved
 * against the configuration's folder, and the struct certval_config they
 * fill (config_internal.h). Errors name the line through the index. */
#include "config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- building the configuration ---- */

static void cfg_fail(struct cfg_ctx *ctx, const char *ypath, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* cfg_fail reports a problem with the key or entry |ypath| ("" = the whole
 * file), at its line when the file has it. */
static void cfg_fail(struct cfg_ctx *ctx, const char *ypath, const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ypath[0] == '\0')
        cfg_fail_line(ctx, 0, "%s", msg);
    else
        cfg_fail_line(ctx, cfg_index_line(&ctx->idx, ypath), "%s: %s", ypath, msg);
}

/* cfg_uint applies the default and checks [min, max] for an optional
 * number. */
static int cfg_uint(struct cfg_ctx *ctx, uint32_t *out, const uint32_t *raw, const char *ypath,
                    uint32_t def, uint32_t min, uint32_t max)
{
    *out = raw != NULL ? *raw : def;
    if (*out < min || *out > max) {
        cfg_fail(ctx, ypath, "%u is out of range [%u, %u]", *out, min, max);
        return -1;
    }
    return 0;
}

/* cfg_resolve returns |p| made absolute against the config folder (a new
 * string), or NULL on allocation failure. */
static char *cfg_resolve(const struct cfg_ctx *ctx, const char *p)
{
    size_t n;
    char *out;

    if (p[0] == '/')
        return strdup(p);
    n = strlen(ctx->dir) + 1 + strlen(p) + 1;
    out = malloc(n);
    if (out != NULL)
        snprintf(out, n, "%s/%s", ctx->dir, p);
    return out;
}

void cfg_strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* cfg_check_file refuses |path| unless it is a readable regular file: a
 * typo is reported with its line here rather than by the validator later. */
static int cfg_check_file(struct cfg_ctx *ctx, const char *path, const char *ypath)
{
    struct stat st;

    if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
        cfg_fail(ctx, ypath, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        cfg_fail(ctx, ypath, "%s: not a regular file", path);
        return -1;
    }
    return 0;
}

/* cfg_files copies a list of paths, resolved, checking that each names a
 * readable regular file when |must_exist|. */
static int cfg_files(struct cfg_ctx *ctx, char ***out, size_t *n_out, char *const *raw, unsigned n,
                     const char *ypath, bool must_exist)
{
    char item[CFG_YPATH_MAX];
    char **v = NULL;

    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return 0;
    v = calloc(n, sizeof(*v));
    if (v == NULL)
        goto oom;
    for (unsigned i = 0; i < n; i++) {
        v[i] = cfg_resolve(ctx, raw[i]);
        if (v[i] == NULL)
            goto oom;
        snprintf(item, sizeof(item), "%s[%u]", ypath, i);
        if (must_exist && cfg_check_file(ctx, v[i], item) != 0)
            goto err;
    }
    *out = v;
    *n_out = n;
    return 0;
oom:
    cfg_fail(ctx, ypath, "out of memory");
err:
    cfg_strv_free(v, n);
    return -1;
}

/* cfg_strv_dup copies a list of strings as they are. */
static int cfg_strv_dup(struct cfg_ctx *ctx, char ***out, size_t *n_out, char *const *raw,
                        unsigned n, const char *ypath)
{
    char **v = NULL;

    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return 0;
    v = calloc(n, sizeof(*v));
    if (v == NULL)
        goto err;
    for (unsigned i = 0; i < n; i++) {
        v[i] = strdup(raw[i]);
        if (v[i] == NULL)
            goto err;
    }
    *out = v;
    *n_out = n;
    return 0;
err:
    cfg_strv_free(v, n);
    cfg_fail(ctx, ypath, "out of memory");
    return -1;
}

/* cfg_oid_ok accepts dotted decimal OIDs with at least two arcs. */
static bool cfg_oid_ok(const char *s)
{
    int arcs = 0;

    for (const char *p = s; *p != '\0'; p++) {
        size_t digits = strspn(p, "0123456789");

        if (digits == 0)
            return false;
        arcs++;
        p += digits;
        if (*p == '\0')
            break;
        if (*p != '.')
            return false;
    }
    return arcs >= 2;
}

/* cfg_listener_ok checks "HOST:PORT" or "[V6]:PORT", port 0..65535 (0
 * lets the kernel choose, for tests). */
static bool cfg_listener_ok(const char *s)
{
    const char *colon;
    char *end = NULL;
    unsigned long port;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');

        if (rb == NULL || rb == s + 1 || rb[1] != ':')
            return false;
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || colon == s || memchr(s, ':', (size_t)(colon - s)) != NULL)
            return false;
    }
    if (colon[1] < '0' || colon[1] > '9')
        return false;
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    return errno == 0 && *end == '\0' && port <= 65535;
}

static int cfg_build_listen(struct cfg_ctx *ctx, struct certval_config *c,
                            const struct raw_listen *l)
{
    if (l != NULL) {
        for (unsigned i = 0; i < l->tcp_count; i++) {
            char item[CFG_YPATH_MAX];

            snprintf(item, sizeof(item), "listen.tcp[%u]", i);
            if (!cfg_listener_ok(l->tcp[i])) {
                cfg_fail(ctx, item, "\"%s\" is not HOST:PORT", l->tcp[i]);
                return -1;
            }
        }
        if (cfg_strv_dup(ctx, &c->tcp, &c->n_tcp, l->tcp, l->tcp_count, "listen.tcp") != 0)
            return -1;
        if (l->unix_path != NULL && (c->unix_socket = cfg_resolve(ctx, l->unix_path)) == NULL) {
            cfg_fail(ctx, "listen.unix", "out of memory");
            return -1;
        }
    }
    if (c->n_tcp == 0 && c->unix_socket == NULL) {
        cfg_fail(ctx, l != NULL ? "listen" : "", "no listener: set listen.tcp or listen.unix");
        return -1;
    }
    return 0;
}

static int cfg_build_threads_limits(struct cfg_ctx *ctx, struct certval_config *c,
                                    const struct raw_config *r)
{
    static const struct raw_threads no_threads;
    static const struct raw_limits no_limits;
    static const struct raw_shutdown no_shutdown;
    const struct raw_threads *t = r->threads != NULL ? r->threads : &no_threads;
    const struct raw_limits *l = r->limits != NULL ? r->limits : &no_limits;
    const struct raw_shutdown *s = r->shutdown != NULL ? r->shutdown : &no_shutdown;
    struct validator_config *v = &c->validator;

    if (cfg_uint(ctx, &c->transport_threads, t->transport, "threads.transport", 0, 0, 64) ||
        cfg_uint(ctx, &c->worker_threads, t->workers, "threads.workers", 0, 0, 256) ||
        cfg_uint(ctx, &c->max_chains_per_batch, l->max_chains_per_batch,
                 "limits.max_chains_per_batch", 1024, 1, 65536) ||
        cfg_uint(ctx, &v->max_chain_certs, l->max_certs_per_chain, "limits.max_certs_per_chain", 8,
                 1, 32) ||
        cfg_uint(ctx, &v->max_cert_bytes, l->max_cert_bytes, "limits.max_cert_bytes", 16384, 256,
                 1048576) ||
        cfg_uint(ctx, &c->max_message_bytes, l->max_message_bytes, "limits.max_message_bytes",
                 4194304, 4096, 1073741824) ||
        cfg_uint(ctx, &c->split_min_chains, l->split_min_chains, "limits.split_min_chains", 16, 1,
                 65536) ||
        cfg_uint(ctx, &c->max_queued_chains_per_worker, l->max_queued_chains_per_worker,
                 "limits.max_queued_chains_per_worker", 0, 0, 1048576) ||
        cfg_uint(ctx, &c->max_inflight_chains, l->max_inflight_chains,
                 "limits.max_inflight_chains", 0, 0, 16777216) ||
        cfg_uint(ctx, &c->max_inflight_request_bytes, l->max_inflight_request_bytes,
                 "limits.max_inflight_request_bytes", 0, 0, 1073741824) ||
        cfg_uint(ctx, &c->max_concurrent_streams, l->max_concurrent_streams,
                 "limits.max_concurrent_streams", 100, 1, 65536) ||
        cfg_uint(ctx, &c->max_queue_delay_ms, l->max_queue_delay_ms, "limits.max_queue_delay_ms",
                 1000, 1, 600000) ||
        cfg_uint(ctx, &c->max_transport_memory_bytes, l->max_transport_memory_bytes,
                 "limits.max_transport_memory_bytes", 0, 0, UINT32_MAX) ||
        cfg_uint(ctx, &c->drain_grace_seconds, s->drain_grace_seconds,
                 "shutdown.drain_grace_seconds", 20, 0, 3600))
        return -1;
    /* A smaller quota would cancel a single message of the allowed size. */
    if (c->max_transport_memory_bytes != 0 &&
        c->max_transport_memory_bytes < c->max_message_bytes) {
        cfg_fail(ctx, "limits.max_transport_memory_bytes",
                 "%u is below limits.max_message_bytes (%u): 0 derives it",
                 c->max_transport_memory_bytes, c->max_message_bytes);
        return -1;
    }
    return 0;
}

static int cfg_build_trust(struct cfg_ctx *ctx, struct certval_config *c, const struct raw_trust *t)
{
    struct validator_config *v = &c->validator;

    if (t == NULL || t->anchors_count == 0) {
        cfg_fail(ctx, t != NULL ? "trust" : "", "no trust anchor: set trust.anchors");
        return -1;
    }
    if (cfg_files(ctx, &v->anchor_files, &v->n_anchor_files, t->anchors, t->anchors_count,
                  "trust.anchors", true) ||
        cfg_files(ctx, &v->intermediate_files, &v->n_intermediate_files, t->intermediates,
                  t->intermediates_count, "trust.intermediates", true) ||
        cfg_uint(ctx, &v->clock_skew_seconds, t->clock_skew_seconds, "trust.clock_skew_seconds",
                 300, 0, 86400) ||
        cfg_uint(ctx, &v->max_depth, t->max_depth, "trust.max_depth", 8, 2, 32) ||
        cfg_uint(ctx, &v->max_path_attempts, t->max_path_attempts, "trust.max_path_attempts", 16, 1,
                 1024))
        return -1;
    for (unsigned i = 0; i < t->policies_count; i++) {
        char item[CFG_YPATH_MAX];

        snprintf(item, sizeof(item), "trust.policies[%u]", i);
        if (!cfg_oid_ok(t->policies[i])) {
            cfg_fail(ctx, item, "\"%s\" is not a dotted OID", t->policies[i]);
            return -1;
        }
    }
    if (cfg_strv_dup(ctx, &v->policy_oids, &v->n_policy_oids, t->policies, t->policies_count,
                     "trust.policies") != 0)
        return -1;
    v->explicit_policy = t->explicit_policy != NULL && *t->explicit_policy;
    return 0;
}

/* cfg_http_url accepts "http://HOST[:PORT][/...]" (scheme in any case).
 * https:// gets its own message: CRLs are signed, so the fetcher does not
 * speak TLS (docs/revocation.md). The full parse is the fetcher's. */
static int cfg_http_url(struct cfg_ctx *ctx, const char *url, const char *ypath)
{
    const char *host = url + 7;

    if (strncasecmp(url, "https://", 8) == 0) {
        cfg_fail(ctx, ypath,
                 "\"%s\": https:// is not supported (CRLs are signed; serve them over http://)",
                 url);
        return -1;
    }
    if (strncasecmp(url, "http://", 7) != 0 || host[0] == '\0' || host[0] == '/' ||
        strpbrk(url, " \t\r\n") != NULL) {
        cfg_fail(ctx, ypath, "\"%s\" is not an http:// URL", url);
        return -1;
    }
    return 0;
}

/* cfg_build_fetch reads revocation.fetch; absent means no URLs and the
 * defaults. */
static int cfg_build_fetch(struct cfg_ctx *ctx, struct certval_config *c, const struct raw_fetch *f)
{
    static const struct raw_fetch none;
    char item[CFG_YPATH_MAX];

    if (f == NULL)
        f = &none;
    if (cfg_strv_dup(ctx, &c->fetch.urls, &c->fetch.n_urls, f->urls, f->urls_count,
                     "revocation.fetch.urls") != 0)
        return -1;
    for (size_t i = 0; i < c->fetch.n_urls; i++) {
        snprintf(item, sizeof(item), "revocation.fetch.urls[%zu]", i);
        if (cfg_http_url(ctx, c->fetch.urls[i], item) != 0)
            return -1;
    }
    c->fetch.from_certificates = f->from_certificates != NULL && *f->from_certificates;
    return cfg_uint(ctx, &c->fetch.timeout_ms, f->timeout_ms, "revocation.fetch.timeout_ms", 10000,
                    100, 600000) ||
           cfg_uint(ctx, &c->fetch.max_bytes, f->max_bytes, "revocation.fetch.max_bytes",
                    64u << 20, 1024, 1u << 30) ||
           cfg_uint(ctx, &c->fetch.max_redirects, f->max_redirects,
                    "revocation.fetch.max_redirects", 3, 0, 20) ||
           cfg_uint(ctx, &c->fetch.refresh_ahead_seconds, f->refresh_ahead_seconds,
                    "revocation.fetch.refresh_ahead_seconds", 3600, 0, 2592000) ||
           cfg_uint(ctx, &c->fetch.max_interval_seconds, f->max_interval_seconds,
                    "revocation.fetch.max_interval_seconds", 3600, 1, 2592000) ||
           cfg_uint(ctx, &c->fetch.max_backoff_seconds, f->max_backoff_seconds,
                    "revocation.fetch.max_backoff_seconds", 300, 1, 86400);
}

static int cfg_build_revocation(struct cfg_ctx *ctx, struct certval_config *c,
                                const struct raw_config *r)
{
    const struct raw_revocation *rv = r->revocation;
    struct stat st;

    if (rv != NULL) {
        if (cfg_files(ctx, &c->crl_files, &c->n_crl_files, rv->crl_files, rv->crl_files_count,
                      "revocation.crl_files", true) != 0)
            return -1;
        if (rv->crl_dir != NULL) {
            c->crl_dir = cfg_resolve(ctx, rv->crl_dir);
            if (c->crl_dir == NULL || stat(c->crl_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
                cfg_fail(ctx, "revocation.crl_dir", "%s: not a directory", rv->crl_dir);
                return -1;
            }
        }
    }
    if (cfg_build_fetch(ctx, c, rv != NULL ? rv->fetch : NULL) != 0)
        return -1;
    if (r->state_dir != NULL && (c->state_dir = cfg_resolve(ctx, r->state_dir)) == NULL) {
        cfg_fail(ctx, "state_dir", "out of memory");
        return -1;
    }
    return 0;
}

static int cfg_build_observability(struct cfg_ctx *ctx, struct certval_config *c,
                                   const struct raw_config *r)
{
    static const struct raw_audit no_audit;
    const struct raw_audit *a = r->audit != NULL ? r->audit : &no_audit;

    if (r->metrics != NULL && r->metrics->listen != NULL) {
        if (strrchr(r->metrics->listen, ':') == NULL) {
            cfg_fail(ctx, "metrics.listen", "\"%s\" is not HOST:PORT", r->metrics->listen);
            return -1;
        }
        c->metrics_listen = strdup(r->metrics->listen);
        if (c->metrics_listen == NULL) {
            cfg_fail(ctx, "metrics.listen", "out of memory");
            return -1;
        }
    }
    if (r->admin != NULL) {
        if (strrchr(r->admin->listen, ':') == NULL) {
            cfg_fail(ctx, "admin.listen", "\"%s\" is not HOST:PORT", r->admin->listen);
            return -1;
        }
        c->admin_listen = strdup(r->admin->listen);
        c->admin_token_file = cfg_resolve(ctx, r->admin->token_file);
        if (c->admin_listen == NULL || c->admin_token_file == NULL) {
            cfg_fail(ctx, "admin", "out of memory");
            return -1;
        }
        if (cfg_check_file(ctx, c->admin_token_file, "admin.token_file") != 0)
            return -1;
    }
    if (cfg_uint(ctx, &c->admin_max_message_bytes,
                 r->admin != NULL ? r->admin->max_message_bytes : NULL, "admin.max_message_bytes",
                 256u << 20, 1u << 20, 1u << 30))
        return -1;
    c->audit_all_verdicts = a->all_verdicts != NULL && *a->all_verdicts;
    if (cfg_uint(ctx, &c->audit_max_lines_per_second, a->max_lines_per_second,
                 "audit.max_lines_per_second", 1000, 1, 1000000))
        return -1;
    {
        static const struct raw_vcache no_vcache;
        const struct raw_vcache *vc = r->verdict_cache != NULL ? r->verdict_cache : &no_vcache;

        return cfg_uint(ctx, &c->verdict_cache_max_entries, vc->max_entries,
                        "verdict_cache.max_entries", 200000, 0, 50000000) ||
               cfg_uint(ctx, &c->verdict_cache_max_megabytes, vc->max_megabytes,
                        "verdict_cache.max_megabytes", 256, 1, 65536);
    }
}

/* cfg_subject_attr_ok accepts the attribute names the validator reads, or a
 * dotted OID. */
static bool cfg_subject_attr_ok(const char *a)
{
    static const char *const names[] = {"CN", "O", "OU", "serialNumber", "UID"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(a, names[i]) == 0)
            return true;
    }
    return cfg_oid_ok(a);
}

/* cfg_ypath names a key under |base|, e.g. "profiles[1]" + ".kind". */
static void cfg_ypath(char *out, size_t outlen, const char *base, const char *suffix)
{
    int n = snprintf(out, outlen, "%s%s", base, suffix);

    /* Names are short; a truncated one would only lose its line number. */
    if (n < 0 || (size_t)n >= outlen)
        out[outlen - 1] = '\0';
}

static int cfg_build_id_source(struct cfg_ctx *ctx, struct id_source *out,
                               const struct raw_id_source *r, const char *ypath)
{
    const char *value = r->from == RAW_FROM_SAN_URI ? r->prefix : r->attribute;

    if (r->from == RAW_FROM_SAN_URI && (r->prefix == NULL || r->attribute != NULL)) {
        cfg_fail(ctx, ypath, "from: san_uri needs \"prefix\" (and no \"attribute\")");
        return -1;
    }
    if (r->from == RAW_FROM_SUBJECT && (r->attribute == NULL || r->prefix != NULL)) {
        cfg_fail(ctx, ypath, "from: subject needs \"attribute\" (and no \"prefix\")");
        return -1;
    }
    if (r->from == RAW_FROM_SUBJECT && !cfg_subject_attr_ok(r->attribute)) {
        cfg_fail(ctx, ypath,
                 "unknown subject attribute \"%s\" (CN, O, OU, serialNumber, UID or "
                 "a dotted OID)",
                 r->attribute);
        return -1;
    }
    out->type = r->from == RAW_FROM_SAN_URI ? ID_SOURCE_SAN_URI : ID_SOURCE_SUBJECT_ATTR;
    out->value = strdup(value);
    if (out->value == NULL) {
        cfg_fail(ctx, ypath, "out of memory");
        return -1;
    }
    return 0;
}

/* cfg_build_profile_ids reads tenant_id and device_id: a device profile
 * needs both, a tenant profile must not bind a device (tenant certificates
 * are shared by many devices). */
static int cfg_build_profile_ids(struct cfg_ctx *ctx, struct profile_config *p,
                                 const struct raw_profile *r, const char *base)
{
    char yp[CFG_YPATH_MAX];

    cfg_ypath(yp, sizeof(yp), base, ".tenant_id");
    if (cfg_build_id_source(ctx, &p->tenant_id, r->tenant_id, yp) != 0)
        return -1;
    cfg_ypath(yp, sizeof(yp), base, ".device_id");
    if (p->kind == CERT_KIND_DEVICE && r->device_id == NULL) {
        cfg_ypath(yp, sizeof(yp), base, ".kind");
        cfg_fail(ctx, yp, "a device profile needs device_id");
        return -1;
    }
    if (p->kind == CERT_KIND_TENANT && r->device_id != NULL) {
        cfg_fail(ctx, yp,
                 "a tenant profile cannot have device_id (tenant certificates are not "
                 "bound to a device)");
        return -1;
    }
    if (r->device_id != NULL && cfg_build_id_source(ctx, &p->device_id, r->device_id, yp) != 0)
        return -1;
    return 0;
}

/* cfg_build_profile_conformance reads the strict-rule switches
 * (docs/conformance.md): algorithms, min_rsa_bits, compat, max_depth.
 * 0 for min_rsa_bits and max_depth keeps the validator's defaults (2048,
 * or 1024 under legacy; trust.max_depth). */
static int cfg_build_profile_conformance(struct cfg_ctx *ctx, struct profile_config *p,
                                         const struct raw_profile *r, const char *base)
{
    char yp[CFG_YPATH_MAX];

    p->conformance.algorithms =
        r->algorithms != NULL ? (enum algorithm_policy) * r->algorithms : ALGORITHMS_STRICT;
    p->conformance.compat = r->compat != NULL && *r->compat;
    cfg_ypath(yp, sizeof(yp), base, ".min_rsa_bits");
    if (r->min_rsa_bits != NULL &&
        cfg_uint(ctx, &p->conformance.min_rsa_bits, r->min_rsa_bits, yp, 0, 1024, 16384) != 0)
        return -1;
    cfg_ypath(yp, sizeof(yp), base, ".max_depth");
    if (r->max_depth != NULL && cfg_uint(ctx, &p->max_depth, r->max_depth, yp, 0, 2, 32) != 0)
        return -1;
    return 0;
}

static int cfg_build_profile_policy(struct cfg_ctx *ctx, struct profile_config *p,
                                    const struct raw_profile *r, const char *base)
{
    char yp[CFG_YPATH_MAX];
    uint32_t def_days = p->kind == CERT_KIND_TENANT ? 396 : 1827;

    cfg_ypath(yp, sizeof(yp), base, ".max_validity_days");
    if (cfg_uint(ctx, &p->max_validity_days, r->max_validity_days, yp, def_days, 1, 36525) != 0)
        return -1;
    cfg_ypath(yp, sizeof(yp), base, ".crl_grace_seconds");
    if (cfg_uint(ctx, &p->crl_grace_seconds, r->crl_grace_seconds, yp, 3600, 0, 2592000) != 0)
        return -1;
    cfg_ypath(yp, sizeof(yp), base, ".required_eku");
    if (r->required_eku != NULL && !cfg_oid_ok(r->required_eku)) {
        cfg_fail(ctx, yp, "\"%s\" is not a dotted OID", r->required_eku);
        return -1;
    }
    if (r->required_eku != NULL && (p->required_eku = strdup(r->required_eku)) == NULL) {
        cfg_fail(ctx, yp, "out of memory");
        return -1;
    }
    /* Fail closed: without a word from the operator, the leaf is checked. */
    p->revocation =
        r->revocation != NULL ? (enum revocation_scope) * r->revocation : REVOCATION_LEAF;
    p->on_stale = r->on_stale != NULL ? (enum stale_policy) * r->on_stale : STALE_FAIL_CLOSED;
    return cfg_build_profile_conformance(ctx, p, r, base);
}

static int cfg_build_profile(struct cfg_ctx *ctx, struct profile_config *p,
                             const struct raw_profile *r, unsigned i)
{
    char base[CFG_YPATH_MAX], yp[CFG_YPATH_MAX];

    snprintf(base, sizeof(base), "profiles[%u]", i);
    cfg_ypath(yp, sizeof(yp), base, ".issuers");
    p->kind = (enum cert_kind)r->kind;
    p->name = strdup(r->name);
    if (p->name == NULL) {
        cfg_fail(ctx, base, "out of memory");
        return -1;
    }
    if (cfg_files(ctx, &p->issuer_files, &p->n_issuer_files, r->issuers, r->issuers_count, yp,
                  true) != 0)
        return -1;
    if (cfg_build_profile_ids(ctx, p, r, base) != 0)
        return -1;
    return cfg_build_profile_policy(ctx, p, r, base);
}

static int cfg_build_profiles(struct cfg_ctx *ctx, struct validator_config *v,
                              const struct raw_config *r)
{
    if (r->profiles_count == 0) {
        cfg_fail(ctx, "", "no profile: set profiles (at least one)");
        return -1;
    }
    v->profiles = calloc(r->profiles_count, sizeof(*v->profiles));
    if (v->profiles == NULL) {
        cfg_fail(ctx, "profiles", "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < r->profiles_count; i++) {
        char yp[CFG_YPATH_MAX];

        v->n_profiles = i + 1; /* so config_free frees what is built so far */
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(r->profiles[j].name, r->profiles[i].name) == 0) {
                snprintf(yp, sizeof(yp), "profiles[%u].name", i);
                cfg_fail(ctx, yp, "duplicate profile name \"%s\"", r->profiles[i].name);
                return -1;
            }
        }
        if (cfg_build_profile(ctx, &v->profiles[i], &r->profiles[i], i) != 0)
            return -1;
    }
    return 0;
}

static int cfg_build_tenants(struct cfg_ctx *ctx, struct validator_config *v,
                             const struct raw_config *r)
{
    if (r->tenants_count == 0)
        return 0;
    v->tenants = calloc(r->tenants_count, sizeof(*v->tenants));
    if (v->tenants == NULL) {
        cfg_fail(ctx, "tenants", "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < r->tenants_count; i++) {
        const struct raw_tenant *t = &r->tenants[i];
        char yp[CFG_YPATH_MAX];

        snprintf(yp, sizeof(yp), "tenants[%u].id", i);
        v->n_tenants = i + 1;
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(r->tenants[j].id, t->id) == 0) {
                cfg_fail(ctx, yp, "duplicate tenant id \"%s\"", t->id);
                return -1;
            }
        }
        v->tenants[i].id = strdup(t->id);
        if (v->tenants[i].id == NULL) {
            cfg_fail(ctx, yp, "out of memory");
            return -1;
        }
        /* Defaults are the strict ones: password required, device bound. */
        v->tenants[i].device_certificate_skips_password =
            t->device_certificate_skips_password != NULL && *t->device_certificate_skips_password;
        v->tenants[i].require_device_binding =
            t->require_device_binding == NULL || *t->require_device_binding;
    }
    return 0;
}

/* ---- frontends (issue 12; server/frontends/, docs/frontends.md) ---- */

static int cfg_fe_string(struct cfg_ctx *ctx, char **out, const char *raw, const char *def,
                         const char *ypath)
{
    *out = strdup(raw != NULL ? raw : def);
    if (*out == NULL) {
        cfg_fail(ctx, ypath, "out of memory");
        return -1;
    }
    return 0;
}

static int cfg_fe_listen(struct cfg_ctx *ctx, char **out, const struct raw_fe_listen *l,
                         const char *ypath)
{
    if (l == NULL)
        return 0;
    if (!cfg_listener_ok(l->listen)) {
        cfg_fail(ctx, ypath, "\"%s\" is not HOST:PORT", l->listen);
        return -1;
    }
    return cfg_fe_string(ctx, out, l->listen, "", ypath);
}

static int cfg_build_frontends(struct cfg_ctx *ctx, struct frontends_config *f,
                               const struct raw_frontends *r)
{
    static const struct raw_frontends none;
    static const struct raw_fe_headers no_headers;
    const struct raw_fe_headers *h;

    if (r == NULL)
        r = &none;
    h = r->headers != NULL ? r->headers : &no_headers;
    f->envoy_enabled = r->envoy == NULL || r->envoy->enabled == NULL || *r->envoy->enabled;
    if (cfg_fe_listen(ctx, &f->nginx_listen, r->nginx, "frontends.nginx.listen") != 0 ||
        cfg_fe_listen(ctx, &f->spoe_listen, r->haproxy, "frontends.haproxy.listen") != 0 ||
        cfg_fe_string(ctx, &f->cert_header, h->certificate, "x-client-cert",
                      "frontends.headers.certificate") != 0 ||
        cfg_fe_string(ctx, &f->tenant_header, h->tenant, "x-tenant-id",
                      "frontends.headers.tenant") != 0 ||
        cfg_fe_string(ctx, &f->device_header, h->device, "x-device-id",
                      "frontends.headers.device") != 0 ||
        cfg_fe_string(ctx, &f->user_header, h->user, "x-user-id", "frontends.headers.user") != 0 ||
        cfg_fe_string(ctx, &f->response_prefix, h->response_prefix, "x-certval-",
                      "frontends.headers.response_prefix") != 0 ||
        cfg_uint(ctx, &f->deny_status, r->deny_status, "frontends.deny_status", 403, 400, 599))
        return -1;
    /* Header names are compared in lower case (HTTP/2, Envoy's header map). */
    for (char *p = f->cert_header; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    for (char *p = f->tenant_header; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    for (char *p = f->device_header; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    for (char *p = f->user_header; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    for (char *p = f->response_prefix; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    if (r->tenant_by_host_count == 0)
        return 0;
    f->hosts = calloc(r->tenant_by_host_count, sizeof(*f->hosts));
    if (f->hosts == NULL) {
        cfg_fail(ctx, "frontends.tenant_by_host", "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < r->tenant_by_host_count; i++) {
        f->hosts[i].host = strdup(r->tenant_by_host[i].host);
        f->hosts[i].tenant = strdup(r->tenant_by_host[i].tenant);
        f->n_hosts = i + 1;
        if (f->hosts[i].host == NULL || f->hosts[i].tenant == NULL) {
            cfg_fail(ctx, "frontends.tenant_by_host", "out of memory");
            return -1;
        }
        for (char *p = f->hosts[i].host; *p != '\0'; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    return 0;
}

void cfg_frontends_clear(struct frontends_config *f)
{
    free(f->nginx_listen);
    free(f->spoe_listen);
    free(f->cert_header);
    free(f->tenant_header);
    free(f->device_header);
    free(f->user_header);
    free(f->response_prefix);
    for (size_t i = 0; i < f->n_hosts; i++) {
        free(f->hosts[i].host);
        free(f->hosts[i].tenant);
    }
    free(f->hosts);
}

/* ---- end of frontends ---- */

int cfg_build(struct cfg_ctx *ctx, struct certval_config *c, const struct raw_config *r)
{
    if (cfg_build_listen(ctx, c, r->listen) != 0 || cfg_build_threads_limits(ctx, c, r) != 0 ||
        cfg_build_trust(ctx, c, r->trust) != 0 || cfg_build_revocation(ctx, c, r) != 0 ||
        cfg_build_observability(ctx, c, r) != 0 ||
        cfg_build_profiles(ctx, &c->validator, r) != 0 ||
        cfg_build_tenants(ctx, &c->validator, r) != 0 ||
        cfg_build_frontends(ctx, &c->frontends, r->frontends) != 0)
        return -1;
    /* fleet (issue 11): checked in server/fleet/fleet_config.c */
    {
        char ypath[CFG_YPATH_MAX], msg[300];

        if (fleet_config_build(&c->fleet, r->fleet, ctx->path, ypath, sizeof(ypath), msg,
                               sizeof(msg)) != 0) {
            cfg_fail(ctx, ypath, "%s", msg);
            return -1;
        }
    }
    return 0;
}
