/* certval configuration loader (config.h, docs/configuration.md).
 *
 * Three passes over one in-memory copy of the file:
 *  1. libyaml builds a line index: every mapping key and sequence entry,
 *     named like "profiles[1].name", with its line. It also reports syntax
 *     errors with their line.
 *  2. libcyaml loads the file into the raw_* structures below, refusing
 *     unknown keys and wrongly typed values. Its log messages are captured;
 *     the first error and its backtrace line become the message.
 *  3. cfg_build checks what a schema cannot (ranges, uniqueness,
 *     consistency, files), applies defaults, resolves relative paths and
 *     fills struct certval_config. Errors name the line through the index.
 *
 * Numeric keys are pointers in the raw structures so that "absent" (NULL,
 * default applies) differs from an explicit 0. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cyaml/cyaml.h>
#include <yaml.h>

#include "fleet_config.h" /* fleet (issue 11) */

#define CFG_MAX_FILE_BYTES (1u << 20) /* a configuration is a few KiB */
#define CFG_YPATH_MAX 192
#define CFG_MAX_DEPTH 16

/* ---- raw structures, as libcyaml fills them ---- */

struct raw_listen {
    char **tcp;
    unsigned tcp_count;
    char *unix_path;
};

struct raw_threads {
    uint32_t *transport;
    uint32_t *workers;
};

struct raw_limits {
    uint32_t *max_chains_per_batch;
    uint32_t *max_certs_per_chain;
    uint32_t *max_cert_bytes;
    uint32_t *max_message_bytes;
    uint32_t *split_min_chains;
    uint32_t *max_queued_chains_per_worker;
    uint32_t *max_inflight_chains;
    uint32_t *max_inflight_request_bytes;
    uint32_t *max_concurrent_streams;
    uint32_t *max_queue_delay_ms;
};

struct raw_shutdown {
    uint32_t *drain_grace_seconds;
};

struct raw_trust {
    char **anchors;
    unsigned anchors_count;
    char **intermediates;
    unsigned intermediates_count;
    uint32_t *clock_skew_seconds;
    uint32_t *max_depth;
    uint32_t *max_path_attempts;
    char **policies;
    unsigned policies_count;
    bool *explicit_policy;
};

struct raw_fetch {
    char **urls;
    unsigned urls_count;
    bool *from_certificates;
    uint32_t *timeout_ms;
    uint32_t *max_bytes;
    uint32_t *max_redirects;
    uint32_t *refresh_ahead_seconds;
    uint32_t *max_interval_seconds;
    uint32_t *max_backoff_seconds;
};

struct raw_revocation {
    char **crl_files;
    unsigned crl_files_count;
    char *crl_dir;
    struct raw_fetch *fetch;
};

enum raw_id_from {
    RAW_FROM_SAN_URI = 0,
    RAW_FROM_SUBJECT = 1,
};

struct raw_id_source {
    int from;
    char *prefix;
    char *attribute;
};

struct raw_profile {
    char *name;
    int kind;
    char **issuers;
    unsigned issuers_count;
    struct raw_id_source *tenant_id;
    struct raw_id_source *device_id;
    uint32_t *max_validity_days;
    char *required_eku;
    int *revocation;
    uint32_t *crl_grace_seconds;
    int *on_stale;
    int *algorithms;
    uint32_t *min_rsa_bits;
    bool *compat;
    uint32_t *max_depth;
};

struct raw_metrics {
    char *listen;
};

struct raw_vcache {
    uint32_t *max_entries;
    uint32_t *max_megabytes;
};

struct raw_admin {
    char *listen;
    char *token_file;
    uint32_t *max_message_bytes;
};

struct raw_audit {
    bool *all_verdicts;
    uint32_t *max_lines_per_second;
};

struct raw_tenant {
    char *id;
    bool *device_certificate_skips_password;
    bool *require_device_binding;
};

/* frontends (issue 12) */
struct raw_fe_listen {
    char *listen;
};

struct raw_fe_envoy {
    bool *enabled;
};

struct raw_fe_headers {
    char *certificate;
    char *tenant;
    char *device;
    char *user;
    char *response_prefix;
};

struct raw_fe_host {
    char *host;
    char *tenant;
};

struct raw_frontends {
    struct raw_fe_envoy *envoy;
    struct raw_fe_listen *nginx;
    struct raw_fe_listen *haproxy;
    struct raw_fe_headers *headers;
    uint32_t *deny_status;
    struct raw_fe_host *tenant_by_host;
    unsigned tenant_by_host_count;
};

