"""CRLs fetched over HTTP (revocation.fetch) on a running certvald, with a
CRL server on 127.0.0.1 that can misbehave: down, slow, truncated, garbage,
oversized (declared and streamed), redirect loop, wrong signature, expired.
Throughout, certvald keeps answering with the policy's verdicts from the
last good CRL, does not crash, and counts each failure in
certval_crl_fetch_total{url,result}. Positive paths: a new CRL revoking the
device certificate is fetched and the next call is DENY REVOKED; 304 Not
Modified; the fetched CRL survives a restart with the CRL server down
(state folder). Start-up health: NOT_SERVING while a required CRL is
missing, SERVING once the fetch brings it. All waits are bounded."""
import http.server
import os
import re
import socketserver
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certval_harness as h  # noqa: E402

pb, health_pb2 = h.stubs()
D, R = pb.Decision, pb.Reason
MAX_BYTES = 16384
TIMEOUT_MS = 1000


def next_number(k):
    """A cRLNumber above the demo CRLs' (the demo numbers them by the clock)."""
    return int(time.time()) + 1000 * k


def sign_crl(srv, out, serials, number, key=None, at=None, next_update_s=None):
    cmd = [h.CERTVALCTL, "crl-sign", "--ca", os.path.join(srv.dir, "device-issuing-ca.pem"),
           "--key", key or os.path.join(srv.dir, "device-issuing-ca.key"),
           "--number", str(number), "--out", out]
    if at is not None:
        cmd += ["--at", str(at)]
    if next_update_s is not None:
        cmd += ["--next-update-seconds", str(next_update_s)]
    for s in serials:
        cmd += ["--revoke", s]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(out, "rb") as f:
        return f.read()


