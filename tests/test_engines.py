"""Both engines on the same fixture models: exact translations, output caps, the conversion cache."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tarjama.server.engines.base import SourceItem
from tarjama.server.errors import ModelUnavailable
from tarjama.server.models import ResolvedModel, ctranslate2_model_dir, resolve_model

ENGINES = ["ctranslate2", "torch"]


def load(engine: str, model: Path, base_settings, **overrides):  # noqa: ANN001, ANN201
    from tarjama.server.engines import load_engine

    return load_engine(replace(base_settings, translation_model=str(model), engine=engine, **overrides))


def copy_model(source: Path, target: Path, **config: object) -> Path:
    """A copy of a fixture model with some config.json (and generation_config.json) keys changed."""
    shutil.copytree(source, target)
    for name in ("config.json", "generation_config.json"):
        path = target / name
        changed = json.loads(path.read_text())
        changed.update({k: v for k, v in config.items() if k in changed or name == "config.json"})
        path.write_text(json.dumps(changed))
    return target


@pytest.mark.parametrize("engine_name", ENGINES)
def test_engine_reproduces_the_memorised_pairs_in_one_batch(
    engine_name, memorised_model, memorised_pairs, base_settings
):
    engine = load(engine_name, memorised_model, base_settings)
    tokens = engine.tokenize([a for a, _ in memorised_pairs])
    assert all(t[-1] == "</s>" for t in tokens)
    hypotheses = engine.translate([SourceItem(t, 64) for t in tokens])
    assert [h.text for h in hypotheses] == [e for _, e in memorised_pairs]
    assert all(0 < h.confidence <= 1 and not h.capped for h in hypotheses)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_a_sentence_cut_at_its_cap_is_the_start_of_its_english_and_says_so(
    engine_name, memorised_model, memorised_pairs, base_settings
):
    """Regression: torch kept the checkpoint's forced_eos_token_id, so the last token before the cap
    became </s>: the cut sentence was a token short and came back as finished (capped False)."""
    import sentencepiece as spm

    from tarjama.server.engines.marian_tokenizer import MarianTokenizer

    engine = load(engine_name, memorised_model, base_settings)
    tokenizer = MarianTokenizer(str(memorised_model))
    target = spm.SentencePieceProcessor(model_file=str(memorised_model / "target.spm"))
    pairs = memorised_pairs[:4]
    caps = [2, 5, 9, 4]
    hypotheses = engine.translate(
        [SourceItem(t, c) for t, c in zip(engine.tokenize([a for a, _ in pairs]), caps, strict=True)]
    )
    for (_, english), cap, hypothesis in zip(pairs, caps, hypotheses, strict=True):
        pieces = target.encode(english, out_type=str)
        assert len(pieces) > cap
        assert (hypothesis.text, hypothesis.num_tokens, hypothesis.capped) == (
            tokenizer.detokenize(pieces[:cap]), cap, True
        ), english


@pytest.mark.parametrize("engine_name", ENGINES)
def test_output_never_asks_for_more_positions_than_the_model_has(
    engine_name, fixture_models, memorised_pairs, base_settings, tmp_path
):
    """A cap past the decoder's positions (512 in opus-mt-ar-en) failed the whole batch in both engines
    (IndexError, "No position encodings"); tc-big's 1024 positions let it write more."""
    tokens = None
    for positions in (512, 1024):
        model = fixture_models["random"]
        if positions != 512:
            model = copy_model(model, tmp_path / "random-1024", max_position_embeddings=positions)
        engine = load(engine_name, model, base_settings, beam_size=1)
        tokens = tokens or engine.tokenize([a for a, _ in memorised_pairs[:2]])
        hypotheses = engine.translate([SourceItem(tokens[0], 700), SourceItem(tokens[1], 20)])
        engine.close()
        assert (hypotheses[0].num_tokens, hypotheses[0].capped) == (min(700, positions), True), positions
        assert hypotheses[1].num_tokens <= 20


