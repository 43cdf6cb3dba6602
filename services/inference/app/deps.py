"""The routes' dependencies, written once (the template's ``api/deps.py``): ``ServingDep`` is what the lifespan
built for this app, ``ModelDep`` the model serving right now, or ``NoModelLoaded`` (the one "no model yet" 503)."""

from typing import Annotated

from fastapi import Depends, Request

from services.inference.app.model_store import LoadedModel
from services.inference.app.serving_state import ServingState


async def get_serving(request: Request) -> ServingState:  # async: FastAPI runs sync dependencies in a thread
    return request.app.state.serving


async def current_model(serving: Annotated[ServingState, Depends(get_serving)]) -> LoadedModel:
    """The serving model, read once per request: a hot swap mid-request never mixes two models."""
    return serving.store.require_current()


ServingDep = Annotated[ServingState, Depends(get_serving)]
ModelDep = Annotated[LoadedModel, Depends(current_model)]
