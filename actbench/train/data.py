"""Data sets read from their own file formats (no torchvision), as normalised in-memory tensors.

Interface (the suite validator and the run executor rely on it):

- ``DATASET_OPTIONS[name]``: the `data:` keys each data set accepts, with their defaults.
- ``check_available(name, root)``: raise ActbenchError saying where to put the files when a data set
  needs files that are not there (called by suite validation before anything runs).
- ``load_dataset(name, *, root, download, seed, **options) -> DataSplits``.
- ``batches(split_x, split_y, batch_size, *, shuffle, augment, generator)``: an iterator of (x, y).
"""

from __future__ import annotations

# data-set name -> accepted `data:` options (besides name/root/download) and their defaults
DATASET_OPTIONS: dict[str, dict[str, object]] = {
    "cifar10": {"train_subset": None},
    "cifar100": {"train_subset": None},
    "mnist": {"train_subset": None},
    "fashion_mnist": {"train_subset": None},
    "mnist1d": {"train_subset": None, "num_samples": 5000},
    "synthetic": {"train_subset": None, "shape": [1, 8, 8], "classes": 10, "train_size": 512,
                  "test_size": 256},
}
