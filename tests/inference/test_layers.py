"""The modules below the HTTP layer raise domain errors and know nothing of HTTP: ``errors.py`` alone gives those
errors a status and an error code (``DOMAIN_ERRORS``, ...). A test, so an ``ApiError`` or a status code does not creep
back into them."""

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "services" / "inference" / "app"
DOMAIN_MODULES = ["backends", "batching", "catalog", "classify", "model_store", "multipart", "overlay",
                  "picture_decoding", "redact", "saliency", "sample_store", "v2_codec", "validation_text"]
HTTP = ("fastapi", "starlette", "services.inference.app.errors")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", DOMAIN_MODULES)
def test_domain_modules_do_not_import_the_http_layer(module):
    imported = _imports(APP / f"{module}.py")
    assert not {name for name in imported if name.split(".")[0] in HTTP or name in HTTP}, (
        f"{module}.py imports the HTTP layer: raise a domain error there and map it in errors.py")


def test_every_module_of_the_app_is_placed_in_a_layer():
    """A new module must say which side it is on (the HTTP layer may raise ``ApiError``, the domain may not)."""
    http_layer_and_wiring = {"__init__", "auth", "body_limit", "body_rate", "config", "deps", "errors", "inputs",
                             "main", "metrics_prom", "replica", "responses", "schemas", "serving_state", "v2_schemas"}
    assert {path.stem for path in APP.glob("*.py")} == http_layer_and_wiring | set(DOMAIN_MODULES)
