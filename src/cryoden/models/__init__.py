"""Model files: the network config, the normalisation record, safetensors weights, loading.

Training writes model files and inference reads them; both stand on this layer, which stands on
``nets`` alone. Nothing here ever unpickles.
"""

from cryoden.models.modelfile import LoadedModel, ModelConfig, load_model, save_model
from cryoden.models.normalization import NormalizationSpec, RobustNormalization

__all__ = [
    "LoadedModel",
    "ModelConfig",
    "NormalizationSpec",
    "RobustNormalization",
    "load_model",
    "save_model",
]
