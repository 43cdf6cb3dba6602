import torch

from shared.data import RAW_FILES, DatasetNotFoundError, load_split, train_val_split
from tests.processes import REPO_ROOT


def test_loads_idx_files(tiny_data_dir):
    train = load_split(tiny_data_dir, train=True, download=False)
    test = load_split(tiny_data_dir, train=False, download=False)
    assert train.images.shape == (600, 28, 28) and train.images.dtype == torch.uint8
    assert len(test) == 200 and set(test.labels.tolist()) == set(range(10))


def test_missing_data_names_the_directory_and_the_four_files(tmp_path):
    try:
        load_split(tmp_path / "empty", train=True, download=False)
    except DatasetNotFoundError as error:
        message = str(error)
    else:
        raise AssertionError("expected DatasetNotFoundError")
    assert str((tmp_path / "empty" / "FashionMNIST" / "raw").resolve()) in message
    assert all(name in message for name in RAW_FILES)
    # What to do in a container without internet: the offline override (a file that must exist).
    assert "FASHION_MNIST_DIR=" in message and "docker-compose.offline.yml" in message
    assert (REPO_ROOT / "docker-compose.offline.yml").is_file()


def test_validation_split_is_disjoint_and_reproducible(tiny_data_dir):
    full = load_split(tiny_data_dir, train=True, download=False)
    train_a, val_a = train_val_split(full, 100, seed=1)
    train_b, val_b = train_val_split(full, 100, seed=1)
    _, val_c = train_val_split(full, 100, seed=2)
    assert len(train_a) == 500 and len(val_a) == 100
    assert torch.equal(val_a.images, val_b.images) and not torch.equal(val_a.images, val_c.images)
    train_rows = {bytes(image.numpy()) for image in train_a.images}
    assert not any(bytes(image.numpy()) in train_rows for image in val_a.images)
