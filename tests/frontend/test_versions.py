"""The page's "Model versions" card against a real inference API: the served and latest versions, the pin state,
every model on disk with a kept-out model's reason, and the page without the card when the API cannot list."""

import shutil

import requests

from shared.artifacts import read_manifest
from tests.inference.test_models import ADMIN, TOKEN, _publish_kept_out, _serve
from tests.inference.test_reload import _republish_changed


def test_the_page_shows_served_latest_and_the_pin_and_every_model(make_app, tiny_artifacts, tiny_data_dir, tmp_path):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, artifacts)
    first = read_manifest(artifacts).model_version
    second = _republish_changed(artifacts)
    kept_out = _publish_kept_out(artifacts)
    with _serve(tmp_path, ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=tmp_path / "none", DATA_DIR=tiny_data_dir,
                SERVING_DIR=tmp_path / "serving", ADMIN_TOKEN=TOKEN) as api:
        client = make_app(inference_url=api.url, metrics_ttl_s=0).test_client()  # no caching: each view is fresh
        page = client.get("/").get_data(as_text=True)
        assert f'data-testid="served-version">{second}<' in page and f'data-testid="latest-version">{second}<' in page
        assert 'following the latest published model' in page and ">pinned</span>" not in page
        for version in (first, second, kept_out):
            assert f"<code>{version}</code>" in page
        assert page.count('class="tag tag-served">serving<') == 1 and page.count('class="tag tag-latest">latest<') == 1
        assert ">kept out<" in page and "validation accuracy 0.1 &lt; 0.9" in page

        assert requests.post(f"{api.url}/models/{first}/pin", headers=ADMIN, timeout=60).status_code == 200
        page = client.get("/").get_data(as_text=True)
        assert f'data-testid="served-version">{first}<' in page and f'data-testid="latest-version">{second}<' in page
        assert '<strong data-testid="pin-state">pinned</strong>' in page and f"(was {second})" in page
        assert '<span class="chip" title="a pin holds this version' in page
        assert page.count('class="tag tag-pinned">pinned<') == 1


def test_without_a_model_list_the_page_still_shows_everything_else(make_app):
    """The listing answered with an error (as an API from before /models would: the real API's 404 here): the card
    is left out and the rest of the page is there."""
    app = make_app()
    svc = app.extensions["fmnist"]
    svc.api.models = lambda: svc.api._call("GET", "/models/no-such-version")  # the API's own 404 for a listing
    response = app.test_client().get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'data-testid="versions"' not in page and "test accuracy" in page
