"""Hot reload of a running certvald: under a running stream of calls no call
fails, verdicts switch at the reload, and a broken file is refused while the
old configuration keeps serving. Covers SIGHUP and a change of the file."""
import os
import re
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


def set_globex_skips(path, value):
    """Rewrites globex's device_certificate_skips_password in place."""
    with open(path) as f:
        text = f.read()
    new, n = re.subn(r"(- id: globex\n\s+device_certificate_skips_password: )(true|false)",
                     r"\g<1>" + ("true" if value else "false"), text)
    assert n == 1, "demo config layout changed: " + text
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.rename(tmp, path)  # atomic, like kubelet's symlink swap


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.srv = h.Server().start()

    def tearDown(self):
        self.srv.cleanup()

    def globex(self):
        v = self.srv.validate([self.srv.chain("device-globex-dev2-chain.pem", "globex",
                                              "dev-002")]).verdicts[0]
        return v.decision

    def wait_for(self, want, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.globex() == want:
                return True
            time.sleep(0.05)
        return False

    def run_stream(self, stop, seen, errors):
        def reqs():
            for i in range(1000000):  # bounded; ends when told to
                if stop.is_set():
                    return
                yield pb.ValidateRequest(chains=[self.srv.chain(
                    "device-globex-dev2-chain.pem", "globex", "dev-002", cid=i)])
        try:
            for r in self.srv.stream_call()(reqs(), timeout=60):
                seen.append(r.verdicts[0].decision)
        except grpc.RpcError as e:
            errors.append(e)

    def test_sighup_reload_under_stream(self):
        self.assertEqual(self.globex(), D.DECISION_REQUIRE_PASSWORD)
        stop, seen, errors = threading.Event(), [], []
        t = threading.Thread(target=self.run_stream, args=(stop, seen, errors))
        t.start()
        time.sleep(0.3)
        set_globex_skips(self.srv.config, True)
        self.srv.proc.send_signal(signal.SIGHUP)
        self.assertTrue(self.wait_for(D.DECISION_ALLOW), self.srv.logs())
        time.sleep(0.3)
        stop.set()
        t.join(30)
        self.assertEqual(errors, [])
        # Every answer is one of the two policies, and the switch happens once.
        self.assertTrue(set(seen) <= {D.DECISION_REQUIRE_PASSWORD, D.DECISION_ALLOW}, seen)
        first_allow = seen.index(D.DECISION_ALLOW)
        self.assertGreater(first_allow, 0)
        self.assertTrue(all(d == D.DECISION_ALLOW for d in seen[first_allow:]))
        self.assertEqual(self.srv.health(), health_pb2.HealthCheckResponse.SERVING)
        self.assertIn("SIGHUP: reloading", self.srv.logs())

    def test_file_change_reloads_without_signal(self):
        self.assertEqual(self.globex(), D.DECISION_REQUIRE_PASSWORD)
        set_globex_skips(self.srv.config, True)
        self.assertTrue(self.wait_for(D.DECISION_ALLOW), self.srv.logs())
        self.assertIn("files changed: reloading", self.srv.logs())

    def test_unchanged_reload_keeps_the_snapshot(self):
        # Same inputs: the version (and with it the verdict cache) is kept.
        self.assertEqual(self.globex(), D.DECISION_REQUIRE_PASSWORD)
        self.srv.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and "unchanged: version 1 kept" not in self.srv.logs():
            time.sleep(0.05)
        self.assertIn("unchanged: version 1 kept", self.srv.logs())
        self.assertNotIn("version 2 installed", self.srv.logs())
        self.assertEqual(self.globex(), D.DECISION_REQUIRE_PASSWORD)
        # A real change still makes a new version.
        set_globex_skips(self.srv.config, True)
        self.srv.proc.send_signal(signal.SIGHUP)
        self.assertTrue(self.wait_for(D.DECISION_ALLOW), self.srv.logs())
        self.assertIn("version 2 installed", self.srv.logs())

    def test_broken_config_is_refused_and_old_keeps_serving(self):
        with open(self.srv.config, "a") as f:
            f.write("threads:\n  workers: many\n")
        self.srv.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and "reload refused" not in self.srv.logs():
            time.sleep(0.05)
        self.assertIn("reload refused", self.srv.logs())
        self.assertRegex(self.srv.logs(), r"certval\.yaml:\d+")
        self.assertEqual(self.globex(), D.DECISION_REQUIRE_PASSWORD)
        self.assertEqual(self.srv.health(), health_pb2.HealthCheckResponse.SERVING)


if __name__ == "__main__":
    unittest.main(verbosity=2)
