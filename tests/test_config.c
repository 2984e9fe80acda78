/* Tests of server/config.c: a full file gives the values written, a minimal
 * one the documented defaults, relative paths resolve against the file's
 * folder, and each bad file is refused with "PATH:LINE: problem". Each test
 * writes its YAML into a fresh temporary folder with the PEM files it names
 * (config_load checks that they exist, not what they hold). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "support/tmpdir.h"

static char t_dir[TS_TMPDIR_MAX];

static void t_write(const char *name, const char *text)
{
    char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", t_dir, name);
    fp = fopen(path, "w");
    cr_assert_not_null(fp, "%s", path);
    cr_assert_eq(fputs(text, fp) >= 0, 1);
    cr_assert_eq(fclose(fp), 0);
}

static void t_setup(void)
{
    char sub[128];

    ts_tmpdir_make(t_dir, "cfg");
    snprintf(sub, sizeof(sub), "%s/sub", t_dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    t_write("a.pem", "x");
    t_write("b.pem", "x");
    t_write("i.pem", "x");
    t_write("t.crl", "x");
    t_write("sub/c.pem", "x");
}

static void t_teardown(void)
{
    ts_tmpdir_remove(t_dir);
}

/* t_load writes |text| as NAME and loads it; returns config_load's value. */
static int t_load(struct certval_config **c, const char *text, char *err, size_t errlen, char *path,
                  size_t pathlen)
{
    t_write("certval.yaml", text);
    snprintf(path, pathlen, "%s/certval.yaml", t_dir);
    return config_load(c, path, err, errlen);
}

/* The smallest valid file: one listener, one anchor, one profile. */
#define GOOD_HEAD "listen:\n  tcp: [\"127.0.0.1:1\"]\ntrust:\n  anchors: [a.pem]\n"
#define GOOD_PROFILE                                                                               \
    "profiles:\n  - name: t\n    kind: tenant\n    issuers: [a.pem]\n"                             \
    "    tenant_id: {from: san_uri, prefix: \"urn:t:\"}\n"

static const char t_full[] = "listen:\n"
                             "  tcp: [\"127.0.0.1:50051\", \"[::1]:50052\"]\n"
                             "  unix: /run/certval/certval.sock\n"
                             "threads:\n"
                             "  transport: 2\n"
                             "  workers: 6\n"
                             "limits:\n"
                             "  max_chains_per_batch: 512\n"
                             "  max_certs_per_chain: 6\n"
                             "  max_cert_bytes: 8192\n"
                             "  max_message_bytes: 1048576\n"
                             "  split_min_chains: 32\n"
                             "shutdown:\n"
                             "  drain_grace_seconds: 7\n"
                             "trust:\n"
                             "  anchors: [a.pem, sub/c.pem]\n"
                             "  intermediates: [i.pem]\n"
                             "  clock_skew_seconds: 60\n"
                             "  max_depth: 5\n"
                             "  max_path_attempts: 4\n"
                             "  policies: [2.5.29.32.0, 1.2.3.4]\n"
                             "  explicit_policy: true\n"
                             "revocation:\n"
                             "  crl_files: [t.crl]\n"
                             "  crl_dir: sub\n"
                             "state_dir: state\n"
                             "profiles:\n"
                             "  - name: tenant\n"
                             "    kind: tenant\n"
                             "    issuers: [a.pem]\n"
                             "    tenant_id: {from: subject, attribute: O}\n"
                             "    max_validity_days: 400\n"
                             "    required_eku: 1.3.6.1.5.5.7.3.2\n"
                             "    revocation: none\n"
                             "    crl_grace_seconds: 10\n"
                             "    on_stale: allow\n"
                             "  - name: device\n"
                             "    kind: device\n"
                             "    issuers: [i.pem]\n"
                             "    tenant_id: {from: san_uri, prefix: \"urn:certval:tenant:\"}\n"
                             "    device_id: {from: san_uri, prefix: \"urn:certval:device:\"}\n"
                             "    revocation: all\n"
                             "tenants:\n"
                             "  - id: acme\n"
                             "    device_certificate_skips_password: true\n"
                             "    require_device_binding: false\n"
                             "  - id: globex\n";

