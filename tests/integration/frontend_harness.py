"""Shared pieces of the front-end tests (test_frontends_*.py): a certvald
with the frontends section and the admin API, a recording upstream, TLS
clients presenting the demo PKI's certificates, and the real nginx or
HAProxy started from the example configuration in deploy/."""
import http.client
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import certval_harness as h

TOKEN = "frontend-test-token-0123456789abcdef"

# Client certificate (demo PKI file stem), claimed tenant, claimed device,
# expected decision (None: refused) and reason.
CASES = [
    ("tenant", "tenant-acme", "acme", "", "REQUIRE_PASSWORD", "OK", "tenant"),
    ("device", "device-acme-dev1", "acme", "dev-001", "ALLOW", "OK", "device"),
    ("revoked", "tenant-acme-revoked", "acme", "", None, "REVOKED", None),
    ("expired", "tenant-acme-expired", "acme", "", None, "EXPIRED", None),
    ("untrusted", "rogue-client", "acme", "", None, "UNTRUSTED_ISSUER", None),
    ("wrong-tenant", "tenant-acme", "globex", "", None, "WRONG_TENANT", None),
    ("no-certificate", None, "acme", "", None, None, None),
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def certval_server(frontends_yaml):
    """A certvald (not started) with the admin API and |frontends_yaml|."""
    srv = h.Server()
    with open(os.path.join(srv.dir, "admin.token"), "w") as f:
        f.write(TOKEN + "\n")
    with open(srv.config, "a") as f:
        f.write("admin:\n  listen: \"127.0.0.1:0\"\n  token_file: admin.token\n")
        f.write("metrics:\n  listen: \"127.0.0.1:0\"\n")
        f.write(frontends_yaml)
    return srv


def deny_leaf(srv, stem):
    """Adds the leaf to the emergency deny list through certvalctl admin."""
    with open(srv.admin_port_file) as f:
        admin = "127.0.0.1:%d" % int(f.read())
    subprocess.run([h.CERTVALCTL, "admin", "--server", admin, "--token-file",
                    os.path.join(srv.dir, "admin.token"), "deny-add", "--leaf",
                    os.path.join(srv.dir, stem + ".pem"), "--reason", "frontend test"],
                   check=True, stdout=subprocess.DEVNULL)


def server_cert(d):
    """A self-signed TLS server certificate for the front end (openssl CLI,
    a separate process)."""
    crt, key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=localhost"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return crt, key


class Upstream:
    """The login application: records the headers of every request."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append({k.lower(): v for k, v in self.headers.items()})
                body = b"login application\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def tls_get(port, pki_dir, stem, headers, timeout=10):
    """GET / over TLS presenting |stem|'s certificate (None: no certificate).
    Returns (status, body) or (None, error) when the connection is refused
    or reset."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if stem is not None:
        ctx.load_cert_chain(os.path.join(pki_dir, stem + ".pem"),
                            os.path.join(pki_dir, stem + ".key"))
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)
    try:
        conn.request("GET", "/login", headers=headers)
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    except (ConnectionError, ssl.SSLError, http.client.HTTPException) as e:
        return None, repr(e)
    finally:
        conn.close()


def fill_template(src, dst, values):
    with open(src) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("@%s@" % k, str(v))
    import re
    if re.search(r"@[A-Z_]+@", "\n".join(line.split("#")[0] for line in text.splitlines())):
        raise AssertionError("unfilled placeholder in %s" % dst)
    with open(dst, "w") as f:
        f.write(text)


def wait_port(port, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("process exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d not open" % port)


def stop_proc(proc, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class FrontendTest(unittest.TestCase):
    """Base of the front-end test classes. A subclass's classmethod
    _set_up() starts what its tests need and keeps each piece in a class
    attribute: proxy (the nginx or HAProxy process), log, upstream, srv,
    api, dir. tearDownClass stops whichever of them exist, and runs also
    when _set_up fails half way (unittest does not call tearDownClass when
    setUpClass raises)."""

    @classmethod
    def setUpClass(cls):
        try:
            cls._set_up()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _set_up(cls):
        raise NotImplementedError

    @classmethod
    def start_certval(cls, frontend):
        """Starts cls.srv, a certvald serving |frontend| ("nginx" or
        "haproxy") on a free port, and returns that port. The image smoke
        test (deploy/image_frontends.py) points it at a container instead."""
        port = free_port()
        cls.srv = certval_server(
            "frontends:\n  %s:\n    listen: \"127.0.0.1:%d\"\n" % (frontend, port))
        cls.srv.start()
        return port

    @classmethod
    def start_backends(cls, frontend):
        """Starts certval (start_certval) and the upstream; makes cls.dir
        with the proxy's TLS certificate and picks cls.port for the proxy.
        Returns (certval's port, certificate file, key file)."""
        port = cls.start_certval(frontend)
        cls.upstream = Upstream()
        cls.dir = tempfile.mkdtemp(prefix="certval-%s-" % frontend)
        crt, key = server_cert(cls.dir)
        cls.port = free_port()
        return port, crt, key

    @classmethod
    def start_proxy(cls, name, argv):
        """Starts |argv| (the proxy listening on cls.port) with its output in
        cls.dir/|name|.log, and waits for its port."""
        cls.log = open(os.path.join(cls.dir, name + ".log"), "w")
        cls.proxy = subprocess.Popen(argv, stdout=cls.log, stderr=subprocess.STDOUT)
        wait_port(cls.port, cls.proxy)

    @classmethod
    def tearDownClass(cls):
        stop_proc(getattr(cls, "proxy", None))
        for name, stop in (("log", "close"), ("upstream", "stop"), ("srv", "cleanup"),
                           ("api", "cleanup")):
            if getattr(cls, name, None) is not None:
                getattr(getattr(cls, name), stop)()
        if getattr(cls, "dir", None) is not None:
            shutil.rmtree(cls.dir, ignore_errors=True)

    def get(self, stem, tenant, device, extra=None):
        """GET through the proxy on cls.port presenting |stem|'s certificate
        with the claims, and forged certval answers the upstream must never
        see. Returns (status, body, the upstream requests it caused)."""
        headers = {"X-Tenant-Id": tenant, "X-User-Id": "alice",
                   "X-Certval-Decision": "ALLOW", "X-Certval-Kind": "FORGED"}
        if device:
            headers["X-Device-Id"] = device
        headers.update(extra or {})
        before = len(self.upstream.requests)
        status, body = tls_get(self.port, self.srv.dir, stem, headers)
        return status, body, self.upstream.requests[before:]

    def assert_passed_on(self, name, status, body, seen, decision, reason, kind, tenant, device):
        """The request reached the upstream once, carrying certval's own
        decision, reason, kind and claims."""
        self.assertEqual(status, 200, "%s: %s" % (name, body))
        self.assertEqual(len(seen), 1, name)
        up = seen[0]
        self.assertEqual(up.get("x-certval-decision"), decision, name)
        self.assertEqual(up.get("x-certval-reason"), reason, name)
        self.assertEqual(up.get("x-certval-kind"), kind, name)
        self.assertEqual(up.get("x-certval-tenant"), tenant, name)
        self.assertEqual(up.get("x-certval-device", ""), device, name)

    def assert_fails_closed_while_certval_down(self, want_status):
        """With certvald stopped, a valid client gets |want_status| from the
        proxy and nothing reaches the upstream; certvald is started again."""
        self.srv.stop()
        try:
            status, body, seen = self.get("tenant-acme", "acme", "")
            self.assertEqual(status, want_status, body)
            self.assertEqual(seen, [])
        finally:
            self.srv.start()
