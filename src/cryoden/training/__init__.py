"""Training: datasets and patches, schemes, default networks, the generic loop and its
checkpoints (model files live in ``cryoden.models``)."""

from cryoden.training.checkpoint import EpochRecord, default_checkpoint_dir
from cryoden.training.config import TrainConfig
from cryoden.training.data import (
    ImageDataset,
    PairDataset,
    SingleDataset,
    sample_patches,
    split_indices,
)
from cryoden.training.defaults import default_network
from cryoden.training.loop import TrainResult, train
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
    "default_checkpoint_dir",
    "default_network",
    "make_scheme",
    "sample_patches",
    "split_indices",
    "train",
]
