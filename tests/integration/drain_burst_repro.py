"""Measurement of issue 9 item 4 (not run by ctest; about 2-5 s a run).

Small Validate calls on 32 connections (100 streams each) while certvald
drains, one worker behind one busy batch, grace 1 s. Three loads:

  burst   6000 calls sent at once, SIGTERM 0.3 s in: the 2800 beyond the
          3200 streams wait in the client, so every answer opens a new
          stream during the drain (calls keep arriving)
  sent    3200 calls, all on the wire when SIGTERM comes 0.2 s in
  flow    as burst, without the busy batch: the calls flow at full speed
          when SIGTERM comes
  cached  as flow, with the verdict cache on (answers from the transport
          threads, faster than the one worker)
  loop    a closed loop of 1600 calls (each answer sends the next) that
          runs until the server has gone, SIGTERM 0.5 s in
  cloop   as loop, without the busy batch and with the verdict cache on:
          answers at full speed when SIGTERM comes

Prints one line a run: the client's status counts, how many calls
certvald received (its "drain done" log line; the busy call and the
harness's health checks included), SIGTERM-to-exit time and certvald's
own drain log lines. A CANCELLED call would be one gRPC 1.51 ended
itself at its shutdown; the drain closes every connection before that
shutdown starts, so none is expected (docs/operations.md, "Drain").

    CERTVAL_BUILD_DIR=build /usr/bin/python3 tests/integration/drain_burst_repro.py [MODE] [RUNS]
"""
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_overload as t  # noqa: E402

grpc, pb = t.grpc, t.pb
N_CH = 32


def one_run(mode):
    workers = t.ONE_WORKER
    if mode in ("cached", "cloop"):  # answered from the verdict cache, on the transport threads
        workers = "threads:\n  workers: 1\n"
    srv = t.h.Server(extra_yaml=workers + t.limits_yaml(
        max_queued_chains_per_worker=100000, max_inflight_chains=100000,
        max_queue_delay_ms=600000))
    t.set_grace(srv, 1)
    srv.start()
    chans = []
    stop = threading.Event()
    lock = threading.Lock()
    codes = {}

    def count(f):
        e = f.exception()
        key = "OK" if e is None else "%s %s" % (e.code().name, e.details()[:24])
        with lock:
            codes[key] = codes.get(key, 0) + 1
        return e

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
            "tenant-acme-chain.pem", "acme", user="busy")] * (0 if mode in ("flow", "cached", "cloop") else t.BUSY)),
            timeout=60)
        t.time.sleep(0.1)
        small = pb.ValidateRequest(chains=[srv.chain("tenant-acme-chain.pem", "acme")])
        futs = []
        if mode in ("loop", "cloop"):
            pending = threading.Semaphore(0)

            def again(i):
                def done(f):
                    e = count(f)
                    if stop.is_set() or (e is not None and e.code() ==
                                         grpc.StatusCode.UNAVAILABLE and
                                         "connect" in e.details()):
                        pending.release()
                        return
                    calls[i].future(small, timeout=30).add_done_callback(done)
                return done
            n_loop = 1600
            for i in range(n_loop):
                calls[i % N_CH].future(small, timeout=30).add_done_callback(again(i % N_CH))
            t.time.sleep(0.5)
        else:
            n = N_CH * 100 if mode == "sent" else 6000
            futs = [calls[i % N_CH].future(small, timeout=30) for i in range(n)]
            t.time.sleep(0.2 if mode == "sent" else 0.3)
        t0 = t.time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        rc = srv.proc.wait(timeout=20)
        took = t.time.monotonic() - t0
        busy.exception(timeout=20)
        for f in futs:
            f.exception(timeout=20)
            count(f)
        if mode in ("loop", "cloop"):
            t.time.sleep(1.0)
            stop.set()
            for _ in range(n_loop):
                if not pending.acquire(timeout=20):
                    break
        done = [line["msg"] for line in srv.log_lines()
                if line.get("msg", "").startswith("drain done: ")]
        drain = [line["msg"][:60] for line in srv.log_lines()
                 if line.get("msg", "").startswith("drain: ")]
        cancelled = sum(v for k, v in codes.items() if k.startswith("CANCELLED"))
        print("%s rc %s exit %.2f s CANCELLED %d; %s; %s; %s" %
              (mode, rc, took, cancelled, dict(sorted(codes.items())),
               done[0] if done else "no drain log line", drain), flush=True)
    finally:
        stop.set()
        for c in chans:
            c.close()
        srv.cleanup()


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "burst"
    for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 1):
        one_run(mode)
