"""Several named translation models in one server: the flags, the choice per request, what GetInfo and
every answer say, batches and cache per model, and the machine's batch slots shared between them."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace

import pytest

from tarjama.client import InvalidArgument, TarjamaClient
from tarjama.server.batcher import Batcher, BatchLimits, ComputeGate
from tarjama.server.bulk import only_model
from tarjama.server.settings import NamedModel, Settings, parse_settings

from conftest import InProcessServer, article, free_port, run_cli

# -- the flags -----------------------------------------------------------------------------------------


def test_one_unnamed_model_is_named_default() -> None:
    assert parse_settings([], {}).translation_models() == (
        NamedModel("default", "Helsinki-NLP/opus-mt-ar-en", None),
    )
    settings = parse_settings(["--translation-model", "./my-model", "--translation-revision", "abc"], {})
    assert settings.translation_models() == (NamedModel("default", "./my-model", "abc"),)
    pinned = parse_settings(["--translation-model", "a/b", "--translation-revision", "default=abc"], {})
    assert pinned.translation_models() == (NamedModel("default", "a/b", "abc"),)  # by its name too
    spaced = parse_settings(["--translation-model", " fast = a/b , best = c/d "], {})
    assert [(m.name, m.ref) for m in spaced.translation_models()] == [("fast", "a/b"), ("best", "c/d")]


def test_named_models_from_repeated_flags_or_the_variable() -> None:
    argv = ["--translation-model", "fast=Helsinki-NLP/opus-mt-ar-en", "--translation-model",
            "best=Helsinki-NLP/opus-mt-tc-big-ar-en", "--translation-revision", "best=r2"]  # fmt: skip
    expected = (
        NamedModel("fast", "Helsinki-NLP/opus-mt-ar-en", None),
        NamedModel("best", "Helsinki-NLP/opus-mt-tc-big-ar-en", "r2"),
    )
    assert parse_settings(argv, {}).translation_models() == expected
    variable = {"TARJAMA_TRANSLATION_MODEL": "fast=Helsinki-NLP/opus-mt-ar-en,best=Helsinki-NLP/opus-mt-tc-big-ar-en",
                "TARJAMA_TRANSLATION_REVISION": "best=r2"}  # fmt: skip
    assert parse_settings([], variable).translation_models() == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--translation-model", "fast=a/b", "--translation-model", "c/d"], "name each one"),
        (["--translation-model", "a=x/y", "--translation-model", "a=z/w"], "'a' is given twice"),
        (["--translation-model", "Fast=x/y", "--translation-model", "fast=z/w"], "'fast' is given twice"),
        (["--translation-model", "=x/y"], "no name before '='"),
        (["--translation-model", "x/y\nz"], "control character"),
        (["--translation-model", ",".join(f"m{i}=x/{i}" for i in range(9))], "at most 8"),
        (["--translation-model", "a=x/y", "--translation-revision", "a=r1,a=r2"], "two revisions"),
        (["--translation-model", "b@d=x/y"], "must be letters"),
        (["--translation-model", "fast="], "names no model"),
        (["--translation-model", "a=x/y,,b=z/w"], "empty entry"),
        (["--translation-model", "a=x/y,b=z/w", "--translation-revision", "r"], "NAME=REVISION"),
        (["--translation-model", "a=x/y", "--translation-revision", "b=r"], "no translation model is named 'b'"),
    ],
)
def test_bad_model_flags_are_refused_at_start(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_settings(argv, {})


def test_serve_refuses_bad_model_flags_in_one_line(tmp_path) -> None:  # noqa: ANN001
    result = run_cli("serve", "--translation-model", "fast=a/b", "--translation-model", "c/d",
                     "--cache-dir", str(tmp_path), "--offline")  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "name each one" in result.stderr and "Traceback" not in result.stderr


def test_bulk_loads_only_the_model_it_is_asked_for() -> None:
    settings = Settings(translation_model="fast=a/b,best=c/d", translation_revision="best=r2")
    assert only_model(settings, "best").translation_models() == (NamedModel("best", "c/d", "r2"),)
    assert only_model(settings, "").translation_models() == (NamedModel("fast", "a/b", None),)
    unnamed = Settings(translation_model="a/b")
    assert only_model(unnamed, "").translation_models() == (NamedModel("default", "a/b", None),)
    with pytest.raises(ValueError, match="no --translation-model is named 'nope'; they are fast, best"):
        only_model(settings, "nope")


# -- a two-model server -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_models(fixture_models, base_settings):  # noqa: ANN001, ANN201
    """fast = the memorised model (exact English), best = a random one (other English), cache on."""
    models = f"fast={fixture_models['memorised']},best={fixture_models['random']}"
    settings = replace(
        base_settings, translation_model=models, cache_size=100, http_port=free_port(), summary_model="extractive"
    )
    server = InProcessServer(settings)
    server.wait_serving()
    server.http = f"http://127.0.0.1:{settings.http_port}"  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def random_alone(fixture_models, base_settings):  # noqa: ANN001, ANN201
    settings = replace(base_settings, translation_model=str(fixture_models["random"]))
    server = InProcessServer(settings)
    server.wait_serving()
    yield server
    server.stop()


def test_get_info_lists_every_model_with_its_name_and_parallelism(two_models) -> None:  # noqa: ANN001
    with TarjamaClient(two_models.address) as client:
        info = client.info()
    translation = [m for m in info.models if m.role == "translation"]
    assert [(m.name, m.is_default) for m in translation] == [("fast", True), ("best", False)]
    assert [m.id for m in translation] == ["memorised", "random"]  # local directories by their name only
    for model in translation:
        assert model.engine == "ctranslate2" and model.compute_type == "int8" and model.revision.startswith("local-")
        assert model.parallelism.workers == 2 and model.parallelism.max_batch_size == 16
    assert info.parallelism == translation[0].parallelism


def test_each_request_is_translated_by_the_model_it_names(two_models, random_alone, memorised_pairs) -> None:  # noqa: ANN001
    arabic, english = article(memorised_pairs, [2, 1])
    with TarjamaClient(two_models.address) as client:
        default = client.translate(paragraphs=arabic)
        fast = client.translate(paragraphs=arabic, model="fast")
        best = client.translate(paragraphs=arabic, model="best")
    with TarjamaClient(random_alone.address) as client:
        alone = client.translate(paragraphs=arabic)
    assert [p.translation for p in default.paragraphs] == english
    assert [p.translation for p in fast.paragraphs] == english
    assert (default.info.model.name, fast.info.model.name, best.info.model.name) == ("fast", "fast", "best")
    assert best.info.model.id == "random" and best.info.model.parallelism.workers == 2
    # The same English as a server with that model alone, sentence by sentence.
    assert [p.translation for p in best.paragraphs] == [p.translation for p in alone.paragraphs]
    assert [p.translation for p in best.paragraphs] != english


def test_html_glossaries_and_summaries_work_with_either_model(two_models, memorised_pairs) -> None:  # noqa: ANN001
    arabic, english = article(memorised_pairs, [1, 1, 1])
    html = "<article>" + "".join(f"<p>{a}</p>" for a in arabic) + "</article>"
    terms = {"مارتيلي": "Michel Martelly"}
    with TarjamaClient(two_models.address) as client:
        answers = {m: client.translate(html=html, model=m, terms=terms, summarize=True) for m in ("fast", "best")}
    for name, answer in answers.items():
        assert answer.info.model.name == name
        assert answer.html.count("<p>") == 3 and len(answer.paragraphs) == 3
        assert answer.summary.sentences and [t.source for t in answer.terms] == ["مارتيلي"]
    glossed = [e.replace("Martelly's", "Michel Martelly's") for e in english]  # the term, expanded in place
    assert [p.translation for p in answers["fast"].paragraphs] == glossed != english
    assert [p.translation for p in answers["best"].paragraphs] != glossed


def test_the_cache_is_kept_per_model(two_models, memorised_pairs) -> None:  # noqa: ANN001
    text = memorised_pairs[5][0]
    with TarjamaClient(two_models.address) as client:
        first = client.translate(text, model="fast")
        other = client.translate(text, model="best")
        again = client.translate(text, model="fast")
    assert other.info.cached_sentences == 0  # fast's English is not best's
    assert again.info.cached_sentences == 1
    assert again.paragraphs[0].translation == first.paragraphs[0].translation == memorised_pairs[5][1]


def test_streaming_uses_the_chosen_model(two_models, random_alone, memorised_pairs) -> None:  # noqa: ANN001
    arabic, _ = article(memorised_pairs, [1, 2, 1])
    with TarjamaClient(two_models.address) as client:
        messages = list(client.translate_stream(paragraphs=arabic, model="best"))
    with TarjamaClient(random_alone.address) as client:
        alone = client.translate(paragraphs=arabic)
    streamed = [p.translation for m in messages for p in m.paragraphs]
    assert streamed == [p.translation for p in alone.paragraphs]
    assert messages[-1].done and messages[-1].info.model.name == "best"


def test_an_unknown_model_is_invalid_argument_naming_the_models(two_models, memorised_pairs) -> None:  # noqa: ANN001
    with TarjamaClient(two_models.address) as client:
        with pytest.raises(InvalidArgument, match=r"no model named 'medium'; its models are fast, best"):
            client.translate(memorised_pairs[0][0], model="medium")
        with pytest.raises(InvalidArgument, match=r"no model named 'xxxx"):
            client.translate(memorised_pairs[0][0], model="x" * 10_000)  # shown cut short, not echoed whole
        assert client.health() == "SERVING"


def test_the_http_api_takes_options_model(two_models, memorised_pairs) -> None:  # noqa: ANN001
    def post(body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(
            two_models.http + "/v1/translate", data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    status, answer = post({"text": memorised_pairs[0][0], "options": {"model": "best"}})
    assert status == 200 and answer["info"]["model"]["name"] == "best"
    status, answer = post({"text": memorised_pairs[0][0], "options": {"model": "fast"}})
    assert status == 200 and answer["paragraphs"][0]["translation"] == memorised_pairs[0][1]
    status, answer = post({"text": memorised_pairs[0][0], "options": {"model": "nope"}})
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT"
    assert "its models are fast, best" in answer["error"]["message"]


def test_the_http_api_lists_the_models(two_models) -> None:  # noqa: ANN001
    json_type = {"content-type": "application/json"}
    request = urllib.request.Request(two_models.http + "/v1/info", data=b"{}", headers=json_type)
    with urllib.request.urlopen(request, timeout=30) as answer:
        info = json.loads(answer.read())
    translation = [m for m in info["models"] if m["role"] == "translation"]
    assert [(m["name"], m["is_default"]) for m in translation] == [("fast", True), ("best", False)]
    assert not translation[0]["path"]  # no token, no paths
    assert translation[1]["parallelism"]["workers"] == 2


def test_the_cli_chooses_with_model(two_models, memorised_pairs, tmp_path) -> None:  # noqa: ANN001
    story = tmp_path / "story.txt"
    story.write_text(memorised_pairs[0][0], encoding="utf-8")
    fast = run_cli("translate", "--server", two_models.address, "--format", "json", "--model", "fast", str(story))
    assert fast.returncode == 0, fast.stderr
    assert json.loads(fast.stdout)["info"]["model"]["name"] == "fast"
    best = run_cli("translate", "--server", two_models.address, "--format", "json", "--model", "best", str(story))
    assert best.returncode == 0, best.stderr
    assert json.loads(best.stdout)["info"]["model"]["name"] == "best"
    wrong = run_cli("translate", "--server", two_models.address, "--model", "nope", str(story))
    assert wrong.returncode != 0 and "its models are fast, best" in wrong.stderr


def test_eval_scores_the_model_it_names(two_models, memorised_pairs, tmp_path) -> None:  # noqa: ANN001
    source, reference = tmp_path / "set.ara", tmp_path / "set.eng"
    source.write_text("\n".join(a for a, _ in memorised_pairs[:6]) + "\n", encoding="utf-8")
    reference.write_text("\n".join(e for _, e in memorised_pairs[:6]) + "\n", encoding="utf-8")
    scores = {}
    for model in ("fast", "best"):
        done = run_cli("eval", "--server", two_models.address, "--model", model, "--format", "json",
                       str(source), str(reference))  # fmt: skip
        assert done.returncode == 0, done.stderr
        (scores[model],) = json.loads(done.stdout)["sets"]
    assert scores["fast"]["model"] == "fast (memorised)" and scores["fast"]["chrf"] == pytest.approx(100.0)
    assert scores["best"]["model"] == "best (random)" and scores["best"]["chrf"] < 50


# -- the shared batch slots ---------------------------------------------------------------------------


class SlowEngine:
    """Records which model ran each batch and how many batches ran at once, over all models."""

    def __init__(self, name: str, log: list[str], running: list[int], seconds: float = 0.02) -> None:
        self.name, self.log, self.running, self.seconds = name, log, running, seconds
        self.lock = threading.Lock()

    def __call__(self, batch: list[int]) -> list[int]:
        with self.lock:
            self.running[0] += 1
            self.running[1] = max(self.running[1], self.running[0])
        self.log.append(self.name)
        time.sleep(self.seconds)
        with self.lock:
            self.running[0] -= 1
        return batch


def batchers(gate: ComputeGate, log: list[str], running: list[int]) -> tuple[Batcher, Batcher]:
    limits = BatchLimits(max_batch_tokens=1000, max_batch_size=1, max_batch_delay_s=0, max_queue_tokens=10**6)
    lock = threading.Lock()
    fast_engine, best_engine = SlowEngine("fast", log, running), SlowEngine("best", log, running)
    fast_engine.lock = best_engine.lock = lock
    return (Batcher(fast_engine, limits, "fast-batcher", workers=2, gate=gate),
            Batcher(best_engine, limits, "best-batcher", workers=2, gate=gate))  # fmt: skip


def test_a_model_alone_with_work_gets_every_slot() -> None:
    log: list[str] = []
    running = [0, 0]
    fast, best = batchers(ComputeGate(2), log, running)
    try:
        tickets = [fast.submit([i], [1]) for i in range(20)]
        assert [t.future.result(10) for t in tickets] == [[i] for i in range(20)]
    finally:
        fast.stop(5), best.stop(5)
    assert running[1] == 2  # both slots: the whole machine
    assert log == ["fast"] * 20


def test_two_loaded_models_take_turns_and_never_exceed_the_slots() -> None:
    log: list[str] = []
    running = [0, 0]
    fast, best = batchers(ComputeGate(2), log, running)
    try:
        tickets = [b.submit([i], [1]) for i in range(30) for b in (fast, best)]
        for ticket in tickets:
            ticket.future.result(20)
    finally:
        fast.stop(5), best.stop(5)
    assert running[1] <= 2  # four worker threads, never more than two batches at once
    # First come, first served: in every stretch of ten batches while both had work, each model ran some.
    for start in range(0, 50, 10):
        window = log[start : start + 10]
        assert 3 <= window.count("best") <= 7, log


def test_a_stopping_batcher_leaves_the_gate_queue() -> None:
    gate = ComputeGate(1)
    assert gate.acquire(lambda: False)
    stopping = threading.Event()
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(gate.acquire(stopping.is_set, poll_s=0.01)))
    waiter.start()
    time.sleep(0.05)
    stopping.set()
    waiter.join(5)
    assert result == [False]
    gate.release()
    assert gate.acquire(lambda: False)  # the slot came back, and no one is left queued ahead


def test_info_and_answers_name_the_default_model_of_a_one_model_server(ct2_server) -> None:  # noqa: ANN001
    with TarjamaClient(ct2_server.address) as client:
        info = client.info()
        answer = client.translate("قال المتحدث إن الاجتماع سيعقد غدا.")
    (model,) = [m for m in info.models if m.role == "translation"]
    assert model.name == "default" and model.is_default
    assert answer.info.model.name == "default"


def test_both_engines_choose_per_request_with_exact_english(fixture_models, base_settings, memorised_pairs) -> None:  # noqa: ANN001
    """fast = memorised, best = memorised-tcbig (tc-big's ids: </s> not 0, pad = decoder start = the last
    id): each gives the memorised English exactly, through either engine, by the name a request gives."""
    arabic, english = article(memorised_pairs, [2, 1, 2])
    models = f"fast={fixture_models['memorised']},best={fixture_models['memorised-tcbig']}"
    for engine in ("ctranslate2", "torch"):
        server = InProcessServer(replace(base_settings, translation_model=models, engine=engine))
        try:
            server.wait_serving()
            with TarjamaClient(server.address) as client:
                for name in ("fast", "best"):
                    answer = client.translate(paragraphs=arabic, model=name)
                    assert [p.translation for p in answer.paragraphs] == english, (engine, name)
                    assert (answer.info.model.name, answer.info.model.engine) == (name, engine)
                streamed = list(client.translate_stream(paragraphs=arabic, model="best"))
                assert [p.translation for m in streamed for p in m.paragraphs] == english
        finally:
            server.stop()
