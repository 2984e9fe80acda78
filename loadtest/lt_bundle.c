/* Packed chain bundle: see lt_bundle.h. */
#include "lt_bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LT_BUNDLE_MAGIC "CVBUNDL1"
#define LT_BUNDLE_VERSION 1u
#define LT_BUNDLE_HEADER 24u
#define LT_BUNDLE_REC_FIXED 8u
#define LT_BUNDLE_MAX_SHARED 64u

static const char *const lt_class_names[LT_N_CLASSES] = {
    [LT_CLASS_TENANT] = "tenant",       [LT_CLASS_DEVICE] = "device",
    [LT_CLASS_REVOKED] = "revoked",     [LT_CLASS_EXPIRED] = "expired",
    [LT_CLASS_UNTRUSTED] = "untrusted", [LT_CLASS_MALFORMED] = "malformed",
    [LT_CLASS_VICTIM] = "victim",
};

const char *lt_class_name(enum lt_class c)
{
    return (unsigned)c < LT_N_CLASSES ? lt_class_names[c] : "?";
}

int lt_class_parse(enum lt_class *out, const char *name, size_t len)
{
    for (int i = 0; i < LT_N_CLASSES; i++) {
        if (strlen(lt_class_names[i]) == len && memcmp(lt_class_names[i], name, len) == 0) {
            *out = (enum lt_class)i;
            return 0;
        }
    }
    return -1;
}

static uint32_t lt_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void lt_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- reader ---- */

struct lt_bundle {
    const uint8_t *map;
    size_t map_len;
    uint64_t *off[LT_N_CLASSES]; /* record offsets per class */
    size_t n[LT_N_CLASSES];
    uint64_t shared[LT_BUNDLE_MAX_SHARED];
    size_t n_shared;
};

void lt_bundle_free(struct lt_bundle *b)
{
    if (b == NULL)
        return;
    for (int i = 0; i < LT_N_CLASSES; i++)
        free(b->off[i]);
    if (b->map != NULL)
        munmap((void *)b->map, b->map_len);
    free(b);
}

size_t lt_bundle_count(const struct lt_bundle *b, enum lt_class c)
{
    return (unsigned)c < LT_N_CLASSES ? b->n[c] : 0;
}

/* lt_bundle_check_record checks that the record at |off| lies inside the
 * mapping and that its certificates add up; returns its total size or 0. */
static size_t lt_bundle_check_record(const struct lt_bundle *b, uint64_t off)
{
    const uint8_t *p = b->map + off;
    size_t len, pos;

    if (b->map_len - off < 4 + LT_BUNDLE_REC_FIXED)
        return 0;
    len = lt_get_u32(p);
    if (len < LT_BUNDLE_REC_FIXED || len > b->map_len - off - 4)
        return 0;
    pos = LT_BUNDLE_REC_FIXED + (size_t)p[4 + 3] + (size_t)p[4 + 4];
    if (p[4 + 1] >= LT_BUNDLE_MAX_CERTS)
        return 0;
    for (unsigned i = 0; i < p[4 + 1]; i++) {
        if (pos + 4 > len || lt_get_u32(p + 4 + pos) > len - pos - 4)
            return 0;
        pos += 4 + lt_get_u32(p + 4 + pos);
    }
    return pos == len ? len + 4 : 0;
}

static int lt_bundle_index(struct lt_bundle *b, uint32_t n_records, char *err, size_t errlen)
{
    uint64_t off = LT_BUNDLE_HEADER;
    size_t cap[LT_N_CLASSES] = {0};

    for (uint32_t r = 0; r < n_records; r++) {
        size_t sz = lt_bundle_check_record(b, off);
        unsigned cls;

        if (sz == 0) {
            snprintf(err, errlen, "bundle: record %u is corrupt", r);
            return -1;
        }
        cls = b->map[off + 4];
        if (cls == LT_CLASS_SHARED) {
            if (b->n_shared == LT_BUNDLE_MAX_SHARED) {
                snprintf(err, errlen, "bundle: too many shared certificates");
                return -1;
            }
            b->shared[b->n_shared++] = off;
        } else if (cls < LT_N_CLASSES) {
            if (b->n[cls] == cap[cls]) {
                size_t nc = cap[cls] ? cap[cls] * 2 : 1024;
                uint64_t *p = realloc(b->off[cls], nc * sizeof(*p));

                if (p == NULL) {
                    snprintf(err, errlen, "bundle: out of memory");
                    return -1;
                }
                b->off[cls] = p;
                cap[cls] = nc;
            }
            b->off[cls][b->n[cls]++] = off;
        }
        off += sz;
    }
    return 0;
}

int lt_bundle_open(struct lt_bundle **out, const char *path, char *err, size_t errlen)
{
    struct lt_bundle *b = calloc(1, sizeof(*b));
    struct stat st;
    int fd = -1;
    void *m;

    *out = NULL;
    if (b == NULL) {
        snprintf(err, errlen, "bundle: out of memory");
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto err;
    }
    if ((size_t)st.st_size < LT_BUNDLE_HEADER) {
        snprintf(err, errlen, "%s: not a chain bundle (too short)", path);
        goto err;
    }
    m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
        goto err;
    }
    b->map = m;
    b->map_len = (size_t)st.st_size;
    if (memcmp(b->map, LT_BUNDLE_MAGIC, 8) != 0 || lt_get_u32(b->map + 8) != LT_BUNDLE_VERSION) {
        snprintf(err, errlen, "%s: not a version-1 chain bundle", path);
        goto err;
    }
    if (lt_bundle_index(b, lt_get_u32(b->map + 12), err, errlen) != 0)
        goto err;
    close(fd);
    *out = b;
    return 0;
