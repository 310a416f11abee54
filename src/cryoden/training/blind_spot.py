"""The blind spot of blind-spot training: what it is, how it is written, and how it is chosen
from the noise of the training images.

Noise2Void predicts each masked pixel from its neighbours and assumes that their noise tells
nothing about the pixel's own. Real detector noise is correlated between adjacent pixels
(interpolation in motion correction, the detector's response, binning), sometimes more along
one axis than the other; a network trained with a one-pixel blind spot on such noise learns to
predict the pixel's noise from its neighbours' and copies it into its output. Two remedies:

* **Structured masking** (as in structured Noise2Void, Broaddus, Krull, Weigert, Schmidt &
  Myers, "Removing Structured Noise with Self-Supervised Blind-Spot Networks", ISBI 2020): the
  blind spot is a ``(2 ry + 1) x (2 rx + 1)`` box around each masked pixel, every pixel of it
  replaced, so the network never sees the pixels whose noise correlates with the masked one's.
  Along each axis where the noise is correlated, the box reaches one pixel beyond the lags at
  which the measured correlation is at least the threshold (:func:`choose_blind_spot`).
  Nothing is needed at inference.
* **Pixel-shuffle down-sampling** (as in AP-BSN, Lee, Son & Lee, "AP-BSN: Self-Supervised
  Denoising for Real-World Images via Asymmetric PD and Blind-Spot Network", CVPR 2022): the
  training patches are split into their ``s x s`` polyphase sub-images
  (:func:`~cryoden.training.pixel_shuffle.pd_split`), in which adjacent pixels are ``s``
  pixels apart in the image, where the noise no longer correlates; plain masking trains on
  those. The network then knows the image at ``1/s`` of its scale, so inference denoises the
  sub-images and merges them back (:func:`~cryoden.training.pixel_shuffle.pd_merge`; the
  denoiser does so for models trained with ``pd:2``, see
  :class:`cryoden.inference.denoise.Denoiser`).

A blind spot is written as a short text (:func:`parse_blind_spot`, :attr:`BlindSpot.spec`):
``pixel`` (the plain one-pixel blind spot), ``structured:X,Y`` (a box of radius ``X`` pixels
along x and ``Y`` along y, so ``structured:1,0`` masks a pixel and its left and right
neighbours), ``pd:2`` (pixel-shuffle stride 2, the stride the denoiser applies; the split and
merge functions here take any stride) or ``auto`` (measure the training images' noise and
choose, :func:`resolve_blind_spot`: structured masking, which needs nothing at inference). The choice and the
correlation it was made from are recorded in the model file (the scheme's ``scheme_options``).

Measuring: the noise of single images is read from their high-frequency band
(:func:`cryoden.metrics.noise_stats.noise_autocorrelation_single`), pooled over the training
images, per axis; lags in pixels, ``"x"`` along the image's last axis and ``"y"`` along the
one before.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cryoden.errors import ParameterError
from cryoden.metrics.noise_stats import WHITE_CORRELATION, noise_autocorrelation_single
from cryoden.training.pixel_shuffle import pd_crop, pd_merge, pd_split

logger = logging.getLogger(__name__)

#: The kinds of blind spot (``auto`` chooses one of the others from the measured noise).
BLIND_SPOT_KINDS: tuple[str, ...] = ("auto", "pixel", "structured", "pd")

#: Adjacent-pixel noise correlation from which a lag counts as correlated: the masking extends
#: over every lag, from 1 up, whose measured correlation is at least this.
CORRELATION_THRESHOLD = WHITE_CORRELATION

#: Largest structured radius, pixels per axis (a 7 x 7 box).
MAX_RADIUS = 3

#: Pixels the structured box reaches beyond the last lag measured as correlated, along an axis
#: whose noise is correlated: there the correlation is below the threshold but not zero, and
#: the many pixels at that distance together still let a network predict part of the noise.
RADIUS_MARGIN = 1

#: Pixel-shuffle strides the denoiser can apply at inference.
PD_STRIDES: tuple[int, ...] = (2,)

#: Lags, in pixels, of the measured noise correlation recorded with a model.
MEASURED_LAGS = 3

#: Smallest image side, in pixels, the noise is measured on.
MEASURE_MIN_SIDE_PX = 16

#: Largest number of pixels the noise is measured on (the first images up to this many).
MEASURE_MAX_PIXELS = 4_000_000
#: Side of the central square of each image the noise is measured on, at most.
MEASURE_MAX_SIDE_PX = 1024

BLIND_SPOT_HELP = (
    "pixel (plain Noise2Void), structured:X,Y (mask a box reaching X pixels along x and Y "
    "along y around each masked pixel; structured:X,Y,Z for volumes), pd:2 (images: train on "
    "2x2 pixel-shuffled sub-images) or auto (measure the noise correlation of the training "
    "images or volumes and choose)"
)


@dataclass(frozen=True)
class BlindSpot:
    """What a blind-spot network is kept from seeing around each masked pixel.

    Attributes
    ----------
    kind
        ``"pixel"``, ``"structured"`` or ``"pd"``.
    radius_x, radius_y, radius_z
        For ``"structured"``: the masked box reaches this many pixels on each side of the
        masked pixel along x, y and (volumes only) z; at least one of them >= 1. 0 otherwise.
    stride
        For ``"pd"``: the pixel-shuffle stride (>= 2). 1 otherwise.
    """

    kind: str = "pixel"
    radius_x: int = 0
    radius_y: int = 0
    stride: int = 1
    radius_z: int = 0

    def __post_init__(self) -> None:
        if self.kind not in BLIND_SPOT_KINDS[1:]:
            raise ParameterError(
                f"blind_spot kind must be one of {', '.join(BLIND_SPOT_KINDS[1:])}, "
                f"got {self.kind!r}"
            )
        for name in ("radius_x", "radius_y", "radius_z", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ParameterError(f"blind_spot {name} must be an integer, got {value!r}")
        radii = (self.radius_x, self.radius_y, self.radius_z)
        if self.kind == "structured":
            if min(radii) < 0 or max(radii) > MAX_RADIUS or max(radii) < 1:
                raise ParameterError(
                    f"a structured blind spot needs radii X,Y[,Z] in 0..{MAX_RADIUS}, at least "
                    f"one of them >= 1, got {self.radius_x},{self.radius_y},{self.radius_z}"
                )
        elif radii != (0, 0, 0):
            raise ParameterError(f"a {self.kind} blind spot has no radii, got {radii}")
        if self.kind == "pd":
            if self.stride not in PD_STRIDES:
                raise ParameterError(
                    f"the pixel-shuffle stride must be one of "
                    f"{', '.join(map(str, PD_STRIDES))} (what the denoiser applies), "
                    f"got {self.stride}"
                )
        elif self.stride != 1:
            raise ParameterError(f"a {self.kind} blind spot has no stride, got {self.stride}")

    @property
    def spec(self) -> str:
        """The blind spot as :func:`parse_blind_spot` reads it (``structured:1,0``; with a z
        radius, for volumes, ``structured:3,0,2``)."""
        if self.kind == "structured":
            z = f",{self.radius_z}" if self.radius_z else ""
            return f"structured:{self.radius_x},{self.radius_y}{z}"
        if self.kind == "pd":
            return f"pd:{self.stride}"
        return "pixel"

    @property
    def radius(self) -> tuple[int, int]:
        """``(radius_y, radius_x)``, in the array's axis order (images).

        Raises
        ------
        ParameterError
            For a blind spot with a z radius, which only volumes have."""
        if self.radius_z:
            raise ParameterError(
                f"blind_spot {self.spec} has a z radius: it is for volumes, not 2D images"
            )
        return (self.radius_y, self.radius_x)

    @property
    def radius_3d(self) -> tuple[int, int, int]:
        """``(radius_z, radius_y, radius_x)``, in a volume's axis order."""
        return (self.radius_z, self.radius_y, self.radius_x)

    def describe(self) -> str:
        """The blind spot in words, e.g. ``"3 x 1 pixels (x by y) around each masked
        pixel"``."""
        if self.kind == "structured" and self.radius_z:
            return (
                f"{2 * self.radius_x + 1} x {2 * self.radius_y + 1} x {2 * self.radius_z + 1} "
                "voxels (x by y by z) around each masked voxel"
            )
        if self.kind == "structured":
            return (
                f"{2 * self.radius_x + 1} x {2 * self.radius_y + 1} pixels (x by y) around "
                "each masked pixel"
            )
        if self.kind == "pd":
            return f"pixel-shuffle down-sampling, stride {self.stride} (applied at inference too)"
        return "one pixel (plain Noise2Void)"


