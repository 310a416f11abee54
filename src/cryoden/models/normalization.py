"""Per-image robust normalisation of network inputs.

Each image is mapped to ``(x - center) / scale`` with a center and scale that a few hot pixels
cannot move: the median, and the spread between the 0.5th and 99.5th percentiles expressed as
a Gaussian standard deviation. At inference every input is normalised with its own
parameters and the network output is mapped back, so outputs keep the input's scale.

A model file stores the *method* (name and parameters, :class:`NormalizationSpec`), not the
per-image numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from cryoden.errors import ParameterError

METHODS: tuple[str, ...] = ("per-image-robust",)

#: Larger images are fitted on a regular subsample of this many pixels.
FIT_MAX_PIXELS = 1 << 22


@dataclass(frozen=True)
class RobustNormalization:
    """An affine map ``y = clip((x - center) / scale)`` and its inverse ``x = y * scale + center``.

    ``clip`` (in units of ``scale``; ``None`` for none) bounds extreme outliers such as hot
    pixels in the network input. :meth:`invert` does not undo the clipping.
    """

    center: float
    scale: float
    clip: float | None = None

    @classmethod
    def fit(
        cls,
        image: np.ndarray,
        *,
        low_percentile: float = 0.5,
        high_percentile: float = 99.5,
        clip: float | None = None,
    ) -> RobustNormalization:
        """Fit on ``image`` (any shape; several images' pixels may be passed together).

        The center is the median; the scale is ``(p_high - p_low) / (z_high - z_low)``, the
        standard deviation of a Gaussian with those percentiles. If that is 0 (a mostly flat
        image) the standard deviation is used, then 1. Images of more than ``FIT_MAX_PIXELS``
        pixels are fitted on a regular subsample of that many pixels: millions of pixels fix
        the percentiles closely, and memory and time stay bounded.
        """
        flat = np.asarray(image).ravel()
        step = -(-flat.size // FIT_MAX_PIXELS)
        values = np.asarray(flat[::step], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise ParameterError("cannot normalise an image without finite values")
        low, center, high = np.percentile(values, [low_percentile, 50.0, high_percentile])
        unit = NormalDist()
        z_span = unit.inv_cdf(high_percentile / 100.0) - unit.inv_cdf(low_percentile / 100.0)
        scale = float(high - low) / z_span
        if not scale > 0:
            scale = float(values.std())
        if not scale > 0:
            scale = 1.0
        return cls(center=float(center), scale=scale, clip=clip)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Normalise: ``(image - center) / scale``, clipped to ``±clip``; float32."""
        out = (np.asarray(image, dtype=np.float64) - self.center) / self.scale
        if self.clip is not None:
            np.clip(out, -self.clip, self.clip, out=out)
        return out.astype(np.float32)

    def invert(self, image: np.ndarray) -> np.ndarray:
        """Back to the original scale: ``image * scale + center``; float32."""
        return (np.asarray(image, dtype=np.float64) * self.scale + self.center).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RobustNormalization:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass(frozen=True)
class NormalizationSpec:
    """How inputs are normalised: stored by name and parameters in a model's config.

    Parameters
    ----------
    method
        ``"per-image-robust"``: :class:`RobustNormalization` fitted on each image.
    low_percentile, high_percentile
        Percentiles whose spread gives the scale.
    clip
        Clip normalised inputs to ``±clip`` robust standard deviations (``None``: no clip).
    """

    method: str = "per-image-robust"
    low_percentile: float = 0.5
    high_percentile: float = 99.5
    clip: float | None = 50.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ParameterError(
                f"unknown normalisation {self.method!r}; known: {', '.join(METHODS)}"
            )
        if not 0.0 <= self.low_percentile < 50.0 < self.high_percentile <= 100.0:
            raise ParameterError(
                "normalisation percentiles must satisfy 0 <= low < 50 < high <= 100, got "
                f"{self.low_percentile} and {self.high_percentile}"
            )
        if self.clip is not None and not self.clip > 0:
            raise ParameterError(f"normalisation clip must be positive or null, got {self.clip}")

    def fit(self, image: np.ndarray) -> RobustNormalization:
        """The normalisation of one image (or of several images' pixels passed together)."""
        return RobustNormalization.fit(
            image,
            low_percentile=self.low_percentile,
            high_percentile=self.high_percentile,
            clip=self.clip,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormalizationSpec:
        """Build and validate; unknown fields raise ParameterError."""
        if not isinstance(data, dict):
            raise ParameterError("normalisation config must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"unknown normalisation field(s) {', '.join(unknown)}")
        return cls(**data)
