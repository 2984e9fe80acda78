#include "pkits_manifest.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validator.h"
#include "verdict.h"

/* class_matches: is |r| one of the reasons the manifest class allows? */
bool pkits_class_matches(const char *cls, enum verdict_reason r)
{
    static const struct {
        const char *cls;
        enum verdict_reason r[2];
    } map[] = {
        {"policy", {VERDICT_REASON_POLICY, VERDICT_REASON_POLICY}},
        {"revoked", {VERDICT_REASON_REVOKED, VERDICT_REASON_REVOKED}},
        {"crl-problem", {VERDICT_REASON_REVOCATION_UNKNOWN, VERDICT_REASON_REVOCATION_STALE}},
        {"name-constraints", {VERDICT_REASON_NAME_CONSTRAINTS, VERDICT_REASON_NAME_CONSTRAINTS}},
        {"basic-constraints", {VERDICT_REASON_BASIC_CONSTRAINTS, VERDICT_REASON_PATH_TOO_LONG}},
        {"key-usage", {VERDICT_REASON_KEY_USAGE, VERDICT_REASON_KEY_USAGE}},
        {"validity", {VERDICT_REASON_EXPIRED, VERDICT_REASON_NOT_YET_VALID}},
        {"signature", {VERDICT_REASON_BAD_SIGNATURE, VERDICT_REASON_BAD_SIGNATURE}},
        {"name-chaining", {VERDICT_REASON_NAME_CHAINING, VERDICT_REASON_UNTRUSTED_ISSUER}},
        {"critical-extension",
         {VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION, VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION}},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].cls, cls) == 0)
            return r == map[i].r[0] || r == map[i].r[1];
    return false;
}

/* split_list splits a comma list in place ("-" = empty). */
static size_t split_list(char *s, char **out, size_t max)
{
    size_t n = 0;
    if (strcmp(s, "-") == 0)
        return 0;
    for (char *p = s; p != NULL && n < max;) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        out[n++] = p;
        p = comma != NULL ? comma + 1 : NULL;
    }
    return n;
}

static size_t split_tabs(char *line, char **f, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        p = strchr(p, '\t');
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    return n;
}

size_t pkits_load_manifest(struct pkits_row *rows, char **store)
{
    FILE *f = fopen(CERTVAL_PKITS_DIR "/manifest.tsv", "r");
    char line[4096];
    size_t n = 0, lineno = 0;

    cr_assert_not_null(f, "cannot open %s", CERTVAL_PKITS_DIR "/manifest.tsv");
    while (fgets(line, sizeof(line), f) != NULL && n < PKITS_MAX_ROWS) {
        char *fld[16];
        line[strcspn(line, "\r\n")] = '\0';
        if (lineno++ == 0)
            continue; /* header */
        char *copy = strdup(line);
        store[n] = copy;
        cr_assert_eq(split_tabs(copy, fld, 16), 13, "manifest line %zu: 13 columns", lineno);
        struct pkits_row *r = &rows[n++];
        memset(r, 0, sizeof(*r));
        snprintf(r->id, sizeof(r->id), "%s", fld[0]);
        snprintf(r->name, sizeof(r->name), "%s", fld[1]);
        r->n_path = split_list(fld[2], r->path, PKITS_MAX_LIST);
        r->n_other = split_list(fld[3], r->other, PKITS_MAX_LIST);
        r->n_crls = split_list(fld[4], r->crls, PKITS_MAX_LIST);
        r->n_policies = split_list(fld[5], r->policies, PKITS_MAX_LIST);
        r->explicit_policy = strcmp(fld[6], "1") == 0;
        r->inhibit_map = strcmp(fld[7], "1") == 0;
        r->inhibit_any = strcmp(fld[8], "1") == 0;
        r->expect_valid = strcmp(fld[9], "valid") == 0;
        snprintf(r->reason, sizeof(r->reason), "%s", fld[10]);
    }
    fclose(f);
    return n;
}

