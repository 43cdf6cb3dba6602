"""Fixtures of the end-to-end tests."""

import pytest

from tests.e2e.stack import Stack


@pytest.fixture(scope="module")
def stack(tiny_artifacts, tiny_data_dir, tmp_path_factory):
    running = Stack(tiny_artifacts, tiny_data_dir, tmp_path_factory.mktemp("e2e"))
    try:
        yield running.start()
    finally:
        running.stop()


