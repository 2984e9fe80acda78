#!/usr/bin/python3
"""Checks the deployment files in deploy/ by inspection.

Renders deploy/k8s/base and deploy/k8s/overlays/example with
`kubectl kustomize` (offline, no cluster), parses the manifests and asserts
the requirements of docs/deployment.md; runs yamllint on deploy/; checks the
seccomp profile and, lightly, deploy/Dockerfile.

Run from the repository root or the build folder:
    /usr/bin/python3 tests/integration/test_deploy.py
Needs: kubectl (with its built-in kustomize), yamllint, PyYAML
(Debian: kubernetes-client or any kubectl >= 1.20, yamllint, python3-yaml).
A missing tool fails the tests with a message saying what to install; it is
never skipped. $KUBECTL and $YAMLLINT choose other binaries.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import unittest

try:
    import yaml
except ImportError:  # pragma: no cover - reported as a failure below
    yaml = None


def _source_dir():
    env = os.environ.get("CERTVAL_SOURCE_DIR")
    if env:
        return os.path.abspath(env)
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(os.path.join(here, "..", ".."))


SRC = _source_dir()
DEPLOY = os.path.join(SRC, "deploy")
BASE = os.path.join(DEPLOY, "k8s", "base")
OVERLAY = os.path.join(DEPLOY, "k8s", "overlays", "example")
SECCOMP = os.path.join(DEPLOY, "seccomp", "certval-io-uring.json")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
YAMLLINT_CONFIG = os.path.join(DEPLOY, ".yamllint")

APP_LABELS = {"app.kubernetes.io/name": "certval", "app.kubernetes.io/component": "validator"}
GRPC_PORT = 50051
ADMIN_PORT = 50052
METRICS_PORT = 9090
UID = 10001
DEFAULT_DRAIN_GRACE = 20  # certvald's default for shutdown.drain_grace_seconds
SECCOMP_PROFILE = "profiles/certval-io-uring.json"

BUILD_PACKAGES = {
    "build-essential", "cmake", "pkg-config", "libgrpc-dev", "protobuf-compiler-grpc",
    "libprotobuf-c-dev", "protobuf-c-compiler", "android-libboringssl-dev", "liburing-dev",
    "libcriterion-dev", "liburcu-dev", "libcyaml-dev", "libmicrohttpd-dev",
    "libhttp-parser-dev",
}
RUNTIME_PACKAGES = {
    "libgrpc29", "libprotobuf-c1", "android-libboringssl", "liburing2", "liburcu8",
    "libcyaml1", "libmicrohttpd12", "libhttp-parser2.9",
}

INSTALL_HINT = ("apt-get install kubernetes-client yamllint python3-yaml "
                "(or any kubectl >= 1.20 on PATH, or set $KUBECTL / $YAMLLINT)")


def _tool(env, name):
    path = shutil.which(os.environ.get(env, name))
    return path


def _render(directory):
    """Returns (docs, error): the rendered manifests, or an error message."""
    if yaml is None:
        return None, "PyYAML is missing: " + INSTALL_HINT
    kubectl = _tool("KUBECTL", "kubectl")
    if not kubectl:
        return None, "kubectl is missing (needed for `kubectl kustomize`): " + INSTALL_HINT
    proc = subprocess.run([kubectl, "kustomize", directory], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    if proc.returncode != 0:
        return None, "kubectl kustomize %s failed (exit %d):\n%s" % (
            directory, proc.returncode, proc.stderr)
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    if not docs:
        return None, "kubectl kustomize %s rendered nothing" % directory
    return docs, None


def _find(docs, kind, name=None):
    found = [d for d in docs if d.get("kind") == kind
             and (name is None or d["metadata"]["name"] == name)]
    return found


def _one(testcase, docs, kind):
    found = _find(docs, kind)
    testcase.assertEqual(len(found), 1, "expected exactly one %s, found %d" % (kind, len(found)))
    return found[0]


def _matches(selector_labels, labels):
    return all(labels.get(k) == v for k, v in selector_labels.items())


class _Manifests:
    """Checks that hold for the base and for every overlay."""

    DIR = None
    EXPECTED_MIN_REPLICAS = 3

    @classmethod
    def setUpClass(cls):
        cls.docs, cls.error = _render(cls.DIR)

    def setUp(self):
        if self.error:
            self.fail(self.error)

    # --- helpers ---------------------------------------------------------
    def deployment(self):
        return _one(self, self.docs, "Deployment")

    def pod(self):
        return self.deployment()["spec"]["template"]["spec"]

    def container(self):
        containers = self.pod()["containers"]
        self.assertEqual(len(containers), 1, "one container (certvald) expected")
        return containers[0]

    def config_yaml(self):
        cm = _find(self.docs, "ConfigMap", "certval-config")
        self.assertEqual(len(cm), 1, "ConfigMap certval-config missing")
        self.assertIn("certval.yaml", cm[0]["data"])
        cfg = yaml.safe_load(cm[0]["data"]["certval.yaml"])
        self.assertIsInstance(cfg, dict, "certval.yaml in the ConfigMap is not a mapping")
        return cfg

    def test_config_is_accepted_by_certvald(self):
        """The ConfigMap's certval.yaml is a file certvald accepts, once the
        pod's mounts are mapped onto a demo PKI (keeps the example true)."""
        build = os.environ.get("CERTVAL_BUILD_DIR")
        if not build:
            self.skipTest("CERTVAL_BUILD_DIR not set (ctest sets it)")
        import tempfile
        cm = _find(self.docs, "ConfigMap", "certval-config")[0]
        text = cm["data"]["certval.yaml"]
        with tempfile.TemporaryDirectory(prefix="certval-cm-") as d:
            subprocess.run([os.path.join(build, "server", "certvalctl"), "demo-pki", "--dir", d],
                           check=True, stdout=subprocess.DEVNULL)
            for sub in ("var/crls", "var/state"):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
            os.makedirs(os.path.join(d, "admin"))
            with open(os.path.join(d, "admin", "token"), "w") as f:
                f.write("a-test-token-of-32-characters-xx\n")
            text = text.replace("/etc/certval/admin/", d + "/admin/")
            text = text.replace("/etc/certval/anchors/", d + "/")
            text = text.replace("/var/lib/certval/", d + "/var/")
            path = os.path.join(d, "pod.yaml")
            with open(path, "w") as f:
                f.write(text)
            p = subprocess.run([os.path.join(build, "server", "certvald"), "--check-config", path],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def drain_grace(self):
        cfg = self.config_yaml()
        return int((cfg.get("shutdown") or {}).get("drain_grace_seconds", DEFAULT_DRAIN_GRACE))

    def prestop_seconds(self):
        pre = self.container().get("lifecycle", {}).get("preStop")
        self.assertIsNotNone(pre, "container has no preStop hook")
        if "sleep" in pre:  # native sleep action (Kubernetes >= 1.29)
            return int(pre["sleep"]["seconds"])
        cmd = pre.get("exec", {}).get("command")
        self.assertTrue(cmd, "preStop is neither a sleep action nor an exec command")
        if len(cmd) == 3 and cmd[0] in ("/bin/sh", "sh") and cmd[1] == "-c":
            cmd = shlex.split(cmd[2])
        self.assertIn(os.path.basename(cmd[0]), ("sleep",), "preStop exec must be a sleep: %r" % cmd)
        return int(cmd[1])

    def mounts(self):
        return {m["mountPath"]: m for m in self.container().get("volumeMounts", [])}

    def volumes(self):
        return {v["name"]: v for v in self.pod().get("volumes", [])}

    # --- Deployment ---------------------------------------------------------
    def test_deployment_replicas_and_selector(self):
        dep = self.deployment()
        self.assertEqual(dep["apiVersion"], "apps/v1")
        self.assertGreaterEqual(dep["spec"]["replicas"], 3)
        self.assertEqual(dep["spec"]["replicas"], self.EXPECTED_MIN_REPLICAS)
        sel = dep["spec"]["selector"]["matchLabels"]
        self.assertTrue(_matches(sel, dep["spec"]["template"]["metadata"]["labels"]))
        self.assertTrue(_matches(APP_LABELS, dep["spec"]["template"]["metadata"]["labels"]))
        ru = dep["spec"].get("strategy", {}).get("rollingUpdate", {})
        self.assertEqual(ru.get("maxUnavailable"), 0, "rolling updates must not drop capacity")

    def test_topology_spread(self):
        tsc = self.pod().get("topologySpreadConstraints", [])
        keys = {c["topologyKey"]: c for c in tsc}
        self.assertIn("kubernetes.io/hostname", keys)
        self.assertIn("topology.kubernetes.io/zone", keys)
        host = keys["kubernetes.io/hostname"]
        self.assertEqual(host["maxSkew"], 1)
        self.assertEqual(host["whenUnsatisfiable"], "DoNotSchedule")
        labels = self.deployment()["spec"]["template"]["metadata"]["labels"]
        for c in tsc:
            self.assertTrue(_matches(c["labelSelector"]["matchLabels"], labels),
                            "spread constraint %s does not select the pods" % c["topologyKey"])

    def test_resources(self):
        res = self.container()["resources"]
        self.assertEqual(str(res["requests"]["cpu"]), "2")
        self.assertEqual(res["requests"]["memory"], "512Mi")
        self.assertEqual(res["limits"]["memory"], "1Gi")

    def test_security_context(self):
        pod_sc = self.pod().get("securityContext", {})
        c_sc = self.container().get("securityContext", {})

        def effective(key):
            return c_sc.get(key, pod_sc.get(key))

        self.assertIs(effective("runAsNonRoot"), True)
        self.assertEqual(effective("runAsUser"), UID)
        self.assertIs(c_sc.get("readOnlyRootFilesystem"), True)
        self.assertIs(c_sc.get("allowPrivilegeEscalation"), False)
        self.assertNotEqual(c_sc.get("privileged"), True)
        self.assertEqual(c_sc.get("capabilities", {}).get("drop"), ["ALL"])
        self.assertFalse(c_sc.get("capabilities", {}).get("add"), "no capability may be added")
        seccomp = effective("seccompProfile")
        self.assertIsNotNone(seccomp, "no seccompProfile")
        self.assertEqual(seccomp["type"], "Localhost")
        self.assertEqual(seccomp["localhostProfile"], SECCOMP_PROFILE)
        self.assertIs(self.pod().get("automountServiceAccountToken"), False)

    def test_probes_are_native_grpc_on_health_port(self):
        c = self.container()
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(ports.get("grpc"), GRPC_PORT)
        self.assertEqual(ports.get("admin"), ADMIN_PORT)
        self.assertEqual(ports.get("metrics"), METRICS_PORT)
        for probe in ("livenessProbe", "readinessProbe"):
            self.assertIn(probe, c)
            self.assertIn("grpc", c[probe], "%s must be a native grpc probe" % probe)
            self.assertEqual(c[probe]["grpc"]["port"], GRPC_PORT,
                             "%s must hit the plaintext health port" % probe)
            for other in ("httpGet", "tcpSocket", "exec"):
                self.assertNotIn(other, c[probe])
        if "startupProbe" in c:
            self.assertEqual(c["startupProbe"]["grpc"]["port"], GRPC_PORT)

    def test_config_listens_on_probe_port(self):
        cfg = self.config_yaml()
        tcp = (cfg.get("listen") or {}).get("tcp") or []
        ports = {int(str(a).rsplit(":", 1)[1]) for a in tcp}
        self.assertIn(GRPC_PORT, ports, "certval.yaml must listen on %d (probes, Service)" % GRPC_PORT)

    def test_drain_arithmetic(self):
        prestop = self.prestop_seconds()
        drain = self.drain_grace()
        grace = self.pod()["terminationGracePeriodSeconds"]
        self.assertGreater(prestop, 0)
        self.assertGreater(grace, prestop + drain,
                           "terminationGracePeriodSeconds %d must exceed preStop %d + "
                           "drain_grace_seconds %d" % (grace, prestop, drain))

    def test_volumes_and_mounts(self):
        mounts = self.mounts()
        volumes = self.volumes()
        for path in ("/etc/certval", "/etc/certval/anchors", "/etc/certval/admin",
                     "/var/lib/certval/crls", "/var/lib/certval/state", "/tmp"):
            self.assertIn(path, mounts, "no volume mounted at %s" % path)
            self.assertIn(mounts[path]["name"], volumes, "mount %s names no volume" % path)
        for path in ("/etc/certval", "/etc/certval/anchors", "/etc/certval/admin"):
            self.assertIs(mounts[path].get("readOnly"), True, "%s must be read-only" % path)
        for path in ("/etc/certval", "/etc/certval/anchors", "/etc/certval/admin"):
            self.assertNotIn("subPath", mounts[path], "subPath mounts never see updates: %s" % path)
        cfg_vol = volumes[mounts["/etc/certval"]["name"]]
        self.assertEqual(cfg_vol["configMap"]["name"], "certval-config")
        anchors = volumes[mounts["/etc/certval/anchors"]["name"]]
        self.assertTrue("configMap" in anchors or "secret" in anchors)
        # Writable folders are volumes, since the root filesystem is read-only.
        for path in ("/var/lib/certval/crls", "/var/lib/certval/state", "/tmp"):
            self.assertNotEqual(mounts[path].get("readOnly"), True, "%s must be writable" % path)

    def test_admin_token_secret_mounted(self):
        mounts = self.mounts()
        vol = self.volumes()[mounts["/etc/certval/admin"]["name"]]
        self.assertIn("secret", vol, "/etc/certval/admin must be a Secret volume")
        name = vol["secret"]["secretName"]
        items = vol["secret"].get("items")
        if items:
            self.assertIn("token", [i["path"] for i in items])
        mode = vol["secret"].get("defaultMode", 0o644)
        self.assertEqual(mode & 0o007, 0, "token must not be world-readable (mode %o)" % mode)
        secret = _find(self.docs, "Secret", name)
        self.assertEqual(len(secret), 1, "Secret %s is not in the manifests" % name)
        data = secret[0].get("stringData") or secret[0].get("data") or {}
        self.assertIn("token", data)
        # The example must be visibly a placeholder, never something that
        # looks like a real token.
        if "stringData" in secret[0]:
            self.assertIn("PLACEHOLDER", secret[0]["stringData"]["token"])

    def test_config_paths_match_mounts(self):
        cfg = self.config_yaml()
        mounts = self.mounts()
        crl_dir = (cfg.get("revocation") or {}).get("crl_dir")
        if crl_dir:
            self.assertIn(crl_dir, mounts)
        if cfg.get("state_dir"):
            self.assertIn(cfg["state_dir"], mounts)
        anchors_cm = _find(self.docs, "ConfigMap", "certval-anchors")
        for f in (cfg.get("trust") or {}).get("anchor_files", []):
            self.assertTrue(f.startswith("/etc/certval/anchors/"), f)
            if anchors_cm:
                self.assertIn(os.path.basename(f), anchors_cm[0]["data"],
                              "anchor file %s is not a key of certval-anchors" % f)

    # --- Service --------------------------------------------------------------
    def test_headless_service(self):
        svc = _one(self, self.docs, "Service")
        self.assertEqual(svc["spec"].get("clusterIP"), "None",
                         "the Service must be headless: a ClusterIP balances connections, not calls")
        self.assertNotEqual(svc["spec"].get("publishNotReadyAddresses"), True)
        labels = self.deployment()["spec"]["template"]["metadata"]["labels"]
        self.assertTrue(_matches(svc["spec"]["selector"], labels))
        ports = {p["port"]: p for p in svc["spec"]["ports"]}
        self.assertIn(GRPC_PORT, ports)
        self.assertIn(ports[GRPC_PORT]["targetPort"], (GRPC_PORT, "grpc"))

    # --- HPA ------------------------------------------------------------------
    def test_hpa(self):
        hpa = _one(self, self.docs, "HorizontalPodAutoscaler")
        self.assertEqual(hpa["apiVersion"], "autoscaling/v2")
        ref = hpa["spec"]["scaleTargetRef"]
        self.assertEqual((ref["kind"], ref["name"]), ("Deployment", self.deployment()["metadata"]["name"]))
        self.assertGreaterEqual(hpa["spec"]["minReplicas"], 3)
        self.assertEqual(hpa["spec"]["minReplicas"], self.deployment()["spec"]["replicas"],
                         "Deployment replicas and HPA minReplicas must agree")
        self.assertGreater(hpa["spec"]["maxReplicas"], hpa["spec"]["minReplicas"])
        cpu = [m for m in hpa["spec"]["metrics"]
               if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
        self.assertEqual(len(cpu), 1, "HPA must scale on CPU")
        self.assertEqual(cpu[0]["resource"]["target"]["type"], "Utilization")
        self.assertEqual(cpu[0]["resource"]["target"]["averageUtilization"], 70)

    # --- PDB ------------------------------------------------------------------
    def test_pdb(self):
        pdb = _one(self, self.docs, "PodDisruptionBudget")
        self.assertEqual(pdb["apiVersion"], "policy/v1")
        spec = pdb["spec"]
        self.assertTrue(spec.get("maxUnavailable") == 1 or spec.get("minAvailable") == 2,
                        "PDB must be maxUnavailable 1 or minAvailable 2: %r" % spec)
        labels = self.deployment()["spec"]["template"]["metadata"]["labels"]
        self.assertTrue(_matches(spec["selector"]["matchLabels"], labels))

    # --- NetworkPolicy --------------------------------------------------------
    def _ingress_by_port(self, np):
        by_port = {}
        for rule in np["spec"].get("ingress", []):
            self.assertTrue(rule.get("from"), "an ingress rule without 'from' admits everyone")
            self.assertTrue(rule.get("ports"), "an ingress rule without 'ports' admits every port")
            for p in rule["ports"]:
                by_port.setdefault(p["port"], []).extend(rule["from"])
        return by_port

    def test_networkpolicy(self):
        np = _one(self, self.docs, "NetworkPolicy")
        labels = self.deployment()["spec"]["template"]["metadata"]["labels"]
        self.assertTrue(_matches(np["spec"]["podSelector"]["matchLabels"], labels))
        self.assertEqual(set(np["spec"]["policyTypes"]), {"Ingress", "Egress"})
        by_port = self._ingress_by_port(np)
        self.assertEqual(set(by_port), {GRPC_PORT, METRICS_PORT, ADMIN_PORT})

        for peer in by_port[GRPC_PORT]:
            self.assertNotIn("ipBlock", peer)
            self.assertEqual(peer["podSelector"]["matchLabels"],
                             {"app.kubernetes.io/component": "login-frontend"})
        for peer in by_port[METRICS_PORT]:
            self.assertEqual(peer["namespaceSelector"]["matchLabels"],
                             {"kubernetes.io/metadata.name": "monitoring"})
            self.assertEqual(peer["podSelector"]["matchLabels"], {"app.kubernetes.io/name": "prometheus"})
        for peer in by_port[ADMIN_PORT]:
            self.assertNotIn("namespaceSelector", peer, "admin port: same namespace only")
            self.assertNotIn("ipBlock", peer)
            self.assertEqual(peer["podSelector"]["matchLabels"], {"certval.example.com/role": "ops"})

        egress_ports = set()
        for rule in np["spec"].get("egress", []):
            self.assertTrue(rule.get("ports"), "an egress rule without 'ports' opens every port")
            for p in rule["ports"]:
                egress_ports.add((p["port"], p.get("protocol", "TCP")))
        self.assertEqual(egress_ports, {(53, "UDP"), (53, "TCP"), (80, "TCP")})

    def test_serviceaccount_without_token(self):
        sa = _find(self.docs, "ServiceAccount", self.pod().get("serviceAccountName", "default"))
        self.assertEqual(len(sa), 1)
        self.assertIs(sa[0].get("automountServiceAccountToken"), False)


class BaseManifests(_Manifests, unittest.TestCase):
    DIR = BASE


class ExampleOverlay(_Manifests, unittest.TestCase):
    DIR = OVERLAY
    EXPECTED_MIN_REPLICAS = 4

    def test_namespace_and_image(self):
        for d in self.docs:
            if d["kind"] == "Namespace":
                self.assertEqual(d["metadata"]["name"], "certval")
            else:
                self.assertEqual(d["metadata"].get("namespace"), "certval",
                                 "%s/%s has no namespace" % (d["kind"], d["metadata"]["name"]))
        image = self.container()["image"]
        self.assertEqual(image, "registry.example.com/certval/certvald:0.1.0")


class Yamllint(unittest.TestCase):
    def test_yamllint_deploy(self):
        yl = _tool("YAMLLINT", "yamllint")
        if not yl:
            self.fail("yamllint is missing: " + INSTALL_HINT)
        proc = subprocess.run([yl, "--strict", "-f", "parsable", "-c", YAMLLINT_CONFIG, DEPLOY],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=120, cwd=SRC)
        self.assertEqual(proc.returncode, 0, "yamllint found problems:\n" + proc.stdout)


class SeccompProfile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SECCOMP) as f:
            cls.profile = json.load(f)

    def allowed(self):
        names = set()
        for rule in self.profile["syscalls"]:
            if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args"):
                names.update(rule["names"])
        return names

    def test_default_deny(self):
        self.assertEqual(self.profile["defaultAction"], "SCMP_ACT_ERRNO")
        self.assertIn("SCMP_ARCH_X86_64", self.profile["architectures"])

    def test_io_uring_allowed(self):
        allowed = self.allowed()
        for name in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
            self.assertTrue(name in allowed, "%s is not allowed by the profile" % name)

    def test_basics_allowed(self):
        # What certvald, gRPC, liburcu and the preStop sleep need at least.
        for name in ("read", "write", "openat", "close", "mmap", "munmap", "mprotect", "futex",
                     "epoll_wait", "epoll_pwait", "epoll_ctl", "eventfd2", "accept4", "bind", "listen",
                     "setsockopt", "getrandom", "membarrier", "rt_sigaction", "rt_sigprocmask",
                     "clock_gettime", "nanosleep", "clock_nanosleep", "execve", "exit_group",
                     "sched_getaffinity", "timerfd_create", "inotify_add_watch", "rseq"):
            self.assertTrue(name in self.allowed(), "%s is not allowed by the profile" % name)
        conditional = {n for r in self.profile["syscalls"] if r.get("args") for n in r["names"]}
        self.assertIn("clone", conditional)
        self.assertIn("socket", conditional)

    def test_no_dangerous_syscalls(self):
        for name in ("mount", "umount2", "unshare", "setns", "bpf", "ptrace", "kexec_load",
                     "init_module", "finit_module", "reboot", "perf_event_open", "keyctl",
                     "add_key", "userfaultfd", "pivot_root", "chroot"):
            self.assertFalse(name in self.allowed(), "%s must not be allowed" % name)

    def test_runtime_spec_shape(self):
        # containerd reads Localhost profiles as the OCI runtime-spec's
        # LinuxSeccomp: Docker-only keys (includes/excludes/archMap) would be
        # silently ignored and change the meaning of a rule.
        self.assertNotIn("archMap", self.profile)
        for rule in self.profile["syscalls"]:
            self.assertNotIn("includes", rule)
            self.assertNotIn("excludes", rule)


URING_PROBE_C = r"""
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
static void *thread_main(void *arg) { (void)arg; return NULL; }
int main(void) {
    struct io_uring ring;
    struct io_uring_cqe *cqe;
    pthread_t th;
    int fds[1] = {0};
    int rc = io_uring_queue_init(8, &ring, 0);
    if (rc < 0) { fprintf(stderr, "io_uring_setup: %s\n", strerror(-rc)); return 1; }
    io_uring_prep_nop(io_uring_get_sqe(&ring));
    io_uring_submit(&ring);
    rc = io_uring_wait_cqe(&ring, &cqe);
    if (rc < 0) { fprintf(stderr, "io_uring_enter: %s\n", strerror(-rc)); return 1; }
    io_uring_cqe_seen(&ring, cqe);
    rc = io_uring_register_files(&ring, fds, 1);
    if (rc < 0) { fprintf(stderr, "io_uring_register: %s\n", strerror(-rc)); return 1; }
    if (pthread_create(&th, NULL, thread_main, NULL) != 0) { fputs("pthread_create failed\n", stderr); return 1; }
    pthread_join(th, NULL);
    io_uring_queue_exit(&ring);
    puts("io_uring ok");
    return 0;
}
"""


def _seccomp_exec(argv):
    """--seccomp-exec PROFILE [--drop-io-uring] CMD...: loads PROFILE into
    this process with libseccomp (as runc would) and execs CMD."""
    import seccomp  # python3-seccomp
    profile_path, rest = argv[0], argv[1:]
    drop = rest and rest[0] == "--drop-io-uring"
    if drop:
        rest = rest[1:]
    with open(profile_path) as f:
        prof = json.load(f)
    filt = seccomp.SyscallFilter(defaction=seccomp.ERRNO(prof.get("defaultErrnoRet", 1)))
    ops = {"SCMP_CMP_NE": seccomp.NE, "SCMP_CMP_EQ": seccomp.EQ, "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ}
    for rule in prof["syscalls"]:
        if rule["action"] == "SCMP_ACT_ALLOW":
            action = seccomp.ALLOW
        else:
            action = seccomp.ERRNO(rule.get("errnoRet", 1))
        args = []
        for a in rule.get("args", []):
            if a["op"] == "SCMP_CMP_MASKED_EQ":
                args.append(seccomp.Arg(a["index"], seccomp.MASKED_EQ, a["value"], a.get("valueTwo", 0)))
            else:
                args.append(seccomp.Arg(a["index"], ops[a["op"]], a["value"]))
        for name in rule["names"]:
            if drop and name.startswith("io_uring_"):
                continue
            try:
                filt.add_rule(action, name, *args)
            except (RuntimeError, ValueError, OSError):
                pass  # not a syscall on this architecture: runc skips it too
    filt.load()
    os.execv(rest[0], rest)


class SeccompEnforced(unittest.TestCase):
    """Loads the profile with libseccomp in a child process and runs a small
    io_uring program under it (needs python3-seccomp, cc and liburing-dev;
    skipped without them)."""

    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.tmp = tempfile.TemporaryDirectory()
        cls.probe = None
        cls.why = None
        try:
            import seccomp  # noqa: F401
        except ImportError:
            cls.why = "python3-seccomp is not installed"
            return
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            cls.why = "no C compiler"
            return
        src = os.path.join(cls.tmp.name, "uring_probe.c")
        with open(src, "w") as f:
            f.write(URING_PROBE_C)
        exe = os.path.join(cls.tmp.name, "uring_probe")
        proc = subprocess.run([cc, "-O1", "-o", exe, src, "-luring", "-lpthread"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        if proc.returncode != 0:
            cls.why = "cannot build the io_uring probe (liburing-dev?): " + proc.stdout
            return
        plain = subprocess.run([exe], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if plain.returncode != 0:
            cls.why = "io_uring does not work on this machine even without the profile"
            return
        cls.probe = exe

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_under_profile(self, *cmd):
        return subprocess.run([sys.executable, os.path.abspath(__file__), "--seccomp-exec", SECCOMP] + list(cmd),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=60)

    def setUp(self):
        if not self.probe:
            self.skipTest(self.why)

    def test_io_uring_and_threads_work_under_profile(self):
        proc = self.run_under_profile(self.probe)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertIn("io_uring ok", proc.stdout)

    def test_io_uring_denied_without_its_rules(self):
        # The same profile without the three io_uring rules must fail: proves
        # the filter is really applied and that the rules are what allows it.
        proc = self.run_under_profile("--drop-io-uring", self.probe)
        self.assertNotEqual(proc.returncode, 0, proc.stdout)
        self.assertIn("io_uring_setup", proc.stdout)

    def test_prestop_sleep_runs_under_profile(self):
        proc = self.run_under_profile("/bin/sleep", "0")
        self.assertEqual(proc.returncode, 0, proc.stdout)

    def test_namespaces_denied(self):
        unshare = shutil.which("unshare")
        if not unshare:
            self.skipTest("no unshare(1)")
        proc = self.run_under_profile(unshare, "-U", "true")
        self.assertNotEqual(proc.returncode, 0, proc.stdout)


def _dockerfile_stages():
    """Returns [(name, [(instruction, args)])], continuation lines joined."""
    with open(DOCKERFILE) as f:
        text = f.read()
    lines, cur = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        lines.append(cur)
        cur = ""
    stages = []
    for line in lines:
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.search(r"\bAS\s+(\S+)", args, re.I)
            stages.append((m.group(1) if m else str(len(stages)), [("FROM", args)]))
        elif stages:
            stages[-1][1].append((instr, args.strip()))
        else:
            stages.append(("<global>", [(instr, args.strip())]))
    return [s for s in stages if s[0] != "<global>"]


PACKAGE_LIST = os.path.join(DEPLOY, "packages-build.txt")


def _package_list():
    with open(PACKAGE_LIST) as f:
        return {l.strip() for l in f if l.strip() and not l.strip().startswith("#")}


def _apt_packages(instrs):
    """Packages installed by apt-get in these instructions; a
    $(... packages-build.txt) substitution stands for that file's list."""
    pkgs = set()
    for instr, args in instrs:
        if instr != "RUN":
            continue
        for m in re.finditer(r"apt-get\s+install\s+((?:\$\([^)]*\)|[^&;|])*)", args):
            words = m.group(1)
            if re.search(r"\$\([^)]*packages-build\.txt[^)]*\)", words):
                pkgs |= _package_list()
                words = re.sub(r"\$\([^)]*\)", " ", words)
            pkgs.update(w for w in words.split() if not w.startswith("-"))
    return pkgs


class Dockerfile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stages = _dockerfile_stages()

    def test_multi_stage_on_debian12(self):
        self.assertGreaterEqual(len(self.stages), 2, "build and runtime stages expected")
        with open(DOCKERFILE) as f:
            self.assertRegex(f.read(), r"(?m)^ARG DEBIAN_IMAGE=debian:12\s*$")
        for name, instrs in self.stages:
            self.assertIn(instrs[0][1].split()[0], ("debian:12", "${DEBIAN_IMAGE}"),
                          "stage %s is not based on Debian 12" % name)

    def test_build_stage(self):
        name, instrs = self.stages[0]
        installed = _apt_packages(instrs)
        missing = BUILD_PACKAGES - installed
        self.assertFalse(missing, "build stage lacks build dependencies: %s" % sorted(missing))
        runs = " ".join(a for i, a in instrs if i == "RUN")
        self.assertIn("cmake --build", runs)
        self.assertIn("ctest", runs)

    def test_runtime_stage(self):
        name, instrs = self.stages[-1]
        self.assertEqual(_apt_packages(instrs), RUNTIME_PACKAGES,
                         "runtime stage must install only the runtime libraries")
        users = [a for i, a in instrs if i == "USER"]
        self.assertTrue(users, "runtime stage has no USER")
        user = users[-1].split(":")[0]
        self.assertTrue(user.isdigit(), "USER must be numeric for runAsNonRoot: %s" % users[-1])
        self.assertEqual(int(user), UID)
        entry = [a for i, a in instrs if i == "ENTRYPOINT"]
        self.assertTrue(entry, "runtime stage has no ENTRYPOINT")
        argv = json.loads(entry[-1])
        self.assertEqual(os.path.basename(argv[0]), "certvald")
        self.assertEqual(argv[1:], ["--config", "/etc/certval/certval.yaml"])
        exposed = set()
        for i, a in instrs:
            if i == "EXPOSE":
                exposed.update(int(p.split("/")[0]) for p in a.split())
        self.assertEqual(exposed, {GRPC_PORT, ADMIN_PORT, METRICS_PORT})

    def test_runtime_stage_leaves_no_apt_cache(self):
        # A debootstrapped base has no docker-clean apt setting: the stage
        # must clean up itself (85 MB were left behind without it).
        name, instrs = self.stages[-1]
        runs = [a for i, a in instrs if i == "RUN" and "apt-get install" in a]
        self.assertTrue(runs)
        for run in runs:
            self.assertIn("apt-get clean", run)
            self.assertIn("/var/lib/apt/lists/*", run)
            self.assertIn("/var/cache/apt/*.bin", run)

    def test_tests_on_build_has_pkits_without_buildx(self):
        # Classic docker build (Debian's docker.io has no buildx): the PKITS
        # data comes in the one context deploy/image-build.sh assembles.
        with open(DOCKERFILE) as f:
            text = f.read()
        self.assertNotIn("--from=pkits", text)
        self.assertRegex(text, r"(?m)^COPY .*testdat\[a\] testdata/\s*$")
        self.assertRegex(text, r"(?m)^ARG CERTVAL_PKITS_DIR=/src/testdata/pkits\s*$")
        with open(os.path.join(DEPLOY, "image-build.sh")) as f:
            self.assertIn('"$ctx/testdata/pkits"', f.read())

    def test_image_uses_the_rebuilt_boringssl(self):
        # Issue 15: the image links Debian's BoringSSL source rebuilt without
        # OPENSSL_SMALL, installed beside certvald and found via its RUNPATH.
        with open(DOCKERFILE) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^ARG CERTVAL_BORINGSSL=fast\s*$")
        self.assertIn("deploy/boringssl-fast.sh", text)
        self.assertIn("-DCERTVAL_BORINGSSL_RUNTIME_DIR=/usr/local/lib/certval", text)
        self.assertIn("COPY --from=build /staging/usr/local/lib/certval/ /usr/local/lib/certval/", text)

    def test_ci_builds_and_smoke_tests_the_image(self):
        with open(os.path.join(SRC, ".ci", "run")) as f:
            ci = f.read()
        self.assertIn("bash deploy/image-ci.sh", ci)
        with open(os.path.join(DEPLOY, "image-ci.sh")) as f:
            step = f.read()
        self.assertIn("/usr/sbin/dockerd", step)
        self.assertIn("deploy/debian-base.sh", step)
        self.assertIn("deploy/image-test.sh", step)
        with open(os.path.join(DEPLOY, "image-test.sh")) as f:
            smoke = f.read()
        for setting in ("--read-only", "--cap-drop ALL", "no-new-privileges",
                        "seccomp/certval-io-uring.json", "127.0.0.1::50051", "kubectl kustomize"):
            self.assertIn(setting, smoke)

    def test_packages_match_ci(self):
        """The build stage installs exactly what CI installs."""
        ci_dir = os.path.join(SRC, ".ci")
        ci = set()
        if os.path.isdir(ci_dir):
            for name in sorted(os.listdir(ci_dir)):
                path = os.path.join(ci_dir, name)
                if os.path.isfile(path):
                    with open(path, errors="replace") as f:
                        text = f.read().replace("\\\n", " ")
                    ci |= _apt_packages([("RUN", line) for line in text.splitlines()])
        if not ci & BUILD_PACKAGES:
            self.skipTest("no apt-get install of the build dependencies found in .ci/")
        # kubectl only serves this manifest test; CI installs Debian's
        # kubernetes-client when no kubectl is present. The image needs none.
        ci.discard("kubernetes-client")
        # docker.io and debootstrap serve CI's image step (deploy/image-ci.sh)
        # on the host; the image itself is built without them.
        ci -= {"docker.io", "debootstrap"}
        # npm (only where the machine has none) fetches Envoy's API
        # definitions for the ext_authz test on the host; no image step uses it.
        ci.discard("npm")
        docker = _apt_packages(self.stages[0][1])
        self.assertEqual(docker, ci, "Dockerfile build stage and CI install different packages: "
                         "only Dockerfile %s, only CI %s" % (sorted(docker - ci), sorted(ci - docker)))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--seccomp-exec":
        _seccomp_exec(sys.argv[2:])
    os.chdir(SRC)
    result = unittest.main(verbosity=2, exit=False).result
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print("test_deploy: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(0 if result.wasSuccessful() else 1)