static void t_expect_suffix(const char *path, const char *suffix)
{
    char want[256];

    snprintf(want, sizeof(want), "%s/%s", t_dir, suffix);
    cr_expect_str_eq(path, want);
}

Test(config, full_file_gives_every_value, .init = t_setup, .fini = t_teardown)
{
    struct certval_config *c = NULL;
    const struct validator_config *v;
    const struct profile_config *p;
    char err[512], path[256];

    cr_assert_eq(t_load(&c, t_full, err, sizeof(err), path, sizeof(path)), 0, "%s", err);
    v = &c->validator;
    cr_expect_str_eq(c->path, path);
    cr_assert_eq(c->n_tcp, 2);
    cr_expect_str_eq(c->tcp[0], "127.0.0.1:50051");
    cr_expect_str_eq(c->tcp[1], "[::1]:50052");
    cr_expect_str_eq(c->unix_socket, "/run/certval/certval.sock");
    cr_expect_eq(c->transport_threads, 2);
    cr_expect_eq(c->worker_threads, 6);
    cr_expect_eq(c->max_chains_per_batch, 512);
    cr_expect_eq(v->max_chain_certs, 6);
    cr_expect_eq(v->max_cert_bytes, 8192);
    cr_expect_eq(c->max_message_bytes, 1048576);
    cr_expect_eq(c->split_min_chains, 32);
    cr_expect_eq(c->drain_grace_seconds, 7);
    cr_expect_eq(v->clock_skew_seconds, 60);
    cr_expect_eq(v->max_depth, 5);
    cr_expect_eq(v->max_path_attempts, 4);
    cr_assert_eq(v->n_policy_oids, 2);
    cr_expect_str_eq(v->policy_oids[1], "1.2.3.4");
    cr_expect(v->explicit_policy);
    cr_assert_eq(v->n_intermediate_files, 1);
    cr_assert_eq(c->n_crl_files, 1);
    t_expect_suffix(c->crl_files[0], "t.crl");
    t_expect_suffix(c->crl_dir, "sub");
    t_expect_suffix(c->state_dir, "state");

    cr_assert_eq(v->n_profiles, 2);
    p = &v->profiles[0];
    cr_expect_str_eq(p->name, "tenant");
    cr_expect_eq(p->kind, CERT_KIND_TENANT);
    cr_expect_eq(p->tenant_id.type, ID_SOURCE_SUBJECT_ATTR);
    cr_expect_str_eq(p->tenant_id.value, "O");
    cr_expect_eq(p->device_id.type, ID_SOURCE_NONE);
    cr_expect_eq(p->max_validity_days, 400);
    cr_expect_str_eq(p->required_eku, "1.3.6.1.5.5.7.3.2");
    cr_expect_eq(p->revocation, REVOCATION_NONE);
    cr_expect_eq(p->crl_grace_seconds, 10);
    cr_expect_eq(p->on_stale, STALE_ALLOW_WARN);
    p = &v->profiles[1];
    cr_expect_eq(p->kind, CERT_KIND_DEVICE);
    cr_expect_eq(p->tenant_id.type, ID_SOURCE_SAN_URI);
    cr_expect_str_eq(p->tenant_id.value, "urn:certval:tenant:");
    cr_expect_str_eq(p->device_id.value, "urn:certval:device:");
    cr_expect_eq(p->max_validity_days, 1827, "device default");
    cr_expect_eq(p->revocation, REVOCATION_ALL);

    cr_assert_eq(v->n_tenants, 2);
    cr_expect_str_eq(v->tenants[0].id, "acme");
    cr_expect(v->tenants[0].device_certificate_skips_password);
    cr_expect_not(v->tenants[0].require_device_binding);
    cr_expect_not(v->tenants[1].device_certificate_skips_password, "default false");
    cr_expect(v->tenants[1].require_device_binding, "default true");
    config_free(c);
}

