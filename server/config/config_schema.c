/* certval configuration, pass 2: the libcyaml schema of the raw_*
 * structures (config_internal.h) and the pass that loads the file into
 * them, turning libcyaml's log into one message with its line. */
#include "config_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    CYAML_FIELD_UINT_PTR("max_transport_memory_bytes", OPT_PTR, struct raw_limits,
                         max_transport_memory_bytes),
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

const cyaml_schema_value_t cfg_top_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_config, cfg_top_fields),
};

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

int cfg_cyaml_load(struct cfg_ctx *ctx, struct raw_config **out, const char *buf, size_t len)
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
