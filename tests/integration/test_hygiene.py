"""Hostile input and operator safety (issue 9, items 6-10): claims with a NUL
byte or invalid UTF-8, an audit log that stays valid JSON, deny entries that
are on disk before the call answers OK, CRL pushes that can be forced or
withdrawn, and certvalctl's small corners (--raw, --help, serials)."""
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certval_harness as h  # noqa: E402

pb, _ = h.stubs()
import grpc  # noqa: E402
import importlib  # noqa: E402

admin_pb2 = importlib.import_module("certval.v1.admin_pb2")
D, R, K = pb.Decision, pb.Reason, pb.CertificateKind
TOKEN = "hygiene-test-token-0123456789abcdef"
ADMIN_YAML = "admin:\n  listen: \"127.0.0.1:0\"\n  token_file: admin.token\n"


def ctl(*args, timeout=60):
    return subprocess.run([h.CERTVALCTL] + list(args), capture_output=True, text=True,
                          timeout=timeout)


class AdminServer(h.Server):
    """A demo certvald with the admin API on."""

    def __init__(self, extra_yaml="", state_dir=None):
        super().__init__(extra_yaml)
        with open(os.path.join(self.dir, "admin.token"), "w") as f:
            f.write(TOKEN + "\n")
        with open(self.config) as f:
            cfg = f.read()
        if state_dir is not None:
            cfg = cfg.replace("state_dir: state\n", state_dir)
        with open(self.config, "w") as f:
            f.write(cfg + ADMIN_YAML)

    def start(self):
        super().start()
        with open(self.admin_port_file) as f:
            self.admin_target = "127.0.0.1:%d" % int(f.read())
        if hasattr(self, "admin"):
            self.admin.close()
        self.admin = grpc.insecure_channel(self.admin_target)
        return self

    def admin_call(self, method, req, resp_cls):
        call = self.admin.unary_unary("/certval.v1.Admin/" + method,
                                      request_serializer=type(req).SerializeToString,
                                      response_deserializer=resp_cls.FromString)
        return call(req, metadata=[("authorization", "Bearer " + TOKEN)], timeout=30)

    def ctl_admin(self, *args, token_file=None):
        return ctl("admin", "--server", self.admin_target, "--token-file",
                   token_file or os.path.join(self.dir, "admin.token"), *args)

    def cleanup(self):
        if hasattr(self, "admin"):
            self.admin.close()
        super().cleanup()


class CtlAdminTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = AdminServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def test_unreadable_token_file_is_a_clear_error(self):
        # Before the fix, certvalctl freed an uninitialised pointer here.
        missing = os.path.join(self.srv.dir, "no-such-token")
        for cmd in (["deny-add", "--leaf-sha256", "ab" * 32],
                    ["deny-remove", "--leaf-sha256", "ab" * 32], ["deny-list"], ["status"]):
            p = self.srv.ctl_admin(*cmd, token_file=missing)
            self.assertEqual(p.returncode, 2, (cmd, p.returncode, p.stderr))
            self.assertIn("cannot read a token from " + missing, p.stderr)


if __name__ == "__main__":
    unittest.main()