err:
    if (fd >= 0)
        close(fd);
    lt_bundle_free(b);
    return -1;
}

int lt_bundle_get(const struct lt_bundle *b, enum lt_class c, size_t i, struct lt_chain *out)
{
    const uint8_t *p;
    size_t pos;
    unsigned ref;

    memset(out, 0, sizeof(*out));
    if ((unsigned)c >= LT_N_CLASSES || i >= b->n[c])
        return -1;
    p = b->map + b->off[c][i] + 4;
    out->cls = c;
    out->n_certs = p[1];
    ref = p[2];
    out->tenant_len = p[3];
    out->device_len = p[4];
    out->tenant = (const char *)p + LT_BUNDLE_REC_FIXED;
    out->device = out->tenant + out->tenant_len;
    pos = LT_BUNDLE_REC_FIXED + out->tenant_len + out->device_len;
    for (size_t k = 0; k < out->n_certs; k++) {
        out->cert_len[k] = lt_get_u32(p + pos);
        out->cert[k] = p + pos + 4;
        pos += 4 + out->cert_len[k];
    }
    if (ref != LT_BUNDLE_NO_REF && ref < b->n_shared) {
        const uint8_t *q = b->map + b->shared[ref] + 4;
        size_t qpos = LT_BUNDLE_REC_FIXED + (size_t)q[3] + (size_t)q[4];

        out->cert_len[out->n_certs] = lt_get_u32(q + qpos);
        out->cert[out->n_certs] = q + qpos + 4;
        out->n_certs++;
    }
    return 0;
}

/* ---- writer ---- */

struct lt_bundle_writer {
    FILE *fp;
    uint32_t n_records;
};

int lt_bundle_writer_open(struct lt_bundle_writer **out, const char *path, char *err,
                          size_t errlen)
{
    struct lt_bundle_writer *w = calloc(1, sizeof(*w));
    uint8_t hdr[LT_BUNDLE_HEADER] = {0};

    *out = NULL;
    if (w == NULL) {
        snprintf(err, errlen, "bundle: out of memory");
        return -1;
    }
    w->fp = fopen(path, "wb");
    if (w->fp == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        free(w);
        return -1;
    }
    memcpy(hdr, LT_BUNDLE_MAGIC, 8);
    lt_put_u32(hdr + 8, LT_BUNDLE_VERSION);
    if (fwrite(hdr, 1, sizeof(hdr), w->fp) != sizeof(hdr)) {
        snprintf(err, errlen, "%s: write failed", path);
        fclose(w->fp);
        free(w);
        return -1;
    }
    *out = w;
    return 0;
}

int lt_bundle_writer_add(struct lt_bundle_writer *w, enum lt_class c, const char *tenant,
                         const char *device, const uint8_t *const *certs, const size_t *lens,
                         size_t n_certs, unsigned shared_ref, char *err, size_t errlen)
{
    size_t tl = tenant ? strlen(tenant) : 0, dl = device ? strlen(device) : 0;
    uint8_t fixed[4 + LT_BUNDLE_REC_FIXED] = {0};
    size_t len = LT_BUNDLE_REC_FIXED + tl + dl;
    bool ok;

    if (tl > 255 || dl > 255 || n_certs >= LT_BUNDLE_MAX_CERTS || shared_ref > 0xff) {
        snprintf(err, errlen, "bundle: record out of limits");
        return -1;
    }
    for (size_t i = 0; i < n_certs; i++)
        len += 4 + lens[i];
    if (len > UINT32_MAX) {
        snprintf(err, errlen, "bundle: record too big");
        return -1;
    }
    lt_put_u32(fixed, (uint32_t)len);
    fixed[4] = (uint8_t)c;
    fixed[5] = (uint8_t)n_certs;
    fixed[6] = (uint8_t)shared_ref;
    fixed[7] = (uint8_t)tl;
    fixed[8] = (uint8_t)dl;
    ok = fwrite(fixed, 1, sizeof(fixed), w->fp) == sizeof(fixed) &&
         fwrite(tenant ? tenant : "", 1, tl, w->fp) == tl &&
         fwrite(device ? device : "", 1, dl, w->fp) == dl;
    for (size_t i = 0; ok && i < n_certs; i++) {
        uint8_t l4[4];

        lt_put_u32(l4, (uint32_t)lens[i]);
        ok = fwrite(l4, 1, 4, w->fp) == 4 && fwrite(certs[i], 1, lens[i], w->fp) == lens[i];
    }
    if (!ok) {
        snprintf(err, errlen, "bundle: write failed");
        return -1;
    }
    w->n_records++;
    return 0;
}

int lt_bundle_writer_close(struct lt_bundle_writer *w, char *err, size_t errlen)
{
    uint8_t n4[4];
    int rc = 0;

    lt_put_u32(n4, w->n_records);
    if (fseek(w->fp, 12, SEEK_SET) != 0 || fwrite(n4, 1, 4, w->fp) != 4) {
        snprintf(err, errlen, "bundle: cannot write the record count");
        rc = -1;
    }
    if (fclose(w->fp) != 0 && rc == 0) {
        snprintf(err, errlen, "bundle: close failed");
        rc = -1;
    }
    free(w);
    return rc;
}
