"""The reading page and the newsroom's stored glossaries, in headless Chromium (Debian's chromium, driven by
playwright, as tests/test_http.py does): the picker lists them, the chosen one is applied to a translation
and named, and "add to glossary" on a NAME_VARIANT keeps the editor's spelling (or shows why it cannot)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port, needs, serving_http

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WRITER = "page-writer-token-0123456789abcdef"
READER = "page-reader-token-0123456789abcdef"
# With the memorised model, a second paragraph naming مارتيلي with its Latin spelling beside it gets
# "Martelli" (the protected Latin name put back) after the memorised sentence's "Martelly": NAME_VARIANT.
MARTELLI = "قال مارتيلي (Martelli) ذلك."


def chromium() -> str | None:
    return os.environ.get("TARJAMA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(fixture_models, cache_dir, tmp_path_factory) -> Iterator[Any]:  # noqa: ANN001
    state = tmp_path_factory.mktemp("page-glossary-state")
    with serving_http(
        fixture_models, cache_dir, "--state-dir", str(state), token=WRITER, more_tokens=f"reader:{READER}\n"
    ) as process:
        yield process


def api(base: str, path: str, body: object, token: str = WRITER) -> tuple[int, dict[str, Any]]:
    """(status, JSON answer) of one native API call."""
    request = urllib.request.Request(base + path, json.dumps(body, ensure_ascii=False).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def stored(base: str) -> list[dict[str, Any]]:
    """The server's glossaries, newest first, each with its entries as (source, target) pairs."""
    listed = api(base, "/v1/glossaries:list", {})[1].get("glossaries", [])
    out = []
    for g in listed:
        full = api(base, "/v1/glossaries:get", {"glossary_id": g["glossary_id"], "include_entries": True})[1]
        out.append({**g, "entries": [(e["source"], e["target"]) for e in full.get("entries", [])]})
    return out


