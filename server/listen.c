/* Listening sockets owned by certvald (listen.h). One acceptor thread
 * waits (epoll) on every listening socket of a set, on a duplicate of each
 * connection it handed to gRPC (to see it end), and on an eventfd that
 * listen_set_close writes to stop it. */
#define _GNU_SOURCE
#include "listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>

#include "log.h"

/* At most 64 tcp entries (docs/configuration.md), each a few addresses
 * when it is a name, and the Unix socket. */
#define LISTEN_MAX_FDS 256
/* Accepting while out of descriptors or memory: the connection stays in
 * the backlog and poll reports it again at once, so wait this long. */
#define ACCEPT_BACKOFF_MS 50

struct listen_set {
    int fds[LISTEN_MAX_FDS];
    size_t n_fds;
    int stop_fd; /* eventfd; -1 before listen_set_start */
    int epfd;    /* the acceptor's epoll; -1 before listen_set_start */
    /* conns[fd]: |fd| is this set's duplicate of a connection handed to
     * gRPC (conn_track). Written by the acceptor thread while it runs,
     * by the main thread once it is joined. */
    bool *conns;
    size_t cap_conns;
    char *unix_path;
    grpc_server *grpc;
    grpc_server_credentials *creds;
    pthread_t thread;
    bool started;
    bool closed;
};

/* ---- opening ---- */

/* Splits "HOST:PORT" or "[IPV6]:PORT" into |host| (may be empty) and
 * |port|. Returns 0, or -1 when |addr| has no port or an unbracketed IPv6
 * address. */
static int split_host_port(const char *addr, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon, *h = addr;
    size_t n;

    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');

        if (end == NULL || end[1] != ':')
            return -1;
        h = addr + 1;
        n = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)) != NULL)
            return -1;
        n = (size_t)(colon - addr);
    }
    if (n >= hostlen || strlen(colon + 1) >= portlen || colon[1] == '\0')
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    snprintf(port, portlen, "%s", colon + 1);
    for (const char *p = port; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
    }
    return strtol(port, NULL, 10) <= 65535 ? 0 : -1;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

static void set_port(struct sockaddr *sa, int port)
{
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
    else if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
}

/* A listening socket on |sa|, or -errno. |dual|: an IPv6 wildcard that
 * also takes IPv4 (as gRPC's "[::]" does). */
static int listen_on(const struct sockaddr *sa, socklen_t len, bool dual)
{
    int one = 1, v6only = dual ? 0 : 1;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    if (sa->sa_family != AF_UNIX)
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (sa->sa_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    if (bind(fd, sa, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;

        close(fd);
        return -e;
    }
    return fd;
}

static int add_fd(struct listen_set *ls, int fd, char *err, size_t errlen)
{
    if (ls->n_fds == LISTEN_MAX_FDS) {
        close(fd);
        snprintf(err, errlen, "more than %d listening sockets", LISTEN_MAX_FDS);
        return -1;
    }
    ls->fds[ls->n_fds++] = fd;
    return 0;
}

/* The wildcard "[::]" (or an empty host): one dual-stack socket, or IPv4
 * alone where the machine has no IPv6. */
static int open_wildcard(struct listen_set *ls, const char *addr, int port, int *out_port,
                         char *err, size_t errlen)
{
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    int fd;

    s6.sin6_port = htons((uint16_t)port);
    s4.sin_port = htons((uint16_t)port);
    fd = listen_on((struct sockaddr *)&s6, sizeof(s6), true);
    if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL)
        fd = listen_on((struct sockaddr *)&s4, sizeof(s4), false);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(-fd));
        return -1;
    }
    *out_port = bound_port(fd);
    return add_fd(ls, fd, err, errlen);
}

