"""The routes' dependencies, written once (the template's ``api/deps.py``): ``ServicesDep`` is what the lifespan
built for this app, ``ModelDep`` the model serving right now, or the one "no model yet" 503."""

from typing import Annotated

from fastapi import Depends, Request

from services.inference.app.errors import no_model_yet
from services.inference.app.model_store import LoadedModel
from services.inference.app.services import Services


async def get_services(request: Request) -> Services:  # async: FastAPI runs sync dependencies in a thread
    return request.app.state.services


async def current_model(services: Annotated[Services, Depends(get_services)]) -> LoadedModel:
    """The serving model, read once per request: a hot swap mid-request never mixes two models."""
    loaded = services.store.current
    if loaded is None:
        raise no_model_yet()
    return loaded


ServicesDep = Annotated[Services, Depends(get_services)]
ModelDep = Annotated[LoadedModel, Depends(current_model)]
