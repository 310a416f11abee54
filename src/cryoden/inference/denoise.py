"""Denoise images with a trained model: normalise, tile, predict, blend, invert.

The :class:`Denoiser` holds one loaded model on one device and is called on any number of
images; the model is never reloaded per image.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import numpy as np
import torch

from cryoden.errors import ParameterError
from cryoden.inference.tiling import TilingPlan, choose_tiling, predict_tiled
from cryoden.nets.device import default_device
from cryoden.training.modelfile import LoadedModel

logger = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = ("fp32", "bf16")

ProgressCallback = Callable[[int, int], None]

__all__ = ["PRECISIONS", "Denoiser", "default_device"]


class Denoiser:
    """Apply a trained model to 2D images or stacks.

    Each image is normalised with its own robust center and scale (the model's normalisation
    method), predicted tile by tile with smooth blending and mapped back to the input's scale.
    Tiles start on multiples of the network's ``2**depth``, so with the default overlap the
    result equals a whole-image forward pass up to float rounding.

    Parameters
    ----------
    model
        A model from :func:`cryoden.training.modelfile.load_model`.
    device
        ``"cpu"``, ``"cuda"``, ``"mps"``...; by default :func:`default_device` (CUDA, then MPS,
        then CPU).
    tile
        Tile side in pixels; by default chosen from free memory and the receptive field
        (:func:`~cryoden.inference.tiling.choose_tiling`), per image size.
    batch
        Tiles per forward pass; by default chosen with the tile.
    threads
        CPU threads (``torch.set_num_threads``) when given.
    overlap
        Tile overlap in pixels; by default twice the receptive field rounded up (see
        :func:`~cryoden.inference.tiling.choose_tiling`).
    precision
        ``"fp32"`` or ``"bf16"`` (autocast; faster on recent CPUs and GPUs, less exact).
    channels_last
        Use the channels-last memory format (faster convolutions on CPU with oneDNN).

    Examples
    --------
    >>> from cryoden.training.modelfile import load_model  # doctest: +SKIP
    >>> denoise = Denoiser(load_model("model.safetensors"), threads=4)  # doctest: +SKIP
    >>> clean = denoise(noisy)  # (H, W) or (N, H, W) float32  # doctest: +SKIP
    """

    def __init__(
        self,
        model: LoadedModel,
        *,
        device: str | torch.device | None = None,
        tile: int | None = None,
        batch: int | None = None,
        threads: int | None = None,
        overlap: int | None = None,
        precision: str = "fp32",
        channels_last: bool = True,
    ) -> None:
        if precision not in PRECISIONS:
            raise ParameterError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
            )
        for name, value in (("tile", tile), ("batch", batch), ("threads", threads)):
            if value is not None and value < 1:
                raise ParameterError(f"--{name} must be a positive integer, got {value}")
        if overlap is not None and overlap < 0:
            raise ParameterError(f"--overlap must be >= 0, got {overlap}")
        if threads is not None:
            torch.set_num_threads(threads)
        self.model = model
        self.device = torch.device(device) if device is not None else default_device()
        self.tile, self.batch, self.overlap = tile, batch, overlap
        self.precision = precision
        self.channels_last = channels_last
        self.normalization = model.config.normalization
        network = model.network.to(self.device).eval()
        if channels_last:
            network = network.to(memory_format=torch.channels_last)
        self.network = network
        logger.info(
            "denoiser on %s (%s%s)",
            self.device,
            precision,
            ", channels_last" if channels_last else "",
        )

    def plan(self, shape: tuple[int, ...]) -> TilingPlan:
        """The tiling used for images of ``shape`` (explicit settings override the choice)."""
        auto = choose_tiling(
            self.model.config.network,
            shape,
            device=self.device,
            dtype_bytes=2 if self.precision == "bf16" else 4,
        )
        height, width = int(shape[-2]), int(shape[-1])
        if self.tile is None:
            tile = auto.tile
        else:  # a multiple of 2**depth, clipped to the image
            multiple = self.model.config.network.size_multiple
            side = max(multiple, self.tile // multiple * multiple)
            tile = (min(side, height), min(side, width))
        overlap = auto.overlap if self.overlap is None else self.overlap
        overlap = min(overlap, (min(tile) - 1) // 2)
        return TilingPlan(tile=tile, overlap=overlap, batch=self.batch or auto.batch)

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def predict_normalized(self, tiles: torch.Tensor) -> torch.Tensor:
        """Run the network on normalised tiles ``(B, 1, h, w)`` (the ``fn`` of the tiler)."""
        with torch.inference_mode(), self._autocast():
            x = tiles.to(self.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.network(x).float()

    def denoise_image(
        self, image: np.ndarray, *, progress: ProgressCallback | None = None
    ) -> np.ndarray:
        """Denoise one 2D image; the output has the input's shape and scale (float32)."""
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 2:
            raise ParameterError(f"expected a 2D image, got shape {image.shape}")
        if not np.isfinite(image).all():
            raise ParameterError("the image contains NaN or infinite values")
        norm = self.normalization.fit(image)
        plan = self.plan(image.shape)
        out = predict_tiled(
            self.predict_normalized,
            norm.apply(image),
            tile=plan.tile,
            overlap=plan.overlap,
            batch=plan.batch,
            align=self.model.config.network.size_multiple,
            progress=progress,
        )
        return norm.invert(out)

    def __call__(
        self, image: np.ndarray, *, progress: ProgressCallback | None = None
    ) -> np.ndarray:
        """Denoise a 2D image ``(H, W)`` or a stack ``(N, H, W)`` (each image on its own).

        ``progress(done, total)`` counts tiles for a 2D image and images for a stack.
        """
        array = np.asarray(image)
        if array.ndim == 2:
            return self.denoise_image(array, progress=progress)
        if array.ndim == 3:
            out = np.empty(array.shape, dtype=np.float32)
            for i in range(array.shape[0]):
                out[i] = self.denoise_image(array[i])
                if progress is not None:
                    progress(i + 1, array.shape[0])
            return out
        raise ParameterError(f"expected an image (H, W) or a stack (N, H, W), got {array.shape}")