static const char t_minimal[] = "listen:\n"
                                "  tcp: [\"127.0.0.1:0\"]\n"
                                "trust:\n"
                                "  anchors: [a.pem]\n"
                                "profiles:\n"
                                "  - name: t\n"
                                "    kind: tenant\n"
                                "    issuers: [a.pem]\n"
                                "    tenant_id: {from: san_uri, prefix: \"urn:t:\"}\n";

Test(config, service_sections, .init = t_setup, .fini = t_teardown)
{
    static const char text[] =
        "listen:\n  tcp: [\"127.0.0.1:1\"]\ntrust:\n  anchors: [a.pem]\n"
        "revocation:\n  fetch:\n    urls: [\"http://crl.example/a.crl\"]\n"
        "    from_certificates: true\n    timeout_ms: 2500\n    max_bytes: 2048\n"
        "    max_redirects: 1\n    refresh_ahead_seconds: 60\n    max_interval_seconds: 600\n"
        "    max_backoff_seconds: 30\n"
        "metrics:\n  listen: \"127.0.0.1:9090\"\n"
        "audit:\n  all_verdicts: true\n  max_lines_per_second: 5\n"
        "admin:\n  listen: \"127.0.0.1:50052\"\n  token_file: b.pem\n"
        "verdict_cache:\n  max_entries: 0\n  max_megabytes: 8\n"
        "profiles:\n  - name: t\n    kind: tenant\n    issuers: [a.pem]\n"
        "    tenant_id: {from: san_uri, prefix: \"urn:t:\"}\n";
    struct certval_config *c = NULL;
    char err[512], path[256];

    cr_assert_eq(t_load(&c, text, err, sizeof(err), path, sizeof(path)), 0, "%s", err);
    cr_assert_eq(c->fetch.n_urls, 1);
    cr_expect_str_eq(c->fetch.urls[0], "http://crl.example/a.crl");
    cr_expect(c->fetch.from_certificates);
    cr_expect_eq(c->fetch.timeout_ms, 2500);
    cr_expect_eq(c->fetch.max_bytes, 2048);
    cr_expect_eq(c->fetch.max_redirects, 1);
    cr_expect_eq(c->fetch.refresh_ahead_seconds, 60);
    cr_expect_eq(c->fetch.max_interval_seconds, 600);
    cr_expect_eq(c->fetch.max_backoff_seconds, 30);
    cr_expect_str_eq(c->metrics_listen, "127.0.0.1:9090");
    cr_expect(c->audit_all_verdicts);
    cr_expect_eq(c->audit_max_lines_per_second, 5);
    cr_expect_str_eq(c->admin_listen, "127.0.0.1:50052");
    t_expect_suffix(c->admin_token_file, "b.pem");
    cr_expect_eq(c->verdict_cache_max_entries, 0);
    cr_expect_eq(c->verdict_cache_max_megabytes, 8);
    config_free(c);
}

Test(config, service_section_defaults, .init = t_setup, .fini = t_teardown)
{
    struct certval_config *c = NULL;
    char err[512], path[256];

    cr_assert_eq(t_load(&c, GOOD_HEAD GOOD_PROFILE, err, sizeof(err), path, sizeof(path)), 0,
                 "%s", err);
    cr_expect_eq(c->fetch.n_urls, 0);
    cr_expect_not(c->fetch.from_certificates);
    cr_expect_eq(c->fetch.timeout_ms, 10000);
    cr_expect_eq(c->fetch.max_bytes, 64u << 20);
    cr_expect_eq(c->fetch.max_redirects, 3);
    cr_expect_null(c->metrics_listen);
    cr_expect_not(c->audit_all_verdicts);
    cr_expect_eq(c->audit_max_lines_per_second, 1000);
    cr_expect_null(c->admin_listen);
    cr_expect_eq(c->admin_max_message_bytes, 256u << 20);
    cr_expect_eq(c->verdict_cache_max_entries, 200000);
    cr_expect_eq(c->verdict_cache_max_megabytes, 256);
    config_free(c);
}

