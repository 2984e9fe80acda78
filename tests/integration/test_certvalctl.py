"""certvalctl as operators and scripts use it: outputs and exit codes of
verify (with --ip, --email and --hostname), check-trust, inspect and
crl-sign, and the NIST PKITS revocation sections (4.4, 4.5, 4.14, 4.15) run
through `certvalctl verify --crl-check all`, the same validation core as
the server."""
import csv
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certval_harness as h  # noqa: E402

PKITS = os.environ.get("CERTVAL_PKITS_DIR") or os.path.join(h.SRC, "..", "shared", "testdata",
                                                              "pkits")
PKITS_TIME = "1302825600"  # 2011-04-15, as the PKITS harnesses use
# Rows whose outcome differs from the manifest, with the cause
# (docs/conformance.md). None today; kept so a regression can be listed.
PENDING = {}


def ctl(*args, timeout=30):
    return subprocess.run([h.CERTVALCTL] + list(args), capture_output=True, text=True,
                          timeout=timeout)


class DemoPki:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="certval-ctl-")
        subprocess.run([h.CERTVALCTL, "demo-pki", "--dir", self.dir], check=True,
                       stdout=subprocess.DEVNULL)

    def f(self, name):
        return os.path.join(self.dir, name)


class VerifyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = DemoPki()

    def verify(self, leaf, *extra):
        p = self.pki
        return ctl("verify", "--anchor", p.f("device-root.pem"), "--anchor", p.f("tenant-ca.pem"),
                   "--untrusted", p.f("device-issuing-ca.pem"), *extra, p.f(leaf))

    def test_valid_and_invalid(self):
        r = self.verify("device-acme-dev1.pem")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "OK"), r.stderr)
        r = self.verify("tenant-acme-expired.pem")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stdout.startswith("FAIL EXPIRED: "), r.stdout)
        r = self.verify("rogue-client.pem")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stdout.startswith("FAIL UNTRUSTED_ISSUER: "), r.stdout)

    def test_crl_check_and_at(self):
        p = self.pki
        crls = ["--crl", p.f("device-issuing-ca.crl"), "--crl", p.f("device-root.crl")]
        r = self.verify("device-acme-revoked.pem", "--crl-check", "all", *crls)
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stdout.startswith("FAIL REVOKED"), r.stdout)
        r = self.verify("device-acme-dev1.pem", "--crl-check", "all", *crls)
        self.assertEqual(r.returncode, 0, r.stdout)
        # Without the CRLs, a CRL check cannot be answered.
        r = self.verify("device-acme-dev1.pem", "--crl-check", "leaf")
        self.assertEqual(r.returncode, 1)
        self.assertIn("REVOCATION", r.stdout)
        # Ten years on, the device certificate (5 years) has expired.
        later = str(int(time.time()) + 10 * 365 * 86400)
        r = self.verify("device-acme-dev1.pem", "--at", later)
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stdout.startswith("FAIL EXPIRED"), r.stdout)

    def test_purpose(self):
        # Demo leaves carry EKU clientAuth only.
        r = self.verify("device-acme-dev1.pem", "--purpose", "server")
        self.assertEqual(r.returncode, 1)
        self.assertIn("KEY_USAGE", r.stdout)
        r = self.verify("device-acme-dev1.pem", "--purpose", "any")
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_usage_and_io_errors(self):
        self.assertEqual(ctl("verify").returncode, 2)
        self.assertEqual(ctl("verify", "--crl-check", "sometimes", self.pki.f("tenant-ca.pem"))
                         .returncode, 2)
        r = ctl("verify", "--anchor", "/nonexistent.pem", self.pki.f("tenant-acme.pem"))
        self.assertEqual(r.returncode, 2)
        r = ctl("verify", "--anchor", self.pki.f("tenant-ca.pem"), self.pki.f("malformed.der"))
        self.assertEqual(r.returncode, 2)
        self.assertEqual(ctl("no-such-command").returncode, 2)


