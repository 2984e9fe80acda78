/* The etcd client (server/fleet/etcd.h) against a real etcd (Debian's
 * etcd-server), started per test on 127.0.0.1 with ephemeral ports and a
 * temporary data folder.
 * Every wait is bounded. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "etcd.h"

#define ETCD_BIN "/usr/bin/etcd"

static char g_dir[] = "/tmp/certval-etcd-XXXXXX";
static pid_t g_etcd = -1;
static char g_endpoint[64];
static struct etcd_client *g_c;
static const char *g_extra_arg; /* one more etcd flag, or NULL */

/* A free port: bound to 0, read back, closed (etcd binds it soon after). */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void start_etcd(void)
{
    char client[64], peer[64], cluster[96], data[128];
    int cport = free_port(), pport = free_port();

    cr_assert_not_null(mkdtemp(g_dir));
    snprintf(client, sizeof(client), "http://127.0.0.1:%d", cport);
    snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", pport);
    snprintf(cluster, sizeof(cluster), "t=%s", peer);
    snprintf(data, sizeof(data), "%s/data", g_dir);
    snprintf(g_endpoint, sizeof(g_endpoint), "127.0.0.1:%d", cport);
    g_etcd = fork();
    cr_assert(g_etcd >= 0);
    if (g_etcd == 0) {
        char log[160];

        snprintf(log, sizeof(log), "%s/etcd.log", g_dir);
        if (freopen(log, "w", stderr) == NULL || freopen("/dev/null", "w", stdout) == NULL)
            _exit(126);
        execl(ETCD_BIN, ETCD_BIN, "--name", "t", "--data-dir", data, "--listen-client-urls", client,
              "--advertise-client-urls", client, "--listen-peer-urls", peer,
              "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster, g_extra_arg,
              (char *)NULL);
        _exit(127);
    }
}