/* frontends (issue 12) */
Test(config, frontends_section, .init = t_setup, .fini = t_teardown)
{
    static const char text[] = GOOD_HEAD GOOD_PROFILE
        "frontends:\n  envoy:\n    enabled: false\n"
        "  nginx:\n    listen: \"127.0.0.1:9191\"\n"
        "  haproxy:\n    listen: \"[::1]:12345\"\n"
        "  headers:\n    certificate: X-SSL-Cert\n    tenant: X-Org\n    device: x-dev\n"
        "    user: x-login\n    response_prefix: X-Auth-\n"
        "  deny_status: 401\n"
        "  tenant_by_host:\n    - {host: Login.Acme.Example, tenant: acme}\n"
        "    - {host: b.example, tenant: globex}\n";
    struct certval_config *c = NULL;
    const struct frontends_config *f;
    char err[512], path[256];

    cr_assert_eq(t_load(&c, text, err, sizeof(err), path, sizeof(path)), 0, "%s", err);
    f = &c->frontends;
    cr_expect_not(f->envoy_enabled);
    cr_expect_str_eq(f->nginx_listen, "127.0.0.1:9191");
    cr_expect_str_eq(f->spoe_listen, "[::1]:12345");
    cr_expect_str_eq(f->cert_header, "x-ssl-cert");
    cr_expect_str_eq(f->tenant_header, "x-org");
    cr_expect_str_eq(f->device_header, "x-dev");
    cr_expect_str_eq(f->user_header, "x-login");
    cr_expect_str_eq(f->response_prefix, "x-auth-");
    cr_expect_eq(f->deny_status, 401);
    cr_assert_eq(f->n_hosts, 2);
    cr_expect_str_eq(f->hosts[0].host, "login.acme.example");
    cr_expect_str_eq(f->hosts[0].tenant, "acme");
    cr_expect_str_eq(f->hosts[1].tenant, "globex");
    config_free(c);
}

Test(config, frontends_defaults_and_refusals, .init = t_setup, .fini = t_teardown)
{
    static const char *const bad[][2] = {
        {"frontends:\n  nginx:\n    listen: localhost\n", "frontends.nginx.listen"},
        {"frontends:\n  haproxy: {}\n", "listen"},
        {"frontends:\n  deny_status: 200\n", "frontends.deny_status: 200 is out of range"},
        {"frontends:\n  colour: blue\n", "unknown key \"colour\""},
    };
    struct certval_config *c = NULL;
    char err[512], path[256], text[1024];

    cr_assert_eq(t_load(&c, GOOD_HEAD GOOD_PROFILE, err, sizeof(err), path, sizeof(path)), 0,
                 "%s", err);
    cr_expect(c->frontends.envoy_enabled);
    cr_expect_null(c->frontends.nginx_listen);
    cr_expect_null(c->frontends.spoe_listen);
    cr_expect_str_eq(c->frontends.cert_header, "x-client-cert");
    cr_expect_str_eq(c->frontends.tenant_header, "x-tenant-id");
    cr_expect_str_eq(c->frontends.response_prefix, "x-certval-");
    cr_expect_eq(c->frontends.deny_status, 403);
    cr_expect_eq(c->frontends.n_hosts, 0);
    config_free(c);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = NULL;
        snprintf(text, sizeof(text), "%s%s%s", GOOD_HEAD, GOOD_PROFILE, bad[i][0]);
        cr_expect_eq(t_load(&c, text, err, sizeof(err), path, sizeof(path)), -1, "%s", bad[i][0]);
        cr_expect(strstr(err, bad[i][1]) != NULL, "%s: got '%s'", bad[i][0], err);
        config_free(c);
    }
}

