"""Calls the client cancels are logged and counted as CANCELLED (issue 17, item 11: 66 of 500 cancelled
TranslateStream calls were logged as UNKNOWN and one as OK)."""

from __future__ import annotations

import logging
import threading

import grpc

from tarjama.server.edges.access_log import TextFormatter
from tarjama.server.pipeline import TranslationPipeline
from tarjama.server.runtime import Models
from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

from conftest import InProcessServer
from fakes import FakeEngine

CALLS = 100


class AccessLines(logging.Handler):
    """The text access lines of one method, as `--log-format text` writes them."""

    def __init__(self, method: str) -> None:
        super().__init__(logging.INFO)
        self.method = method
        self.setFormatter(TextFormatter())
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        if self.method in record.getMessage():
            with self.changed:
                self.lines.append(self.format(record))
                self.changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> list[str]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.lines) >= count, timeout)
            return list(self.lines)


def test_streams_cancelled_mid_way_are_logged_and_counted_as_cancelled(base_settings) -> None:
    server = InProcessServer(base_settings, load=lambda s: Models(TranslationPipeline(FakeEngine(), s)))
    access = logging.getLogger("tarjama.access")
    lines = AccessLines("/tarjama.v1.Translator/TranslateStream")
    level = access.level
    access.setLevel(logging.INFO)
    access.addHandler(lines)
    try:
        server.wait_serving()
        # 40 paragraphs of one long sentence: about 180 kB of answers, more than the client's flow-control
        # window holds, so a client that stops reading leaves the server blocked mid-stream (the
        # cancellation then reaches it in grpc's write, not in the servicer: logged UNKNOWN before).
        words = " ".join(["المتحدث"] * 150)
        request = pb.TranslateRequest(paragraphs=[f"قال {words} رقم {i}." for i in range(40)])
        with grpc.insecure_channel(server.address, options=[("grpc.http2.bdp_probe", 0)]) as channel:
            stub = pb_grpc.TranslatorStub(channel)
            calls = [stub.TranslateStream(request, timeout=60) for _ in range(CALLS)]
            for call in calls:  # each has had its first paragraph; the rest is still coming
                assert next(call).paragraphs
            for call in calls:
                call.cancel()
            assert {call.code() for call in calls} == {grpc.StatusCode.CANCELLED}
            logged = lines.wait_for(CALLS, 30)
            # One whose deadline passes while it is blocked the same way is DEADLINE_EXCEEDED, as its client sees.
            late = stub.TranslateStream(request, timeout=1.0)
            assert next(late).paragraphs
            expired = lines.wait_for(CALLS + 1, 30)[CALLS:]
            assert late.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # The server still answers afterwards.
            done = list(stub.TranslateStream(pb.TranslateRequest(text="قال الوزير."), timeout=30))
            assert done[-1].done
    finally:
        access.removeHandler(lines)
        access.setLevel(level)
        server.stop()
    statuses = [line.split("TranslateStream ", 1)[1].split(" ", 1)[0] for line in logged[:CALLS]]
    assert statuses == ["CANCELLED"] * CALLS, {s: statuses.count(s) for s in set(statuses)}
    assert len(expired) == 1 and "TranslateStream DEADLINE_EXCEEDED" in expired[0], expired
