"""The engine as a Ray Serve application: ``python -m salience serve`` (see `serve_forever`).

Each replica loads one model (`salience.model.loader.load_model`) and answers over HTTP with the
same `LanguageModel` calls the app makes in-process — tokenize, streaming generation, batched
generation and every salience method including Deletion — so results are the same code path.
Ray Serve routes requests over the replicas, on one machine or a cluster; the client is
`salience.serving.remote.RemoteModel`. Requests and answers are JSON (`salience.serving.wire`); streams are
JSON lines whose last line is ``{"final": …}`` or ``{"error": …}``, so a client can tell a
stream that ended early (a replica that died) from one that finished.

Access: a token (``GEMMA_WORKBENCH_ENGINE_TOKEN`` or ``--token-file``) locks every route but
``/healthz``, and per-request limits hold for everyone (`salience.serving.access`).
"""

import base64
import contextlib
import logging
import math
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from ray import serve

from salience.core.errors import InputError, ModelLoadError, WorkbenchError
from salience.core.types import GenerationSettings, SalienceResult
from salience.model.engine import SalienceRequest
from salience.model.lock import background_work
from salience.serving import wire
from salience.serving.access import AccessPolicy, Gate, Limits, Refused, digest, server_tokens

log = logging.getLogger(__name__)
STOP_WAIT_S = 10.0  # after Ctrl+C: how long Serve may take to stop its replicas gracefully
APP_NAME = "gemma-salience"
DEPLOYMENT = "engine"
DEFAULT_PORT = 8300
DEADLINE = "_deadline"  # set by the engine on each request's data: when its time limit ends
BACKGROUND_WORK = "_background"  # set by the engine: the client asked for background priority
WARM_UP_PROMPT = "Taste-likes: cheese. Taste-dislikes: eggs.\nRecommendation:"

api = FastAPI(title="Gemma salience engine", docs_url=None, redoc_url=None)


_Refused = Refused


