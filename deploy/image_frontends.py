"""The front-end part of deploy/image-test.sh: the integration tests'
own front-end checks (tests/integration/test_frontends_*.py), run against
the certvald in the image's container instead of a local one.

    /usr/bin/python3 deploy/image_frontends.py CONTAINER PKI_DIR TOKEN_FILE \\
        GRPC_PORT ADMIN_PORT METRICS_PORT NGINX_PORT HAPROXY_PORT

CONTAINER is the running container's name (its stdout is the audit log the
nginx test reads, through `docker logs`); the ports are its listeners as
published on 127.0.0.1; PKI_DIR the demo PKI it trusts. Debian's nginx and
HAProxy run on the host from deploy/nginx/nginx.conf and deploy/haproxy/,
rendered by the tests' own set-up, in front of the tests' recording
upstream; Envoy's Check is called on the gRPC port with the CheckRequests
test_frontends_envoy.py builds from Envoy's real API (npm
@grpc/grpc-js-xds; without npm that part prints a SKIP line). Every deny
entry a test adds is removed after its class, so each class starts from the
container's own state. Before each front end every published port is tried
(a TCP connection, and an HTTP answer on the metrics port); a front end
whose ports do not answer is not run but failed with the ports named. A
failure prints a diagnosis: the container's state, its listeners and open
descriptors seen from inside, each port tried through 127.0.0.1 and at the
container's own address (past docker-proxy). Prints "image-test: ok ..." or
"image-test: SKIP ..." per front end; exits 1 with the failures on stderr.
Needs: docker ($DOCKER, $DOCKER_HOST), nginx, haproxy, openssl,
python3-grpcio, and certvalctl ($CERTVALCTL)."""
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import certval_harness as h  # noqa: E402
import frontend_harness as fh  # noqa: E402
import grpc  # noqa: E402
import test_frontends_envoy as te  # noqa: E402
import test_frontends_haproxy as tha  # noqa: E402
import test_frontends_nginx as tn  # noqa: E402

DOCKER = os.environ.get("DOCKER", "docker")


