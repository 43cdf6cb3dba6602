"""FashionMNIST's IDX files with numpy alone: read them (raw or .gz), and download them where that is allowed.

``data_dir`` is the torchvision root: the files live in ``<data_dir>/FashionMNIST/raw/``, so a folder torchvision
filled works here and the other way round. The torch-free inference image reads its /samples images through this
module; the trainer reads the same files through ``shared.data``, which wraps these arrays as tensors.

Downloading (DOWNLOAD=true) fetches the gzipped files from the mirror torchvision uses, checks each against
torchvision's MD5 and writes it atomically, so an interrupted download never leaves a half file that looks
complete. When the files are missing and cannot be fetched, the error names the folder, the files, and the
offline override for Docker.
"""

import gzip
import hashlib
import logging
import urllib.request
from pathlib import Path

import numpy as np

from shared.atomic import write_atomic

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"  # torchvision's FashionMNIST.mirrors
GZ_MD5 = {  # torchvision's FashionMNIST.resources
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}
DOWNLOAD_TIMEOUT_S = 60.0
_UBYTE = 0x08  # the IDX type code of unsigned bytes, the only one FashionMNIST uses

log = logging.getLogger(__name__)


class DatasetNotFoundError(RuntimeError):
    """The FashionMNIST files are not in the data directory and could not be downloaded."""


def raw_folder(data_dir: str | Path) -> Path:
    return Path(data_dir) / "FashionMNIST" / "raw"


def load_arrays(data_dir: str | Path, train: bool, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The training (60k) or test (10k) split: uint8 images (N, 28, 28) and int64 labels (N,)."""
    prefix = "train" if train else "t10k"
    names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    try:
        for name in names:
            if _existing(data_dir, name) is None:
                if not download:
                    raise missing_error(data_dir, None)
                _download(data_dir, name)
        images, labels = (read_idx(_existing(data_dir, name)) for name in names)
    except (OSError, ValueError) as error:
        raise missing_error(data_dir, error) from error
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise missing_error(data_dir, ValueError(f"{names[0]} and {names[1]} do not belong together: shapes "
                                                 f"{images.shape} and {labels.shape}"))
    return images, labels.astype(np.int64)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped when its name ends in .gz) as a numpy array of its shape."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _UBYTE:
        raise ValueError(f"{path.name}: not an IDX file of unsigned bytes")
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    offset = 4 + 4 * dims
    if len(data) != offset + int(np.prod(shape)):
        raise ValueError(f"{path.name}: {len(data) - offset} bytes of data for shape {shape} (truncated?)")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def _existing(data_dir: str | Path, name: str) -> Path | None:
    """The file as it is there: uncompressed (what torchvision extracts) or gzipped (what it downloads)."""
    for candidate in (raw_folder(data_dir) / name, raw_folder(data_dir) / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _download(data_dir: str | Path, name: str) -> None:
    url = f"{MIRROR}{name}.gz"
    log.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:  # noqa: S310 - fixed https URL, MD5 checked
        data = response.read()
    digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if digest != GZ_MD5[name]:
        raise ValueError(f"{url}: MD5 {digest}, expected {GZ_MD5[name]} (a corrupt or changed download)")
    write_atomic(raw_folder(data_dir) / f"{name}.gz", lambda handle: handle.write(data))


def missing_error(data_dir: str | Path, cause: Exception | None) -> DatasetNotFoundError:
    folder = raw_folder(data_dir).resolve()
    missing = [name for name in RAW_FILES if _existing(data_dir, name) is None]
    message = (
        f"FashionMNIST not found in {folder} (missing: {', '.join(missing) or 'unreadable files'}). "
        f"Put the four IDX files {', '.join(RAW_FILES)} (optionally .gz) there, or set DATA_DIR to a "
        "directory that has FashionMNIST/raw/ with them, or allow downloading where internet is available. "
        "In Docker without internet: FASHION_MNIST_DIR=<such a directory> docker compose -f docker-compose.yml "
        "-f docker-compose.offline.yml up (docs/docker.md: offline data)."
    )
    if cause is not None:
        message += f" ({cause})"
    return DatasetNotFoundError(message)
