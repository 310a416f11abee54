"""Training: datasets and patches (images, and volumes for 3D networks), training/validation splits, schemes (CARE among them), default networks, the generic
loop, its checkpoints, its warnings and its degenerate-solution guard (model files live in
``cryoden.models``)."""

from cryoden.training.care import CARE
from cryoden.training.checkpoint import EpochRecord, default_checkpoint_dir
from cryoden.training.config import TrainConfig
from cryoden.training.data import (
    PAIR_FITS,
    ImageDataset,
    PairDataset,
    SingleDataset,
    sample_patches,
)
from cryoden.training.defaults import default_network
from cryoden.training.guard import GuardReport, check_model, degenerate_path
from cryoden.training.loop import TrainResult, train
from cryoden.training.noise2noise import Noise2Noise
from cryoden.training.schemes import SCHEMES, Scheme, make_scheme
from cryoden.training.splits import split_indices
from cryoden.training.volumes import VolumePairDataset, VolumeSingleDataset

__all__ = [
    "CARE",
    "PAIR_FITS",
    "SCHEMES",
    "EpochRecord",
    "GuardReport",
    "ImageDataset",
    "Noise2Noise",
    "PairDataset",
    "Scheme",
    "SingleDataset",
    "TrainConfig",
    "TrainResult",
    "VolumePairDataset",
    "VolumeSingleDataset",
    "check_model",
    "default_checkpoint_dir",
    "default_network",
    "degenerate_path",
    "make_scheme",
    "sample_patches",
    "split_indices",
    "train",
]
