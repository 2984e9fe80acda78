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
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certval_harness as h  # noqa: E402
import frontend_harness as fh  # noqa: E402

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def varint(v):
    """SPOP's variable-length integer (doc/SPOE.txt 3.1)."""
    if v < 240:
        return bytes([v])
    out = [(v | 240) & 0xff]
    v = (v - 240) >> 4
    while v >= 128:
        out.append((v | 128) & 0xff)
        v = (v - 128) >> 7
    out.append(v)
    return bytes(out)


def read_varint(b, i):
    v = b[i]
    i += 1
    if v < 240:
        return v, i
    shift = 4
    while True:
        c = b[i]
        i += 1
        v += c << shift
        shift += 7
        if c < 128:
            return v, i


def sstr(s):
    s = s.encode() if isinstance(s, str) else s
    return varint(len(s)) + s


def frame(ftype, payload, stream=0, fid=0):
    body = bytes([ftype]) + (1).to_bytes(4, "big") + varint(stream) + varint(fid) + payload
    return len(body).to_bytes(4, "big") + body


def recv_frame(sock):
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf
    n = int.from_bytes(exact(4), "big")
    return exact(n)


def parse_ack(f):
    """{var name: string value} of an ACK's set-var actions."""
    assert f[0] == 103, f[0]
    _, i = read_varint(f, 5)
    _, i = read_varint(f, i)
    out = {}
    while i < len(f):
        assert f[i] == 1 and f[i + 1] == 3, f[i:i + 2]
        scope = f[i + 2]
        i += 3
        n, i = read_varint(f, i)
        name = f[i:i + n].decode()
        i += n
        assert f[i] == 8
        n, i = read_varint(f, i + 1)
        out[name] = (scope, f[i:i + n].decode())
        i += n
    return out


class SpopAgentTest(fh.FrontendTest):
    """certval's agent spoken to directly, as HAProxy's SPOE does."""

    @classmethod
    def _set_up(cls):
        cls.port = fh.free_port()
        cls.srv = fh.certval_server(
            "frontends:\n  haproxy:\n    listen: \"127.0.0.1:%d\"\n" % cls.port)
        cls.srv.start()

    def connect(self):
        import socket
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        hello = (sstr("supported-versions") + b"\x08" + sstr("2.0") +
                 sstr("max-frame-size") + b"\x03" + varint(16380) +
                 sstr("capabilities") + b"\x08" + sstr("pipelining"))
        s.sendall(frame(1, hello))
        f = recv_frame(s)
        self.assertEqual(f[0], 101)
        self.assertIn(b"version", f)
        return s

    def notify(self, s, args, stream=7, fid=3):
        payload = sstr("certval-check") + bytes([len(args)])
        for k, (t, v) in args.items():
            payload += sstr(k) + bytes([t]) + (sstr(v) if t in (8, 9) else b"")
        s.sendall(frame(3, payload, stream, fid))
        f = recv_frame(s)
        _, i = read_varint(f, 5)
        self.assertEqual(f[5:i], varint(stream))
        return parse_ack(f)

    def test_verdicts_and_malformed_messages(self):
        ders = h.read_pem_chain(os.path.join(self.srv.dir, "device-acme-dev1-chain.pem"))
        s = self.connect()
        try:
            acks = self.notify(s, {"leaf": (9, ders[0]), "chain": (9, b"".join(ders[1:])),
                                   "tenant": (8, "acme"), "device": (8, "dev-001")})
            self.assertEqual(acks["decision"], (1, "ALLOW"))
            self.assertEqual(acks["kind"], (1, "device"))
            self.assertEqual(acks["tenant"], (1, "acme"))
            # The leaf alone: the path is completed from the intermediates.
            acks = self.notify(s, {"leaf": (9, ders[0]), "tenant": (8, "acme"),
                                   "device": (8, "dev-001")})
            self.assertEqual(acks["decision"], (1, "ALLOW"))
            for bad in ({"leaf": (9, b"\x30\x82\xff\xff"), "tenant": (8, "acme")},
                        {"leaf": (9, ders[0]), "chain": (9, ders[1][:-5]),
                         "tenant": (8, "acme")}):
                acks = self.notify(s, bad)
                self.assertEqual(acks["decision"], (1, "DENY"))
                self.assertIn(acks["reason"][1], ("MALFORMED",))
            # No certificate (HAProxy sends NULL): the validator denies.
            acks = self.notify(s, {"leaf": (0, None), "tenant": (8, "acme")})
            self.assertEqual(acks["decision"], (1, "DENY"))
            # HAPROXY-DISCONNECT is answered with AGENT-DISCONNECT.
            s.sendall(frame(2, sstr("status-code") + b"\x03" + varint(0) +
                            sstr("message") + b"\x08" + sstr("")))
            self.assertEqual(recv_frame(s)[0], 102)
        finally:
            s.close()

    def test_truncated_notify_is_refused(self):
        s = self.connect()
        try:
            s.sendall(frame(3, sstr("certval-check") + b"\x02" + sstr("leaf") + b"\x09\xf5"))
            f = recv_frame(s)
            self.assertIn(f[0], (102, 103))
            if f[0] == 103:
                self.assertEqual(parse_ack(f)["decision"][1], "DENY")
        finally:
            s.close()


@unittest.skipUnless(os.path.exists(HAPROXY), "haproxy not installed")
class HaproxySpoeTest(fh.FrontendTest):
    @classmethod
    def _set_up(cls):
        cls.agent_port, crt, key = cls.start_backends("haproxy")
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
        spoe = os.path.join(cls.dir, "spoe-certval.conf")
        shutil.copy(os.path.join(h.SRC, "deploy", "haproxy", "spoe-certval.conf"), spoe)
        conf = os.path.join(cls.dir, "haproxy.cfg")
        fh.fill_template(os.path.join(h.SRC, "deploy", "haproxy", "haproxy.cfg"), conf, {
            "LISTEN": "127.0.0.1:%d" % cls.port, "SERVER_PEM": server_pem,
            "CLIENT_CA": client_ca, "SPOE_CONF": spoe,
            "CERTVAL": "127.0.0.1:%d" % cls.agent_port,
            "UPSTREAM": "127.0.0.1:%d" % cls.upstream.port})
        subprocess.run([HAPROXY, "-c", "-q", "-f", conf], check=True)
        cls.start_proxy("haproxy", [HAPROXY, "-f", conf, "-db"])

    def check_case(self, name, stem, tenant, device, decision, reason, kind):
        status, body, seen = self.get(stem, tenant, device)
        if decision is None:
            self.assertEqual(status, 403, "%s: %s" % (name, body))
            self.assertEqual(seen, [], name)
            return
        self.assert_passed_on(name, status, body, seen, decision, reason, kind, tenant, device)

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
        self.assert_fails_closed_while_certval_down(403)


if __name__ == "__main__":
    unittest.main(verbosity=2)
