"""The LibreTranslate-compatible API (doors/libretranslate_api.py), driven by LibreTranslate's own Python client
(`libretranslatepy`) against a live `tarjama serve`, with and without tokens, and by hand for what that client
does not send: JSON arrays (as Weblate sends them), html, forms and multipart, malformed bodies, the limits,
and floods with gRPC health polled throughout.
"""

from __future__ import annotations

import concurrent.futures
import json
import random
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from conftest import FLOOD_HEALTH_BOUND_S, HealthMonitor, article, serving_http

libretranslatepy = pytest.importorskip("libretranslatepy")
LibreTranslateAPI = libretranslatepy.LibreTranslateAPI

TOKEN = "lt-desk-token-0123456789abcdef"
MAX_PARAGRAPHS, MAX_CHARACTERS, MAX_BYTES = 40, 12_000, 100_000
LIMITS = ["--max-paragraphs", str(MAX_PARAGRAPHS), "--max-characters", str(MAX_CHARACTERS),
          "--max-message-bytes", str(MAX_BYTES)]  # fmt: skip


@pytest.fixture(scope="module")
def open_server(fixture_models, cache_dir) -> Iterator[Any]:  # noqa: ANN001
    with serving_http(fixture_models, cache_dir, *LIMITS) as process:
        yield process


@pytest.fixture(scope="module")
def keyed_server(fixture_models, cache_dir) -> Iterator[Any]:  # noqa: ANN001
    with serving_http(fixture_models, cache_dir, *LIMITS, token=TOKEN, token_name="desk") as process:
        yield process


def http_error(call: Any) -> tuple[int, dict[str, Any]]:
    """What libretranslatepy raises for an error answer (urllib's HTTPError): its status and JSON body."""
    with pytest.raises(urllib.error.HTTPError) as raised:
        call()
    return raised.value.code, json.loads(raised.value.read())


def post(server: Any, path: str, **kwargs: Any) -> requests.Response:
    return requests.post(server.http + path, timeout=60, **kwargs)


# The published client, as a newsroom script would use it.


def test_the_client_translates_articles_with_their_layout(open_server: Any, memorised_pairs: list) -> None:
    client = LibreTranslateAPI(open_server.http)
    arabic, english = article(memorised_pairs, [2, 1, 3])
    assert client.translate(arabic[0], "ar", "en") == english[0]
    # Paragraphs on their lines, a blank line between: the English keeps the article's layout.
    assert client.translate("\n\n".join(arabic) + "\n", "ar", "en") == "\n\n".join(english) + "\n"
    assert client.translate("\r\n".join(arabic), "ar", "en") == "\r\n".join(english)


def test_the_client_with_a_key(keyed_server: Any, memorised_pairs: list) -> None:
    arabic, english = article(memorised_pairs, [2, 2])
    text = "\n".join(arabic)
    assert LibreTranslateAPI(keyed_server.http, api_key=TOKEN).translate(text, "ar", "en") == "\n".join(english)
    # A wrong key and no key: 403 as LibreTranslate answers an invalid api_key, in its error shape.
    status, body = http_error(lambda: LibreTranslateAPI(keyed_server.http, api_key="wrong").translate(text, "ar", "en"))
    assert (status, body) == (403, {"error": "Invalid API key"})
    status, body = http_error(lambda: LibreTranslateAPI(keyed_server.http).translate(text, "ar", "en"))
    assert status == 403 and "missing api_key" in body["error"]
    status, _ = http_error(lambda: LibreTranslateAPI(keyed_server.http, api_key="wrong").detect(text))
    assert status == 403
    # The key is checked in constant time against the tokens file, and the access line names its owner.
    assert "caller=desk" in keyed_server.log() and arabic[0] not in keyed_server.log()


def test_the_client_detects_and_lists_languages(keyed_server: Any, memorised_pairs: list) -> None:
    client = LibreTranslateAPI(keyed_server.http, api_key=TOKEN)
    assert client.detect(memorised_pairs[0][0]) == [{"confidence": 100.0, "language": "ar"}]
    assert client.detect("The minister said") == [{"confidence": 100.0, "language": "en"}]
    mixed = client.detect("قال الوزير CNN")
    assert [d["language"] for d in mixed] == ["ar", "en"] and mixed[0]["confidence"] > 50
    assert client.detect("2024 ...") == [{"confidence": 0.0, "language": "en"}]  # LibreTranslate's "nothing"
    # /languages is open (libretranslatepy sends its key in a GET body; Weblate sends none).
    for languages in (client.languages(), LibreTranslateAPI(keyed_server.http).languages()):
        assert languages == [{"code": "ar", "name": "Arabic", "targets": ["en"]},
                             {"code": "en", "name": "English", "targets": []}]  # fmt: skip