@contextlib.contextmanager
def reading_page(base: str, token: str | None) -> Iterator[Any]:
    """The reading page in Chromium with `token` typed in; fails the test on a script error or on
    anything the content security policy refused (an inline style or script)."""
    sync_api = needs("playwright.sync_api", "test")
    executable = chromium()
    if executable is None:
        pytest.skip("Debian's chromium is needed (CI installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))
            page.goto(base + "/")
            if token:
                page.locator("summary", has_text="Token").click()
                page.fill("#token", token)
                page.dispatch_event("#token", "change")
            yield page
            assert not errors, errors
        finally:
            browser.close()


def translate(page: Any, text: str) -> None:
    page.fill("#source", text)
    page.click("#translate")
    page.wait_for_function(
        "() => !document.querySelector('#translate').disabled"
        " && !document.querySelector('#progress').textContent.startsWith('Translating')",
        timeout=60_000,
    )


def english(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#paragraphs > li .en").all_inner_texts()]


def test_the_picker_lists_the_glossaries_and_the_chosen_one_is_applied(server, memorised_pairs) -> None:
    source, plain = memorised_pairs[0]
    word = max(source.split(), key=len)  # a long Arabic word of the memorised sentence
    # A name with markup in it shows as written: the page sets it as text, never as HTML.
    status, made = api(server.http, "/v1/glossaries:create", {
        "name": "Desk <b>names</b>", "entries": [{"source": word, "target": "Stored Rendering"}],
        "source_lang": "ar", "target_lang": "en",
    })  # fmt: skip
    assert status == 200, made
    with reading_page(server.http, WRITER) as page:
        page.wait_for_selector("#glossary-choice:not([hidden])")
        option = page.locator(f"#glossary option[value='{made['glossary_id']}']")
        assert option.inner_text() == "Desk <b>names</b> (1 entry)"
        assert page.locator("#glossary option").first.inner_text() == "none"
        assert page.input_value("#glossary") == "", "none is the default"
        assert page.locator("#glossary b").count() == 0
        translate(page, source)
        assert english(page) == [plain] and "glossary" not in page.inner_text("#progress")
        page.select_option("#glossary", made["glossary_id"])
        translate(page, source)
        assert "Stored Rendering" in english(page)[0]
        assert page.inner_text("#progress").endswith("with the glossary “Desk <b>names</b>”")
        assert page.is_hidden("#error")


def test_add_to_glossary_on_a_name_variant_keeps_the_editors_spelling(server, memorised_pairs) -> None:
    article = memorised_pairs[1][0] + "\n\n" + MARTELLI
    with reading_page(server.http, WRITER) as page:
        page.on("dialog", lambda dialog: dialog.accept("Newsroom names"))
        translate(page, article)
        assert english(page)[0] == "It is Martelly's fifth CEP in four years."
        # The flagged sentence carries the control; it leads to the name's spellings.
        flagged = page.locator("#paragraphs > li").nth(1).locator(".en")
        assert "name variant" in flagged.locator(".flag").inner_text()
        flagged.locator("button.name-fix").click()
        assert page.evaluate("document.activeElement.id") == "name-0"
        assert page.is_visible("#names")
        assert page.inner_text("#names-list .name-source") == "مارتيلي"
        assert page.locator("#name-0 option").all_inner_texts() == ["Martelly", "Martelli"]

        # No glossary chosen: the page offers to create one, named at the prompt, and selects it.
        page.select_option("#name-0", "Martelly")
        page.click("#names-list button.add-term")
        page.wait_for_selector("#names-status:has-text('Added')")
        first = [g for g in stored(server.http) if g["name"] == "Newsroom names"]
        assert [g["entries"] for g in first] == [[("مارتيلي", "Martelly")]]
        assert page.input_value("#glossary") == first[0]["glossary_id"]
        assert "Newsroom names (1 entry)" in page.inner_text("#glossary")

        # A glossary chosen: a new one of its entries plus the new spelling replaces it, under its name.
        status, desk = api(server.http, "/v1/glossaries:create", {
            "name": "Wire desk", "entries": [{"source": "هايتي", "target": "Haiti"}],
            "source_lang": "ar", "target_lang": "en",
        })  # fmt: skip
        assert status == 200
        page.dispatch_event("#token", "change")  # the list is read again when the token changes
        page.wait_for_selector(f"#glossary option[value='{desk['glossary_id']}']", state="attached")
        page.select_option("#glossary", desk["glossary_id"])
        page.select_option("#name-0", "Martelli")
        page.click("#names-list button.add-term")
        page.wait_for_selector("#names-status:has-text('Wire desk')")
        assert "Added مارتيلي → Martelli to “Wire desk” (2 entries)" in page.inner_text("#names-status")
        wire = [g for g in stored(server.http) if g["name"] == "Wire desk"]
        assert len(wire) == 1 and wire[0]["glossary_id"] != desk["glossary_id"], "the old one is deleted"
        assert wire[0]["entries"] == [("هايتي", "Haiti"), ("مارتيلي", "Martelli")]
        assert page.input_value("#glossary") == wire[0]["glossary_id"]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "reading-page-names.png"), full_page=True)
        assert api(server.http, "/v1/glossaries:get", {"glossary_id": desk["glossary_id"]})[0] == 404
        # Translating again names the glossary it used.
        translate(page, article)
        assert page.inner_text("#progress").endswith("with the glossary “Wire desk”")


def test_a_token_without_the_glossaries_right_sees_the_servers_refusal(server, memorised_pairs) -> None:
    article = memorised_pairs[1][0] + "\n\n" + MARTELLI
    before = len(stored(server.http))
    with reading_page(server.http, READER) as page:
        page.on("dialog", lambda dialog: dialog.accept("Reader's names"))
        translate(page, article)
        page.click("#names-list button.add-term")
        page.wait_for_selector("#names-status.refused")
        refusal = page.inner_text("#names-status")
        assert refusal.startswith("Not added: ") and "needs a token with the 'glossaries' right" in refusal
        assert page.is_hidden("#glossary-note"), "reading the list needs no right"
    assert len(stored(server.http)) == before


def test_a_glossary_database_that_is_down_is_one_line_and_translating_still_works(
    fixture_models,
    cache_dir,
    memorised_pairs,  # noqa: ANN001
) -> None:
    url = f"postgresql://tarjama:secret-password@127.0.0.1:{free_port()}/tarjama"
    source, plain = memorised_pairs[0]
    with serving_http(fixture_models, cache_dir, "--database-url", url) as process:
        with reading_page(process.http, None) as page:
            page.wait_for_selector("#glossary-note:not([hidden])", timeout=30_000)
            note = page.inner_text("#glossary-note")
            assert note.startswith("Glossaries unavailable: ") and "glossary database" in note
            assert page.is_hidden("#glossary-choice")
            translate(page, source)
            assert english(page) == [plain] and page.is_hidden("#error")
