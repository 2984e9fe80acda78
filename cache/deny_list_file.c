/* The deny list's store file (deny_list.h: deny_list_save, deny_list_load,
 * and the write-through of deny_list_set_store): an atomically replaced
 * text file, format below. */
#include "deny_list_internal.h"
#include "hex.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <urcu/urcu-memb.h>

#include <openssl/bytestring.h>
#include <openssl/mem.h>

#define DL_FILE_MAGIC "certval-deny-list 1"
#define DL_LINE_MAX 1024  /* bytes per line, newline excluded */

/* ---- persistence: saving --------------------------------------------------
 *
 * File format, version 1 (one entry per line, fields separated by one space,
 * binary fields in lowercase hex, the reason as hex of its UTF-8 bytes or
 * "-" when empty, times as decimal Unix seconds):
 *
 *   certval-deny-list 1
 *   serial <issuer-name-sha256> <serial> <created_at> <expires_at> <reason>
 *   leaf <leaf-sha256> <created_at> <expires_at> <reason>
 *   end <number of entry lines>
 *
 * The "end" line catches a truncated file (the rename makes that unlikely,
 * a hand copy does not). The longest line is about 500 bytes. */

static void hex_put(FILE *f, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        putc(digits[p[i] >> 4], f);
        putc(digits[p[i] & 15], f);
    }
}

static int save_entry(const struct deny_list_entry *e, void *arg)
{
    FILE *f = arg;

    fputs(e->kind == DENY_LIST_SERIAL ? "serial " : "leaf ", f);
    hex_put(f, e->id, 32);
    if (e->kind == DENY_LIST_SERIAL) {
        putc(' ', f);
        hex_put(f, e->serial, e->serial_len);
    }
    fprintf(f, " %lld %lld ", (long long)e->created_at, (long long)e->expires_at);
    if (e->reason[0] == 0)
        putc('-', f);
    else
        hex_put(f, (const uint8_t *)e->reason, strlen(e->reason));
    putc('\n', f);
    return ferror(f) ? -1 : 0;
}

/* fsync_dir makes the rename durable (POSIX: the directory entry is data of
 * the directory). */
static int fsync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;

    if (n == 0)
        n = 1; /* "/file" */
    if (n >= sizeof(dir))
        return -1;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* dl_write_snap writes |s| to |path| through "|path|.tmp": 0; -1 when |path|
 * is unchanged; -2 when |path| was replaced but the folder's fsync failed
 * (the new file may not survive a crash). The caller keeps |s| alive. */
