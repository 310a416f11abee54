"""The degenerate-solution guard: is a trained model better than the trivial answers?

A self-supervised run can settle on a solution that lowers its loss yet is no denoiser: an
output that is the patch mean with some noise on top, or an inverted image. Two checks on fixed
patches (the validation patches) catch that after training:

- **Baseline.** The scheme's validation loss of the model against that of a predictor that puts
  out the mean of each input patch (:class:`PatchMean`). A model whose loss is above the
  baseline's by more than the relative ``tolerance`` (:data:`BASELINE_TOLERANCE`) does worse
  than the trivial answer: a constant, an offset, garbage. The tolerance is small and on the
  side of the model because the targets are noisy: at a very low signal-to-noise ratio the
  signal is a tiny share of the target's variance, and a genuinely learning model (a smooth
  output that follows the image) gains on the signal about what its own estimation error
  costs, so its loss only matches the mean predictor's.
- **Low-pass correlation.** The Pearson correlation of the model's output, applied as at
  inference (the scheme's ``apply_model`` where it has one, else the network on the raw noisy
  input: no blind-spot masking), with a Gaussian low-pass of that input. Whatever a denoiser
  does to the noise, its output follows the image's low frequencies: a negative correlation
  means an inverted output, none (a constant output) an output that ignores its input.

:func:`check_model` returns a :class:`GuardReport`; its :attr:`~GuardReport.degenerate` says why
the model is degenerate, or is ``None``. The training loop runs it on the final model: a
degenerate model after at least :data:`MIN_JUDGED_STEPS` optimiser steps is not saved at the
output but kept at :func:`degenerate_path`, and
:class:`~cryoden.errors.DegenerateModelError` is raised; a shorter run is too short to judge (an
untrained network is no denoiser yet), so its finding is a warning.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

#: A model's validation loss may exceed the mean predictor's by at most this fraction of it.
BASELINE_TOLERANCE = 1e-3

#: Runs of fewer optimiser steps are too short to judge: the guard's finding is a warning.
MIN_JUDGED_STEPS = 200

#: Width (standard deviation, pixels) of the Gaussian low-pass the output is compared with.
LOWPASS_SIGMA_PX = 2.0


class PatchMean(nn.Module):
    """A "network" that predicts, for every pixel, the mean of its input patch (per sample and
    channel): the trivial denoiser every model must beat."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = tuple(range(2, x.ndim))  # (H, W), or (Z, Y, X) for volumes
        return x.mean(dim=spatial, keepdim=True).expand_as(x)


def gaussian_lowpass(images: torch.Tensor, sigma_px: float = LOWPASS_SIGMA_PX) -> torch.Tensor:
    """``images`` ``(B, C, H, W)`` (or volumes ``(B, C, Z, Y, X)``) blurred by a Gaussian of
    standard deviation ``sigma_px`` pixels (separable, truncated at 3 sigma, edges replicated)."""
    radius = max(1, math.ceil(3.0 * sigma_px))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma_px) ** 2)
    kernel = (kernel / kernel.sum()).to(images.dtype)
    dims = images.ndim - 2
    flat = images.reshape(-1, 1, *images.shape[2:])
    out = F.pad(flat, (radius, radius) * dims, mode="replicate")
    conv = F.conv2d if dims == 2 else F.conv3d
    for axis in reversed(range(dims)):  # one 1D pass per axis, the last axis first
        shape = [1] * dims
        shape[axis] = -1
        out = conv(out, kernel.view(1, 1, *shape))
    return out.reshape(images.shape)


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two tensors' values (float64); 0 when either is constant."""
    x = a.double().flatten()
    y = b.double().flatten()
    x = x - x.mean()
    y = y - y.mean()
    denominator = float(torch.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum()) / denominator if denominator > 0 else 0.0


def _mean_loss(scheme: Any, network: nn.Module, patches: torch.Tensor, batch: int) -> float:
    """Mean of the scheme's validation loss over ``patches`` (eval mode, no gradient)."""
    total = 0.0
    with torch.no_grad():
        for start in range(0, patches.shape[0], batch):
            chunk = patches[start : start + batch]
            total += float(scheme.validation_loss(network, chunk)) * chunk.shape[0]
    return total / patches.shape[0]