static int open_tcp(struct listen_set *ls, const char *addr, int *out_port, char *err,
                    size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char host[256], port[8];
    int port_n, rc, bound = 0, first_err = 0;

    if (split_host_port(addr, host, sizeof(host), port, sizeof(port)) < 0) {
        snprintf(err, errlen, "cannot listen on %s: not HOST:PORT or [IPV6]:PORT", addr);
        return -1;
    }
    port_n = (int)strtol(port, NULL, 10);
    if (host[0] == '\0' || strcmp(host, "::") == 0)
        return open_wildcard(ls, addr, port_n, out_port, err, errlen);
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd;

        /* Port 0: the kernel picks for the first address, the others of
         * this entry take the same port. */
        if (bound > 0)
            set_port(ai->ai_addr, port_n);
        fd = listen_on(ai->ai_addr, ai->ai_addrlen, false);
        /* A name may resolve to an address family the machine lacks (::1
         * with IPv6 off): skipped when another address is bound. A taken
         * port is never skipped: the listener is exclusive. */
        if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL) {
            first_err = first_err != 0 ? first_err : -fd;
            continue;
        }
        if (fd < 0) {
            first_err = -fd;
            bound = -1;
            break;
        }
        if (bound == 0)
            port_n = bound_port(fd);
        if (add_fd(ls, fd, err, errlen) < 0) {
            freeaddrinfo(res);
            return -1;
        }
        bound++;
    }
    freeaddrinfo(res);
    if (bound <= 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr,
                 strerror(first_err != 0 ? first_err : EADDRNOTAVAIL));
        return -1;
    }
    *out_port = port_n;
    return 0;
}

static int open_unix(struct listen_set *ls, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "cannot listen on unix:%s: path too long", path);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    unlink(path);
    fd = listen_on((struct sockaddr *)&sun, sizeof(sun), false);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on unix:%s: %s", path, strerror(-fd));
        return -1;
    }
    ls->unix_path = strdup(path);
    if (ls->unix_path == NULL) {
        close(fd);
        unlink(path);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return add_fd(ls, fd, err, errlen);
}

int listen_set_open(struct listen_set **out, char *const *tcp, size_t n_tcp, const char *unix_path,
                    int *out_ports, char *err, size_t errlen)
{
    struct listen_set *ls = calloc(1, sizeof(*ls));

    *out = NULL;
    if (ls == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ls->stop_fd = -1;
    ls->epfd = -1;
    for (size_t i = 0; i < n_tcp; i++) {
        if (open_tcp(ls, tcp[i], &out_ports[i], err, errlen) < 0)
            goto err;
    }
    if (unix_path != NULL && open_unix(ls, unix_path, err, errlen) < 0)
        goto err;
    *out = ls;
    return 0;
err:
    listen_set_free(ls);
    return -1;
}

/* ---- accepting ---- */

/* The acceptor's epoll tags: a listening socket (its index), the stop
 * eventfd, or a connection (its own duplicate's descriptor). */
#define TAG_LISTEN 0u
#define TAG_STOP 1u
#define TAG_CONN 2u
#define TAG(kind, v) (((uint64_t)(kind) << 32) | (uint32_t)(v))

static bool conn_mark(struct listen_set *ls, int fd)
{
    if ((size_t)fd >= ls->cap_conns) {
        size_t cap = ls->cap_conns ? ls->cap_conns : 256;
        bool *p;

        while (cap <= (size_t)fd)
            cap *= 2;
        p = realloc(ls->conns, cap);
        if (p == NULL)
            return false;
        memset(p + ls->cap_conns, 0, cap - ls->cap_conns);
        ls->conns = p;
        ls->cap_conns = cap;
    }
    ls->conns[fd] = true;
    return true;
}

static void conn_forget(struct listen_set *ls, int fd)
{
    epoll_ctl(ls->epfd, EPOLL_CTL_DEL, fd, NULL);
    ls->conns[fd] = false;
    close(fd);
}

/* Keeps a duplicate of |fd|, so that listen_set_cut can close the
 * connection under gRPC; it is dropped when gRPC ends the connection
 * (gRPC shuts the socket down before it closes its descriptor, which the
 * duplicate sees as a hang-up) or the peer does. */
static void conn_track(struct listen_set *ls, int fd)
{
    struct epoll_event ev = {.events = EPOLLRDHUP};
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);

    if (dup < 0)
        return; /* not cut at a drain: gRPC's shutdown ends it */
    ev.data.u64 = TAG(TAG_CONN, dup);
    if (!conn_mark(ls, dup) || epoll_ctl(ls->epfd, EPOLL_CTL_ADD, dup, &ev) != 0) {
        if ((size_t)dup < ls->cap_conns)
            ls->conns[dup] = false;
        close(dup);
    }
}

static void hand_over(struct listen_set *ls, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int one = 1;

    /* Small unary calls: no Nagle delay on their answers (as gRPC's own
     * listener sets it). */
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family != AF_UNIX)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn_track(ls, fd);
    /* gRPC takes the descriptor over and closes it with the connection. */
    grpc_server_add_channel_from_fd(ls->grpc, fd, ls->creds);
}

/* Accepts what |lfd| has waiting. Returns false when out of descriptors
 * or memory (the caller backs off). */
