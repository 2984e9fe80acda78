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

# Before grpcio loads: its fork handlers can wait forever for its thread
# pool when subprocess forks while a channel is busy ("Waiting for thread
# pool to idle before forking"); these tests fork certvalctl often.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
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


METRICS_YAML = "metrics:\n  listen: \"127.0.0.1:0\"\n"


def leaf_sha256(srv, name="device-acme-dev1.pem"):
    return hashlib.sha256(h.read_pem_chain(os.path.join(srv.dir, name))[0]).digest()


def dev1(srv):
    return srv.validate([srv.chain("device-acme-dev1-chain.pem", "acme", "dev-001")]).verdicts[0]


class DurableDenyTest(unittest.TestCase):
    def tearDown(self):
        self.srv.cleanup()

    def status(self):
        return self.srv.admin_call("GetRevocationStatus", admin_pb2.GetRevocationStatusRequest(),
                                   admin_pb2.GetRevocationStatusResponse)

    def durable_metric(self):
        return self.srv.scrape()[("certval_deny_list_durable", frozenset())]

    def add_leaf(self, digest, reason="stolen"):
        return self.srv.admin_call("AddDenyEntry",
                                   admin_pb2.DenyEntry(leaf_sha256=digest, reason=reason),
                                   admin_pb2.DenyEntryResponse)

    def test_entry_survives_kill_9_in_a_fresh_state_folder(self):
        self.srv = AdminServer(METRICS_YAML, state_dir="state_dir: fresh/nested/state\n")
        state = os.path.join(self.srv.dir, "fresh", "nested", "state")
        self.assertFalse(os.path.exists(os.path.join(self.srv.dir, "fresh")))
        self.srv.start()
        # Created at start, before any change, owner and group only.
        self.assertTrue(os.path.isdir(state))
        self.assertEqual(stat.S_IMODE(os.stat(state).st_mode), 0o750)
        self.assertTrue(self.status().deny_list_durable)
        self.assertEqual(self.durable_metric(), 1)
        self.assertEqual(dev1(self.srv).decision, D.DECISION_ALLOW)
        self.assertEqual(self.add_leaf(leaf_sha256(self.srv)).entries, 1)
        self.assertEqual(dev1(self.srv).reason, R.REASON_REVOKED)
        # No clean shutdown: what the call answered OK for must be on disk.
        self.srv.stop(sig=signal.SIGKILL)
        self.srv.start()
        v = dev1(self.srv)
        self.assertEqual((v.decision, v.reason), (D.DECISION_DENY, R.REASON_REVOKED), v.detail)

    def test_unwritable_state_folder_refuses_and_changes_nothing(self):
        self.srv = AdminServer(METRICS_YAML).start()
        # A folder where the temporary file must go: every write fails,
        # even for root.
        blocker = os.path.join(self.srv.dir, "state", "deny-list.txt.tmp")
        os.mkdir(blocker)
        with self.assertRaises(grpc.RpcError) as cm:
            self.add_leaf(leaf_sha256(self.srv))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("could not be stored", cm.exception.details())
        self.assertEqual(dev1(self.srv).decision, D.DECISION_ALLOW)
        listing = self.srv.admin_call("ListDenyEntries", admin_pb2.ListDenyEntriesRequest(),
                                      admin_pb2.ListDenyEntriesResponse)
        self.assertEqual(len(listing.entries), 0)
        st = self.status()
        self.assertFalse(st.deny_list_durable)
        self.assertIn("deny-list.txt.tmp", st.deny_list_store_error)
        self.assertEqual(self.durable_metric(), 0)
        p = self.srv.ctl_admin("status")
        self.assertIn("deny list: NOT durable", p.stdout)
        # Fixed: the next change is stored and the list is durable again.
        os.rmdir(blocker)
        self.assertEqual(self.add_leaf(leaf_sha256(self.srv)).entries, 1)
        self.assertEqual(self.durable_metric(), 1)
        self.assertEqual(dev1(self.srv).reason, R.REASON_REVOKED)
        # A remove that cannot be stored leaves the entry in force.
        os.mkdir(blocker)
        with self.assertRaises(grpc.RpcError) as cm:
            self.srv.admin_call("RemoveDenyEntry",
                                admin_pb2.DenyEntry(leaf_sha256=leaf_sha256(self.srv)),
                                admin_pb2.DenyEntryResponse)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(dev1(self.srv).reason, R.REASON_REVOKED)

    def test_no_state_dir_refuses_deny_changes(self):
        self.srv = AdminServer(METRICS_YAML, state_dir="").start()
        with self.assertRaises(grpc.RpcError) as cm:
            self.add_leaf(leaf_sha256(self.srv))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("no state_dir", cm.exception.details())
        self.assertEqual(dev1(self.srv).decision, D.DECISION_ALLOW)
        st = self.status()
        self.assertFalse(st.deny_list_durable)
        self.assertIn("no state_dir", st.deny_list_store_error)
        self.assertEqual(self.durable_metric(), 0)

    def test_both_selectors_are_refused(self):
        self.srv = AdminServer().start()
        ca = h.read_pem_chain(os.path.join(self.srv.dir, "device-issuing-ca.pem"))[0]
        for method in ("AddDenyEntry", "RemoveDenyEntry"):
            with self.assertRaises(grpc.RpcError) as cm:
                self.srv.admin_call(method, admin_pb2.DenyEntry(
                    leaf_sha256=leaf_sha256(self.srv), issuer_certificate=ca, serial_hex="01"),
                    admin_pb2.DenyEntryResponse)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, method)
            self.assertIn("not both", cm.exception.details())
        self.assertEqual(dev1(self.srv).decision, D.DECISION_ALLOW)
        self.assertFalse(os.path.exists(os.path.join(self.srv.dir, "state", "deny-list.txt")))


