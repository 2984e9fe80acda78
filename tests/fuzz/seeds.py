"""Seed corpora for the libFuzzer targets (tests/fuzz/), made fresh by CI.

  /usr/bin/python3 tests/fuzz/seeds.py BUILD_DIR OUT_DIR

OUT_DIR/pki      a demo PKI at the fuzzers' fixed time (CERTVAL_FUZZ_PKI)
OUT_DIR/crl      PKITS and demo CRLs
OUT_DIR/request  ValidateRequest messages carrying the demo chains
OUT_DIR/config   configuration files
OUT_DIR/deny     saved deny lists
OUT_DIR/nc       NameConstraints + GeneralNames inputs (fuzz_name_constraints.c)
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

FUZZ_NOW = "1800000000"  # tests/fuzz/fuzz_request.c


def main(build, out):
    src = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    pkits = os.path.join(src, "..", "shared", "testdata", "pkits")
    for d in ("crl", "request", "config", "deny", "nc"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    pki = os.path.join(out, "pki")
    subprocess.run([os.path.join(build, "server", "certvalctl"), "demo-pki", "--dir", pki,
                    "--at", FUZZ_NOW], check=True, stdout=subprocess.DEVNULL)

    crls = sorted(glob.glob(os.path.join(pkits, "crls", "*.crl")))[:60]
    for f in crls + glob.glob(os.path.join(pki, "*.crl")):
        shutil.copy(f, os.path.join(out, "crl", os.path.basename(f)))

    sys.path.insert(0, os.path.join(src, "tests", "integration"))
    import certval_harness as h
    pb, _ = h.stubs()
    claims = {"tenant": [("acme", ""), ("globex", "")],
              "device": [("acme", "dev-001"), ("globex", "dev-002"), ("acme", "dev-999")]}
    every = []
    for i, chain in enumerate(sorted(glob.glob(os.path.join(pki, "*-chain.pem")))):
        kind = "device" if "device" in chain else "tenant"
        ders = h.read_pem_chain(chain)
        for j, (tenant, device) in enumerate(claims[kind]):
            c = pb.ChainRequest(id=i * 10 + j, certificates=ders, tenant_id=tenant,
                                device_id=device, user_id="fuzz")
            every.append(c)
            with open(os.path.join(out, "request", "chain%02d_%d" % (i, j)), "wb") as f:
                f.write(pb.ValidateRequest(chains=[c]).SerializeToString())
    with open(os.path.join(out, "request", "all"), "wb") as f:
        f.write(pb.ValidateRequest(chains=every).SerializeToString())

    shutil.copy(os.path.join(pki, "certval.yaml"), os.path.join(out, "config", "demo.yaml"))
    for name in ("configmap",):
        text = open(os.path.join(src, "deploy", "k8s", "base", "configmap.yaml")).read()
        body = text.split("certval.yaml: |\n", 1)[1]
        lines = [l[4:] if l.startswith("    ") else l for l in body.splitlines()]
        with open(os.path.join(out, "config", name + ".yaml"), "w") as f:
            f.write("\n".join(lines) + "\n")

    issuer = "ab" * 32
    with open(os.path.join(out, "deny", "two"), "w") as f:
        f.write("certval-deny-list 1\n")
        f.write("serial %s 0a0b0c 1700000000 0 %s\n" % (issuer, "lost".encode().hex()))
        f.write("leaf %s 1700000000 1900000000 -\n" % ("cd" * 32))
        f.write("end 2\n")
    with open(os.path.join(out, "deny", "empty"), "w") as f:
        f.write("certval-deny-list 1\nend 0\n")
    name_constraint_seeds(os.path.join(out, "nc"))


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        head = bytes([tag, n])
    else:
        size = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([tag, 0x80 | len(size)]) + size
    return head + content


def name_constraint_seeds(out):
    """[2-byte length][NameConstraints DER][GeneralNames DER], DER by hand:
    [7] iPAddress 0x87, [1] rfc822Name 0x81, [2] dNSName 0x82."""
    ip4 = tlv(0x87, bytes([10, 0, 0, 0, 255, 0, 0, 0]))
    ip6 = tlv(0x87, bytes.fromhex("20010db8" + "00" * 12 + "ffffffff" + "00" * 12))
    mail = tlv(0x81, b".example.com")
    box = tlv(0x81, b"a@example.com")
    dns = tlv(0x82, b"example.com")
    sub = lambda base: tlv(0x30, base)
    seeds = {
        "ip_permit": (tlv(0xA0, sub(ip4) + sub(ip6)), [tlv(0x87, bytes([10, 1, 2, 3])),
                                                       tlv(0x87, bytes.fromhex("20010db8" + "00" * 11 + "01"))]),
        "mixed": (tlv(0xA0, sub(ip4) + sub(mail) + sub(dns)) + tlv(0xA1, sub(box)),
                  [tlv(0x87, bytes([11, 0, 0, 1])), tlv(0x81, b"a@mail.example.com"),
                   tlv(0x82, b"a.example.com")]),
        "excl": (tlv(0xA1, sub(ip4) + sub(box)), [tlv(0x81, b"a@EXAMPLE.com")]),
    }
    for name, (subtrees, names) in seeds.items():
        nc = tlv(0x30, subtrees)
        with open(os.path.join(out, name), "wb") as f:
            f.write(len(nc).to_bytes(2, "big") + nc + tlv(0x30, b"".join(names)))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: seeds.py BUILD_DIR OUT_DIR")
    main(sys.argv[1], sys.argv[2])