PIXEL = BlindSpot()


def parse_blind_spot(text: str | BlindSpot) -> BlindSpot | None:
    """Read a blind spot written as ``pixel``, ``structured:X,Y``, ``structured:X,Y,Z``
    (volumes), ``pd:S`` or ``auto``.

    Returns
    -------
    BlindSpot or None
        ``None`` for ``auto`` (to be chosen from the data, :func:`resolve_blind_spot`).

    Raises
    ------
    ParameterError
        One line naming ``blind_spot`` and the accepted forms.

    Examples
    --------
    >>> parse_blind_spot("structured:1,0").radius
    (0, 1)
    >>> parse_blind_spot("pd:2").stride, parse_blind_spot("auto") is None
    (2, True)
    """
    if isinstance(text, BlindSpot):
        return text
    raw = str(text).strip().lower()
    kind, _, argument = raw.partition(":")
    forms = "pixel, structured:X,Y, structured:X,Y,Z (volumes), pd:2 or auto"
    try:
        if kind == "auto" and not argument:
            return None
        if kind == "pixel" and not argument:
            return PIXEL
        if kind == "structured":
            parts = argument.split(",")
            if len(parts) not in (2, 3):
                raise ValueError(argument)
            x, y, z = (int(v) for v in (*parts, "0")[:3])
            return BlindSpot("structured", radius_x=x, radius_y=y, radius_z=z)
        if kind == "pd":
            return BlindSpot("pd", stride=int(argument))
    except ValueError as exc:  # int() of a bad number, a wrong count of radii
        if isinstance(exc, ParameterError):
            raise ParameterError(f"blind_spot {text!r}: {exc}") from None
        raise ParameterError(f"blind_spot must be {forms}, got {text!r}") from None
    raise ParameterError(f"blind_spot must be {forms}, got {text!r}")