class ClaimsTest(h.SharedServerTest):
    """Item 6: a claim that is not text is DENY MALFORMED, never shortened."""

    SERVER_YAML = "audit:\n  all_verdicts: true\n  max_lines_per_second: 100000\n"

    def raw_validate(self, wire):
        call = self.srv.channel.unary_unary("/certval.v1.Validator/Validate",
                                            request_serializer=lambda b: b,
                                            response_deserializer=pb.ValidateResponse.FromString)
        return call(wire, timeout=10)

    def dev1(self, tenant="acme", device="dev-001", user="alice", cid=0):
        return self.srv.chain("device-acme-dev1-chain.pem", tenant, device, cid=cid, user=user)

    def assert_malformed(self, v, claim, what):
        self.assertEqual((v.decision, v.reason), (D.DECISION_DENY, R.REASON_MALFORMED), v.detail)
        self.assertIn(claim, v.detail)
        self.assertIn(what, v.detail)

    def audit_for(self, user):
        return [e for e in self.srv.log_lines() if e.get("type") == "audit" and
                e.get("user") == user]

    def test_nul_in_a_claim_is_malformed(self):
        # Cached first: the verdict cache must not answer the shortened claim.
        self.assertEqual(self.srv.validate([self.dev1()]).verdicts[0].decision,
                         D.DECISION_ALLOW)
        self.assertEqual(self.srv.validate([self.dev1()]).verdicts[0].decision,
                         D.DECISION_ALLOW)
        cases = [(self.dev1(tenant="acme\0evil", user="nul-t"), "tenant_id"),
                 (self.dev1(device="dev-001\0x", user="nul-d"), "device_id"),
                 (self.dev1(user="nul-u\0"), "user_id"),
                 (self.srv.chain("tenant-acme-chain.pem", "acme\0evil", user="nul-tt"),
                  "tenant_id")]
        for chain, claim in cases:
            v = self.srv.validate([chain]).verdicts[0]
            self.assert_malformed(v, claim, "NUL byte")
        # Per chain: the clean chain of the same batch is unaffected.
        r = self.srv.validate([self.dev1(cid=1), self.dev1(tenant="acme\0", cid=2)])
        self.assertEqual([v.id for v in r.verdicts], [1, 2])
        self.assertEqual(r.verdicts[0].decision, D.DECISION_ALLOW)
        self.assert_malformed(r.verdicts[1], "tenant_id", "NUL byte")
        # The audit log records the claim that was sent, escaped.
        lines = self.audit_for("nul-t")
        self.assertTrue(lines)
        self.assertEqual(lines[-1]["tenant"], "acme\0evil")
        self.assertEqual(lines[-1]["reason"], "MALFORMED")

    def test_invalid_utf8_in_a_claim_is_malformed(self):
        marker = b"TTTTTT"
        for field, bad in (("tenant_id", b"acm\xff\xfee"),
                           ("device_id", b"d\xc3\x28-01"), ("user_id", b"\xed\xa0\x80bad")):
            kw = {"tenant": "acme", "device": "dev-001", "user": "utf8-" + field}
            kw[{"tenant_id": "tenant", "device_id": "device", "user_id": "user"}[field]] = \
                marker.decode()
            wire = pb.ValidateRequest(chains=[self.dev1(**kw)]).SerializeToString()
            self.assertEqual(wire.count(marker), 1)
            v = self.raw_validate(wire.replace(marker, bad)).verdicts[0]
            self.assert_malformed(v, field, "not valid UTF-8")
        # Text that is UTF-8 but not ASCII is fine.
        v = self.srv.validate([self.dev1(user="\u00e5lice \U0001f511")]).verdicts[0]
        self.assertEqual(v.decision, D.DECISION_ALLOW, v.detail)

    def test_audit_log_stays_valid_utf8_json(self):
        marker = b"UUUUUUUU"
        wire = pb.ValidateRequest(chains=[self.dev1(tenant="globex", user=marker.decode())]) \
            .SerializeToString()
        # Wrong tenant (a DENY, audited) with a user id of raw garbage.
        self.raw_validate(wire.replace(marker, b"\xff\x01\"\\\n\xe2\x82Z"))
        long_user = "L" * 5000
        self.srv.validate([self.dev1(tenant="globex", user=long_user)])
        with open(self.srv.log_path, "rb") as f:
            raw = f.read()
        raw.decode("utf-8")  # every byte of the log is UTF-8
        lines = self.srv.log_lines()  # and every line is JSON
        garbage = [e for e in lines if e.get("type") == "audit" and
                   e.get("user", "").startswith("\ufffd")]
        self.assertTrue(garbage)
        self.assertEqual(garbage[-1]["user"], "\ufffd\x01\"\\\n\ufffd\ufffdZ")
        capped = [e for e in lines if e.get("type") == "audit" and
                  e.get("user", "").startswith("LLL")]
        self.assertTrue(capped)
        self.assertEqual(capped[-1]["user"], "L" * 200 + "...")


