"""A check without ground truth for tomograms with half maps: FSC against the other half.

The even and odd half tomograms share the specimen and carry independent noise. If the even half
is denoised and the result compared with the *raw* odd half by Fourier shell correlation
(:func:`cryoden.metrics.fourier.fsc`), only what the denoiser kept of the specimen can correlate:
noise it leaves does not, and detail it invents does not either. Against the raw halves' own FSC
(``raw``), a denoiser that removes noise and keeps the signal raises the curve
(``FSC = S / sqrt((S + N_left) (S + N))`` with less noise ``N_left`` on one side); one that
removes or invents signal at some frequencies lowers it there.

Caveat: a model trained on these very halves (Noise2Noise, even to odd) has seen the odd
half's noise as its target; with little data it may fit part of it, which the check would
count as signal. The check is sharpest on halves the model did not train on.

To keep memory bounded, the FSC is taken on a central box (at most :data:`BOX_PX` voxels per
side), softened at its faces by a raised-cosine window (:func:`soft_box_window`) so that the
box's cut edges, shared by both halves, do not correlate at every frequency. The box is
denoised with context around it and with the whole volume's normalisation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from cryoden.errors import ParameterError
from cryoden.inference.volume import VolumeDenoiser
from cryoden.io.mrc_slabs import ArrayVolume, VolumeReader
from cryoden.metrics.fourier import FourierCorrelation, fsc, resolution_crossing

logger = logging.getLogger(__name__)

Volume = VolumeReader | ArrayVolume

#: Largest side (voxels) of the central box the FSC is measured on.
BOX_PX = 128
#: Share of the box side over which the window falls to 0 at each face.
WINDOW_FRACTION = 0.125
#: FSC threshold reported as a resolution (the 0.143 criterion).
FSC_THRESHOLD = 0.143


def soft_box_window(shape: tuple[int, ...], fraction: float = WINDOW_FRACTION) -> np.ndarray:
    """A separable window of ``shape``: 1 inside, falling as a raised cosine to 0 over
    ``fraction`` of each side at each face (float64)."""
    window = np.ones(shape)
    for axis, n in enumerate(shape):
        width = max(1, int(round(fraction * n)))
        profile = np.ones(n)
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(width) + 0.5) / width)
        profile[:width] = ramp
        profile[n - width :] = np.minimum(profile[n - width :], ramp[::-1])
        view = [1] * len(shape)
        view[axis] = n
        window = window * profile.reshape(view)
    return window


def central_box(shape: tuple[int, int, int], box_px: int) -> tuple[slice, slice, slice]:
    """The central box of at most ``box_px`` voxels per side of a volume of ``shape``."""
    starts = [max(0, (n - box_px) // 2) for n in shape]
    return (
        slice(starts[0], starts[0] + min(box_px, shape[0])),
        slice(starts[1], starts[1] + min(box_px, shape[1])),
        slice(starts[2], starts[2] + min(box_px, shape[2])),
    )


@dataclass(frozen=True)
class HalfMapCheck:
    """FSC of the raw halves (``raw``) and of the denoised even half against the raw odd half
    (``denoised``), on the same windowed box."""

    raw: FourierCorrelation
    denoised: FourierCorrelation
    box_zyx: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]

    def summary(self) -> dict[str, Any]:
        """JSON-ready: each curve's mean over the shells below half Nyquist and above DC, its
        0.143 crossing (Nyquist units), and the curves themselves (rounded)."""

        def describe(curve: FourierCorrelation) -> dict[str, Any]:
            f = curve.frequency_nyquist
            band = (f > 0) & (f <= 0.5)
            return {
                "mean_fsc_to_half_nyquist": round(float(curve.correlation[band].mean()), 4),
                "crossing_0143_nyquist": round(resolution_crossing(curve, FSC_THRESHOLD), 4),
                "fsc": [round(float(v), 4) for v in curve.correlation],
            }

        return {
            "box_zyx": [list(b) for b in self.box_zyx],
            "frequency_nyquist": [round(float(v), 4) for v in self.raw.frequency_nyquist],
            "raw_even_vs_raw_odd": describe(self.raw),
            "denoised_even_vs_raw_odd": describe(self.denoised),
        }


def half_map_fsc_arrays(
    denoised_even: np.ndarray,
    raw_even: np.ndarray,
    raw_odd: np.ndarray,
    *,
    pixel_size_angstrom: float | None = None,
) -> tuple[FourierCorrelation, FourierCorrelation]:
    """``(FSC(raw even, raw odd), FSC(denoised even, raw odd))`` of three volumes of one shape,
    each windowed by :func:`soft_box_window`; for benchmarks that hold the volumes."""
    if not denoised_even.shape == raw_even.shape == raw_odd.shape:
        raise ParameterError(
            f"the volumes differ in shape: {denoised_even.shape}, {raw_even.shape}, {raw_odd.shape}"
        )
    window = soft_box_window(raw_odd.shape)

    def prepared(volume: np.ndarray) -> np.ndarray:
        values = np.asarray(volume, dtype=np.float64)
        return (values - values.mean()) * window

    odd = prepared(raw_odd)
    raw = fsc(prepared(raw_even), odd, pixel_size_angstrom=pixel_size_angstrom)
    denoised = fsc(prepared(denoised_even), odd, pixel_size_angstrom=pixel_size_angstrom)
    return raw, denoised


def half_map_fsc(
    denoiser: VolumeDenoiser,
    even: Volume,
    odd: Volume,
    *,
    box_px: int = BOX_PX,
    pixel_size_angstrom: float | None = None,
) -> HalfMapCheck:
    """The half-map check (see the module docstring) on the central box of ``even``/``odd``.

    The even half is denoised on the box grown by the model's margin on each side (clipped to
    the volume), with the normalisation fitted on both whole halves, as
    :meth:`VolumeDenoiser.denoise_volumes` fits it; the box is then cut out.

    Raises
    ------
    ParameterError
        If the halves differ in shape, or the box is smaller than 8 voxels on a side.
    """
    if even.shape != odd.shape:
        raise ParameterError(f"the halves differ in shape: {even.shape} and {odd.shape}")
    box = central_box(even.shape, box_px)
    if min(s.stop - s.start for s in box) < 8:
        raise ParameterError(f"the FSC box {[(s.start, s.stop) for s in box]} is too small")
    grow = denoiser.margin
    outer = tuple(
        slice(max(0, s.start - grow), min(n, s.stop + grow)) for s, n in zip(box, even.shape)
    )
    inner = tuple(slice(s.start - o.start, s.stop - o.start) for s, o in zip(box, outer))
    context = even.sections(outer[0].start, outer[0].stop)[:, outer[1], outer[2]]
    normalization = denoiser.normalization([even, odd])
    denoised = denoiser(context, normalization=normalization)[inner]
    raw_even = context[inner]
    raw_odd = odd.sections(box[0].start, box[0].stop)[:, box[1], box[2]]
    raw, checked = half_map_fsc_arrays(
        denoised, raw_even, raw_odd, pixel_size_angstrom=pixel_size_angstrom
    )
    zyx = tuple((s.start, s.stop) for s in box)
    check = HalfMapCheck(raw=raw, denoised=checked, box_zyx=zyx)  # type: ignore[arg-type]
    summary = check.summary()
    logger.info(
        "half-map check on box %s: mean FSC to half Nyquist %.3f raw, %.3f denoised", zyx,
        summary["raw_even_vs_raw_odd"]["mean_fsc_to_half_nyquist"],
        summary["denoised_even_vs_raw_odd"]["mean_fsc_to_half_nyquist"],
    )  # fmt: skip
    return check
