"""`tarjama bulk` on a local Ray with the fixture models: every article gets one record, bad ones error
records, an interrupted run resumes without duplicates. Plus the output directory's rules, without Ray."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tarjama.client import TarjamaClient
from tarjama.client.client import to_dict
from tarjama.server.bulk import article_of, input_files
from tarjama.server.bulk_output import OutputDir, OutputError, id_key

from conftest import article, needs

pytestmark = pytest.mark.slow

EMPTY_AT = 17  # the one article of the 200 with an empty text


def write_archive(path: Path, pairs: list[tuple[str, str]], count: int = 200) -> dict[object, list[str]]:
    """`count` articles of memorised sentences (ids alternate between numbers and strings), one empty,
    then a line that is not JSON and a record without an id. Returns each good article's English."""
    english: dict[object, list[str]] = {}
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            article_id = i if i % 3 == 0 else f"story-{i}"
            arabic, expected = article(pairs[i % len(pairs) :] + pairs[: i % len(pairs)], [1 + i % 3, 2, 1])
            text = "" if i == EMPTY_AT else "\n\n".join(arabic)
            if i != EMPTY_AT:
                english[article_id] = expected
            out.write(json.dumps({"id": article_id, "text": text}, ensure_ascii=False) + "\n")
        out.write("this line is not JSON\n")
        out.write(json.dumps({"text": "بلا معرّف"}, ensure_ascii=False) + "\n")
    return english


def bulk(*args: str, model: Path, cache: Path, wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    command = [sys.executable, "-m", "tarjama.client.cli", "bulk", *args, "--translation-model", str(model),
               "--cache-dir", str(cache), "--actors", "1", "--cpus-per-actor", "2"]  # fmt: skip
    env = {**os.environ, "RAY_ADDRESS": ""}  # always the local Ray, whatever the environment says
    if wait:
        return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def records(output: Path) -> list[dict]:
    lines = [line for part in sorted(output.glob("part-*.jsonl")) for line in part.read_text("utf-8").splitlines()]
    return [json.loads(line) for line in lines]


def check_complete(found: list[dict], english: dict[object, list[str]]) -> None:
    """One record per input line, each article's English as memorised, paragraph by paragraph."""
    keys = collections.Counter(r.get("line_sha1") or json.dumps(r["id"]) for r in found)
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1][:5]
    assert len(found) == len(english) + 3
    by_id = {json.dumps(r["id"]): r for r in found if r["id"] is not None}
    for article_id, expected in english.items():
        record = by_id[json.dumps(article_id)]  # the id keeps its type: 3 stays a number, "story-1" a string
        assert "error" not in record, record
        assert [p["translation"] for p in record["paragraphs"]] == expected, article_id
        assert all(s["translation"] for p in record["paragraphs"] for s in p["sentences"])
    empty = by_id[json.dumps(f"story-{EMPTY_AT}")]
    assert empty["error"].startswith("INVALID_ARGUMENT: text is empty")
    unusable = [r for r in found if r["id"] is None]
    assert len(unusable) == 2 and all(r["error"].startswith("INVALID_ARGUMENT: ") for r in unusable)
    assert any("not JSON" in r["error"] for r in unusable) and any("has no 'id'" in r["error"] for r in unusable)


@pytest.fixture(scope="module")
def ray_available() -> None:
    needs("ray", "bulk")
    needs("pyarrow", "bulk")


