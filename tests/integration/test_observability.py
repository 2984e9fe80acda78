"""Metrics and audit log of a running certvald: counters move as the verdicts
did, and every stdout line is JSON with audit lines for each DENY."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certval_harness as h  # noqa: E402

pb, _ = h.stubs()
D = pb.Decision


def total(metrics, name, **want):
    """Sum of samples of |name| whose labels include |want|."""
    return sum(v for (n, labels), v in metrics.items()
               if n == name and set(want.items()) <= set(labels))


class ObservabilityTest(h.SharedServerTest):
    SERVER_YAML = "metrics:\n  listen: \"127.0.0.1:0\"\naudit:\n  max_lines_per_second: 50\n"

    def test_counters_follow_verdicts(self):
        before = self.srv.scrape()
        chains = ([self.srv.chain("tenant-acme-chain.pem", "acme", cid=i) for i in range(3)] +
                  [self.srv.chain("device-acme-dev1-chain.pem", "acme", "dev-001", cid=10)] +
                  [self.srv.chain("tenant-acme-expired-chain.pem", "acme", cid=20 + i)
                   for i in range(2)])
        resp = self.srv.validate(chains)
        self.assertEqual([v.decision for v in resp.verdicts],
                         [D.DECISION_REQUIRE_PASSWORD] * 3 + [D.DECISION_ALLOW] +
                         [D.DECISION_DENY] * 2)
        after = self.srv.scrape()
        self.assertEqual(self.srv.assert_content_type, "text/plain; version=0.0.4")

        def delta(**labels):
            return (total(after, "certval_verdicts_total", **labels) -
                    total(before, "certval_verdicts_total", **labels))

        self.assertEqual(delta(decision="REQUIRE_PASSWORD", reason="OK", profile="tenant"), 3)
        self.assertEqual(delta(decision="ALLOW", reason="OK", profile="device"), 1)
        self.assertEqual(delta(decision="DENY", reason="EXPIRED"), 2)
        self.assertEqual(delta(), 6)
        self.assertEqual(total(after, "certval_batch_chains_count") -
                         total(before, "certval_batch_chains_count"), 1)
        self.assertEqual(total(after, "certval_batch_latency_seconds_count",
                               method="Validate") -
                         total(before, "certval_batch_latency_seconds_count",
                               method="Validate"), 1)
        self.assertEqual(total(after, "certval_up_serving"), 1)
        # Tenant certificate expiry, per tenant, from traffic.
        exp = [v for (n, labels), v in after.items()
               if n == "certval_tenant_certificate_expiry_timestamp_seconds" and
               ("tenant", "acme") in labels]
        self.assertEqual(len(exp), 1)
        self.assertGreater(exp[0], time.time() + 300 * 86400)
        anchors = [v for (n, _), v in after.items()
                   if n == "certval_trust_anchor_expiry_timestamp_seconds"]
        self.assertEqual(len(anchors), 2)
        # One CRL per demo CA, each with a nextUpdate in the future.
        nexts = {dict(labels)["issuer"]: v for (n, labels), v in after.items()
                 if n == "certval_crl_next_update_timestamp_seconds"}
        self.assertEqual(len(nexts), 3, nexts)
        self.assertTrue(all(v > time.time() for v in nexts.values()))
        entries = {dict(labels)["issuer"]: v for (n, labels), v in after.items()
                   if n == "certval_crl_entries"}
        self.assertEqual(sum(entries.values()), 2)  # one revoked tenant and one device cert

    def test_rpc_errors_are_counted(self):
        before = self.srv.scrape()
        chain = self.srv.chain("tenant-acme-chain.pem", "acme")
        with self.assertRaises(Exception):
            self.srv.validate([chain] * 1025)
        after = self.srv.scrape()
        self.assertEqual(total(after, "certval_rpc_errors_total", code="8") -
                         total(before, "certval_rpc_errors_total", code="8"), 1)

    def test_audit_lines(self):
        resp = self.srv.validate([self.srv.chain("rogue-client-chain.pem", "acme",
                                                 cid=99, user="mallory")])
        self.assertEqual(resp.verdicts[0].decision, D.DECISION_DENY)
        deadline = time.time() + 5
        while time.time() < deadline:
            audits = [l for l in self.srv.log_lines() if l.get("type") == "audit" and
                      l.get("user") == "mallory"]
            if audits:
                break
            time.sleep(0.05)
        self.assertEqual(len(audits), 1)
        a = audits[0]
        self.assertEqual(a["decision"], "DENY")
        self.assertEqual(a["reason"], "UNTRUSTED_ISSUER")
        self.assertEqual(a["tenant"], "acme")
        self.assertEqual(a["serial"], resp.verdicts[0].serial_hex)
        self.assertEqual(a["leaf_sha256"], resp.verdicts[0].leaf_sha256.hex())
        self.assertIn("Rogue", a["issuer"])
        self.assertNotIn("BEGIN CERTIFICATE", str(a))
        # An allowed verdict is not audited by default.
        self.srv.validate([self.srv.chain("tenant-acme-chain.pem", "acme", user="bob")])
        time.sleep(0.2)
        self.assertFalse([l for l in self.srv.log_lines() if l.get("user") == "bob"])

    def test_audit_is_rate_limited(self):
        chain = self.srv.chain("rogue-client-chain.pem", "acme", user="flood")
        before = total(self.srv.scrape(), "certval_audit_suppressed_total")
        self.srv.validate([chain] * 400)
        time.sleep(1.2)
        # A later DENY moves the window on and reports what was dropped.
        self.srv.validate([chain])
        time.sleep(0.2)
        lines = self.srv.log_lines()
        flood = [l for l in lines if l.get("type") == "audit" and l.get("user") == "flood"]
        per_second = {}
        for l in flood:
            per_second[l["ts"][:19]] = per_second.get(l["ts"][:19], 0) + 1
        self.assertTrue(flood)
        self.assertLessEqual(max(per_second.values()), 50, per_second)
        # Every DENY is either logged or counted as suppressed, exactly once.
        suppressed = total(self.srv.scrape(), "certval_audit_suppressed_total") - before
        self.assertEqual(len(flood) + suppressed, 401)
        self.assertGreater(suppressed, 0)
        reported = sum(l["suppressed"] for l in lines if l.get("type") == "audit_suppressed")
        self.assertEqual(reported, suppressed)


if __name__ == "__main__":
    unittest.main(verbosity=2)
