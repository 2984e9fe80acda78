#!/usr/bin/python3
"""Memory under a flood of large messages (issue 9; docs/benchmarks.md,
"Memory under a flood of large messages").

Starts certvald (tests/integration/certval_harness.py: the build's binary
on 127.0.0.1, its demo-like test PKI), connects CONNECTIONS channels, then
opens CALLS calls on each at once, each with a message just under 4 MiB
(8,000 chains: more than a batch may hold, so a call that passes admission
is refused after unpacking). Prints certvald's peak RSS and the answers,
then checks that a fresh call is still served.

    /usr/bin/python3 loadtest/memflood.py [CONNECTIONS [CALLS [QUOTA_BYTES]]]

Defaults: 16 connections, 100 calls, certvald's default quota. Needs
Debian's python3-grpcio (/usr/bin/python3); CERTVAL_BUILD_DIR picks the
build (default build/). Bounded: each call has a 30 s deadline.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import certval_harness as h  # noqa: E402

pb, _ = h.stubs()
import grpc  # noqa: E402


def main():
    conns = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    extra = ("limits:\n  max_transport_memory_bytes: %d\n" % int(sys.argv[3])
             if len(sys.argv) > 3 else "")
    srv = h.Server(extra_yaml=extra)
    try:
        srv.start()
        pid = srv.proc.pid
        c = srv.chain("tenant-acme-chain.pem", "acme")
        data = pb.ValidateRequest(chains=[c] * 8000).SerializeToString()
        channels = [grpc.insecure_channel(srv.target, options=[
            ("grpc.use_local_subchannel_pool", 1), ("certval.memflood.channel", i)])
            for i in range(conns)]
        for ch in channels:
            grpc.channel_ready_future(ch).result(timeout=10)
        base = h.vm_kib(pid, "VmRSS")
        peak, done = [base], threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], h.vm_kib(pid, "VmRSS"))
                time.sleep(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        t0 = time.time()
        futures = []
        for ch in channels:
            call = ch.unary_unary("/certval.v1.Validator/Validate",
                                  request_serializer=lambda b: b,
                                  response_deserializer=pb.ValidateResponse.FromString)
            futures += [call.future(data, timeout=30) for _ in range(per)]
        codes = {}
        for f in futures:
            try:
                f.result()
                key = "OK"
            except grpc.RpcError as e:
                key = "%s %s" % (e.code().name, (e.details() or "")[:60])
            codes[key] = codes.get(key, 0) + 1
        done.set()
        watcher.join()
        print("memflood: %d connections x %d calls of %d bytes, %.1f s; certvald RSS %d KiB "
              "before, peak %d KiB (VmHWM %d KiB)" % (conns, per, len(data), time.time() - t0,
                                                      base, peak[0], h.vm_kib(pid, "VmHWM")))
        for k, n in sorted(codes.items(), key=lambda kv: -kv[1]):
            print("  %6d %s" % (n, k))
        ok = srv.validate([c])
        print("after the flood: %s" % pb.Decision.Name(ok.verdicts[0].decision))
        for ch in channels:
            ch.close()
        return 0 if ok.verdicts[0].decision == pb.Decision.DECISION_REQUIRE_PASSWORD else 1
    finally:
        srv.cleanup()


if __name__ == "__main__":
    sys.exit(main())