def test_an_archive_is_translated_article_by_article_as_the_server_does(
    ray_available, fixture_models, cache_dir, memorised_pairs, ct2_server, tmp_path
) -> None:
    source, output = tmp_path / "archive.jsonl", tmp_path / "out"
    english = write_archive(source, memorised_pairs)
    done = bulk(str(source), str(output), "--batch-size", "32", model=fixture_models["memorised"], cache=cache_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "199 translated, 3 errors, 0 skipped" in done.stderr
    found = records(output)
    check_complete(found, english)
    # The same object `tarjama translate --format json` prints for the article (timings aside).
    first = next(r for r in found if r["id"] == "story-1")
    text = json.loads(source.read_text("utf-8").splitlines()[1])["text"]
    with TarjamaClient(ct2_server.address) as client:
        served = to_dict(client.translate(text, id="story-1", summarize=False))
    for record in (first, served):
        record["info"].pop("timings")
    assert first == served

    again = bulk(str(source), str(output), model=fixture_models["memorised"], cache=cache_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 translated, 0 errors, 202 skipped (already written)" in again.stderr
    assert len(records(output)) == 202
    assert len(list(output.glob("part-*"))) == 1, "a run with nothing new writes no part"


def test_an_interrupted_run_resumes_without_duplicates(
    ray_available, fixture_models, cache_dir, memorised_pairs, tmp_path
) -> None:
    source, output = tmp_path / "archive.jsonl", tmp_path / "out"
    english = write_archive(source, memorised_pairs)
    run = bulk(str(source), str(output), "--batch-size", "4", model=fixture_models["memorised"], cache=cache_dir,
               wait=False)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and run.poll() is None:
            if sum(len(p.read_bytes().splitlines()) for p in output.glob("part-*.jsonl")) >= 40:
                break
            time.sleep(0.1)
        assert run.poll() is None, "finished before it could be interrupted"
        run.send_signal(signal.SIGINT)
        log, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, log[-3000:]
    assert "interrupted; rerun the same command" in log
    partial = records(output)  # every line written is whole
    assert 40 <= len(partial) < 202
    # A run killed outright can leave half a line: the next run cuts it off and redoes that article.
    with next(output.glob("part-*.jsonl")).open("a", encoding="utf-8") as part:
        part.write('{"id": "story-199", "paragra')

    resumed = bulk(str(source), str(output), "--batch-size", "32", model=fixture_models["memorised"], cache=cache_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{len(partial)} skipped (already written)" in resumed.stderr
    check_complete(records(output), english)


def test_parquet_in_and_out_with_renamed_columns(ray_available, fixture_models, cache_dir, memorised_pairs, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [" ".join(a for a, _ in memorised_pairs[i : i + 2]) for i in range(12)]
    texts[5] = None
    pq.write_table(pa.table({"doc": list(range(12)), "body": texts}), tmp_path / "in.parquet")
    output = tmp_path / "out"
    args = [str(tmp_path / "in.parquet"), str(output), "--id-column", "doc", "--text-column", "body",
            "--output-format", "parquet"]  # fmt: skip
    done = bulk(*args, model=fixture_models["memorised"], cache=cache_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    table = pq.read_table(output).to_pylist()
    assert sorted((r["id"] for r in table), key=int) == [str(i) for i in range(12)]
    for row in table:
        result = json.loads(row["result"])
        if row["id"] == "5":
            assert row["error"] == result["error"] and "has no 'body'" in row["error"] and row["english"] is None
        else:
            i = int(row["id"])
            assert row["error"] is None and result["id"] == i
            assert row["english"] == " ".join(e for _, e in memorised_pairs[i : i + 2])
    again = bulk(*args, model=fixture_models["memorised"], cache=cache_dir)
    assert "12 skipped" in again.stderr and pq.read_table(output).num_rows == 12
    wrong = bulk(str(tmp_path / "in.parquet"), str(output), model=fixture_models["memorised"], cache=cache_dir)
    assert wrong.returncode == 2 and "holds parquet parts" in wrong.stderr


# -- the rules, without Ray ------------------------------------------------------------------------


def test_ids_keep_their_type_and_bad_records_are_reported() -> None:
    done: frozenset[str] = frozenset({id_key(5)})
    assert id_key(5) != id_key("5")
    assert article_of({"id": 5, "text": "نص"}, "", "id", "text", done)["skip"]
    assert not article_of({"id": "5", "text": "نص"}, "", "id", "text", done)["skip"]
    for record, problem in (
        ([1, 2], "not an object"),
        ({"id": 1.5, "text": "نص"}, "non-text, non-integer 'id'"),
        ({"id": True, "text": "نص"}, "non-text, non-integer 'id'"),
        ({"text": "نص"}, "has no 'id'"),
        ({"id": 1, "text": 7}, "'text' is a int, not text"),
        ({"id": 1}, "has no 'text'"),
    ):
        assert problem in article_of(record, json.dumps(record), "id", "text", done)["problem"]
    # A line without an id is known by its digest, so a rerun skips it rather than reporting it again.
    one = article_of({"text": "x"}, '{"text": "x"}', "id", "text", done)
    assert one["key"].startswith("line-sha1:") and one["id_json"] == "null"
    assert article_of({"text": "x"}, '{"text": "x"}', "id", "text", frozenset({one["key"]}))["skip"]


def test_the_output_directory_mends_what_an_interruption_left(tmp_path) -> None:
    output = tmp_path / "out"
    output.mkdir()
    (output / "part-1.jsonl").write_text('{"id": 1, "paragraphs": []}\n{"id": "1", "error": "x"}\n{"id": 2, "par')
    (output / ".incomplete-part-2-00000.parquet").write_bytes(b"half")
    keys = OutputDir(output, "jsonl").done_keys()
    assert keys == {"1", '"1"'}
    assert (output / "part-1.jsonl").read_text().endswith('"error": "x"}\n')
    assert not list(output.glob(".incomplete-*"))
    with pytest.raises(OutputError, match="holds jsonl parts"):
        OutputDir(output, "parquet")
    with pytest.raises(ValueError, match="no such file"):
        input_files(str(tmp_path / "missing.jsonl"), "auto")
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a.jsonl").write_text("")
    (tmp_path / "mixed" / "b.parquet").write_text("")
    with pytest.raises(ValueError, match="give --input-format"):
        input_files(str(tmp_path / "mixed"), "auto")
    assert input_files(str(tmp_path / "mixed"), "jsonl")[0] == [str(tmp_path / "mixed" / "a.jsonl")]
