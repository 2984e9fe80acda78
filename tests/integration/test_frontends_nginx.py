"""nginx auth_request end to end: Debian's nginx, started from
deploy/nginx/nginx.conf, terminates TLS with client certificates and asks
certval (frontends.nginx) about every request; a recording upstream plays
the login application. Allowed clients reach it with certval's decision
(never a forged one), denied ones get 403, the same after a deny-list entry
is pushed mid-test, and nginx answers 500 (fail closed) when certval is
down."""
import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certval_harness as h  # noqa: E402
import frontend_harness as fh  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@unittest.skipUnless(os.path.exists(NGINX), "nginx not installed")
class NginxAuthRequestTest(fh.FrontendTest):
    @classmethod
    def _set_up(cls):
        cls.auth_port, crt, key = cls.start_backends("nginx")
        conf = os.path.join(cls.dir, "nginx.conf")
        fh.fill_template(os.path.join(h.SRC, "deploy", "nginx", "nginx.conf"), conf, {
            "LISTEN": "127.0.0.1:%d" % cls.port, "SERVER_CERT": crt, "SERVER_KEY": key,
            "CERTVAL": "127.0.0.1:%d" % cls.auth_port,
            "UPSTREAM": "127.0.0.1:%d" % cls.upstream.port})
        cls.start_proxy("nginx", [NGINX, "-p", cls.dir, "-c", conf, "-e", "stderr", "-g",
                                  "daemon off; pid %s;" % os.path.join(cls.dir, "nginx.pid")])

    def check_case(self, name, stem, tenant, device, decision, reason, kind):
        status, body, seen = self.get(stem, tenant, device)
        if decision is None and name == "expired":
            # nginx itself refuses an expired client certificate even with
            # optional_no_ca (400 "The SSL certificate error") before asking
            # certval: refused all the same (docs/frontends.md).
            self.assertEqual(status, 400, "%s: %s" % (name, body))
            self.assertEqual(seen, [], name)
            return
        if decision is None:
            self.assertEqual(status, 403, "%s: %s" % (name, body))
            self.assertEqual(seen, [], name)
            if reason is not None:
                self.assertIn(reason, body, name)
            return
        self.assert_passed_on(name, status, body, seen, decision, reason, kind, tenant, device)

    def test_1_cases_then_revocation(self):
        for case in fh.CASES:
            with self.subTest(case=case[0]):
                self.check_case(*case)
        # A client without a certificate cannot smuggle one in a header.
        with open(os.path.join(self.srv.dir, "tenant-acme.pem")) as f:
            import urllib.parse
            forged = urllib.parse.quote(f.read())
        status, _, seen = self.get(None, "acme", "", {"X-Client-Cert": forged})
        self.assertEqual((status, seen), (403, []))
        # Revocation pushed mid-test (emergency deny list through the admin
        # API): the very next request of the same client is refused.
        fh.deny_leaf(self.srv, "device-acme-dev1")
        status, body, seen = self.get("device-acme-dev1", "acme", "dev-001")
        self.assertEqual((status, seen), (403, []), body)
        self.assertIn("REVOKED", body)
        # Others are unaffected.
        self.check_case(*fh.CASES[0])
        # The audit log has the denial, with the claims nginx passed on.
        audits = [l for l in self.srv.log_lines() if l.get("reason") == "REVOKED" and
                  l.get("device") == "dev-001"]
        self.assertTrue(audits, "no audit line for the revoked device")
        self.assertEqual((audits[-1]["tenant"], audits[-1]["user"]), ("acme", "alice"))
        # The decisions are counted under the nginx label.
        m = self.srv.scrape()
        key = ("certval_frontend_decisions_total",
               frozenset({("frontend", "nginx"), ("decision", "DENY")}))
        self.assertGreaterEqual(m.get(key, 0), 6)

    def test_3_endpoint_answers_400_for_a_malformed_subrequest(self):
        import urllib.error
        import urllib.parse
        import urllib.request

        def ask(headers):
            req = urllib.request.Request("http://127.0.0.1:%d/check" % self.auth_port,
                                         headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status, dict((k.lower(), v) for k, v in r.headers.items())
            except urllib.error.HTTPError as e:
                return e.code, dict((k.lower(), v) for k, v in e.headers.items())

        with open(os.path.join(self.srv.dir, "tenant-globex.pem")) as f:
            good = urllib.parse.quote(f.read(), safe="")
        status, hdrs = ask({"X-Client-Cert": good, "X-Tenant-Id": "globex"})
        self.assertEqual((status, hdrs.get("x-certval-decision")), (200, "REQUIRE_PASSWORD"))
        for bad in ("%ZZ", "not%20a%20certificate", good[:200]):
            status, hdrs = ask({"X-Client-Cert": bad, "X-Tenant-Id": "globex"})
            self.assertEqual(status, 400, bad)
            self.assertEqual(hdrs.get("x-certval-reason"), "MALFORMED", bad)
        status, _ = ask({"X-Client-Cert": good, "X-Tenant-Id": "a\x01b"})
        self.assertIn(status, (400,))

    def test_2_certval_down_fails_closed(self):
        self.assert_fails_closed_while_certval_down(500)


if __name__ == "__main__":
    unittest.main(verbosity=2)
