"""Fleet-wide revocation (issue 11, docs/fleet.md): a real etcd
(Debian's etcd-server, started here on 127.0.0.1 with a temporary data
folder) and three certvald pods A, B, C on one PKI. Pod C reaches etcd
through a TCP relay the test can cut, to partition it alone, and has
fleet.max_disconnected_seconds set (fail closed).

The steps run in order and share the fleet:
 1. a deny entry added through A is enforced by B and C within 1 s
    (the time is measured and printed);
 2. a CRL pushed through B reaches A and C;
 3. C killed, an entry added, C restarted: it denies it as soon as it
    reports SERVING;
 4. etcd stopped: every pod keeps denying, admin writes are UNAVAILABLE,
    a pod restarted meanwhile serves its local copy; etcd restarted: pods
    catch up;
 5. C partitioned: it fails closed after max_disconnected_seconds;
    meanwhile entries change and etcd is compacted past C's revision; C
    healed: it re-reads and agrees with the others;
 6. an entry with an expiry (etcd lease) disappears from every pod.
"""
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certval_harness as h  # noqa: E402

pb, _ = h.stubs()
import grpc  # noqa: E402
import importlib  # noqa: E402

admin_pb2 = importlib.import_module("certval.v1.admin_pb2")
D, R = pb.Decision, pb.Reason
TOKEN = "fleet-integration-token-0123456789"
ETCD = "/usr/bin/etcd"
ETCDCTL = "/usr/bin/etcdctl"
PREFIX = "/certval-it/"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Etcd:
    """One etcd member on ephemeral ports; restartable on the same data."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="certval-etcd-")
        self.client_port, self.peer_port = free_port(), free_port()
        self.endpoint = "127.0.0.1:%d" % self.client_port
        self.proc = None

    def start(self):
        client = "http://" + self.endpoint
        peer = "http://127.0.0.1:%d" % self.peer_port
        self.log = open(os.path.join(self.dir, "etcd.log"), "a")
        self.proc = subprocess.Popen(
            [ETCD, "--name", "it", "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", "it=" + peer],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.ctl("endpoint", "health", check=False).returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError("etcd did not start")

    def ctl(self, *args, check=True):
        return subprocess.run([ETCDCTL, "--endpoints", self.endpoint, "--dial-timeout", "2s",
                               "--command-timeout", "5s"] + list(args),
                              env=dict(os.environ, ETCDCTL_API="3"), capture_output=True,
                              text=True, check=check, timeout=20)

    def revision(self):
        import json
        out = self.ctl("endpoint", "status", "-w", "json").stdout
        return int(json.loads(out)[0]["Status"]["header"]["revision"])

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Relay:
    """A TCP relay to etcd that can be cut (every connection closed, new
    ones refused) and healed: a partition of one pod."""

    def __init__(self, target_port):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.cut = False
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.cut:
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def set_cut(self, cut):
        self.cut = cut
        if cut:
            with self.lock:
                for s in self.conns:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                        s.close()
                    except OSError:
                        pass
                self.conns = []

    def close(self):
        self.set_cut(True)
        self.sock.close()


class Pod(h.Server):
    """A certvald of the fleet, on a copy of the first pod's PKI."""

    def __init__(self, name, pki_dir, endpoint, extra=""):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="certval-fleet-%s-" % name)
        for f in os.listdir(pki_dir):
            src = os.path.join(pki_dir, f)
            if os.path.isfile(src):
                shutil.copy(src, self.dir)
        os.makedirs(os.path.join(self.dir, "state"), exist_ok=True)
        self.config = os.path.join(self.dir, "certval.yaml")
        with open(os.path.join(self.dir, "admin.token"), "w") as f:
            f.write(TOKEN + "\n")
        with open(self.config, "a") as f:
            f.write("admin:\n  listen: \"127.0.0.1:0\"\n  token_file: admin.token\n"
                    "metrics:\n  listen: \"127.0.0.1:0\"\n"
                    "fleet:\n  endpoints: [\"%s\"]\n  prefix: \"%s\"\n  timeout_ms: 1000\n"
                    "  start_timeout_ms: 2000\n  max_backoff_ms: 400\n%s"
                    % (endpoint, PREFIX, extra))
        self.grace = 2
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.dir, "certvald.log")
        self.metrics_port_file = os.path.join(self.dir, "metrics-port")
        self.admin_port_file = os.path.join(self.dir, "admin-port")

    def start(self):
        super().start()
        with open(self.admin_port_file) as f:
            self.admin_target = "127.0.0.1:%d" % int(f.read())
        if hasattr(self, "admin"):
            self.admin.close()
        self.admin = grpc.insecure_channel(self.admin_target)
        return self

    def admin_call(self, method, req, resp_cls, timeout=20):
        call = self.admin.unary_unary("/certval.v1.Admin/" + method,
                                      request_serializer=type(req).SerializeToString,
                                      response_deserializer=resp_cls.FromString)
        return call(req, metadata=[("authorization", "Bearer " + TOKEN)], timeout=timeout)

    def status(self):
        return self.admin_call("GetRevocationStatus", admin_pb2.GetRevocationStatusRequest(),
                               admin_pb2.GetRevocationStatusResponse)

    def verdict(self, chain, tenant, device=""):
        return self.validate([self.chain(chain, tenant, device)]).verdicts[0]

    def cleanup(self):
        if hasattr(self, "admin"):
            self.admin.close()
        super().cleanup()


