"""Revocation end to end on a running certvald: a device certificate
validates, a CRL revoking it arrives, and the very next call is denied.
Three ways for the CRL to arrive: the admin API (certval.v1.Admin/PushCrl,
bearer token), a replaced CRL file, and a new file dropped in the CRL
folder. A pushed CRL survives a restart (state folder)."""
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certval_harness as h  # noqa: E402

pb, _ = h.stubs()
import grpc  # noqa: E402
import importlib  # noqa: E402

admin_pb2 = importlib.import_module("certval.v1.admin_pb2")
D, R = pb.Decision, pb.Reason
TOKEN = "integration-test-token-0123456789"


def next_number(k):
    """A cRLNumber above the demo CRLs' (the demo numbers them by the clock)."""
    return int(time.time()) + 1000 * k


def sign_crl(srv, out, serials, number):
    cmd = [h.CERTVALCTL, "crl-sign", "--ca", os.path.join(srv.dir, "device-issuing-ca.pem"),
           "--key", os.path.join(srv.dir, "device-issuing-ca.key"), "--number", str(number),
           "--out", out]
    for s in serials:
        cmd += ["--revoke", s]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


class RevocationTest(unittest.TestCase):
    def setUp(self):
        self.srv = h.Server()
        with open(os.path.join(self.srv.dir, "admin.token"), "w") as f:
            f.write(TOKEN + "\n")
        with open(self.srv.config, "a") as f:
            f.write("admin:\n  listen: \"127.0.0.1:0\"\n  token_file: admin.token\n")
        self.srv.start()
        with open(self.srv.admin_port_file) as f:
            self.admin = grpc.insecure_channel("127.0.0.1:%d" % int(f.read()))

    def tearDown(self):
        self.admin.close()
        self.srv.cleanup()

    def dev1(self):
        return self.srv.validate([self.srv.chain("device-acme-dev1-chain.pem", "acme",
                                                 "dev-001")]).verdicts[0]

    def admin_call(self, method, req, resp_cls, token=TOKEN):
        call = self.admin.unary_unary("/certval.v1.Admin/" + method,
                                      request_serializer=type(req).SerializeToString,
                                      response_deserializer=resp_cls.FromString)
        md = [("authorization", "Bearer " + token)] if token is not None else []
        return call(req, metadata=md, timeout=20)

    def wait_denied(self, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = self.dev1()
            if v.decision == D.DECISION_DENY:
                return v
            time.sleep(0.02)
        return self.dev1()

    def test_admin_push_revokes_at_once_and_survives_restart(self):
        v = self.dev1()
        self.assertEqual(v.decision, D.DECISION_ALLOW, v.detail)
        crl = os.path.join(self.srv.dir, "pushed.crl")
        number = next_number(1)
        sign_crl(self.srv, crl, [v.serial_hex], number)
        with open(crl, "rb") as f:
            resp = self.admin_call("PushCrl", admin_pb2.PushCrlRequest(crl=f.read()),
                                   admin_pb2.PushCrlResponse)
        self.assertIn("Device Issuing", resp.issuer)
        self.assertEqual(resp.crl_number, number)
        self.assertEqual(resp.entries, 1)
        # The very next call: no waiting.
        v2 = self.dev1()
        self.assertEqual((v2.decision, v2.reason), (D.DECISION_DENY, R.REASON_REVOKED), v2.detail)
        # Another device of the same CA is unaffected.
        g = self.srv.validate([self.srv.chain("device-globex-dev2-chain.pem", "globex",
                                              "dev-002")]).verdicts[0]
        self.assertEqual(g.decision, D.DECISION_REQUIRE_PASSWORD)
        status = self.admin_call("GetRevocationStatus", admin_pb2.GetRevocationStatusRequest(),
                                 admin_pb2.GetRevocationStatusResponse)
        issuers = {s.issuer: s for s in status.issuers}
        dev = [s for name, s in issuers.items() if "Device Issuing" in name]
        self.assertEqual(len(dev), 1)
        self.assertEqual(dev[0].crl_number, number)
        self.assertTrue(dev[0].source.startswith("admin"))
        self.assertGreaterEqual(len(status.issuers), 3)
        # Restart on the same state folder: the pushed CRL is still in force.
        self.srv.stop()
        self.srv.start()
        v3 = self.dev1()
        self.assertEqual((v3.decision, v3.reason), (D.DECISION_DENY, R.REASON_REVOKED), v3.detail)

    def test_push_refuses_bad_input_and_keeps_serving(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin_call("PushCrl", admin_pb2.PushCrlRequest(crl=b"not a crl"),
                            admin_pb2.PushCrlResponse)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # A CRL signed by a CA the configuration does not know.
        out = os.path.join(self.srv.dir, "rogue.crl")
        subprocess.run([h.CERTVALCTL, "crl-sign", "--ca", os.path.join(self.srv.dir, "rogue-ca.pem"),
                        "--key", os.path.join(self.srv.dir, "rogue-ca.key"), "--number", str(next_number(4)),
                        "--out", out], check=True, stdout=subprocess.DEVNULL)
        with open(out, "rb") as f:
            with self.assertRaises(grpc.RpcError) as cm:
                self.admin_call("PushCrl", admin_pb2.PushCrlRequest(crl=f.read()),
                                admin_pb2.PushCrlResponse)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.dev1().decision, D.DECISION_ALLOW)

    def test_admin_keeps_working_after_reloads(self):
        # The admin API's settings must not point into a configuration that
        # a reload frees (it once did: the token path became garbage).
        import signal as sig
        for _ in range(3):
            self.srv.proc.send_signal(sig.SIGHUP)
            time.sleep(0.3)
        self.admin_call("Reload", admin_pb2.ReloadRequest(), admin_pb2.ReloadResponse)
        status = self.admin_call("GetRevocationStatus", admin_pb2.GetRevocationStatusRequest(),
                                 admin_pb2.GetRevocationStatusResponse)
        self.assertGreaterEqual(len(status.issuers), 3)
        self.assertNotIn("token file", self.srv.logs())

    def test_push_larger_than_the_validator_message_limit(self):
        # 5 MB is over limits.max_message_bytes (4 MiB): the admin listener
        # has its own, larger limit, so the CRL reaches the parser and is
        # refused for what it is, not for its size.
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin_call("PushCrl", admin_pb2.PushCrlRequest(crl=b"\x30" * (5 << 20)),
                            admin_pb2.PushCrlResponse)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("CRL refused", cm.exception.details())

    def test_admin_requires_the_token(self):
        for token in (None, "wrong-token-wrong-token-wrong", TOKEN + "x"):
            with self.assertRaises(grpc.RpcError) as cm:
                self.admin_call("GetRevocationStatus", admin_pb2.GetRevocationStatusRequest(),
                                admin_pb2.GetRevocationStatusResponse, token=token)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        # The admin API is not served on the validator's port.
        call = self.srv.channel.unary_unary("/certval.v1.Admin/GetRevocationStatus")
        with self.assertRaises(grpc.RpcError) as cm:
            call(b"", metadata=[("authorization", "Bearer " + TOKEN)], timeout=5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_admin_listener_serves_only_admin_and_health_check(self):
        # Each listener answers the methods registered on it (server.c's
        # method table) and UNIMPLEMENTED for anything else.
        _, health_pb2 = h.stubs()
        check = self.admin.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString)
        self.assertEqual(check(health_pb2.HealthCheckRequest(), timeout=5).status,
                         health_pb2.HealthCheckResponse.SERVING)
        for method in ("/grpc.health.v1.Health/Watch", "/certval.v1.Validator/Validate",
                       "/certval.v1.Admin", "/certval.v1.AdminX/Reload",
                       "/certval.v1.Admin/" + "x" * 200):
            call = self.admin.unary_unary(method)
            with self.assertRaises(grpc.RpcError) as cm:
                call(b"", metadata=[("authorization", "Bearer " + TOKEN)], timeout=5)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED, method)

    def ctl_admin(self, *args):
        with open(self.srv.admin_port_file) as f:
            port = int(f.read())
        return subprocess.run([h.CERTVALCTL, "admin", "--server", "127.0.0.1:%d" % port,
                               "--token-file", os.path.join(self.srv.dir, "admin.token")] +
                              list(args), capture_output=True, text=True, timeout=30)

    def test_emergency_deny_entries_via_certvalctl(self):
        v = self.dev1()
        self.assertEqual(v.decision, D.DECISION_ALLOW)
        self.dev1()  # now also in the verdict cache
        # By issuer + serial.
        p = self.ctl_admin("deny-add", "--issuer-cert",
                           os.path.join(self.srv.dir, "device-issuing-ca.pem"),
                           "--serial", v.serial_hex, "--reason", "lost device 42")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1 deny entries", p.stdout)
        v2 = self.dev1()
        self.assertEqual((v2.decision, v2.reason), (D.DECISION_DENY, R.REASON_REVOKED))
        self.assertIn("lost device 42", v2.detail)
        listing = self.ctl_admin("deny-list")
        self.assertEqual(listing.returncode, 0, listing.stderr)
        self.assertIn("serial " + v.serial_hex, listing.stdout)
        self.assertIn("lost device 42", listing.stdout)
        p = self.ctl_admin("deny-remove", "--issuer-cert",
                           os.path.join(self.srv.dir, "device-issuing-ca.pem"),
                           "--serial", v.serial_hex)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.dev1().decision, D.DECISION_ALLOW)
        # By leaf certificate; kept across a restart (state folder).
        p = self.ctl_admin("deny-add", "--leaf", os.path.join(self.srv.dir, "device-acme-dev1.pem"),
                           "--reason", "stolen")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.dev1().reason, R.REASON_REVOKED)
        self.srv.stop()
        self.srv.start()
        v3 = self.dev1()
        self.assertEqual((v3.decision, v3.reason), (D.DECISION_DENY, R.REASON_REVOKED), v3.detail)
        st = self.ctl_admin("status")
        self.assertEqual(st.returncode, 0, st.stderr)
        self.assertIn("deny entries: 1", st.stdout)
        # Removing what is not there is an error, not a crash.
        p = self.ctl_admin("deny-remove", "--leaf-sha256", "00" * 32)
        self.assertNotEqual(p.returncode, 0)

    def test_replaced_crl_file_revokes(self):
        v = self.dev1()
        self.assertEqual(v.decision, D.DECISION_ALLOW)
        tmp = os.path.join(self.srv.dir, "new.crl.tmp")
        sign_crl(self.srv, tmp, [v.serial_hex], next_number(2))
        t0 = time.time()
        os.rename(tmp, os.path.join(self.srv.dir, "device-issuing-ca.crl"))
        v2 = self.wait_denied()
        self.assertEqual((v2.decision, v2.reason), (D.DECISION_DENY, R.REASON_REVOKED), v2.detail)
        self.assertLess(time.time() - t0, 2.0)

    def test_crl_dropped_in_folder_revokes(self):
        # Move the configuration to a CRL folder, reload, then drop a file.
        crl_dir = os.path.join(self.srv.dir, "crls")
        os.mkdir(crl_dir)
        for name in ("tenant-ca.crl", "device-issuing-ca.crl", "device-root.crl"):
            os.rename(os.path.join(self.srv.dir, name), os.path.join(crl_dir, name))
        with open(self.srv.config) as f:
            text = f.read()
        text, n = re.subn(r"revocation:\n  crl_files: \[[^\]]*\]\n",
                          "revocation:\n  crl_dir: crls\n", text)
        self.assertEqual(n, 1)
        with open(self.srv.config + ".tmp", "w") as f:
            f.write(text)
        os.rename(self.srv.config + ".tmp", self.srv.config)
        deadline = time.time() + 5
        while time.time() < deadline and self.srv.logs().count("installed") < 2:
            time.sleep(0.05)
        v = self.dev1()
        self.assertEqual(v.decision, D.DECISION_ALLOW, v.detail)
        tmp = os.path.join(self.srv.dir, "drop.tmp")
        sign_crl(self.srv, tmp, [v.serial_hex], next_number(3))
        t0 = time.time()
        os.rename(tmp, os.path.join(crl_dir, "device-issuing-ca-300.crl"))
        v2 = self.wait_denied()
        self.assertEqual((v2.decision, v2.reason), (D.DECISION_DENY, R.REASON_REVOKED), v2.detail)
        self.assertLess(time.time() - t0, 2.0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
