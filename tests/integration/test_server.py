"""Integration tests: the real certvald, driven by Python grpcio.

Run by ctest (tests/CMakeLists.txt) with /usr/bin/python3; needs a built
tree (CERTVAL_BUILD_DIR) and the repository (CERTVAL_SOURCE_DIR).
"""
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certval_harness as h  # noqa: E402

pb, health_pb2 = h.stubs()
import grpc  # noqa: E402

D = pb.Decision
R = pb.Reason


class ValidatorTest(h.SharedServerTest):

    def one(self, name, tenant, device=""):
        resp = self.srv.validate([self.srv.chain(name, tenant, device, cid=7)])
        self.assertEqual(len(resp.verdicts), 1)
        v = resp.verdicts[0]
        self.assertEqual(v.id, 7)
        return v

    def test_tenant_certificate_requires_password(self):
        v = self.one("tenant-acme-chain.pem", "acme")
        self.assertEqual((v.decision, v.reason), (D.DECISION_REQUIRE_PASSWORD, R.REASON_OK),
                         v.detail)
        self.assertEqual(v.kind, pb.CERTIFICATE_KIND_TENANT)
        self.assertEqual(len(v.leaf_sha256), 32)
        self.assertTrue(v.serial_hex)
        self.assertGreater(v.not_after_unix, time.time())
        self.assertEqual(v.profile, "tenant")

    def test_device_certificate_allows(self):
        v = self.one("device-acme-dev1-chain.pem", "acme", "dev-001")
        self.assertEqual((v.decision, v.reason), (D.DECISION_ALLOW, R.REASON_OK), v.detail)
        self.assertEqual(v.kind, pb.CERTIFICATE_KIND_DEVICE)

    def test_device_certificate_of_password_tenant(self):
        v = self.one("device-globex-dev2-chain.pem", "globex", "dev-002")
        self.assertEqual((v.decision, v.reason), (D.DECISION_REQUIRE_PASSWORD, R.REASON_OK),
                         v.detail)

    def test_expired(self):
        v = self.one("tenant-acme-expired-chain.pem", "acme")
        self.assertEqual((v.decision, v.reason), (D.DECISION_DENY, R.REASON_EXPIRED), v.detail)

    def test_untrusted(self):
        v = self.one("rogue-client-chain.pem", "acme")
        self.assertEqual((v.decision, v.reason), (D.DECISION_DENY, R.REASON_UNTRUSTED_ISSUER),
                         v.detail)

    def test_revoked(self):
        v = self.one("device-acme-revoked-chain.pem", "acme", "dev-003")
        self.assertEqual((v.decision, v.reason), (D.DECISION_DENY, R.REASON_REVOKED), v.detail)

    def test_wrong_tenant_and_device_mismatch(self):
        v = self.one("tenant-acme-chain.pem", "globex")
        self.assertEqual((v.decision, v.reason), (D.DECISION_DENY, R.REASON_WRONG_TENANT))
        v = self.one("device-acme-dev1-chain.pem", "acme", "dev-999")
        self.assertEqual((v.decision, v.reason), (D.DECISION_DENY, R.REASON_DEVICE_MISMATCH))

    def test_batch_with_one_malformed_item(self):
        chains = [self.srv.chain("tenant-acme-chain.pem", "acme", cid=1),
                  pb.ChainRequest(id=2, certificates=[b"\x30\x03\x02\x01"], tenant_id="acme"),
                  self.srv.chain("device-acme-dev1-chain.pem", "acme", "dev-001", cid=3),
                  pb.ChainRequest(id=4, certificates=[], tenant_id="acme")]
        resp = self.srv.validate(chains)
        got = [(v.id, v.decision, v.reason) for v in resp.verdicts]
        self.assertEqual(got, [(1, D.DECISION_REQUIRE_PASSWORD, R.REASON_OK),
                               (2, D.DECISION_DENY, R.REASON_MALFORMED),
                               (3, D.DECISION_ALLOW, R.REASON_OK),
                               (4, D.DECISION_DENY, R.REASON_MALFORMED)])

    def test_large_batch_is_answered_in_order(self):
        names = [("tenant-acme-chain.pem", "acme", "", D.DECISION_REQUIRE_PASSWORD),
                 ("device-acme-dev1-chain.pem", "acme", "dev-001", D.DECISION_ALLOW),
                 ("rogue-client-chain.pem", "acme", "", D.DECISION_DENY)]
        chains, want = [], []
        for i in range(300):  # above split_min_chains: split across workers
            n, t, d, dec = names[i % 3]
            chains.append(self.srv.chain(n, t, d, cid=1000 + i))
            want.append((1000 + i, dec))
        resp = self.srv.validate(chains)
        self.assertEqual([(v.id, v.decision) for v in resp.verdicts], want)

    def test_over_limit_batch(self):
        chain = self.srv.chain("tenant-acme-chain.pem", "acme")
        with self.assertRaises(grpc.RpcError) as cm:
            self.srv.validate([chain] * 1025)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("max_chains_per_batch", cm.exception.details())
        # The server keeps working.
        self.assertEqual(self.one("tenant-acme-chain.pem", "acme").decision,
                         D.DECISION_REQUIRE_PASSWORD)

    def test_too_many_certificates_in_a_chain(self):
        c = self.srv.chain("device-acme-dev1-chain.pem", "acme", "dev-001", cid=5)
        c.certificates.extend([c.certificates[-1]] * 20)
        resp = self.srv.validate([c])
        self.assertEqual(resp.verdicts[0].reason, R.REASON_MALFORMED)
        self.assertIn("max_certs_per_chain", resp.verdicts[0].detail)

    def test_garbage_request_gets_invalid_argument(self):
        call = self.srv.channel.unary_unary("/certval.v1.Validator/Validate")
        with self.assertRaises(grpc.RpcError) as cm:
            call(b"\xff\xff\xff\xff\x0f", timeout=5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_unknown_method_is_unimplemented(self):
        call = self.srv.channel.unary_unary("/certval.v1.Validator/Nope")
        with self.assertRaises(grpc.RpcError) as cm:
            call(b"", timeout=5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_stream(self):
        reqs = [pb.ValidateRequest(chains=[self.srv.chain("tenant-acme-chain.pem", "acme",
                                                          cid=i)]) for i in range(20)]
        out = list(self.srv.stream_call()(iter(reqs), timeout=20))
        self.assertEqual(len(out), 20)
        self.assertEqual([r.verdicts[0].id for r in out], list(range(20)))
        self.assertTrue(all(r.verdicts[0].decision == D.DECISION_REQUIRE_PASSWORD for r in out))

    def test_health(self):
        S = health_pb2.HealthCheckResponse
        self.assertEqual(self.srv.health(), S.SERVING)
        self.assertEqual(self.srv.health("certval.v1.Validator"), S.SERVING)
        with self.assertRaises(grpc.RpcError) as cm:
            self.srv.health("no.such.Service")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        it = self.srv.watch_health(timeout=10)
        self.assertEqual(next(it).status, S.SERVING)
        it.cancel()

    def test_no_openssl_loaded(self):
        with open("/proc/%d/maps" % self.srv.proc.pid) as f:
            maps = f.read()
        # BoringSSL's soname: Debian's package (android/) or the same source
        # rebuilt by deploy/boringssl-fast.sh (CERTVAL_BORINGSSL_DIR).
        self.assertIn("/libcrypto.so.0", maps)
        self.assertNotIn("libcrypto.so.3", maps)
        self.assertNotIn("libssl.so.3", maps)


class DrainTest(unittest.TestCase):
    def test_sigterm_during_streams_answers_every_call(self):
        srv = h.Server().start()
        try:
            S = health_pb2.HealthCheckResponse
            watch_it = srv.watch_health()
            self.assertEqual(next(watch_it).status, S.SERVING)

            sent, answered, errors = [0], [0], []
            stop = threading.Event()
            started = threading.Event()

            def requests():
                # Bounded: at most 100000 messages, ends when told to.
                for i in range(100000):
                    if stop.is_set():
                        return
                    sent[0] += 1
                    yield pb.ValidateRequest(chains=[srv.chain("tenant-acme-chain.pem", "acme",
                                                               cid=i)])
                    started.set()

            def run():
                try:
                    for r in srv.stream_call()(requests(), timeout=30):
                        self.assertEqual(r.verdicts[0].decision, D.DECISION_REQUIRE_PASSWORD)
                        answered[0] += 1
                except grpc.RpcError as e:  # the stream must end with OK, not an error
                    errors.append(e)

            unary_results = []

            def unary_loop():
                for i in range(200):
                    try:
                        r = srv.validate([srv.chain("tenant-acme-chain.pem", "acme", cid=i)])
                        unary_results.append(r.verdicts[0].decision)
                    except grpc.RpcError as e:
                        # After the drain starts new calls may be refused, never half-answered.
                        unary_results.append(e.code())
                        return

            t = threading.Thread(target=run)
            u = threading.Thread(target=unary_loop)
            t.start()
            self.assertTrue(started.wait(10))
            u.start()
            time.sleep(0.3)
            srv.proc.send_signal(signal.SIGTERM)
            # The watcher learns of the drain before the server goes away.
            statuses = []
            try:
                for m in watch_it:
                    statuses.append(m.status)
            except grpc.RpcError:
                pass
            self.assertIn(S.NOT_SERVING, statuses)
            rc = srv.proc.wait(timeout=srv.grace + 15)
            stop.set()
            t.join(20)
            u.join(20)
            self.assertEqual(rc, 0, srv.logs())
            # The stream ends with OK after its last answer, or, when the
            # server's connection goes away while the client is still
            # writing (seen under ASan on a loaded machine: "Broken pipe"),
            # with UNAVAILABLE, which clients retry. Never CANCELLED or
            # another status: either way the client knows exactly which
            # requests were answered and resends the rest to another replica.
            self.assertLessEqual(len(errors), 1)
            for e in errors:
                self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE,
                                 "stream ended with %s: %s" % (e.code(), e.details()))
            self.assertGreater(answered[0], 0)
            self.assertLessEqual(answered[0], sent[0])
            for r in unary_results:
                self.assertIn(r, (D.DECISION_REQUIRE_PASSWORD, grpc.StatusCode.UNAVAILABLE))
        finally:
            srv.cleanup()


class IdleDrainTest(unittest.TestCase):
    def test_idle_connections_do_not_hold_the_drain(self):
        # A client that keeps its connection open (as front ends do) must
        # not make every rollout wait out the whole grace period.
        srv = h.Server(grace=5).start()
        try:
            self.assertEqual(len(srv.validate([srv.chain("tenant-acme-chain.pem", "acme")])
                                 .verdicts), 1)
            t0 = time.time()
            rc = srv.stop()
            self.assertEqual(rc, 0)
            self.assertLess(time.time() - t0, 3.0, srv.logs())
            # The drain closed the idle connection itself.
            self.assertRegex(srv.logs(), r"drain: [1-9][0-9]* connections closed")
        finally:
            srv.cleanup()


class UnixSocketTest(unittest.TestCase):
    def test_serves_on_a_unix_socket(self):
        srv = h.Server()
        try:
            sock = os.path.join(srv.dir, "certval.sock")
            with open(srv.config) as f:
                text = f.read()
            text = text.replace("listen:\n", "listen:\n  unix: %s\n" % sock, 1)
            with open(srv.config, "w") as f:
                f.write(text)
            srv.start()
            ch = grpc.insecure_channel("unix:" + sock)
            call = ch.unary_unary("/certval.v1.Validator/Validate",
                                  request_serializer=pb.ValidateRequest.SerializeToString,
                                  response_deserializer=pb.ValidateResponse.FromString)
            resp = call(pb.ValidateRequest(chains=[srv.chain("tenant-acme-chain.pem", "acme")]),
                        timeout=10)
            self.assertEqual(resp.verdicts[0].decision, D.DECISION_REQUIRE_PASSWORD)
            ch.close()
        finally:
            srv.cleanup()


def _deny_io_uring():
    # Runs in the child before exec: what a container runtime's default
    # seccomp profile does to io_uring_setup.
    import errno
    import seccomp
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    f.add_rule(seccomp.ERRNO(errno.EPERM), "io_uring_setup")
    f.load()


class IoUringDeniedTest(unittest.TestCase):
    def test_exits_with_a_message_when_io_uring_is_blocked(self):
        import subprocess
        import tempfile
        d = tempfile.mkdtemp(prefix="certval-nouring-")
        subprocess.run([h.CERTVALCTL, "demo-pki", "--dir", d], check=True,
                       stdout=subprocess.DEVNULL)
        p = subprocess.run([h.CERTVALD, "--config", os.path.join(d, "certval.yaml"),
                            "--listen", "127.0.0.1:0"], capture_output=True, text=True,
                           timeout=30, preexec_fn=_deny_io_uring)
        self.assertNotEqual(p.returncode, 0)
        out = p.stdout + p.stderr
        self.assertIn("io_uring is not available", out)
        self.assertIn("seccomp", out)
        self.assertIn("docs/deployment.md", out)


class ConfigErrorTest(unittest.TestCase):
    def test_bad_config_is_refused_with_line(self):
        import subprocess
        import tempfile
        d = tempfile.mkdtemp(prefix="certval-badcfg-")
        path = os.path.join(d, "bad.yaml")
        with open(path, "w") as f:
            f.write("listen:\n  tcp: [\"127.0.0.1:0\"]\nthreads:\n  workers: lots\n")
        p = subprocess.run([h.CERTVALD, "--config", path], capture_output=True, text=True,
                           timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(path, p.stderr)
        self.assertRegex(p.stderr, r"bad\.yaml:4")


if __name__ == "__main__":
    unittest.main(verbosity=2)
