"""The client of the engine deployment (`salience.serving.deployment`): a model whose calls go over HTTP.

`RemoteModel` answers the calls `LanguageModel` answers — `tokenize`, `stream`, `generate`,
`generate_batch` and `salience` — so the app, the CLI and evaluations use it unchanged.
Tokenizing runs here, with the engine's own vocabulary (fetched once), so counting tokens
never waits on the network; everything that runs the model goes to the engine.

Faults: a connection that fails, a 5xx answer or a stream that ends before its last line
(a replica that died mid-request) is retried on the deployment — Ray Serve routes the retry
to a live replica — with back-off, so the user sees a delay rather than an error. Input
errors are raised as the engine raised them (`InputError`, `ContextLengthError`, …); an
engine that stays unreachable raises `EngineUnavailable` in one line.

Nothing here imports TensorFlow, Keras or Ray: a Streamlit process that uses an engine
never loads a model.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import requests

from salience.core.errors import CancelledError, InputError, ModelLoadError
from salience.core.types import Generation, GenerationSettings, SalienceResult
from salience.model.decoding import MAX_NEW_TOKENS_LIMIT, PRECISIONS, TextCalls, check_text
from salience.model.engine import Cancelled, Progress, SalienceCalls, SalienceRequest
from salience.model.lock import BACKGROUND, current_rank
from salience.model.tokenizing import OffsetTokenizer
from salience.serving import wire
from salience.serving.access import auth_headers

ENGINE_ENV = "GEMMA_WORKBENCH_ENGINE"
CONNECT_SECONDS = 5.0
READ_SECONDS = 900.0  # the longest silence on an answer (Integrated Gradients on a long prompt)
RETRIES = 5  # tries after the first, for faults of the deployment (not of the input)
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0)
START_WAIT_SECONDS = 300.0  # how long `connect` waits for replicas that are still loading
RETRYABLE_STATUS = {500, 502, 503, 504}


class EngineUnavailable(ModelLoadError):
    """The engine does not answer (down, unreachable, or every replica failing)."""


def engine_url() -> str | None:
    """The engine the environment names (``GEMMA_WORKBENCH_ENGINE``), or None: run in-process."""
    url = os.environ.get(ENGINE_ENV, "").strip()
    return url or None


def is_engine_spec(spec: str | None) -> bool:
    """A model spec that is an engine's address (``http://HOST:PORT``)."""
    return bool(spec) and spec.strip().lower().startswith(("http://", "https://"))


def check_url(url: str) -> str:
    """The engine URL without a trailing slash; an `InputError` for one that cannot be an address."""
    url = url.strip().rstrip("/")
    if not is_engine_spec(url) or not url.split("://", 1)[1]:
        raise InputError(f"'{url}' is not an engine address; it should look like http://HOST:PORT.")
    return url


@dataclass(frozen=True)
class EngineInfo:
    """What an engine says about itself (``GET /info``)."""

    url: str
    name: str
    spec: str
    precisions: tuple[str, ...]
    precision: str
    max_context: int
    model_context: int
    replicas: int
    notice: str | None = None

    def describe(self) -> str:
        """One line, e.g. 'Gemma 3 270M on the engine at http://…:8300 · 2 replicas · bfloat16'."""
        replicas = (
            f"{self.replicas} replica{'s' if self.replicas != 1 else ''}" if self.replicas else "replicas ?"
        )
        return f"{self.name} on the engine at {self.url} · {replicas} · {'/'.join(self.precisions)}"


class _Retry(Exception):
    """A fault of the deployment, worth another try (the reason is the message)."""