class CrlServer:
    """A small HTTP server with fault modes, bounded in every way."""

    def __init__(self):
        self.mode = "ok"
        self.body = b""
        self.etag = ""
        self.requests = []  # (path, headers dict) of each request
        self.stop_event = threading.Event()
        self.httpd = None
        self.port = 0

    def set(self, mode, body=None, etag=None):
        if body is not None:
            self.body = body
            self.etag = etag or '"%d-%d"' % (len(body), hash(body) & 0xffffff)
        self.mode = mode

    def start(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append((self.path, dict(self.headers)))
                try:
                    getattr(outer, "serve_" + outer.mode)(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", self.port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def down(self):
        """Closes the port (mode "down")."""
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def close(self):
        self.stop_event.set()
        self.down()

    def url(self):
        return "http://127.0.0.1:%d/device-issuing-ca.crl" % self.port

    # ---- modes ----
    def _send(self, req, code, body, headers=()):
        req.send_response(code)
        for k, v in headers:
            req.send_header(k, v)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def serve_ok(self, req):
        if req.headers.get("If-None-Match") == self.etag:
            req.send_response(304)
            req.send_header("ETag", self.etag)
            req.end_headers()
            return
        self._send(req, 200, self.body, [("Content-Type", "application/pkix-crl"),
                                         ("ETag", self.etag),
                                         ("Last-Modified", "Sun, 22 Nov 2026 10:00:00 GMT")])

    def serve_slow(self, req):
        self.stop_event.wait(TIMEOUT_MS / 1000 * 2.5)
        self._send(req, 200, self.body)

    def serve_truncated(self, req):
        req.send_response(200)
        req.send_header("Content-Length", str(len(self.body) + 1000))
        req.end_headers()
        req.wfile.write(self.body[: len(self.body) // 2])
        req.wfile.flush()

    def serve_garbage(self, req):
        self._send(req, 200, b"this is not a CRL\n" * 20)

    def serve_oversized_declared(self, req):
        req.send_response(200)
        req.send_header("Content-Length", str(MAX_BYTES * 4))
        req.end_headers()
        req.wfile.write(b"\x30" * 1024)

    def serve_oversized_streamed(self, req):
        # No Content-Length: the body runs to the end of the connection.
        req.send_response(200)
        req.send_header("Connection", "close")
        req.end_headers()
        for _ in range(4 * MAX_BYTES // 4096):
            req.wfile.write(b"\x30" * 4096)

    def serve_redirect_loop(self, req):
        req.send_response(302)
        req.send_header("Location", "/loop/" + str(len(self.requests) % 2))
        req.send_header("Content-Length", "0")
        req.end_headers()

    serve_wrong_signature = serve_ok
    serve_expired = serve_ok


def fetch_yaml(url, extra=""):
    return ("revocation:\n  crl_files: [tenant-ca.crl, device-root.crl]\n"
            "  fetch:\n    urls: [\"%s\"]\n    timeout_ms: %d\n    max_bytes: %d\n"
            "    max_redirects: 2\n    max_interval_seconds: 1\n    max_backoff_seconds: 1\n%s"
            "metrics:\n  listen: \"127.0.0.1:0\"\n" % (url, TIMEOUT_MS, MAX_BYTES, extra))


def configure(srv, yaml_text, device_profile_extra=""):
    """Replaces the demo's revocation section (the device issuing CA's CRL
    now comes over HTTP only) and appends metrics."""
    with open(srv.config) as f:
        text = f.read()
    text, n = re.subn(r"revocation:\n  crl_files: \[[^\]]*\]\n", "", text)
    assert n == 1
    if device_profile_extra:
        text, n = re.subn(r"(    device_id: [^\n]*\n    revocation: all\n)",
                          r"\1" + device_profile_extra, text)
        assert n == 1
    with open(srv.config, "w") as f:
        f.write(text + yaml_text)


class CrlFetchTest(unittest.TestCase):
    def setUp(self):
        self.http = CrlServer().start()
        self.srv = h.Server()

    def tearDown(self):
        self.srv.cleanup()
        self.http.close()

    def dev1(self):
        return self.srv.validate([self.srv.chain("device-acme-dev1-chain.pem", "acme",
                                                 "dev-001")]).verdicts[0]

    def count(self, result):
        m = self.srv.scrape()
        return m.get(("certval_crl_fetch_total",
                      frozenset({("url", self.url), ("result", result)})), 0)

    def wait_count(self, result, above, timeout=8):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.count(result) > above:
                return
            self.assertIsNone(self.srv.proc.poll(), "certvald exited:\n" + self.srv.logs())
            time.sleep(0.1)
        self.fail("no fetch counted as %s within %d s:\n%s" % (result, timeout, self.srv.logs()))

    def wait_verdict(self, decision, reason, timeout=8):
        deadline = time.time() + timeout
        v = None
        while time.time() < deadline:
            v = self.dev1()
            if v.decision == decision and v.reason == reason:
                return v
            time.sleep(0.05)
        self.fail("dev1 is %s/%s, not %s/%s, after %d s:\n%s" % (
            v.decision, v.reason, decision, reason, timeout, self.srv.logs()))

    def start_unchecked(self):
        """Starts certvald without waiting for SERVING."""
        self.srv.wait_serving = lambda timeout=20: None
        self.srv.start()
        del self.srv.wait_serving

    def test_faults_keep_last_good_crl_then_revocation_and_restart(self):
        self.url = self.http.url()
        configure(self.srv, fetch_yaml(self.url))
        good = sign_crl(self.srv, os.path.join(self.srv.dir, "good.crl"), [], next_number(1))
        self.http.set("ok", good)
        self.srv.start()  # SERVING needs the device CA's CRL: it came over HTTP
        v = self.dev1()
        self.assertEqual(v.decision, D.DECISION_ALLOW, v.detail)
        self.assertGreaterEqual(self.count("ok"), 1)

        # Conditional requests: the next fetches send the validators back
        # and get 304.
        self.wait_count("not_modified", 0)
        conditional = [hd for _, hd in self.http.requests if "If-None-Match" in hd]
        self.assertTrue(conditional, self.http.requests)
        self.assertEqual(conditional[-1]["If-None-Match"], self.http.etag)
        self.assertEqual(conditional[-1]["If-Modified-Since"], "Sun, 22 Nov 2026 10:00:00 GMT")

        rogue = sign_crl(self.srv, os.path.join(self.srv.dir, "rogue.crl"), [v.serial_hex],
                         next_number(2), key=os.path.join(self.srv.dir, "rogue-ca.key"))
        expired = sign_crl(self.srv, os.path.join(self.srv.dir, "expired.crl"), [v.serial_hex],
                           next_number(3), at=int(time.time()) - 3 * 86400, next_update_s=3600)
        faults = [
            ("slow", None, "timeout"),
            ("truncated", None, "truncated"),
            ("garbage", None, "refused"),
            ("oversized_declared", None, "too_large"),
            ("oversized_streamed", None, "too_large"),
            ("redirect_loop", None, "redirect_limit"),
            ("wrong_signature", rogue, "refused"),
            ("expired", expired, "expired"),
            ("down", None, "connect_error"),
        ]
        for mode, body, result in faults:
            with self.subTest(mode=mode):
                before = self.count(result)
                if mode == "down":
                    self.http.down()
                else:
                    self.http.set(mode, body)
                self.wait_count(result, before)
                v = self.dev1()
                self.assertEqual(v.decision, D.DECISION_ALLOW, "%s: %s" % (mode, v.detail))
                self.assertIsNone(self.srv.proc.poll())
        logs = self.srv.logs()
        self.assertIn("failed (connect_error)", logs)
        m = self.srv.scrape()
        self.assertGreater(m[("certval_crl_fetch_last_success_timestamp_seconds",
                              frozenset({("url", self.url)}))], time.time() - 120)
        self.assertGreaterEqual(m[("certval_crl_refused_total", frozenset())], 2)

        # The CRL server comes back with a CRL revoking dev1.
        self.http.start()
        revoking = sign_crl(self.srv, os.path.join(self.srv.dir, "revoking.crl"), [v.serial_hex],
                            next_number(4))
        self.http.set("ok", revoking)
        v2 = self.wait_verdict(D.DECISION_DENY, R.REASON_REVOKED)
        self.assertIn("revoked", v2.detail.lower())

        # Restart with the CRL server down: the fetched CRL is served at once
        # from the state folder.
        self.assertEqual(self.srv.stop(), 0)
        self.http.down()
        self.srv.start()
        v3 = self.dev1()
        self.assertEqual((v3.decision, v3.reason), (D.DECISION_DENY, R.REASON_REVOKED), v3.detail)
        self.wait_count("connect_error", 0)

    def test_stale_crl_fail_closed_while_server_down(self):
        self.url = self.http.url()
        configure(self.srv, fetch_yaml(self.url), "    crl_grace_seconds: 0\n")
        now = int(time.time())
        # Valid for 4 more seconds.
        short = sign_crl(self.srv, os.path.join(self.srv.dir, "short.crl"), [], next_number(1),
                         at=now - 60, next_update_s=64)
        self.http.set("ok", short)
        self.srv.start()
        self.assertEqual(self.dev1().decision, D.DECISION_ALLOW)
        self.http.down()
        v = self.wait_verdict(D.DECISION_DENY, R.REASON_REVOCATION_STALE, timeout=10)
        self.assertIsNone(self.srv.proc.poll())
        self.assertGreater(self.count("connect_error"), 0, v.detail)
        # Health stays SERVING: staleness is the per-profile policy's business.
        self.assertEqual(self.srv.health(), health_pb2.HealthCheckResponse.SERVING)
        # The server returns with a fresh CRL: allowed again.
        fresh = sign_crl(self.srv, os.path.join(self.srv.dir, "fresh.crl"), [], next_number(2))
        self.http.start()
        self.http.set("ok", fresh)
        self.wait_verdict(D.DECISION_ALLOW, R.REASON_OK)

    def test_not_serving_until_required_crl_fetched(self):
        self.url = self.http.url()
        configure(self.srv, fetch_yaml(self.url))
        good = sign_crl(self.srv, os.path.join(self.srv.dir, "good.crl"), [], next_number(1))
        self.http.set("garbage")
        self.start_unchecked()
        NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
        deadline = time.time() + 1.5
        checks = 0
        while time.time() < deadline:
            try:
                self.assertEqual(self.srv.health(), NOT_SERVING)
                checks += 1
            except h.grpc.RpcError:
                pass
            time.sleep(0.1)
        self.assertGreater(checks, 3)
        self.assertGreater(self.count("refused"), 0)
        self.assertIn("NOT_SERVING until the required CRLs", self.srv.logs())
        self.http.set("ok", good)
        t0 = time.time()
        self.srv.wait_serving(timeout=8)
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(self.dev1().decision, D.DECISION_ALLOW)


if __name__ == "__main__":
    unittest.main(verbosity=2)
