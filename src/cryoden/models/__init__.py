"""Model files: the model config, the normalisation record, safetensors weights, loading.

Training writes model files and inference reads them; both stand on this layer, which stands on
``nets`` and ``io`` alone. Nothing here ever unpickles.
"""

from cryoden.models.config import SCHEME_ALIASES, ModelConfig
from cryoden.models.files import LoadedModel, load_model, remove_model, save_model
from cryoden.models.normalization import NormalizationSpec, RobustNormalization
from cryoden.models.safetensors_file import check_safetensors, read_tensors

__all__ = [
    "SCHEME_ALIASES",
    "LoadedModel",
    "ModelConfig",
    "NormalizationSpec",
    "RobustNormalization",
    "check_safetensors",
    "load_model",
    "read_tensors",
    "remove_model",
    "save_model",
]
