#include "watch.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <liburing.h>

#include "config.h"
#include "log.h"
#include "reload.h"

#define MAX_WATCHED_DIRS 64
/* Quiet time after the last file event before reloading: editors and
 * kubelet write in several steps. */
#define DEBOUNCE_MS 300

enum { OP_SIGNAL = 1, OP_INOTIFY = 2, OP_TIMEOUT = 3 };

struct loop {
    bool keep[MAX_WATCHED_DIRS]; /* mark-and-sweep on re-computing */
    struct io_uring ring;
    int sfd, ifd;
    struct signalfd_siginfo si;
    char ibuf[16384] __attribute__((aligned(8)));
    struct __kernel_timespec debounce;
    bool timer_armed;
    char *dirs[MAX_WATCHED_DIRS];
    int wds[MAX_WATCHED_DIRS];
    size_t n_dirs;
};

static void add_dir_of(struct loop *l, const char *path, bool is_dir)
{
    char dir[PATH_MAX];
    char *slash;
    int wd;

    snprintf(dir, sizeof(dir), "%s", path);
    if (!is_dir) {
        slash = strrchr(dir, '/');
        if (slash == NULL)
            snprintf(dir, sizeof(dir), ".");
        else if (slash == dir)
            dir[1] = '\0';
        else
            *slash = '\0';
    }
    for (size_t i = 0; i < l->n_dirs; i++) {
        if (strcmp(l->dirs[i], dir) == 0) {
            l->keep[i] = true;
            return;
        }
    }
    if (l->n_dirs == MAX_WATCHED_DIRS) {
        log_warn("more than %d folders to watch; %s is not watched (SIGHUP still reloads)",
                 MAX_WATCHED_DIRS, dir);
        return;
    }
    wd = inotify_add_watch(l->ifd, dir,
                           IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                               IN_ATTRIB | IN_ONLYDIR);
    if (wd < 0) {
        log_warn("cannot watch %s: %s", dir, strerror(errno));
        return;
    }
    l->dirs[l->n_dirs] = strdup(dir);
    l->wds[l->n_dirs] = wd;
    l->keep[l->n_dirs] = true;
    l->n_dirs++;
}

static void add_files(struct loop *l, char **files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        add_dir_of(l, files[i], false);
}

static void clear_watches(struct loop *l)
{
    for (size_t i = 0; i < l->n_dirs; i++) {
        inotify_rm_watch(l->ifd, l->wds[i]);
        free(l->dirs[i]);
    }
    l->n_dirs = 0;
}

/* Drops the watches no longer marked. */
static void sweep_watches(struct loop *l)
{
    size_t j = 0;

    for (size_t i = 0; i < l->n_dirs; i++) {
        if (l->keep[i]) {
            l->dirs[j] = l->dirs[i];
            l->wds[j] = l->wds[i];
            j++;
            continue;
        }
        inotify_rm_watch(l->ifd, l->wds[i]);
        free(l->dirs[i]);
    }
    l->n_dirs = j;
}

/* (Re)computes the watch set from the configuration in use, keeping the
 * watches that stay. */
static void watch_config(struct loop *l, const char *cfg_path)
{
    struct reload_snapshot *s = reload_acquire();
    const struct validator_config *v;

    memset(l->keep, 0, sizeof(l->keep));
    add_dir_of(l, cfg_path, false);
    if (s == NULL) {
        sweep_watches(l);
        return;
    }
    v = &s->cfg->validator;
    add_files(l, v->anchor_files, v->n_anchor_files);
    add_files(l, v->intermediate_files, v->n_intermediate_files);
    for (size_t i = 0; i < v->n_profiles; i++)
        add_files(l, v->profiles[i].issuer_files, v->profiles[i].n_issuer_files);
    add_files(l, s->cfg->crl_files, s->cfg->n_crl_files);
    if (s->cfg->crl_dir != NULL)
        add_dir_of(l, s->cfg->crl_dir, true);
    reload_release(s);
    sweep_watches(l);
}

static int arm_read(struct loop *l, int fd, void *buf, unsigned len, int op)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_read(sqe, fd, buf, len, 0);
    io_uring_sqe_set_data64(sqe, (uint64_t)op);
    return 0;
}

