/* Private to server/config/: the raw structures libcyaml fills, the line
 * index and the context of one config_load call, shared by the loader's
 * three passes (config.c: entry points; config_lines.c: the libyaml line
 * index; config_schema.c: the libcyaml schema and pass; config_build.c:
 * checks, defaults and the struct certval_config it fills).
 *
 * Conventions: functions returning int return 0 on success, -1 after
 * writing the message into the context's buffer. Not thread-safe: one
 * context belongs to one config_load call. */
#ifndef CERTVAL_CONFIG_INTERNAL_H
#define CERTVAL_CONFIG_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cyaml/cyaml.h>

#include "config.h"

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
    uint32_t *max_transport_memory_bytes;
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

/* ---- line index (config_lines.c) ---- */

/* cfg_index_build parses |buf| with libyaml into ctx->idx; syntax errors are
 * reported here with their line, before libcyaml sees the file. */
int cfg_index_build(struct cfg_ctx *ctx, const char *buf, size_t len);

/* cfg_index_free frees the index's entries; the index stays usable (empty). */
void cfg_index_free(struct cfg_index *idx);

/* cfg_index_line returns the line of the key or entry |ypath|, or 0. */
size_t cfg_index_line(const struct cfg_index *idx, const char *ypath);

/* cfg_index_key_line returns the first line at or after |from| where a
 * mapping key named |key| appears, or 0. */
size_t cfg_index_key_line(const struct cfg_index *idx, const char *key, size_t from);

/* cfg_fail_line writes "PATH:LINE: message" (or "PATH: message" when line
 * is 0) into the caller's buffer. */
void cfg_fail_line(struct cfg_ctx *ctx, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- schema and libcyaml pass (config_schema.c) ---- */

/* The whole file's schema: a struct raw_config, freed with cyaml_free. */
extern const cyaml_schema_value_t cfg_top_schema;

/* cfg_cyaml_load loads |buf| into a new *|out| (NULL for an empty file),
 * refusing unknown keys and wrongly typed values with the line. */
int cfg_cyaml_load(struct cfg_ctx *ctx, struct raw_config **out, const char *buf, size_t len);

/* ---- building (config_build.c) ---- */

/* cfg_build checks |r|, applies defaults and fills |c|. On failure |c| may
 * hold part of the result: config_free frees it. */
int cfg_build(struct cfg_ctx *ctx, struct certval_config *c, const struct raw_config *r);

/* cfg_strv_free frees |n| strings of |v| and |v|; NULL is accepted. */
void cfg_strv_free(char **v, size_t n);

/* cfg_frontends_clear frees what cfg_build put into |f|. */
void cfg_frontends_clear(struct frontends_config *f);

#endif