def correlated_lags(values: Sequence[float], threshold: float) -> int:
    """How many lags, from lag 1 up, have a correlation of magnitude at least ``threshold``
    (counting stops at the first lag below it)."""
    count = 0
    for value in values:
        if not abs(float(value)) >= threshold:
            break
        count += 1
    return count


def choose_blind_spot(
    correlation: Mapping[str, Sequence[float]],
    *,
    threshold: float = CORRELATION_THRESHOLD,
    max_radius: int = MAX_RADIUS,
    margin: int = RADIUS_MARGIN,
) -> BlindSpot:
    """The blind spot for noise whose correlation at lags 1, 2, ... along x and y is
    ``correlation`` (``{"x": [...], "y": [...]}``; volumes add ``"z"``).

    Noise whose adjacent-pixel correlation is below ``threshold`` along both axes counts as
    white: the plain one-pixel blind spot (:data:`PIXEL`). Otherwise the structured blind spot
    whose radius along each axis is the number of lags, from 1 up, whose correlation is at least
    ``threshold``, plus ``margin`` (:data:`RADIUS_MARGIN`) on an axis with any such lag (at
    most ``max_radius``), so the mask follows the measured shape: noise correlated along y only
    gives ``structured:0,R``. With a ``"z"`` entry (volumes) the z radius follows the same
    rule, and noise white along all three axes gives the one-voxel blind spot.
    """
    if not math.isfinite(threshold) or threshold <= 0:
        raise ParameterError(f"threshold must be a positive number, got {threshold!r}")
    for axis in ("x", "y"):
        if axis not in correlation or len(correlation[axis]) < 1:
            raise ParameterError(f"correlation needs lags along {axis}, got {dict(correlation)}")
    lags_x = correlated_lags(correlation["x"], threshold)
    lags_y = correlated_lags(correlation["y"], threshold)
    radius_x = min(max_radius, lags_x + margin) if lags_x else 0
    radius_y = min(max_radius, lags_y + margin) if lags_y else 0
    lags_z = correlated_lags(correlation["z"], threshold) if "z" in correlation else 0
    radius_z = min(max_radius, lags_z + margin) if lags_z else 0
    if radius_x == 0 and radius_y == 0 and radius_z == 0:
        return PIXEL
    return BlindSpot("structured", radius_x=radius_x, radius_y=radius_y, radius_z=radius_z)