struct raw_config {
    struct raw_listen *listen;
    struct raw_threads *threads;
    struct raw_limits *limits;
    struct raw_shutdown *shutdown;
    struct raw_trust *trust;
    struct raw_revocation *revocation;
    char *state_dir;
    struct raw_metrics *metrics;
    struct raw_audit *audit;
    struct raw_admin *admin;
    struct raw_vcache *verdict_cache;
    struct raw_profile *profiles;
    unsigned profiles_count;
    struct raw_tenant *tenants;
    unsigned tenants_count;
    struct raw_frontends *frontends;
    struct fleet_raw *fleet; /* fleet (issue 11) */
};

/* ---- schema ---- */

#define OPT_PTR (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER)
#define OPT_NULLABLE (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL_STR)

static const cyaml_schema_value_t cfg_string_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, PATH_MAX),
};

static const cyaml_strval_t cfg_kind_strings[] = {
    {"tenant", CERT_KIND_TENANT},
    {"device", CERT_KIND_DEVICE},
};

static const cyaml_strval_t cfg_from_strings[] = {
    {"san_uri", RAW_FROM_SAN_URI},
    {"subject", RAW_FROM_SUBJECT},
};

static const cyaml_strval_t cfg_revocation_strings[] = {
    {"none", REVOCATION_NONE},
    {"leaf", REVOCATION_LEAF},
    {"all", REVOCATION_ALL},
};

static const cyaml_strval_t cfg_stale_strings[] = {
    {"deny", STALE_FAIL_CLOSED},
    {"allow", STALE_ALLOW_WARN},
};

static const cyaml_strval_t cfg_algorithms_strings[] = {
    {"strict", ALGORITHMS_STRICT},
    {"legacy", ALGORITHMS_LEGACY},
};

