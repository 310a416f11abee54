"""The model config: everything besides the weights that a model file records, as JSON.

A :class:`ModelConfig` rebuilds the network (its :class:`~cryoden.nets.config.NetworkConfig`),
says how inputs are normalised and which training scheme made the weights, and carries a
free-form training summary. :mod:`cryoden.models.files` writes and reads it beside the weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryoden import __version__
from cryoden.errors import ParameterError
from cryoden.models.normalization import NormalizationSpec
from cryoden.nets.config import NetworkConfig

#: Version of the model-file layout this cryoden writes and the newest it reads.
FORMAT_VERSION = 1

#: Scheme names that model files may carry and the registered names they stand for
#: (Neighbor2Neighbor is registered as ``"ne2ne"``; ``"nb2nb"`` files load as that scheme).
SCHEME_ALIASES: dict[str, str] = {"nb2nb": "ne2ne"}


@dataclass
class ModelConfig:
    """Everything besides the weights that a model file records.

    Parameters
    ----------
    network
        The network's configuration (rebuilds it).
    normalization
        How inputs are normalised (fitted per image at inference).
    scheme
        The training scheme's registry name (``"n2n"``, ``"n2v"``, ...).
    training
        Summary of the training: data (number of images, shapes, sources), epochs, final and
        best losses, the training configuration. Free-form JSON.
    scheme_options
        The scheme's settings that decide how the model is applied (JSON object; e.g.
        Neighbor2Neighbor's ``{"input_image": "cell-mean"}``, Noise2Void's blind spot
        ``{"blind_spot": "structured:2,2"}``), with the measured ``noise_correlation`` of the
        training images the choice was made from (``{"x": [...], "y": [...]}``, lags 1, 2, ...)
        where the scheme measured it. Empty for schemes without any; a file without the field
        is read with it empty, which means the scheme's paper form (Noise2Void: ``pixel``).
    cryoden_version
        The version that wrote the file.
    format_version
        The model-file layout version.
    """

    network: NetworkConfig
    normalization: NormalizationSpec = field(default_factory=NormalizationSpec)
    scheme: str = "n2n"
    training: dict[str, Any] = field(default_factory=dict)
    scheme_options: dict[str, Any] = field(default_factory=dict)
    cryoden_version: str = __version__
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "format_version": self.format_version,
            "cryoden_version": self.cryoden_version,
            "network": self.network.to_dict(),
            "normalization": self.normalization.to_dict(),
            "scheme": self.scheme,
            "scheme_options": self.scheme_options,
            "training": self.training,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build and validate (ParameterError for a missing or bad field); a scheme alias
        (:data:`SCHEME_ALIASES`) is read as the scheme it stands for."""
        if not isinstance(data, dict):
            raise ParameterError("the model config must be a JSON object")
        missing = [k for k in ("format_version", "network", "scheme") if k not in data]
        if missing:
            raise ParameterError(f"the model config lacks {', '.join(missing)}")
        version = data["format_version"]
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ParameterError(f"bad model format_version {version!r}")
        if version > FORMAT_VERSION:
            raise ParameterError(
                f"model format version {version} is newer than this cryoden reads "
                f"({FORMAT_VERSION}); upgrade cryoden"
            )
        training = data.get("training", {})
        if not isinstance(training, dict):
            raise ParameterError("the model config's training summary must be a JSON object")
        if not isinstance(data["scheme"], str):
            raise ParameterError("the model config's scheme must be a string")
        scheme_options = data.get("scheme_options", {})
        if not isinstance(scheme_options, dict):
            raise ParameterError("the model config's scheme_options must be a JSON object")
        return cls(
            network=NetworkConfig.from_dict(data["network"]),
            normalization=NormalizationSpec.from_dict(data.get("normalization", {})),
            scheme=SCHEME_ALIASES.get(data["scheme"], data["scheme"]),
            scheme_options=scheme_options,
            training=training,
            cryoden_version=str(data.get("cryoden_version", "unknown")),
            format_version=version,
        )
