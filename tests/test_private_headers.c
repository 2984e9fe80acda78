/* Private headers stay private (issue 10.1): a header named *_internal.h
 * is included only by files of its own folder or of a subfolder of it
 * (server/frontends/ may include server/server_internal.h; tests/ may not
 * include cache/crl_parse_internal.h). What another folder needs goes in a
 * public header (validator/pathval.h, validator/issue/crl_gen.h, ...).
 *
 * The check reads every C source and header of the project's code folders
 * and follows each #include of an *_internal.h the way the compiler finds
 * it: a path with a folder is resolved from the including file, a bare name
 * is the header next to the including file, else the one in an enclosing
 * folder. A self-test on a made-up tree shows the check refuses what it
 * should. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILES 4096

/* Known exceptions, each with the reason it is not fixed yet. An exception
 * that no longer matches any include fails the test, so the table only
 * shrinks. */
struct exception {
    const char *file;   /* relative to the source root */
    const char *header; /* as written in the #include */
    const char *why;
};

/* None today. The last one, tests/test_crl_fetch.c including the fetcher's
 * crl_fetch_http.h, ended when that header became the public
 * crl_fetch_http.h of certval_runtime. The sentinel keeps the array valid C. */
static const struct exception exceptions[] = {
    {NULL, NULL, NULL},
};

struct tree {
    char *files[MAX_FILES]; /* relative paths of .c, .cc and .h files */
    size_t n_files;
    char *headers[MAX_FILES]; /* the *_internal.h among them */
    size_t n_headers;
};

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

/* path_fits: snprintf's result |n| fit a buffer of |cap| bytes. */
static bool path_fits(int n, size_t cap)
{
    return n >= 0 && (size_t)n < cap;
}

/* dir_of writes the folder part of |path| ("" for none). */
static void dir_of(char *out, size_t cap, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash != NULL ? (size_t)(slash - path) : 0;

    if (n >= cap)
        n = cap - 1;
    memcpy(out, path, n);
    out[n] = '\0';
}

/* walk adds the sources under |root|/|rel| to |t|. */
static void walk(struct tree *t, const char *root, const char *rel)
{
    char path[PATH_MAX], sub[PATH_MAX];
    struct dirent *de;
    struct stat st;
    DIR *d;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    d = opendir(path);
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "node_modules") == 0)
            continue;
        if (!path_fits(snprintf(sub, sizeof(sub), "%s/%s", rel, de->d_name), sizeof(sub)) ||
            !path_fits(snprintf(path, sizeof(path), "%s/%s", root, sub), sizeof(path)))
            cr_assert_fail("path too long under %s/%s", root, rel);
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            walk(t, root, sub);
        } else if (S_ISREG(st.st_mode) &&
                   (ends_with(sub, ".c") || ends_with(sub, ".cc") || ends_with(sub, ".h"))) {
            cr_assert_lt(t->n_files, MAX_FILES);
            t->files[t->n_files++] = strdup(sub);
            if (ends_with(sub, "_internal.h"))
                t->headers[t->n_headers++] = t->files[t->n_files - 1];
        }
    }
    closedir(d);
}

static void tree_free(struct tree *t)
{
    for (size_t i = 0; i < t->n_files; i++)
        free(t->files[i]);
    t->n_files = t->n_headers = 0;
}

/* inside: |dir| is |owner| or a folder below it. */
static bool inside(const char *dir, const char *owner)
{
    size_t n = strlen(owner);
    return strncmp(dir, owner, n) == 0 && (dir[n] == '\0' || dir[n] == '/');
}

/* owner_of finds the folder of the *_internal.h that |file| gets for
 * #include |name|: false when |name| is not one of the project's. */
static bool owner_of(char *out, size_t cap, const struct tree *t, const char *root,
                     const char *file, const char *name)
{
    char fdir[PATH_MAX], path[PATH_MAX], real[PATH_MAX], rroot[PATH_MAX];
    const char *best = NULL;
    size_t best_len = 0;

    dir_of(fdir, sizeof(fdir), file);
    if (strchr(name, '/') != NULL) {
        if (path_fits(snprintf(path, sizeof(path), "%s/%s/%s", root, fdir, name), sizeof(path)) &&
            realpath(path, real) != NULL && realpath(root, rroot) != NULL && inside(real, rroot)) {
            dir_of(out, cap, real + strlen(rroot) + 1);
            return true;
        }
    }
    /* A bare name: the header next to |file| first, then the nearest one
     * in an enclosing folder; else any header of that name (another
     * folder's, reached through an include path). */
    for (size_t i = 0; i < t->n_headers; i++) {
        char hdir[PATH_MAX];

        if (strcmp(base_name(t->headers[i]), base_name(name)) != 0)
            continue;
        dir_of(hdir, sizeof(hdir), t->headers[i]);
        if (inside(fdir, hdir) && (best == NULL || strlen(hdir) > best_len)) {
            best = t->headers[i];
            best_len = strlen(hdir);
        } else if (best == NULL) {
            best = t->headers[i];
        }
    }
    if (best == NULL)
        return false;
    dir_of(out, cap, best);
    return true;
}

static const struct exception *find_exception(const char *file, const char *name)
{
    for (size_t i = 0; exceptions[i].file != NULL; i++) {
        if (strcmp(exceptions[i].file, file) == 0 && strcmp(exceptions[i].header, name) == 0)
            return &exceptions[i];
    }
    return NULL;
}

/* check_file appends to |report| every include of another folder's private
 * header in |file|; returns how many. Marks the exceptions it used. */