def model_output(scheme: Any, network: nn.Module, noisy: torch.Tensor) -> torch.Tensor:
    """The model's output for noisy images ``(B, 1, H, W)`` as inference computes it: the
    scheme's ``apply_model`` when it has one, else the network on the raw input."""
    apply = getattr(scheme, "apply_model", None)
    with torch.no_grad():
        return apply(network, noisy) if apply is not None else network(noisy)


@dataclass(frozen=True)
class GuardReport:
    """The guard's measurements on fixed patches (normalised units).

    Attributes
    ----------
    validation_loss
        The scheme's validation loss of the model.
    baseline_loss
        The same loss of the per-patch mean predictor (:class:`PatchMean`).
    lowpass_correlation
        Correlation of the model's output with a Gaussian low-pass (``LOWPASS_SIGMA_PX``) of
        its noisy input.
    degenerate
        Why the model is degenerate (one sentence), or ``None``.
    """

    validation_loss: float
    baseline_loss: float
    lowpass_correlation: float
    degenerate: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers as ``None``)."""

        def finite(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {
            "validation_loss": finite(self.validation_loss),
            "baseline_loss": finite(self.baseline_loss),
            "lowpass_correlation": finite(self.lowpass_correlation),
            "degenerate": self.degenerate,
        }


def verdict(
    validation_loss: float,
    baseline_loss: float,
    lowpass_correlation: float,
    *,
    tolerance: float = BASELINE_TOLERANCE,
) -> str | None:
    """Why a model with these measurements is degenerate, or ``None`` (see the module
    docstring)."""
    if not validation_loss <= (1.0 + tolerance) * baseline_loss:
        return (
            f"its validation loss {validation_loss:.6g} is worse than predicting each "
            f"patch's mean ({baseline_loss:.6g})"
        )
    if lowpass_correlation < 0.0:
        return (
            f"its output is anti-correlated with its input's low-pass "
            f"(correlation {lowpass_correlation:.3f}): an inverted image"
        )
    if not lowpass_correlation > 0.0:
        return "its output does not follow its input (no correlation with its low-pass)"
    return None


def check_model(
    scheme: Any,
    network: nn.Module,
    patches: torch.Tensor,
    *,
    batch: int = 16,
    tolerance: float = BASELINE_TOLERANCE,
) -> GuardReport:
    """Measure ``network`` (trained with ``scheme``) on fixed ``patches`` ``(N, C, P, P)``
    (``(N, C, P, P, P)`` for volumes; CPU, the scheme's channels; the first channel is the
    noisy input) and judge it.

    The network is put in eval mode (and back in its previous mode afterwards).
    """
    was_training = network.training
    network.eval()
    try:
        model_loss = _mean_loss(scheme, network, patches, batch)
        baseline = _mean_loss(scheme, PatchMean(), patches, batch)
        noisy = patches[:, :1]
        outputs = [
            model_output(scheme, network, noisy[i : i + batch])
            for i in range(0, noisy.shape[0], batch)
        ]
        correlation = pearson(torch.cat(outputs), gaussian_lowpass(noisy))
    finally:
        network.train(was_training)
    return GuardReport(
        validation_loss=model_loss,
        baseline_loss=baseline,
        lowpass_correlation=correlation,
        degenerate=verdict(model_loss, baseline, correlation, tolerance=tolerance),
    )


def degenerate_path(out: str | os.PathLike[str]) -> Path:
    """Where a degenerate model is kept instead of ``out``: ``<name>.degenerate.safetensors``
    beside a ``.safetensors`` model file, ``<folder>.degenerate`` beside a model folder."""
    out = Path(out)
    if out.suffix.lower() == ".safetensors":
        return out.with_name(f"{out.stem}.degenerate{out.suffix}")
    return out.with_name(f"{out.name}.degenerate")