class RemoteModel(TextCalls, SalienceCalls):
    """A model served by an engine deployment; thread-safe (one HTTP session per thread)."""

    def __init__(self, url: str, info: dict, retries: int = RETRIES):
        self.url = check_url(url)
        self.retries = retries
        self._local = threading.local()
        self._apply(info)
        tokenizer = info["tokenizer"]
        self.tokenizer = OffsetTokenizer(
            base64.b64decode(tokenizer["proto"]), bos_id=int(tokenizer["bos_id"])
        )
        self.stop_token_ids = set(tokenizer["stop_token_ids"])

    def _apply(self, info: dict) -> None:
        if int(info.get("protocol", 0)) != wire.PROTOCOL:
            raise ModelLoadError(
                f"The engine at {self.url} speaks protocol {info.get('protocol')}, this app "
                f"{wire.PROTOCOL}; run the same version of the workbench on both."
            )
        self.name = str(info["name"])
        self.spec = str(info["spec"])
        self.family = str(info.get("family", ""))
        self.precisions = tuple(info.get("precisions") or PRECISIONS)
        self.precision = str(info.get("precision") or self.precisions[0])
        self.max_context = int(info["max_context"])
        self.model_context = int(info["model_context"])
        self.notice = info.get("notice")
        self.replicas = int(info.get("replicas") or 0)

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(
            self.url,
            self.name,
            self.spec,
            self.precisions,
            self.precision,
            self.max_context,
            self.model_context,
            self.replicas,
            self.notice,
        )

    def refresh(self) -> EngineInfo:
        """Ask the engine again (its replica count may have changed); raises `EngineUnavailable`."""
        info = _get_info(self.url, self._session())
        if info["spec"] != self.spec:
            raise ModelLoadError(
                f"The engine at {self.url} now serves '{info['spec']}', not '{self.spec}'; reload the page."
            )
        self.replicas = int(info.get("replicas") or 0)
        return self.info

    def check_precision(self, precision: str | None) -> str:
        """``precision`` (None: the engine's own) if the engine serves it; else an `InputError`."""
        precision = precision or self.precision
        if precision not in PRECISIONS:
            raise InputError(f"Unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}.")
        if precision not in self.precisions:
            raise InputError(
                f"The engine at {self.url} serves {' and '.join(self.precisions)} only; choose that "
                f"precision or start an engine with --precision {precision}."
            )
        return precision

    # ---- HTTP ------------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update(auth_headers())  # $GEMMA_WORKBENCH_ENGINE_TOKEN, when set
        return session

    def _events(
        self, path: str, payload: dict, cancelled: Callable[[], bool] | None = None
    ) -> Iterator[dict]:
        """The JSON lines the engine answers ``payload`` with, through the last (``final``) one;
        retried from the start on a deployment fault. An error line raises its error."""
        body = wire.dumps(payload)
        if len(body) > wire.MAX_REQUEST_BYTES:
            raise InputError(
                f"The request is {len(body) / 2**20:.1f} MiB, over the engine's limit of "
                f"{wire.MAX_REQUEST_BYTES / 2**20:.0f} MiB; send shorter prompts or fewer rows at a time."
            )
        reasons: list[str] = []
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)])
            try:
                yield from self._one_try(path, body, cancelled)
                return
            except _Retry as fault:
                reasons.append(str(fault))
        raise EngineUnavailable(
            f"The engine at {self.url} did not answer after {self.retries + 1} tries ({reasons[-1]}); "
            "check that it is running (python -m salience serve) or use the in-process model."
        )

    def _one_try(self, path: str, body: bytes, cancelled: Callable[[], bool] | None) -> Iterator[dict]:
        try:
            response = self._session().post(
                self.url + path,
                data=body,
                headers={"Content-Type": "application/json", wire.MODEL_HEADER: self.spec, **_priority()},
                stream=True,
                timeout=(CONNECT_SECONDS, READ_SECONDS),
            )
        except requests.RequestException as error:
            raise _Retry(_reason(error)) from None
        with response:
            if response.status_code in RETRYABLE_STATUS and not _is_engine_error(response):
                raise _Retry(f"HTTP {response.status_code}")
            if response.status_code != 200:
                raise _answer_error(response)
            try:
                for raw in response.iter_lines():
                    if not raw:
                        continue
                    event = json.loads(raw)
                    if "error" in event:
                        raise wire.error_from_json(event)
                    if wire.TICK not in event:  # a tick only gives this loop a moment to give up
                        yield event
                        if "final" in event:
                            return
                    if cancelled is not None and cancelled():
                        raise CancelledError("Cancelled.")
            except (requests.RequestException, ValueError) as error:
                raise _Retry(f"the answer broke off: {_reason(error)}") from None
        raise _Retry("the answer ended early (a replica stopped?)")

    # ---- the model's calls -----------------------------------------------------------------
    def generate(
        self, prompt: str, settings: GenerationSettings | None = None, precision: str | None = None
    ) -> Generation:
        """Decode a continuation of ``prompt`` on the engine."""
        return deque(self.stream(prompt, settings, precision), maxlen=1)[0]

    def stream(
        self, prompt: str, settings: GenerationSettings | None = None, precision: str | None = None
    ) -> Iterator[Generation]:
        """Yield the growing generation as the engine decodes it; the last one is final.
        (After a retry the text starts again from the beginning.)"""
        settings = settings or GenerationSettings()
        check_text(prompt, "prompt")
        if not 1 <= settings.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise InputError(f"Max new tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT}.")
        self.prompt_ids(prompt, settings)  # a prompt that is too long fails here, not on the engine
        payload = {
            "prompt": prompt,
            "settings": settings.to_json(),
            "precision": self.check_precision(precision),
        }
        for event in self._events("/generate", payload):
            yield Generation.from_json(event.get("partial") or event["final"])

    def generate_batch(
        self,
        prompts: Sequence[str],
        settings: GenerationSettings | None = None,
        precision: str | None = None,
        *,
        batch_size: int = 8,
        stop_sequences: Sequence[Sequence[str]] | None = None,
        seeds: Sequence[int | None] | None = None,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        on_row: Callable[[int, Generation], None] | None = None,
    ) -> list[Generation]:
        """`LanguageModel.generate_batch` on the engine: the rows go out ``batch_size`` at a
        time, one request per replica at once, so a large batch spreads over every replica."""
        settings = settings or GenerationSettings()
        precision = self.check_precision(precision)
        prompts = list(prompts)
        for index, prompt in enumerate(prompts):  # every row's problem named before any work
            check_text(prompt, f"prompt of row {index + 1}")
            self.prompt_ids(prompt, settings, label=f"Row {index + 1}")
        size = max(1, int(batch_size))
        chunks = [range(start, min(start + size, len(prompts))) for start in range(0, len(prompts), size)]
        tally = _RowTally(len(prompts), on_row, progress)

        def run(rows: range) -> None:
            payload = {
                "prompts": [prompts[i] for i in rows],
                "settings": settings.to_json(),
                "precision": precision,
                "batch_size": size,
                "stop_sequences": [list(stop_sequences[i]) for i in rows]
                if stop_sequences is not None
                else None,
                "seeds": [seeds[i] for i in rows] if seeds is not None else None,
            }
            self._run_rows(rows, payload, cancelled, tally)

        workers = max(1, min(len(chunks), self.replicas or 1))
        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="engine batch") as pool:
                for future in [pool.submit(run, rows) for rows in chunks]:
                    future.result()
        except CancelledError:
            pass
        return [
            result if result is not None else Generation(prompt, "", (), "cancelled", 0.0, 0.0)
            for prompt, result in zip(prompts, tally.results)
        ]

    def _run_rows(
        self, rows: range, payload: dict, cancelled: Callable[[], bool] | None, tally: _RowTally
    ) -> None:
        """One ``/generate_batch`` request for ``rows``: each row into ``tally`` as it finishes,
        then the final list (which also holds the rows a cancel left unfinished)."""
        for event in self._events("/generate_batch", payload, cancelled):
            if "row" in event:
                tally.arrived(rows[int(event["row"])], Generation.from_json(event["generation"]))
            elif "final" in event:
                for offset, data in enumerate(event["final"]["generations"]):
                    tally.results[rows[offset]] = Generation.from_json(data)

    def salience_for(
        self,
        request: SalienceRequest,
        *,
        progress: Progress | None = None,
        cancelled: Cancelled | None = None,
    ) -> SalienceResult:
        """`LanguageModel.salience_for` on the engine (Deletion reports its progress as it goes).

        Args:
            request: the prompt, target, span, methods and their settings.
            progress: called with ``(done, total)`` as the engine's Deletion deletes segments.
            cancelled: polled while waiting; True stops the request.

        Returns:
            The engine's `SalienceResult` for ``request``.
        """
        check_text(request.prompt, "prompt")
        check_text(request.target, "target")
        payload = replace(request, precision=self.check_precision(request.precision)).to_json()
        for event in self._events("/salience", payload, cancelled):
            if "progress" in event and progress is not None:
                progress(*event["progress"])
            elif "final" in event:
                return SalienceResult.from_json(event["final"])
        raise EngineUnavailable(f"The engine at {self.url} sent no result.")


