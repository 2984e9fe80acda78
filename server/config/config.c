/* certval configuration loader (config.h, docs/configuration.md).
 *
 * Three passes over one in-memory copy of the file:
 *  1. libyaml builds a line index (config_lines.c): every mapping key and
 *     sequence entry, named like "profiles[1].name", with its line. It
 *     also reports syntax errors with their line.
 *  2. libcyaml loads the file into the raw_* structures (config_schema.c),
 *     refusing unknown keys and wrongly typed values. Its log messages are
 *     captured; the first error and its backtrace line become the message.
 *  3. cfg_build (config_build.c) checks what a schema cannot (ranges,
 *     uniqueness, consistency, files), applies defaults, resolves relative
 *     paths and fills struct certval_config. Errors name the line through
 *     the index.
 *
 * Numeric keys are pointers in the raw structures so that "absent" (NULL,
 * default applies) differs from an explicit 0. */
#include "config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