class ContainerServer(h.Server):
    """The container's certvald in the shape of certval_harness.Server, as
    far as the front-end tests use it: dir (the demo PKI, with admin.token),
    channel, the admin and metrics port files, scrape() and log_lines()."""

    def __init__(self, name, pki, token, grpc_port, admin_port, metrics_port, ports):
        self.name = name
        self.dir = pki
        self.tmp = tempfile.mkdtemp(prefix="certval-image-frontends-")
        shutil.copy(token, os.path.join(pki, "admin.token"))
        self.admin_port_file = os.path.join(self.tmp, "admin-port")
        self.metrics_port_file = os.path.join(self.tmp, "metrics-port")
        for path, port in ((self.admin_port_file, admin_port),
                           (self.metrics_port_file, metrics_port)):
            with open(path, "w") as f:
                f.write("%d\n" % port)
        self.admin_port = admin_port
        self.metrics_port = metrics_port
        self.log_path = os.path.join(self.tmp, "container.log")
        self.target = "127.0.0.1:%d" % grpc_port
        self.channel = grpc.insecure_channel(self.target)
        self.frontend_ports = ports
        self.proc = None

    def admin(self, *args):
        p = subprocess.run(
            [h.CERTVALCTL, "admin", "--server", "127.0.0.1:%d" % self.admin_port,
             "--token-file", os.path.join(self.dir, "admin.token")] + list(args),
            capture_output=True, text=True, timeout=30)
        if p.returncode != 0:  # CalledProcessError's text leaves out stderr
            raise RuntimeError("certvalctl admin %s: exit %d: %s" %
                               (" ".join(args), p.returncode, p.stderr.strip()))
        return p.stdout

    def log_lines(self):
        # stdout only: the JSON lines (audit and events) certvald writes.
        with open(self.log_path, "w") as f:
            subprocess.run([DOCKER, "logs", self.name], stdout=f, stderr=subprocess.DEVNULL,
                           check=True, timeout=30)
        return super().log_lines()

    def start(self):
        raise unittest.SkipTest("the container's certvald is not restarted here")

    def stop(self, *args, **kwargs):
        raise unittest.SkipTest("the container's certvald is not stopped here")

    def clear_deny_list(self):
        for digest in sorted(set(re.findall(r"\b[0-9a-f]{64}\b", self.admin("deny-list")))):
            self.admin("deny-remove", "--leaf-sha256", digest)

    def cleanup(self):
        """After each test class: the deny entries it added go."""
        self.clear_deny_list()

    def close(self):
        self.channel.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def published(self):
        """[(container port, host port)] as `docker port` lists them."""
        out = run_text([DOCKER, "port", self.name])
        return [(int(m.group(1)), int(m.group(2)))
                for m in re.finditer(r"^(\d+)/tcp -> 127\.0\.0\.1:(\d+)$", out, re.M)]

    def unreachable(self):
        """The published ports that do not take a connection and answer
        (an HTTP GET for the metrics port: through docker-proxy a dead
        backend shows as a reset, not a refused connect), as text; "" when
        all of them do."""
        bad = []
        for inner, port in self.published():
            why = probe(port, http=(port == self.metrics_port))
            if why:
                bad.append("127.0.0.1:%d (container port %d): %s" % (port, inner, why))
        return "; ".join(bad)

    def diagnose(self):
        """What a failed front-end check needs to be understood: the
        container's state, its listeners and descriptors seen from inside,
        each published port tried through 127.0.0.1 and at the container's
        own address (past docker-proxy), and the host's docker-proxy
        processes. Printed on stderr."""
        fmt = "{{.State.Status}} pid {{.State.Pid}} exit {{.State.ExitCode}} oom {{.State.OOMKilled}}"
        lines = ["state: " + run_text([DOCKER, "inspect", "-f", fmt, self.name]).strip()]
        ip = run_text([DOCKER, "inspect", "-f", "{{range .NetworkSettings.Networks}}"
                       "{{.IPAddress}} {{end}}", self.name]).split()
        lines.append("container address: %s" % (" ".join(ip) or "none"))
        status = run_text([DOCKER, "exec", self.name, "cat", "/proc/1/status"])
        lines.append("PID 1: " + ", ".join(l for l in status.splitlines()
                                            if l.split(":")[0] in ("Name", "State", "Threads")))
        limits = run_text([DOCKER, "exec", self.name, "cat", "/proc/1/limits"])
        lines += [l for l in limits.splitlines() if l.startswith("Max open files")]
        fds = run_text([DOCKER, "exec", self.name, "ls", "/proc/1/fd"])
        lines.append("open descriptors of PID 1: %d" % len(fds.split()))
        listening = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for row in run_text([DOCKER, "exec", self.name, "cat", table]).splitlines()[1:]:
                f = row.split()
                if len(f) > 3 and f[3] == "0A":  # LISTEN
                    listening.append(str(int(f[1].rsplit(":", 1)[1], 16)))
        lines.append("listening inside: %s" % (" ".join(sorted(set(listening), key=int)) or "none"))
        for inner, port in self.published():
            direct = probe(inner, host=ip[0]) if ip else "no address"
            lines.append("port %d: via 127.0.0.1:%d %s; at %s:%d %s" % (
                inner, port, probe(port) or "ok", ip[0] if ip else "?", inner, direct or "ok"))
        procs = run_text(["ps", "-eo", "args"])
        lines.append("docker-proxy host ports: %s" % (" ".join(sorted(
            re.findall(r"^\S*docker-proxy .*-host-port (\d+)", procs, re.M))) or "none"))
        sys.stderr.write("---- diagnosis of %s\n%s\n" % (self.name, "\n".join("    " + l for l in lines)))