int dl_write_snap(const struct dl_snap *s, const char *path, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    FILE *f = NULL;
    int fd = -1, rc = -1;

    if (path == NULL || snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        ERRF("bad path");
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        ERRF("%s: %s", tmp, strerror(errno));
        goto err;
    }
    fd = -1; /* owned by f now */
    fprintf(f, "%s\n", DL_FILE_MAGIC);
    if (dl_snap_foreach(s, save_entry, f) != 0 || fprintf(f, "end %zu\n", s->count) < 0 ||
        fflush(f) != 0 || fsync(fileno(f)) != 0) {
        ERRF("%s: write failed: %s", tmp, strerror(errno));
        goto err;
    }
    if (fclose(f) != 0) {
        f = NULL;
        ERRF("%s: close failed: %s", tmp, strerror(errno));
        goto err;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        ERRF("rename %s to %s: %s", tmp, path, strerror(errno));
        goto err;
    }
    if (fsync_dir(path) != 0) {
        ERRF("%s: fsync of the directory failed: %s", path, strerror(errno));
        return -2;
    }
    rc = 0;
err:
    if (f != NULL)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int deny_list_save(const struct deny_list *d, const char *path, char *err, size_t errlen)
{
    int rc;

    if (d == NULL || path == NULL) {
        ERRF("bad path");
        return -1;
    }
    /* The write lock, not the read lock: no writer can free the snapshot
     * while we hold it, the walk may take a while without delaying grace
     * periods, and two saves cannot interleave on the same .tmp file. */
    pthread_mutex_lock((pthread_mutex_t *)&d->write_lock);
    rc = dl_write_snap(d->snap, path, err, errlen);
    pthread_mutex_unlock((pthread_mutex_t *)&d->write_lock);
    return rc == 0 ? 0 : -1;
}

/* ---- persistence: loading ------------------------------------------------ */

struct dl_loader {
    struct deny_list *d;
    struct dl_snap *snap;   /* private until published */
    size_t entry_lines;
    bool ended;
};

/* next_field cuts the next space-separated field off |line|. */
static bool next_field(CBS *line, CBS *out)
{
    const uint8_t *p = CBS_data(line);
    size_t n = CBS_len(line), i = 0;

    while (i < n && p[i] != ' ')
        i++;
    if (i == 0)
        return false;
    CBS_init(out, p, i);
    CBS_skip(line, i < n ? i + 1 : i);
    return true;
}

/* hex_field decodes |f| into |out| (at most |cap| bytes). */
static bool hex_field(const CBS *f, uint8_t *out, size_t cap, size_t *out_len)
{
    return hex_decode(out, cap, out_len, (const char *)CBS_data(f), CBS_len(f)) == 0;
}

/* time_field parses a non-negative decimal int64 without strtoll's
 * leniencies (sign, spaces, empty). */
static bool time_field(const CBS *f, int64_t *out)
{
    const uint8_t *p = CBS_data(f);
    size_t n = CBS_len(f);
    int64_t v = 0;

    if (n == 0 || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (INT64_MAX - (p[i] - '0')) / 10)
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* loader_grow doubles the private table when it would pass half full. */
static int loader_grow(struct dl_loader *L)
{
    if (2 * (L->snap->count + 1) <= L->snap->mask + 1)
        return 0;
    struct dl_snap *bigger = dl_snap_rebuild(L->snap, -1, L->snap->count + 1, false, 0);
    if (bigger == NULL)
        return -1;
    free(L->snap);
    L->snap = bigger;
    return 0;
}

/* load_entry parses one "serial"/"leaf" line (after its first field). */
static const char *load_entry(struct dl_loader *L, uint8_t kind, CBS *rest, int64_t now)
{
    uint8_t id[32], serial[DENY_LIST_SERIAL_MAX], reason[DENY_LIST_REASON_MAX + 1];
    size_t id_len = 0, serial_len = 0, reason_len = 0;
    int64_t created, expires;
    CBS f;

    if (!next_field(rest, &f) || !hex_field(&f, id, 32, &id_len) || id_len != 32)
        return "bad SHA-256 field";
    if (kind == DENY_LIST_SERIAL) {
        if (!next_field(rest, &f) || !hex_field(&f, serial, sizeof(serial), &serial_len))
            return "bad serial field";
        const uint8_t *sp = serial;
        serial_minimal(&sp, &serial_len);
        if (sp != serial)
            return "serial not minimally encoded";
    }
    if (!next_field(rest, &f) || !time_field(&f, &created))
        return "bad created_at field";
    if (!next_field(rest, &f) || !time_field(&f, &expires))
        return "bad expires_at field";
    if (!next_field(rest, &f))
        return "missing reason field";
    if (!CBS_mem_equal(&f, (const uint8_t *)"-", 1) &&
        !hex_field(&f, reason, DENY_LIST_REASON_MAX, &reason_len))
        return "bad reason field";
    if (CBS_len(rest) != 0)
        return "trailing fields";
    if (!dl_utf8_ok(reason, reason_len))
        return "reason is not UTF-8 text without control characters";
    L->entry_lines++;
    if (L->entry_lines > DENY_LIST_MAX_ENTRIES)
        return "more than 1000000 entries";
    if (expires != 0 && now >= expires)
        return NULL; /* expired while stored: dropped */
    struct dl_key k = {kind, id, serial, serial_len};
    uint64_t hash = dl_key_hash(L->d, &k);
    if (dl_snap_find(L->snap, hash, &k) >= 0)
        return "duplicate entry";
    reason[reason_len] = 0;
    if (loader_grow(L) != 0)
        return "out of memory";
    struct dl_entry *e = dl_entry_new(&k, (const char *)reason, reason_len, created, expires);
    if (e == NULL)
        return "out of memory";
    dl_snap_put(L->snap, hash, e);
    return NULL;
}

/* load_line parses one line (without its newline); NULL or a problem. */
static const char *load_line(struct dl_loader *L, const char *line, size_t len, size_t lineno,
                             int64_t now)
{
    CBS rest, f;

    if (lineno == 1)
        return strcmp(line, DL_FILE_MAGIC) == 0 ? NULL : "not a certval deny list version 1";
    if (L->ended)
        return "data after the end line";
    CBS_init(&rest, (const uint8_t *)line, len);
    if (!next_field(&rest, &f))
        return "empty line";
    if (CBS_mem_equal(&f, (const uint8_t *)"serial", 6))
        return load_entry(L, DENY_LIST_SERIAL, &rest, now);
    if (CBS_mem_equal(&f, (const uint8_t *)"leaf", 4))
        return load_entry(L, DENY_LIST_LEAF, &rest, now);
    if (CBS_mem_equal(&f, (const uint8_t *)"end", 3)) {
        int64_t n;
        if (!next_field(&rest, &f) || !time_field(&f, &n) || CBS_len(&rest) != 0)
            return "bad end line";
        if ((uint64_t)n != L->entry_lines)
            return "end line count does not match the entries (truncated file?)";
        L->ended = true;
        return NULL;
    }
    return "unknown line type";
}

int deny_list_load(struct deny_list *d, const char *path, int64_t now, char *err, size_t errlen)
{
    struct dl_loader L = {.d = d};
    char line[DL_LINE_MAX + 2]; /* the line, its newline, the NUL */
    const char *problem = NULL;
    size_t lineno = 0;
    FILE *f = NULL;

    if (d == NULL || path == NULL) {
        ERRF("NULL argument");
        return -1;
    }
    f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        ERRF("%s: %s", path, strerror(errno));
        return -1;
    }
    L.snap = dl_snap_alloc(0);
    if (L.snap == NULL) {
        problem = "out of memory";
        goto err;
    }
    /* At most 1M entry lines + header + end line; the entry limit stops the
     * loop long before it could run away. */
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);
        lineno++;
        if (len == 0 || line[len - 1] != '\n') {
            problem = len > DL_LINE_MAX ? "line longer than 1024 bytes" : "missing newline";
            goto err;
        }
        line[--len] = 0;
        if (memchr(line, 0, len) != NULL) {
            problem = "NUL byte in line";
            goto err;
        }
        problem = load_line(&L, line, len, lineno, now);
        if (problem != NULL)
            goto err;
    }
    if (ferror(f)) {
        problem = "read error";
        goto err;
    }
    lineno++;
    if (!L.ended) {
        problem = lineno == 1 ? "empty file" : "missing end line (truncated file?)";
        goto err;
    }
    fclose(f);
    pthread_mutex_lock(&d->write_lock);
    dl_publish(d, L.snap, NULL, 0, true);
    pthread_mutex_unlock(&d->write_lock);
    return 0;
err:
    ERRF("%s:%zu: %s", path, lineno, problem);
    fclose(f);
    dl_snap_free_entries(L.snap);
    free(L.snap);
    return -1;
}