@pytest.mark.parametrize("engine_name", ENGINES)
def test_output_is_cut_at_each_items_own_cap(engine_name, fixture_models, memorised_pairs, base_settings):
    engine = load(engine_name, fixture_models["random"], base_settings)
    tokens = engine.tokenize([a for a, _ in memorised_pairs[:3]])
    caps = [3, 7, 12]
    hypotheses = engine.translate([SourceItem(t, c) for t, c in zip(tokens, caps, strict=True)])
    for hypothesis, cap in zip(hypotheses, caps, strict=True):
        assert hypothesis.num_tokens <= cap
        if hypothesis.num_tokens == cap:
            assert hypothesis.capped


def test_torch_never_writes_pad_even_where_the_model_would(fixture_models, memorised_pairs, base_settings, tmp_path):
    """CTranslate2 drops <pad> from the vocabulary; torch suppresses it (tc-big's bad_words_ids, and for a
    checkpoint without them too), instead of writing it and filtering it out of the text afterwards."""
    from safetensors.torch import load_file, save_file

    model = copy_model(fixture_models["random"], tmp_path / "likes-pad")
    weights = load_file(model / "model.safetensors")
    pad = json.loads((model / "config.json").read_text())["pad_token_id"]
    weights["final_logits_bias"][0, pad] = 100.0  # <pad> is every step's best by far
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    tokens = load("ctranslate2", model, base_settings).tokenize([a for a, _ in memorised_pairs[:2]])
    for engine_name in ENGINES:
        hypotheses = load(engine_name, model, base_settings).translate([SourceItem(t, 6) for t in tokens])
        assert all(h.num_tokens == 6 and h.text for h in hypotheses), (engine_name, hypotheses)


def test_torch_refuses_a_model_whose_config_and_vocabulary_disagree_on_eos(fixture_models, base_settings, tmp_path):
    """The torch engine cuts at vocab.json's </s> (700 in memorised-tcbig) and generate() stops at the
    config's: a checkpoint where they differ would run every sentence to its cap."""
    from build_models import MEMORISED_TCBIG_EOS

    model = copy_model(fixture_models["memorised-tcbig"], tmp_path / "eos-0", eos_token_id=0, forced_eos_token_id=0)
    with pytest.raises(ModelUnavailable, match=f"ends sentences with id 0.*puts </s> at {MEMORISED_TCBIG_EOS}"):
        load("torch", model, base_settings)