def _error_response(error: BaseException) -> Response:
    headers = {}
    if isinstance(error, _Refused):
        status, body = error.status, {"error": str(error), "kind": error.kind}
        if error.retry_after:
            headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, WorkbenchError):
        status, body = 422, wire.error_to_json(error)
    else:
        log.exception("engine request failed")
        status, body = (
            500,
            {"error": f"The engine failed: {type(error).__name__}: {error}", "kind": "EngineError"},
        )
    return Response(wire.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _json(value) -> Response:
    return Response(wire.dumps(value), media_type="application/json")


def _events(
    work: Callable[[Callable[[dict], None], Callable[[], bool]], dict],
    deadline: float | None = None,
    background: bool = False,
) -> Iterator[bytes]:
    """JSON lines from ``work(emit, cancelled)`` running in its own thread: what it emits, then
    ``{"final": its result}`` or ``{"error": …}``. A client that goes away cancels the work, and
    so does the ``deadline`` (`time.monotonic`), even when nobody reads the answer any more.
    ``background`` work waits for the model behind every waiting foreground call."""
    events: queue.Queue = queue.Queue()
    gone = threading.Event()
    done = object()

    def cancelled() -> bool:
        return gone.is_set() or (deadline is not None and time.monotonic() > deadline)

    def run() -> None:
        try:
            with background_work() if background else contextlib.nullcontext():
                events.put({"final": work(events.put, cancelled)})
        except BaseException as error:  # every failure becomes the stream's last line
            if not isinstance(error, WorkbenchError):
                log.exception("engine stream failed")
            events.put(wire.error_to_json(error) if isinstance(error, WorkbenchError) else _internal(error))
        finally:
            events.put(done)

    threading.Thread(target=run, name="engine work", daemon=True).start()
    ticks = 0
    try:
        while True:
            try:
                event = events.get(timeout=wire.TICK_SECONDS)
            except queue.Empty:  # writing something now and then notices a client that left
                ticks += 1
                event = {wire.TICK: ticks}
            if event is done:
                break
            yield wire.line(event)
    finally:
        gone.set()  # the client closed the stream (or it ended): the work stops at its next step


def _internal(error: BaseException) -> dict:
    return {"error": f"The engine failed: {type(error).__name__}: {error}", "kind": "EngineError"}


async def _payload(request: Request, expected_model: str) -> dict:
    """The request's JSON object, after checking its size and the model it expects."""
    size = int(request.headers.get("content-length") or 0)
    if size > wire.MAX_REQUEST_BYTES:
        raise _Refused(413, _too_large(size))
    body = await request.body()
    if len(body) > wire.MAX_REQUEST_BYTES:
        raise _Refused(413, _too_large(len(body)))
    wanted = request.headers.get(wire.MODEL_HEADER)
    if wanted and wanted != expected_model:
        raise _Refused(
            409,
            f"The engine now serves '{expected_model}', not '{wanted}' as when this page connected; "
            "reload the page to use it, or point the app at an engine serving your model.",
            "ModelLoadError",
        )
    try:
        import json

        data = json.loads(body or b"{}")
    except ValueError as error:
        raise _Refused(400, f"The request is not JSON: {error}.") from None
    if not isinstance(data, dict):
        raise _Refused(400, "The request should be a JSON object.")
    return data


def _too_large(size: int) -> str:
    return (
        f"The request is {size / 2**20:.1f} MiB, over the engine's limit of "
        f"{wire.MAX_REQUEST_BYTES / 2**20:.0f} MiB; send shorter prompts or fewer rows at a time."
    )


def _settings(data: dict) -> GenerationSettings:
    try:
        return GenerationSettings.from_json(data.get("settings") or {})
    except TypeError as error:
        raise InputError(f"Bad generation settings: {error}.") from None


class Engine:
    """One replica: a loaded model and its HTTP handlers (wrapped by `deployment`)."""

    def __init__(
        self,
        spec: str,
        precision: str,
        only_precision: bool = False,
        warm_up: bool = True,
        policy: AccessPolicy | None = None,
    ):
        from salience.model.loader import import_tensorflow_quietly, load_model

        self.gate = Gate(policy)
        import_tensorflow_quietly()
        began = time.perf_counter()
        # A replica keeps only the precision it serves (about half the memory of both).
        self.model = load_model(spec, precision=precision, only=only_precision)
        self.load_seconds = time.perf_counter() - began
        tokenizer = self.model.causal_lm.preprocessor.tokenizer
        self._tokenizer = {
            "proto": base64.b64encode(tokenizer.proto).decode("ascii"),
            "bos_id": int(tokenizer.start_token_id),
            "stop_token_ids": sorted(self.model.stop_token_ids),
        }
        if warm_up:
            self._warm_up()

    def _warm_up(self) -> None:
        """Trace the decode and gradient graphs before the first request arrives."""
        try:
            settings = GenerationSettings(max_new_tokens=4)
            generation = self.model.generate(WARM_UP_PROMPT, settings)
            if generation.text.strip():
                self.model.salience(WARM_UP_PROMPT, generation.text)
        except WorkbenchError as error:
            log.info("warm-up skipped: %s", error)

    def _precision(self, data: dict) -> str:
        return self.model.check_precision(data.get("precision") or self.model.precision)

    # ---- answers ---------------------------------------------------------------------------
    def info(self) -> dict:
        context = serve.get_replica_context()
        return {
            "protocol": wire.PROTOCOL,
            "name": self.model.name,
            "spec": self.model.spec,
            "family": self.model.family,
            "precision": self.model.precision,
            "precisions": list(self.model.precisions),
            "max_context": self.model.max_context,
            "model_context": self.model.model_context,
            "notice": self.model.notice,
            "replica": context.replica_id.unique_id if context else "",
            "replicas": _running_replicas(),
            "pid": os.getpid(),
            "load_seconds": round(self.load_seconds, 2),
            "locked": self.gate.policy.locked,
            "limits": self.gate.limits.to_json(),
            "tokenizer": self._tokenizer,
        }

    def generate(self, data: dict) -> Iterator[bytes]:
        settings, precision = _settings(data), self._precision(data)
        stream = self.model.stream(str(data.get("prompt", "")), settings, precision)
        first = next(stream)  # bad input fails here, before the answer starts

        def lines() -> Iterator[bytes]:
            previous = first
            try:
                for partial in stream:
                    yield wire.line({"partial": previous.to_json()})
                    previous = partial
            except WorkbenchError as error:
                yield wire.line(wire.error_to_json(error))
                return
            except Exception as error:
                log.exception("generation failed")
                yield wire.line(_internal(error))
                return
            yield wire.line({"final": previous.to_json()})

        return lines()

    def generate_batch(self, data: dict) -> Iterator[bytes]:
        prompts = [str(p) for p in data.get("prompts") or []]
        settings, precision = _settings(data), self._precision(data)
        seeds = data.get("seeds")
        stops = data.get("stop_sequences")

        def work(emit, cancelled) -> dict:
            generations = self.model.generate_batch(
                prompts,
                settings,
                precision,
                batch_size=int(data.get("batch_size") or 8),
                stop_sequences=[tuple(s) for s in stops] if stops is not None else None,
                seeds=seeds,
                progress=lambda done, total: emit({"progress": [done, total]}),
                cancelled=cancelled,
                on_row=lambda row, generation: emit({"row": row, "generation": generation.to_json()}),
            )
            return {"generations": [g.to_json() for g in generations]}

        return _events(work, data.get(DEADLINE), data.get(BACKGROUND_WORK, False))

    def salience(self, data: dict) -> Iterator[bytes]:
        precision = self._precision(data)

        def work(emit, cancelled) -> dict:
            request = SalienceRequest.from_json(data, precision)
            result: SalienceResult = self.model.salience_for(
                request, progress=lambda done, total: emit({"progress": [done, total]}), cancelled=cancelled
            )
            return result.to_json()

        return _events(work, data.get(DEADLINE), data.get(BACKGROUND_WORK, False))


def _within(
    lines: Iterator[bytes], deadline: float, seconds: float, release: Callable[[], None]
) -> Iterator[bytes]:
    """``lines`` until the request's time limit: then one error line, and the work stops (the
    stream is closed). ``release`` runs when the answer ends, however it ends."""
    try:
        for item in lines:
            if time.monotonic() > deadline and not item.startswith(b'{"final"'):
                yield wire.line(
                    {
                        "error": f"The request ran past this engine's time limit of {seconds:g} s "
                        "(--request-seconds) and was stopped; ask for less work (fewer tokens, "
                        "steps or segments).",
                        "kind": "InputError",
                    }
                )
                return
            yield item
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()
        release()


def _running_replicas() -> int:
    """Replicas of this deployment that are running now (0 when Ray cannot say)."""
    try:
        status = serve.status().applications[APP_NAME].deployments[DEPLOYMENT]
        return int(status.replica_states.get("RUNNING", 0))
    except Exception:  # the controller is busy or gone: the count is only for display
        return 0


@serve.deployment(name=DEPLOYMENT, max_ongoing_requests=8, health_check_period_s=5)
@serve.ingress(api)
class EngineDeployment(Engine):
    """`Engine` behind Ray Serve's HTTP proxy."""

    @api.get("/info")
    def http_info(self, request: Request) -> Response:
        try:
            self.gate.client(request.headers.get("authorization"), request.query_params)
        except Refused as error:
            return _error_response(error)
        return _json(self.info())

    @api.get("/healthz")
    def http_health(self) -> Response:
        return _json({"ok": True})

    @api.post("/generate")
    async def http_generate(self, request: Request) -> Response:
        return await self._answer(request, self.generate, stream=True)

    @api.post("/generate_batch")
    async def http_generate_batch(self, request: Request) -> Response:
        return await self._answer(request, self.generate_batch, stream=True)

    @api.post("/salience")
    async def http_salience(self, request: Request) -> Response:
        return await self._answer(request, self.salience, stream=True)

    async def _answer(self, request: Request, handler, stream: bool) -> Response:
        import asyncio

        release: Callable[[], None] | None = None
        try:
            client = self.gate.client(request.headers.get("authorization"), request.query_params)
            data = await _payload(request, self.model.spec)
            self.gate.check(request.url.path, data)
            seconds = self.gate.limits.request_seconds
            release = self.gate.acquire(client, hold_seconds=seconds)
            data[DEADLINE] = time.monotonic() + seconds
            data[BACKGROUND_WORK] = request.headers.get(wire.PRIORITY_HEADER) == wire.BACKGROUND
            # The first step (checks, prefill) runs off the event loop, so one replica serves
            # several requests at once (the model's lock orders their work).
            lines = await asyncio.to_thread(handler, data)
            return StreamingResponse(_within(lines, data[DEADLINE], seconds, release), media_type=wire.NDJSON)
        except Exception as error:
            if release is not None:
                release()
            return _error_response(error)


def build(
    spec: str,
    precision: str,
    replicas: int,
    num_cpus: float,
    num_gpus: float,
    only_precision: bool,
    policy: AccessPolicy | None = None,
):
    """The Ray Serve application: ``replicas`` copies of the engine for ``spec``."""
    options = {"num_cpus": num_cpus, "num_gpus": num_gpus}
    return EngineDeployment.options(num_replicas=replicas, ray_actor_options=options).bind(
        spec, precision, only_precision, True, policy
    )


# ---- python -m salience serve ---------------------------------------------------------------
@dataclass(frozen=True)
class ServeOptions:
    """What ``python -m salience serve`` was asked for."""

    spec: str = "embedded"
    precision: str = "bfloat16"
    replicas: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    address: str | None = None  # an existing Ray cluster; None starts a local instance
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    only_precision: bool = True  # a replica keeps only the precision it serves
    token_file: str | None = None  # tokens, one a line; None: $GEMMA_WORKBENCH_ENGINE_TOKEN or unlocked
    limits: Limits = Limits()

    def policy(self) -> AccessPolicy:
        """The digests of the accepted tokens and the limits (raises `InputError` for a bad token)."""
        return AccessPolicy(tuple(digest(t) for t in server_tokens(self.token_file)), self.limits)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Fail in one line when a Ray address does not answer (``ray.init`` would wait minutes)."""
    if address in ("auto", "local"):
        return
    where = address.removeprefix("ray://")
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(
            f"--address {address} should look like HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:10001."
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InputError(
            f"No Ray cluster answers at {address} ({reason}). Start one with 'ray start --head' on that "
            "machine, or leave out --address to start a local one."
        ) from None


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def start(options: ServeOptions, report: Callable[[str], None] = print) -> None:
    """Start Ray (local, or join ``options.address``), deploy the engine and wait until every
    replica has loaded the model. Raises a `WorkbenchError` in one line when it cannot."""
    policy = options.policy()  # a bad token file fails here, before Ray starts
    if options.address:
        check_ray_address(options.address)
    elif not port_is_free(options.host, options.port):
        raise InputError(
            f"Port {options.port} on {options.host} is in use (another engine?); choose one with --port."
        )
    report(f"Starting Ray ({'joining ' + options.address if options.address else 'local, 127.0.0.1'})…")
    try:
        _deploy(options, policy, report)
    except BaseException:
        with contextlib.suppress(Exception):
            stop(options)
        raise


def _deploy(options: ServeOptions, policy: AccessPolicy, report: Callable[[str], None]) -> None:
    import ray

    if options.address:
        _use_cluster_token()
        try:
            ray.init(address=options.address, logging_level=logging.WARNING, log_to_driver=False)
        except ConnectionError as error:
            raise InputError(
                f"The Ray cluster at {options.address} refused to connect ({str(error).splitlines()[0]}). "
                "If it uses token authentication, copy ~/.ray/auth_token from its head node to this "
                "machine (or set RAY_AUTH_TOKEN)."
            ) from None
    else:
        ray.init(
            address="local",
            num_cpus=max(os.cpu_count() or 1, math.ceil(options.num_cpus * options.replicas)),
            num_gpus=math.ceil(options.num_gpus * options.replicas) or None,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    serve.start(http_options={"host": options.host, "port": options.port})
    report(f"Deploying {options.replicas} replica(s) of '{options.spec}' at {options.precision}…")
    application = build(
        options.spec,
        options.precision,
        options.replicas,
        options.num_cpus,
        options.num_gpus,
        options.only_precision,
        policy,
    )
    try:
        serve.run(application, name=APP_NAME, route_prefix="/", blocking=False)
    except RuntimeError as error:  # a replica's constructor failed (e.g. the model cannot load)
        detail = str(error)
        with contextlib.suppress(Exception):  # the deployment's status holds the replica's traceback
            detail = serve.status().applications[APP_NAME].deployments[DEPLOYMENT].message + "\n" + detail
        raise ModelLoadError(_replica_failure(detail)) from None


def _use_cluster_token() -> None:
    """Ray 2.60 turns token authentication on for a cluster it starts, but a driver joining one
    with ``address=`` only sends the token when RAY_AUTH_MODE says so: say so when a token is here."""
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"
        with contextlib.suppress(Exception):  # Ray reads its config once: have it read the mode again
            from ray._raylet import Config

            Config.initialize("")


def _replica_failure(text: str) -> str:
    """The user-facing line inside Ray's report of a replica that failed to start."""
    for kind in ("ModelLoadError", "CredentialsError", "UnsupportedModelError", "InputError"):
        marker = f"{kind}: "
        if marker in text:
            return text.split(marker, 1)[1].splitlines()[0].strip()
    return "The engine's replicas failed to start: " + (text.strip().splitlines() or ["no reason given"])[-1]


def stop(options: ServeOptions, wait_s: float = STOP_WAIT_S) -> None:
    """Take the application down: the whole local instance, or only this app on a shared cluster.

    Serve's own shutdown waits for replicas to finish what they are doing (up to 30 s, then Ray's
    own waits); after Ctrl+C a person waits at most ``wait_s`` for it before Ray stops the local
    instance outright (its replicas' work is abandoned, as Ctrl+C asks).
    """
    import ray

    try:
        if options.address:
            serve.delete(APP_NAME)
        else:
            graceful = threading.Thread(target=_shutdown_quietly, name="serve-shutdown", daemon=True)
            graceful.start()
            graceful.join(wait_s)
            if graceful.is_alive():
                log.info("Serve did not stop within %.0f s; stopping the local Ray instance", wait_s)
    finally:
        ray.shutdown()


def _shutdown_quietly() -> None:
    with contextlib.suppress(Exception):  # Ray stops the instance in any case
        serve.shutdown()


def _access_line(options: ServeOptions, policy: AccessPolicy) -> str:
    """Whether the engine is locked and who can reach it (never the token itself)."""
    reachable = options.host not in ("127.0.0.1", "localhost", "::1")
    where = f"listening on {options.host}:{options.port}" + (
        " (other machines can reach it)" if reachable else ""
    )
    if policy.locked:
        return (
            f"Locked: {len(policy.digests)} token(s) accepted; clients send theirs as "
            f"'Authorization: Bearer …' (set GEMMA_WORKBENCH_ENGINE_TOKEN where the app runs); {where}."
        )
    warning = (
        " Anyone who reaches it can use it: set GEMMA_WORKBENCH_ENGINE_TOKEN or --token-file."
        if reachable
        else ""
    )
    return f"Not locked (no token set); {where}.{warning}"


def serve_forever(options: ServeOptions, report: Callable[[str], None] = print) -> int:
    """Start the engine, print its URL, serve until Ctrl+C (or SIGTERM), then stop cleanly.

    Args:
        options: the model, Ray resources, HTTP address, tokens and limits (`ServeOptions`).
        report: called with each line to show (start-up, the URL, stopping).

    Returns:
        The exit status, 0 once it has stopped.

    Example:
        >>> serve_forever(ServeOptions(spec="embedded", port=8300))  # doctest: +SKIP
    """
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    # Ctrl+C too, explicitly: a script's background job starts with SIGINT ignored, and Python
    # then keeps it ignored, so `kill -INT` (or a harness's Ctrl+C) would never stop the engine.
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    policy = options.policy()
    start(options, report)  # cleans up after itself when it fails
    try:
        report(f"Engine ready at {options.url} ({options.replicas} replica(s)); Ctrl+C stops it.")
        report(_access_line(options, policy))
        report(f"Point the app at it: GEMMA_WORKBENCH_ENGINE={options.url} bash scripts/run_app.sh")
        while not stopping.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        report("Stopping the engine…")
        with contextlib.suppress(Exception):
            stop(options)
    report("Stopped.")
    return 0
