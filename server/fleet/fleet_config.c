/* The `fleet` configuration section (fleet_config.h). */
#include "fleet_config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPT_PTR (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER)
#define OPT_NULLABLE (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL_STR)

static const cyaml_schema_value_t fleet_endpoint_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 255),
};

const cyaml_schema_field_t fleet_raw_fields[] = {
    CYAML_FIELD_SEQUENCE("endpoints", OPT_PTR, struct fleet_raw, endpoints, &fleet_endpoint_entry,
                         0, 16),
    CYAML_FIELD_STRING_PTR("prefix", OPT_NULLABLE, struct fleet_raw, prefix, 1, 200),
    CYAML_FIELD_UINT_PTR("timeout_ms", OPT_PTR, struct fleet_raw, timeout_ms),
    CYAML_FIELD_UINT_PTR("start_timeout_ms", OPT_PTR, struct fleet_raw, start_timeout_ms),
    CYAML_FIELD_UINT_PTR("max_backoff_ms", OPT_PTR, struct fleet_raw, max_backoff_ms),
    CYAML_FIELD_UINT_PTR("max_disconnected_seconds", OPT_PTR, struct fleet_raw,
                         max_disconnected_seconds),
    CYAML_FIELD_STRING_PTR("user", OPT_NULLABLE, struct fleet_raw, user, 1, 128),
    CYAML_FIELD_STRING_PTR("password_file", OPT_NULLABLE, struct fleet_raw, password_file, 1,
                           PATH_MAX),
    CYAML_FIELD_END,
};

static int uint_in(uint32_t *out, const uint32_t *v, uint32_t def, uint32_t lo, uint32_t hi,
                   const char *key, char *ypath, size_t ypath_cap, char *err, size_t errlen)
{
    *out = v != NULL ? *v : def;
    if (*out >= lo && *out <= hi)
        return 0;
    snprintf(ypath, ypath_cap, "fleet.%s", key);
    snprintf(err, errlen, "must be from %u to %u", lo, hi);
    return -1;
}

/* A path relative to the configuration file's folder. */
static char *resolve(const char *config_path, const char *p)
{
    const char *slash = config_path != NULL ? strrchr(config_path, '/') : NULL;
    char buf[PATH_MAX];

    if (p[0] == '/' || slash == NULL)
        return strdup(p);
    if (snprintf(buf, sizeof(buf), "%.*s/%s", (int)(slash - config_path), config_path, p) >=
        (int)sizeof(buf))
        return NULL;
    return strdup(buf);
}

int fleet_config_build(struct fleet_config *out, const struct fleet_raw *r, const char *config_path,
                       char *ypath, size_t ypath_cap, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    snprintf(ypath, ypath_cap, "fleet");
    if (r == NULL)
        return 0;
    if (r->endpoints_count == 0) {
        snprintf(ypath, ypath_cap, "fleet");
        snprintf(err, errlen, "name at least one etcd endpoint (HOST:PORT)");
        return -1;
    }
    out->endpoints = calloc(r->endpoints_count, sizeof(*out->endpoints));
    if (out->endpoints == NULL)
        goto nomem;
    for (unsigned i = 0; i < r->endpoints_count; i++) {
        const char *e = r->endpoints[i];

        if (strncmp(e, "http://", 7) == 0 || strncmp(e, "https://", 8) == 0 ||
            (strncmp(e, "unix:", 5) != 0 && strchr(e, ':') == NULL)) {
            snprintf(ypath, ypath_cap, "fleet.endpoints[%u]", i);
            snprintf(err, errlen,
                     "\"%s\": write HOST:PORT or unix:/path (plaintext gRPC; see "
                     "docs/fleet.md for how the connection is protected)",
                     e);
            goto err;
        }
        out->endpoints[i] = strdup(e);
        if (out->endpoints[i] == NULL)
            goto nomem;
        out->n_endpoints++;
    }
    out->prefix = strdup(r->prefix != NULL ? r->prefix : "/certval/");
    if (out->prefix == NULL)
        goto nomem;
    if (out->prefix[strlen(out->prefix) - 1] != '/') {
        snprintf(ypath, ypath_cap, "fleet.prefix");
        snprintf(err, errlen, "must end with '/'");
        goto err;
    }
    if (uint_in(&out->timeout_ms, r->timeout_ms, 2000, 100, 60000, "timeout_ms", ypath, ypath_cap,
                err, errlen) ||
        uint_in(&out->start_timeout_ms, r->start_timeout_ms, 10000, 0, 600000, "start_timeout_ms",
                ypath, ypath_cap, err, errlen) ||
        uint_in(&out->max_backoff_ms, r->max_backoff_ms, 5000, 100, 600000, "max_backoff_ms", ypath,
                ypath_cap, err, errlen) ||
        uint_in(&out->max_disconnected_seconds, r->max_disconnected_seconds, 0, 0, 86400 * 30,
                "max_disconnected_seconds", ypath, ypath_cap, err, errlen))
        goto err;
    if ((r->user != NULL) != (r->password_file != NULL)) {
        snprintf(ypath, ypath_cap, "fleet");
        snprintf(err, errlen, "user and password_file go together");
        goto err;
    }
    if (r->user != NULL) {
        out->user = strdup(r->user);
        out->password_file = resolve(config_path, r->password_file);
        if (out->user == NULL || out->password_file == NULL)
            goto nomem;
    }
    out->enabled = true;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
err:
    fleet_config_clear(out);
    return -1;
}

void fleet_config_clear(struct fleet_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_endpoints; i++)
        free(c->endpoints[i]);
    free(c->endpoints);
    free(c->prefix);
    free(c->user);
    free(c->password_file);
    memset(c, 0, sizeof(*c));
}