def test_torch_does_not_warn_about_the_checkpoints_max_length_on_every_batch(
    fixture_models, memorised_pairs, base_settings
):
    """opus-mt checkpoints, tc-big too, ship max_length 512: beside each batch's max_new_tokens,
    transformers logged a warning per batch."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        engine = load("torch", fixture_models["memorised-tcbig"], base_settings)
        engine.translate([SourceItem(t, 64) for t in engine.tokenize([a for a, _ in memorised_pairs[:3]])])
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records if "max_length" in r.getMessage()] == []


def test_ctranslate2_conversion_reads_tcbig_ids(fixture_models, tmp_path):
    """CTranslate2 finds </s> by name wherever vocab.json puts it, drops <pad> (the last id), and refuses a
    Marian checkpoint whose decoder would not start from <pad>, rather than translate it wrongly."""
    from build_models import MEMORISED_TCBIG_EOS as EOS

    source = fixture_models["memorised-tcbig"]
    model = resolve_model(str(source), None, str(tmp_path), "translation")
    converted = ctranslate2_model_dir(model, "int8", str(tmp_path))
    vocabulary = json.loads((converted / "shared_vocabulary.json").read_text())
    ours = json.loads((source / "vocab.json").read_text())
    assert vocabulary == sorted(ours, key=ours.__getitem__)[:-1] and vocabulary[EOS] == "</s>"
    assert json.loads((converted / "config.json").read_text())["eos_token"] == "</s>"
    other = copy_model(source, tmp_path / "starts-elsewhere", decoder_start_token_id=EOS)
    with pytest.raises(ModelUnavailable, match=f"pad {ours['<pad>']} and decoder start {EOS}"):
        ctranslate2_model_dir(resolve_model(str(other), None, str(tmp_path), "translation"), "int8", str(tmp_path))


def test_ctranslate2_conversion_is_cached_by_model_revision_and_quantization(fixture_models, tmp_path):
    model = resolve_model(str(fixture_models["random"]), None, str(tmp_path), "translation")
    first = ctranslate2_model_dir(model, "int8", str(tmp_path))
    stamp = (first / "model.bin").stat().st_mtime_ns
    again = ctranslate2_model_dir(model, "int8", str(tmp_path))
    assert again == first and (again / "model.bin").stat().st_mtime_ns == stamp, "a second start reuses it"
    other = ctranslate2_model_dir(model, "float32", str(tmp_path))
    assert other != first
    moved = ResolvedModel(model.id, "another-revision", model.path, model.role)
    assert ctranslate2_model_dir(moved, "int8", str(tmp_path)) != first


def test_a_missing_local_model_names_the_directory(tmp_path):
    with pytest.raises(ModelUnavailable, match="does not exist"):
        resolve_model(str(tmp_path / "nope"), None, str(tmp_path), "translation")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match="no config.json"):
        resolve_model(str(tmp_path / "empty"), None, str(tmp_path), "translation")


def test_an_unreachable_hub_model_says_how_to_use_a_local_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable) as error:
        resolve_model("Helsinki-NLP/opus-mt-ar-en", None, str(tmp_path), "translation")
    message = str(error.value)
    assert "Helsinki-NLP/opus-mt-ar-en" in message and "--translation-model" in message
    assert "\n" not in message


def test_light_tokenizer_matches_transformers_marian_tokenizer(fixture_models):
    from transformers import AutoTokenizer

    from tarjama.server.engines.marian_tokenizer import MarianTokenizer

    data = Path(__file__).parent / "fixtures" / "data"
    arabic = (data / "flores200-devtest.ara").read_text(encoding="utf-8").splitlines()
    english = (data / "flores200-devtest.eng").read_text(encoding="utf-8").splitlines()
    built = fixture_models["memorised"].parent
    for name in ("memorised", "memorised-tcbig", *(n for n in ("opus-shape", "tcbig-shape") if (built / n).is_dir())):
        ours = MarianTokenizer(str(fixture_models["memorised"].parent / name))
        theirs = AutoTokenizer.from_pretrained(str(fixture_models["memorised"].parent / name))
        assert theirs.normalize("«قال»") == '"قال"', "sacremoses is installed, so transformers has the normaliser"
        news_punctuation = [
            "", "  مسافات  ", "x\u200fy", "ﻻ ﷺ",
            "قال: «لن نتراجع» — وأضاف…", "„نعم“ قالها “بوضوح” ‘مرتين’", "سأل ؟ ثم قال ، وأضاف ؛ ثم سكت .",
            "بلغت النسبة ٣٥ ٪ أو 35 % ( تقريبا )", "العدد ١٢٣٤٥٦٧٨٩٠ و 1\u00a0000 و`اقتباس''", "سطر\rآخر",
        ]  # fmt: skip
        for text in arabic + news_punctuation:
            # What opus-mt was trained on: transformers' pieces of its own normalised text.
            expected = theirs.convert_ids_to_tokens(theirs(theirs.normalize(text)).input_ids)
            assert list(ours.tokenize([text])[0]) == expected, text
        for text in english[:300]:
            ids = theirs(text_target=text).input_ids
            assert ours.detokenize(ours.pieces(ids)) == theirs.decode(ids, skip_special_tokens=True), text


@pytest.mark.parametrize("layout", ["tokenizer.json", "vocab.json + merges.txt"])
def test_light_bart_tokenizer_matches_transformers(fixture_models, tmp_path, layout):
    import random
    import shutil

    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from tarjama.server.engines.bart_tokenizer import BartTokenizer

    directory = fixture_models["bart"]
    if layout != "tokenizer.json":  # as distilbart-cnn-12-6 ships: the slow tokenizer's two files
        directory = tmp_path / "bart"
        shutil.copytree(fixture_models["bart"], directory)
        Tokenizer.from_file(str(directory / "tokenizer.json")).model.save(str(directory))
        (directory / "tokenizer.json").unlink()
        assert (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file()
    ours = BartTokenizer(str(directory))
    theirs = AutoTokenizer.from_pretrained(str(directory))
    english = (Path(__file__).parent / "fixtures" / "data" / "flores200-devtest.eng").read_text().splitlines()
    texts = english[:300] + ["", "  spaced  out  ", "Naïve café — “quotes” 3.5%", "line\nbreak"]
    assert ours.count(texts) == [len(ids) for ids in theirs(texts, add_special_tokens=True)["input_ids"]]
    rng = random.Random(0)
    for text in texts:
        pieces = theirs.convert_ids_to_tokens(theirs.encode(text))
        assert ours.pieces(text) == pieces, text
        assert ours.text(pieces) == theirs.decode(theirs.convert_tokens_to_ids(pieces), skip_special_tokens=True)
        shuffled = pieces[:]
        rng.shuffle(shuffled)  # what a random model writes: any pieces in any order, specials included
        ids = theirs.convert_tokens_to_ids(shuffled)
        assert ours.text(shuffled) == theirs.decode(ids, skip_special_tokens=True), shuffled


def test_normalisation_changes_only_what_the_model_reads(fixture_models, base_settings):
    """Quotes and dashes are normalised for the model; the source echoed back and its offsets are the client's."""
    import asyncio

    from tarjama.server.document import Document
    from tarjama.server.pipeline import TranslationPipeline

    engine = load("ctranslate2", fixture_models["memorised"], base_settings)
    paragraph = "قال: «لن نتراجع» — وأضاف…  „نعم“. ثم سكت (تماما) ؟"
    import sentencepiece as spm

    # The pieces the model reads differ from SentencePiece's of the text as sent (the normalisation),
    # the end-of-sentence piece aside.
    raw = spm.SentencePieceProcessor(model_file=str(fixture_models["memorised"] / "source.spm"))
    assert tuple(engine.tokenize([paragraph])[0][:-1]) != tuple(raw.encode(paragraph, out_type=str))
    pipeline = TranslationPipeline(engine, base_settings)
    try:
        translated = asyncio.run(pipeline.translate(Document("d", (paragraph,)), None))
    finally:
        pipeline.close(10)
    (out,) = translated.paragraphs
    assert out.source == paragraph
    assert "".join(paragraph[s.start : s.end] for s in out.sentences).replace(" ", "") == paragraph.replace(" ", "")
    assert all(paragraph[s.start : s.end] == s.source for s in out.sentences)


def test_the_engine_choices_and_the_registry_name_the_same_engines() -> None:
    """settings names the --engine choices itself: it sits below the engines, and importing the registry
    from it was a lower layer importing up (issue 18). The registry must map exactly those, in that order,
    each to a module with what `EngineModule` promises."""
    from tarjama.server.engines import EngineModule, engine_module
    from tarjama.server.engines.registry import ENGINE_MODULES
    from tarjama.server.settings import ENGINES

    assert tuple(ENGINE_MODULES) == ENGINES
    promised = [name for name in vars(EngineModule) if not name.startswith("_")]
    assert sorted(promised) == ["cuda_devices", "open_summary", "open_translation", "prepare"]
    for name in ENGINES:
        module = engine_module(name)
        assert all(callable(getattr(module, function, None)) for function in promised), module.__name__
