"""Envoy ext_authz v3 (envoy.service.auth.v3.Authorization/Check) against a
running certvald. No Envoy binary exists for this platform, so the client
is built from Envoy's real API definitions: the npm package
@grpc/grpc-js-xds ships them; it is installed into this test's own folder,
compiled with protoc (--descriptor_set_out), and the CheckRequests Envoy
sends are built with those real message classes. Each CheckResponse is
decoded with the real definitions and checked field by field. A second test
compares certval's subset in proto/ with the real files, message by
message, field by field."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certval_harness as h  # noqa: E402
import frontend_harness as fh  # noqa: E402
import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402

METHOD = "/envoy.service.auth.v3.Authorization/Check"
OVERWRITE = 2  # HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def wkt_descriptor_set(path):
    """The well-known types protoc needs for Envoy's imports, from
    python3-protobuf's built-in descriptors (libprotobuf-dev is not
    installed)."""
    from google.protobuf import (any_pb2, duration_pb2, empty_pb2, struct_pb2,  # noqa
                                 timestamp_pb2, wrappers_pb2)
    fds = descriptor_pb2.FileDescriptorSet()
    for mod in (descriptor_pb2, any_pb2, duration_pb2, empty_pb2, struct_pb2, timestamp_pb2,
                wrappers_pb2):
        fd = descriptor_pb2.FileDescriptorProto()
        mod.DESCRIPTOR.CopyToProto(fd)
        fds.file.append(fd)
    with open(path, "wb") as f:
        f.write(fds.SerializeToString())


def compile_set(out, roots, files, wkt):
    subprocess.run(["protoc", "--descriptor_set_in=" + wkt, "--include_imports",
                    "--descriptor_set_out=" + out] + ["--proto_path=" + r for r in roots] + files,
                   check=True)
    fds = descriptor_pb2.FileDescriptorSet()
    with open(out, "rb") as f:
        fds.ParseFromString(f.read())
    return fds


def messages(fds, package_prefixes):
    """{full message name: {field name: (number, type, label, type_name)}}."""
    out = {}

    def walk(prefix, msgs):
        for m in msgs:
            name = prefix + "." + m.name
            out[name] = {f.name: (f.number, f.type, f.label, f.type_name) for f in m.field}
            walk(name, m.nested_type)

    for fd in fds.file:
        if any(fd.package.startswith(p) for p in package_prefixes):
            walk("." + fd.package, fd.message_type)
    return out


class EnvoyApi:
    """Envoy's real API, from npm, in a folder of its own."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="certval-envoy-api-")
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix",
                        self.dir, "@grpc/grpc-js-xds"], check=True, stdout=subprocess.DEVNULL)
        deps = os.path.join(self.dir, "node_modules", "@grpc", "grpc-js-xds", "deps")
        # The package ships the .proto files with CRLF line endings.
        self.roots = []
        for d in ("envoy-api", "xds", "googleapis", "protoc-gen-validate"):
            src, dst = os.path.join(deps, d), os.path.join(self.dir, "lf", d)
            for dirpath, _, names in os.walk(src):
                for n in names:
                    if n.endswith(".proto"):
                        rel = os.path.relpath(os.path.join(dirpath, n), src)
                        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
                        with open(os.path.join(dirpath, n), "rb") as f:
                            data = f.read().replace(b"\r\n", b"\n")
                        with open(os.path.join(dst, rel), "wb") as f:
                            f.write(data)
            self.roots.append(dst)
        # That snapshot's protoc-gen-validate predates the Envoy files'
        # "ignore_empty" rule option: declare it so protoc can parse the
        # annotations (they are not enforced here).
        vp = os.path.join(self.dir, "lf", "protoc-gen-validate", "validate", "validate.proto")
        with open(vp) as f:
            text = f.read()
        import re
        text = re.sub(r"(\nmessage \w+Rules \{\n)", r"\1    optional bool ignore_empty = 999;\n", text)
        with open(vp, "w") as f:
            f.write(text)
        self.wkt = os.path.join(self.dir, "wkt.pb")
        wkt_descriptor_set(self.wkt)
        self.fds = compile_set(os.path.join(self.dir, "envoy.pb"), self.roots,
                               ["envoy/service/auth/v3/external_auth.proto"], self.wkt)
        pool = descriptor_pool.DescriptorPool()
        for fd in self.fds.file:
            pool.Add(fd)
        wkt = descriptor_pb2.FileDescriptorSet()
        with open(self.wkt, "rb") as f:
            wkt.ParseFromString(f.read())
        for fd in wkt.file:
            try:
                pool.Add(fd)
            except Exception:  # already there through the Envoy set
                pass

        def cls(name):
            d = pool.FindMessageTypeByName(name)
            if hasattr(message_factory, "GetMessageClass"):
                return message_factory.GetMessageClass(d)
            return message_factory.MessageFactory(pool).GetPrototype(d)

        self.CheckRequest = cls("envoy.service.auth.v3.CheckRequest")
        self.CheckResponse = cls("envoy.service.auth.v3.CheckResponse")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def pem(path):
    with open(path) as f:
        return f.read()


