/* Fleet (fleet.h): the local mirror in the state folder, STATE/fleet.txt
 * (the applied revision and the tracked CRL generations), written after
 * the deny list's STATE/deny-list.txt. */
#include "fleet_internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* ---- STATE/fleet.txt ---- */

struct tracked_crl *fleet_tracked_find(struct fleet *f, const char *id)
{
    for (size_t i = 0; i < f->n_tracked; i++)
        if (strcmp(f->tracked[i].id, id) == 0)
            return &f->tracked[i];
    return NULL;
}

struct tracked_crl *fleet_tracked_add(struct fleet *f, const char *id)
{
    struct tracked_crl *t = fleet_tracked_find(f, id);

    if (t != NULL)
        return t;
    if (f->n_tracked == f->cap_tracked) {
        size_t cap = f->cap_tracked ? 2 * f->cap_tracked : 16;
        struct tracked_crl *v = realloc(f->tracked, cap * sizeof(*v));

        if (v == NULL)
            return NULL;
        f->tracked = v;
        f->cap_tracked = cap;
    }
    t = &f->tracked[f->n_tracked++];
    memset(t, 0, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id);
    return t;
}

void fleet_tracked_remove(struct fleet *f, const char *id)
{
    struct tracked_crl *t = fleet_tracked_find(f, id);

    if (t == NULL)
        return;
    *t = f->tracked[f->n_tracked - 1];
    f->n_tracked--;
}

/* fleet_state_save writes STATE/fleet.txt atomically: the applied revision and
 * the CRL generations, so a restart knows what it already has. */
void fleet_state_save(struct fleet *f)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8], err[512];
    FILE *fp;
    int64_t rev;

    if (f->state_dir == NULL)
        return;
    /* The deny list first: fleet.txt must never name a revision whose
     * entries are not on disk. */
    snprintf(path, sizeof(path), "%s/deny-list.txt", f->state_dir);
    if (deny_list_save(f->deny, path, err, sizeof(err)) < 0) {
        log_warn("fleet: cannot mirror the deny list in the state folder: %s", err);
        return;
    }
    pthread_mutex_lock(&f->lock);
    rev = f->applied_revision;
    pthread_mutex_unlock(&f->lock);
    snprintf(path, sizeof(path), "%s/fleet.txt", f->state_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fp = fopen(tmp, "w");
    if (fp == NULL)
        goto fail;
    fprintf(fp, "certval-fleet 1\nrevision %lld\n", (long long)rev);
    for (size_t i = 0; i < f->n_tracked; i++)
        fprintf(fp, "crl %s %s %d %s\n", f->tracked[i].id, f->tracked[i].gen,
                f->tracked[i].refused ? 1 : 0, f->tracked[i].issuer);
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        fclose(fp);
        goto fail;
    }
    if (fclose(fp) != 0 || rename(tmp, path) != 0)
        goto fail;
    return;
fail:
    log_warn("fleet: cannot write %s: %s", path, strerror(errno));
}

/* fleet_state_load reads STATE/fleet.txt (missing: nothing known). */
void fleet_state_load(struct fleet *f)
{
    char path[PATH_MAX], line[600];
    FILE *fp;

    if (f->state_dir == NULL)
        return;
    snprintf(path, sizeof(path), "%s/fleet.txt", f->state_dir);
    fp = fopen(path, "r");
    if (fp == NULL)
        return;
    if (fgets(line, sizeof(line), fp) == NULL || strcmp(line, "certval-fleet 1\n") != 0) {
        log_warn("fleet: %s is not a fleet state file: ignored", path);
        fclose(fp);
        return;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        char id[65], gen[33];
        int refused, off = 0;
        long long rev;

        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "revision %lld", &rev) == 1) {
            f->applied_revision = rev;
        } else if (sscanf(line, "crl %64s %32s %d %n", id, gen, &refused, &off) == 3 && off > 0) {
            struct tracked_crl *t = fleet_tracked_add(f, id);

            if (t != NULL) {
                snprintf(t->gen, sizeof(t->gen), "%s", gen);
                snprintf(t->issuer, sizeof(t->issuer), "%s", line + off);
                t->refused = refused != 0;
            }
        }
    }
    fclose(fp);
    atomic_store(&f->n_crls, f->n_tracked);
}