static bool accept_all(struct listen_set *ls, int lfd)
{
    static _Atomic long last_warn_s;

    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct timespec now;

        if (fd >= 0) {
            hand_over(ls, fd);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return true;
        if (errno != EMFILE && errno != ENFILE && errno != ENOBUFS && errno != ENOMEM)
            continue; /* the connection went (ECONNABORTED, EPROTO, ...) or EINTR */
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (atomic_exchange(&last_warn_s, (long)now.tv_sec) != (long)now.tv_sec)
            log_warn("cannot accept a connection: %s (retrying every %d ms)", strerror(errno),
                     ACCEPT_BACKOFF_MS);
        return false;
    }
}

static void *acceptor_main(void *arg)
{
    struct listen_set *ls = arg;
    struct epoll_event evs[64];

    for (;;) {
        int n = epoll_wait(ls->epfd, evs, 64, -1);
        bool backoff = false;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("listeners: epoll_wait failed: %s; no new connections", strerror(errno));
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            uint32_t kind = (uint32_t)(evs[i].data.u64 >> 32), v = (uint32_t)evs[i].data.u64;

            if (kind == TAG_STOP)
                return NULL;
            if (kind == TAG_CONN)
                conn_forget(ls, (int)v);
            else if (!accept_all(ls, ls->fds[v]))
                backoff = true;
        }
        if (backoff) {
            struct pollfd stop = {.fd = ls->stop_fd, .events = POLLIN};

            if (poll(&stop, 1, ACCEPT_BACKOFF_MS) > 0)
                return NULL;
        }
    }
}

int listen_set_start(struct listen_set *ls, grpc_server *g, char *err, size_t errlen)
{
    struct epoll_event ev = {.events = EPOLLIN};

    ls->grpc = g;
    ls->creds = grpc_insecure_server_credentials_create();
    ls->stop_fd = eventfd(0, EFD_CLOEXEC);
    ls->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (ls->creds == NULL || ls->stop_fd < 0 || ls->epfd < 0)
        goto err;
    ev.data.u64 = TAG(TAG_STOP, 0);
    if (epoll_ctl(ls->epfd, EPOLL_CTL_ADD, ls->stop_fd, &ev) != 0)
        goto err;
    for (size_t i = 0; i < ls->n_fds; i++) {
        ev.data.u64 = TAG(TAG_LISTEN, i);
        if (epoll_ctl(ls->epfd, EPOLL_CTL_ADD, ls->fds[i], &ev) != 0)
            goto err;
    }
    if (pthread_create(&ls->thread, NULL, acceptor_main, ls) != 0) {
        snprintf(err, errlen, "cannot start the acceptor thread");
        return -1;
    }
    ls->started = true;
    return 0;
err:
    snprintf(err, errlen, "cannot start accepting: %s", strerror(errno));
    return -1;
}

/* ---- closing ---- */

void listen_set_close(struct listen_set *ls)
{
    uint64_t one = 1;

    if (ls == NULL || ls->closed)
        return;
    ls->closed = true;
    if (ls->started) {
        while (write(ls->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
        pthread_join(ls->thread, NULL);
        ls->started = false;
    }
    for (size_t i = 0; i < ls->n_fds; i++)
        close(ls->fds[i]);
    ls->n_fds = 0;
    if (ls->unix_path != NULL)
        unlink(ls->unix_path);
}

size_t listen_set_cut(struct listen_set *ls)
{
    size_t n = 0;

    if (ls == NULL)
        return 0;
    listen_set_close(ls);
    /* The acceptor is joined: its connection list is this thread's. Both
     * directions shut: gRPC can write nothing more on these connections
     * (no status of any kind reaches their clients, who see the
     * connection close: UNAVAILABLE) and reads their end. */
    for (size_t fd = 0; fd < ls->cap_conns; fd++) {
        if (ls->conns[fd]) {
            shutdown((int)fd, SHUT_RDWR);
            conn_forget(ls, (int)fd);
            n++;
        }
    }
    return n;
}

void listen_set_free(struct listen_set *ls)
{
    if (ls == NULL)
        return;
    listen_set_close(ls);
    for (size_t fd = 0; fd < ls->cap_conns; fd++) {
        if (ls->conns[fd])
            conn_forget(ls, (int)fd);
    }
    free(ls->conns);
    if (ls->epfd >= 0)
        close(ls->epfd);
    if (ls->stop_fd >= 0)
        close(ls->stop_fd);
    if (ls->creds != NULL)
        grpc_server_credentials_release(ls->creds);
    free(ls->unix_path);
    free(ls);
}
