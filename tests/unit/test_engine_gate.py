"""The engine's gate: tokens (401), limits (413/422), requests at once (429), and no secret in
any message. (tests/serve/test_engine_access.py checks the same on a started engine.)"""

from __future__ import annotations

import time

import pytest

from salience.core.errors import InputError
from salience.serving.access import (
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    AccessPolicy,
    Gate,
    Limits,
    Refused,
    auth_headers,
    digest,
    read_token_file,
    server_tokens,
)

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef00"


def locked(**limits) -> Gate:
    return Gate(AccessPolicy((digest(ALICE), digest(BOB)), Limits(**limits)))


def refusal(call, *args) -> Refused:
    with pytest.raises(Refused) as caught:
        call(*args)
    assert ALICE not in str(caught.value) and BOB not in str(caught.value)
    return caught.value


def test_an_unlocked_engine_takes_every_request():
    assert Gate().client(None, {}) == 0


def test_a_locked_engine_needs_a_right_bearer_token():
    gate = locked()
    assert gate.client(f"Bearer {ALICE}", {}) == 0
    assert gate.client(f"bearer  {BOB} ", {}) == 1
    for header in (None, "", "Bearer", "Bearer ", f"Basic {ALICE}", "Bearer wrong-token-0123456789", ALICE):
        error = refusal(gate.client, header, {})
        assert error.status == 401 and error.kind == "EngineAccessError"
    assert "needs a token" in str(refusal(gate.client, None, {}))
    assert "refused the token" in str(refusal(gate.client, "Bearer nope", {}))


def test_a_token_in_the_address_is_refused_even_when_right():
    for gate in (locked(), Gate()):
        error = refusal(gate.client, f"Bearer {ALICE}", {"token": ALICE})
        assert error.status == 400 and "Authorization" in str(error)
        assert refusal(gate.client, None, {"Access_Token": "x"}).status == 400


def test_requests_at_once_are_counted_per_token():
    gate = locked(max_concurrent=2)
    with gate.slot(0), gate.slot(0):
        error = refusal(lambda: gate.slot(0).__enter__())
        assert error.status == 429 and error.retry_after and "--max-concurrent 2" in str(error)
        with gate.slot(1):  # another token has its own share
            pass
    with gate.slot(0):  # released when the requests end
        pass


def test_limits_refuse_oversized_requests_with_the_limit_named():
    gate = locked(
        max_prompt_chars=100, max_new_tokens=64, max_batch_rows=8, max_integrated_steps=16, max_segments=4
    )
    assert refusal(gate.check, "/generate", {"prompt": "x" * 101}).status == 413
    error = refusal(gate.check, "/generate", {"prompt": "hi", "settings": {"max_new_tokens": 65}})
    assert error.status == 422 and "--max-new-tokens" in str(error)
    error = refusal(gate.check, "/generate_batch", {"prompts": ["a"] * 10_000})
    assert error.status == 413 and "10,000 rows" in str(error)
    assert refusal(gate.check, "/generate_batch", {"prompts": ["a", "x" * 101]}).status == 413
    assert refusal(gate.check, "/generate_batch", {"prompts": "abc"}).status == 400
    assert refusal(gate.check, "/salience", {"prompt": "a" * 60, "target": "b" * 41}).status == 413
    assert refusal(gate.check, "/salience", {"prompt": "a", "integrated_steps": 17}).status == 422
    assert refusal(gate.check, "/salience", {"prompt": "a", "segments": [[0, 1]] * 5}).status == 413
    gate.check("/generate", {"prompt": "x" * 100, "settings": {"max_new_tokens": 64}})
    gate.check("/generate_batch", {"prompts": ["a"] * 8})
    gate.check("/salience", {"prompt": "a", "target": "b", "integrated_steps": 16, "segments": [[0, 1]] * 4})


def test_tokens_come_from_the_file_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)
    assert server_tokens() == () and auth_headers() == {}
    monkeypatch.setenv(TOKEN_ENV, ALICE)
    assert server_tokens() == (ALICE,)
    assert auth_headers() == {"Authorization": f"Bearer {ALICE}"}
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# one per client\n{ALICE}\n\n{BOB}\n")
    assert server_tokens(tokens) == (ALICE, BOB)
    monkeypatch.delenv(TOKEN_ENV)
    monkeypatch.setenv(TOKEN_FILE_ENV, str(tokens))
    assert auth_headers() == {"Authorization": f"Bearer {ALICE}"}


def test_bad_token_files_fail_in_one_line_without_the_secret(tmp_path, monkeypatch):
    short = tmp_path / "short"
    short.write_text("secret\n")
    with pytest.raises(InputError, match="too short") as caught:
        read_token_file(short)
    assert "secret\n" not in str(caught.value) and "'secret'" not in str(caught.value)
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n")
    with pytest.raises(InputError, match="holds no token"):
        read_token_file(empty)
    with pytest.raises(InputError, match="Cannot read"):
        read_token_file(tmp_path / "missing")
    monkeypatch.setenv(TOKEN_ENV, "has space in it 0123456789")
    with pytest.raises(InputError, match="holds spaces"):
        server_tokens()


def test_a_slot_frees_itself_at_the_time_limit():
    gate = locked(max_concurrent=1)
    release = gate.acquire(0, hold_seconds=0.2)
    assert refusal(gate.acquire, 0).status == 429
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            gate.acquire(0)()
            break
        except Refused:
            time.sleep(0.05)
    else:
        pytest.fail("the slot never freed itself")
    release()  # a late release changes nothing
    gate.acquire(0)()