def leaf_sha256(pod, name):
    with open(os.path.join(pod.dir, name), "rb") as f:
        return hashlib.sha256(f.read()).digest()


DEV1 = ("device-acme-dev1-chain.pem", "acme", "dev-001")
DEV2 = ("device-globex-dev2-chain.pem", "globex", "dev-002")
TENANT_ACME = ("tenant-acme-chain.pem", "acme", "")
TENANT_GLOBEX = ("tenant-globex-chain.pem", "globex", "")
TENANT_REISSUED = ("tenant-acme-reissued-chain.pem", "acme", "")


def wait_for(pred, timeout, step=0.005):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def denied(pod, chain):
    v = pod.verdict(*chain)
    return v.decision == D.DECISION_DENY and v.reason == R.REASON_REVOKED


def allowed(pod, chain):
    return pod.verdict(*chain).decision != D.DECISION_DENY


class FleetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        warnings.simplefilter("ignore", ResourceWarning)  # the relay's closed sockets
        if not os.access(ETCD, os.X_OK):
            raise unittest.SkipTest("etcd-server is not installed (apt-get install etcd-server)")
        cls.etcd = Etcd().start()
        cls.relay = Relay(cls.etcd.client_port)
        first = h.Server()  # makes the demo PKI the pods share
        cls.pki = first.dir
        first.proc = None
        cls.a = Pod("a", cls.pki, cls.etcd.endpoint).start()
        cls.b = Pod("b", cls.pki, cls.etcd.endpoint).start()
        cls.c = Pod("c", cls.pki, "127.0.0.1:%d" % cls.relay.port,
                    "  max_disconnected_seconds: 3\n").start()
        cls.pods = (cls.a, cls.b, cls.c)

    @classmethod
    def tearDownClass(cls):
        for p in cls.pods:
            if os.environ.get("CERTVAL_FLEET_KEEP"):
                print("kept", p.dir)
                p.stop()
                continue
            p.cleanup()
        cls.relay.close()
        cls.etcd.cleanup()
        shutil.rmtree(cls.pki, ignore_errors=True)

    def deny_leaf(self, pod, chain_pem_leaf, reason, expires=0, method="AddDenyEntry"):
        e = admin_pb2.DenyEntry(leaf_sha256=leaf_sha256(pod, chain_pem_leaf), reason=reason,
                                expires_unix=expires)
        return pod.admin_call(method, e, admin_pb2.DenyEntryResponse)

    def test_1_deny_through_a_reaches_b_and_c_within_a_second(self):
        for p in self.pods:
            self.assertTrue(allowed(p, DEV1), p.name)
            self.assertTrue(wait_for(lambda: p.status().fleet.connected, 5), p.name)
        t0 = time.monotonic()
        self.deny_leaf(self.a, "device-acme-dev1.der", "lost device")
        committed = time.monotonic() - t0
        self.assertTrue(denied(self.a, DEV1))  # the writer answers once applied
        times = {}
        for p in (self.b, self.c):
            self.assertTrue(wait_for(lambda: denied(p, DEV1), 1.0), p.name)
            times[p.name] = time.monotonic() - t0
        print("fleet: AddDenyEntry via A committed in %.1f ms; enforced by B after %.1f ms, "
              "C after %.1f ms (from the call)" % (committed * 1e3, times["b"] * 1e3,
                                                    times["c"] * 1e3), flush=True)
        for p in self.pods:
            st = p.status().fleet
            self.assertEqual(st.deny_entries, 1, p.name)
        revs = {p.status().fleet.applied_revision for p in self.pods}
        self.assertTrue(wait_for(lambda: len({p.status().fleet.applied_revision
                                              for p in self.pods}) == 1, 5), revs)
        # certvalctl asks every pod (a list here; a headless Service's name
        # in a cluster) and says whether they agree.
        out = subprocess.run([h.CERTVALCTL, "admin", "--server",
                              ",".join(p.admin_target for p in self.pods), "--token-file",
                              os.path.join(self.a.dir, "admin.token"), "fleet-status"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("fleet agrees: 3 pod(s)", out.stdout)
        self.assertEqual(out.stdout.count("FOLLOWING"), 3, out.stdout)
        m = self.b.scrape()
        self.assertEqual(m[("certval_fleet_connected", frozenset())], 1)
        self.assertEqual(m[("certval_fleet_deny_entries", frozenset())], 1)
        self.assertGreater(m[("certval_fleet_applied_revision", frozenset())], 0)

    def test_2_crl_pushed_through_b_reaches_a_and_c(self):
        v = self.a.verdict(*DEV2)
        self.assertEqual(v.decision, D.DECISION_REQUIRE_PASSWORD, v.detail)
        crl = os.path.join(self.b.dir, "fleet.crl")
        subprocess.run([h.CERTVALCTL, "crl-sign", "--ca",
                        os.path.join(self.b.dir, "device-issuing-ca.pem"), "--key",
                        os.path.join(self.b.dir, "device-issuing-ca.key"), "--number",
                        str(int(time.time()) + 5000), "--revoke", v.serial_hex, "--out", crl],
                       check=True, stdout=subprocess.DEVNULL)
        with open(crl, "rb") as f:
            resp = self.b.admin_call("PushCrl", admin_pb2.PushCrlRequest(crl=f.read()),
                                     admin_pb2.PushCrlResponse)
        self.assertIn("Device Issuing", resp.issuer)
        self.assertEqual(resp.entries, 1)
        for p in self.pods:
            self.assertTrue(wait_for(lambda: denied(p, DEV2), 5), p.name)
            self.assertTrue(wait_for(lambda: p.status().fleet.crls == 1, 2), p.name)
        # A CRL the configuration does not trust never reaches etcd.
        rogue = os.path.join(self.b.dir, "rogue.crl")
        subprocess.run([h.CERTVALCTL, "crl-sign", "--ca", os.path.join(self.b.dir, "rogue-ca.pem"),
                        "--key", os.path.join(self.b.dir, "rogue-ca.key"), "--number", "7",
                        "--out", rogue], check=True, stdout=subprocess.DEVNULL)
        with open(rogue, "rb") as f, self.assertRaises(grpc.RpcError) as cm:
            self.b.admin_call("PushCrl", admin_pb2.PushCrlRequest(crl=f.read()),
                              admin_pb2.PushCrlResponse)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.a.status().fleet.crls, 1)

    def test_3_a_restarted_pod_denies_what_it_missed_before_serving(self):
        self.c.stop(sig=signal.SIGKILL)
        self.deny_leaf(self.a, "tenant-acme.der", "stolen laptop")
        self.c.start()  # returns once health is SERVING
        self.assertTrue(denied(self.c, TENANT_ACME))
        self.assertTrue(denied(self.c, DEV1))
        self.assertTrue(denied(self.c, DEV2))
        st = self.c.status().fleet
        self.assertFalse(st.local_copy)
        self.assertEqual(st.deny_entries, 2)

    def test_4_etcd_down_pods_keep_denying_and_writes_fail(self):
        self.etcd.stop()
        for p in self.pods:
            self.assertTrue(wait_for(lambda: not p.status().fleet.connected, 10), p.name)
        out = subprocess.run([h.CERTVALCTL, "admin", "--server", self.a.admin_target,
                              "--token-file", os.path.join(self.a.dir, "admin.token"),
                              "fleet-status"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("CUT-OFF", out.stdout)
        for p in (self.a, self.b):  # (C fails closed after 3 s: step 5)
            for chain in (DEV1, DEV2, TENANT_ACME):
                self.assertTrue(denied(p, chain), (p.name, chain))
            self.assertTrue(allowed(p, TENANT_GLOBEX), p.name)
        t0 = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            self.deny_leaf(self.b, "tenant-globex.der", "nope")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertLess(time.monotonic() - t0, 5)
        with self.assertRaises(grpc.RpcError) as cm:
            self.deny_leaf(self.a, "device-acme-dev1.der", "", method="RemoveDenyEntry")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        for p in (self.a, self.b):
            self.assertTrue(allowed(p, TENANT_GLOBEX), p.name)  # nothing applied anywhere
            self.assertTrue(denied(p, DEV1), p.name)
        # A restart while etcd is down serves the local copy (flagged).
        self.b.stop()
        self.b.start()
        st = self.b.status().fleet
        self.assertTrue(st.local_copy, st)
        self.assertFalse(st.connected)
        for chain in (DEV1, DEV2, TENANT_ACME):
            self.assertTrue(denied(self.b, chain), chain)
        self.assertEqual(self.b.scrape()[("certval_fleet_local_copy", frozenset())], 1)
        # etcd back: pods reconnect and catch up with a change made then.
        self.etcd.start()
        self.assertTrue(wait_for(lambda: self._try_deny(self.a, "tenant-acme-reissued.der"), 20))
        for p in self.pods:
            self.assertTrue(wait_for(lambda: p.status().fleet.connected, 15), p.name)
            self.assertTrue(wait_for(lambda: denied(p, TENANT_REISSUED), 5), p.name)
        self.assertFalse(self.b.status().fleet.local_copy)

    def _try_deny(self, pod, der):
        try:
            self.deny_leaf(pod, der, "after the outage")
            return True
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            time.sleep(0.2)
            return False

    def test_5_partitioned_pod_fails_closed_then_rereads_after_compaction(self):
        rev_before = self.c.status().fleet.applied_revision
        self.relay.set_cut(True)
        self.assertTrue(wait_for(lambda: not self.c.status().fleet.connected, 10))
        # While C is cut off: one entry removed, one added, history compacted.
        self.deny_leaf(self.a, "device-acme-dev1.der", "", method="RemoveDenyEntry")
        self.deny_leaf(self.a, "device-globex-dev2.der", "lost too")
        self.etcd.ctl("compact", str(self.etcd.revision()))
        self.assertTrue(allowed(self.a, TENANT_GLOBEX))
        # Cut off for longer than max_disconnected_seconds: C fails closed.
        self.assertTrue(wait_for(
            lambda: self.c.verdict(*TENANT_GLOBEX).reason == R.REASON_REVOCATION_UNKNOWN, 8))
        self.relay.set_cut(False)
        self.assertTrue(wait_for(lambda: self.c.status().fleet.connected and
                                 self.c.status().fleet.rereads >= 1, 15), self.c.status().fleet)
        st = self.c.status().fleet
        self.assertGreater(st.applied_revision, rev_before)
        self.assertTrue(wait_for(lambda: allowed(self.c, TENANT_GLOBEX), 5))
        for p in self.pods:
            v = p.verdict(*DEV1)
            # dev1 is no longer on the deny list; its CRL status decides (ALLOW).
            self.assertEqual(v.decision, D.DECISION_ALLOW, (p.name, v.detail))
            self.assertTrue(denied(p, DEV2), p.name)
        counts = {p.name: p.status().fleet.deny_entries for p in self.pods}
        self.assertEqual(set(counts.values()), {3}, counts)

    def test_6_lease_expiry_removes_an_expiring_entry_everywhere(self):
        before = self.a.status().fleet.deny_entries
        self.deny_leaf(self.a, "tenant-globex.der", "temporary", expires=int(time.time()) + 3)
        for p in self.pods:
            self.assertTrue(wait_for(lambda: denied(p, TENANT_GLOBEX), 2), p.name)
        # The lease expires in etcd: the key is deleted and every pod drops it.
        for p in self.pods:
            self.assertTrue(wait_for(lambda: p.status().fleet.deny_entries == before, 15),
                            p.name)
            self.assertTrue(allowed(p, TENANT_GLOBEX), p.name)
        out = self.etcd.ctl("get", "--prefix", PREFIX + "s/deny/", "--keys-only").stdout
        self.assertEqual(len([k for k in out.split() if k]), before)


class FleetDeploy(unittest.TestCase):
    """deploy/k8s/components/fleet-etcd rendered over the base with
    `kubectl kustomize` (offline): etcd's StatefulSet and NetworkPolicy,
    certval's egress to it, and a certval.yaml that is the base file plus a
    fleet section certvald accepts."""

    @classmethod
    def setUpClass(cls):
        try:
            import yaml
        except ImportError:
            raise unittest.SkipTest("PyYAML is missing (apt-get install python3-yaml)")
        kubectl = shutil.which(os.environ.get("KUBECTL", "kubectl"))
        if not kubectl:
            raise unittest.SkipTest("kubectl is missing (apt-get install kubernetes-client)")
        k8s = os.path.join(h.SRC, "deploy", "k8s")
        cls.tmp = tempfile.mkdtemp(prefix="certval-kfleet-")
        rel = os.path.relpath(k8s, cls.tmp)
        with open(os.path.join(cls.tmp, "kustomization.yaml"), "w") as f:
            f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                    "resources:\n  - %s/base\ncomponents:\n  - %s/components/fleet-etcd\n"
                    % (rel, rel))
        out = subprocess.run([kubectl, "kustomize", cls.tmp], capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            raise AssertionError("kubectl kustomize failed:\n" + out.stderr)
        cls.docs = [d for d in yaml.safe_load_all(out.stdout) if d]
        with open(os.path.join(k8s, "base", "configmap.yaml")) as f:
            cls.base_cm = yaml.safe_load(f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def find(self, kind, name):
        found = [d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name]
        self.assertEqual(len(found), 1, (kind, name))
        return found[0]

    def test_etcd_statefulset_has_three_members(self):
        sts = self.find("StatefulSet", "certval-etcd")
        self.assertEqual(sts["spec"]["replicas"], 3)
        self.assertEqual(sts["spec"]["serviceName"], "certval-etcd")
        args = " ".join(sts["spec"]["template"]["spec"]["containers"][0]["args"])
        for i in range(3):
            self.assertIn("certval-etcd-%d=http://certval-etcd-%d.certval-etcd:2380" % (i, i), args)
        self.assertTrue(self.find("Service", "certval-etcd")["spec"]["publishNotReadyAddresses"])
        self.assertEqual(self.find("PodDisruptionBudget", "certval-etcd")["spec"]["minAvailable"], 2)

    def test_only_certval_reaches_etcd(self):
        np = self.find("NetworkPolicy", "certval-etcd")
        client = [r for r in np["spec"]["ingress"] if r["ports"][0]["port"] == 2379][0]
        sources = [f["podSelector"]["matchLabels"] for f in client["from"]]
        self.assertIn({"app.kubernetes.io/name": "certval",
                       "app.kubernetes.io/component": "validator"}, sources)
        for f in client["from"]:
            self.assertNotIn("namespaceSelector", f)  # this namespace only
        certval = self.find("NetworkPolicy", "certval")
        egress = [r for r in certval["spec"]["egress"]
                  if any(p["port"] == 2379 for p in r.get("ports", []))]
        self.assertEqual(len(egress), 1)
        self.assertEqual(egress[0]["to"][0]["podSelector"]["matchLabels"],
                         {"app.kubernetes.io/name": "certval-etcd"})

    def test_config_is_the_base_plus_a_fleet_section_certvald_accepts(self):
        import yaml
        text = self.find("ConfigMap", "certval-config")["data"]["certval.yaml"]
        base = self.base_cm["data"]["certval.yaml"]
        self.assertTrue(text.startswith(base), "config-patch.yaml drifted from the base file")
        cfg = yaml.safe_load(text)
        self.assertEqual(len(cfg["fleet"]["endpoints"]), 3)
        d = tempfile.mkdtemp(prefix="certval-kfleet-cfg-")
        try:
            subprocess.run([h.CERTVALCTL, "demo-pki", "--dir", d], check=True,
                           stdout=subprocess.DEVNULL)
            for sub in ("var/crls", "var/state", "admin"):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
            with open(os.path.join(d, "admin", "token"), "w") as f:
                f.write("a-test-token-of-32-characters-xx\n")
            text = text.replace("/etc/certval/admin/", d + "/admin/")
            text = text.replace("/etc/certval/anchors/", d + "/")
            text = text.replace("/var/lib/certval/", d + "/var/")
            path = os.path.join(d, "pod.yaml")
            with open(path, "w") as f:
                f.write(text)
            p = subprocess.run([h.CERTVALD, "--check-config", path], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


class FleetLoadtestSmoke(unittest.TestCase):
    """loadtest/fleet.sh with SMOKE=1: the scenario runs to its end and
    reports what it measured (counts only, never speed)."""

    def test_fleet_scenario_smoke(self):
        import json
        if not os.access(ETCD, os.X_OK):
            self.skipTest("etcd-server is not installed")
        out = tempfile.mkdtemp(prefix="certval-fleet-lt-out-")
        try:
            env = dict(os.environ, SMOKE="1", CERTVAL_BUILD_DIR=h.BUILD, LT_OUT=out,
                       LT_FIXTURES=os.path.join(out, "fixtures"))
            p = subprocess.run(["bash", os.path.join(h.SRC, "loadtest", "fleet.sh")], env=env,
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-3000:])
            self.assertIn("RESULT scenario=fleet", p.stdout)
            prop = json.load(open(os.path.join(out, "fleet.propagation.json")))
            self.assertEqual(prop["entries"], 20)
            self.assertEqual(len(prop["samples_ms"]), 20)
            self.assertTrue(all(x < 5000 for x in prop["samples_ms"]), prop["samples_ms"])
            big = json.load(open(os.path.join(out, "fleet.bigcrl.json")))
            self.assertEqual(big["entries"], 20000)
            for n in "abc":
                for phase in ("steady", "writes"):
                    r = json.load(open(os.path.join(out, "fleet.%s.%s.json" % (phase, n))))
                    self.assertGreater(r["latency_us"]["count"], 0, (phase, n))
        finally:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
