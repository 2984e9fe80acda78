/* Test support: a private temporary folder per test. Criterion runs each
 * test in its own process, so a suite's .init makes the folder and .fini
 * removes it. Failures stop the calling test (Criterion assertions). */
#ifndef CERTVAL_TEST_TMPDIR_H
#define CERTVAL_TEST_TMPDIR_H

#include <stddef.h>

/* TS_TMPDIR_MAX is enough for "/tmp/certval-<tag>-XXXXXX" with a tag of up
 * to 32 bytes. */
#define TS_TMPDIR_MAX 64

/* ts_tmpdir_make creates /tmp/certval-|tag|-XXXXXX (mode 0700) and writes
 * its path to |dir| (TS_TMPDIR_MAX bytes). */
void ts_tmpdir_make(char dir[TS_TMPDIR_MAX], const char *tag);

/* ts_tmpdir_remove removes |dir| and everything under it, without a shell;
 * an empty |dir| (never made) is accepted. Clears |dir|. */
void ts_tmpdir_remove(char dir[TS_TMPDIR_MAX]);

/* ts_path writes |dir|/|name| to |out|; the test fails if it does not fit. */
void ts_path(char *out, size_t cap, const char *dir, const char *name);

/* ts_write_file writes |len| bytes of |data| to |path| (created or
 * truncated). */
void ts_write_file(const char *path, const void *data, size_t len);

#endif
