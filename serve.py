"""The server: `streamlit run serve.py` serves app.py and starts the model at server start.

Streamlit runs no app code before a visitor connects, so `app.py` alone would begin
loading and warming the model on the first visit. Served through `st.App`, the
start-up hook begins that work as soon as the server process is up: by the time
someone opens the page, the model is loaded or well on its way.

``streamlit run serve.py -- --engine URL`` (or ``GEMMA_WORKBENCH_ENGINE=URL``) runs every model
call on an engine deployment (``python -m salience serve``) instead: this process then loads no
model and never imports TensorFlow, and the start-up hook only connects to the engine.

``GET /model-status`` says where the default model's start stands, as JSON
(``{"spec": …, "phase": "loading" | "warming" | "ready" | "failed" | "not started", …}``),
for a presenter's checklist or a load balancer's readiness probe; ``"settled"`` turns true
once the start-up work left after "ready" (Integrated Gradients' graph) is done too.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@asynccontextmanager
async def _start_the_model(_app: st.App) -> AsyncIterator[None]:
    import salience  # noqa: F401  (configures Keras and TensorFlow before they load; imports neither)
    from components.exposure import announce
    from components.model_resource import engine_from_args, preload

    announce()  # reachable from other machines? sign-in on?

    engine = engine_from_args(sys.argv[1:])  # `streamlit run serve.py -- --engine URL`
    if engine:
        print(f"  Model calls go to the engine at {engine}.", flush=True)
    preload()  # returns at once; the load and warm-up run in a background thread
    yield


async def _model_status(_request: Request) -> JSONResponse:
    from components.model_resource import default_spec, registry

    spec = default_spec()
    status = registry().peek(spec)
    if status is None:
        return JSONResponse({"spec": spec, "phase": "not started"})
    return JSONResponse(
        {
            "spec": spec,
            "phase": status.phase,
            "message": status.message,
            "seconds": round(status.elapsed, 1),
            "error": status.error,
            "settled": status.settled,  # nothing left to warm, not even in the background
        }
    )


app = st.App("app.py", lifespan=_start_the_model, routes=[Route("/model-status", _model_status)])