class ExpectedNamesTest(unittest.TestCase):
    """verify --ip / --email / --hostname: the leaf's SAN must carry the
    expected name (RFC 6125: SAN only). The PKI is made by the openssl CLI,
    a separate process, so no OpenSSL is loaded into certvalctl."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="certval-ctl-names-")
        d = cls.dir

        def run(*args):
            subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=d)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-sha256"]
        run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
            "-subj", "/CN=names test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        run("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=10.9.9.9")
        with open(os.path.join(d, "leaf.ext"), "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
                    "subjectAltName=IP:192.0.2.7,IP:2001:db8::7,email:ops@example.com,"
                    "DNS:api.example.com\n")
        run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "20", "-sha256", "-extfile", "leaf.ext",
            "-out", "leaf.pem")

    def verify(self, *extra):
        return ctl("verify", "--anchor", os.path.join(self.dir, "ca.pem"), *extra,
                   os.path.join(self.dir, "leaf.pem"))

    def test_ip(self):
        for ip in ("192.0.2.7", "2001:db8::7", "2001:0db8:0:0::7"):
            r = self.verify("--ip", ip)
            self.assertEqual((r.returncode, r.stdout.strip()), (0, "OK"), (ip, r.stdout, r.stderr))
        # Not in the SAN; the subject CN holding it does not count.
        for ip in ("192.0.2.8", "10.9.9.9", "2001:db8::8"):
            r = self.verify("--ip", ip)
            self.assertEqual(r.returncode, 1, ip)
            self.assertTrue(r.stdout.startswith("FAIL NAME_MISMATCH"), (ip, r.stdout))
        r = self.verify("--ip", "not-an-address")
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("bad --ip", r.stderr)

    def test_email(self):
        r = self.verify("--email", "ops@example.com")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "OK"), r.stderr)
        for addr in ("dev@example.com", "ops@example.org"):
            r = self.verify("--email", addr)
            self.assertEqual(r.returncode, 1, addr)
            self.assertTrue(r.stdout.startswith("FAIL NAME_MISMATCH"), (addr, r.stdout))

    def test_with_hostname(self):
        r = self.verify("--purpose", "server", "--hostname", "API.example.com",
                        "--ip", "192.0.2.7", "--email", "ops@example.com")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "OK"), r.stderr)
        r = self.verify("--purpose", "server", "--hostname", "api.example.com",
                        "--ip", "192.0.2.9")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stdout.startswith("FAIL NAME_MISMATCH"), r.stdout)


class CheckTrustTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = DemoPki()

    def test_rotation_precheck(self):
        p = self.pki
        bundle = p.f("bundle.pem")
        with open(bundle, "w") as out:
            for name in ("tenant-ca.pem", "device-root.pem"):
                with open(p.f(name)) as f:
                    out.write(f.read())
        r = ctl("check-trust", "--bundle", bundle, p.f("device-acme-dev1-chain.pem"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(r.stdout.startswith("OK via "), r.stdout)
        self.assertIn("Demo Public Root CA", r.stdout)
        # A bundle without that root: the chain would break after the switch.
        r = ctl("check-trust", "--bundle", p.f("tenant-ca.pem"), p.f("device-acme-dev1-chain.pem"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNTRUSTED_ISSUER", r.stdout)
        # A future date past the leaf's expiry.
        later = str(int(time.time()) + 10 * 365 * 86400)
        r = ctl("check-trust", "--bundle", bundle, "--at", later,
                p.f("device-acme-dev1-chain.pem"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("EXPIRED", r.stdout)


class InspectTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = DemoPki()

    def inspect(self, tenant, leaf, device=None):
        args = ["inspect", "--config", self.pki.f("certval.yaml"), "--tenant", tenant]
        if device:
            args += ["--device", device]
        return ctl(*args, self.pki.f(leaf))

    def test_verdicts(self):
        cases = [("acme", "tenant-acme-chain.pem", None, 0, "REQUIRE_PASSWORD"),
                 ("acme", "device-acme-dev1-chain.pem", "dev-001", 0, "ALLOW"),
                 ("acme", "device-acme-dev1-chain.pem", "dev-999", 1, "DEVICE_MISMATCH"),
                 ("globex", "tenant-acme-chain.pem", None, 1, "WRONG_TENANT"),
                 ("acme", "tenant-acme-too-long-chain.pem", None, 1, "VALIDITY_TOO_LONG"),
                 ("acme", "device-acme-revoked-chain.pem", "dev-003", 1, "REVOKED")]
        for tenant, leaf, device, rc, word in cases:
            r = self.inspect(tenant, leaf, device)
            self.assertEqual(r.returncode, rc, (leaf, r.stdout, r.stderr))
            self.assertIn(word, r.stdout, (leaf, r.stdout))
        r = self.inspect("acme", "device-acme-dev1-chain.pem", "dev-001")
        self.assertIn("device", r.stdout)  # the profile


class CrlSignTest(unittest.TestCase):
    def test_sign_and_use(self):
        p = DemoPki()
        out = p.f("new.crl")
        r = ctl("crl-sign", "--ca", p.f("tenant-ca.pem"), "--key", p.f("tenant-ca.key"),
                "--number", "99", "--revoke", "abc123", "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.getsize(out) > 0)
        r = ctl("crl-sign", "--ca", p.f("tenant-ca.pem"), "--out", out)
        self.assertEqual(r.returncode, 2)


def pkits_rows(sections):
    with open(os.path.join(PKITS, "manifest.tsv"), newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if ".".join(row["id"].split(".")[:2]) in sections:
                yield row


class PkitsRevocationThroughCliTest(unittest.TestCase):
    """Sections 4.4, 4.5, 4.14, 4.15 via `certvalctl verify --crl-check all`."""

    def run_row(self, row):
        path = row["path"].split(",")
        args = ["verify", "--at", PKITS_TIME, "--crl-check", "all",
                "--anchor", os.path.join(PKITS, "certs", path[0])]
        others = path[1:-1] + ([] if row["other_certs"] == "-" else row["other_certs"].split(","))
        for c in others:
            args += ["--untrusted", os.path.join(PKITS, "certs", c)]
        for c in ([] if row["crls"] == "-" else row["crls"].split(",")):
            args += ["--crl", os.path.join(PKITS, "crls", c)]
        for oid in row["initial_policy_set"].split(","):
            if oid != "2.5.29.32.0":
                args += ["--policy", oid]
        if row["initial_explicit_policy"] == "1":
            args.append("--explicit-policy")
        if row["initial_policy_mapping_inhibit"] == "1":
            args.append("--inhibit-policy-mapping")
        if row["initial_inhibit_any_policy"] == "1":
            args.append("--inhibit-any-policy")
        args += ["--purpose", "any", os.path.join(PKITS, "certs", path[-1])]
        return ctl(*args)

    def test_sections(self):
        if not os.path.isdir(PKITS):
            self.fail("PKITS data not found at %s" % PKITS)
        rows = list(pkits_rows({"4.4", "4.5", "4.14", "4.15"}))
        self.assertGreater(len(rows), 60)
        wrong = []
        for row in rows:
            r = self.run_row(row)
            self.assertIn(r.returncode, (0, 1), (row["id"], r.stdout, r.stderr))
            got = "valid" if r.returncode == 0 else "invalid"
            if got != row["expected"] and row["id"] not in PENDING:
                wrong.append("%s %s: expected %s, got %s" % (row["id"], row["name"],
                                                             row["expected"], r.stdout.strip()))
            if row["id"] in PENDING:
                # A pending row that starts passing must leave the table.
                self.assertNotEqual(got, row["expected"], row["id"] + " passes now: unpend it")
        self.assertEqual(wrong, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
