"""The CLI as a subprocess against a real `tarjama serve` process, on both engines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import grpc
import pytest

from tarjama.client import TarjamaClient
from tarjama.v1 import tarjama_pb2 as pb
from tarjama.v1 import tarjama_pb2_grpc as pb_grpc

from conftest import ServerProcess, article, wait_until

SIXTEEN = [1, 2, 1, 3, 1, 1, 2, 1, 2, 1, 1, 3, 1, 2, 1, 1]


def cli(*args: str, stdin: str | None = None, server: str | None = None, timeout: float = 120):  # noqa: ANN201
    extra = ["--server", server] if server else []
    return subprocess.run(
        [sys.executable, "-m", "tarjama.client.cli", *args, *extra],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module", params=["ctranslate2", "torch"])
def server(request, fixture_models, cache_dir):  # noqa: ANN001, ANN201
    process = ServerProcess(
        [
            "--translation-model",
            str(fixture_models["memorised"]),
            "--summary-model",
            "extractive",
            "--engine",
            request.param,
            "--device",
            "cpu",
        ],  # fmt: skip
        env={"TARJAMA_CACHE_DIR": str(cache_dir)},
    )
    try:
        process.wait_serving()
        yield process
    finally:
        process.kill()


def test_json_of_a_sixteen_paragraph_article_is_aligned(server, memorised_pairs, tmp_path):
    arabic, english = article(memorised_pairs, SIXTEEN)
    source = tmp_path / "article.txt"
    source.write_text("\n\n".join(arabic) + "\n", encoding="utf-8")
    result = cli("translate", "--format", "json", str(source), server=server.address)
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["id"] == "article.txt"
    paragraphs = response["paragraphs"]
    assert len(paragraphs) == 16
    assert [p["source"] for p in paragraphs] == arabic
    assert [p["translation"] for p in paragraphs] == english
    for p in paragraphs:
        assert [len(s) for s in p["sentences"]]
        for s in p["sentences"]:
            assert p["source"][s["source_start"] : s["source_end"]] == s["source"]
    # The server runs the extractive summariser: each summary sentence is in the paragraph it cites.
    summary = response["summary"]
    assert summary["method"] == "extractive" and summary["sentences"]
    for s in summary["sentences"]:
        assert s["paragraphs"] and all(0 <= i < 16 for i in s["paragraphs"])
        assert all(s["text"] in paragraphs[i]["translation"] for i in s["paragraphs"])


def test_text_format_from_stdin_is_the_english_paragraphs(server, memorised_pairs):
    arabic, english = article(memorised_pairs, [1, 2])
    result = cli("translate", "--no-summary", stdin="\n".join(arabic), server=server.address)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "\n\n".join(english) + "\n"


def test_translate_prints_the_paragraphs_then_the_summary_with_paragraph_references(server, memorised_pairs):
    arabic, english = article(memorised_pairs, [1] * 8)
    result = cli("translate", "--summary-length", "short", stdin="\n".join(arabic), server=server.address)
    assert result.returncode == 0, result.stderr
    body, tail = result.stdout.split("\n\nSummary:\n", 1)
    lines = tail.splitlines()
    assert len(lines) == 3, "short: three sentences"
    for line in lines:
        text, ref = line[2:].rsplit(" [¶", 1)
        assert english[int(ref.rstrip("]")) - 1] == text, "an extractive sentence is its paragraph's own"
    assert body.split("\n\n") == english
    as_json = json.loads(cli("translate", "--format", "json", stdin="\n".join(arabic), server=server.address).stdout)
    assert as_json["summary"]["method"] == "extractive" and len(as_json["summary"]["sentences"]) == 5


def test_summarize_command_on_english_text(server, memorised_pairs):
    english = "\n".join(e for _, e in memorised_pairs[:10])
    result = cli("summarize", "--format", "json", "--length", "long", stdin=english, server=server.address)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert len(summary["sentences"]) == 8
    for s in summary["sentences"]:
        assert s["text"] == memorised_pairs[s["paragraphs"][0]][1]


def test_several_files_write_one_output_each(server, memorised_pairs, tmp_path):
    inputs = []
    for k in range(3):
        arabic, _ = article(memorised_pairs[k:], [1, 1])
        path = tmp_path / f"story{k}.txt"
        path.write_text("\n".join(arabic), encoding="utf-8")
        inputs.append(path)
    out = tmp_path / "out"
    result = cli(
        "translate", "--format", "markdown", "--output-dir", str(out), *map(str, inputs), server=server.address
    )
    assert result.returncode == 0, result.stderr
    for k in range(3):
        text = (out / f"story{k}.en.md").read_text(encoding="utf-8")
        assert memorised_pairs[k][0] in text and memorised_pairs[k][1] in text


def test_blank_input_is_one_line_error_and_nonzero_exit(server):
    result = cli("translate", stdin="  \n\n ", server=server.address)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "INVALID_ARGUMENT" in result.stderr and "white space" in result.stderr


def test_health_and_info(server):
    health = cli("health", server=server.address)
    assert (health.returncode, health.stdout.strip()) == (0, "SERVING")
    info = json.loads(cli("info", server=server.address).stdout)
    assert info["models"][0]["engine"] in ("ctranslate2", "torch")
    assert info["decoding"]["beam_size"] == 4


def test_unreachable_server_is_one_line_error():
    result = cli("translate", stdin="نص", server="127.0.0.1:1", timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    # Said for a person, not grpc's "connections to all backends failing; last error: UNKNOWN: ipv4:…".
    assert "no Tarjama server answers at 127.0.0.1:1 (is `tarjama serve` running?" in result.stderr
    assert "backends" not in result.stderr


def test_output_dir_never_replaces_an_input(server, memorised_pairs, tmp_path):
    """Regression: `--output-dir . b.txt` wrote the English over the Arabic b.txt, exit 0."""
    arabic, english = article(memorised_pairs, [1, 1])
    source = tmp_path / "b.txt"
    source.write_text("\n".join(arabic), encoding="utf-8")
    result = cli("translate", "--no-summary", "--output-dir", str(tmp_path), str(source), server=server.address)
    assert result.returncode == 0, result.stderr
    assert source.read_text(encoding="utf-8") == "\n".join(arabic)
    assert (tmp_path / "b.en.txt").read_text(encoding="utf-8").strip().split("\n\n") == english
    # An input named as an output would be (b.en.txt translated into the same folder) is refused, not replaced.
    again = tmp_path / "c.en.txt"
    again.write_text(arabic[0], encoding="utf-8")
    clash = tmp_path / "c.txt"
    clash.write_text(arabic[1], encoding="utf-8")
    result = cli("translate", "--no-summary", "--output-dir", str(tmp_path), str(clash), str(again),
                 server=server.address)  # fmt: skip
    assert result.returncode == 1 and "would replace an input" in result.stderr
    assert again.read_text(encoding="utf-8") == arabic[0]


def test_markdown_of_an_html_file_is_markdown(server, memorised_pairs, tmp_path):
    """Regression: `--format markdown story.html` silently wrote HTML."""
    arabic, english = article(memorised_pairs, [1, 1])
    story = tmp_path / "story.html"
    story.write_text("".join(f"<p>{a}</p>" for a in arabic), encoding="utf-8")
    markdown = cli("translate", "--no-summary", "--format", "markdown", str(story), server=server.address)
    assert markdown.returncode == 0, markdown.stderr
    assert "<p>" not in markdown.stdout and "## ¶1" in markdown.stdout
    assert english[0] in markdown.stdout and arabic[1] in markdown.stdout
    html = cli("translate", "--no-summary", str(story), server=server.address)  # text: HTML in, HTML out
    assert html.returncode == 0 and html.stdout.count("<p>") == 2 and english[1] in html.stdout


def test_summarize_says_what_it_takes(server, memorised_pairs):
    empty = cli("summarize", stdin="  \n", server=server.address)
    assert empty.returncode == 1 and "nothing to summarise" in empty.stderr and "translate" not in empty.stderr
    arabic = cli("summarize", "--summary-length", "short", stdin=memorised_pairs[0][0], server=server.address)
    assert "mostly Arabic" in arabic.stderr and "tarjama translate" in arabic.stderr
    english = cli("summarize", "--length", "short", stdin=memorised_pairs[0][1], server=server.address)
    assert english.returncode == 0 and "Arabic" not in english.stderr


def test_translate_takes_either_length_flag(server, memorised_pairs):
    for flag in ("--length", "--summary-length"):
        result = cli("translate", flag, "short", stdin=memorised_pairs[0][0], server=server.address)
        assert result.returncode == 0 and memorised_pairs[0][1] in result.stdout, result.stderr


def test_sigterm_finishes_in_flight_requests_then_exits_zero(fixture_models, cache_dir, memorised_pairs):
    process = ServerProcess(
        [
            "--translation-model",
            str(fixture_models["memorised"]),
            "--summary-model",
            "none",
            "--engine",
            "torch",
            "--grace-period-s",
            "20",
        ],  # fmt: skip
        env={"TARJAMA_CACHE_DIR": str(cache_dir)},
    )
    try:
        address = process.wait_serving()
        arabic, english = article(memorised_pairs, [3] * 40)
        with TarjamaClient(address) as client, grpc.insecure_channel(address) as channel:
            # An asynchronous call, so it is in flight when the signal arrives.
            call = pb_grpc.TranslatorStub(channel).Translate.future(pb.TranslateRequest(paragraphs=arabic), timeout=60)
            wait_until(lambda: client.info(timeout=10).stats.requests, 30, "the call reached the server")
            os.kill(process.proc.pid, signal.SIGTERM)
            response = call.result()
        assert [p.translation for p in response.paragraphs] == english
        assert process.proc.wait(30) == 0, process.log()  # one signal: a clean exit, no second one needed
        assert "shutting down" in process.log()
    finally:
        process.kill()


def serve_fails(tmp_path, *args: str, **env: str) -> str:  # noqa: ANN001
    """Run `tarjama serve` expecting it to give up: exit 1, no traceback. Returns its last stderr line."""
    result = subprocess.run(
        [sys.executable, "-m", "tarjama.client.cli", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TARJAMA_CACHE_DIR": str(tmp_path), **env},
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, "one clear line"
    return result.stderr.strip().splitlines()[-1]


def test_a_missing_model_exits_with_one_clear_line(tmp_path):
    last = serve_fails(tmp_path, "--translation-model", str(tmp_path / "nope"))
    assert str(tmp_path / "nope") in last and "--translation-model" in last


def test_an_unreachable_hub_model_exits_with_one_clear_line(tmp_path):
    last = serve_fails(tmp_path, HF_HUB_OFFLINE="1")
    assert "Helsinki-NLP/opus-mt-ar-en" in last and "--translation-model" in last


def test_client_package_imports_without_torch():
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.split('.')[0] in ('torch', 'transformers', 'ctranslate2'): raise ImportError(name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "from tarjama.client import cli\n"
        "cli.build_parser()\n"
        "from tarjama.server.text import segmentation\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def test_segment_runs_locally_with_the_translate_json_shape(tmp_path):
    source = tmp_path / "a.txt"
    text = "قال د. أحمد إن الاجتماع انتهى؟ نعم.\n\nReuters\n"
    source.write_text(text, encoding="utf-8")
    result = cli("segment", "--format", "json", str(source))  # no server anywhere
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    first, second = response["paragraphs"]
    assert [s["source"] for s in first["sentences"]] == ["قال د. أحمد إن الاجتماع انتهى؟", "نعم."]
    for s in first["sentences"]:
        assert first["source"][s["source_start"] : s["source_end"]] == s["source"]
        assert "translation" not in s
    assert second["sentences"][0]["flags"] == ["PASSTHROUGH"]
    plain = cli("segment", stdin=text)
    assert plain.stdout == "قال د. أحمد إن الاجتماع انتهى؟\nنعم.\n\nReuters\n"


def test_markdown_leaves_a_passthrough_paragraph_unmarked():
    """Regression: an English (passthrough) paragraph was wrapped in <div dir="rtl" lang="ar">."""
    from tarjama.client.formats import render

    passthrough = [pb.Sentence(source="Reuters", translation="Reuters", flags=[pb.Sentence.PASSTHROUGH])]
    arabic = [pb.Sentence(source="نص.", translation="Text.")]
    response = pb.TranslateResponse(paragraphs=[
        pb.Paragraph(index=0, source="نص.", translation="Text.", sentences=arabic),
        pb.Paragraph(index=1, source="Reuters", translation="Reuters", sentences=passthrough),
    ])  # fmt: skip
    first, second = render(response, "markdown").split("## ¶")[1:]
    assert '<div dir="rtl" lang="ar">' in first and "<div" not in second and "Reuters" in second


def test_markdown_marks_flagged_sentences():
    from tarjama.client.formats import render

    response = pb.TranslateResponse(
        paragraphs=[
            pb.Paragraph(
                index=0,
                source="نص.",
                translation="Text.",
                sentences=[pb.Sentence(source="نص.", translation="Text.", flags=[pb.Sentence.REPETITION])],
            )
        ]
    )
    text = render(response, "markdown")
    assert "⚠" in text and "repetition" in text
    assert "⚠" not in render(pb.TranslateResponse(paragraphs=[pb.Paragraph(source="a", translation="b")]), "markdown")


def test_a_summary_model_that_cannot_load_names_the_offline_choice(fixture_models, tmp_path):
    missing = str(tmp_path / "no-such-summariser")
    last = serve_fails(tmp_path, "--translation-model", str(fixture_models["memorised"]), "--summary-model", missing)
    assert "no-such-summariser" in last and "--summary-model extractive" in last


def test_eval_scores_the_memorised_pairs_perfectly_with_speed_and_flags(server, memorised_pairs, tmp_path):
    source, reference = tmp_path / "set.ara", tmp_path / "set.eng"
    source.write_text("\n".join([a for a, _ in memorised_pairs] + [""]) + "\n", encoding="utf-8")
    reference.write_text("\n".join([e for _, e in memorised_pairs] + ["(empty source)"]) + "\n", encoding="utf-8")
    done = cli("eval", str(source), str(reference), "--format", "json", "--per-request", "3", server=server.address)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (scores,) = report["sets"]
    assert scores["sentences"] == len(memorised_pairs) and scores["skipped_empty"] == 1
    assert scores["chrf"] == pytest.approx(100.0) and scores["bleu"] == pytest.approx(100.0)
    assert scores["sentences_per_s"] > 0 and isinstance(scores["flags"], dict)
    assert "worker(s)" in report["server"] and "memorised" in report["server"]
    text = cli("eval", str(source), str(reference), server=server.address)
    assert scores["model"] == "default (memorised)"
    assert text.returncode == 0 and "| set | model | sentences | chrF | BLEU |" in text.stdout
    assert "| 100.0 | 100.0 |" in text.stdout


def test_eval_refuses_files_that_are_not_aligned(server, tmp_path):
    (tmp_path / "a.ara").write_text("سطر\nسطر\n", encoding="utf-8")
    (tmp_path / "a.eng").write_text("line\n", encoding="utf-8")
    done = cli("eval", str(tmp_path / "a.ara"), str(tmp_path / "a.eng"), server=server.address)
    assert done.returncode == 2 and "not aligned" in done.stderr
    odd = cli("eval", str(tmp_path / "a.ara"), server=server.address)
    assert odd.returncode == 2 and "pairs" in odd.stderr


def test_a_port_in_use_is_one_line_and_never_shared(fixture_models, cache_dir):
    """Regressions: a second `tarjama serve` on a gRPC port in use started too (grpc's SO_REUSEPORT) and the
    kernel split the calls between the two; an HTTP port in use ended in 59 lines of traceback and exit 3."""
    from conftest import free_port, serving_http

    with serving_http(fixture_models, cache_dir) as running:
        grpc_port = running.address.rsplit(":", 1)[1]
        for args, expected in (
            (["--port", grpc_port], f"cannot listen on 127.0.0.1:{grpc_port}"),
            (["--port", str(free_port()), "--http-port", str(running.http_port)],
             f"cannot listen on 127.0.0.1:{running.http_port} for HTTP"),
        ):  # fmt: skip
            done = subprocess.run(
                [sys.executable, "-m", "tarjama.client.cli", "serve", *args, "--translation-model",
                 str(fixture_models["memorised"]), "--summary-model", "extractive", "--cache-dir", str(cache_dir)],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 1, done.stderr
            assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1].startswith(
                f"tarjama serve: error: {expected}"
            ), done.stderr
