"""Who may use the engine (``python -m salience serve``) and how much one request may ask for.

The engine is locked when ``GEMMA_WORKBENCH_ENGINE_TOKEN`` is set where it starts, or when it is
given ``--token-file PATH`` (one token a line: one per client, each with its own limits). Every
request but ``/healthz`` must then carry ``Authorization: Bearer TOKEN``; a missing or wrong one
gets HTTP 401 before any work. Replicas keep only the SHA-256 digest of each token (Ray never
holds the secret) and compare digests in constant time (`hmac.compare_digest`).

`Limits` hold for every request, locked or not: the largest prompt, ``max_new_tokens``, rows in
one batch, Integrated Gradients steps, Deletion segments, requests at once per token (per
replica) and a time limit per request. Over a limit: 413, 422 or 429 with one line that says
which limit and what to do. No message, log line or answer ever holds a token.

The client side (`salience.serving.remote`, the CLI) sends the token from the same variable, or from
the file ``GEMMA_WORKBENCH_ENGINE_TOKEN_FILE`` names.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from salience.core.errors import InputError

TOKEN_ENV = "GEMMA_WORKBENCH_ENGINE_TOKEN"
TOKEN_FILE_ENV = "GEMMA_WORKBENCH_ENGINE_TOKEN_FILE"
MIN_TOKEN_CHARS = 16
# Query parameters that look like a credential: a token there ends up in access logs and histories.
QUERY_SECRETS = ("token", "access_token", "api_key", "apikey", "key", "auth", "authorization")


class Refused(Exception):
    """A request refused before any work: answered with ``status`` and one line."""

    def __init__(self, status: int, message: str, kind: str = "InputError", retry_after: int | None = None):
        super().__init__(message)
        self.status, self.kind, self.retry_after = status, kind, retry_after


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the engine (``python -m salience serve --help`` sets them)."""

    max_prompt_chars: int = 50_000  # a prompt (or prompt + target) in characters
    max_new_tokens: int = 4096  # the model's own ceiling (salience.model.language_model.MAX_NEW_TOKENS_LIMIT)
    max_batch_rows: int = 64  # rows in one /generate_batch request (the client splits larger batches)
    max_integrated_steps: int = 256
    max_segments: int = 512  # Deletion: one forward pass per segment
    max_concurrent: int = 8  # requests at once per token, on one replica (Ray Serve queues 8 per replica)
    request_seconds: float = 600.0  # a request still running after this stops with an error line

    def to_json(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class AccessPolicy:
    """What each replica is given: token digests (hex, never the tokens) and the limits."""

    digests: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)

    @property
    def locked(self) -> bool:
        return bool(self.digests)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_token(token: str, where: str) -> str:
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise InputError(
            f"The engine token in {where} is too short or holds spaces; use at least {MIN_TOKEN_CHARS} "
            'characters without spaces, e.g. from: python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    return token


def read_token_file(path: str | Path) -> tuple[str, ...]:
    """The tokens in ``path``, one a line (blank lines and ``#`` comments skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise InputError(f"Cannot read the token file {path} ({reason}).") from None
    tokens = tuple(
        _check_token(line.strip(), f"{path}, line {number}")
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.strip().startswith("#")
    )
    if not tokens:
        raise InputError(f"The token file {path} holds no token.")
    return tokens


def server_tokens(token_file: str | Path | None = None) -> tuple[str, ...]:
    """The tokens the engine accepts: ``token_file``'s, else the environment's (none: unlocked)."""
    if token_file:
        return read_token_file(token_file)
    token = os.environ.get(TOKEN_ENV, "").strip()
    return (_check_token(token, TOKEN_ENV),) if token else ()


def client_token() -> str | None:
    """The token the app and the CLI send: ``$GEMMA_WORKBENCH_ENGINE_TOKEN``, else the first line
    of the file ``$GEMMA_WORKBENCH_ENGINE_TOKEN_FILE`` names; None when neither is set."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    path = os.environ.get(TOKEN_FILE_ENV, "").strip()
    return read_token_file(path)[0] if path else None


def auth_headers() -> dict[str, str]:
    token = client_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


class Gate:
    """A replica's checks: the token (401), the limits (413/422) and requests at once (429)."""

    def __init__(self, policy: AccessPolicy | None = None):
        self.policy = policy or AccessPolicy()
        self.limits = self.policy.limits
        self._digests = [bytes.fromhex(d) for d in self.policy.digests]
        self._running: dict[int, int] = {}
        self._lock = threading.Lock()

    def client(self, authorization: str | None, query: Mapping[str, str]) -> int:
        """Which token a request carries (its index; 0 when unlocked); raises `Refused` (400/401)."""
        named = sorted(k for k in query if k.lower() in QUERY_SECRETS)
        if named:
            raise Refused(
                400,
                f"Send the engine token in the 'Authorization: Bearer …' header, not in the address "
                f"('{named[0]}=' in the query): addresses end up in logs and browser histories.",
            )
        if not self._digests:
            return 0
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(
                401,
                f"This engine needs a token: set {TOKEN_ENV} where the app or CLI runs to the "
                "engine's token (it is sent as 'Authorization: Bearer …').",
                "EngineAccessError",
            )
        given = hashlib.sha256(token.strip().encode("utf-8")).digest()
        found = -1
        for index, known in enumerate(self._digests):  # every digest compared: no early exit
            if hmac.compare_digest(given, known):
                found = index
        if found < 0:
            raise Refused(
                401,
                f"The engine refused the token (wrong or no longer valid); check {TOKEN_ENV} "
                "against the engine's token.",
                "EngineAccessError",
            )
        return found

    def acquire(self, client: int, hold_seconds: float | None = None) -> Callable[[], None]:
        """Take one of ``client``'s concurrent requests (429 when it has them all); returns the
        release, which may be called any number of times. The slot also frees itself after
        ``hold_seconds`` (the time limit): an answer its client walked away from may never end."""
        with self._lock:
            running = self._running.get(client, 0)
            if running >= self.limits.max_concurrent:
                raise Refused(
                    429,
                    f"This token already has {running} requests running on this engine replica, its "
                    f"limit (--max-concurrent {self.limits.max_concurrent}); wait for one to finish.",
                    retry_after=2,
                )
            self._running[client] = running + 1
        released = threading.Event()

        def release() -> None:
            with self._lock:
                if released.is_set():
                    return
                released.set()
                self._running[client] -= 1
            if timer is not None:
                timer.cancel()

        timer = None
        if hold_seconds is not None:
            timer = threading.Timer(hold_seconds, release)
            timer.daemon = True
            timer.start()
        return release

    @contextlib.contextmanager
    def slot(self, client: int) -> Iterator[None]:
        """`acquire` for a block."""
        release = self.acquire(client)
        try:
            yield
        finally:
            release()

    def check(self, path: str, data: Mapping) -> None:
        """Refuse a request that asks for more than the limits allow (413/422)."""
        limits = self.limits
        settings = data.get("settings") or {}
        if isinstance(settings, Mapping):
            wanted = settings.get("max_new_tokens")
            if isinstance(wanted, int | float) and wanted > limits.max_new_tokens:
                raise Refused(
                    422,
                    f"max_new_tokens {int(wanted)} is over this engine's limit of {limits.max_new_tokens} "
                    "(--max-new-tokens); ask for fewer.",
                )
        if path == "/generate_batch":
            prompts = data.get("prompts") or []
            if not isinstance(prompts, list):
                raise Refused(400, "'prompts' should be a list of texts.")
            if len(prompts) > limits.max_batch_rows:
                raise Refused(
                    413,
                    f"{len(prompts):,} rows in one request, over this engine's limit of "
                    f"{limits.max_batch_rows} (--max-batch-rows); send fewer rows at a time.",
                )
            batch_size = data.get("batch_size")
            if isinstance(batch_size, int | float) and batch_size > limits.max_batch_rows:
                raise Refused(422, f"batch_size {int(batch_size)} is over {limits.max_batch_rows}.")
            texts = [(f"row {i + 1}", p) for i, p in enumerate(prompts)]
        elif path == "/salience":
            texts = [("prompt and target", f"{data.get('prompt', '')}{data.get('target', '')}")]
            steps = data.get("integrated_steps")
            if isinstance(steps, int | float) and steps > limits.max_integrated_steps:
                raise Refused(
                    422,
                    f"{int(steps)} Integrated Gradients steps, over this engine's limit of "
                    f"{limits.max_integrated_steps} (--max-steps).",
                )
            segments = data.get("segments")
            if isinstance(segments, list) and len(segments) > limits.max_segments:
                raise Refused(
                    413,
                    f"{len(segments):,} Deletion segments, over this engine's limit of "
                    f"{limits.max_segments} (--max-segments); choose larger segments (sentences, lines).",
                )
        else:
            texts = [("prompt", data.get("prompt", ""))]
        for label, text in texts:
            if len(str(text)) > limits.max_prompt_chars:
                raise Refused(
                    413,
                    f"The {label} is {len(str(text)):,} characters, over this engine's limit of "
                    f"{limits.max_prompt_chars:,} (--max-prompt-chars); shorten it.",
                )
