/* certval configuration, pass 1: the line index (config_internal.h).
 * libyaml walks the file once; every mapping key and sequence entry is
 * recorded, named like "profiles[1].name", with its line, so that every
 * later message can name the line. Syntax errors are reported here. */
#include "config_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

void cfg_index_free(struct cfg_index *idx)
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
size_t cfg_index_line(const struct cfg_index *idx, const char *ypath)
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
size_t cfg_index_key_line(const struct cfg_index *idx, const char *key, size_t from)
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

/* cfg_fail_line writes "PATH:LINE: message" (or "PATH: message" when line
 * is 0) into the caller's buffer. */
void cfg_fail_line(struct cfg_ctx *ctx, size_t line, const char *fmt, ...)
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
int cfg_index_build(struct cfg_ctx *ctx, const char *buf, size_t len)
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