static size_t check_file(const struct tree *t, const char *root, const char *file, bool *used,
                         char *report, size_t cap)
{
    char path[PATH_MAX], line[1024], name[PATH_MAX], owner[PATH_MAX], fdir[PATH_MAX];
    size_t bad = 0;
    unsigned lineno = 0;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", root, file);
    fp = fopen(path, "r");
    cr_assert_not_null(fp, "cannot read %s", path);
    dir_of(fdir, sizeof(fdir), file);
    while (fgets(line, sizeof(line), fp) != NULL) {
        const char *p = line;
        size_t n;

        lineno++;
        p += strspn(p, " \t");
        if (*p++ != '#')
            continue;
        p += strspn(p, " \t");
        if (strncmp(p, "include", 7) != 0)
            continue;
        p += 7;
        p += strspn(p, " \t");
        if (*p != '"' && *p != '<')
            continue;
        n = strcspn(p + 1, "\">");
        if (n == 0 || n >= sizeof(name))
            continue;
        memcpy(name, p + 1, n);
        name[n] = '\0';
        if (!ends_with(name, "_internal.h") || !owner_of(owner, sizeof(owner), t, root, file, name))
            continue;
        if (owner[0] != '\0' && inside(fdir, owner))
            continue;
        const struct exception *e = find_exception(file, name);
        if (e != NULL) {
            used[e - exceptions] = true;
            continue;
        }
        bad++;
        size_t len = strlen(report);
        snprintf(report + len, cap - len, "%s:%u includes %s, private to %s/\n", file, lineno, name,
                 owner);
    }
    fclose(fp);
    return bad;
}

/* check_tree runs the check on the |parts| folders of |root|. */
static size_t check_tree(struct tree *t, const char *root, const char *const *parts, size_t n_parts,
                         bool *used, char *report, size_t cap)
{
    size_t bad = 0;

    report[0] = '\0';
    for (size_t i = 0; i < n_parts; i++)
        walk(t, root, parts[i]);
    for (size_t i = 0; i < t->n_files; i++)
        bad += check_file(t, root, t->files[i], used, report, cap);
    return bad;
}

static const char *const code_parts[] = {"cache",    "validator", "server",
                                         "loadtest", "tests",     "proto"};

Test(private_headers, only_their_own_folder_includes_them)
{
    static char report[16384];
    bool used[sizeof(exceptions) / sizeof(exceptions[0])] = {false}; /* + the sentinel */
    struct tree t = {0};
    size_t bad =
        check_tree(&t, CERTVAL_SOURCE_DIR, code_parts, sizeof(code_parts) / sizeof(code_parts[0]),
                   used, report, sizeof(report));

    /* The walk really saw the project (nine *_internal.h today). */
    cr_expect_gt(t.n_files, 100, "only %zu source files under %s", t.n_files, CERTVAL_SOURCE_DIR);
    cr_expect_geq(t.n_headers, 5, "only %zu *_internal.h found", t.n_headers);
    cr_expect_eq(bad, 0, "private headers included from another folder:\n%s", report);
    for (size_t i = 0; exceptions[i].file != NULL; i++)
        cr_expect(used[i], "exception %s / %s no longer needed: remove it", exceptions[i].file,
                  exceptions[i].header);
    tree_free(&t);
}

/* put writes |text| to |root|/|rel|, creating its folders. */
static void put(const char *root, const char *rel, const char *text)
{
    char path[PATH_MAX];
    FILE *fp;

    for (const char *s = strchr(rel, '/'); s != NULL; s = strchr(s + 1, '/')) {
        snprintf(path, sizeof(path), "%s/%.*s", root, (int)(s - rel), rel);
        mkdir(path, 0700);
    }
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    fp = fopen(path, "w");
    cr_assert_not_null(fp, "%s", path);
    fputs(text, fp);
    fclose(fp);
}

Test(private_headers, refuses_another_folders_include)
{
    char root[] = "/tmp/certval-private-headers-XXXXXX";
    static char report[4096];
    const char *const parts[] = {"a", "b"};
    bool used[sizeof(exceptions) / sizeof(exceptions[0])] = {false}; /* + the sentinel */
    struct tree t = {0};
    char cmd[PATH_MAX + 16];
    size_t bad;

    cr_assert_not_null(mkdtemp(root));
    put(root, "a/x_internal.h", "/* private to a/ */\n");
    put(root, "a/x.c", "#include \"x_internal.h\"\n");                     /* its own folder */
    put(root, "a/sub/y.c", "  #  include \"x_internal.h\"\n");             /* a subfolder */
    put(root, "a/sub/z.c", "#include \"../x_internal.h\"\n");              /* the same, by path */
    put(root, "b/p.c", "#include <stdio.h>\n#include \"x_internal.h\"\n"); /* refused */
    put(root, "b/q.c", "#include \"../a/x_internal.h\"\n");                /* refused */
    put(root, "b/r.h", "// #include \"x_internal.h\" in a comment\n");     /* not an include */
    bad = check_tree(&t, root, parts, 2, used, report, sizeof(report));
    cr_expect_eq(bad, 2, "%zu refused:\n%s", bad, report);
    cr_expect(strstr(report, "b/p.c:2 includes x_internal.h, private to a/") != NULL, "%s", report);
    cr_expect(strstr(report, "b/q.c:1 includes ../a/x_internal.h, private to a/") != NULL, "%s",
              report);
    tree_free(&t);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    cr_expect_eq(system(cmd), 0);
}
