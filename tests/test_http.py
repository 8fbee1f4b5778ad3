"""--http-port: the same answers and messages as gRPC, as JSON over HTTP, under the same tokens; and the
reading page in headless Chromium (Debian's chromium, driven by playwright)."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tarjama.client import TarjamaClient
from tarjama.client.client import to_dict

from conftest import article, needs, saved_page, serving_http

TOKEN = "http-desk-token-0123456789abcdef"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def http_server(fixture_models, cache_dir):  # noqa: ANN001, ANN201
    with serving_http(fixture_models, cache_dir, "--max-queue-tokens", "3000", token=TOKEN) as process:
        yield process


def call(base: str, path: str, body: object | bytes | None = None, token: str | None = TOKEN, timeout: float = 60):
    """(status, headers, body bytes) of one HTTP request."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body, ensure_ascii=False).encode()
    request = urllib.request.Request(base + path, data=data, method="POST" if data is not None else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def error_of(body: bytes) -> dict:  # type: ignore[type-arg]
    return json.loads(body)["error"]


def test_translate_over_http_is_the_cli_json(http_server, memorised_pairs) -> None:
    arabic, english = article(memorised_pairs, [2, 1, 3])
    text = "\n".join(arabic)
    status, headers, body = call(http_server.http, "/v1/translate", {"id": "story", "text": text, "summarize": True})
    assert status == 200 and headers["content-type"] == "application/json"
    answer = json.loads(body)
    with TarjamaClient(http_server.address, token=TOKEN, timeout=60) as client:
        served = to_dict(client.translate(text, id="story", summarize=True))
    for response in (answer, served):
        response["info"].pop("timings")
    assert answer == served
    assert [p["translation"] for p in answer["paragraphs"]] == english
    status, _, body = call(http_server.http, "/v1/segment", {"text": text})
    assert status == 200 and len(json.loads(body)["paragraphs"]) == 3
    status, _, body = call(http_server.http, "/v1/summarize", {"text": " ".join(english), "length": "SHORT"})
    assert status == 200 and json.loads(body)["summary"]["sentences"]


def test_the_stream_is_ndjson_in_order_ending_with_the_summary(http_server, memorised_pairs) -> None:
    arabic, english = article(memorised_pairs, [1, 2] * 10)
    status, headers, body = call(
        http_server.http, "/v1/translate:stream", {"text": "\n".join(arabic), "summarize": True}
    )
    assert status == 200 and headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert [p["translation"] for m in lines for p in m["paragraphs"]] == english
    assert lines[-1]["done"] and lines[-1]["summary"]["sentences"] and not any(m["done"] for m in lines[:-1])


def test_bad_requests_get_the_grpc_message_and_the_right_http_status(http_server, memorised_pairs) -> None:
    base = http_server.http
    status, _, body = call(base, "/v1/translate", {"text": ""})
    assert status == 400 and error_of(body)["status"] == "INVALID_ARGUMENT"
    assert error_of(body)["message"] == "text is empty: send the article in text (or paragraphs)"
    for bad, expected in (
        (b"{not json", "is not a tarjama.v1.TranslateRequest in proto3 JSON"),
        (b'{"txt": "x"}', "is not a tarjama.v1.TranslateRequest in proto3 JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "is not a tarjama.v1.TranslateRequest in proto3 JSON"),
    ):
        status, _, body = call(base, "/v1/translate", bad)
        assert status == 400 and expected in error_of(body)["message"], body
    status, headers, body = call(base, "/v1/translate", {"text": "نص"}, token=None)
    assert status == 401 and headers["www-authenticate"] == "Bearer" and "no bearer token" in error_of(body)["message"]
    status, _, _ = call(base, "/v1/translate", {"text": "نص"}, token="wrong")
    assert status == 401
    status, _, body = call(base, "/v1/translate", b'{"text": "' + b"a" * (5 * 1024 * 1024) + b'"}')
    assert status == 413 and "at most" in error_of(body)["message"]
    status, _, body = call(base, "/v1/translate?timeout=-1", {"text": "نص"})
    assert status == 400 and "timeout" in error_of(body)["message"]
    status, _, body = call(base, "/v1/export?format=pdf", {"id": "x"})
    assert status == 400 and "xliff" in error_of(body)["message"]
    status, _, body = call(base, "/healthz", token=None)
    assert status == 200 and body == b"SERVING\n"
    # Starlette's own refusals come in the API's error shape too.
    status, _, body = call(base, "/v1/nothing", {"text": "نص"})
    assert status == 404 and error_of(body)["status"] == "NOT_FOUND" and "/openapi.json" in error_of(body)["message"]
    status, headers, body = call(base, "/v1/translate/", {"text": "نص"})  # no redirect built from Host
    assert status == 404 and "location" not in {name.lower() for name in headers}
    status, headers, body = call(base, "/v1/translate")  # a GET
    assert status == 405 and headers["allow"] == "POST" and "use POST" in error_of(body)["message"]
    status, headers, body = call(base, "/favicon.ico", token=None)
    assert status == 200 and headers["content-type"].startswith("image/svg+xml") and body.startswith(b"<svg")
    # Articles are not cached on the way; the page may talk to nothing but this server.
    _, headers, _ = call(base, "/v1/translate", {"text": memorised_pairs[0][0]})
    assert headers["cache-control"] == "no-store" and headers["x-content-type-options"] == "nosniff"
    _, headers, _ = call(base, "/", token=None)
    assert "connect-src 'self'" in headers["content-security-policy"] and headers["referrer-policy"] == "no-referrer"
    # Overload: a long streamed article holds the queue (--max-queue-tokens 3000); the next is refused.
    arabic, _ = article(memorised_pairs, [3] * 120)
    request = urllib.request.Request(
        base + "/v1/translate:stream", data=json.dumps({"text": "\n".join(arabic)}).encode(), method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=120) as streaming:
        streaming.readline()  # the first paragraph is out: the rest is queued
        status, _, body = call(base, "/v1/translate", {"text": "\n".join(arabic)})
        assert status == 429 and error_of(body)["status"] == "RESOURCE_EXHAUSTED", body
    status, _, _ = call(base, "/v1/translate", {"text": memorised_pairs[0][0]})
    assert status == 200, "still serving"


def test_export_turns_a_response_into_xliff_and_tmx(http_server, memorised_pairs) -> None:
    arabic, english = article(memorised_pairs, [2, 2])
    _, _, body = call(http_server.http, "/v1/translate", {"text": "\n".join(arabic)})
    status, headers, xliff = call(http_server.http, "/v1/export?format=xliff", json.loads(body))
    assert status == 200 and headers["content-type"].startswith("application/xliff+xml")
    targets = [t.text for t in ET.fromstring(xliff).iter("{urn:oasis:names:tc:xliff:document:2.0}target")]
    assert " ".join(targets) == " ".join(english)
    status, _, tmx = call(http_server.http, "/v1/export?format=tmx", json.loads(body))
    assert status == 200 and len(ET.fromstring(tmx).findall("body/tu")) == 4


def test_extract_keeps_the_article_of_a_saved_page(http_server, memorised_pairs) -> None:
    needs("trafilatura", "server")
    body = [memorised_pairs[i][0] for i in range(4)]
    status, _, answer = call(http_server.http, "/v1/extract", {"html": saved_page(body)})
    assert status == 200, answer
    found = json.loads(answer)
    assert found["paragraphs"] == [body[0], "أحمد علي", "2024-03-12", *body[1:]]
    assert "+ الخط -" in found["dropped"] and found["title"] == body[0]
    for bad in ({"page": "x"}, {"html": "  "}, [1, 2]):
        status, _, answer = call(http_server.http, "/v1/extract", bad)
        assert status == 400 and "html" in error_of(answer)["message"]
    assert call(http_server.http, "/v1/extract", {"html": "<p>x</p>"}, token=None)[0] == 401


def chromium() -> str | None:
    return os.environ.get("TARJAMA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_reading_page_in_headless_chromium(http_server, memorised_pairs) -> None:
    sync_api = needs("playwright.sync_api", "test")
    executable = chromium()
    if executable is None:
        pytest.skip("Debian's chromium is needed (CI installs it)")
    arabic, english = article(memorised_pairs, [2, 1, 3, 1])
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(http_server.http + "/")
            assert page.title().startswith("Tarjama")
            page.locator("summary", has_text="Token").click()
            page.fill("#token", TOKEN)
            page.dispatch_event("#token", "change")
            page.fill("#source", "\n\n".join(arabic) + "\n\nReuters")
            page.press("#source", "Control+Enter")  # the keyboard path
            page.wait_for_selector("#progress:has-text('paragraphs in')", timeout=60_000)
            rows = page.locator("#paragraphs > li")
            assert rows.count() == 5
            assert [rows.nth(i).locator(".en").inner_text() for i in range(4)] == english
            arabic_cell = rows.nth(0).locator(".ar")
            assert arabic_cell.get_attribute("dir") == "rtl"
            assert arabic_cell.evaluate("node => getComputedStyle(node).direction") == "rtl"
            assert arabic_cell.inner_text().strip() == arabic[0]
            # Hovering an English sentence lights up its Arabic counterpart, and focusing does too.
            rows.nth(0).locator(".en .sentence").nth(1).hover()
            lit = page.locator(".ar .sentence.hl")
            assert lit.count() == 1 and lit.inner_text() in arabic[0] and lit.get_attribute("data-key") == "0-1"
            rows.nth(2).locator(".ar .sentence").nth(2).focus()
            assert page.locator(".en .sentence.hl").get_attribute("data-key") == "2-2"
            # The passthrough byline carries its flag and the reason, and reads left to right even in the
            # Arabic column (its final period at the end, not the start).
            flagged = rows.nth(4).locator(".en .sentence.flagged")
            assert flagged.count() == 1 and "returned as written" in flagged.get_attribute("title")
            latin = rows.nth(4).locator(".ar")
            assert latin.get_attribute("dir") == "ltr"
            assert latin.evaluate("node => getComputedStyle(node).direction") == "ltr"
            # The summary's paragraph references jump to their paragraph.
            references = page.locator("#summary-list a[data-jump]")
            assert references.count() >= 1
            target = references.first.get_attribute("data-jump")
            references.first.click()
            assert page.locator(f"#p{target}").get_attribute("class") == "jumped"
            page.screenshot(path=str(ARTIFACTS / "reading-page.png"), full_page=True)
            # A phone's width (390 px): nothing runs past the edge, every button is on the screen.
            page.set_viewport_size({"width": 390, "height": 844})
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            for button in ("#download-xliff", "#download-json", "#copy", "#translate"):
                box = page.locator(button).bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (button, box)
            page.screenshot(path=str(ARTIFACTS / "reading-page-390.png"), full_page=True)
            page.set_viewport_size({"width": 1366, "height": 900})
            with page.expect_download() as download:
                page.click("#download-xliff")
            assert download.value.suggested_filename.endswith(".xlf")
            # A saved page loads as its article, and the page says what it dropped.
            saved = ARTIFACTS / "saved-page.html"
            saved.write_text(saved_page(arabic), encoding="utf-8")
            page.set_input_files("#file", str(saved))
            page.wait_for_selector("#extracted:not([hidden])", timeout=30_000)
            assert page.input_value("#source").split("\n\n")[3:] == arabic[1:]
            assert "dropped" in page.inner_text("#extracted")
            # One paragraph is "1 paragraph", not "1 paragraphs".
            page.fill("#source", arabic[0])
            page.click("#translate")
            page.wait_for_selector("#progress:has-text('1 paragraph in')", timeout=60_000)
            assert not errors, errors
        finally:
            browser.close()