static void stop_etcd(void)
{
    char cmd[200];

    if (g_etcd > 0) {
        kill(g_etcd, SIGTERM);
        waitpid(g_etcd, NULL, 0);
        g_etcd = -1;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
}

/* client_new makes a client of the |n| endpoints |eps| (|user| NULL: no
 * authentication) and asserts that it was made. */
static struct etcd_client *client_new(const char *const *eps, size_t n, unsigned timeout_ms,
                                      const char *user, const char *password)
{
    struct etcd_client_opts o;
    struct etcd_client *c;

    memset(&o, 0, sizeof(o));
    o.endpoints = eps;
    o.n_endpoints = n;
    o.timeout_ms = timeout_ms;
    o.user = user;
    o.password = password;
    c = etcd_client_new(&o);
    cr_assert_not_null(c);
    return c;
}

static void setup(void)
{
    const char *eps[1];
    struct etcd_kvs k;
    char err[256];
    int rc = ETCD_EUNAVAILABLE;

    grpc_init();
    start_etcd();
    eps[0] = g_endpoint;
    g_c = client_new(eps, 1, 1000, NULL, NULL);
    /* etcd starts in about a second; give it 20 on a loaded machine. */
    for (int i = 0; i < 100 && rc != ETCD_OK; i++) {
        rc = etcd_range(g_c, &k, "x", 1, NULL, 0, 0, 0, err, sizeof(err));
        etcd_kvs_clear(&k);
        if (rc != ETCD_OK)
            usleep(200 * 1000);
    }
    cr_assert_eq(rc, ETCD_OK, "etcd did not start: %s", err);
}

static void teardown(void)
{
    etcd_client_free(g_c);
    g_c = NULL;
    stop_etcd();
    grpc_shutdown_blocking();
}

TestSuite(etcd, .init = setup, .fini = teardown, .timeout = 120);

static int64_t put(const char *k, const char *v)
{
    int64_t rev = 0;
    char err[256];

    cr_assert_eq(etcd_put(g_c, &rev, k, strlen(k), v, strlen(v), 0, err, sizeof(err)), ETCD_OK,
                 "%s", err);
    cr_assert_gt(rev, 0);
    return rev;
}

Test(etcd, put_then_range_at_revisions)
{
    struct etcd_kvs k;
    uint8_t end[16];
    size_t elen = etcd_prefix_end(end, sizeof(end), "p/", 2);
    char err[256];
    int64_t r1 = put("p/a", "one"), r2 = put("p/b", "two"), r3 = put("p/a", "uno");

    cr_assert_eq(elen, 2);
    cr_assert(memcmp(end, "p0", 2) == 0);
    put("q/x", "outside");
    cr_assert(r1 < r2 && r2 < r3);
    cr_assert_eq(etcd_range(g_c, &k, "p/", 2, end, elen, 0, 0, err, sizeof(err)), ETCD_OK, "%s",
                 err);
    cr_assert_eq(k.n, 2);
    cr_assert_str_eq((char *)k.v[0].key, "p/a");
    cr_assert_str_eq((char *)k.v[0].value, "uno");
    cr_assert_eq(k.v[0].mod_revision, r3);
    cr_assert_geq(k.revision, r3 + 1);
    etcd_kvs_clear(&k);
    /* The past, at one revision. */
    cr_assert_eq(etcd_range(g_c, &k, "p/", 2, end, elen, r2, 0, err, sizeof(err)), ETCD_OK);
    cr_assert_eq(k.n, 2);
    cr_assert_str_eq((char *)k.v[0].value, "one");
    etcd_kvs_clear(&k);
    cr_assert_eq(etcd_range(g_c, &k, "p/", 2, end, elen, r1, 0, err, sizeof(err)), ETCD_OK);
    cr_assert_eq(k.n, 1);
    etcd_kvs_clear(&k);
    /* A limit says there is more. */
    cr_assert_eq(etcd_range(g_c, &k, "p/", 2, end, elen, 0, 1, err, sizeof(err)), ETCD_OK);
    cr_assert_eq(k.n, 1);
    cr_assert(k.more);
    etcd_kvs_clear(&k);
}

Test(etcd, txn_applies_only_when_the_comparison_holds)
{
    struct etcd_cmp cmp = {ETCD_CMP_MOD, ETCD_CMP_EQUAL, "m", 1, 0};
    struct etcd_op ops[2];
    struct etcd_kvs k;
    int64_t rev = 0, deleted = 0;
    bool ok = false;
    char err[256];

    memset(ops, 0, sizeof(ops));
    ops[0].key = "m";
    ops[0].key_len = 1;
    ops[0].value = "v1";
    ops[0].value_len = 2;
    ops[1].key = "c/1";
    ops[1].key_len = 3;
    ops[1].value = "chunk";
    ops[1].value_len = 5;
    /* "m" absent: mod_revision 0 holds. */
    cr_assert_eq(etcd_txn(g_c, &rev, &ok, &cmp, 1, ops, 2, err, sizeof(err)), ETCD_OK, "%s", err);
    cr_assert(ok);
    /* Now it does not: nothing changes. */
    ops[0].value = "v2";
    cr_assert_eq(etcd_txn(g_c, &rev, &ok, &cmp, 1, ops, 1, err, sizeof(err)), ETCD_OK);
    cr_assert_not(ok);
    cr_assert_eq(etcd_range(g_c, &k, "m", 1, NULL, 0, 0, 0, err, sizeof(err)), ETCD_OK);
    cr_assert_eq(k.n, 1);
    cr_assert_str_eq((char *)k.v[0].value, "v1");
    cmp.value = k.v[0].mod_revision;
    etcd_kvs_clear(&k);
    /* With the right revision, a put and a delete at once. */
    ops[1].is_delete = true;
    cr_assert_eq(etcd_txn(g_c, &rev, &ok, &cmp, 1, ops, 2, err, sizeof(err)), ETCD_OK);
    cr_assert(ok);
    cr_assert_eq(etcd_range(g_c, &k, "c/1", 3, NULL, 0, 0, 0, err, sizeof(err)), ETCD_OK);
    cr_assert_eq(k.n, 0);
    etcd_kvs_clear(&k);
    cr_assert_eq(etcd_delete(g_c, &rev, &deleted, "m", 1, NULL, 0, err, sizeof(err)), ETCD_OK);
    cr_assert_eq(deleted, 1);
    cr_assert_eq(etcd_delete(g_c, &rev, &deleted, "m", 1, NULL, 0, err, sizeof(err)), ETCD_OK);
    cr_assert_eq(deleted, 0);
}

Test(etcd, a_revoked_lease_deletes_its_keys)
{
    struct etcd_kvs k;
    int64_t lease = 0, rev = 0, ttl = 0;
    char err[256];

    cr_assert_eq(etcd_lease_grant(g_c, &lease, 60, err, sizeof(err)), ETCD_OK, "%s", err);
    cr_assert_neq(lease, 0);
    cr_assert_eq(etcd_put(g_c, &rev, "l", 1, "x", 1, lease, err, sizeof(err)), ETCD_OK, "%s", err);
    cr_assert_eq(etcd_range(g_c, &k, "l", 1, NULL, 0, 0, 0, err, sizeof(err)), ETCD_OK);
    cr_assert_eq(k.n, 1);
    cr_assert_eq(k.v[0].lease, lease);
    etcd_kvs_clear(&k);
    cr_assert_eq(etcd_lease_keepalive(g_c, &ttl, lease, err, sizeof(err)), ETCD_OK, "%s", err);
    cr_assert_gt(ttl, 50);
    cr_assert_eq(etcd_lease_revoke(g_c, lease, err, sizeof(err)), ETCD_OK, "%s", err);
    cr_assert_eq(etcd_range(g_c, &k, "l", 1, NULL, 0, 0, 0, err, sizeof(err)), ETCD_OK);
    cr_assert_eq(k.n, 0);
    etcd_kvs_clear(&k);
    /* A put with a lease that is gone is refused. */
    cr_assert_eq(etcd_put(g_c, &rev, "l", 1, "x", 1, lease, err, sizeof(err)), ETCD_EERROR);
}

/* next_events waits (bounded) until |want| events have arrived. */
static void next_events(struct etcd_watch *w, struct etcd_watch_batch *all, size_t want)
{
    char err[256];

    memset(all, 0, sizeof(*all));
    all->v = calloc(want + 8, sizeof(*all->v));
    for (int i = 0; i < 50 && all->n < want; i++) {
        struct etcd_watch_batch b;

        cr_assert_eq(etcd_watch_next(w, &b, 200, err, sizeof(err)), ETCD_OK, "%s", err);
        for (size_t j = 0; j < b.n && all->n < want + 8; j++) {
            all->v[all->n++] = b.v[j];
            memset(&b.v[j], 0, sizeof(b.v[j]));
        }
        etcd_watch_batch_clear(&b);
    }
    cr_assert_eq(all->n, want);
}

Test(etcd, watch_from_a_revision_sees_every_change_once)
{
    struct etcd_watch *w = NULL;
    struct etcd_watch_batch b;
    uint8_t end[8];
    size_t elen = etcd_prefix_end(end, sizeof(end), "w/", 2);
    int64_t r1 = put("w/1", "a"), rev, deleted, compacted = 0;
    char err[256];

    put("w/2", "b");
    /* From r1: the two past puts, then what follows. */
    cr_assert_eq(
        etcd_watch_open(g_c, &w, &compacted, "w/", 2, end, elen, r1, true, err, sizeof(err)),
        ETCD_OK, "%s", err);
    next_events(w, &b, 2);
    cr_assert_str_eq((char *)b.v[0].kv.key, "w/1");
    cr_assert_str_eq((char *)b.v[1].kv.key, "w/2");
    cr_assert_eq(b.v[0].kv.mod_revision, r1);
    etcd_watch_batch_clear(&b);
    put("x/outside", "z");
    cr_assert_eq(etcd_delete(g_c, &rev, &deleted, "w/1", 3, NULL, 0, err, sizeof(err)), ETCD_OK);
    next_events(w, &b, 1);
    cr_assert(b.v[0].is_delete);
    cr_assert_str_eq((char *)b.v[0].kv.key, "w/1");
    cr_assert_eq(b.v[0].kv.mod_revision, rev);
    cr_assert_str_eq((char *)b.v[0].prev.value, "a"); /* prev_kv asked for */
    etcd_watch_batch_clear(&b);
    /* A progress report names the store's revision. */
    cr_assert_eq(etcd_watch_request_progress(w), ETCD_OK);
    for (int i = 0; i < 25; i++) {
        cr_assert_eq(etcd_watch_next(w, &b, 200, err, sizeof(err)), ETCD_OK, "%s", err);
        if (b.progress)
            break;
        etcd_watch_batch_clear(&b);
    }
    cr_assert(b.progress);
    cr_assert_geq(b.revision, rev);
    etcd_watch_batch_clear(&b);
    etcd_watch_close(w);
}

Test(etcd, compaction_is_reported_to_ranges_and_watches)
{
    struct etcd_watch *w = NULL;
    struct etcd_kvs k;
    int64_t r1 = put("c/a", "1"), compacted = 0, r3;
    char err[256];
    int rc;

    put("c/a", "2");
    r3 = put("c/a", "3");
    cr_assert_eq(etcd_compact(g_c, r3, err, sizeof(err)), ETCD_OK, "%s", err);
    cr_assert_eq(etcd_range(g_c, &k, "c/a", 3, NULL, 0, r1, 0, err, sizeof(err)), ETCD_ECOMPACTED,
                 "%s", err);
    cr_assert_eq(etcd_range(g_c, &k, "c/a", 3, NULL, 0, r3, 0, err, sizeof(err)), ETCD_OK);
    cr_assert_str_eq((char *)k.v[0].value, "3");
    etcd_kvs_clear(&k);
    rc = etcd_watch_open(g_c, &w, &compacted, "c/", 2, "c0", 2, r1, false, err, sizeof(err));
    if (rc == ETCD_OK) {
        struct etcd_watch_batch b;

        rc = etcd_watch_next(w, &b, 2000, err, sizeof(err));
        compacted = b.compact_revision;
        etcd_watch_batch_clear(&b);
        etcd_watch_close(w);
    }
    cr_assert_eq(rc, ETCD_ECOMPACTED, "%s", err);
    cr_assert_eq(compacted, r3);
}

Test(etcd, a_dead_endpoint_is_skipped_and_a_dead_store_is_unavailable)
{
    char dead[64], err[256];
    const char *eps[2];
    struct etcd_client *c;
    struct etcd_kvs k;
    struct etcd_watch *w = NULL;
    int64_t compacted;
    time_t t0;

    snprintf(dead, sizeof(dead), "127.0.0.1:%d", free_port());
    eps[0] = dead;
    eps[1] = g_endpoint;
    c = client_new(eps, 2, 2000, NULL, NULL);
    put("d", "1");
    cr_assert_eq(etcd_range(c, &k, "d", 1, NULL, 0, 0, 0, err, sizeof(err)), ETCD_OK, "%s", err);
    cr_assert_eq(k.n, 1);
    etcd_kvs_clear(&k);
    etcd_client_free(c);
    /* Only the dead one: unavailable, within the timeout. */
    c = client_new(eps, 1, 2000, NULL, NULL);
    t0 = time(NULL);
    cr_assert_eq(etcd_range(c, &k, "d", 1, NULL, 0, 0, 0, err, sizeof(err)), ETCD_EUNAVAILABLE);
    cr_assert_eq(etcd_watch_open(c, &w, &compacted, "d", 1, NULL, 0, 0, false, err, sizeof(err)),
                 ETCD_EUNAVAILABLE);
    cr_assert_leq(time(NULL) - t0, 6);
    etcd_client_free(c);
}

Test(etcd, a_watch_ends_when_etcd_stops)
{
    struct etcd_watch *w = NULL;
    struct etcd_watch_batch b;
    int64_t compacted;
    char err[256];
    int rc = ETCD_OK;

    cr_assert_eq(etcd_watch_open(g_c, &w, &compacted, "s", 1, NULL, 0, 0, false, err, sizeof(err)),
                 ETCD_OK, "%s", err);
    kill(g_etcd, SIGTERM);
    waitpid(g_etcd, NULL, 0);
    g_etcd = -1;
    for (int i = 0; i < 50 && rc == ETCD_OK; i++) {
        rc = etcd_watch_next(w, &b, 200, err, sizeof(err));
        etcd_watch_batch_clear(&b);
    }
    cr_assert_eq(rc, ETCD_EUNAVAILABLE);
    etcd_watch_close(w);
}

/* etcdctl against the test's etcd, as root once auth is on. */
static int ctl(const char *args)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "ETCDCTL_API=3 /usr/bin/etcdctl --endpoints %s %s >/dev/null 2>&1",
             g_endpoint, args);
    return system(cmd);
}

