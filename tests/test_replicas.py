"""Past one process: three `tarjama serve` replicas on loopback behind one client target. One is
killed (SIGKILL) and one drains (SIGTERM) under load; every request must still come back whole."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tarjama.client import TarjamaClient
from tarjama.client.client import SERVICE_CONFIG

from conftest import ServerProcess


def test_the_client_balances_and_retries_what_is_safe_to_retry() -> None:
    config = json.loads(json.dumps(SERVICE_CONFIG))
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    method, writes = config["methodConfig"]
    assert method["name"] == [{"service": "tarjama.v1.Translator"}]  # Translate, Segment, Summarize: idempotent
    assert set(method["retryPolicy"]["retryableStatusCodes"]) == {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}
    # Creating a glossary is not idempotent, and a repeated delete would answer NOT_FOUND: a more
    # specific name (the method) wins over the service's, and it has no retry policy.
    assert writes["name"] == [
        {"service": "tarjama.v1.Translator", "method": "CreateGlossary"},
        {"service": "tarjama.v1.Translator", "method": "DeleteGlossary"},
    ]
    assert "retryPolicy" not in writes


@pytest.mark.slow  # three servers, one killed and one drained: about 25 s
def test_three_replicas_lose_no_request_when_one_is_killed_and_one_drains(fixture_models, cache_dir, memorised_pairs):
    servers = [
        ServerProcess(
            [
                "--translation-model",
                str(fixture_models["memorised"]),
                "--summary-model",
                "none",
                "--cache-dir",
                str(cache_dir),
                "--threads",
                "1",
                "--grace-period-s",
                "10",
            ]  # fmt: skip
        )
        for _ in range(3)
    ]
    try:
        for server in servers:
            server.wait_serving()
        target = "ipv4:" + ",".join(server.address for server in servers)
        articles = [[memorised_pairs[(i + k) % len(memorised_pairs)] for k in range(4)] for i in range(360)]
        done = 0
        with TarjamaClient(target, timeout=120) as client, ThreadPoolExecutor(max_workers=8) as pool:

            def translate(i: int):  # noqa: ANN202
                return client.translate(paragraphs=[a for a, _ in articles[i]], id=f"article-{i}")

            futures = [pool.submit(translate, i) for i in range(len(articles))]
            for at, action in ((60, servers[0].kill), (150, servers[1].proc.terminate)):
                while sum(f.done() for f in futures) < at:
                    time.sleep(0.01)
                action()
            responses = [f.result() for f in futures]  # any failure raises here
            done = len(responses)
        assert done == len(articles)
        for i, response in enumerate(responses):
            assert response.id == f"article-{i}"
            assert [p.translation for p in response.paragraphs] == [e for _, e in articles[i]], i
            assert [p.index for p in response.paragraphs] == [0, 1, 2, 3]
        assert servers[1].proc.wait(30) == 0, "the drained replica exits cleanly"
        served = [server.log().count("/tarjama.v1.Translator/Translate OK") for server in servers]
        assert all(count > 0 for count in served), served
        assert served[2] > served[0], "after the kill the survivors took the load"
    finally:
        for server in servers:
            server.kill()
