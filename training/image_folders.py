"""Microsoft's PetImages (cats vs dogs) as TensorFlow Datasets' ``cats_vs_dogs`` keeps them:
a folder of JPEGs per class, indexed in a fixed order and split 80/10/10 (``cats_index``),
decoded and resized to 100x100 RGB as ``tf.image.resize`` does (``read_cats``), and taken out
of Microsoft's zip (``extract_pet_images``)."""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.arrays import Arrays, split_facts
from training.dataset_errors import FetchError

CATS_CLASSES = ("cat", "dog")  # TFDS' ClassLabel order: cat 0, dog 1
CATS_SIZE = 100  # the post's IMAGE_SIZE
CATS_SEED = 0
CATS_SPLIT = (80, 10, 10)  # training, validation, test percent: the post's split tuple
# tf.image.resize's default is bilinear with half-pixel centres and no antialiasing, which
# is what torch's interpolate(bilinear, align_corners=False, antialias=False) computes.
CATS_ANTIALIAS = False
_CATS_NAME = re.compile(r"^(Cat|Dog)/(\d+)\.jpg$")  # TFDS' _NAME_RE below PetImages/


@dataclass(frozen=True)
class CatsIndex:
    """The images TFDS keeps, in this suite's fixed order, and how many it drops."""

    paths: tuple[Path, ...]
    labels: np.ndarray
    skipped: int  # files without "JFIF" in their first 10 bytes (1,738 in the 5340 zip)
    bounds: tuple[int, int]  # end of train, end of val


def cats_index(directory: Path) -> CatsIndex:
    """Every ``PetImages/{Cat,Dog}/<n>.jpg`` with "JFIF" in its first 10 bytes, the test TFDS'
    cats_vs_dogs applies (23,262 of 25,000 pass). TFDS' own order comes from its shuffling
    by key hash and is not reproducible here: the files are sorted by (class, number), then
    permuted with a fixed seed. Splits are TFDS' ``train[:80%]``, ``[80%:90%]``, ``[90%:]``
    with its rounding to the closest example."""
    found: list[tuple[int, int, Path]] = []
    skipped = 0
    pets = directory / "PetImages"
    for label, folder in enumerate(("Cat", "Dog")):
        for path in (pets / folder).iterdir():
            if not _CATS_NAME.match(f"{folder}/{path.name}"):
                continue  # Thumbs.db and the like, as TFDS skips them
            with open(path, "rb") as f:
                if b"JFIF" not in f.read(10):
                    skipped += 1
                    continue
            found.append((label, int(path.stem), path))
    found.sort(key=lambda t: (t[0], t[1]))
    order = np.random.default_rng(CATS_SEED).permutation(len(found))
    n = len(found)
    bounds = (round(n * CATS_SPLIT[0] / 100), round(n * (CATS_SPLIT[0] + CATS_SPLIT[1]) / 100))
    return CatsIndex(tuple(found[i][2] for i in order), np.array([found[i][0] for i in order], np.int64),
                     skipped, bounds)


def cats_facts(directory: Path) -> dict[str, Any]:
    """From the file index alone (decoding 23,262 JPEGs takes minutes)."""
    index = cats_index(directory)
    train_end, val_end = index.bounds
    sizes = {"train": train_end, "val": val_end - train_end, "test": len(index.paths) - val_end}
    return {**split_facts(sizes, (CATS_SIZE, CATS_SIZE, 3), CATS_CLASSES), "skipped": index.skipped}


def _decode_resized(path: Path) -> np.ndarray | None:
    """RGB uint8 (100, 100, 3), or None for a file torchvision cannot decode."""
    import torch
    import torchvision

    try:
        image = torchvision.io.decode_image(torchvision.io.read_file(str(path)),
                                            mode=torchvision.io.ImageReadMode.RGB)
    except RuntimeError:
        return None
    resized = torch.nn.functional.interpolate(image[None].float(), size=(CATS_SIZE, CATS_SIZE),
                                              mode="bilinear", align_corners=False,
                                              antialias=CATS_ANTIALIAS)
    return resized[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def read_cats(directory: Path) -> Arrays:
    """Decode and resize every kept image (threads: decoding releases the GIL). A file that
    passes TFDS' header test but does not decode is dropped with a warning that counts them
    (TFDS would have stopped on it, so none is expected)."""
    index = cats_index(directory)
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        # torchvision >= 0.29 deprecates its image decoders in favour of torchcodec; they still
        # are libjpeg-turbo, as TensorFlow's decoder is
        warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)
        images = list(pool.map(_decode_resized, index.paths))
    keep = np.array([im is not None for im in images], bool)
    if not keep.all():
        warnings.warn(f"{directory}: {int((~keep).sum())} of {len(keep)} images could not be decoded "
                      "and were dropped", stacklevel=2)
    stacked = (np.stack([im for im in images if im is not None]) if keep.any()
               else np.zeros((0, CATS_SIZE, CATS_SIZE, 3), np.uint8))
    train_end, val_end = index.bounds
    split = np.zeros(len(images), np.int64)
    split[train_end:val_end], split[val_end:] = 1, 2
    split, labels = split[keep], index.labels[keep]
    return Arrays(stacked[split == 0], labels[split == 0], stacked[split == 2], labels[split == 2],
                  CATS_CLASSES, stacked[split == 1], labels[split == 1])


def extract_pet_images(archive: Path, directory: Path) -> None:
    """Extract PetImages/{Cat,Dog}/*.jpg from a local copy of Microsoft's zip into ``directory``."""
    try:
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.namelist()
                       if m.startswith("PetImages/") and _CATS_NAME.match(m.removeprefix("PetImages/"))]
            if not members:
                raise FetchError(f"{archive} holds no PetImages/Cat/*.jpg or PetImages/Dog/*.jpg")
            z.extractall(directory, members)
    except (zipfile.BadZipFile, OSError) as error:
        raise FetchError(f"{archive}: cannot extract ({error})") from None