static void setup_auth(void)
{
    /* Tokens live 1 s: the client must authenticate again on its own. */
    g_extra_arg = "--auth-token-ttl=1";
    setup();
    cr_assert_eq(ctl("user add root:rootpw"), 0);
    cr_assert_eq(ctl("user add certval:s3cret"), 0);
    cr_assert_eq(ctl("role add fleet"), 0);
    cr_assert_eq(ctl("role grant-permission fleet --prefix=true readwrite /p/"), 0);
    cr_assert_eq(ctl("user grant-role certval fleet"), 0);
    cr_assert_eq(ctl("auth enable"), 0);
}

Test(etcd_auth, a_user_is_authenticated_and_kept_to_its_prefix, .init = setup_auth,
     .fini = teardown, .timeout = 120)
{
    const char *eps[1] = {g_endpoint};
    struct etcd_client *c;
    struct etcd_kvs k;
    struct etcd_watch *w = NULL;
    int64_t rev, compacted;
    char err[256];

    /* No user: refused. */
    cr_assert_eq(etcd_put(g_c, &rev, "/p/x", 4, "1", 1, 0, err, sizeof(err)), ETCD_EERROR);
    c = client_new(eps, 1, 2000, "certval", "wrong");
    cr_assert_eq(etcd_put(c, &rev, "/p/x", 4, "1", 1, 0, err, sizeof(err)), ETCD_EERROR);
    cr_assert(strstr(err, "authentication") != NULL, "%s", err);
    etcd_client_free(c);
    c = client_new(eps, 1, 2000, "certval", "s3cret");
    cr_assert_eq(etcd_put(c, &rev, "/p/x", 4, "1", 1, 0, err, sizeof(err)), ETCD_OK, "%s", err);
    cr_assert_eq(etcd_put(c, &rev, "/q/x", 4, "1", 1, 0, err, sizeof(err)), ETCD_EERROR);
    cr_assert(strstr(err, "permission") != NULL, "%s", err);
    cr_assert_eq(etcd_watch_open(c, &w, &compacted, "/p/", 3, "/p0", 3, 0, false, err, sizeof(err)),
                 ETCD_OK, "%s", err);
    etcd_watch_close(w);
    /* After the token expired: authenticated again, transparently. */
    sleep(3);
    cr_assert_eq(etcd_range(c, &k, "/p/x", 4, NULL, 0, 0, 0, err, sizeof(err)), ETCD_OK, "%s", err);
    cr_assert_eq(k.n, 1);
    etcd_kvs_clear(&k);
    etcd_client_free(c);
}