Test(config, minimal_file_gets_the_documented_defaults, .init = t_setup, .fini = t_teardown)
{
    struct certval_config *c = NULL;
    const struct validator_config *v;
    char err[512], path[256];

    cr_assert_eq(t_load(&c, t_minimal, err, sizeof(err), path, sizeof(path)), 0, "%s", err);
    v = &c->validator;
    cr_expect_null(c->unix_socket);
    cr_expect_eq(c->transport_threads, 0);
    cr_expect_eq(c->worker_threads, 0);
    cr_expect_eq(c->max_chains_per_batch, 1024);
    cr_expect_eq(v->max_chain_certs, 8);
    cr_expect_eq(v->max_cert_bytes, 16384);
    cr_expect_eq(c->max_message_bytes, 4194304);
    cr_expect_eq(c->split_min_chains, 16);
    cr_expect_eq(c->drain_grace_seconds, 20);
    cr_expect_eq(v->clock_skew_seconds, 300);
    cr_expect_eq(v->max_depth, 8);
    cr_expect_eq(v->max_path_attempts, 16);
    cr_expect_eq(v->n_policy_oids, 0);
    cr_expect_not(v->explicit_policy);
    cr_expect_eq(v->n_intermediate_files, 0);
    cr_expect_eq(c->n_crl_files, 0);
    cr_expect_null(c->crl_dir);
    cr_expect_null(c->state_dir);
    cr_expect_eq(v->n_tenants, 0);
    cr_expect_eq(v->profiles[0].max_validity_days, 396, "tenant default");
    cr_expect_null(v->profiles[0].required_eku);
    cr_expect_eq(v->profiles[0].revocation, REVOCATION_LEAF);
    cr_expect_eq(v->profiles[0].crl_grace_seconds, 3600);
    cr_expect_eq(v->profiles[0].on_stale, STALE_FAIL_CLOSED);
    config_free(c);
}

Test(config, relative_paths_resolve_against_the_file_folder, .init = t_setup, .fini = t_teardown)
{
    struct certval_config *c = NULL;
    char err[512], path[256], abs_text[1024];

    /* An absolute path stays; relative ones are joined to the folder, not
     * to the working directory (which is changed to prove it). */
    snprintf(abs_text, sizeof(abs_text),
             "listen: {unix: run/s.sock}\n"
             "trust: {anchors: [%s/a.pem, sub/c.pem, ./b.pem]}\n"
             "profiles:\n"
             "  - {name: t, kind: tenant, issuers: [a.pem], tenant_id: {from: subject, "
             "attribute: CN}}\n",
             t_dir);
    cr_assert_eq(chdir("/"), 0);
    cr_assert_eq(t_load(&c, abs_text, err, sizeof(err), path, sizeof(path)), 0, "%s", err);
    cr_assert_eq(c->validator.n_anchor_files, 3);
    t_expect_suffix(c->validator.anchor_files[0], "a.pem");
    t_expect_suffix(c->validator.anchor_files[1], "sub/c.pem");
    t_expect_suffix(c->validator.anchor_files[2], "./b.pem");
    t_expect_suffix(c->validator.profiles[0].issuer_files[0], "a.pem");
    t_expect_suffix(c->unix_socket, "run/s.sock");
    cr_expect_eq(c->n_tcp, 0, "a unix socket alone is a listener");
    config_free(c);
}

Test(config, missing_file_and_null_free)
{
    struct certval_config *c = (struct certval_config *)&c;
    char err[512];

    cr_assert_eq(config_load(&c, "/nonexistent/certval.yaml", err, sizeof(err)), -1);
    cr_expect_null(c);
    cr_expect_not_null(strstr(err, "/nonexistent/certval.yaml: cannot open"), "%s", err);
    config_free(NULL);
}

/* ---- bad files: each refused with the path, the line and the problem ---- */

/* Arrays, not pointers: Criterion copies parameters into the test
 * process, where the parent's addresses mean nothing (PIE, exec). */