static void arm_timer(struct loop *l)
{
    struct io_uring_sqe *sqe;

    if (l->timer_armed)
        return;
    sqe = io_uring_get_sqe(&l->ring);
    if (sqe == NULL)
        return;
    l->debounce.tv_sec = 0;
    l->debounce.tv_nsec = DEBOUNCE_MS * 1000000L;
    io_uring_prep_timeout(sqe, &l->debounce, 0, 0);
    io_uring_sqe_set_data64(sqe, OP_TIMEOUT);
    l->timer_armed = true;
}

static void reload(struct loop *l, const char *cfg_path, struct crl_cache *crls,
                   const char *why)
{
    char err[1024];

    log_info("%s: reloading %s", why, cfg_path);
    if (reload_file(cfg_path, crls, err, sizeof(err)) < 0)
        log_error("reload refused, the previous configuration keeps serving: %s", err);
    watch_config(l, cfg_path);
}

/* True when a read of inotify events holds a real change. IN_IGNORED is
 * what removing a watch produces (watch_config does that on every reload),
 * so it must not count, or each reload would schedule the next. */
static bool events_matter(const char *buf, size_t len)
{
    size_t off = 0;

    while (off + sizeof(struct inotify_event) <= len) {
        const struct inotify_event *ev = (const struct inotify_event *)(buf + off);

        if ((ev->mask & IN_IGNORED) == 0)
            return true;
        off += sizeof(*ev) + ev->len;
    }
    return false;
}

static int loop_init(struct loop *l, const sigset_t *set)
{
    int rc;

    memset(l, 0, sizeof(*l));
    l->sfd = l->ifd = -1;
    rc = io_uring_queue_init(8, &l->ring, 0);
    if (rc < 0) {
        log_error("main loop: io_uring_queue_init: %s", strerror(-rc));
        return -1;
    }
    l->sfd = signalfd(-1, set, SFD_CLOEXEC);
    l->ifd = inotify_init1(IN_CLOEXEC);
    if (l->sfd < 0 || l->ifd < 0) {
        log_error("main loop: signalfd/inotify: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void loop_free(struct loop *l)
{
    clear_watches(l);
    if (l->sfd >= 0)
        close(l->sfd);
    if (l->ifd >= 0)
        close(l->ifd);
    io_uring_queue_exit(&l->ring);
}

int main_loop(const char *cfg_path, struct crl_cache *crls, const sigset_t *set)
{
    struct loop l;
    int rc = -1;

    if (loop_init(&l, set) < 0)
        goto out;
    watch_config(&l, cfg_path);
    if (arm_read(&l, l.sfd, &l.si, sizeof(l.si), OP_SIGNAL) < 0 ||
        arm_read(&l, l.ifd, l.ibuf, sizeof(l.ibuf), OP_INOTIFY) < 0)
        goto out;
    for (;;) {
        struct io_uring_cqe *cqe;
        uint64_t op;
        int res;

        io_uring_submit(&l.ring);
        res = io_uring_wait_cqe(&l.ring, &cqe);
        if (res == -EINTR)
            continue;
        if (res < 0) {
            log_error("main loop: io_uring_wait_cqe: %s", strerror(-res));
            goto out;
        }
        op = io_uring_cqe_get_data64(cqe);
        res = cqe->res;
        io_uring_cqe_seen(&l.ring, cqe);
        if (op == OP_SIGNAL) {
            if (res == (int)sizeof(l.si) && l.si.ssi_signo == SIGHUP) {
                reload(&l, cfg_path, crls, "SIGHUP");
            } else if (res == (int)sizeof(l.si)) {
                log_info("%s: draining", l.si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                rc = 0;
                goto out;
            }
            arm_read(&l, l.sfd, &l.si, sizeof(l.si), OP_SIGNAL);
        } else if (op == OP_INOTIFY) {
            /* Any event in a watched folder counts; the debounce folds a
             * burst into one reload. */
            if (res > 0 && events_matter(l.ibuf, (size_t)res))
                arm_timer(&l);
            arm_read(&l, l.ifd, l.ibuf, sizeof(l.ibuf), OP_INOTIFY);
        } else if (op == OP_TIMEOUT) {
            l.timer_armed = false;
            reload(&l, cfg_path, crls, "files changed");
        }
    }
out:
    loop_free(&l);
    return rc;
}