def _reason(error: BaseException) -> str:
    if isinstance(error, requests.ConnectionError):
        return "connection refused or dropped"
    if isinstance(error, requests.Timeout):
        return "timed out"
    return f"{type(error).__name__}: {error}"


def _priority() -> dict[str, str]:
    """The priority header of a call made as background work (empty in the foreground)."""
    return {wire.PRIORITY_HEADER: wire.BACKGROUND} if current_rank() == BACKGROUND else {}


def _is_engine_error(response: requests.Response) -> bool:
    """A 500 from the engine's own handler (a bug, not a replica fault): not worth retrying."""
    try:
        return response.json().get("kind") == "EngineError"
    except ValueError:
        return False


def _answer_error(response: requests.Response) -> Exception:
    try:
        data = response.json()
    except ValueError:
        data = {}
    if isinstance(data, dict) and "error" in data:
        return wire.error_from_json(data)
    return ModelLoadError(
        f"The engine at {response.url} answered HTTP {response.status_code}; is that address an engine "
        "(python -m salience serve)?"
    )


def _get_info(url: str, session: requests.Session) -> dict:
    try:
        response = session.get(url + "/info", timeout=(CONNECT_SECONDS, 30.0))
    except requests.RequestException as error:
        raise EngineUnavailable(
            f"The engine at {url} cannot be reached ({_reason(error)}); start it with "
            "'python -m salience serve' or use the in-process model."
        ) from None
    if response.status_code in (404, 503) and _is_ray_serve(url, session):
        raise _Starting(response.status_code)
    if response.status_code != 200:
        raise _answer_error(response)
    try:
        info = response.json()
        info["tokenizer"]  # noqa: B018 (an engine's answer has one)
    except (ValueError, KeyError, TypeError):
        raise ModelLoadError(
            f"{url} answered, but not as an engine does; is that the address 'python -m salience serve' printed?"
        ) from None
    return info


