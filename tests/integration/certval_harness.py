"""Shared harness for certval integration tests.

Starts the real certvald on 127.0.0.1 with an ephemeral port, on a demo PKI
made by `certvalctl demo-pki`, and talks to it with Python grpcio: an
independent gRPC implementation. Message classes are generated at test time
with protoc --python_out from proto/ (never committed); calls use grpcio's
generic unary_unary/stream_stream API, so no grpc plugin is needed.
"""
import importlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SRC = os.environ.get("CERTVAL_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("CERTVAL_BUILD_DIR") or os.path.join(SRC, "build")
CERTVALD = os.path.join(BUILD, "server", "certvald")
CERTVALCTL = os.path.join(BUILD, "server", "certvalctl")

_stubs = None


def stubs():
    """Returns (certval_pb2, health_pb2), generated once per process."""
    global _stubs
    if _stubs is None:
        out = tempfile.mkdtemp(prefix="certval-pb-")
        subprocess.run(["protoc", "--proto_path=" + os.path.join(SRC, "proto"),
                        "--python_out=" + out, "certval/v1/certval.proto",
                        "certval/v1/admin.proto", "grpc/health/v1/health.proto"], check=True)
        for d in ("certval", "certval/v1", "grpc", "grpc/health", "grpc/health/v1"):
            open(os.path.join(out, d, "__init__.py"), "a").close()
        # The generated "grpc" package would shadow grpcio: import by path.
        sys.path.insert(0, out)
        try:
            certval_pb2 = importlib.import_module("certval.v1.certval_pb2")
            spec = importlib.util.spec_from_file_location(
                "certval_health_pb2", os.path.join(out, "grpc/health/v1/health_pb2.py"))
            health_pb2 = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(health_pb2)
        finally:
            sys.path.remove(out)
        _stubs = (certval_pb2, health_pb2)
    return _stubs


import grpc  # noqa: E402  (after stubs() so the name is grpcio's)


def vm_kib(pid, field):
    """A /proc/PID/status memory field in KiB ("VmRSS", "VmHWM"); 0 if absent."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def read_pem_chain(path):
    """DER certificates of a PEM file, in file order."""
    import base64
    ders, cur = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line == "-----BEGIN CERTIFICATE-----":
                cur = []
            elif line == "-----END CERTIFICATE-----":
                ders.append(base64.b64decode("".join(cur)))
                cur = None
            elif cur is not None:
                cur.append(line)
    return ders


class Server:
    """A running certvald on a demo PKI."""

    def __init__(self, extra_yaml="", grace=5):
        self.dir = tempfile.mkdtemp(prefix="certval-it-")
        subprocess.run([CERTVALCTL, "demo-pki", "--dir", self.dir,
                        "--listen", "127.0.0.1:0"], check=True, stdout=subprocess.DEVNULL)
        self.config = os.path.join(self.dir, "certval.yaml")
        if extra_yaml:
            with open(self.config, "a") as f:
                f.write(extra_yaml)
        self.grace = grace
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.dir, "certvald.log")
        self.metrics_port_file = os.path.join(self.dir, "metrics-port")
        self.admin_port_file = os.path.join(self.dir, "admin-port")

    def start(self):
        port_file = os.path.join(self.dir, "port")
        for stale in (port_file, self.metrics_port_file, self.admin_port_file):
            if os.path.exists(stale):
                os.unlink(stale)
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([CERTVALD, "--config", self.config,
                                      "--listen", "127.0.0.1:0", "--port-file", port_file,
                                      "--metrics-port-file", self.metrics_port_file,
                                      "--admin-port-file", self.admin_port_file],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("certvald exited early:\n" + self.logs())
            if os.path.exists(port_file):
                with open(port_file) as f:
                    self.port = int(f.read())
                break
            time.sleep(0.05)
        if self.port is None:
            raise RuntimeError("certvald did not write its port:\n" + self.logs())
        self.target = "127.0.0.1:%d" % self.port
        if hasattr(self, "channel"):
            self.channel.close()
        self.channel = grpc.insecure_channel(self.target)
        self.wait_serving()
        return self

    def wait_serving(self, timeout=20):
        _, health_pb2 = stubs()
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.health() == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
        raise RuntimeError("certvald not SERVING:\n" + self.logs())

    def scrape(self):
        """The Prometheus exposition as {(name, frozenset(labels)): value}."""
        import re
        import urllib.request
        with open(self.metrics_port_file) as f:
            port = int(f.read())
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            self.assert_content_type = r.headers.get("Content-Type")
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
            if m is None:
                raise AssertionError("bad exposition line: %r" % line)
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
            out[(m.group(1), labels)] = float(m.group(4))
        return out

    def log_lines(self):
        """Every stdout line of certvald, parsed as JSON (fails on a non-JSON line)."""
        import json
        with open(self.log_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def health(self, service=""):
        _, health_pb2 = stubs()
        call = self.channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString)
        return call(health_pb2.HealthCheckRequest(service=service), timeout=5).status

    def watch_health(self, service="", timeout=30):
        """The grpc.health.v1 Watch stream for |service|, as an iterator of
        HealthCheckResponse (cancel() it when done)."""
        _, health_pb2 = stubs()
        call = self.channel.unary_stream(
            "/grpc.health.v1.Health/Watch",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString)
        return call(health_pb2.HealthCheckRequest(service=service), timeout=timeout)

    def validate_call(self):
        pb, _ = stubs()
        return self.channel.unary_unary(
            "/certval.v1.Validator/Validate",
            request_serializer=pb.ValidateRequest.SerializeToString,
            response_deserializer=pb.ValidateResponse.FromString)

    def stream_call(self, channel=None):
        pb, _ = stubs()
        return (channel or self.channel).stream_stream(
            "/certval.v1.Validator/ValidateStream",
            request_serializer=pb.ValidateRequest.SerializeToString,
            response_deserializer=pb.ValidateResponse.FromString)

    def chain(self, name, tenant, device="", cid=0, user="alice"):
        pb, _ = stubs()
        return pb.ChainRequest(id=cid, certificates=read_pem_chain(os.path.join(self.dir, name)),
                               tenant_id=tenant, device_id=device, user_id=user)

    def validate(self, chains, timeout=10):
        pb, _ = stubs()
        return self.validate_call()(pb.ValidateRequest(chains=chains), timeout=timeout)

    def logs(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        self.proc = None
        return rc

    def cleanup(self):
        self.stop()
        if hasattr(self, "channel"):
            self.channel.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class SharedServerTest(unittest.TestCase):
    """A test class whose tests share one certvald (self.srv), started once
    with the class's SERVER_YAML and stopped after its last test."""

    SERVER_YAML = ""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(extra_yaml=cls.SERVER_YAML).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()
