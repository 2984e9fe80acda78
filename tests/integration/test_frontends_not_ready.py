"""Front ends while certval is not ready: a profile checks revocation but
its CRL is missing, so health stays NOT_SERVING. The nginx endpoint answers
503, the SPOE agent DENY, and Envoy's Check a denied 503 response with
google.rpc code UNAVAILABLE, never a gRPC error or an ALLOW."""
import importlib
import os
import re
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certval_harness as h  # noqa: E402
import frontend_harness as fh  # noqa: E402
import test_frontends_haproxy as th  # noqa: E402


def subset_stubs():
    """certval's own Envoy subset (proto/), as Python classes."""
    out = tempfile.mkdtemp(prefix="certval-envoy-subset-")
    subprocess.run(["protoc", "--proto_path=" + os.path.join(h.SRC, "proto"), "--python_out=" + out,
                    "envoy/service/auth/v3/external_auth.proto",
                    "envoy/service/auth/v3/attribute_context.proto",
                    "envoy/config/core/v3/base.proto", "envoy/type/v3/http_status.proto",
                    "google/rpc/status.proto"], check=True)
    sys.path.insert(0, out)
    try:
        return importlib.import_module("envoy.service.auth.v3.external_auth_pb2"), out
    finally:
        sys.path.remove(out)


class NotReadyTest(fh.FrontendTest):
    @classmethod
    def _set_up(cls):
        cls.nginx_port, cls.spoe_port = fh.free_port(), fh.free_port()
        cls.srv = fh.certval_server(
            "frontends:\n  nginx:\n    listen: \"127.0.0.1:%d\"\n"
            "  haproxy:\n    listen: \"127.0.0.1:%d\"\n" % (cls.nginx_port, cls.spoe_port))
        with open(cls.srv.config) as f:
            text = f.read()
        # The tenant profile checks revocation: without its CRL, not ready.
        text = re.sub(r"crl_files: \[tenant-ca\.crl, ", "crl_files: [", text)
        with open(cls.srv.config, "w") as f:
            f.write(text)
        cls.srv.wait_serving = lambda timeout=20: None
        cls.srv.start()
        _, health_pb2 = h.stubs()
        cls.assert_not_serving = cls.srv.health() != health_pb2.HealthCheckResponse.SERVING

    def test_precondition_not_serving(self):
        self.assertTrue(self.assert_not_serving)

    def test_nginx_endpoint_503(self):
        with open(os.path.join(self.srv.dir, "device-acme-dev1.pem")) as f:
            cert = urllib.parse.quote(f.read(), safe="")
        req = urllib.request.Request("http://127.0.0.1:%d/check" % self.nginx_port,
                                     headers={"X-Client-Cert": cert, "X-Tenant-Id": "acme",
                                              "X-Device-Id": "dev-001"})
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(e.exception.code, 503)

    def test_spoe_deny(self):
        t = th.SpopAgentTest()
        t.port = self.spoe_port
        ders = h.read_pem_chain(os.path.join(self.srv.dir, "device-acme-dev1-chain.pem"))
        s = t.connect()
        try:
            acks = t.notify(s, {"leaf": (9, ders[0]), "tenant": (8, "acme"),
                                "device": (8, "dev-001")})
            self.assertEqual(acks["decision"], (1, "DENY"))
        finally:
            s.close()

    def test_envoy_denied_503(self):
        pb, folder = subset_stubs()
        req = pb.CheckRequest()
        http = req.attributes.request.http
        http.headers["x-tenant-id"] = "acme"
        http.headers["x-device-id"] = "dev-001"
        with open(os.path.join(self.srv.dir, "device-acme-dev1.pem")) as f:
            req.attributes.source.certificate = urllib.parse.quote(f.read(), safe="")
        call = self.srv.channel.unary_unary("/envoy.service.auth.v3.Authorization/Check",
                                            request_serializer=pb.CheckRequest.SerializeToString,
                                            response_deserializer=pb.CheckResponse.FromString)
        resp = call(req, timeout=10)
        self.assertEqual(resp.status.code, 14)
        self.assertEqual(resp.WhichOneof("http_response"), "denied_response")
        self.assertEqual(resp.denied_response.status.code, 503)
        import shutil
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
