"""Training: datasets and patches, normalisation, schemes, the generic loop, model files."""

from cryoden.training.data import (
    ImageDataset,
    PairDataset,
    SingleDataset,
    sample_patches,
    split_indices,
)
from cryoden.training.loop import EpochRecord, TrainConfig, TrainResult, train
from cryoden.training.modelfile import LoadedModel, ModelConfig, load_model, save_model
from cryoden.training.noise2noise import Noise2Noise
from cryoden.training.normalization import NormalizationSpec, RobustNormalization
from cryoden.training.schemes import SCHEMES, Scheme, make_scheme

__all__ = [
    "SCHEMES",
    "EpochRecord",
    "ImageDataset",
    "LoadedModel",
    "ModelConfig",
    "Noise2Noise",
    "NormalizationSpec",
    "PairDataset",
    "RobustNormalization",
    "Scheme",
    "SingleDataset",
    "TrainConfig",
    "TrainResult",
    "load_model",
    "make_scheme",
    "save_model",
    "sample_patches",
    "split_indices",
    "train",
]