struct bad_case {
    char name[64];
    char yaml[512];
    int line; /* 0 = no line expected: "PATH: problem" */
    char problem[96];
};


static const struct bad_case bad_cases[] = {
    {"unknown top-level key", GOOD_HEAD GOOD_PROFILE "colour: blue\n", 10,
     "unknown key \"colour\""},
    {"unknown nested key", "listen:\n  tcp: [\"127.0.0.1:1\"]\n  udp: [x]\n", 3,
     "unknown key \"udp\""},
    {"unknown profile key", GOOD_HEAD GOOD_PROFILE "    colour: blue\n", 10,
     "unknown key \"colour\""},
    {"workers out of range", GOOD_HEAD "threads:\n  workers: 999\n" GOOD_PROFILE, 6,
     "threads.workers: 999 is out of range"},
    {"batch of zero", GOOD_HEAD "limits:\n  max_chains_per_batch: 0\n" GOOD_PROFILE, 6,
     "limits.max_chains_per_batch: 0 is out of range"},
    {"not a number", GOOD_HEAD "threads:\n  workers: many\n" GOOD_PROFILE, 6, "workers: Invalid"},
    {"negative number", GOOD_HEAD "shutdown:\n  drain_grace_seconds: -5\n" GOOD_PROFILE, 6,
     "drain_grace_seconds: Invalid"},
    {"no listener", "trust:\n  anchors: [a.pem]\n" GOOD_PROFILE, 0, "no listener"},
    {"empty listener", "listen: {}\ntrust:\n  anchors: [a.pem]\n" GOOD_PROFILE, 1, "no listener"},
    {"bad listener", "listen:\n  tcp: [\"127.0.0.1:1\", localhost]\n", 2,
     "listen.tcp[1]: \"localhost\" is not HOST:PORT"},
    {"port too big", "listen:\n  tcp: [\"127.0.0.1:70000\"]\n", 2, "is not HOST:PORT"},
    {"no anchor", "listen:\n  tcp: [\"127.0.0.1:1\"]\n" GOOD_PROFILE, 0, "no trust anchor"},
    {"missing anchor file",
     "listen:\n  tcp: [\"127.0.0.1:1\"]\ntrust:\n  anchors:\n    - a.pem\n"
     "    - nope.pem\n" GOOD_PROFILE,
     6, "trust.anchors[1]: "},
    {"no profile", GOOD_HEAD, 0, "no profile"},
    {"duplicate profile",
     GOOD_HEAD GOOD_PROFILE "  - name: t\n    kind: tenant\n"
                            "    issuers: [a.pem]\n    tenant_id: {from: subject, attribute: O}\n",
     10, "duplicate profile name \"t\""},
    {"duplicate tenant",
     GOOD_HEAD GOOD_PROFILE "tenants:\n  - id: acme\n  - id: globex\n"
                            "  - id: acme\n",
     13, "duplicate tenant id \"acme\""},
    {"device profile without device_id",
     GOOD_HEAD "profiles:\n  - name: d\n    kind: device\n"
               "    issuers: [a.pem]\n    tenant_id: {from: san_uri, prefix: \"urn:t:\"}\n",
     7, "a device profile needs device_id"},
    {"tenant profile with device_id",
     GOOD_HEAD GOOD_PROFILE "    device_id: {from: san_uri, prefix: \"urn:d:\"}\n", 10,
     "a tenant profile cannot have device_id"},
    {"bad kind", GOOD_HEAD "profiles:\n  - name: t\n    kind: server\n", 7, "kind: Invalid"},
    {"missing tenant_id",
     GOOD_HEAD "profiles:\n  - name: t\n    kind: tenant\n"
               "    issuers: [a.pem]\n",
     6, "Missing required mapping field: tenant_id"},
    {"san_uri without prefix",
     GOOD_HEAD "profiles:\n  - name: t\n    kind: tenant\n"
               "    issuers: [a.pem]\n    tenant_id: {from: san_uri}\n",
     9, "needs \"prefix\""},
    {"unknown subject attribute",
     GOOD_HEAD "profiles:\n  - name: t\n    kind: tenant\n"
               "    issuers: [a.pem]\n    tenant_id: {from: subject, attribute: colour}\n",
     9, "unknown subject attribute \"colour\""},
    {"bad eku", GOOD_HEAD GOOD_PROFILE "    required_eku: clientAuth\n", 10,
     "\"clientAuth\" is not a dotted OID"},
    {"bad policy", GOOD_HEAD "  policies: [1.2.x]\n" GOOD_PROFILE, 5, "not a dotted OID"},
    {"wrong type", "listen:\n  tcp: \"127.0.0.1:1\"\n", 2, "tcp: Expecting SEQUENCE"},
    {"yaml syntax", "listen:\n  tcp: [\"127.0.0.1:1\"\ntrust: {}\n", 3, "YAML syntax error"},
    {"bad revocation", GOOD_HEAD GOOD_PROFILE "    revocation: sometimes\n", 10,
     "revocation: Invalid"},
    {"empty file", "", 0, "empty configuration"},
    {"https CRL URL", GOOD_HEAD "revocation:\n  fetch:\n    urls: [\"https://x/c.crl\"]\n"
     GOOD_PROFILE, 7, "https"},
    {"unknown fetch key", GOOD_HEAD "revocation:\n  fetch:\n    retries: 3\n" GOOD_PROFILE, 7,
     "unknown key \"retries\""},
    {"fetch timeout out of range",
     GOOD_HEAD "revocation:\n  fetch:\n    urls: [\"http://x/c.crl\"]\n    timeout_ms: 5\n"
     GOOD_PROFILE, 8, "timeout_ms"},
    {"admin without token file", GOOD_HEAD "admin:\n  listen: \"127.0.0.1:0\"\n" GOOD_PROFILE, 6,
     "token_file"},
    {"admin token file missing",
     GOOD_HEAD "admin:\n  listen: \"127.0.0.1:0\"\n  token_file: nope.token\n" GOOD_PROFILE, 7,
     "nope.token"},
    {"metrics listen without port", GOOD_HEAD "metrics:\n  listen: localhost\n" GOOD_PROFILE, 6,
     "is not HOST:PORT"},
    {"audit rate of zero", GOOD_HEAD "audit:\n  max_lines_per_second: 0\n" GOOD_PROFILE, 6,
     "max_lines_per_second"},
    {"verdict cache too big", GOOD_HEAD "verdict_cache:\n  max_megabytes: 100000\n" GOOD_PROFILE, 6,
     "max_megabytes"},
};

ParameterizedTestParameters(config_bad, refused_with_path_line_and_problem)
{
    return cr_make_param_array(struct bad_case, (struct bad_case *)bad_cases,
                               sizeof(bad_cases) / sizeof(bad_cases[0]));
}

ParameterizedTest(const struct bad_case *bc, config_bad, refused_with_path_line_and_problem,
                  .init = t_setup, .fini = t_teardown)
{
    struct certval_config *c = (struct certval_config *)&c;
    char err[512] = "", path[256], want[320];

    cr_assert_eq(t_load(&c, bc->yaml, err, sizeof(err), path, sizeof(path)), -1, "[%s] accepted",
                 bc->name);
    cr_assert_null(c, "[%s] *out is NULL on failure", bc->name);
    if (bc->line > 0)
        snprintf(want, sizeof(want), "%s:%d: ", path, bc->line);
    else
        snprintf(want, sizeof(want), "%s: ", path);
    cr_expect_eq(strncmp(err, want, strlen(want)), 0, "[%s] want prefix \"%s\", got \"%s\"",
                 bc->name, want, err);
    cr_expect_not_null(strstr(err, bc->problem), "[%s] want \"%s\" in \"%s\"", bc->name,
                       bc->problem, err);
}
