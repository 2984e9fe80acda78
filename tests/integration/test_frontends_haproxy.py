"""HAProxy SPOE end to end: Debian's HAProxy 2.6, started from
deploy/haproxy/haproxy.cfg and spoe-certval.conf, terminates TLS with
client certificates and sends ssl_c_der, ssl_c_chain_der and the claims to
certval's SPOE agent (frontends.haproxy); the ACL refuses what certval
denies. A recording upstream plays the login application. The same after a
deny entry pushed mid-test, and refused when certval is down."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certval_harness as h  # noqa: E402
import frontend_harness as fh  # noqa: E402

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


@unittest.skipUnless(os.path.exists(HAPROXY), "haproxy not installed")
class HaproxySpoeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.agent_port = fh.free_port()
        cls.srv = fh.certval_server(
            "frontends:\n  haproxy:\n    listen: \"127.0.0.1:%d\"\n" % cls.agent_port)
        cls.srv.start()
        cls.upstream = fh.Upstream()
        cls.dir = tempfile.mkdtemp(prefix="certval-haproxy-")
        crt, key = fh.server_cert(cls.dir)
        server_pem = os.path.join(cls.dir, "server.pem")
        with open(server_pem, "w") as out:
            for p in (crt, key):
                with open(p) as f:
                    out.write(f.read())
        client_ca = os.path.join(cls.dir, "client-ca.pem")
        with open(client_ca, "w") as out:
            for p in ("tenant-ca.pem", "device-root.pem"):
                with open(os.path.join(cls.srv.dir, p)) as f:
                    out.write(f.read())
        cls.port = fh.free_port()
        spoe = os.path.join(cls.dir, "spoe-certval.conf")
        shutil.copy(os.path.join(h.SRC, "deploy", "haproxy", "spoe-certval.conf"), spoe)
        conf = os.path.join(cls.dir, "haproxy.cfg")
        fh.fill_template(os.path.join(h.SRC, "deploy", "haproxy", "haproxy.cfg"), conf, {
            "LISTEN": "127.0.0.1:%d" % cls.port, "SERVER_PEM": server_pem,
            "CLIENT_CA": client_ca, "SPOE_CONF": spoe,
            "CERTVAL": "127.0.0.1:%d" % cls.agent_port,
            "UPSTREAM": "127.0.0.1:%d" % cls.upstream.port})
        subprocess.run([HAPROXY, "-c", "-q", "-f", conf], check=True)
        cls.log = open(os.path.join(cls.dir, "haproxy.log"), "w")
        cls.haproxy = subprocess.Popen([HAPROXY, "-f", conf, "-db"], stdout=cls.log,
                                       stderr=subprocess.STDOUT)
        fh.wait_port(cls.port, cls.haproxy)

    @classmethod
    def tearDownClass(cls):
        fh.stop_proc(cls.haproxy)
        cls.log.close()
        cls.upstream.stop()
        cls.srv.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def get(self, stem, tenant, device):
        headers = {"X-Tenant-Id": tenant, "X-User-Id": "alice",
                   "X-Certval-Decision": "ALLOW", "X-Certval-Kind": "FORGED"}
        if device:
            headers["X-Device-Id"] = device
        before = len(self.upstream.requests)
        status, body = fh.tls_get(self.port, self.srv.dir, stem, headers)
        return status, body, self.upstream.requests[before:]

    def check_case(self, name, stem, tenant, device, decision, reason, kind):
        status, body, seen = self.get(stem, tenant, device)
        if decision is None:
            self.assertEqual(status, 403, "%s: %s" % (name, body))
            self.assertEqual(seen, [], name)
            return
        self.assertEqual(status, 200, "%s: %s" % (name, body))
        self.assertEqual(len(seen), 1, name)
        up = seen[0]
        self.assertEqual(up.get("x-certval-decision"), decision, name)
        self.assertEqual(up.get("x-certval-reason"), reason, name)
        self.assertEqual(up.get("x-certval-kind"), kind, name)
        self.assertEqual(up.get("x-certval-tenant"), tenant, name)
        self.assertEqual(up.get("x-certval-device", ""), device, name)

    def haproxy_decisions(self, decision):
        m = self.srv.scrape()
        return m.get(("certval_frontend_decisions_total",
                      frozenset({("frontend", "haproxy"), ("decision", decision)})), 0)

    def test_1_cases_then_revocation(self):
        for case in fh.CASES:
            with self.subTest(case=case[0]):
                self.check_case(*case)
        # The denials are certval's, not HAProxy's own TLS checks: one DENY
        # per refused case reached the agent.
        self.assertGreaterEqual(self.haproxy_decisions("DENY"), 5)
        fh.deny_leaf(self.srv, "device-acme-dev1")
        status, body, seen = self.get("device-acme-dev1", "acme", "dev-001")
        self.assertEqual((status, seen), (403, []), body)
        self.check_case(*fh.CASES[0])

    def test_3_once_per_connection_and_again_for_another_claim(self):
        import http.client
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(os.path.join(self.srv.dir, "tenant-acme.pem"),
                            os.path.join(self.srv.dir, "tenant-acme.key"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=ctx)
        try:
            before = self.haproxy_decisions("REQUIRE_PASSWORD")
            for _ in range(3):
                conn.request("GET", "/", headers={"X-Tenant-Id": "acme"})
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
            self.assertEqual(self.haproxy_decisions("REQUIRE_PASSWORD"), before + 1)
            # Another tenant on the same connection is judged again: denied.
            conn.request("GET", "/", headers={"X-Tenant-Id": "globex"})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 403)
        finally:
            conn.close()

    def test_2_certval_down_fails_closed(self):
        self.srv.stop()
        try:
            status, body, seen = self.get("tenant-acme", "acme", "")
            self.assertEqual(status, 403, body)
            self.assertEqual(seen, [])
        finally:
            self.srv.start()


if __name__ == "__main__":
    unittest.main(verbosity=2)
