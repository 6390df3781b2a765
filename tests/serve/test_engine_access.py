"""A locked engine, started as a user starts it (``python -m salience serve`` with
``GEMMA_WORKBENCH_ENGINE_TOKEN`` set and small limits), over plain HTTP and through the client.

What each test tries: no token, a wrong token, a token in the address, the right token (client
and CLI), a 10,000-row batch, too many new tokens or Integrated Gradients steps, a second request
while the token's only slot is busy, and a request that outlives the time limit. No answer and
no log line may hold the token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from engine_server import ROOT, running_engine

from salience.core.errors import EngineAccessError, InputError
from salience.core.types import GenerationSettings
from salience.serving.access import TOKEN_ENV
from salience.serving.remote import connect

TOKEN = "test-engine-token-5f2b9c1e0d7a4c3b"
PROMPT = "Taste-likes: Cheese. Taste-dislikes: eggs.\nRecommendation:"
REQUEST_SECONDS = 3
LIMITS = (
    "--max-new-tokens",
    "2000",
    "--max-batch-rows",
    "16",
    "--max-steps",
    "64",
    "--max-concurrent",
    "1",
    "--request-seconds",
    str(REQUEST_SECONDS),
)


@pytest.fixture(scope="module")
def locked(engine_gguf):
    env = {TOKEN_ENV: TOKEN}
    with running_engine(f"gguf:{engine_gguf}", replicas=1, num_cpus=0.5, env=env, args=LIMITS) as started:
        yield started
    assert not any(TOKEN in line for line in started.lines), "the engine printed its token"
    ray_logs = Path("/tmp/ray/session_latest/logs")  # the replicas' and the HTTP proxy's logs
    for log in ray_logs.rglob("*.log") if ray_logs.is_dir() else ():
        assert TOKEN not in log.read_text(errors="replace"), f"{log} holds the token"


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert TOKEN not in response.text
    return response.json()["error"]


def test_health_stays_open_everything_else_needs_the_token(locked):
    assert requests.get(locked.url + "/healthz", timeout=10).status_code == 200
    assert "needs a token" in refused(requests.get(locked.url + "/info", timeout=10), 401)
    wrong = requests.post(
        locked.url + "/generate", json={"prompt": PROMPT}, headers=bearer("x" * 32), timeout=10
    )
    assert "refused the token" in refused(wrong, 401)
    info = requests.get(locked.url + "/info", headers=bearer(), timeout=10).json()
    assert info["locked"] is True and info["limits"]["max_concurrent"] == 1


def test_a_token_in_the_address_is_refused(locked):
    answer = requests.post(locked.url + f"/generate?token={TOKEN}", json={"prompt": PROMPT}, timeout=10)
    assert "Authorization" in refused(answer, 400)


def test_the_client_sends_the_token_from_the_environment(locked, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(EngineAccessError, match="needs a token"):
        connect(locked.url)
    monkeypatch.setenv(TOKEN_ENV, "y" * 32)
    with pytest.raises(EngineAccessError, match="refused the token") as caught:
        connect(locked.url)
    assert "y" * 32 not in str(caught.value)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    model = connect(locked.url)
    assert model.generate(PROMPT, GenerationSettings(max_new_tokens=4)).token_ids


def test_the_cli_sends_the_token(locked, tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text(PROMPT)
    command = [
        sys.executable,
        "-m",
        "salience",
        "generate",
        "--engine",
        locked.url,
        "--max-new-tokens",
        "4",
        "--prompt-file",
        str(prompt),
        "--precision",
        "float32",
    ]
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "needs a token" in done.stderr and "Traceback" not in done.stderr
    env[TOKEN_ENV] = TOKEN
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_over_limit_requests_are_refused_before_any_work(locked):
    batch = requests.post(
        locked.url + "/generate_batch", json={"prompts": ["a"] * 10_000}, headers=bearer(), timeout=30
    )
    assert "10,000 rows" in refused(batch, 413)
    tokens = {"prompt": PROMPT, "settings": {"max_new_tokens": 5000}}
    assert "--max-new-tokens" in refused(
        requests.post(locked.url + "/generate", json=tokens, headers=bearer()), 422
    )
    steps = {"prompt": PROMPT, "target": " Avoid", "integrated_steps": 500}
    assert "--max-steps" in refused(
        requests.post(locked.url + "/salience", json=steps, headers=bearer()), 422
    )


def long_generation() -> dict:
    return {"prompt": PROMPT, "settings": {"max_new_tokens": 2000, "stop_sequences": []}}


def test_a_second_request_at_once_gets_429_then_the_slot_frees(locked):
    with requests.post(
        locked.url + "/generate", json=long_generation(), headers=bearer(), stream=True, timeout=30
    ) as first:
        assert first.status_code == 200
        next(first.iter_lines())  # the first is running
        second = requests.post(
            locked.url + "/generate", json={"prompt": PROMPT}, headers=bearer(), timeout=30
        )
        assert "--max-concurrent 1" in refused(second, 429)
        assert second.headers.get("Retry-After")
    deadline = time.monotonic() + REQUEST_SECONDS + 10
    while True:  # the first one's slot is free once it stopped (closed, or at its time limit)
        again = requests.post(
            locked.url + "/generate",
            json={"prompt": PROMPT, "settings": {"max_new_tokens": 2}},
            headers=bearer(),
            timeout=30,
        )
        if again.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert again.status_code == 200, again.text


def test_a_request_past_the_time_limit_stops_with_a_clear_line(locked):
    began = time.monotonic()
    with requests.post(
        locked.url + "/generate", json=long_generation(), headers=bearer(), stream=True
    ) as answer:
        lines = [json.loads(raw) for raw in answer.iter_lines() if raw]
    took = time.monotonic() - began
    if "final" in lines[-1]:
        pytest.skip(f"the tiny model finished 2000 tokens within {took:.1f} s, under the limit")
    assert "time limit of 3 s" in lines[-1]["error"] and took < REQUEST_SECONDS + 5
    with pytest.raises(InputError, match="time limit"):
        os.environ[TOKEN_ENV] = TOKEN
        try:
            connect(locked.url).generate(PROMPT, GenerationSettings(max_new_tokens=2000, stop_sequences=()))
        finally:
            del os.environ[TOKEN_ENV]