def _is_ray_serve(url: str, session: requests.Session) -> bool:
    """Ray Serve's HTTP proxy answers its own health check while the app's replicas load."""
    try:
        return session.get(url + "/-/healthz", timeout=(CONNECT_SECONDS, 10.0)).status_code == 200
    except requests.RequestException:
        return False


class _Starting(Exception):
    """The engine's HTTP proxy is up but its replicas are not serving yet."""


def connect(
    url: str,
    progress: Callable[[str, float], None] | None = None,
    wait: float = START_WAIT_SECONDS,
) -> RemoteModel:
    """The model an engine serves, waiting (up to ``wait`` s) for replicas still loading.
    Raises `EngineUnavailable` or `ModelLoadError` with one line when it cannot connect.

    Args:
        url: the engine's address (``http://HOST:PORT``).
        progress: called with ``(message, fraction)`` while replicas are still loading.
        wait: the most seconds to wait for them.

    Returns:
        A `RemoteModel` (an `EngineCalls`): every call goes over HTTP to the engine.

    Example:
        >>> model = connect("http://127.0.0.1:8300")  # doctest: +SKIP
        >>> sorted(model.salience("Taste-likes: Cheese.", " Avoid.").scores)  # doctest: +SKIP
    """
    url = check_url(url)
    session = requests.Session()
    session.headers.update(auth_headers())
    began = time.monotonic()
    while True:
        try:
            return RemoteModel(url, _get_info(url, session))
        except _Starting:
            waited = time.monotonic() - began
            if waited > wait:
                raise EngineUnavailable(
                    f"The engine at {url} is up but its replicas did not start within {wait:.0f} s; "
                    "check the engine's log."
                ) from None
            if progress is not None:
                progress(f"The engine at {url} is starting: its replicas are loading the model", 0.0)
            time.sleep(1.0)


class _RowTally:
    """A batch's generations by row as several requests report them at once; each row is
    reported to ``on_row`` and ``progress`` once (a retried request reports its rows again)."""

    def __init__(
        self,
        count: int,
        on_row: Callable[[int, Generation], None] | None,
        progress: Callable[[int, int], None] | None,
    ):
        self.results: list[Generation | None] = [None] * count
        self.on_row = on_row
        self.progress = progress
        self.done = 0
        self.lock = threading.Lock()

    def arrived(self, index: int, generation: Generation) -> None:
        with self.lock:
            again = self.results[index] is not None  # a retried request reports its rows again
            self.results[index] = generation
            self.done += 0 if again else 1
            finished = self.done
        if again:
            return
        if self.on_row is not None:
            self.on_row(index, generation)
        if self.progress is not None:
            self.progress(finished, len(self.results))
