"""The range of inputs a model was trained on, and whether an input falls inside it.

A shipped model's card records what its training data spanned (:class:`TrainedRange`): pixel
sizes in Å, a noise level as a variance SNR (``var(signal) / var(noise)``) and the number of image
dimensions. :func:`check_input` compares one input with it and returns what is outside, as
:class:`RangeFinding` records (pure: no logging, no I/O); the command line words the advice.

The noise level of a real image is not known, so it is estimated: :func:`snr_from_denoised`
takes a denoised copy of (part of) the image as the signal and the difference as the noise. A
rough estimate, good to a factor of about two inside the range; hence :data:`SNR_MARGIN`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cryoden.errors import ParameterError
from cryoden.io.mrc import is_stack_path

#: An estimated SNR counts as outside only beyond this factor of the trained range (rough
#: estimate, see :func:`snr_from_denoised`).
SNR_MARGIN = 2.0

#: Relative tolerance on the pixel-size range (headers round pixel sizes).
PIXEL_SIZE_TOLERANCE = 0.02


def _pair(data: Any, name: str) -> tuple[float, float]:
    if not isinstance(data, Sequence) or isinstance(data, str) or len(data) != 2:
        raise ParameterError(f"trained range {name} must be [low, high], got {data!r}")
    try:
        low, high = float(data[0]), float(data[1])
    except (TypeError, ValueError):
        raise ParameterError(f"trained range {name} must hold numbers, got {data!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
        raise ParameterError(f"trained range {name} must be 0 < low <= high, got {data!r}")
    return low, high


@dataclass(frozen=True)
class TrainedRange:
    """What a model's training data spanned.

    Attributes
    ----------
    pixel_size_angstrom
        ``(low, high)`` pixel sizes in Å.
    snr
        ``(low, high)`` variance SNRs.
    dims
        Image dimensions the model denoises (2: images and stacks of them, not volumes).
    """

    pixel_size_angstrom: tuple[float, float]
    snr: tuple[float, float]
    dims: int = 2

    @classmethod
    def from_dict(cls, data: Any) -> TrainedRange:
        """Read and validate a card's ``trained_range`` object (ParameterError naming the
        field)."""
        if not isinstance(data, dict):
            raise ParameterError("the trained range must be a JSON object")
        dims = data.get("dims", 2)
        if isinstance(dims, bool) or dims not in (2, 3):
            raise ParameterError(f"trained range dims must be 2 or 3, got {dims!r}")
        return cls(
            pixel_size_angstrom=_pair(data.get("pixel_size_angstrom"), "pixel_size_angstrom"),
            snr=_pair(data.get("snr"), "snr"),
            dims=int(dims),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (:meth:`from_dict` reads it back)."""
        return {
            "pixel_size_angstrom": list(self.pixel_size_angstrom),
            "snr": list(self.snr),
            "dims": self.dims,
        }


@dataclass(frozen=True)
class RangeFinding:
    """One way an input lies outside a model's trained range.

    ``kind`` is ``"volume"`` (fatal: a 3D volume for a 2D model), ``"pixel_size"``,
    ``"pixel_size_unknown"`` or ``"snr"``; ``message`` says what is outside, in one line.
    """

    kind: str
    message: str
    fatal: bool = False


def looks_like_volume(
    path: str | os.PathLike[str], sections: int, voxel_size_angstrom: Sequence[float]
) -> bool:
    """Whether an MRC input of ``sections`` sections is a 3D volume (a map, a tomogram) rather
    than an image or a stack of images.

    A stack is named ``.mrcs``, or has no voxel size along ``z`` (tilt series, frame stacks);
    a volume has several sections and a ``z`` voxel size equal to its ``x`` voxel size
    (``voxel_size_angstrom`` is ``(x, y, z)`` in Å), as maps and tomograms do.
    """
    if sections < 2 or is_stack_path(path):
        return False
    x, _, z = (float(v) for v in voxel_size_angstrom)
    return bool(x > 0 and z > 0 and abs(z - x) <= PIXEL_SIZE_TOLERANCE * x)


def snr_from_denoised(noisy: np.ndarray, denoised: np.ndarray) -> float:
    """A rough variance SNR of ``noisy``: ``var(denoised) / var(noisy - denoised)``.

    The denoised image stands in for the signal and the removed part for the noise. It works on
    white and correlated noise alike (which an estimate from the highest frequencies does not);
    a denoiser that smooths away signal (very clean input) or keeps noise (far noisier input
    than it knows) biases it towards the range it was trained on, so values far outside mean
    the input is farther still. ``inf`` when nothing was removed.
    """
    a = np.asarray(noisy, dtype=np.float64)
    b = np.asarray(denoised, dtype=np.float64)
    if a.shape != b.shape:
        raise ParameterError(f"noisy and denoised shapes differ: {a.shape} and {b.shape}")
    noise = float(np.var(a - b))
    signal = float(np.var(b))
    return math.inf if noise == 0 else signal / noise


def _span(low: float, high: float, unit: str = "") -> str:
    return f"{low:g}-{high:g}{unit}"


def check_input(
    trained: TrainedRange,
    *,
    pixel_size_angstrom: float | None,
    is_volume: bool = False,
    snr_estimate: float | None = None,
) -> list[RangeFinding]:
    """What about one input lies outside ``trained`` (empty when all is inside).

    Parameters
    ----------
    trained
        The model's trained range.
    pixel_size_angstrom
        The input's pixel size in Å, or ``None`` when its header gives none.
    is_volume
        Whether the input is a 3D volume (:func:`looks_like_volume`); fatal for a 2D model.
    snr_estimate
        A rough variance SNR of the input (:func:`snr_from_denoised`), or ``None`` when not
        estimated. Outside only beyond :data:`SNR_MARGIN` times the range.
    """
    if is_volume and trained.dims == 2:
        return [
            RangeFinding(
                "volume",
                "is a 3D volume (a map or tomogram: its z voxel size equals x); this model "
                "denoises 2D images and stacks of them (a stack is named .mrcs)",
                fatal=True,
            )
        ]
    findings = []
    low, high = trained.pixel_size_angstrom
    if pixel_size_angstrom is None:
        findings.append(
            RangeFinding(
                "pixel_size_unknown",
                f"no pixel size in the header: not checked against the trained "
                f"{_span(low, high, ' Å')}",
            )
        )
    elif not (
        low * (1 - PIXEL_SIZE_TOLERANCE) <= pixel_size_angstrom <= high * (1 + PIXEL_SIZE_TOLERANCE)
    ):
        findings.append(
            RangeFinding(
                "pixel_size",
                f"pixel size {pixel_size_angstrom:.3g} Å (trained on {_span(low, high, ' Å')})",
            )
        )
    if snr_estimate is not None and not math.isnan(snr_estimate):
        s_low, s_high = trained.snr
        if not s_low / SNR_MARGIN <= snr_estimate <= s_high * SNR_MARGIN:
            side = "cleaner" if snr_estimate > s_high else "noisier"
            findings.append(
                RangeFinding(
                    "snr",
                    f"estimated SNR {snr_estimate:.2g}, rough (trained on "
                    f"{_span(s_low, s_high)}: {side} than any image it saw)",
                )
            )
    return findings
