"""FashionMNIST access through torchvision, from a configurable directory.

``data_dir`` is the torchvision root: the IDX files live in ``<data_dir>/FashionMNIST/raw/``. When they are
missing and downloading is allowed, torchvision fetches them; when that fails (for example offline) the error
names the directory and the four files a user can put there by hand.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.datasets import FashionMNIST

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class DatasetNotFoundError(RuntimeError):
    """The FashionMNIST files are not in the data directory and could not be downloaded."""


@dataclass(frozen=True)
class Split:
    """A whole split held in memory: uint8 images (N, 28, 28) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def raw_folder(data_dir: str | Path) -> Path:
    return Path(data_dir) / "FashionMNIST" / "raw"


def _missing_error(data_dir: str | Path, cause: Exception | None) -> DatasetNotFoundError:
    folder = raw_folder(data_dir).resolve()
    missing = [name for name in RAW_FILES if not (folder / name).exists() and not (folder / f"{name}.gz").exists()]
    message = (
        f"FashionMNIST not found in {folder} (missing: {', '.join(missing) or 'unreadable files'}). "
        f"Put the four IDX files {', '.join(RAW_FILES)} (optionally .gz) there, or set DATA_DIR to a "
        "directory that has FashionMNIST/raw/ with them, or allow downloading where internet is available. "
        "In Docker without internet: FASHION_MNIST_DIR=<such a directory> docker compose -f docker-compose.yml "
        "-f docker-compose.offline.yml up (README: offline data)."
    )
    if cause is not None:
        message += f" Download failed: {cause}"
    return DatasetNotFoundError(message)


def load_split(data_dir: str | Path, train: bool, download: bool = True) -> Split:
    """Load the training (60k) or test (10k) split into memory."""
    try:
        dataset = FashionMNIST(root=str(data_dir), train=train, download=download)
    except (RuntimeError, OSError) as error:
        raise _missing_error(data_dir, error if download else None) from error
    return Split(images=dataset.data.clone(), labels=dataset.targets.clone().long())


def train_val_split(split: Split, val_size: int, seed: int) -> tuple[Split, Split]:
    """Carve a validation set out of the training split, the same way for the same seed."""
    if not 0 < val_size < len(split):
        raise ValueError(f"VAL_SIZE must be between 1 and {len(split) - 1}, got {val_size}")
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:val_size], order[val_size:]
    return (
        Split(split.images[train_idx], split.labels[train_idx]),
        Split(split.images[val_idx], split.labels[val_idx]),
    )
