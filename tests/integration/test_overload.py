"""Integration tests of issue 9: overload, deadlines and hostile input.

The real certvald on 127.0.0.1, one worker and the verdict cache off, so
that one batch of 4096 chains keeps the worker busy for a while (about a
second here) and work queued behind it can be watched: dropped when its
deadline passes or its client cancels, refused at admission, abandoned by
a drain. No test asserts a speed; the drain tests assert the bounds that
issue 9 names (exit within grace + 1 s, NOT_SERVING soon after SIGTERM).
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certval_harness as h  # noqa: E402

pb, health_pb2 = h.stubs()
import grpc  # noqa: E402

BUSY = 4096  # chains of the batch that keeps the one worker busy (about 1 s)

ONE_WORKER = "threads:\n  workers: 1\nverdict_cache:\n  max_entries: 0\n"


def limits_yaml(**kv):
    kv.setdefault("max_chains_per_batch", BUSY)
    return "limits:\n" + "".join("  %s: %d\n" % (k, v) for k, v in kv.items())


def set_grace(srv, seconds):
    with open(srv.config) as f:
        text = f.read()
    text = text.replace("drain_grace_seconds: 5", "drain_grace_seconds: %d" % seconds)
    with open(srv.config, "w") as f:
        f.write(text)
    srv.grace = seconds


class Base(unittest.TestCase):
    def start(self, extra=None, grace=None):
        srv = h.Server(extra_yaml=ONE_WORKER + (extra or limits_yaml()))
        self.addCleanup(srv.cleanup)
        if grace is not None:
            set_grace(srv, grace)
        return srv.start()

    def validate_on_connections(self, srv, n,
                                serializer=pb.ValidateRequest.SerializeToString):
        """Validate stubs on |n| connections of their own (each channel its
        own subchannel), connected; closed at the test's end. |serializer|
        None sends the request's bytes as they are."""
        calls = []
        for i in range(n):
            c = grpc.insecure_channel(srv.target, options=[
                ("grpc.use_local_subchannel_pool", 1), ("certval.test.channel", i)])
            self.addCleanup(c.close)
            grpc.channel_ready_future(c).result(timeout=10)
            calls.append(c.unary_unary("/certval.v1.Validator/Validate",
                                       request_serializer=serializer or (lambda b: b),
                                       response_deserializer=pb.ValidateResponse.FromString))
        return calls

    def busy_request(self, srv, n=BUSY, user="busy"):
        c = srv.chain("tenant-acme-chain.pem", "acme", user=user)
        return pb.ValidateRequest(chains=[c] * n)

    def denied_request(self, srv, user, n=4):
        # DENY verdicts are audited by default: a line with |user| proves
        # the chains were validated.
        c = srv.chain("rogue-client-chain.pem", "acme", user=user)
        return pb.ValidateRequest(chains=[c] * n)

    def wait_audit_line(self, srv, user, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if user in srv.logs():
                return True
            time.sleep(0.05)
        return False


class DeadlineTest(Base):
    """Item 1: work of a call past its deadline or cancelled is never validated."""

    def test_expired_and_cancelled_calls_are_not_validated(self):
        srv = self.start(limits_yaml(max_inflight_chains=100000,
                                     max_queued_chains_per_worker=100000,
                                     max_inflight_request_bytes=64 << 20))
        call = srv.validate_call()
        # Three busy batches queued on the one worker: with the rebuilt
        # BoringSSL and the link cache one batch can take under 0.3 s, and
        # the late call's deadline must pass while it still waits.
        busies = [call.future(self.busy_request(srv), timeout=60) for _ in range(3)]
        busy = busies[-1]
        time.sleep(0.1)  # the busy batches are queued on the worker
        # Admitted: a fresh server has no measured chain cost yet (it is
        # learnt when a slice ends), so admission cannot foresee the wait;
        # the deadline then passes while the call is queued.
        late = call.future(self.denied_request(srv, "late-user"), timeout=0.2)
        gone = call.future(self.denied_request(srv, "gone-user"), timeout=60)
        time.sleep(0.05)
        gone.cancel()
        with self.assertRaises(grpc.RpcError) as e:
            late.result()
        self.assertEqual(e.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertTrue(gone.cancelled())
        self.assertFalse(busy.done(), "the busy batches finished too soon for this test")
        for b in busies:
            self.assertEqual(len(b.result().verdicts), BUSY)
        # A call queued after both is validated: its audit line shows that
        # the worker went past the dropped work.
        after = call(self.denied_request(srv, "after-user"), timeout=30)
        self.assertEqual(after.verdicts[0].decision, pb.Decision.DECISION_DENY)
        self.assertTrue(self.wait_audit_line(srv, "after-user"), srv.logs())
        logs = srv.logs()
        self.assertNotIn("late-user", logs, "a call past its deadline was validated")
        self.assertNotIn("gone-user", logs, "a cancelled call was validated")


    def test_cancelled_call_memory_is_released_at_once(self):
        # A queued call three busy batches large, cancelled by its client:
        # its request bytes (certval_inflight_request_bytes) must go within
        # WINDOW of the cancel, while the worker is still on the busy
        # batches. Without the release at cancel they only go as busy
        # batches end, at most one busy batch's worth in WINDOW (one takes
        # 0.3 s or more here), so the drop of three cannot be mistaken.
        WINDOW = 0.25
        srv = self.start(limits_yaml(max_inflight_chains=100000,
                                     max_queued_chains_per_worker=100000,
                                     max_chains_per_batch=3 * BUSY,
                                     max_message_bytes=32 << 20,
                                     max_inflight_request_bytes=256 << 20) +
                         "metrics:\n  listen: \"127.0.0.1:0\"\n")
        call = srv.validate_call()

        def held():
            return srv.scrape()[("certval_inflight_request_bytes", frozenset())]

        self.assertEqual(held(), 0)
        busies = [call.future(self.busy_request(srv), timeout=60) for _ in range(4)]
        busy_size = self.busy_request(srv).ByteSize()
        big = self.busy_request(srv, n=3 * BUSY, user="big-gone-user")
        size = big.ByteSize()

        def wait_held(n):
            deadline = time.time() + 10
            while held() < n and time.time() < deadline:
                time.sleep(0.01)
            return held()

        # Every busy batch admitted (one may be running), then the big one.
        self.assertGreaterEqual(wait_held(3 * busy_size), 3 * busy_size, "busy calls not admitted")
        gone = call.future(big, timeout=60)
        self.assertGreaterEqual(wait_held(3 * busy_size + size), 3 * busy_size + size,
                                "the big call was never admitted")
        self.assertTrue(wait_held(4 * busy_size + size) >= 3 * busy_size + size)
        before = held()
        t0 = time.monotonic()
        gone.cancel()
        after = held()
        while after > before - size and time.monotonic() - t0 < WINDOW:
            time.sleep(0.005)
            after = held()
        took = time.monotonic() - t0
        self.assertLessEqual(after, before - size,
                             "%d of the cancelled call's bytes still held %.3f s after the "
                             "cancel (%d held before)" % (size, took, before))
        self.assertFalse(busies[-1].done(), "the busy batches finished before the check")
        print("cancel: %d request bytes released %.3f s after the cancel" % (size, took),
              file=sys.stderr)
        for b in busies:
            self.assertEqual(len(b.result().verdicts), BUSY)
        self.assertEqual(held(), 0)
        self.assertNotIn("big-gone-user", srv.logs())

class AdmissionTest(Base):
    """Item 2: over a bound a new call gets RESOURCE_EXHAUSTED at once."""

    def refused_while_busy(self, srv, request, expect_bound):
        call = srv.validate_call()
        busy = call.future(self.busy_request(srv), timeout=60)
        time.sleep(0.1)
        t0 = time.time()
        with self.assertRaises(grpc.RpcError) as e:
            call(request, timeout=30)
        refused_after = time.time() - t0
        self.assertEqual(e.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED,
                         e.exception.details())
        self.assertIn(expect_bound, e.exception.details())
        # At once: answered while the busy batch still runs, not after it.
        self.assertFalse(busy.done(), "refused only after %.2f s" % refused_after)
        self.assertEqual(len(busy.result().verdicts), BUSY)
        # Service resumes as soon as the work is done.
        ok = srv.validate([srv.chain("tenant-acme-chain.pem", "acme")])
        self.assertEqual(ok.verdicts[0].decision, pb.Decision.DECISION_REQUIRE_PASSWORD)

    def test_inflight_chains_bound(self):
        srv = self.start(limits_yaml(max_inflight_chains=64))
        self.refused_while_busy(srv, self.denied_request(srv, "x"), "limits.max_inflight_chains")

    def test_queued_chains_per_worker_bound(self):
        srv = self.start(limits_yaml(max_queued_chains_per_worker=32, max_inflight_chains=100000))
        self.refused_while_busy(srv, self.denied_request(srv, "x"),
                                "limits.max_queued_chains_per_worker")

    def test_queue_delay_bound(self):
        srv = self.start(limits_yaml(max_queue_delay_ms=50, max_inflight_chains=100000,
                                     max_queued_chains_per_worker=100000))
        # A first batch teaches the server what a chain costs.
        self.assertEqual(len(srv.validate_call()(self.busy_request(srv), timeout=60).verdicts),
                         BUSY)
        self.refused_while_busy(srv, self.denied_request(srv, "x"), "limits.max_queue_delay_ms")

    def test_work_that_would_end_after_its_deadline_is_refused(self):
        srv = self.start(limits_yaml(max_inflight_chains=100000,
                                     max_queued_chains_per_worker=100000,
                                     max_inflight_request_bytes=64 << 20) +
                         "metrics:\n  listen: \"127.0.0.1:0\"\n")
        call = srv.validate_call()

        def validated():
            return sum(v for (name, _), v in srv.scrape().items()
                       if name == "certval_verdicts_total")

        # A first batch teaches the server what a chain costs.
        t0 = time.time()
        self.assertEqual(len(call(self.busy_request(srv), timeout=60).verdicts), BUSY)
        took = time.time() - t0
        before = validated()
        self.assertGreaterEqual(before, BUSY)
        # The idle server: the same work with a quarter of that time left
        # cannot end in time. Refused at once and not validated, instead of
        # being worked on until its deadline passes.
        left = max(took / 4, 0.05)
        t0 = time.time()
        with self.assertRaises(grpc.RpcError) as e:
            call(self.busy_request(srv), timeout=left)
        refused_after = time.time() - t0
        self.assertEqual(e.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED,
                         e.exception.details())
        self.assertIn("call's deadline", e.exception.details())
        self.assertLess(refused_after, left, "not refused before the deadline")
        time.sleep(0.2)
        self.assertEqual(validated(), before, "work refused for its deadline was validated")
        # With time enough, the same work is served.
        self.assertEqual(len(call(self.busy_request(srv), timeout=60).verdicts), BUSY)
        self.assertEqual(validated(), before + BUSY)

    def test_request_bytes_bound_before_parsing(self):
        srv = self.start(limits_yaml(max_inflight_request_bytes=65536, max_inflight_chains=100000,
                                     max_queued_chains_per_worker=100000))
        # Not even a valid request: refused for its size before it is parsed.
        raw = srv.channel.unary_unary("/certval.v1.Validator/Validate",
                                      request_serializer=lambda b: b,
                                      response_deserializer=pb.ValidateResponse.FromString)
        call = srv.validate_call()
        busy = call.future(self.busy_request(srv), timeout=60)
        time.sleep(0.1)
        with self.assertRaises(grpc.RpcError) as e:
            raw(b"\xff" * 100000, timeout=30)
        self.assertEqual(e.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED,
                         e.exception.details())
        self.assertIn("limits.max_inflight_request_bytes", e.exception.details())
        self.assertFalse(busy.done())
        self.assertEqual(len(busy.result().verdicts), BUSY)
        # Idle again: the same garbage is parsed and refused as garbage.
        with self.assertRaises(grpc.RpcError) as e:
            raw(b"\xff" * 100000, timeout=30)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_rss_stays_bounded_under_a_flood_of_large_requests(self):
        srv = self.start()
        base = h.vm_kib(srv.proc.pid, "VmRSS")
        c = srv.chain("tenant-acme-chain.pem", "acme")
        big = pb.ValidateRequest(chains=[c] * 1000)  # about 1 MiB
        channels = [grpc.insecure_channel(srv.target, options=[
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.max_send_message_length", 8 << 20)]) for _ in range(4)]
        futures = []
        try:
            for ch in channels:
                call = ch.unary_unary("/certval.v1.Validator/Validate",
                                      request_serializer=pb.ValidateRequest.SerializeToString,
                                      response_deserializer=pb.ValidateResponse.FromString)
                futures += [call.future(big, timeout=20) for _ in range(60)]
            codes = {}
            for f in futures:
                try:
                    f.result()
                    code = grpc.StatusCode.OK
                except grpc.RpcError as e:
                    code = e.code()
                codes[code] = codes.get(code, 0) + 1
        finally:
            for f in futures:
                f.cancel()
            for ch in channels:
                ch.close()
        peak = h.vm_kib(srv.proc.pid, "VmHWM")
        # 240 MiB offered at once: most are refused, RSS stays far below.
        self.assertIn(grpc.StatusCode.RESOURCE_EXHAUSTED, codes)
        self.assertLess(peak, 256 * 1024, "peak RSS %d KiB (from %d), answers %r" %
                        (peak, base, codes))
        print("flood: peak RSS %d KiB (from %d), answers %r" % (peak, base, codes),
              file=sys.stderr)


    def flood_of_4mib_messages(self, srv, connections, streams):
        """|connections| connections each opening |streams| calls of a message
        just under 4 MiB at once (more chains than a batch may hold, so any
        call that gets through admission is refused after unpacking).
        Returns ({answer: count}, peak RSS of certvald in KiB)."""
        c = srv.chain("tenant-acme-chain.pem", "acme")
        data = pb.ValidateRequest(chains=[c] * 8000).SerializeToString()
        self.assertLess(len(data), 4 << 20)
        calls = self.validate_on_connections(srv, connections, serializer=None)
        peak = [h.vm_kib(srv.proc.pid, "VmRSS")]
        done = threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], h.vm_kib(srv.proc.pid, "VmRSS"))
                time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        watcher.start()
        futures, codes = [], {}
        try:
            for call in calls:
                futures += [call.future(data, timeout=30) for _ in range(streams)]
            for f in futures:
                try:
                    f.result()
                    key = "OK"
                except grpc.RpcError as e:
                    key = "%s: %s" % (e.code().name, e.details())
                codes[key] = codes.get(key, 0) + 1
        finally:
            done.set()
            watcher.join()
            for f in futures:
                f.cancel()
        return codes, max(peak[0], h.vm_kib(srv.proc.pid, "VmHWM"))

    def test_transport_memory_quota_cancels_streams_of_a_flood(self):
        # gRPC reads a Validate message whole before admission sees the
        # call: 4 connections x 50 streams x 4 MiB (800 MiB offered at once)
        # peaked at about 160 MiB here without a quota. With an 8 MiB one,
        # gRPC cancels streams (ENHANCE_YOUR_CALM, RESOURCE_EXHAUSTED at the
        # client) and closes connections (UNAVAILABLE, retryable): about
        # 40 MiB.
        srv = self.start(limits_yaml(max_transport_memory_bytes=8 << 20))
        self.assertIn("gRPC memory quota 8388608 bytes", srv.logs())
        base = h.vm_kib(srv.proc.pid, "VmRSS")
        codes, peak = self.flood_of_4mib_messages(srv, 4, 50)
        print("quota flood: peak RSS %d KiB (from %d), answers %r" % (peak, base, codes),
              file=sys.stderr)
        by_transport = sum(n for k, n in codes.items()
                           if k.startswith("RESOURCE_EXHAUSTED: Received RST_STREAM") or
                           k.startswith("UNAVAILABLE"))
        self.assertGreater(by_transport, 0, "the quota never acted: %r" % codes)
        self.assertFalse([k for k in codes if not k.startswith(("RESOURCE_EXHAUSTED",
                                                                 "UNAVAILABLE"))], codes)
        with open("/proc/%d/maps" % srv.proc.pid) as f:
            sanitized = "libasan" in f.read()  # its quarantine keeps freed buffers resident
        if not sanitized:
            self.assertLess(peak - base, 100 * 1024, "peak RSS %d KiB (from %d)" % (peak, base))
        # The service goes on: new connections and calls are served.
        ok = srv.validate([srv.chain("tenant-acme-chain.pem", "acme")])
        self.assertEqual(ok.verdicts[0].decision, pb.Decision.DECISION_REQUIRE_PASSWORD)

    def test_transport_memory_quota_below_a_message_is_refused(self):
        srv = h.Server(extra_yaml=ONE_WORKER + limits_yaml(max_transport_memory_bytes=1 << 20))
        self.addCleanup(srv.cleanup)
        out = subprocess.run([h.CERTVALD, "--check-config", srv.config],
                             capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("limits.max_transport_memory_bytes", out.stderr + out.stdout)


class CompressionTest(Base):
    """Item 3: a compressed request is refused without inflating it."""

    def test_gzip_bomb_is_refused_without_inflating(self):
        srv = self.start()
        before = h.vm_kib(srv.proc.pid, "VmHWM")
        c = pb.ChainRequest(id=1, certificates=[b"\0" * (96 << 20)], tenant_id="acme")
        data = pb.ValidateRequest(chains=[c]).SerializeToString()
        raw = srv.channel.unary_unary("/certval.v1.Validator/Validate",
                                      request_serializer=lambda b: b,
                                      response_deserializer=lambda b: b)
        with self.assertRaises(grpc.RpcError) as e:
            raw(data, timeout=30, compression=grpc.Compression.Gzip)
        self.assertIn(e.exception.code(), (grpc.StatusCode.UNIMPLEMENTED,
                                           grpc.StatusCode.RESOURCE_EXHAUSTED))
        grown = h.vm_kib(srv.proc.pid, "VmHWM") - before
        self.assertLess(grown, 32 * 1024, "inflated: peak RSS grew by %d KiB" % grown)
        # Uncompressed calls still work.
        ok = srv.validate([srv.chain("tenant-acme-chain.pem", "acme")])
        self.assertEqual(len(ok.verdicts), 1)


class DrainUnderOverloadTest(Base):
    """Item 4: SIGTERM exits within grace + 1 s whatever the queue holds."""

    def test_sigterm_with_a_full_queue(self):
        grace = 1
        srv = self.start(limits_yaml(max_queued_chains_per_worker=100000,
                                     max_inflight_chains=100000), grace=grace)
        S = health_pb2.HealthCheckResponse
        watch_it = srv.watch_health()
        self.assertEqual(next(watch_it).status, S.SERVING)
        call = srv.validate_call()
        # Several seconds of work for the one worker, far more than the grace.
        queued = [call.future(self.busy_request(srv), timeout=60) for _ in range(6)]
        time.sleep(0.3)
        not_serving_at = []

        def watcher():
            try:
                for m in watch_it:
                    if m.status == S.NOT_SERVING:
                        not_serving_at.append(time.monotonic())
                        return
            except grpc.RpcError:
                pass

        w = threading.Thread(target=watcher)
        w.start()
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        try:
            rc = srv.proc.wait(timeout=grace + 15)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
        w.join(10)
        self.assertEqual(rc, 0, srv.logs())
        self.assertLess(took, grace + 1.0, "exit %.2f s after SIGTERM, grace %d s" %
                        (took, grace))
        # The 100 ms of issue 9. The server's own log first: its signal
        # thread logs the SIGTERM and the health change (millisecond
        # timestamps), which no client-side scheduling can blur. Then what
        # a watcher sees, from the signal sent to the message read: 1-4 ms
        # measured here while other builds loaded both cores, so 100 ms
        # leaves a margin of 25x for the Python watcher thread's wake-up.
        self.assertTrue(not_serving_at, "health never turned NOT_SERVING")
        print("drain: NOT_SERVING seen %.3f s after SIGTERM, exit after %.2f s" %
              (not_serving_at[0] - t0, took), file=sys.stderr)
        logged = {}
        for line in srv.log_lines():
            if line.get("msg") in ("SIGTERM: draining", "health: NOT_SERVING"):
                logged.setdefault(line["msg"], line["ts"])
        self.assertEqual(len(logged), 2, srv.logs())

        def ts_s(ts):  # "2026-12-02T14:22:15.213Z" -> seconds of the day
            hms = ts.split("T")[1].rstrip("Z").split(":")
            return int(hms[0]) * 3600 + int(hms[1]) * 60 + float(hms[2])
        gap = ts_s(logged["health: NOT_SERVING"]) - ts_s(logged["SIGTERM: draining"])
        self.assertLessEqual(gap, 0.1, "server turned NOT_SERVING %.3f s after SIGTERM" % gap)
        # The watcher's view adds the Python client's own scheduling: 188 ms
        # was seen under ASan with both cores loaded, so it gets a looser
        # bound; the 100 ms is the server's, asserted just above.
        self.assertLess(not_serving_at[0] - t0, 0.5)
        codes = []
        for f in queued:
            try:
                f.result()
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as e:
                codes.append(e.code())
        self.assertNotIn(grpc.StatusCode.CANCELLED, codes)
        self.assertIn(grpc.StatusCode.UNAVAILABLE, codes)
        for c in codes:
            self.assertIn(c, (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE))

    def test_every_call_certval_received_ends_ok_or_unavailable(self):
        # A burst of 3200 calls on 32 connections (100 streams each, all on
        # the wire), queued behind several seconds of work, then SIGTERM with a
        # grace of 1 s. Every call must end OK or UNAVAILABLE, never
        # CANCELLED; some must get certval's UNAVAILABLE "server shutting
        # down ..." at the grace's end. Work is in flight until then, so
        # gRPC's shutdown (which ends the calls that reach it with
        # CANCELLED) never starts while a connection is open: certvald cuts
        # them first (server_drain_cut). Calls certval never received (the
        # counter certval_calls_received_total and the "drain done" log
        # line) end UNAVAILABLE with the connection.
        grace = 1
        srv = self.start(limits_yaml(max_queued_chains_per_worker=100000,
                                     max_inflight_chains=100000,
                                     max_queue_delay_ms=600000) +
                         "metrics:\n  listen: \"127.0.0.1:0\"\n", grace=grace)
        n_ch, per_ch = 32, 100
        calls = self.validate_on_connections(srv, n_ch)
        # Six busy batches: two were about 2 s of work with Debian's
        # BoringSSL, but with the rebuilt one (fast P-256) the burst was all
        # answered within the grace, so no call was left for the UNAVAILABLE.
        busy = [calls[0].future(self.busy_request(srv), timeout=60) for _ in range(6)]
        time.sleep(0.3)
        before = srv.scrape()[("certval_calls_received_total", frozenset())]
        small = pb.ValidateRequest(chains=[srv.chain("tenant-acme-chain.pem", "acme")])
        burst = [calls[i % n_ch].future(small, timeout=30) for i in range(n_ch * per_ch)]
        time.sleep(0.2)
        srv.proc.send_signal(signal.SIGTERM)
        self.assertEqual(srv.proc.wait(timeout=grace + 15), 0, srv.logs())
        for f in busy:
            f.exception(timeout=20)
        answered, gone, codes = 0, 0, {}
        for f in burst:
            e = f.exception(timeout=20)
            code = grpc.StatusCode.OK if e is None else e.code()
            key = code.name if e is None else "%s %s" % (code.name, e.details()[:60])
            codes[key] = codes.get(key, 0) + 1
            if code == grpc.StatusCode.OK or (code == grpc.StatusCode.UNAVAILABLE and
                                              e.details().startswith("server shutting down")):
                answered += 1
            elif code == grpc.StatusCode.CANCELLED:
                gone += 1
        done = [line["msg"] for line in srv.log_lines()
                if line.get("msg", "").startswith("drain done: ")]
        self.assertEqual(len(done), 1, srv.logs())
        received = int(done[0].split()[2]) - int(before)
        print("drain burst: %s; certval received %d of %d, answered %d; %d CANCELLED, "
              "none of them received by certval" % (codes, received, len(burst), answered, gone),
              file=sys.stderr)
        self.assertGreater(received, 0)
        self.assertTrue([k for k in codes if k.startswith("UNAVAILABLE server")], codes)
        # (A received call can also end UNAVAILABLE "Socket closed" when
        # the connection goes before its answer is read: retryable, so
        # allowed.)
        self.assertEqual(gone, 0, codes)
        for key in codes:
            self.assertIn(key.split()[0], ("OK", "UNAVAILABLE"), codes)

    def test_calls_arriving_at_sigterm_get_no_cancelled(self):
        # Issue 9 item 4: calls that keep coming when SIGTERM arrives. A
        # closed loop of 1600 calls on 32 connections (each answer sends the
        # next, from the verdict cache, thousands a second), SIGTERM 0.5 s
        # in, grace 1 s. gRPC 1.51 ends with CANCELLED every call whose
        # headers it reads after its shutdown began (and that the client
        # sent before reading the GOAWAY); certvald keeps accepting, answers
        # each call itself and cuts the connections before it starts that
        # shutdown (service_drain.c, server_drain_cut). Every call must end
        # OK or UNAVAILABLE. With the shutdown at SIGTERM (the old drain)
        # 267-1580 calls a run were CANCELLED here (4 runs).
        grace = 1
        srv = h.Server(extra_yaml="threads:\n  workers: 1\n" + limits_yaml(
            max_queued_chains_per_worker=100000, max_inflight_chains=100000,
            max_queue_delay_ms=600000))
        self.addCleanup(srv.cleanup)
        set_grace(srv, grace)
        srv.start()
        n_ch, n_loop = 32, 1600
        calls = self.validate_on_connections(srv, n_ch)
        small = pb.ValidateRequest(chains=[srv.chain("tenant-acme-chain.pem", "acme")])
        lock, codes, ended = threading.Lock(), {}, threading.Semaphore(0)

        def again(i):
            def done(f):
                e = f.exception()
                key = "OK" if e is None else "%s %s" % (e.code().name, e.details()[:30])
                with lock:
                    codes[key] = codes.get(key, 0) + 1
                # A loop ends once its channel cannot reach the server any
                # more: the drain is over (bounded by the server's exit).
                if e is not None and e.code() == grpc.StatusCode.UNAVAILABLE and \
                        "connect" in e.details():
                    ended.release()
                    return
                calls[i].future(small, timeout=30).add_done_callback(done)
            return done
        for i in range(n_loop):
            calls[i % n_ch].future(small, timeout=30).add_done_callback(again(i % n_ch))
        time.sleep(0.5)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        rc = srv.proc.wait(timeout=grace + 15)
        took = time.monotonic() - t0
        for _ in range(n_loop):
            self.assertTrue(ended.acquire(timeout=30), codes)
        print("drain under a closed loop: exit %.2f s after SIGTERM; %s" % (took, codes),
              file=sys.stderr)
        self.assertEqual(rc, 0, srv.logs())
        self.assertLess(took, grace + 1.0)
        self.assertGreater(codes.get("OK", 0), n_loop, codes)
        self.assertFalse([k for k in codes if k.startswith("CANCELLED")], codes)
        for key in codes:
            self.assertIn(key.split()[0], ("OK", "UNAVAILABLE"), codes)

    def test_open_loop_until_the_grace_ends_gets_no_cancelled(self):
        # Item 4 under a load that does not wait for its answers (an open
        # loop, as a storm of new logins is): calls keep coming at a steady
        # rate through the whole grace, whatever they are answered, so there
        # is never a moment when none is on its way. gRPC's shutdown would
        # end those that reach it with CANCELLED: with the cut taken out
        # (that shutdown started with the connections open), 1-2 a run here,
        # 3 runs of 3. (The drain before the cut, which held answers and
        # waited for a 30 ms lull, passed this Python load but not
        # certval-load's faster one: 2-3 CANCELLED in 5 of 6 SIGTERM bursts
        # of loadtest/overload.sh.) certvald answers every call itself, then
        # cuts the connections before that shutdown: every call ends OK or
        # UNAVAILABLE.
        grace = 1
        srv = h.Server(extra_yaml=limits_yaml(max_queued_chains_per_worker=100000,
                                              max_inflight_chains=100000,
                                              max_queue_delay_ms=600000))
        self.addCleanup(srv.cleanup)
        set_grace(srv, grace)
        srv.start()
        n_ch, period = 8, 0.0005  # about 2,000 calls/s offered, whatever comes back
        calls = self.validate_on_connections(srv, n_ch)
        small = pb.ValidateRequest(chains=[srv.chain("tenant-acme-chain.pem", "acme")])
        lock, codes, futures = threading.Lock(), {}, []
        stop = threading.Event()

        def done(f):
            e = f.exception()
            key = "OK" if e is None else "%s %s" % (e.code().name, e.details()[:40])
            with lock:
                codes[key] = codes.get(key, 0) + 1

        def sender():
            i, t = 0, time.monotonic()
            while not stop.is_set():
                f = calls[i % n_ch].future(small, timeout=5)
                f.add_done_callback(done)
                futures.append(f)
                i += 1
                t += period
                pause = t - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        th = threading.Thread(target=sender)
        th.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        rc = srv.proc.wait(timeout=grace + 15)
        took = time.monotonic() - t0
        time.sleep(0.2)  # calls sent to a server that is gone: refused at connect
        stop.set()
        th.join(10)
        for f in futures:
            f.exception(timeout=20)
        print("drain under an open loop: exit %.2f s after SIGTERM; %s" % (took, codes),
              file=sys.stderr)
        self.assertEqual(rc, 0, srv.logs())
        self.assertLess(took, grace + 1.0)
        # Calls kept coming: no quiet moment before the connections were cut.
        self.assertIn("drain: calls kept coming until", srv.logs())
        self.assertGreater(codes.get("OK", 0), 0, codes)
        self.assertTrue([k for k in codes if k.startswith("UNAVAILABLE")], codes)
        self.assertFalse([k for k in codes if k.startswith("CANCELLED")], codes)
        for key in codes:
            self.assertIn(key.split()[0], ("OK", "UNAVAILABLE"), codes)

    def test_drain_log_names_one_grace(self):
        # Item 10 (small): both listeners drain within the one grace.
        srv = h.Server(extra_yaml="admin:\n  listen: \"127.0.0.1:0\"\n  token_file: admin.token\n")
        self.addCleanup(srv.cleanup)
        with open(os.path.join(srv.dir, "admin.token"), "w") as f:
            f.write("t0ken-for-the-test\n")
        set_grace(srv, 3)
        srv.start()
        self.assertEqual(srv.stop(), 0)
        graces = set(re.findall(r"grace (?:of )?(\d+) s", srv.logs()))
        self.assertEqual(graces, {"3"}, srv.logs())


class ExclusiveListenerTest(Base):
    """Item 5: a second certvald on a taken port fails at start."""

    def test_second_server_on_the_same_port_fails(self):
        srv = self.start()
        second = subprocess.run([h.CERTVALD, "--config", srv.config, "--listen",
                                 "127.0.0.1:%d" % srv.port],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        out = second.stdout.decode(errors="replace")
        self.assertNotEqual(second.returncode, 0, out)
        self.assertIn(str(srv.port), out)
        # The first one still answers.
        ok = srv.validate([srv.chain("tenant-acme-chain.pem", "acme")])
        self.assertEqual(len(ok.verdicts), 1)


if __name__ == "__main__":
    unittest.main()