def der_serial_hex(der):
    """The serialNumber content octets of a DER certificate, in hex."""
    def header(b, i):
        tag, n = b[i], b[i + 1]
        i += 2
        if n & 0x80:
            k = n & 0x7f
            n = int.from_bytes(b[i:i + k], "big")
            i += k
        return tag, i, n
    _, i, _ = header(der, 0)       # Certificate
    _, i, _ = header(der, i)       # TBSCertificate
    tag, j, n = header(der, i)
    if tag == 0xa0:                # [0] version
        i = j + n
    tag, j, n = header(der, i)     # serialNumber
    assert tag == 0x02
    return der[j:j + n].hex()


class SmallThingsTest(h.SharedServerTest):
    """Item 10: the corners of certvalctl and the demo that were seen."""

    def test_help_works_for_every_subcommand(self):
        top = ctl("--help")
        self.assertEqual(top.returncode, 0)
        names = [line.split()[0] for line in top.stdout.splitlines()
                 if line.startswith("  ") and line.split()]
        self.assertIn("health", names)
        self.assertGreaterEqual(len(names), 8)
        for name in names:
            p = ctl(name, "--help")
            self.assertEqual(p.returncode, 0, (name, p.stderr))
            self.assertIn("usage: certvalctl " + name, p.stdout, name)

    def test_raw_sends_bytes_that_are_not_a_certificate(self):
        f = os.path.join(self.srv.dir, "malformed.der")
        p = ctl("validate", "--server", self.srv.target, "--tenant", "acme", f)
        self.assertEqual(p.returncode, 2)  # without --raw, certvalctl refuses the file
        p = ctl("validate", "--server", self.srv.target, "--tenant", "acme", "--raw", f)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("MALFORMED", p.stdout)
        self.assertIn("not DER", p.stdout)
        # A real certificate sent raw still validates.
        p = ctl("validate", "--server", self.srv.target, "--tenant", "acme", "--device",
                "dev-001", "--raw", os.path.join(self.srv.dir, "device-acme-dev1.der"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_demo_readme_serials_are_the_ones_verdicts_print(self):
        # Serials are random: a leading zero nibble (the case that differed)
        # shows up in about one leaf in sixteen, so look at many.
        seen = 0
        for k in range(20):
            d = tempfile.mkdtemp(prefix="certval-demo-")
            try:
                subprocess.run([h.CERTVALCTL, "demo-pki", "--dir", d], check=True,
                               stdout=subprocess.DEVNULL)
                with open(os.path.join(d, "README.txt")) as f:
                    rows = [line.split() for line in f
                            if line.split() and line.split()[0].endswith("-chain.pem")]
                self.assertGreaterEqual(len(rows), 10)
                for row in rows:
                    leaf = row[0].replace("-chain.pem", ".der")
                    with open(os.path.join(d, leaf), "rb") as f:
                        self.assertEqual(row[3], der_serial_hex(f.read()), row)
                    seen += 1
            finally:
                subprocess.run(["rm", "-rf", d])
        # And the verdict of this server's demo says the same as its README.
        with open(os.path.join(self.srv.dir, "README.txt")) as f:
            row = [line.split() for line in f if line.startswith("device-acme-dev1-chain")][0]
        v = self.srv.validate([self.srv.chain("device-acme-dev1-chain.pem", "acme",
                                              "dev-001")]).verdicts[0]
        self.assertEqual(v.serial_hex, row[3])
        self.assertGreater(seen, 200)

    def test_expired_verdicts_carry_kind_and_profile(self):
        for chain, device, kind, profile in (
                ("tenant-acme-expired-chain.pem", "", K.CERTIFICATE_KIND_TENANT, "tenant"),
                ("device-acme-expired-chain.pem", "dev-004", K.CERTIFICATE_KIND_DEVICE,
                 "device")):
            v = self.srv.validate([self.srv.chain(chain, "acme", device)]).verdicts[0]
            self.assertEqual((v.decision, v.reason), (D.DECISION_DENY, R.REASON_EXPIRED), chain)
            self.assertEqual((v.kind, v.profile), (kind, profile), chain)
        # A leaf no profile's CA signed gets no label.
        v = self.srv.validate([self.srv.chain("rogue-client-chain.pem", "acme")]).verdicts[0]
        self.assertEqual((v.kind, v.profile), (K.CERTIFICATE_KIND_UNSPECIFIED, ""))


class CrlPushTest(unittest.TestCase):
    """Item 8: a pushed CRL can be refused, forced and withdrawn."""

    def setUp(self):
        self.srv = AdminServer().start()
        self.serial = dev1(self.srv).serial_hex
        self.base = int(time.time()) + 100000  # above the demo's clock-based numbers

    def tearDown(self):
        self.srv.cleanup()

    def sign(self, name, number, revoke=(), at=None, next_s=7 * 86400):
        out = os.path.join(self.srv.dir, name)
        cmd = ["crl-sign", "--ca", os.path.join(self.srv.dir, "device-issuing-ca.pem"), "--key",
               os.path.join(self.srv.dir, "device-issuing-ca.key"), "--number", str(number),
               "--out", out, "--next-update-seconds", str(next_s)]
        if at is not None:
            cmd += ["--at", str(at)]
        for r in revoke:
            cmd += ["--revoke", r]
        p = ctl(*cmd)
        self.assertEqual(p.returncode, 0, p.stderr)
        return out

    def push(self, path, force=False):
        with open(path, "rb") as f:
            return self.srv.admin_call("PushCrl", admin_pb2.PushCrlRequest(crl=f.read(),
                                                                           force=force),
                                       admin_pb2.PushCrlResponse)

    def device_ca_status(self):
        st = self.srv.admin_call("GetRevocationStatus", admin_pb2.GetRevocationStatusRequest(),
                                 admin_pb2.GetRevocationStatusResponse)
        return [i for i in st.issuers if "Device Issuing" in i.issuer][0]

    def wait_reason(self, reason, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline and dev1(self.srv).reason != reason:
            time.sleep(0.05)
        return dev1(self.srv).reason

    def test_expired_push_is_refused_unless_forced_and_can_be_withdrawn(self):
        now = int(time.time())
        expired = self.sign("expired.crl", self.base, at=now - 10 * 86400, next_s=86400)
        with self.assertRaises(grpc.RpcError) as cm:
            self.push(expired)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("nextUpdate", cm.exception.details())
        self.assertEqual(dev1(self.srv).decision, D.DECISION_ALLOW)
        # Forced through certvalctl: in force, and every device is STALE.
        p = self.srv.ctl_admin("push-crl", expired, "--force")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(dev1(self.srv).reason, R.REASON_REVOCATION_STALE)
        issuer = self.device_ca_status().issuer
        # In force as pushed: "admin-forced#N", or its state file once a
        # reload (the watcher sees the CRL file written in the folder) has
        # read it back from STATE/crls/forced-*.
        source = self.device_ca_status().source
        self.assertTrue(source.startswith("admin-forced") or "/crls/forced-" in source, source)
        # The way back: withdraw it, the configured file takes over again.
        p = self.srv.ctl_admin("withdraw-crl", issuer)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("1 CRL(s)", p.stdout)
        self.assertEqual(dev1(self.srv).decision, D.DECISION_ALLOW)
        self.assertTrue(self.device_ca_status().source.startswith("file:"))
        # Withdrawn for good: a restart does not bring it back.
        self.srv.stop()
        self.srv.start()
        self.assertEqual(dev1(self.srv).decision, D.DECISION_ALLOW)
        self.assertTrue(self.device_ca_status().source.startswith("file:"))
        # Nothing left to withdraw.
        with self.assertRaises(grpc.RpcError) as cm:
            self.srv.admin_call("WithdrawCrl", admin_pb2.WithdrawCrlRequest(issuer=issuer),
                                admin_pb2.WithdrawCrlResponse)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_an_older_crl_can_be_forced_over_a_newer_file_and_survives_restart(self):
        good = self.sign("good.crl", self.base + 1)
        # A newer but wrong CRL lands in the configured file: dev1 revoked.
        bad = self.sign("bad.crl", self.base + 2, revoke=[self.serial])
        os.replace(bad, os.path.join(self.srv.dir, "device-issuing-ca.crl"))
        self.assertEqual(self.wait_reason(R.REASON_REVOKED), R.REASON_REVOKED)
        with self.assertRaises(grpc.RpcError) as cm:
            self.push(good)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("older", cm.exception.details())
        self.assertEqual(self.push(good, force=True).crl_number, self.base + 1)
        self.assertEqual(dev1(self.srv).decision, D.DECISION_ALLOW)
        # A reload and a restart keep the operator's choice.
        self.srv.admin_call("Reload", admin_pb2.ReloadRequest(), admin_pb2.ReloadResponse)
        self.assertEqual(dev1(self.srv).decision, D.DECISION_ALLOW)
        self.srv.stop()
        self.srv.start()
        self.assertEqual(dev1(self.srv).decision, D.DECISION_ALLOW)
        self.assertEqual(self.device_ca_status().crl_number, self.base + 1)
        # Withdrawn: the file's (newer) CRL is back in force.
        self.srv.admin_call("WithdrawCrl",
                            admin_pb2.WithdrawCrlRequest(issuer=self.device_ca_status().issuer),
                            admin_pb2.WithdrawCrlResponse)
        self.assertEqual(self.device_ca_status().crl_number, self.base + 2,
                         (self.device_ca_status(), self.srv.logs()[-3000:]))
        self.assertEqual(dev1(self.srv).reason, R.REASON_REVOKED)


FIXTURES = os.path.join(h.BUILD, "loadtest", "certval-fixtures")


@unittest.skipUnless(os.path.exists(FIXTURES), "certval-fixtures not built")
class BigCrlVerifyTest(unittest.TestCase):
    """Item 9: certvalctl verify reads a CRL file as large as the server takes."""

    def test_verify_accepts_a_crl_over_16_mib(self):
        d = tempfile.mkdtemp(prefix="certval-bigcrl-")
        try:
            # 450,000 entries: about 18 MB, over the old 16 MiB file limit.
            subprocess.run([FIXTURES, "pki", "--dir", d, "--devices", "2", "--revoked", "1",
                            "--expired", "0", "--untrusted", "0", "--malformed", "0",
                            "--victims", "0", "--crl-entries", "450000", "--quiet"],
                           check=True, timeout=120)
            crl = os.path.join(d, "device-issuing-ca.crl")
            self.assertGreater(os.path.getsize(crl), 16 << 20)
            leaves = bundle_leaves(os.path.join(d, "chains.bundle"))
            args = ["verify", "--anchor", os.path.join(d, "device-root.pem"), "--untrusted",
                    os.path.join(d, "device-issuing-ca.pem"), "--crl", crl, "--crl",
                    os.path.join(d, "device-root.crl"), "--crl-check", "all"]
            for cls, want in ((1, "OK"), (2, "FAIL REVOKED")):
                leaf = os.path.join(d, "leaf%d.der" % cls)
                with open(leaf, "wb") as f:
                    f.write(leaves[cls])
                p = ctl(*args, leaf, timeout=120)
                self.assertTrue(p.stdout.startswith(want), (cls, p.stdout, p.stderr))
        finally:
            subprocess.run(["rm", "-rf", d])


def bundle_leaves(path):
    """The first leaf DER of each class of a certval-fixtures chains.bundle
    (layout in loadtest/lt_bundle.h)."""
    import struct
    with open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"CVBUNDL1"
    count = struct.unpack("<I", b[12:16])[0]
    off, out = 24, {}
    for _ in range(count):
        n = struct.unpack("<I", b[off:off + 4])[0]
        rec = b[off + 4:off + 4 + n]
        off += 4 + n
        p = 8 + rec[3] + rec[4]
        cl = struct.unpack("<I", rec[p:p + 4])[0]
        out.setdefault(rec[0], rec[p + 4:p + 4 + cl])
    return out


if __name__ == "__main__":
    unittest.main()