def _training_images(images: Sequence[Any] | np.ndarray) -> list[np.ndarray]:
    """2D images (the first channel of ``(C, H, W)`` arrays or of a dataset's file-backed
    images), each cropped to its central :data:`MEASURE_MAX_SIDE_PX` square at most, up to
    :data:`MEASURE_MAX_PIXELS` pixels in all."""
    out: list[np.ndarray] = []
    total = 0
    for image in images:
        channels = getattr(image, "channels", None)  # a file-backed training image
        view = channels[0] if channels is not None else image
        if getattr(view, "ndim", 2) == 3:
            view = view[0]
        if getattr(view, "ndim", None) != 2:
            raise ParameterError(f"training images must be 2D, got shape {np.shape(view)}")
        height, width = view.shape
        top = max(0, (height - MEASURE_MAX_SIDE_PX) // 2)
        left = max(0, (width - MEASURE_MAX_SIDE_PX) // 2)
        crop = view[top : top + MEASURE_MAX_SIDE_PX, left : left + MEASURE_MAX_SIDE_PX]
        array = np.asarray(crop, dtype=np.float32)  # reads only the crop of a memory map
        out.append(array)
        total += array.size
        if total >= MEASURE_MAX_PIXELS:
            break
    if not out:
        raise ParameterError("no training images to measure the noise of")
    return out


def measure_noise_correlation(
    images: Sequence[Any] | np.ndarray, *, max_lag: int = MEASURED_LAGS
) -> dict[str, list[float]]:
    """The noise correlation of single noisy training images at lags ``1..max_lag`` along x
    and y (``{"x": [...], "y": [...]}``), pooled over the images (the central
    :data:`MEASURE_MAX_SIDE_PX` square of each, at most :data:`MEASURE_MAX_PIXELS` pixels, the
    first images first).

    ``images`` are 2D arrays, ``(C, H, W)`` arrays whose first channel is the noisy image, or a
    dataset's images (:attr:`cryoden.training.data.ImageDataset.images`, file-backed ones
    included); any per-image affine normalisation leaves the correlation unchanged. The
    measurement is :func:`cryoden.metrics.noise_stats.noise_autocorrelation_single`.
    """
    arrays = _training_images(images)
    smallest = min(min(a.shape) for a in arrays)
    if smallest < MEASURE_MIN_SIDE_PX:
        raise ParameterError(
            f"measuring the noise needs images of at least {MEASURE_MIN_SIDE_PX} pixels a "
            f"side, got a side of {smallest}"
        )
    measured = noise_autocorrelation_single(arrays, max_lag=max_lag)
    return {axis: [round(float(v), 4) for v in measured[axis]] for axis in ("x", "y")}


def correlated_noise_warning(correlation: Mapping[str, Sequence[float]], scheme: str) -> str | None:
    """A warning for a scheme that assumes pixel-independent noise, when ``correlation`` (lags
    1, 2, ... along x and y) is correlated enough for :func:`choose_blind_spot` to mask it;
    ``None`` for white noise."""
    chosen = choose_blind_spot(correlation)
    if chosen.kind == "pixel":
        return None
    z = f", z {correlation['z'][0]:.3f}" if correlation.get("z") else ""
    return (
        f"the training images' noise is correlated between adjacent pixels (lag 1: x "
        f"{correlation['x'][0]:.3f}, y {correlation['y'][0]:.3f}{z}); {scheme} assumes "
        f"pixel-independent noise and learns to copy correlated noise (a blind spot of "
        f"{chosen.spec} would mask it)"
    )


def noise_check(images: Sequence[Any] | np.ndarray, scheme: str) -> dict[str, list[float]]:
    """The noise correlation of the training images of a scheme that assumes pixel-independent
    noise (Neighbor2Neighbor), with a logged warning when it is correlated
    (:func:`correlated_noise_warning`), for the training record."""
    correlation = measure_noise_correlation(images)
    warning = correlated_noise_warning(correlation, scheme)
    if warning is not None:
        logger.warning("%s", warning)
    return correlation


def resolve_blind_spot(
    blind_spot: str | BlindSpot, images: Sequence[Any] | np.ndarray
) -> tuple[BlindSpot, dict[str, list[float]]]:
    """The blind spot to train with, and the noise correlation of ``images`` it is based on.

    The correlation is measured in every case (:func:`measure_noise_correlation`), so that the
    model file records it; ``"auto"`` chooses from it (:func:`choose_blind_spot`), any other
    value (:func:`parse_blind_spot`) is kept, with a warning when plain masking meets noise
    that the choice would mask.
    """
    parsed = parse_blind_spot(blind_spot)
    correlation = measure_noise_correlation(images)
    chosen = choose_blind_spot(correlation)
    logger.info(
        "noise correlation of the training images at lags 1-%d: x %s, y %s",
        MEASURED_LAGS,
        ", ".join(f"{v:.3f}" for v in correlation["x"]),
        ", ".join(f"{v:.3f}" for v in correlation["y"]),
    )
    if parsed is None:
        logger.info("blind spot: %s (auto)", chosen.spec)
        return chosen, correlation
    warning = correlated_noise_warning(correlation, "a one-pixel blind spot")
    if parsed.kind == "pixel" and warning is not None:
        logger.warning("%s", warning)
    return parsed, correlation


# --- structured masking geometry ----------------------------------------------------------


def structured_cell_size(blind_radius: tuple[int, int]) -> int:
    """The smallest stratification cell for a structured blind spot of radii ``(ry, rx)``:
    twice the side of a square of the box's area, so that the boxes cover at most about a
    quarter of the pixels (``(1, 1)``: a 3 x 3 box, cells of 6 x 6)."""
    ry, rx = blind_radius
    return math.ceil(2.0 * math.sqrt((2 * ry + 1) * (2 * rx + 1)))


def structured_blind_mask(mask: torch.Tensor, blind_radius: tuple[int, int]) -> torch.Tensor:
    """The ``(B, C, H, W)`` boolean ``mask`` grown by a ``(2 ry + 1) x (2 rx + 1)`` box around
    every True pixel (clipped at the image border): the pixels a structured blind spot hides."""
    ry, rx = blind_radius
    grown = F.max_pool2d(
        mask.to(torch.float32), kernel_size=(2 * ry + 1, 2 * rx + 1), stride=1, padding=(ry, rx)
    )
    return grown > 0


__all__ = [
    "BLIND_SPOT_HELP",
    "BLIND_SPOT_KINDS",
    "CORRELATION_THRESHOLD",
    "MAX_RADIUS",
    "PD_STRIDES",
    "PIXEL",
    "RADIUS_MARGIN",
    "BlindSpot",
    "choose_blind_spot",
    "correlated_lags",
    "correlated_noise_warning",
    "measure_noise_correlation",
    "noise_check",
    "parse_blind_spot",
    "pd_crop",
    "pd_merge",
    "pd_split",
    "resolve_blind_spot",
    "structured_blind_mask",
    "structured_cell_size",
]