void pkits_push_cert(STACK_OF(X509) *sk, const char *name)
{
    char path[512], err[256];
    STACK_OF(X509) *one = NULL;
    snprintf(path, sizeof(path), "%s/certs/%s", CERTVAL_PKITS_DIR, name);
    cr_assert_eq(cv_load_certs(&one, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(sk_X509_num(one), 1);
    X509 *x = sk_X509_shift(one);
    cr_assert(sk_X509_push(sk, x));
    sk_X509_free(one);
}


void pkits_row_certs(const struct pkits_row *r, STACK_OF(X509) *anchors,
                     STACK_OF(X509) *untrusted, STACK_OF(X509) *leafs)
{
    cr_assert(r->n_path >= 2, "%s: path too short", r->id);
    pkits_push_cert(anchors, r->path[0]);
    for (size_t i = 1; i + 1 < r->n_path; i++)
        pkits_push_cert(untrusted, r->path[i]);
    for (size_t i = 0; i < r->n_other; i++)
        pkits_push_cert(untrusted, r->other[i]);
    pkits_push_cert(leafs, r->path[r->n_path - 1]);
}

void pkits_path_options(struct path_options *o)
{
    memset(o, 0, sizeof(*o));
    o->at = PKITS_AT;
    o->crl_check = CRL_CHECK_NONE;
    o->purpose = PATH_PURPOSE_ANY;
    /* PKITS 4.1.4/4.1.5 are DSA with SHA-1, 4.4.14 has a negative serial
     * and 4.6.4 a non-critical basicConstraints in a CA, all expected
     * valid: the suite runs under the legacy algorithm policy with compat
     * (docs/conformance.md). */
    o->conformance.algorithms = ALGORITHMS_LEGACY;
    o->conformance.compat = true;
}

struct pkits_section *pkits_section_of(struct pkits_section *s, size_t *n, const char *id)
{
    char sec[8];
    const char *dot2 = strchr(strchr(id, '.') + 1, '.');

    snprintf(sec, sizeof(sec), "%.*s", (int)(dot2 - id), id);
    for (size_t i = 0; i < *n; i++)
        if (strcmp(s[i].sec, sec) == 0)
            return &s[i];
    memset(&s[*n], 0, sizeof(s[*n]));
    snprintf(s[*n].sec, sizeof(s[*n].sec), "%s", sec);
    return &s[(*n)++];
}

size_t pkits_table_load(struct pkits_table *t)
{
    size_t n = pkits_load_manifest(t->rows, t->store);

    t->out = (struct pkits_outcome){.rows = t->rows,
                                    .n_rows = n,
                                    .ok = t->ok,
                                    .observed = t->observed,
                                    .details = t->details,
                                    .secs = t->secs};
    return n;
}

void pkits_table_clear(struct pkits_table *t)
{
    for (size_t i = 0; i < t->out.n_rows; i++)
        free(t->store[i]);
}

void pkits_outcome_add(struct pkits_outcome *o, size_t i, enum verdict_reason got,
                       const struct pkits_pending *pending)
{
    const struct pkits_row *r = &o->rows[i];
    struct pkits_section *s = pkits_section_of(o->secs, &o->n_secs, r->id);

    snprintf(o->observed[i], sizeof(o->observed[i]), "%s",
             got == VERDICT_REASON_OK ? "valid" : verdict_reason_name(got));
    o->ok[i] = pkits_row_ok(r, got);
    s->total++;
    s->pass += o->ok[i];
    o->pass += o->ok[i];
    o->total++;
    if (pkits_pending_find(pending, r->id) != NULL) {
        s->pending++;
        o->pending++;
    }
}

void pkits_expect_pending_known(const struct pkits_pending *pending, const struct pkits_row *rows,
                                size_t n)
{
    for (size_t i = 0; pending[i].id != NULL; i++) {
        bool seen = false;

        for (size_t j = 0; j < n; j++)
            seen = seen || strcmp(rows[j].id, pending[i].id) == 0;
        cr_expect(seen, "pending id %s is not in the manifest", pending[i].id);
    }
}

void pkits_write_results(FILE *md, const struct pkits_outcome *o)
{
    fprintf(md, "| section | pass / total | pending |\n| --- | --- | --- |\n");
    for (size_t i = 0; i < o->n_secs; i++)
        fprintf(md, "| %s | %u / %u | %u |\n", o->secs[i].sec, o->secs[i].pass, o->secs[i].total,
                o->secs[i].pending);
    fprintf(md, "| **all** | **%u / %u** | %u |\n\n", o->pass, o->total, o->pending);
    fprintf(md, "Deviations:\n\n| id | name | expected | observed | detail |\n"
                "| --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < o->n_rows; i++) {
        const struct pkits_row *r = &o->rows[i];

        if ((o->counted != NULL && !o->counted[i]) || o->ok[i])
            continue;
        fprintf(md, "| %s | %s | %s %s | %s | %s |\n", r->id, r->name,
                r->expect_valid ? "valid" : "invalid", r->expect_valid ? "" : r->reason,
                o->observed[i], o->details[i]);
    }
}

const struct pkits_pending *pkits_pending_find(const struct pkits_pending *table, const char *id)
{
    for (size_t i = 0; table[i].id != NULL; i++)
        if (strcmp(table[i].id, id) == 0)
            return &table[i];
    return NULL;
}

const struct pkits_row *pkits_row_get(const char *id)
{
    static struct pkits_row rows[PKITS_MAX_ROWS];
    static char *store[PKITS_MAX_ROWS];
    static size_t n;

    if (n == 0)
        n = pkits_load_manifest(rows, store);
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].id, id) == 0)
            return &rows[i];
    cr_assert_fail("%s: no such row in the manifest", id);
    return NULL;
}

bool pkits_row_ok(const struct pkits_row *r, enum verdict_reason got)
{
    if (r->expect_valid)
        return got == VERDICT_REASON_OK;
    return got != VERDICT_REASON_OK && pkits_class_matches(r->reason, got);
}

void pkits_expect_row(const struct pkits_row *r, enum verdict_reason got, const char *detail,
                      const struct pkits_pending *pending)
{
    const char *observed = got == VERDICT_REASON_OK ? "valid" : verdict_reason_name(got);
    const struct pkits_pending *p = pkits_pending_find(pending, r->id);
    bool ok = pkits_row_ok(r, got);

    if (p != NULL) {
        cr_expect(!ok, "%s %s: pending but now conforms; remove it from the pending table", r->id,
                  r->name);
        cr_expect_str_eq(observed, p->observed, "%s %s: pending row changed outcome: %s (%s)",
                         r->id, r->name, observed, detail);
        return;
    }
    cr_expect(ok, "%s %s: expected %s %s, got %s: %s", r->id, r->name,
              r->expect_valid ? "valid" : "invalid", r->reason, observed, detail);
}