def test_the_client_gets_a_400_naming_the_pair_it_asked_for(open_server: Any, memorised_pairs: list) -> None:
    client = LibreTranslateAPI(open_server.http)
    text = memorised_pairs[0][0]
    for source, target, named in (("ar", "fr", "fr"), ("en", "es", "en"), ("fr", "en", "fr"), ("ar", "ar", "ar")):
        status, body = http_error(lambda s=source, t=target: client.translate(text, s, t))
        assert status == 400 and body["error"].startswith(named) and "Arabic (ar) to English (en)" in body["error"]
    # Never a silent Arabic->English: the same text to English is translated.
    assert client.translate(text, "ar", "en") == memorised_pairs[0][1]


def test_the_client_gets_413_for_a_body_over_the_limit(open_server: Any) -> None:
    status, body = http_error(lambda: LibreTranslateAPI(open_server.http).translate("ب" * MAX_BYTES, "ar", "en"))
    assert status == 413 and f"at most {MAX_BYTES}" in body["error"]
    # Within the bytes but over --max-characters: a 400 that says so (an article is one request's work).
    status, body = http_error(lambda: LibreTranslateAPI(open_server.http).translate("ب " * MAX_CHARACTERS, "ar", "en"))
    assert status == 400 and f"at most {MAX_CHARACTERS}" in body["error"]


# What Weblate, OmegaT and others send, by hand.


