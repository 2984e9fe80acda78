"""Smoke run of every loadtest scenario (loadtest/*.sh with SMOKE=1).

Each scenario generates tiny fixtures, starts the real certvald on
127.0.0.1, drives it with certval-load and runs the OpenSSL 3 baseline for
about a second. These tests check that the harness counts right and that
its JSON is complete and consistent; they never check speed (benchmarks are
run by hand, see docs/benchmarks.md).

Run by ctest as `/usr/bin/python3 FILE` with CERTVAL_BUILD_DIR and
CERTVAL_SOURCE_DIR set.
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

SRC = os.environ.get("CERTVAL_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("CERTVAL_BUILD_DIR") or os.path.join(SRC, "build")
LOADTEST = os.path.join(SRC, "loadtest")
TOOLS = [os.path.join(BUILD, "loadtest", t) for t in
         ("certval-load", "certval-fixtures", "certval-baseline-openssl")] + [
    os.path.join(BUILD, "server", "certvald"), os.path.join(BUILD, "server", "certvalctl")]

# The keys every report has, certval-load and the baseline alike.
REPORT_KEYS = {"tool", "mode", "api", "mix", "batch", "threads", "seconds", "calls", "chains",
               "throughput", "verdicts", "by_class", "mismatches", "unknown_ids",
               "latency_us", "errors", "errors_total"}
LATENCY_KEYS = {"count", "mean", "p50", "p90", "p99", "p99.9", "max"}
EXPECTED = {
    "tenant": ("REQUIRE_PASSWORD", "OK"),
    "device": ("ALLOW", "OK"),
    "revoked": ("DENY", "REVOKED"),
    "expired": ("DENY", "EXPIRED"),
    "untrusted": ("DENY", "UNTRUSTED_ISSUER"),
    "malformed": ("DENY", "MALFORMED"),
}


@unittest.skipUnless(all(os.access(t, os.X_OK) for t in TOOLS),
                     "loadtest tools or certvald not built")
class LoadtestSmoke(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="certval-loadtest-")
        cls.out = os.path.join(cls.tmp, "results")
        cls.env = dict(os.environ, SMOKE="1", LT_OUT=cls.out,
                       LT_FIXTURES=os.path.join(cls.tmp, "fixtures"),
                       CERTVAL_BUILD_DIR=BUILD)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_scenario(self, name):
        proc = subprocess.run(["/bin/bash", os.path.join(LOADTEST, name + ".sh")],
                              env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=120, text=True)
        self.assertEqual(proc.returncode, 0, "%s.sh failed:\n%s" % (name, proc.stdout[-4000:]))
        self.assertIn("RESULT scenario=", proc.stdout)
        return proc.stdout

    def load(self, name):
        with open(os.path.join(self.out, name)) as f:
            return json.load(f)

    def check_report(self, doc, classes, batch):
        """Counts add up, nothing failed, and every verdict fits its class."""
        self.assertTrue(REPORT_KEYS <= set(doc), REPORT_KEYS - set(doc))
        self.assertTrue(LATENCY_KEYS <= set(doc["latency_us"]))
        self.assertEqual(doc["batch"], batch)
        self.assertGreater(doc["calls"], 0)
        self.assertEqual(doc["chains"], doc["calls"] * batch)
        self.assertEqual(doc["errors_total"], 0, doc["errors"])
        self.assertEqual(doc["mismatches"], 0, doc["by_class"])
        self.assertEqual(doc["unknown_ids"], 0)
        self.assertEqual(doc["latency_us"]["count"], doc["calls"])
        lat = doc["latency_us"]
        self.assertTrue(0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"])
        self.assertEqual(set(doc["by_class"]), set(classes))
        received = 0
        for cls, stats in doc["by_class"].items():
            decision, reason = EXPECTED[cls]
            self.assertEqual(stats["expected"], "%s %s" % (decision, reason))
            self.assertEqual(stats["matched"], stats["received"], cls)
            self.assertGreater(doc["verdicts"][decision][reason], 0, cls)
            received += stats["received"]
        self.assertEqual(received, doc["chains"])
        by_verdict = sum(n for reasons in doc["verdicts"].values() for n in reasons.values())
        self.assertEqual(by_verdict, doc["chains"])
        secs = doc["seconds"]
        self.assertAlmostEqual(doc["throughput"]["chains_per_s"], doc["chains"] / secs,
                               delta=0.1 + doc["chains"] / secs * 1e-3)

    def check_pair(self, prefix, classes, batch=64):
        certval = self.load(prefix + ".certval.json")
        self.assertEqual(certval["tool"], "certval-load")
        self.check_report(certval, classes, batch)
        for t in (1, 2):
            base = self.load("%s.baseline%d.json" % (prefix, t))
            self.assertEqual(base["tool"], "certval-baseline-openssl")
            self.assertEqual(base["threads"], t)
            self.assertTrue(base["extra"]["openssl"].startswith("OpenSSL 3"))
            self.check_report(base, classes, batch)
        return certval

    def summary(self, name):
        return self.load(name + ".summary.json")

    def test_hot(self):
        self.run_scenario("hot")
        self.check_pair("hot", ["tenant", "device"])
        s = self.summary("hot")
        self.assertGreater(s["ratio_1t"], 0)
        self.assertGreater(s["ratio_2t"], 0)

    def test_cold(self):
        self.run_scenario("cold")
        for key in ("p256", "rsa2048"):
            self.check_pair("cold-" + key, ["device"])
            self.assertGreater(self.summary("cold-" + key)["ratio_1t"], 0)

    def test_bigcrl(self):
        self.run_scenario("bigcrl")
        classes = list(EXPECTED)
        for run in ("steady", "swap"):
            self.check_report(self.load("bigcrl.%s.json" % run), classes, 64)
        for t in (1, 2):
            self.check_report(self.load("bigcrl.baseline%d.json" % t), classes, 64)
        s = self.summary("bigcrl")
        self.assertGreaterEqual(s["swaps"], 1)
        self.assertEqual(s["pushes"], s["swaps"])
        self.assertGreater(s["push_max_s"], 0)
        self.assertGreater(s["baseline_crl_load_s"], 0)

    def test_latency(self):
        self.run_scenario("latency")
        doc = self.load("latency.certval.json")
        self.assertEqual(doc["mode"], "open")
        self.assertGreater(doc["rate"], 0)
        self.check_report(doc, ["tenant", "device"], 1)
        self.check_report(self.load("latency.max.json"), ["tenant", "device"], 1)
        self.check_report(self.load("latency.baseline1.json"), ["tenant", "device"], 1)
        self.assertGreater(self.summary("latency")["certval"], 0)

    def test_revocation(self):
        self.run_scenario("revocation")
        doc = self.load("revocation.certval.json")
        self.assertEqual(doc["errors_total"], 0, doc["errors"])
        self.assertEqual(doc["chains"], doc["calls"] * 64)
        # Valid before the change, REVOKED after it, nothing else.
        self.assertGreater(doc["verdicts"]["DENY"]["REVOKED"], 0)
        self.assertEqual(set(doc["verdicts"]), {"ALLOW", "DENY"})
        self.assertGreater(doc["extra"]["first_all_deny_unix"], 0)
        self.assertGreaterEqual(doc["extra"]["first_all_deny_unix"],
                                doc["extra"]["first_victim_deny_unix"])
        s = self.summary("revocation")
        self.assertIsInstance(s["certval"], float)  # "never" would be a string
        self.assertGreater(s["certval"], 0)
        self.assertGreater(s["baseline_denies"], 0)

    def test_ab(self):
        # ab.sh: two binaries (here the same one twice) alternated; one row
        # per side with throughput and certvald's CPU per chain and per call.
        certvald = os.path.join(BUILD, "server", "certvald")
        proc = subprocess.run(["/bin/bash", os.path.join(LOADTEST, "ab.sh"), certvald, certvald,
                               "1"], env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=120, text=True)
        self.assertEqual(proc.returncode, 0, proc.stdout[-4000:])
        self.assertIn("mean old: hot", proc.stdout)
        self.assertIn("mean new: hot", proc.stdout)
        with open(os.path.join(self.out, "ab.tsv")) as f:
            rows = [line.split("\t") for line in f.read().splitlines()]
        self.assertEqual([r[0] for r in rows], ["old", "new"])
        for r in rows:
            hot, cpu_chain, one, cpu_call = (float(x) for x in r[1:])
            self.assertGreater(hot, 0)
            self.assertGreater(one, 0)
            # certvald did work for what it answered: some CPU per chain, and
            # a single-chain call costs more of it than a chain of a batch.
            self.assertGreater(cpu_chain, 0)
            self.assertGreater(cpu_call, cpu_chain)

    @unittest.skipUnless(os.path.exists("/usr/sbin/nginx"), "nginx not installed")
    def test_overload(self):
        # Issue 9: the storm scenario, and its SIGTERM in the middle of an
        # open loop (certval-load does not wait for answers): exit within
        # the grace plus 1 s, and no call CANCELLED, only OK, UNAVAILABLE,
        # RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED (docs/api.md, Draining).
        self.run_scenario("overload")
        s = self.summary("overload")
        for dl in ("5ms", "50ms", "1s"):
            self.assertGreaterEqual(s["goodput_share_" + dl], 0)
            self.assertLessEqual(s["goodput_share_" + dl], s["answered_share_" + dl] + 1e-9)
        self.assertIsInstance(s["recovery_s"], float, s)
        self.assertLess(s["recovery_s"], 1.0)
        self.assertGreater(s["peak_rss_mib"], 0)
        self.assertLessEqual(s["sigterm_to_exit_s"], s["grace_s"] + 1.0)
        codes = self.load("overload.sigterm.json")["errors"]
        self.assertNotIn("CANCELLED", codes, codes)
        for code in codes:
            self.assertIn(code, ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"), codes)

    def test_handshake(self):
        # frontends (issue 12): nginx alone vs nginx + certval auth_request.
        self.run_scenario("handshake")
        s = self.summary("handshake")
        self.assertGreater(s["handshakes_alone"], 0)
        self.assertGreater(s["handshakes_certval"], 0)
        # One auth_request answered by certval per measured request.
        self.assertGreaterEqual(s["certval_answers"], s["handshakes_certval"])
        self.assertLessEqual(s["certval_answers"],
                             s["handshakes_certval"] + s["clients"] * s["rounds"])
        self.assertAlmostEqual(s["ratio"], s["nginx_certval"] / s["nginx_alone"], delta=0.01)


if __name__ == "__main__":
    unittest.main(verbosity=2)
