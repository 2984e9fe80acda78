"""Reproduction for issue 9 item 4 (not run by ctest; about 5 s a run).

A burst that keeps arriving while certvald drains: 6000 small calls on 32
connections (100 streams each, the rest queued in the client, so every
answer opens a new stream), one busy batch ahead of them, SIGTERM 0.3 s in,
grace 1 s. Prints the client's status counts and how many calls certvald
received (its "drain done" log line). CANCELLED calls here are never among
those certvald received: gRPC 1.51 ends them itself (docs/operations.md,
"Drain"). Measured on 2 shared cores: CANCELLED in most runs (1-51 a run).

    CERTVAL_BUILD_DIR=build /usr/bin/python3 tests/integration/drain_burst_repro.py [RUNS]
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_overload as t  # noqa: E402

grpc, pb = t.grpc, t.pb
N_CH, N_CALLS = 32, 6000


def one_run():
    srv = t.h.Server(extra_yaml=t.ONE_WORKER + t.limits_yaml(
        max_queued_chains_per_worker=100000, max_inflight_chains=100000,
        max_queue_delay_ms=600000))
    t.set_grace(srv, 1)
    srv.start()
    chans = []
    try:
        chans = [grpc.insecure_channel(srv.target, options=[
            ("grpc.use_local_subchannel_pool", 1), ("certval.test.channel", i)])
            for i in range(N_CH)]
        for c in chans:
            grpc.channel_ready_future(c).result(timeout=10)
        calls = [c.unary_unary("/certval.v1.Validator/Validate",
                               request_serializer=pb.ValidateRequest.SerializeToString,
                               response_deserializer=pb.ValidateResponse.FromString)
                 for c in chans]
        busy = calls[0].future(pb.ValidateRequest(chains=[srv.chain(
            "tenant-acme-chain.pem", "acme", user="busy")] * t.BUSY), timeout=60)
        t.time.sleep(0.1)
        small = pb.ValidateRequest(chains=[srv.chain("tenant-acme-chain.pem", "acme")])
        futs = [calls[i % N_CH].future(small, timeout=30) for i in range(N_CALLS)]
        t.time.sleep(0.3)
        srv.proc.send_signal(signal.SIGTERM)
        rc = srv.proc.wait(timeout=20)
        busy.exception(timeout=20)
        codes = {}
        for f in futs:
            e = f.exception(timeout=20)
            key = "OK" if e is None else "%s %s" % (e.code().name, e.details()[:40])
            codes[key] = codes.get(key, 0) + 1
        done = [line["msg"] for line in srv.log_lines()
                if line.get("msg", "").startswith("drain done: ")]
        print("rc %s, %s; %s (includes the busy call and health checks)" %
              (rc, codes, done[0] if done else "no drain log line"))
    finally:
        for c in chans:
            c.close()
        srv.cleanup()


if __name__ == "__main__":
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        one_run()
