"""The engine on Ray Serve (two replicas of a tiny model, float32) against the same model in-process.

The engine runs the same `LanguageModel` code, so every answer must equal the in-process one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from engine_server import running_engine
from process_load import cpu_seconds

from salience.core.errors import CancelledError, ContextLengthError, InputError, ModelLoadError
from salience.core.types import GenerationSettings
from salience.serving import wire
from salience.serving.remote import EngineUnavailable, RemoteModel, connect

PROMPT = "Taste-likes: Cheese. Taste-dislikes: eggs.\nAnalyze a menu item in a restaurant.\nRecommendation:"
SETTINGS = GenerationSettings(max_new_tokens=12)
METHODS = ("grad_l2", "grad_dot_input", "integrated_gradients")


def _same_result(a, b) -> None:
    assert a.tokens == b.tokens and a.offsets == b.offsets
    assert a.target_token_span == b.target_token_span
    assert set(a.scores) == set(b.scores)
    for method in a.scores:
        np.testing.assert_array_equal(a.scores[method], b.scores[method], err_msg=method)
    assert a.target_log_prob == b.target_log_prob
    assert a.provenance == b.provenance


def _same_generation(a, b) -> None:
    assert (a.text, a.token_ids, a.stop_reason) == (b.text, b.token_ids, b.stop_reason)


def test_the_engine_reports_its_model_and_replicas(remote, local_model, engine):
    assert remote.spec == local_model.spec and remote.name == local_model.name
    assert remote.replicas == 2
    assert remote.precisions == ("float32",)
    assert "2 replicas" in remote.info.describe() and engine.url in remote.info.describe()
    assert engine.replica_pids(2) and len(engine.replica_pids(2)) == 2


def test_tokenizing_is_local_and_equal(remote, local_model):
    for text in (PROMPT, "print(y)  # two spaces", "café 😀 日本語", "<start_of_turn>user\nhi"):
        assert remote.tokenize(text) == local_model.tokenize(text)
    assert remote.tokenize_pair(PROMPT, " Avoid.") == local_model.tokenize_pair(PROMPT, " Avoid.")


def test_generation_equals_in_process(remote, local_model):
    _same_generation(remote.generate(PROMPT, SETTINGS), local_model.generate(PROMPT, SETTINGS, "float32"))
    sampled = GenerationSettings(max_new_tokens=10, temperature=0.8, top_k=20, seed=7, stop_sequences=(".",))
    _same_generation(remote.generate(PROMPT, sampled), local_model.generate(PROMPT, sampled, "float32"))
    streamed = list(remote.stream(PROMPT, SETTINGS))
    local = list(local_model.stream(PROMPT, SETTINGS, "float32"))
    assert [g.text for g in streamed] == [g.text for g in local]


def test_batched_generation_equals_in_process_and_fans_out(remote, local_model):
    prompts = [PROMPT, "Keras is", "The quick brown fox", "Sentences end with", "a b c", "Dr. Smith paid"]
    rows: list[int] = []
    progress: list[tuple[int, int]] = []
    batch = remote.generate_batch(
        prompts,
        SETTINGS,
        batch_size=2,
        on_row=lambda i, g: rows.append(i),
        progress=lambda d, t: progress.append((d, t)),
    )
    local = local_model.generate_batch(prompts, SETTINGS, "float32", batch_size=2)
    for a, b in zip(batch, local):
        _same_generation(a, b)
    assert sorted(rows) == list(range(len(prompts)))
    assert progress[-1] == (len(prompts), len(prompts))


def test_every_salience_method_equals_in_process(remote, local_model):
    target = " Avoid it."
    _same_result(
        remote.salience(PROMPT, target, methods=METHODS, integrated_steps=4),
        local_model.salience(PROMPT, target, methods=METHODS, integrated_steps=4, precision="float32"),
    )
    span = (len(PROMPT) + 1, len(PROMPT) + 6)
    _same_result(
        remote.salience(PROMPT, target, char_span=span),
        local_model.salience(PROMPT, target, char_span=span, precision="float32"),
    )
    segments = [(1, 6), (6, 12), (12, 20)]
    seen: list[tuple[int, int]] = []
    deletion = remote.salience(
        PROMPT, target, methods=("occlusion",), segments=segments, progress=lambda d, t: seen.append((d, t))
    )
    _same_result(
        deletion,
        local_model.salience(PROMPT, target, methods=("occlusion",), segments=segments, precision="float32"),
    )
    assert seen and seen[-1][0] == seen[-1][1]


def test_input_errors_come_back_as_the_same_errors(remote, local_model):
    with pytest.raises(InputError, match="prompt is empty"):
        remote.generate("", SETTINGS)
    with pytest.raises(InputError, match="outside the text"):
        remote.salience("abc", "def", char_span=(0, 50))
    with pytest.raises(InputError, match="serves float32 only"):
        remote.salience("abc", "def", precision="bfloat16")
    with pytest.raises(ContextLengthError):
        remote.generate("word " * 5000, SETTINGS)
    with pytest.raises(InputError, match="Deletion needs segments"):
        remote.salience("abc", "def", methods=("occlusion",))


def test_a_request_larger_than_the_engine_accepts_is_refused_in_one_line(remote, engine):
    with pytest.raises(InputError, match=r"over the engine's limit of 8 MiB"):
        remote.salience("x" * (9 * 2**20), "y")
    # A client that does not check first is refused by the engine itself.
    answer = requests.post(engine.url + "/salience", data=b"{" + b" " * (9 * 2**20) + b"}", timeout=60)
    assert answer.status_code == 413 and "over the engine's limit" in answer.json()["error"]


def test_an_engine_serving_another_model_is_named(engine):
    answer = requests.post(
        engine.url + "/generate",
        data=wire.dumps({"prompt": "hi"}),
        headers={wire.MODEL_HEADER: "kaggle:gemma_2b_en"},
        timeout=30,
    )
    assert answer.status_code == 409
    assert "now serves" in answer.json()["error"] and "kaggle:gemma_2b_en" in answer.json()["error"]


def test_eight_concurrent_clients_are_all_served(engine, local_model):
    expected = local_model.salience(PROMPT, " Avoid.", precision="float32")
    generation = local_model.generate(PROMPT, SETTINGS, "float32")

    def client(_: int):
        model = connect(engine.url)  # each its own client, as eight app instances would be
        return model.generate(PROMPT, SETTINGS), model.salience(PROMPT, " Avoid.")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(client, range(8)))
    for answer_generation, answer_result in answers:
        _same_generation(answer_generation, generation)
        _same_result(answer_result, expected)


def test_an_unreachable_engine_is_one_line_and_quick():
    from engine_server import free_port

    began = time.monotonic()
    with pytest.raises(EngineUnavailable, match=r"cannot be reached .*python -m salience serve"):
        connect(f"http://127.0.0.1:{free_port()}")
    assert time.monotonic() - began < 10
    with pytest.raises(InputError, match="not an engine address"):
        connect("ftp://example")


def test_an_address_that_is_not_an_engine_is_named(tmp_path):
    from engine_server import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        with pytest.raises(ModelLoadError, match="is that the address|is that address an engine"):
            connect(f"http://127.0.0.1:{port}", wait=2)
    finally:
        server.terminate()
        server.wait(10)


def test_killing_a_replica_mid_request_loses_no_request(engine, local_model):
    """kill -9 one replica's worker while requests run on both: every request still answers,
    with the right result (retried on the other replica), and Ray starts a new replica."""
    remote = connect(engine.url)
    target = " Avoid it."
    expected = local_model.salience(PROMPT, target, methods=METHODS, integrated_steps=64, precision="float32")
    pids = engine.replica_pids(2)
    assert len(pids) == 2
    victim = sorted(pids)[0]

    def ask(_: int):
        return connect(engine.url).salience(PROMPT, target, methods=METHODS, integrated_steps=64)

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(ask, i) for i in range(6)]
        time.sleep(1.0)  # the requests are running on both replicas
        os.kill(victim, signal.SIGKILL)
        answers = [future.result(timeout=300) for future in futures]
    for answer in answers:
        _same_result(answer, expected)
    # The deployment heals: two replicas again, the dead one replaced.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        live = engine.replica_pids(2, timeout=10)
        if len(live) == 2 and victim not in live:
            break
        time.sleep(1)
    assert victim not in live and len(live) == 2
    assert remote.refresh().replicas == 2


def test_the_client_imports_no_tensorflow(engine):
    code = (
        "import sys; from salience.serving.remote import connect; "
        f"m = connect({engine.url!r}); g = m.generate('Keras is', __import__('salience.core.types').core.types.GenerationSettings(max_new_tokens=3)); "
        "r = m.salience('Keras is', g.text or ' a'); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules, 'ray' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=_root()
    )
    assert out.stdout.split() == ["False", "False", "False"], out.stderr[-2000:]


def test_the_cli_runs_on_the_engine_and_matches_in_process(engine, engine_gguf, tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text(PROMPT)

    def cli(*extra: str) -> str:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "salience",
                "explain",
                "--prompt-file",
                str(prompt),
                "--target",
                " Avoid.",
                "--json",
                "--quiet",
                "--precision",
                "float32",
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=_root(),
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    import json

    remote_run = json.loads(cli("--engine", engine.url))
    local_run = json.loads(cli("--model", f"gguf:{engine_gguf}"))
    for payload in (remote_run, local_run):
        payload.pop("seconds", None)
        payload.get("result", {}).pop("seconds", None)
        for diagnostics in payload.get("diagnostics", {}).values():  # timings, per method
            diagnostics.pop("seconds", None)
    assert remote_run == local_run


def test_the_cli_on_an_engine_loads_no_tensorflow(engine, tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text(PROMPT)
    code = (
        "import sys; from salience.cli.commands import main; "
        f"status = main(['generate', '--prompt-file', {str(prompt)!r}, '--max-new-tokens', '3', "
        f"'--engine', {engine.url!r}, '--precision', 'float32', '--json', '--quiet']); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules, status)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=_root()
    )
    assert done.stdout.strip().splitlines()[-1] == "False False 0", done.stderr[-2000:]


def test_the_cli_with_an_engine_that_is_down_is_one_line():
    from engine_server import free_port

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "salience",
            "generate",
            "--prompt-file",
            "-",
            "--engine",
            f"http://127.0.0.1:{free_port()}",
        ],
        input="hello",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=_root(),
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("error: The engine at http://127.0.0.1:")
        and "cannot be reached" in lines[0]
    )


def test_serve_with_a_ray_address_that_does_not_answer_is_one_line():
    from engine_server import free_port

    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "salience", "serve", "--address", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=_root(),
    )
    assert done.returncode == 2 and time.monotonic() - began < 60
    assert done.stderr.strip().splitlines()[-1].startswith("error: No Ray cluster answers at 127.0.0.1:")


def test_serve_on_a_port_in_use_is_one_line(engine):
    port = engine.url.rsplit(":", 1)[1]
    done = subprocess.run(
        [sys.executable, "-m", "salience", "serve", "--port", port],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=_root(),
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: Port {port} on 127.0.0.1 is in use (another engine?); choose one with --port."
    )


def test_a_model_that_cannot_load_is_one_line(tmp_path):
    from engine_server import free_port

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "salience",
            "serve",
            "--model",
            f"gguf:{tmp_path}/missing.gguf",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=_root(),
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip().splitlines()[-1] == f"error: GGUF file '{tmp_path}/missing.gguf' does not exist."
    )


def _root() -> str:
    from engine_server import ROOT

    return str(ROOT)


def test_remote_model_checks_the_protocol():
    with pytest.raises(ModelLoadError, match="protocol"):
        RemoteModel("http://127.0.0.1:1", {"protocol": 99})


def test_requests_while_replicas_load_wait_with_a_message(monkeypatch):
    """`connect` waits while the proxy answers 503/404 (replicas loading), saying so."""
    from salience.serving import remote as module

    answers = iter([module._Starting(503), module._Starting(404)])
    info = {"protocol": wire.PROTOCOL}

    def fake_info(url, session):
        try:
            raise next(answers)
        except StopIteration:
            return info

    said: list[str] = []
    monkeypatch.setattr(module, "_get_info", fake_info)
    monkeypatch.setattr(module.time, "sleep", lambda s: None)
    monkeypatch.setattr(module, "RemoteModel", lambda url, data: (url, data))
    assert connect("http://127.0.0.1:9", progress=lambda m, f: said.append(m)) == ("http://127.0.0.1:9", info)
    assert said == ["The engine at http://127.0.0.1:9 is starting: its replicas are loading the model"] * 2


def test_engine_threads_finish(engine):
    """No client thread is left behind after a batch (the fan-out pool is closed)."""
    before = {t.name for t in threading.enumerate()}
    connect(engine.url).generate_batch(["a", "b", "c"], GenerationSettings(max_new_tokens=2), batch_size=1)
    assert not [
        t for t in threading.enumerate() if t.name.startswith("engine batch") and t.name not in before
    ]


def _replicas_cpu(pids: set[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


@pytest.mark.parametrize("call", ["generate_batch", "stream"])
def test_a_cancelled_request_stops_on_the_engine(engine, call):
    """A client that gives up (its page closed) stops the work on the engine within seconds:
    the replicas' CPU time stops growing, long before the request would have finished. (Deletion
    stops the same way, between its batches, but on the tiny model it ends before it can be
    caught running.)"""
    remote = connect(engine.url)
    pids = engine.replica_pids(2)
    long_prompt = PROMPT + " Another line of the menu." * 100
    stop = threading.Event()

    def work() -> None:
        with contextlib.suppress(CancelledError):
            if call == "generate_batch":
                rows = [f"{PROMPT} {n}" for n in range(64)]
                remote.generate_batch(
                    rows, GenerationSettings(max_new_tokens=512), batch_size=32, cancelled=stop.is_set
                )
            else:
                for _ in remote.stream(long_prompt, GenerationSettings(max_new_tokens=2000)):
                    if stop.is_set():
                        break

    thread = threading.Thread(target=work)
    before = _replicas_cpu(pids)
    thread.start()
    time.sleep(3.0)
    busy = _replicas_cpu(pids) - before
    assert busy > 1.0, f"the engine used {busy:.1f} CPU s in 3 s: the request was not running"
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    stopped = time.monotonic()
    last, quiet = _replicas_cpu(pids), 0
    while quiet < 2:
        assert time.monotonic() - stopped < 10, "the engine still works on a request nobody waits for"
        time.sleep(1.0)
        now = _replicas_cpu(pids)
        quiet = quiet + 1 if now - last < 0.2 else 0
        last = now


def test_ctrl_c_stops_an_engine_started_with_sigint_ignored(engine_gguf):
    """A script's background job inherits SIGINT ignored (and so does Python): Ctrl+C must stop
    the engine anyway, cleanly (no kill after the harness's wait)."""
    with running_engine(f"gguf:{engine_gguf}", replicas=1, sigint_ignored=True) as started:
        pass
    assert started.process.returncode == 0, started.lines[-10:]
    assert "Stopped." in started.lines