static const cyaml_schema_field_t cfg_listen_fields[] = {
    CYAML_FIELD_SEQUENCE("tcp", OPT_PTR, struct raw_listen, tcp, &cfg_string_entry, 0, 64),
    CYAML_FIELD_STRING_PTR("unix", OPT_NULLABLE, struct raw_listen, unix_path, 1, 107),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_threads_fields[] = {
    CYAML_FIELD_UINT_PTR("transport", OPT_PTR, struct raw_threads, transport),
    CYAML_FIELD_UINT_PTR("workers", OPT_PTR, struct raw_threads, workers),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_limits_fields[] = {
    CYAML_FIELD_UINT_PTR("max_chains_per_batch", OPT_PTR, struct raw_limits, max_chains_per_batch),
    CYAML_FIELD_UINT_PTR("max_certs_per_chain", OPT_PTR, struct raw_limits, max_certs_per_chain),
    CYAML_FIELD_UINT_PTR("max_cert_bytes", OPT_PTR, struct raw_limits, max_cert_bytes),
    CYAML_FIELD_UINT_PTR("max_message_bytes", OPT_PTR, struct raw_limits, max_message_bytes),
    CYAML_FIELD_UINT_PTR("split_min_chains", OPT_PTR, struct raw_limits, split_min_chains),
    CYAML_FIELD_UINT_PTR("max_queued_chains_per_worker", OPT_PTR, struct raw_limits,
                         max_queued_chains_per_worker),
    CYAML_FIELD_UINT_PTR("max_inflight_chains", OPT_PTR, struct raw_limits, max_inflight_chains),
    CYAML_FIELD_UINT_PTR("max_inflight_request_bytes", OPT_PTR, struct raw_limits,
                         max_inflight_request_bytes),
    CYAML_FIELD_UINT_PTR("max_concurrent_streams", OPT_PTR, struct raw_limits,
                         max_concurrent_streams),
    CYAML_FIELD_UINT_PTR("max_queue_delay_ms", OPT_PTR, struct raw_limits, max_queue_delay_ms),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_shutdown_fields[] = {
    CYAML_FIELD_UINT_PTR("drain_grace_seconds", OPT_PTR, struct raw_shutdown, drain_grace_seconds),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_trust_fields[] = {
    CYAML_FIELD_SEQUENCE("anchors", OPT_PTR, struct raw_trust, anchors, &cfg_string_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("intermediates", OPT_PTR, struct raw_trust, intermediates,
                         &cfg_string_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_UINT_PTR("clock_skew_seconds", OPT_PTR, struct raw_trust, clock_skew_seconds),
    CYAML_FIELD_UINT_PTR("max_depth", OPT_PTR, struct raw_trust, max_depth),
    CYAML_FIELD_UINT_PTR("max_path_attempts", OPT_PTR, struct raw_trust, max_path_attempts),
    CYAML_FIELD_SEQUENCE("policies", OPT_PTR, struct raw_trust, policies, &cfg_string_entry, 0, 64),
    CYAML_FIELD_BOOL_PTR("explicit_policy", OPT_PTR, struct raw_trust, explicit_policy),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_fetch_fields[] = {
    CYAML_FIELD_SEQUENCE("urls", OPT_PTR, struct raw_fetch, urls, &cfg_string_entry, 0, 64),
    CYAML_FIELD_BOOL_PTR("from_certificates", OPT_PTR, struct raw_fetch, from_certificates),
    CYAML_FIELD_UINT_PTR("timeout_ms", OPT_PTR, struct raw_fetch, timeout_ms),
    CYAML_FIELD_UINT_PTR("max_bytes", OPT_PTR, struct raw_fetch, max_bytes),
    CYAML_FIELD_UINT_PTR("max_redirects", OPT_PTR, struct raw_fetch, max_redirects),
    CYAML_FIELD_UINT_PTR("refresh_ahead_seconds", OPT_PTR, struct raw_fetch,
                         refresh_ahead_seconds),
    CYAML_FIELD_UINT_PTR("max_interval_seconds", OPT_PTR, struct raw_fetch, max_interval_seconds),
    CYAML_FIELD_UINT_PTR("max_backoff_seconds", OPT_PTR, struct raw_fetch, max_backoff_seconds),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_revocation_fields[] = {
    CYAML_FIELD_SEQUENCE("crl_files", OPT_PTR, struct raw_revocation, crl_files, &cfg_string_entry,
                         0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("crl_dir", OPT_NULLABLE, struct raw_revocation, crl_dir, 1, PATH_MAX),
    CYAML_FIELD_MAPPING_PTR("fetch", OPT_PTR, struct raw_revocation, fetch, cfg_fetch_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_id_source_fields[] = {
    CYAML_FIELD_ENUM("from", CYAML_FLAG_STRICT, struct raw_id_source, from, cfg_from_strings,
                     CYAML_ARRAY_LEN(cfg_from_strings)),
    CYAML_FIELD_STRING_PTR("prefix", OPT_PTR, struct raw_id_source, prefix, 1, 256),
    CYAML_FIELD_STRING_PTR("attribute", OPT_PTR, struct raw_id_source, attribute, 1, 128),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_profile_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, struct raw_profile, name, 1, 63),
    CYAML_FIELD_ENUM("kind", CYAML_FLAG_STRICT, struct raw_profile, kind, cfg_kind_strings,
                     CYAML_ARRAY_LEN(cfg_kind_strings)),
    CYAML_FIELD_SEQUENCE("issuers", CYAML_FLAG_POINTER, struct raw_profile, issuers,
                         &cfg_string_entry, 1, CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("tenant_id", CYAML_FLAG_POINTER, struct raw_profile, tenant_id,
                            cfg_id_source_fields),
    CYAML_FIELD_MAPPING_PTR("device_id", OPT_PTR, struct raw_profile, device_id,
                            cfg_id_source_fields),
    CYAML_FIELD_UINT_PTR("max_validity_days", OPT_PTR, struct raw_profile, max_validity_days),
    CYAML_FIELD_STRING_PTR("required_eku", OPT_NULLABLE, struct raw_profile, required_eku, 1, 128),
    CYAML_FIELD_ENUM_PTR("revocation", OPT_PTR | CYAML_FLAG_STRICT, struct raw_profile, revocation,
                         cfg_revocation_strings, CYAML_ARRAY_LEN(cfg_revocation_strings)),
    CYAML_FIELD_UINT_PTR("crl_grace_seconds", OPT_PTR, struct raw_profile, crl_grace_seconds),
    CYAML_FIELD_ENUM_PTR("on_stale", OPT_PTR | CYAML_FLAG_STRICT, struct raw_profile, on_stale,
                         cfg_stale_strings, CYAML_ARRAY_LEN(cfg_stale_strings)),
    CYAML_FIELD_ENUM_PTR("algorithms", OPT_PTR | CYAML_FLAG_STRICT, struct raw_profile, algorithms,
                         cfg_algorithms_strings, CYAML_ARRAY_LEN(cfg_algorithms_strings)),
    CYAML_FIELD_UINT_PTR("min_rsa_bits", OPT_PTR, struct raw_profile, min_rsa_bits),
    CYAML_FIELD_BOOL_PTR("compat", OPT_PTR, struct raw_profile, compat),
    CYAML_FIELD_UINT_PTR("max_depth", OPT_PTR, struct raw_profile, max_depth),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t cfg_profile_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_profile, cfg_profile_fields),
};

static const cyaml_schema_field_t cfg_tenant_fields[] = {
    CYAML_FIELD_STRING_PTR("id", CYAML_FLAG_POINTER, struct raw_tenant, id, 1, 255),
    CYAML_FIELD_BOOL_PTR("device_certificate_skips_password", OPT_PTR, struct raw_tenant,
                         device_certificate_skips_password),
    CYAML_FIELD_BOOL_PTR("require_device_binding", OPT_PTR, struct raw_tenant,
                         require_device_binding),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t cfg_tenant_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_tenant, cfg_tenant_fields),
};

static const cyaml_schema_field_t cfg_metrics_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", OPT_NULLABLE, struct raw_metrics, listen, 1, 300),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_vcache_fields[] = {
    CYAML_FIELD_UINT_PTR("max_entries", OPT_PTR, struct raw_vcache, max_entries),
    CYAML_FIELD_UINT_PTR("max_megabytes", OPT_PTR, struct raw_vcache, max_megabytes),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_admin_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", CYAML_FLAG_POINTER, struct raw_admin, listen, 1, 300),
    CYAML_FIELD_STRING_PTR("token_file", CYAML_FLAG_POINTER, struct raw_admin, token_file, 1,
                           PATH_MAX),
    CYAML_FIELD_UINT_PTR("max_message_bytes", OPT_PTR, struct raw_admin, max_message_bytes),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_audit_fields[] = {
    CYAML_FIELD_BOOL_PTR("all_verdicts", OPT_PTR, struct raw_audit, all_verdicts),
    CYAML_FIELD_UINT_PTR("max_lines_per_second", OPT_PTR, struct raw_audit, max_lines_per_second),
    CYAML_FIELD_END,
};

/* frontends (issue 12) */
static const cyaml_schema_field_t cfg_fe_listen_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", CYAML_FLAG_POINTER, struct raw_fe_listen, listen, 1, 300),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_fe_envoy_fields[] = {
    CYAML_FIELD_BOOL_PTR("enabled", OPT_PTR, struct raw_fe_envoy, enabled),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_fe_headers_fields[] = {
    CYAML_FIELD_STRING_PTR("certificate", OPT_PTR, struct raw_fe_headers, certificate, 1, 128),
    CYAML_FIELD_STRING_PTR("tenant", OPT_PTR, struct raw_fe_headers, tenant, 1, 128),
    CYAML_FIELD_STRING_PTR("device", OPT_PTR, struct raw_fe_headers, device, 1, 128),
    CYAML_FIELD_STRING_PTR("user", OPT_PTR, struct raw_fe_headers, user, 1, 128),
    CYAML_FIELD_STRING_PTR("response_prefix", OPT_PTR, struct raw_fe_headers, response_prefix, 1,
                           64),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_fe_host_fields[] = {
    CYAML_FIELD_STRING_PTR("host", CYAML_FLAG_POINTER, struct raw_fe_host, host, 1, 255),
    CYAML_FIELD_STRING_PTR("tenant", CYAML_FLAG_POINTER, struct raw_fe_host, tenant, 1, 255),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t cfg_fe_host_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_fe_host, cfg_fe_host_fields),
};

static const cyaml_schema_field_t cfg_frontends_fields[] = {
    CYAML_FIELD_MAPPING_PTR("envoy", OPT_PTR, struct raw_frontends, envoy, cfg_fe_envoy_fields),
    CYAML_FIELD_MAPPING_PTR("nginx", OPT_PTR, struct raw_frontends, nginx, cfg_fe_listen_fields),
    CYAML_FIELD_MAPPING_PTR("haproxy", OPT_PTR, struct raw_frontends, haproxy,
                            cfg_fe_listen_fields),
    CYAML_FIELD_MAPPING_PTR("headers", OPT_PTR, struct raw_frontends, headers,
                            cfg_fe_headers_fields),
    CYAML_FIELD_UINT_PTR("deny_status", OPT_PTR, struct raw_frontends, deny_status),
    CYAML_FIELD_SEQUENCE("tenant_by_host", OPT_PTR, struct raw_frontends, tenant_by_host,
                         &cfg_fe_host_entry, 0, 4096),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cfg_top_fields[] = {
    CYAML_FIELD_MAPPING_PTR("listen", OPT_PTR, struct raw_config, listen, cfg_listen_fields),
    CYAML_FIELD_MAPPING_PTR("threads", OPT_PTR, struct raw_config, threads, cfg_threads_fields),
    CYAML_FIELD_MAPPING_PTR("limits", OPT_PTR, struct raw_config, limits, cfg_limits_fields),
    CYAML_FIELD_MAPPING_PTR("shutdown", OPT_PTR, struct raw_config, shutdown, cfg_shutdown_fields),
    CYAML_FIELD_MAPPING_PTR("trust", OPT_PTR, struct raw_config, trust, cfg_trust_fields),
    CYAML_FIELD_MAPPING_PTR("revocation", OPT_PTR, struct raw_config, revocation,
                            cfg_revocation_fields),
    CYAML_FIELD_STRING_PTR("state_dir", OPT_NULLABLE, struct raw_config, state_dir, 1, PATH_MAX),
    CYAML_FIELD_MAPPING_PTR("metrics", OPT_PTR, struct raw_config, metrics, cfg_metrics_fields),
    CYAML_FIELD_MAPPING_PTR("audit", OPT_PTR, struct raw_config, audit, cfg_audit_fields),
    CYAML_FIELD_MAPPING_PTR("admin", OPT_PTR, struct raw_config, admin, cfg_admin_fields),
    CYAML_FIELD_MAPPING_PTR("verdict_cache", OPT_PTR, struct raw_config, verdict_cache,
                            cfg_vcache_fields),
    CYAML_FIELD_SEQUENCE("profiles", OPT_PTR, struct raw_config, profiles, &cfg_profile_entry, 0,
                         256),
    CYAML_FIELD_SEQUENCE("tenants", OPT_PTR, struct raw_config, tenants, &cfg_tenant_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("frontends", OPT_PTR, struct raw_config, frontends,
                            cfg_frontends_fields),
    CYAML_FIELD_MAPPING_PTR("fleet", OPT_PTR, struct raw_config, fleet, fleet_raw_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t cfg_top_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_config, cfg_top_fields),
};

/* ---- line index (libyaml) ---- */

struct cfg_index_entry {
    char ypath[CFG_YPATH_MAX];
    size_t line; /* 1-based */
};

struct cfg_index {
    struct cfg_index_entry *v;
    size_t n, cap;
};

/* The context of one config_load call. */
struct cfg_ctx {
    const char *path;
    char *err;
    size_t errlen;
    struct cfg_index idx;
    char dir[PATH_MAX]; /* the config file's folder, for relative paths */
};

static void cfg_index_free(struct cfg_index *idx)
{
    free(idx->v);
    idx->v = NULL;
    idx->n = idx->cap = 0;
}

static int cfg_index_add(struct cfg_index *idx, const char *ypath, size_t line)
{
    if (idx->n == idx->cap) {
        size_t cap = idx->cap != 0 ? idx->cap * 2 : 64;
        struct cfg_index_entry *v = realloc(idx->v, cap * sizeof(*v));

        if (v == NULL)
            return -1;
        idx->v = v;
        idx->cap = cap;
    }
    snprintf(idx->v[idx->n].ypath, CFG_YPATH_MAX, "%s", ypath);
    idx->v[idx->n].line = line;
    idx->n++;
    return 0;
}

/* cfg_index_line returns the line of |ypath|, or 0 when it is not there. */
static size_t cfg_index_line(const struct cfg_index *idx, const char *ypath)
{
    for (size_t i = 0; i < idx->n; i++) {
        if (strcmp(idx->v[i].ypath, ypath) == 0)
            return idx->v[i].line;
    }
    return 0;
}

/* cfg_index_key_line returns the first line at or after |from| where a
 * mapping key named |key| appears, or 0. libcyaml names the mapping that
 * holds an unknown key, not the key itself; this finds the key. */
static size_t cfg_index_key_line(const struct cfg_index *idx, const char *key, size_t from)
{
    size_t best = 0, klen = strlen(key);

    for (size_t i = 0; i < idx->n; i++) {
        const char *p = idx->v[i].ypath;
        size_t plen = strlen(p);

        if (plen < klen || strcmp(p + plen - klen, key) != 0)
            continue;
        if (plen > klen && p[plen - klen - 1] != '.')
            continue;
        if (idx->v[i].line >= from && (best == 0 || idx->v[i].line < best))
            best = idx->v[i].line;
    }
    return best;
}

struct cfg_frame {
    bool is_map;
    bool want_key;
    unsigned next_item;
    char ypath[CFG_YPATH_MAX];
};

struct cfg_walk {
    struct cfg_frame f[CFG_MAX_DEPTH];
    int depth; /* frames in use */
};

/* cfg_walk_node handles a scalar, alias or collection start: records its
 * name and line, and returns the name of the node in |child|. */
static int cfg_walk_node(struct cfg_ctx *ctx, struct cfg_walk *w, const yaml_event_t *ev,
                         char *child, size_t childlen)
{
    struct cfg_frame *top = w->depth > 0 ? &w->f[w->depth - 1] : NULL;
    size_t line = ev->start_mark.line + 1;

    child[0] = '\0';
    if (top == NULL)
        return 0;
    if (top->is_map && top->want_key) {
        /* A key: only scalar keys name anything. */
        if (ev->type == YAML_SCALAR_EVENT) {
            snprintf(child, childlen, "%s%s%s", top->ypath, top->ypath[0] ? "." : "",
                     (const char *)ev->data.scalar.value);
            top->want_key = false;
            return cfg_index_add(&ctx->idx, child, line);
        }
        top->want_key = false;
        return 0;
    }
    if (top->is_map) {
        /* The value of the key just recorded: the key's line names it. */
        snprintf(child, childlen, "%s", ctx->idx.n > 0 ? ctx->idx.v[ctx->idx.n - 1].ypath : "");
        top->want_key = true;
        return 0;
    }
    snprintf(child, childlen, "%s[%u]", top->ypath, top->next_item++);
    return cfg_index_add(&ctx->idx, child, line);
}

static int cfg_walk_event(struct cfg_ctx *ctx, struct cfg_walk *w, const yaml_event_t *ev)
{
    char child[CFG_YPATH_MAX];
    struct cfg_frame *nf;

    switch (ev->type) {
    case YAML_SCALAR_EVENT:
    case YAML_ALIAS_EVENT:
        return cfg_walk_node(ctx, w, ev, child, sizeof(child));
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        if (cfg_walk_node(ctx, w, ev, child, sizeof(child)) != 0 || w->depth == CFG_MAX_DEPTH)
            return -1;
        nf = &w->f[w->depth++];
        nf->is_map = ev->type == YAML_MAPPING_START_EVENT;
        nf->want_key = nf->is_map;
        nf->next_item = 0;
        snprintf(nf->ypath, sizeof(nf->ypath), "%s", child);
        return 0;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        if (w->depth > 0)
            w->depth--;
        return 0;
    default:
        return 0;
    }
}

static void cfg_fail_line(struct cfg_ctx *ctx, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* cfg_fail_line writes "PATH:LINE: message" (or "PATH: message" when line
 * is 0) into the caller's buffer. */
static void cfg_fail_line(struct cfg_ctx *ctx, size_t line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(ctx->err, ctx->errlen, "%s:%zu: %s", ctx->path, line, msg);
    else
        snprintf(ctx->err, ctx->errlen, "%s: %s", ctx->path, msg);
}

/* cfg_index_build parses |buf| with libyaml; syntax errors are reported
 * here with their line, before libcyaml sees the file. */
static int cfg_index_build(struct cfg_ctx *ctx, const char *buf, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    struct cfg_walk w = {.depth = 0};
    int rc = -1;
    bool done = false;

    if (!yaml_parser_initialize(&parser)) {
        cfg_fail_line(ctx, 0, "cannot initialise the YAML parser");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            cfg_fail_line(ctx, parser.problem_mark.line + 1, "YAML syntax error: %s",
                          parser.problem != NULL ? parser.problem : "unknown");
            goto err;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        if (cfg_walk_event(ctx, &w, &ev) != 0) {
            yaml_event_delete(&ev);
            cfg_fail_line(ctx, ev.start_mark.line + 1, "nesting too deep or out of memory");
            goto err;
        }
        yaml_event_delete(&ev);
    }
    rc = 0;
err:
    yaml_parser_delete(&parser);
    return rc;
}

/* ---- libcyaml pass ---- */

/* What the libcyaml log told us about the first error: the message and
 * the innermost frames of the backtrace that follows it (libcyaml prints
 * the innermost frame first, lines counted from 1). */
#define CFG_BT_FRAMES 2

struct cfg_cyaml_log {
    char msg[512]; /* "Unexpected key: foo" */
    bool in_backtrace;
    unsigned n_frames;
    struct {
        char field[64]; /* mapping field name; "" for a mapping or an entry */
        size_t line;
    } frame[CFG_BT_FRAMES];
};

static void cfg_cyaml_log_fn(cyaml_log_t level, void *vctx, const char *fmt, va_list args)
    __attribute__((format(printf, 3, 0)));

/* cfg_cyaml_log_frame parses "  in mapping field 'x' (line: N, column: M)". */
static void cfg_cyaml_log_frame(struct cfg_cyaml_log *log, const char *line)
{
    const char *p = strstr(line, "(line: ");
    const char *q = strstr(line, "in mapping field '");

    if (p == NULL || log->n_frames == CFG_BT_FRAMES)
        return;
    log->frame[log->n_frames].line = (size_t)strtoul(p + 7, NULL, 10);
    log->frame[log->n_frames].field[0] = '\0';
    if (q != NULL) {
        q += strlen("in mapping field '");
        snprintf(log->frame[log->n_frames].field, sizeof(log->frame[0].field), "%.*s",
                 (int)strcspn(q, "'"), q);
    }
    log->n_frames++;
}

/* cfg_cyaml_log_fn keeps the first "Load:" error and its backtrace. */
static void cfg_cyaml_log_fn(cyaml_log_t level, void *vctx, const char *fmt, va_list args)
{
    struct cfg_cyaml_log *log = vctx;
    char line[512];

    if (level < CYAML_LOG_ERROR)
        return;
    vsnprintf(line, sizeof(line), fmt, args);
    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, "Load: Backtrace:", 16) == 0) {
        log->in_backtrace = log->msg[0] != '\0';
        return;
    }
    if (log->msg[0] == '\0' && strncmp(line, "Load: ", 6) == 0) {
        snprintf(log->msg, sizeof(log->msg), "%s", line + 6);
        return;
    }
    if (log->in_backtrace)
        cfg_cyaml_log_frame(log, line);
}

/* cfg_cyaml_fail turns the captured log into "PATH:LINE: problem". */
static void cfg_cyaml_fail(struct cfg_ctx *ctx, const struct cfg_cyaml_log *log, cyaml_err_t e)
{
    const char *key = strncmp(log->msg, "Unexpected key: ", 16) == 0 ? log->msg + 16 : NULL;
    size_t line = log->n_frames > 0 ? log->frame[0].line : 0;

    if (key != NULL) {
        /* The frame is the mapping holding the key; find the key itself. */
        size_t kl = cfg_index_key_line(&ctx->idx, key, line);

        cfg_fail_line(ctx, kl != 0 ? kl : line, "unknown key \"%s\"", key);
        return;
    }
    if (log->msg[0] == '\0') {
        cfg_fail_line(ctx, line, "%s", cyaml_strerror(e));
        return;
    }
    /* libcyaml detects a missing field after the mapping's last field;
     * the enclosing frame (the mapping's entry or key) is where it is. */
    if (strncmp(log->msg, "Missing", 7) == 0 && log->n_frames > 1) {
        cfg_fail_line(ctx, log->frame[1].line, "%s%s%s", log->frame[1].field,
                      log->frame[1].field[0] ? ": " : "", log->msg);
        return;
    }
    cfg_fail_line(ctx, line, "%s%s%s", log->n_frames > 0 ? log->frame[0].field : "",
                  log->n_frames > 0 && log->frame[0].field[0] ? ": " : "", log->msg);
}

static int cfg_cyaml_load(struct cfg_ctx *ctx, struct raw_config **out, const char *buf, size_t len)
{
    struct cfg_cyaml_log log = {.n_frames = 0};
    const cyaml_config_t cc = {
        .log_fn = cfg_cyaml_log_fn,
        .log_ctx = &log,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR,
        .flags = CYAML_CFG_DEFAULT,
    };
    cyaml_err_t e;

    *out = NULL;
    e = cyaml_load_data((const uint8_t *)buf, len, &cc, &cfg_top_schema, (cyaml_data_t **)out,
                        NULL);
    if (e == CYAML_OK)
        return 0;
    cfg_cyaml_fail(ctx, &log, e);
    return -1;
}

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

static void cfg_strv_free(char **v, size_t n)
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
        cfg_uint(ctx, &c->drain_grace_seconds, s->drain_grace_seconds,
                 "shutdown.drain_grace_seconds", 20, 0, 3600))
        return -1;
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

static void cfg_frontends_clear(struct frontends_config *f)
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

static int cfg_build(struct cfg_ctx *ctx, struct certval_config *c, const struct raw_config *r)
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

/* ---- entry points ---- */

/* cfg_read_file reads |path| whole (bounded) into a new NUL-terminated
 * buffer. */
static int cfg_read_file(struct cfg_ctx *ctx, char **out, size_t *len)
{
    FILE *fp = fopen(ctx->path, "rb");
    char *buf = NULL;
    size_t n;

    *out = NULL;
    if (fp == NULL) {
        cfg_fail_line(ctx, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    buf = malloc(CFG_MAX_FILE_BYTES + 1);
    if (buf == NULL) {
        cfg_fail_line(ctx, 0, "out of memory");
        goto err;
    }
    n = fread(buf, 1, CFG_MAX_FILE_BYTES + 1, fp);
    if (ferror(fp) || n > CFG_MAX_FILE_BYTES) {
        cfg_fail_line(ctx, 0, ferror(fp) ? "read error" : "larger than %u bytes",
                      CFG_MAX_FILE_BYTES);
        goto err;
    }
    buf[n] = '\0';
    fclose(fp);
    *out = buf;
    *len = n;
    return 0;
err:
    free(buf);
    fclose(fp);
    return -1;
}

/* cfg_set_dir stores the config file's folder, made absolute so that paths
 * stay right if the process changes directory later (reloads). */
static void cfg_set_dir(struct cfg_ctx *ctx)
{
    const char *slash = strrchr(ctx->path, '/');
    char rel[PATH_MAX];

    if (slash == NULL)
        snprintf(rel, sizeof(rel), ".");
    else if (slash == ctx->path)
        snprintf(rel, sizeof(rel), "/");
    else
        snprintf(rel, sizeof(rel), "%.*s", (int)(slash - ctx->path), ctx->path);
    if (realpath(rel, ctx->dir) == NULL)
        snprintf(ctx->dir, sizeof(ctx->dir), "%s", rel);
}

int config_load(struct certval_config **out, const char *path, char *err, size_t errlen)
{
    char dummy[1];
    struct cfg_ctx ctx = {
        .path = path,
        .err = err != NULL && errlen > 0 ? err : dummy,
        .errlen = err != NULL && errlen > 0 ? errlen : sizeof(dummy),
    };
    struct raw_config *raw = NULL;
    struct certval_config *c = NULL;
    const cyaml_config_t free_cfg = {.mem_fn = cyaml_mem, .log_level = CYAML_LOG_ERROR};
    char *buf = NULL;
    size_t len = 0;
    int rc = -1;

    *out = NULL;
    ctx.err[0] = '\0';
    if (cfg_read_file(&ctx, &buf, &len) != 0 || cfg_index_build(&ctx, buf, len) != 0 ||
        cfg_cyaml_load(&ctx, &raw, buf, len) != 0)
        goto err;
    if (raw == NULL) {
        cfg_fail_line(&ctx, 0, "empty configuration");
        goto err;
    }
    cfg_set_dir(&ctx);
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->path = strdup(path)) == NULL) {
        cfg_fail_line(&ctx, 0, "out of memory");
        goto err;
    }
    if (cfg_build(&ctx, c, raw) != 0)
        goto err;
    *out = c;
    c = NULL;
    rc = 0;
err:
    config_free(c);
    if (raw != NULL)
        cyaml_free(&free_cfg, &cfg_top_schema, raw, 0);
    cfg_index_free(&ctx.idx);
    free(buf);
    return rc;
}

static void cfg_profile_clear(struct profile_config *p)
{
    free(p->name);
    cfg_strv_free(p->issuer_files, p->n_issuer_files);
    free(p->tenant_id.value);
    free(p->device_id.value);
    free(p->required_eku);
}

void config_free(struct certval_config *c)
{
    struct validator_config *v;

    if (c == NULL)
        return;
    v = &c->validator;
    free(c->path);
    cfg_strv_free(c->tcp, c->n_tcp);
    free(c->unix_socket);
    cfg_strv_free(c->crl_files, c->n_crl_files);
    free(c->crl_dir);
    cfg_strv_free(c->fetch.urls, c->fetch.n_urls);
    free(c->state_dir);
    free(c->metrics_listen);
    free(c->admin_listen);
    free(c->admin_token_file);
    cfg_strv_free(v->anchor_files, v->n_anchor_files);
    cfg_strv_free(v->intermediate_files, v->n_intermediate_files);
    cfg_strv_free(v->policy_oids, v->n_policy_oids);
    for (size_t i = 0; i < v->n_profiles; i++)
        cfg_profile_clear(&v->profiles[i]);
    free(v->profiles);
    for (size_t i = 0; i < v->n_tenants; i++)
        free(v->tenants[i].id);
    free(v->tenants);
    cfg_frontends_clear(&c->frontends);
    fleet_config_clear(&c->fleet); /* fleet (issue 11) */
    free(c);
}
