"""A run's three splits: training images (TRAIN_LIMIT of them for smoke runs), the validation split carved from
the 60k training set with SPLIT_SEED, and the 10k test set."""

from services.trainer.config import TrainSettings
from services.trainer.distributed import World, on_main
from shared.data import DatasetNotFoundError, Split, load_split, train_val_split


def load_data(settings: TrainSettings) -> tuple[Split, Split, Split]:
    full_train = load_split(settings.data_dir, train=True, download=settings.download)
    train, val = train_val_split(full_train, settings.val_size, settings.split_seed)
    if settings.train_limit:
        train = Split(train.images[:settings.train_limit], train.labels[:settings.train_limit])
    test = load_split(settings.data_dir, train=False, download=settings.download)
    return train, val, test


def load_data_once(settings: TrainSettings, world: World) -> tuple[Split, Split, Split]:
    """Rank 0 loads (and downloads when allowed) first; the others read the files after it succeeded."""
    loaded = []
    on_main(world, lambda: loaded.append(load_data(settings)), errors=(DatasetNotFoundError,))
    return loaded[0] if loaded else load_data(settings)
