"""Denoise images with a trained model: normalise, tile, predict, blend, invert.

The :class:`Denoiser` holds one loaded model on one device and is called on any number of
images; the model is never reloaded per image.

Speed and memory on CPU (``benchmarks/bench_inference.py`` measures them): the network runs
under ``torch.inference_mode`` in the channels-last layout (oneDNN's fast path for convolutions),
in bfloat16 autocast where the processor computes it natively (``precision="auto"``), on tiles
whose side comes from a memory budget rather than the image size. Tiles overlap by twice the
network's *effective* receptive-field radius (computed once per model) plus a short blending
ramp, not a fixed large margin. Normalisation is applied tile by tile, so the only image-sized
buffers are the input and the output.

The denoiser changes no process-wide state for longer than a call: torch's thread count, when
``threads`` is given, is set only while an image is denoised
(:func:`~cryoden.nets.device.torch_threads`).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable

import numpy as np
import torch

from cryoden.errors import ParameterError
from cryoden.inference.onnx_backend import (
    OnnxExportError,
    OnnxRuntimeNetwork,
    onnxruntime_available,
)
from cryoden.inference.tiling import TilingPlan, available_memory_bytes, predict_tiled
from cryoden.models import LoadedModel, ModelConfig
from cryoden.nets.analysis import effective_radius
from cryoden.nets.config import NetworkConfig
from cryoden.nets.device import default_device, torch_threads
from cryoden.nets.polyphase import (
    INPUT_IMAGES,
    merge_polyphase,
    polyphase_inputs,
    polyphase_radius,
    split_polyphase,
)

logger = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
#: Inference backends: ``"auto"`` picks ONNX Runtime for float32 on the CPU when it is installed
#: (faster there, see :mod:`cryoden.inference.onnx_backend`), PyTorch otherwise.
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnxruntime")

#: Activation memory for one batch of tiles on the CPU, by default.
CPU_MEMORY_BUDGET_MB = 640
#: Width of the blending ramp between tiles (pixels), on top of the two margins.
BLEND_RAMP = 16
#: Share of a prediction's input sensitivity (absolute gradient mass) that may lie beyond the
#: tile margin (:func:`cryoden.nets.analysis.effective_radius`). Chosen so that tile seams stay
#: far below bfloat16 inference's own rounding while margins, and the work they repeat, stay
#: small (``benchmarks/bench_inference.py`` measures the seams).
MARGIN_TOLERANCE = 1e-3

ProgressCallback = Callable[[int, int], None]

#: Training schemes whose models are applied by polyphase inference unless told otherwise.
POLYPHASE_SCHEMES: frozenset[str] = frozenset({"ne2ne"})


def trained_on_polyphase(config: ModelConfig) -> bool:
    """Whether a model learned on 2×2 polyphase sub-images, so that the denoiser applies it to
    them: Neighbor2Neighbor models, and blind-spot models trained with pixel-shuffle
    down-sampling (``scheme_options["blind_spot"]`` ``"pd:2"``, see
    :mod:`cryoden.training.blind_spot`). A stride other than 2 is refused."""
    if config.scheme in POLYPHASE_SCHEMES:
        return True
    blind_spot = str(config.scheme_options.get("blind_spot", "pixel"))
    if not blind_spot.startswith("pd:"):
        return False
    if blind_spot != "pd:2":
        raise ParameterError(
            f"the model was trained with blind spot {blind_spot}; this cryoden applies "
            "pixel-shuffle stride 2 only"
        )
    return True

__all__ = ["BACKENDS", "PRECISIONS", "Denoiser", "default_device", "native_bf16"]


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (AVX512-BF16/AMX CPUs, Ampere+ GPUs)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def _bytes_per_pixel(network_config: NetworkConfig, dtype_bytes: int) -> float:
    """Peak activation bytes of one forward pass per input pixel: the feature maps of every
    level, times a safety factor of 2, plus a constant; an upper bound of the measured peak."""
    # NetworkConfig.__post_init__ fills in both defaults.
    assert network_config.depth is not None and network_config.base_channels is not None
    depth, base = int(network_config.depth), int(network_config.base_channels)
    s2d = network_config.space_to_depth
    channels = sum(4.0 * base * 2**level / 4**level for level in range(depth + 1)) / s2d**2
    return 2.0 * dtype_bytes * channels + 64.0


class Denoiser:
    """Apply a trained model to 2D images or stacks.

    Each image is normalised with its own robust center and scale (the model's normalisation
    method, fitted on the whole image and applied tile by tile), predicted tile by tile with
    smooth blending, and mapped back to the input's scale.

    Parameters
    ----------
    model
        A model from :func:`cryoden.models.load_model`.
    device
        ``"cpu"``, ``"cuda"``, ``"mps"``...; by default :func:`default_device` (CUDA, then MPS,
        then CPU).
    tile
        Tile side in pixels; by default the image is split into equal tiles no larger than the
        memory budget allows.
    batch
        Tiles per forward pass (default 1 on CPU; as many as fit the budget on a GPU).
    threads
        CPU threads for torch (and ONNX Runtime) while an image is denoised; torch's previous
        count is restored after each call. ``None`` keeps the current setting.
    overlap
        Tile overlap in pixels; by default ``2 * margin + BLEND_RAMP`` where the margin is the
        model's effective receptive-field radius (:func:`cryoden.nets.analysis.effective_radius`).
    precision
        ``"auto"`` (bfloat16 autocast where the device computes it natively, else float32),
        ``"fp32"`` or ``"bf16"``.
    channels_last
        Use the channels-last memory format (faster convolutions on CPU with oneDNN).
    memory_mb
        Activation memory budget for one batch of tiles (default: 640 MiB on CPU, half the free
        memory on a GPU).
    polyphase
        Denoise the four 2×2 polyphase sub-images at half size and merge them (see
        :mod:`cryoden.nets.polyphase`). ``None`` (the default) does so for models that
        learned on half-size sub-sampled images (Neighbor2Neighbor, and Noise2Void with the
        ``pd:2`` blind spot: :func:`trained_on_polyphase`), and not for others; ``True`` or ``False`` force it. The network sees each sub-image as the model
        file's ``scheme_options`` say: for Neighbor2Neighbor's ``input_image`` ``"cell-mean"``,
        the mean of the other three sub-images
        (:func:`~cryoden.nets.polyphase.cell_mean_polyphase`), as in training; otherwise
        the sub-image itself.

    backend
        ``"auto"`` (default): ONNX Runtime for float32 inference on the CPU when the optional
        ``onnxruntime`` and ``onnx`` packages are installed, else PyTorch; ``"torch"``;
        ``"onnxruntime"`` (float32 on the CPU only). If the network cannot be exported to ONNX (or
        the session cannot be created), PyTorch runs this denoiser's network from then on, with
        a warning; an error while ONNX Runtime runs propagates.

    Examples
    --------
    >>> from cryoden.models import load_model  # doctest: +SKIP
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
        precision: str = "auto",
        channels_last: bool = True,
        memory_mb: float | None = None,
        polyphase: bool | None = None,
        backend: str = "auto",
    ) -> None:
        if model.config.network.dims != 2:
            raise ParameterError(
                f"model {model.path} is a 3D model (it denoises volumes): use "
                "cryoden.inference.volume.VolumeDenoiser"
            )
        if backend not in BACKENDS:
            raise ParameterError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if precision not in PRECISIONS:
            raise ParameterError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
            )
        for name, value in (("tile", tile), ("batch", batch), ("threads", threads)):
            if value is not None and value < 1:
                raise ParameterError(f"{name} must be a positive integer, got {value}")
        if overlap is not None and overlap < 0:
            raise ParameterError(f"overlap must be >= 0, got {overlap}")
        if memory_mb is not None and memory_mb <= 0:
            raise ParameterError(f"memory_mb must be positive, got {memory_mb}")
        self.threads = threads
        self.model = model
        self.device = torch.device(device) if device is not None else default_device()
        self.tile, self.batch, self.overlap = tile, batch, overlap
        if precision == "auto":
            precision = "bf16" if native_bf16(self.device) else "fp32"
        self.precision = precision
        cpu_fp32 = self.device.type == "cpu" and precision == "fp32"
        if backend == "onnxruntime":
            if not cpu_fp32:
                raise ParameterError(
                    "backend onnxruntime runs float32 on the CPU only "
                    f"(device {self.device}, precision {precision})"
                )
            if not onnxruntime_available():
                raise ParameterError(
                    "backend onnxruntime needs the optional onnxruntime and onnx packages "
                    "(pip install 'cryoden[onnx]')"
                )
        elif backend == "auto":
            backend = "onnxruntime" if cpu_fp32 and onnxruntime_available() else "torch"
        self.backend = backend
        self.channels_last = channels_last
        self.memory_mb = memory_mb
        self.normalization = model.config.normalization
        network = model.network.to(self.device).eval()
        if channels_last:
            # Module.to takes memory_format (documented); torch's overloads omit it.
            network = network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.network = network
        self._margin: int | None = None
        self._onnx: OnnxRuntimeNetwork | None = None
        if backend == "onnxruntime":
            self._onnx = OnnxRuntimeNetwork(network, threads=threads)
        if polyphase is None:
            polyphase = trained_on_polyphase(model.config)
        self.polyphase = bool(polyphase)
        self.polyphase_input = str(model.config.scheme_options.get("input_image", "neighbour"))
        if self.polyphase_input not in INPUT_IMAGES:
            raise ParameterError(
                f"model {model.path}: unknown input_image {self.polyphase_input!r} "
                f"(this cryoden knows {', '.join(INPUT_IMAGES)})"
            )
        logger.info(
            "denoiser on %s (%s, %s%s)",
            self.device,
            precision,
            backend,
            ", channels_last" if channels_last and backend == "torch" else "",
        )

    @property
    def margin(self) -> int:
        """Effective receptive-field radius of the prediction, in image pixels (the model's,
        measured once and cached; doubled, plus the merge filter's, for polyphase inference)."""
        if self._margin is None:
            self._margin = effective_radius(
                self.network, self.model.config.network, tolerance=MARGIN_TOLERANCE
            )
            logger.debug("effective receptive-field radius: %d px", self._margin)
        return polyphase_radius(self._margin) if self.polyphase else self._margin

    @property
    def size_multiple(self) -> int:
        """Tile sides are multiples of this: the network's size multiple (twice it for polyphase
        inference, whose half-size sub-images the network sees)."""
        multiple = int(self.model.config.network.size_multiple)
        return 2 * multiple if self.polyphase else multiple

    def _budget_bytes(self) -> float:
        if self.memory_mb is not None:
            return self.memory_mb * 1024**2
        if self.device.type == "cpu":
            return min(CPU_MEMORY_BUDGET_MB * 1024**2, 0.25 * available_memory_bytes("cpu"))
        return 0.5 * available_memory_bytes(self.device)

    def plan(self, shape: tuple[int, ...]) -> TilingPlan:
        """The tiling used for images of ``shape`` (explicit settings override the choice).

        Without ``tile``, each axis of length ``L`` gets the fewest tiles ``n`` whose side fits
        the memory budget, and the side is ``ceil((L + (n - 1) overlap) / n)`` rounded up to the
        network's size multiple, so tiles cover the image evenly and little work is repeated.
        """
        config = self.model.config.network
        multiple = self.size_multiple
        height, width = int(shape[-2]), int(shape[-1])
        if self.overlap is None:
            margin = self.margin
            overlap = -(-(2 * margin + BLEND_RAMP) // 8) * 8
        else:
            overlap = self.overlap
            margin = None
        per_pixel = _bytes_per_pixel(config, 2 if self.precision == "bf16" else 4)
        budget = self._budget_bytes()
        batch = self.batch or 1
        if self.tile is not None:
            side = max(multiple, self.tile // multiple * multiple)
        else:
            side = int(math.sqrt(budget / batch / per_pixel)) // multiple * multiple
            side = max(side, 2 * overlap + multiple, 4 * multiple)

        def axis(length: int) -> int:
            if length <= side:
                return length
            if self.tile is not None:
                return side
            n = math.ceil((length - overlap) / (side - overlap))
            even = math.ceil((length + (n - 1) * overlap) / n)
            return min(side, -(-even // multiple) * multiple)

        tile = (axis(height), axis(width))
        overlap = min(overlap, (min(tile) - 1) // 2)
        if margin is not None:
            margin = min(margin, max(0, (overlap - 1) // 2))
        if self.batch is None and self.device.type != "cpu":
            batch = int(max(1, min(16, budget // (per_pixel * tile[0] * tile[1]))))
        return TilingPlan(tile=tile, overlap=overlap, batch=batch, margin=margin)

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def predict_normalized(self, tiles: torch.Tensor) -> torch.Tensor:
        """Run the network on normalised tiles ``(B, 1, h, w)``."""
        if self._onnx is not None:
            try:
                return self._onnx(tiles)
            except OnnxExportError as exc:  # export or session creation only
                logger.warning(
                    "cannot run %s in ONNX Runtime (%s); running it in PyTorch",
                    self.model.path,
                    exc,
                )
                self._onnx, self.backend = None, "torch"
        with torch.inference_mode(), self._autocast():
            x = tiles.to(self.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.network(x).float()

    def predict_polyphase(self, tiles: torch.Tensor) -> torch.Tensor:
        """Predict the four 2×2 polyphase sub-images of each tile at half size and merge them
        (:func:`~cryoden.nets.polyphase.merge_polyphase`: band-limited average, no grid).

        For models trained on half-size sub-sampled images (Neighbor2Neighbor), this shows the
        network images at the scale it learned; with the cell-mean input, each sub-image is
        predicted from the mean of the other three (see the class docstring).
        """
        shape = (int(tiles.shape[-2]), int(tiles.shape[-1]))
        quarters = polyphase_inputs(split_polyphase(tiles), self.polyphase_input)
        out = self.predict_normalized(quarters)
        return merge_polyphase(out, shape)

    def _tile_function(self, image: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
        """Normalise a batch of raw tiles, predict, and map back to the image's scale."""
        norm = self.normalization.fit(image)
        center, scale, clip = norm.center, norm.scale, norm.clip
        predict = self.predict_polyphase if self.polyphase else self.predict_normalized

        def fn(tiles: torch.Tensor) -> torch.Tensor:
            # float32 throughout: the input is float32 and center/scale are per-image constants
            with torch.inference_mode():
                x = tiles.float().sub(center).div_(scale)
                if clip is not None:
                    x.clamp_(-clip, clip)
                y = predict(x).to(device="cpu", dtype=torch.float32)
                return y.mul_(scale).add_(center)

        return fn

    def denoise_image(
        self, image: np.ndarray, *, progress: ProgressCallback | None = None
    ) -> np.ndarray:
        """Denoise one 2D image; the output has the input's shape and scale (float32)."""
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 2:
            raise ParameterError(f"expected a 2D image, got shape {image.shape}")
        if not np.isfinite(image).all():
            raise ParameterError("the image contains NaN or infinite values")
        with torch_threads(self.threads):
            plan = self.plan(image.shape)
            return predict_tiled(
                self._tile_function(image),
                image,
                tile=plan.tile,
                overlap=plan.overlap,
                batch=plan.batch,
                align=self.size_multiple,
                margin=plan.margin,
                progress=progress,
            )

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