def urlenc(text):
    return urllib.parse.quote(text, safe="")


@unittest.skipUnless(shutil.which("npm"), "npm not installed")
class EnvoyCheckTest(fh.FrontendTest):
    @classmethod
    def _set_up(cls):
        cls.api = EnvoyApi()
        # Envoy Check is on by default: the section only maps a host.
        cls.srv = fh.certval_server(
            "frontends:\n  tenant_by_host:\n    - {host: login.acme.example, tenant: acme}\n")
        cls.srv.start()

    def call_raw(self, payload):
        call = self.srv.channel.unary_unary(METHOD, request_serializer=lambda b: b,
                                            response_deserializer=self.api.CheckResponse.FromString)
        return call(payload, timeout=10)

    def request(self, stem, tenant, device, how="xfcc", host="login.example"):
        """The CheckRequest Envoy's ext_authz filter sends, with fields
        certval does not declare filled in too (address, time, size,
        metadata, header_map-free headers)."""
        req = self.api.CheckRequest()
        a = req.attributes
        a.source.address.socket_address.address = "192.0.2.10"
        a.source.address.socket_address.port_value = 50123
        a.destination.address.socket_address.address = "127.0.0.1"
        a.destination.address.socket_address.port_value = 8443
        a.destination.principal = "login.example"
        a.request.time.seconds = 1700000000
        http = a.request.http
        http.id = "12345678901234567890"
        http.method = "GET"
        http.path = "/login"
        http.host = host
        http.scheme = "https"
        http.protocol = "HTTP/2"
        http.size = 0
        a.context_extensions["virtual_host"] = "login"
        a.metadata_context.filter_metadata["envoy.filters.http.jwt_authn"].fields["x"].string_value = "y"
        a.tls_session.sni = "login.example"
        http.headers[":authority"] = host
        http.headers["user-agent"] = "curl/8.0"
        http.headers["x-tenant-id"] = tenant
        http.headers["x-user-id"] = "alice"
        if device:
            http.headers["x-device-id"] = device
        # A client's forged answers travel in the request; certval's
        # response must overwrite them.
        http.headers["x-certval-decision"] = "ALLOW"
        http.headers["x-certval-kind"] = "FORGED"
        if stem is not None:
            leaf = pem(os.path.join(self.srv.dir, stem + ".pem"))
            chain_file = os.path.join(self.srv.dir, stem + "-chain.pem")
            chain = pem(chain_file) if os.path.exists(chain_file) else leaf
            if how == "xfcc":
                http.headers["x-forwarded-client-cert"] = (
                    'By=spiffe://login.example;Hash=00ff;Cert="%s";Chain="%s";'
                    'Subject="CN=x,O=y";URI=urn:x' % (urlenc(leaf), urlenc(chain)))
            elif how == "xfcc-cert":
                http.headers["x-forwarded-client-cert"] = 'Hash=00ff;Cert="%s"' % urlenc(leaf)
            elif how == "peer":
                a.source.certificate = urlenc(leaf)
        return req

    def check(self, req):
        return self.call_raw(req.SerializeToString())

    def assert_ok(self, resp, decision, reason, kind, tenant, device, name=""):
        self.assertEqual(resp.status.code, 0, name)
        self.assertEqual(resp.WhichOneof("http_response"), "ok_response", name)
        ok = resp.ok_response
        got = [(o.header.key, o.header.value, o.append_action, o.HasField("append"))
               for o in ok.headers]
        self.assertEqual(got, [("x-certval-decision", decision, OVERWRITE, False),
                               ("x-certval-reason", reason, OVERWRITE, False),
                               ("x-certval-kind", kind, OVERWRITE, False),
                               ("x-certval-tenant", tenant, OVERWRITE, False),
                               ("x-certval-device", device, OVERWRITE, False)], name)
        self.assertEqual(list(ok.headers_to_remove), [], name)
        self.assertEqual(len(ok.response_headers_to_add), 0, name)
        self.assertEqual(len(ok.query_parameters_to_set), 0, name)
        self.assertFalse(resp.HasField("dynamic_metadata"), name)

    def assert_denied(self, resp, reason, status=403, code=7, name=""):
        self.assertEqual(resp.status.code, code, name)
        self.assertEqual(resp.WhichOneof("http_response"), "denied_response", name)
        d = resp.denied_response
        self.assertEqual(d.status.code, status, name)
        if reason is not None:
            self.assertIn(reason, d.body, name)
            self.assertIn(reason, resp.status.message, name)
            hdrs = {o.header.key: o.header.value for o in d.headers}
            self.assertEqual(hdrs.get("x-certval-decision"), "DENY", name)
            self.assertEqual(hdrs.get("x-certval-reason"), reason, name)

    def test_1_cases_xfcc_peer_and_revocation(self):
        for name, stem, tenant, device, decision, reason, kind in fh.CASES:
            for how in ("xfcc", "xfcc-cert", "peer"):
                with self.subTest(case=name, how=how):
                    resp = self.check(self.request(stem, tenant, device, how))
                    if decision is None:
                        # No certificate: the validator's reason, whatever it is.
                        self.assert_denied(resp, reason, name=name)
                    else:
                        self.assert_ok(resp, decision, reason, kind, tenant, device, name)
        # Revocation pushed mid-test: the next Check of the same chain is denied.
        fh.deny_leaf(self.srv, "device-acme-dev1")
        for how in ("xfcc", "peer"):
            self.assert_denied(self.check(self.request("device-acme-dev1", "acme", "dev-001", how)),
                               "REVOKED")
        m = self.srv.scrape()
        key = ("certval_frontend_decisions_total",
               frozenset({("frontend", "envoy"), ("decision", "ALLOW")}))
        self.assertGreaterEqual(m.get(key, 0), 3)

    def test_2_tenant_from_host_map(self):
        req = self.request("tenant-acme", "", "", host="LOGIN.acme.example:8443")
        del req.attributes.request.http.headers["x-tenant-id"]
        self.assert_ok(self.check(req), "REQUIRE_PASSWORD", "OK", "tenant", "acme", "")
        req = self.request("tenant-acme", "", "", host="login.other.example")
        del req.attributes.request.http.headers["x-tenant-id"]
        self.assert_denied(self.check(req), None)

    def test_3_malformed_is_a_deny_not_a_grpc_error(self):
        bad_xfcc = self.request(None, "acme", "")
        bad_xfcc.attributes.request.http.headers["x-forwarded-client-cert"] = 'Chain="%ZZ"'
        self.assert_denied(self.check(bad_xfcc), "MALFORMED")
        not_pem = self.request(None, "acme", "")
        not_pem.attributes.source.certificate = urlenc("-----BEGIN CERTIFICATE-----\n!!\n")
        self.assert_denied(self.check(not_pem), "MALFORMED")
        self.assert_denied(self.call_raw(b"\xff\xff\xff garbage"), "MALFORMED")
        long_tenant = self.request("tenant-acme", "a" * 5000, "")
        self.assert_denied(self.check(long_tenant), "MALFORMED")

    def test_4_subset_in_proto_matches_envoy(self):
        real = messages(self.api.fds, ("envoy.", "google.rpc"))
        ours_fds = compile_set(os.path.join(self.api.dir, "ours.pb"), [os.path.join(h.SRC, "proto")],
                               ["envoy/service/auth/v3/external_auth.proto"], self.api.wkt)
        ours = messages(ours_fds, ("envoy.", "google.rpc"))
        self.assertIn(".envoy.service.auth.v3.CheckResponse", ours)
        for msg, fields in ours.items():
            self.assertIn(msg, real, msg)
            for fname, spec in fields.items():
                self.assertEqual(real[msg].get(fname), spec, "%s.%s" % (msg, fname))
        svc = [s for fd in ours_fds.file for s in fd.service]
        self.assertEqual([(s.name, [m.name for m in s.method]) for s in svc],
                         [("Authorization", ["Check"])])


    def test_5_example_config_matches_envoys_schema(self):
        import yaml
        from google.protobuf import json_format
        conf = os.path.join(self.api.dir, "envoy.yaml")
        fh.fill_template(os.path.join(h.SRC, "deploy", "envoy", "envoy.yaml"), conf, {
            "LISTEN_PORT": 8443, "SERVER_CERT": "/etc/envoy/tls.crt",
            "SERVER_KEY": "/etc/envoy/tls.key", "CERTVAL_HOST": "certval",
            "CERTVAL_PORT": 50051, "UPSTREAM_HOST": "login", "UPSTREAM_PORT": 8080})
        files = ["envoy/config/bootstrap/v3/bootstrap.proto",
                 "envoy/extensions/filters/network/http_connection_manager/v3/"
                 "http_connection_manager.proto",
                 "envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto",
                 "envoy/extensions/filters/http/router/v3/router.proto",
                 "envoy/extensions/transport_sockets/tls/v3/tls.proto",
                 "envoy/extensions/upstreams/http/v3/http_protocol_options.proto"]
        fds = compile_set(os.path.join(self.api.dir, "config.pb"), self.api.roots, files,
                          self.api.wkt)
        pool = descriptor_pool.DescriptorPool()
        for fd in fds.file:  # dependency order, imports included
            pool.Add(fd)
        d = pool.FindMessageTypeByName("envoy.config.bootstrap.v3.Bootstrap")
        cls = (message_factory.GetMessageClass(d) if hasattr(message_factory, "GetMessageClass")
               else message_factory.MessageFactory(pool).GetPrototype(d))
        with open(conf) as f:
            doc = yaml.safe_load(f)
        # Unknown fields, wrong types, unknown enum names and unresolvable
        # "@type"s are refused by ParseDict.
        boot = json_format.ParseDict(doc, cls(), descriptor_pool=pool)
        hcm_any = boot.static_resources.listeners[0].filter_chains[0].filters[0].typed_config
        self.assertTrue(hcm_any.type_url.endswith("HttpConnectionManager"))
        # And a typo is caught: the check is real.
        doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
            "typed_config"]["forward_client_cert_detail"] = "SANITIZE_SET"
        with self.assertRaises(json_format.ParseError):
            json_format.ParseDict(doc, cls(), descriptor_pool=pool)


class EnvoyDisabledTest(unittest.TestCase):
    def test_disabled_is_unimplemented(self):
        srv = fh.certval_server("frontends:\n  envoy:\n    enabled: false\n")
        try:
            srv.start()
            call = srv.channel.unary_unary(METHOD, request_serializer=lambda b: b,
                                           response_deserializer=lambda b: b)
            with self.assertRaises(grpc.RpcError) as e:
                call(b"", timeout=10)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