def test_an_array_as_weblate_sends_it_answers_in_order(keyed_server: Any, memorised_pairs: list) -> None:
    """Weblate's LibreTranslate backend: JSON {"api_key", "q": [texts], "source", "target"}, and it refuses an
    answer whose translatedText is not a list of strings as long as q."""
    chosen = random.Random(4).sample(memorised_pairs, min(12, len(memorised_pairs)))
    texts = [a for a, _ in chosen] + ["  ", "<b>%s</b> 42"]  # blank and letterless texts come back as they are
    answer = post(keyed_server, "/translate", json={"api_key": TOKEN, "q": texts, "source": "ar", "target": "en"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"translatedText": [e for _, e in chosen] + ["  ", "<b>%s</b> 42"]}
    # Weblate asks /languages for both codes, with no key.
    codes = [language["code"] for language in requests.get(keyed_server.http + "/languages", timeout=10).json()]
    assert {"ar", "en"} <= set(codes)


def test_html_and_auto_and_alternatives(open_server: Any, memorised_pairs: list) -> None:
    (a1, e1), (a2, e2) = memorised_pairs[:2]
    answer = post(open_server, "/translate", json={"q": f'<p class="lead">{a1}</p><p><a href="/x">{a2}</a></p>',
                                                   "source": "ar", "target": "en", "format": "html"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"translatedText": f'<p class="lead">{e1}</p><p><a href="/x">{e2}</a></p>'}
    # source=auto: LibreTranslate's detectedLanguage; alternatives asked for: none made, in its shape.
    answer = post(open_server, "/translate", json={"q": a1, "source": "auto", "target": "en", "alternatives": 3})
    assert answer.json() == {"translatedText": e1, "detectedLanguage": {"confidence": 100.0, "language": "ar"},
                             "alternatives": []}  # fmt: skip
    answer = post(open_server, "/translate", json={"q": [a1, a2], "source": "auto", "target": "en", "alternatives": 1})
    assert answer.json() == {"translatedText": [e1, e2], "alternatives": [[], []],
                             "detectedLanguage": [{"confidence": 100.0, "language": "ar"}] * 2}  # fmt: skip
    # English sent as auto is not translated as if it were Arabic.
    answer = post(open_server, "/translate", json={"q": [a1, "The minister"], "source": "auto", "target": "en"})
    assert answer.status_code == 400 and answer.json()["error"].startswith("q[1] is not Arabic (detected en)")


def test_forms_urlencoded_and_multipart_and_the_key_in_the_query(keyed_server: Any, memorised_pairs: list) -> None:
    (a1, e1), (a2, e2) = memorised_pairs[:2]
    form = {"q": a1, "source": "ar", "target": "en", "api_key": TOKEN}
    assert post(keyed_server, "/translate", data=form).json() == {"translatedText": e1}
    # q repeated in a form: an array, answered as one.
    repeated = [("q", a1), ("q", a2), ("source", "ar"), ("target", "en"), ("api_key", TOKEN)]
    assert post(keyed_server, "/translate", data=repeated).json() == {"translatedText": [e1, e2]}
    multipart = {key: (None, value) for key, value in form.items()}
    answer = post(keyed_server, "/translate", files=multipart)
    assert answer.request.headers["content-type"].startswith("multipart/form-data")
    assert answer.json() == {"translatedText": e1}
    # OmegaT's plugin posts q, source and target only: its URL can carry the key.
    answer = post(keyed_server, "/translate?api_key=" + TOKEN, data={"q": a1, "source": "ar", "target": "en"})
    assert answer.json() == {"translatedText": e1}
    # Tarjama's own bearer token is taken too; a file in the form is refused.
    answer = post(keyed_server, "/translate", data={"q": a1, "source": "ar", "target": "en"},
                  headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert answer.json() == {"translatedText": e1}
    answer = post(keyed_server, "/translate", data=form, files={"file": ("a.txt", b"x")})
    assert answer.status_code == 400 and "error" in answer.json()
    answer = post(keyed_server, "/detect", data={"q": a1, "api_key": TOKEN})
    assert answer.json() == [{"confidence": 100.0, "language": "ar"}]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"q": "x", "source": ', "Invalid JSON format"),
        (b"[1, 2]", "Invalid JSON format: send a JSON object"),
        (b'{"q": 5, "source": "ar", "target": "en"}', "q must be a string or an array of strings, not a number"),
        (b'{"q": {"a": 1}, "source": "ar", "target": "en"}', "not an object"),
        (b'{"q": ["a", 7], "source": "ar", "target": "en"}', "q[1] must be a string"),
        (b'{"q": [], "source": "ar", "target": "en"}', "missing q parameter"),
        (b'{"source": "ar", "target": "en"}', "missing q parameter"),
        (b'{"q": "x", "target": "en"}', "missing source parameter"),
        (b'{"q": "x", "source": "ar"}', "missing target parameter"),
        (b'{"q": "x", "source": ["ar"], "target": "en"}', "source must be a string"),
        (b'{"q": "x", "source": "ar", "target": "en", "format": "pdf"}', "pdf format is not supported"),
        (b'{"q": "x", "source": "ar", "target": "en", "alternatives": "many"}', "alternatives parameter"),
        (b'{"q": "x", "source": "ar", "target": "en", "alternatives": 1.5}', "alternatives parameter"),
        (b'\xff\xfe{"q": "x"}', "not UTF-8"),
    ],
)  # fmt: skip
def test_malformed_json_is_a_400_in_libretranslate_shape(open_server: Any, body: bytes, said: str) -> None:
    answer = post(open_server, "/translate", data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/json"
    assert list(answer.json()) == ["error"] and said in answer.json()["error"], answer.json()


def test_other_bodies_are_refused_in_shape(open_server: Any) -> None:
    answer = post(open_server, "/translate", data=b"q=x", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 400 and "send JSON" in answer.json()["error"]
    answer = post(open_server, "/translate", data=b"q=%FF&source=ar&target=en")
    assert answer.status_code == 400 and "not UTF-8" in answer.json()["error"]
    answer = post(open_server, "/translate", data=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data"})
    assert answer.status_code == 400 and "multipart" in answer.json()["error"]
    # Without tokens, another site's page is refused (the browser guard), whatever the body's type.
    answer = post(open_server, "/translate", data={"q": "x", "source": "ar", "target": "en"},
                  headers={"Origin": "https://elsewhere.example"})  # fmt: skip
    assert answer.status_code == 403


def test_huge_arrays_are_refused_naming_the_limit(open_server: Any, memorised_pairs: list) -> None:
    many = {"q": ["ب"] * (MAX_PARAGRAPHS + 1), "source": "ar", "target": "en"}
    answer = post(open_server, "/translate", json=many)
    assert answer.status_code == 400
    assert answer.json()["error"] == (f"Invalid request: q has {MAX_PARAGRAPHS + 1} texts; this server accepts at "
                                      f"most {MAX_PARAGRAPHS} in one request (--max-paragraphs)")  # fmt: skip
    long = {"q": ["ب" * (MAX_CHARACTERS // 4)] * 5, "source": "ar", "target": "en"}
    answer = post(open_server, "/translate", json=long)
    assert answer.status_code == 400 and "characters in all" in answer.json()["error"]
    assert "--max-characters" in answer.json()["error"]
    # A form of many q's is bounded too (the parser's field cap), and so is /detect.
    answer = post(open_server, "/translate", data=[("q", "ب")] * (MAX_PARAGRAPHS * 3) + [("source", "ar")])
    assert answer.status_code == 400
    assert post(open_server, "/detect", json={"q": ["ب"] * (MAX_PARAGRAPHS + 1)}).status_code == 400
    # The lines of an array's texts are one request's paragraphs: bounded in all, naming the flag.
    arabic, _ = article(memorised_pairs, [1])
    answer = post(open_server, "/translate", json={"q": [arabic[0], "ب\n" * MAX_PARAGRAPHS], "source": "ar",
                                                   "target": "en"})  # fmt: skip
    assert answer.status_code == 400, answer.json()
    assert answer.json()["error"] == (f"Invalid request: q has {MAX_PARAGRAPHS + 1} lines to translate in all; this "
                                      f"server accepts at most {MAX_PARAGRAPHS} in one request (--max-paragraphs)")


def test_frontend_settings_and_routes(keyed_server: Any) -> None:
    settings = requests.get(keyed_server.http + "/frontend/settings", timeout=10).json()
    assert settings["apiKeys"] is True and settings["keyRequired"] is True and settings["charLimit"] == MAX_CHARACTERS
    assert settings["language"] == {"source": {"code": "ar", "name": "Arabic"}, "target": {"code": "en",
                                                                                         "name": "English"}}
    assert requests.get(keyed_server.http + "/translate", timeout=10).status_code == 405
    assert post(keyed_server, "/translate?timeout=0", json={"q": "x", "api_key": TOKEN}).status_code == 400


def test_a_flood_of_arrays_and_bad_bodies_keeps_health_and_order(open_server: Any, memorised_pairs: list) -> None:
    """Many clients at once, each an array at the limits (texts run concurrently through the servicer), with
    malformed and oversized bodies among them: every good answer in its own order, every bad one a 4xx in
    shape, and gRPC health within the flood bound (against an idle server's in the same window)."""
    rng = random.Random(7)
    sessions = [requests.Session() for _ in range(8)]

    def good(n: int) -> None:
        chosen = [rng.choice(memorised_pairs) for _ in range(MAX_PARAGRAPHS)]
        answer = sessions[n % 8].post(open_server.http + "/translate", timeout=120,
                                      json={"q": [a for a, _ in chosen], "source": "ar", "target": "en"})  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json()["translatedText"] == [e for _, e in chosen]

    def bad(n: int) -> None:
        body = [b"{" * 50_000, b"q=" + b"%D8%A8" * 40_000, json.dumps({"q": [[]] * 5000}).encode(),
                b'{"q": "' + b"x" * (MAX_BYTES + 10) + b'"}'][n % 4]  # fmt: skip
        kind = "application/x-www-form-urlencoded" if body.startswith(b"q=") else "application/json"
        answer = sessions[n % 8].post(open_server.http + "/translate", data=body, timeout=60,
                                      headers={"Content-Type": kind})  # fmt: skip
        assert answer.status_code in (400, 413) and "error" in answer.json(), answer.text

    with HealthMonitor(open_server.address, bound_s=FLOOD_HEALTH_BOUND_S) as health:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for future in [pool.submit(good if n % 3 else bad, n) for n in range(36)]:
                future.result()
    print(health.report("LibreTranslate flood"))
    health.check("a flood of LibreTranslate arrays and bad bodies")
    assert open_server.proc.poll() is None


def test_detection_shares_never_pass_100() -> None:
    """Found by schemathesis: U+FDFD (a ligature symbol in the Arabic presentation forms, not a letter) was
    counted as Arabic and not as a letter, and one letter beside it gave confidence 120."""
    from tarjama.server.doors.libretranslate_api import detected

    for text in ("\ufdfd\ufdfd ب", "\ufdfd", "\ufdfa a", "٣٤ ب"):
        for found in detected(text):
            assert 0 <= found["confidence"] <= 100, (text, found)
    assert detected("\ufdfd") == [{"confidence": 0.0, "language": "en"}]


def test_arrays_at_the_default_limit_keep_health(fixture_models, cache_dir, memorised_pairs) -> None:  # noqa: ANN001
    """Four arrays of 2,000 texts (the default --max-paragraphs) at once, from a reader's token: their
    lines go as one request each, not as 8,000 requests started together (which held health 5 s: found
    by an attacker); HTML arrays run eight documents at a time. Health stays within the flood bound."""
    arabic, english = memorised_pairs[0]
    with serving_http(fixture_models, cache_dir) as server:
        with HealthMonitor(server.address, bound_s=FLOOD_HEALTH_BOUND_S) as health:
            with concurrent.futures.ThreadPoolExecutor(5) as pool:
                texts = [pool.submit(post, server, "/translate", json={"q": [arabic] * 2_000, "source": "ar",
                                                                        "target": "en"}) for _ in range(4)]  # fmt: skip
                markup = pool.submit(post, server, "/translate", json={"q": [f"<p>{arabic}</p>"] * 500,
                                                                       "source": "ar", "target": "en",
                                                                       "format": "html"})  # fmt: skip
                answers = [future.result() for future in texts]
                html = markup.result()
        health.check("four 2,000-text arrays and a 500-document HTML array at once")
    assert all(answer.status_code == 200 and answer.json()["translatedText"] == [english] * 2_000 for answer in answers)
    assert html.status_code == 200 and html.json()["translatedText"] == [f"<p>{english}</p>"] * 500
