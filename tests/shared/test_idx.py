"""shared.idx: the IDX files read with numpy (raw or gzipped), and a checked download (from a local server here)."""

import functools
import gzip
import hashlib
import http.server
import shutil
import threading

import numpy as np
import pytest

from shared import idx
from tests.idx import write_fashion_mnist


def test_raw_and_gzipped_files_read_the_same(tiny_data_dir, tmp_path):
    images, labels = idx.load_arrays(tiny_data_dir, train=False, download=False)
    zipped = tmp_path / "zipped"
    raw = idx.raw_folder(zipped)
    raw.mkdir(parents=True)
    for path in idx.raw_folder(tiny_data_dir).iterdir():
        (raw / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
    again, labels_again = idx.load_arrays(zipped, train=False, download=False)
    assert images.dtype == np.uint8 and images.shape == (200, 28, 28) and labels.dtype == np.int64
    assert np.array_equal(images, again) and np.array_equal(labels, labels_again)


def test_a_truncated_file_is_named_not_misread(tiny_data_dir, tmp_path):
    copy = shutil.copytree(tiny_data_dir, tmp_path / "copy")
    path = idx.raw_folder(copy) / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(idx.DatasetNotFoundError, match="t10k-images-idx3-ubyte.*truncated"):
        idx.load_arrays(copy, train=False, download=False)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local HTTP server holding the gzipped files, standing in for the real mirror (no internet here)."""
    source = write_fashion_mnist(tmp_path / "source", train_count=20, test_count=10)
    served = tmp_path / "served"
    served.mkdir()
    md5 = {}
    for name in idx.RAW_FILES:
        data = gzip.compress((idx.raw_folder(source) / name).read_bytes())
        (served / f"{name}.gz").write_bytes(data)
        md5[name] = hashlib.md5(data, usedforsecurity=False).hexdigest()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(idx, "MIRROR", f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setattr(idx, "GZ_MD5", md5)
    yield source, served
    server.shutdown()
    server.server_close()


def test_missing_files_are_downloaded_checked_and_kept(mirror, tmp_path):
    source, _ = mirror
    images, labels = idx.load_arrays(tmp_path / "data", train=False, download=True)
    expected, _ = idx.load_arrays(source, train=False, download=False)
    assert np.array_equal(images, expected) and len(labels) == 10
    assert sorted(p.name for p in idx.raw_folder(tmp_path / "data").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_a_download_with_the_wrong_checksum_is_refused(mirror, tmp_path):
    _, served = mirror
    (served / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"something else"))
    with pytest.raises(idx.DatasetNotFoundError, match="MD5"):
        idx.load_arrays(tmp_path / "data", train=False, download=True)
    assert not (idx.raw_folder(tmp_path / "data") / "t10k-labels-idx1-ubyte.gz").exists()
