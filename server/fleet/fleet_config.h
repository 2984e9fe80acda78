/* The `fleet` configuration section (docs/configuration.md, docs/fleet.md):
 * its types, its libcyaml schema and its checks, kept here so that
 * server/config.c only names them. Off when the section is absent.
 *
 * Conventions: 0, or -1 with the key at fault and the problem. */
#ifndef CERTVAL_FLEET_CONFIG_H
#define CERTVAL_FLEET_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cyaml/cyaml.h>

struct fleet_config {
    bool enabled;     /* the section is present */
    char **endpoints; /* etcd client endpoints, "HOST:PORT" or "unix:/path" */
    size_t n_endpoints;
    char *prefix;        /* key prefix, default "/certval/" (ends in '/') */
    uint32_t timeout_ms; /* per etcd call; default 2000 */
    uint32_t
        start_timeout_ms;    /* wait for the first read, then serve the local copy; default 10000 */
    uint32_t max_backoff_ms; /* cap of the reconnect backoff; default 5000 */
    uint32_t max_disconnected_seconds; /* 0 = keep serving the last state; else DENY after */
    char *user;                        /* etcd user, or NULL */
    char *password_file;               /* the user's password, first line */
};

/* The section as libcyaml fills it (numbers are pointers: absent differs
 * from 0). */
struct fleet_raw {
    char **endpoints;
    unsigned endpoints_count;
    char *prefix;
    uint32_t *timeout_ms;
    uint32_t *start_timeout_ms;
    uint32_t *max_backoff_ms;
    uint32_t *max_disconnected_seconds;
    char *user;
    char *password_file;
};

/* The schema of the section's keys, for a CYAML_FIELD_MAPPING_PTR. */
extern const cyaml_schema_field_t fleet_raw_fields[];

/* fleet_config_build checks |r| (NULL: the section is absent, fleet off)
 * and fills |out|, resolving a relative password_file against the folder
 * of |config_path|. Returns 0, or -1 with the key at fault in |ypath|
 * ("fleet.endpoints") and the problem in |err|. */
int fleet_config_build(struct fleet_config *out, const struct fleet_raw *r, const char *config_path,
                       char *ypath, size_t ypath_cap, char *err, size_t errlen);

/* fleet_config_clear frees what |c| holds and zeroes it. */
void fleet_config_clear(struct fleet_config *c);

#endif
