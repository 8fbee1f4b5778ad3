"""NAME_VARIANT: a name spelt two ways in one article's English is flagged where it changes."""

from __future__ import annotations

from pathlib import Path

from tarjama.server.text.names import arabic_skeleton, english_skeleton, rendering, variants_of

DATA = Path(__file__).resolve().parent / "fixtures" / "data"


def test_names_sound_alike_across_scripts() -> None:
    assert arabic_skeleton("مارتيلي") == english_skeleton("Martelly") == english_skeleton("Martelli") == "MRTL"
    assert rendering("مارتيلي", "It is Martelly's fifth CEP in four years.") == "Martelly"
    assert rendering("ميندوزا", "Rolando Mendoza fired his M16 rifle.") == "Mendoza"
    assert rendering("الحكومة", "The Government said so.") is None, "a common word is not a name"


def test_a_name_spelt_two_ways_is_flagged_on_the_later_sentences() -> None:
    flags, variants = variants_of(
        [
            ("قال مارتيلي إن الانتخابات ستجرى في موعدها", "Martelly said the elections would be held on time"),
            ("وأضاف مارتيلي أن اللجنة مستعدة", "Martelli added that the commission was ready"),
            ("ثم غادر مارتيلي القصر", "Then Martelly left the palace"),
            ("وقال الرئيس إن الحكومة مستعدة", "The President said the Government was ready"),
        ]
    )
    assert flags == [False, True, False, False]
    assert [(v.source, v.renderings) for v in variants] == [("مارتيلي", ("Martelly", "Martelli"))]


def test_human_translations_of_whole_articles_are_rarely_flagged() -> None:
    """FLORES devtest, article by article: the human English keeps its names' spellings, so almost
    nothing may be flagged (what is, is a true variant or a near-sounding word)."""
    rows = (DATA / "flores200-devtest.metadata.tsv").read_text(encoding="utf-8").splitlines()[1:]
    arabic = (DATA / "flores200-devtest.ara").read_text(encoding="utf-8").splitlines()
    english = (DATA / "flores200-devtest.eng").read_text(encoding="utf-8").splitlines()
    articles: dict[str, list[tuple[str, str]]] = {}
    for row, a, e in zip(rows, arabic, english, strict=True):
        articles.setdefault(row.split("\t")[0], []).append((a, e))
    flagged = sum(sum(variants_of(sentences)[0]) for sentences in articles.values())
    assert flagged / len(arabic) < 0.01, flagged
