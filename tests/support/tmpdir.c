/* Test support: temporary folders (tmpdir.h). */
#define _GNU_SOURCE
#include "tmpdir.h"

#include <criterion/criterion.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ts_tmpdir_make(char dir[TS_TMPDIR_MAX], const char *tag)
{
    int n = snprintf(dir, TS_TMPDIR_MAX, "/tmp/certval-%s-XXXXXX", tag);

    cr_assert(n > 0 && n < TS_TMPDIR_MAX, "tag %s too long", tag);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

void ts_tmpdir_remove(char dir[TS_TMPDIR_MAX])
{
    if (dir[0] == '\0')
        return;
    /* Only our own folders: a bad |dir| must never remove anything else. */
    cr_assert(strncmp(dir, "/tmp/certval-", 13) == 0, "refusing to remove %s", dir);
    cr_expect_eq(nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0, "removing %s", dir);
    dir[0] = '\0';
}

void ts_path(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);

    cr_assert(n > 0 && (size_t)n < cap, "path %s/%s too long", dir, name);
}

void ts_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len, "writing %s", path);
    cr_assert_eq(fclose(f), 0, "closing %s", path);
}
