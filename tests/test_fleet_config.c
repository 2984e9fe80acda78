/* The `fleet` configuration section (server/fleet/fleet_config.c) through
 * config_load: absent means off, the defaults, and each bad section is
 * refused naming its key. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char t_dir[64];

static void t_write(const char *name, const char *text)
{
    char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", t_dir, name);
    fp = fopen(path, "w");
    cr_assert_not_null(fp, "%s", path);
    cr_assert(fputs(text, fp) >= 0);
    cr_assert_eq(fclose(fp), 0);
}

static void t_setup(void)
{
    snprintf(t_dir, sizeof(t_dir), "/tmp/certval-fleetcfg-XXXXXX");
    cr_assert_not_null(mkdtemp(t_dir));
    t_write("a.pem", "x");
}

static void t_teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t_dir);
    cr_expect_eq(system(cmd), 0);
}

#define HEAD                                                                                       \
    "listen:\n  tcp: [\"127.0.0.1:1\"]\ntrust:\n  anchors: [a.pem]\n"                              \
    "profiles:\n  - name: t\n    kind: tenant\n    issuers: [a.pem]\n"                             \
    "    tenant_id: {from: san_uri, prefix: \"urn:t:\"}\n"

static int t_load(struct certval_config **c, const char *tail, char *err, size_t errlen)
{
    char path[256], text[2048];

    snprintf(text, sizeof(text), "%s%s", HEAD, tail);
    t_write("certval.yaml", text);
    snprintf(path, sizeof(path), "%s/certval.yaml", t_dir);
    return config_load(c, path, err, errlen);
}

TestSuite(fleet_config, .init = t_setup, .fini = t_teardown);

Test(fleet_config, absent_means_off)
{
    struct certval_config *c = NULL;
    char err[512];

    cr_assert_eq(t_load(&c, "", err, sizeof(err)), 0, "%s", err);
    cr_assert_not(c->fleet.enabled);
    cr_assert_eq(c->fleet.n_endpoints, 0);
    config_free(c);
}

Test(fleet_config, defaults_and_values)
{
    struct certval_config *c = NULL;
    char err[512], want[300];

    cr_assert_eq(t_load(&c, "fleet:\n  endpoints: [\"10.0.0.1:2379\", \"unix:/run/etcd.sock\"]\n",
                        err, sizeof(err)),
                 0, "%s", err);
    cr_assert(c->fleet.enabled);
    cr_assert_eq(c->fleet.n_endpoints, 2);
    cr_assert_str_eq(c->fleet.endpoints[1], "unix:/run/etcd.sock");
    cr_assert_str_eq(c->fleet.prefix, "/certval/");
    cr_assert_eq(c->fleet.timeout_ms, 2000);
    cr_assert_eq(c->fleet.start_timeout_ms, 10000);
    cr_assert_eq(c->fleet.max_backoff_ms, 5000);
    cr_assert_eq(c->fleet.max_disconnected_seconds, 0);
    cr_assert_null(c->fleet.user);
    config_free(c);
    cr_assert_eq(t_load(&c,
                        "fleet:\n  endpoints: [\"e:1\"]\n  prefix: /p/\n  timeout_ms: 500\n"
                        "  start_timeout_ms: 0\n  max_backoff_ms: 1000\n"
                        "  max_disconnected_seconds: 60\n  user: certval\n"
                        "  password_file: etcd.pw\n",
                        err, sizeof(err)),
                 0, "%s", err);
    snprintf(want, sizeof(want), "%s/etcd.pw", t_dir);
    cr_assert_str_eq(c->fleet.password_file, want);
    cr_assert_str_eq(c->fleet.user, "certval");
    cr_assert_str_eq(c->fleet.prefix, "/p/");
    cr_assert_eq(c->fleet.timeout_ms, 500);
    cr_assert_eq(c->fleet.start_timeout_ms, 0);
    cr_assert_eq(c->fleet.max_disconnected_seconds, 60);
    config_free(c);
}

/* Arrays, not pointers: Criterion copies parameters into the test's own
 * process. */
struct bad {
    char tail[128];
    char want[64]; /* in the message */
};

static const struct bad bad_cases[] = {
    {"fleet:\n  prefix: /p/\n", "fleet: name at least one etcd endpoint"},
    {"fleet:\n  endpoints: [\"http://e:2379\"]\n", "fleet.endpoints[0]"},
    {"fleet:\n  endpoints: [\"nocolon\"]\n", "HOST:PORT"},
    {"fleet:\n  endpoints: [\"e:1\"]\n  prefix: /p\n", "fleet.prefix: must end with '/'"},
    {"fleet:\n  endpoints: [\"e:1\"]\n  timeout_ms: 5\n", "fleet.timeout_ms: must be from"},
    {"fleet:\n  endpoints: [\"e:1\"]\n  user: u\n", "user and password_file go together"},
    {"fleet:\n  endpoints: [\"e:1\"]\n  tls: true\n", "tls"},
};

ParameterizedTestParameters(fleet_config, refused)
{
    return cr_make_param_array(struct bad, (struct bad *)bad_cases,
                               sizeof(bad_cases) / sizeof(bad_cases[0]));
}

ParameterizedTest(const struct bad *b, fleet_config, refused, .init = t_setup, .fini = t_teardown)
{
    struct certval_config *c = NULL;
    char err[512];

    err[0] = '\0';
    cr_assert_eq(t_load(&c, b->tail, err, sizeof(err)), -1, "accepted: %s", b->tail);
    cr_assert_null(c);
    cr_assert(strstr(err, b->want) != NULL, "\"%s\" lacks \"%s\"", err, b->want);
    cr_assert(strstr(err, "certval.yaml:") != NULL, "%s", err);
}
