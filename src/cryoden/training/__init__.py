"""Training: datasets and patches, schemes, the generic loop (model files live in ``cryoden.models``)."""

from cryoden.training.data import (
    ImageDataset,
    PairDataset,
    SingleDataset,
    sample_patches,
    split_indices,
)
from cryoden.training.loop import EpochRecord, TrainConfig, TrainResult, train
from cryoden.training.noise2noise import Noise2Noise
from cryoden.training.schemes import SCHEMES, Scheme, make_scheme

__all__ = [
    "SCHEMES",
    "EpochRecord",
    "ImageDataset",
    "Noise2Noise",
    "PairDataset",
    "Scheme",
    "SingleDataset",
    "TrainConfig",
    "TrainResult",
    "make_scheme",
    "sample_patches",
    "split_indices",
    "train",
]
