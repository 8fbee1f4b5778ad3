"""TranslateStream: paragraphs in order as they are done, the same answer as Translate, errors and
cancellation as for Translate; and the CLI printing a streamed article."""

from __future__ import annotations

import grpc
import pytest

from tarjama.client import TarjamaClient, TarjamaError
from tarjama.client.client import response_from_stream
from tarjama.client.formats import render
from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

from conftest import article, run_cli


def without_timings(response: pb.TranslateResponse) -> pb.TranslateResponse:
    copy = pb.TranslateResponse()
    copy.CopyFrom(response)
    copy.info.ClearField("timings")
    return copy


def test_a_stream_adds_up_to_what_translate_returns(hardened_server, memorised_pairs) -> None:
    arabic, english = article(memorised_pairs, [1, 3, 2, 1, 2] * 8)
    text = "\n".join(arabic) + "\nReuters\n"  # a passthrough paragraph at the end
    with TarjamaClient(hardened_server.address, timeout=120) as client:
        messages = list(client.translate_stream(text, id="story", summarize=True))
        whole = client.translate(text, id="story", summarize=True)
    *parts, last = messages
    assert last.done and not last.paragraphs and last.info.sentences == whole.info.sentences
    assert not any(m.done for m in parts) and all(m.id == "story" for m in messages)
    indices = [p.index for m in parts for p in m.paragraphs]
    assert indices == list(range(len(arabic) + 1)), "every paragraph once, in order"
    streamed = response_from_stream(messages)
    assert [p.translation for p in streamed.paragraphs] == english + ["Reuters"]
    assert without_timings(streamed) == without_timings(whole)
    assert render(streamed, "text") == render(whole, "text")


def test_stream_errors_are_the_same_as_translates(hardened_server, memorised_pairs) -> None:
    with TarjamaClient(hardened_server.address, timeout=60) as client:
        with pytest.raises(TarjamaError) as empty:
            list(client.translate_stream(""))
        assert empty.value.code == grpc.StatusCode.INVALID_ARGUMENT and "text is empty" in empty.value.message
        with pytest.raises(TarjamaError) as both:
            list(client.translate_stream("نص", paragraphs=["نص"]))
        assert both.value.code == grpc.StatusCode.INVALID_ARGUMENT
        arabic, _ = article(memorised_pairs, [3] * 200)
        with pytest.raises(TarjamaError) as late:
            list(client.translate_stream("\n".join(arabic), timeout=0.05))
        assert late.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        # Malformed bytes are refused as for the unary call.
        channel = grpc.insecure_channel(hardened_server.address)
        call = channel.unary_stream("/tarjama.v1.Translator/TranslateStream")(b"\xff\xff\xff", timeout=10)
        with pytest.raises(grpc.RpcError) as malformed:
            list(call)
        assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        channel.close()
        assert client.translate(memorised_pairs[0][0]).paragraphs[0].translation == memorised_pairs[0][1]


def test_a_cancelled_stream_drops_its_queued_sentences(hardened_server, memorised_pairs) -> None:
    arabic, _ = article(memorised_pairs, [3] * 150)
    with grpc.insecure_channel(hardened_server.address) as channel:
        stub = pb_grpc.TranslatorStub(channel)
        before = stub.GetInfo(pb.GetInfoRequest(), timeout=10).stats
        call = stub.TranslateStream(pb.TranslateRequest(text="\n".join(arabic)), timeout=120)
        first = next(call)
        assert first.paragraphs[0].index == 0
        call.cancel()
        with TarjamaClient(hardened_server.address, timeout=60) as client:
            assert client.translate(memorised_pairs[1][0]).paragraphs[0].translation == memorised_pairs[1][1]
        after = stub.GetInfo(pb.GetInfoRequest(), timeout=10).stats
    sent = after.batched_sentences - before.batched_sentences
    assert sent < 450, f"the engine translated {sent} sentences: the cancelled stream's queue was not dropped"


def test_the_cli_streams_one_article_in_text_and_markdown(hardened_server, memorised_pairs, tmp_path) -> None:
    arabic, english = article(memorised_pairs, [2, 1, 2, 1])
    source = tmp_path / "story.txt"
    source.write_text("\n\n".join(arabic), encoding="utf-8")
    outputs = {}
    for fmt in ("text", "markdown"):
        done = run_cli("translate", str(source), "--format", fmt, "--server", hardened_server.address)
        assert done.returncode == 0, done.stderr
        outputs[fmt] = done.stdout
    body, summary = outputs["text"].split("\n\nSummary:\n")
    assert body.split("\n\n") == english and summary.startswith("- ")
    with TarjamaClient(hardened_server.address, timeout=60) as client:
        whole = client.translate("\n\n".join(arabic), id="story.txt", summarize=True)
    assert outputs["text"] == render(whole, "text")
    assert outputs["markdown"] == render(whole, "markdown")


def test_a_reader_that_stops_early_gets_no_traceback(hardened_server, memorised_pairs, tmp_path) -> None:
    """`tarjama translate article.txt | head -c 100`: the pipe closes mid-stream; the CLI stops quietly."""
    import subprocess
    import sys

    arabic, _ = article(memorised_pairs, [1] * 300)
    source = tmp_path / "long.txt"
    source.write_text("\n\n".join(arabic), encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "tarjama.client.cli",
        "translate",
        str(source),
        "--server",
        hardened_server.address,
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.read(100)
    process.stdout.close()
    _, stderr = process.communicate(timeout=60)
    assert b"Traceback" not in stderr and process.returncode in (0, 1), stderr.decode()