def run_text(argv):
    """|argv|'s stdout, or its error as text (diagnostics never raise)."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return p.stdout if p.returncode == 0 else "(%s: exit %d: %s)" % (
            argv[0], p.returncode, p.stderr.strip()[:300])
    except (OSError, subprocess.SubprocessError) as e:
        return "(%s: %s)" % (argv[0], e)


def probe(port, host="127.0.0.1", http=False):
    """"" if |host|:|port| takes a TCP connection (and, with |http|, answers
    an HTTP request with a status line) within 3 s, else why not."""
    try:
        with socket.create_connection((host, port), timeout=3) as c:
            if http:
                c.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
                head = c.recv(64)
                if not head.startswith(b"HTTP/"):
                    return "connected, but no HTTP answer (%r)" % head[:20]
        return ""
    except OSError as e:
        return "%s: %s" % (type(e).__name__, e)


class InContainer:
    """Mixin: the proxy asks the container's listener, not a local certvald."""

    container = None

    @classmethod
    def start_certval(cls, frontend):
        cls.srv = cls.container
        return cls.container.frontend_ports[frontend]


class ImageNginx(InContainer, tn.NginxAuthRequestTest):
    pass


class ImageHaproxy(InContainer, tha.HaproxySpoeTest):
    pass


class ImageEnvoy(InContainer, te.EnvoyCheckTest):
    @classmethod
    def _set_up(cls):
        cls.api = te.EnvoyApi()
        cls.srv = cls.container


# What runs: everything in those classes that talks to certval, but not
# "certval down" (it stops certvald) nor the static proto/schema checks.
RUNS = [
    ("envoy", "Check on the gRPC port (Envoy's real API from npm)", ImageEnvoy,
     ["test_1_cases_xfcc_peer_and_revocation", "test_2_tenant_from_host_map",
      "test_3_malformed_is_a_deny_not_a_grpc_error"]),
    ("nginx", "host nginx from deploy/nginx/nginx.conf, auth_request", ImageNginx,
     ["test_1_cases_then_revocation",
      "test_3_endpoint_answers_400_for_a_malformed_subrequest"]),
    ("haproxy", "host HAProxy from deploy/haproxy/, SPOE", ImageHaproxy,
     ["test_1_cases_then_revocation",
      "test_3_once_per_connection_and_again_for_another_claim"]),
]


def main(argv):
    if len(argv) != 9:
        sys.stderr.write(__doc__)
        return 2
    name, pki, token = argv[1:4]
    grpc_port, admin_port, metrics_port, nginx_port, haproxy_port = (int(a) for a in argv[4:9])
    h.CERTVALCTL = os.environ.get("CERTVALCTL", h.CERTVALCTL)
    srv = ContainerServer(name, pki, token, grpc_port, admin_port, metrics_port,
                          {"nginx": nginx_port, "haproxy": haproxy_port})
    InContainer.container = srv
    failed = 0
    try:
        srv.clear_deny_list()
        for what, how, cls, tests in RUNS:
            if what == "envoy" and not shutil.which("npm"):
                print("image-test: SKIP envoy Check: npm is not installed, so Envoy's API "
                      "definitions (@grpc/grpc-js-xds) cannot be had; not checked")
                continue
            down = srv.unreachable()
            if down:
                failed += 1
                print("image-test: FAIL: %s (%s): not run, the container does not answer on: %s"
                      % (what, how, down), file=sys.stderr)
                srv.diagnose()
                continue
            out = io.StringIO()
            suite = unittest.TestSuite(cls(t) for t in tests)
            result = unittest.TextTestRunner(stream=out, verbosity=2).run(suite)
            bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
            if bad or result.skipped or result.testsRun != len(tests):
                failed += 1
                text = out.getvalue()
                if len(text) > 8000:  # the first failures and the summary
                    text = text[:6000] + "\n[... %d characters ...]\n" % (len(text) - 8000) + text[-2000:]
                sys.stderr.write(text)
                print("image-test: FAIL: %s (%s): %d failures or errors in %d tests, %d skipped "
                      "(above)%s" % (what, how, bad, len(tests), len(result.skipped),
                         "".join("; skipped: %s" % r for _, r in result.skipped[:1])),
                      file=sys.stderr)
                srv.diagnose()
            else:
                print("image-test: ok   %s: %s: %d tests (ALLOW, REQUIRE_PASSWORD, denials "
                      "403/DENY, a deny entry pushed mid-test)" % (what, how, len(tests)))
    finally:
        srv.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
