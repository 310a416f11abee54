"""Denoise volumes (tomograms) with a trained 3D model, in bounded memory.

The :class:`VolumeDenoiser` is the 3D counterpart of :class:`cryoden.inference.Denoiser`: it
holds one loaded 3D model on one device and denoises any number of volumes, in memory
(:meth:`VolumeDenoiser.__call__`) or file to file (:meth:`VolumeDenoiser.denoise_files`, which
reads sections from the input and writes finished sections into the output as it goes, so a
tomogram of any size fits).

- **Normalisation**: one robust center and scale per tomogram, fitted on a regular sample of
  its voxels (:func:`cryoden.io.mrc_slabs.voxel_sample`); training fits its volumes the same
  way. The output is mapped back to the input's scale.
- **Boxes**: the box side comes from a memory budget (activations of one batch of boxes) and the
  box depth also from a budget for the held sections (:data:`SLAB_MEMORY_MB`); boxes overlap by
  twice the model's effective receptive-field radius
  (:func:`cryoden.nets.analysis.effective_radius`) plus a blending ramp, so tiling is invisible
  (:func:`cryoden.inference.tiling_3d.predict_tiled_volume`).
- **Speed**: channels-last-3D layout, bfloat16 autocast on devices that compute it natively
  (``precision="auto"``), CUDA when present (:func:`cryoden.nets.device.default_device`).
- **Halves**: given the even and odd half tomograms, each is denoised and the two are averaged
  (as cryoCARE does); both halves share one normalisation, fitted on both.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from cryoden.errors import InputFileError, ParameterError
from cryoden.inference.denoise import MARGIN_TOLERANCE, PRECISIONS, native_bf16
from cryoden.inference.tiling import available_memory_bytes
from cryoden.inference.tiling_3d import VolumePlan, predict_tiled_volume
from cryoden.io.mrc_slabs import ArrayVolume, SlabWriter, VolumeReader
from cryoden.models import LoadedModel
from cryoden.models.normalization import RobustNormalization
from cryoden.nets.analysis import effective_radius
from cryoden.nets.config import NetworkConfig
from cryoden.nets.device import default_device, torch_threads

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
Volume = VolumeReader | ArrayVolume

#: Activation memory for one batch of boxes on the CPU, by default (MiB).
CPU_MEMORY_BUDGET_MB = 1024
#: Memory for the sections held at once (the input sections of one row of boxes and the
#: accumulator), by default (MiB).
SLAB_MEMORY_MB = 1024
#: Sections read (and normalised) at a time into a row of boxes' input.
_READ_SECTIONS = 8
#: Shares of the available memory the two budgets may take at most.
_ACTIVATION_SHARE, _SLAB_SHARE = 0.25, 0.35
#: Width of the blending ramp between boxes (voxels), on top of the two margins: shorter than
#: the 2D tiler's, since repeated work grows with the cube of the overlap.
BLEND_RAMP_3D = 8

__all__ = ["VolumeDenoiser", "VolumePlan", "check_volume_model"]


def _bytes_per_voxel(config: NetworkConfig, dtype_bytes: int) -> float:
    """Peak activation bytes of one forward pass per input voxel: the feature maps of every
    level (an eighth of the voxels per level), times a safety factor of 1.75, plus a constant;
    an upper bound of the peak measured for the 3D candidate networks
    (:mod:`cryoden.training.network_choice_3d`) in float32 and bfloat16."""
    assert config.depth is not None and config.base_channels is not None
    depth, base = int(config.depth), int(config.base_channels)
    channels = sum(4.0 * base * 2**level / 8**level for level in range(depth + 1))
    return 1.75 * dtype_bytes * channels / config.space_to_depth**3 + 16.0


def check_volume_model(model: LoadedModel) -> None:
    """Raise :class:`ParameterError` unless ``model`` is a 3D (volume) model."""
    if model.config.network.dims != 3:
        raise ParameterError(
            f"model {model.path} is a 2D model (it denoises images); a volume needs a 3D "
            "model, trained on volumes"
        )


class VolumeDenoiser:
    """Apply a trained 3D model to volumes ``(Z, Y, X)``.

    Parameters
    ----------
    model
        A 3D model from :func:`cryoden.models.load_model` (``network.dims == 3``).
    device
        ``"cpu"``, ``"cuda"``...; by default :func:`default_device`.
    tile
        Box side in voxels (one side or ``(tz, ty, tx)``); by default from the memory budgets.
    batch
        Boxes per forward pass (default 1 on the CPU; as many as fit the budget on a GPU).
    threads
        CPU threads for torch while a volume is denoised (restored afterwards).
    overlap
        Box overlap in voxels; by default ``2 * margin + BLEND_RAMP_3D``, the margin being the
        model's effective receptive-field radius.
    precision
        ``"auto"`` (bfloat16 where the device computes it natively, else float32), ``"fp32"``
        or ``"bf16"``.
    memory_mb
        Activation memory for one batch of boxes (default: 640 MiB on the CPU, half the free
        memory on a GPU).
    slab_memory_mb
        Memory for the held sections (input and accumulator of one row of boxes; default
        :data:`SLAB_MEMORY_MB`): it bounds the box depth for wide volumes.
    backend, polyphase
        Accepted so that the 2D denoiser's settings apply unchanged: volumes run in PyTorch
        (``backend`` ``"auto"`` or ``"torch"``) at full size (``polyphase`` None or False).

    Raises
    ------
    ParameterError
        For a 2D model or invalid settings.

    Examples
    --------
    >>> denoise = VolumeDenoiser(load_model("tomo.safetensors"))  # doctest: +SKIP
    >>> clean = denoise(noisy_volume)  # (Z, Y, X) float32  # doctest: +SKIP
    >>> clean = denoise([even, odd])  # both halves, averaged  # doctest: +SKIP
    """

    def __init__(
        self,
        model: LoadedModel,
        *,
        device: str | torch.device | None = None,
        tile: int | tuple[int, int, int] | None = None,
        batch: int | None = None,
        threads: int | None = None,
        overlap: int | None = None,
        precision: str = "auto",
        memory_mb: float | None = None,
        slab_memory_mb: float | None = None,
        backend: str = "auto",
        polyphase: bool | None = None,
    ) -> None:
        check_volume_model(model)
        if backend not in ("auto", "torch"):
            raise ParameterError(f"backend {backend!r}: volumes run in torch (auto or torch)")
        if polyphase:
            raise ParameterError("polyphase inference is for 2D models; volumes run at full size")
        self.backend, self.polyphase = "torch", False
        if precision not in PRECISIONS:
            raise ParameterError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
            )
        sides = (tile,) if isinstance(tile, int) or tile is None else tuple(tile)
        if len(sides) not in (1, 3):
            raise ParameterError(f"tile must be one side or (tz, ty, tx), got {tile}")
        for name, value in (("batch", batch), ("threads", threads), *(("tile", s) for s in sides)):
            if value is not None and (isinstance(value, bool) or value < 1):
                raise ParameterError(f"{name} must be a positive integer, got {value}")
        if overlap is not None and overlap < 0:
            raise ParameterError(f"overlap must be >= 0, got {overlap}")
        for name, budget in (("memory_mb", memory_mb), ("slab_memory_mb", slab_memory_mb)):
            if budget is not None and not budget > 0:
                raise ParameterError(f"{name} must be positive, got {budget}")
        self.model = model
        self.config = model.config.network
        self.device = torch.device(device) if device is not None else default_device()
        self.tile = tile
        self.batch, self.threads, self.overlap = batch, threads, overlap
        if precision == "auto":
            precision = "bf16" if native_bf16(self.device) else "fp32"
        self.precision = precision
        self.memory_mb, self.slab_memory_mb = memory_mb, slab_memory_mb
        self.memory_format = (
            torch.channels_last_3d
            if self.device.type in ("cpu", "cuda")
            else torch.contiguous_format
        )
        network = model.network.to(self.device).eval()
        # Module.to takes memory_format (documented); torch's overloads omit it.
        self.network = network.to(memory_format=self.memory_format)  # type: ignore[call-overload]
        self._margin: int | None = None
        logger.info("volume denoiser on %s (%s)", self.device, precision)

    # -- the plan

    @property
    def margin(self) -> int:
        """Effective receptive-field radius of the model in voxels (measured once)."""
        if self._margin is None:
            self._margin = effective_radius(self.network, self.config, tolerance=MARGIN_TOLERANCE)
            logger.debug("effective receptive-field radius: %d voxels", self._margin)
        return self._margin

    def _budget_bytes(self) -> float:
        if self.memory_mb is not None:
            return self.memory_mb * 1024**2
        if self.device.type == "cpu":
            available = _ACTIVATION_SHARE * available_memory_bytes("cpu")
            return min(CPU_MEMORY_BUDGET_MB * 1024**2, available)
        return 0.5 * available_memory_bytes(self.device)

    def _slab_bytes(self) -> float:
        if self.slab_memory_mb is not None:
            return self.slab_memory_mb * 1024**2
        return min(SLAB_MEMORY_MB * 1024**2, _SLAB_SHARE * available_memory_bytes("cpu"))

    def plan(self, shape: tuple[int, ...], *, channels: int = 1) -> VolumePlan:
        """The boxes used for a volume of ``shape`` read from ``channels`` inputs (2 for
        halves); explicit settings override the choice.

        Without ``tile``, the box depth is bounded by the section memory (input sections of
        every channel plus the accumulator, ``(channels + 1) tz Y X`` float32) and the box
        volume by the activation budget. Among the box depths that fit (multiples of the
        network's size multiple), the one whose boxes repeat the least work (the product over
        the axes of the covered length over the axis length, overlaps included) is taken; each
        axis gets the fewest boxes that fit, sized to cover it evenly.
        """
        if len(shape) != 3:
            raise ParameterError(f"expected a volume shape (Z, Y, X), got {tuple(shape)}")
        nz, ny, nx = (int(s) for s in shape)
        multiple = int(self.config.size_multiple)
        margin: int | None
        if self.overlap is None:
            margin = self.margin
            overlap = -(-(2 * margin + BLEND_RAMP_3D) // multiple) * multiple
        else:
            overlap, margin = self.overlap, None
        batch = self.batch or 1
        per_voxel = _bytes_per_voxel(self.config, 2 if self.precision == "bf16" else 4)
        budget = self._budget_bytes()
        smallest = max(2 * overlap + multiple, 2 * multiple)

        def axis(length: int, side: int) -> int:
            if length <= side:
                return length
            if self.tile is not None:
                return side
            n = math.ceil((length - overlap) / (side - overlap))
            even = math.ceil((length + (n - 1) * overlap) / n)
            return min(side, -(-even // multiple) * multiple)

        def work(box: tuple[int, ...]) -> float:
            """Voxels the boxes cover per volume voxel (1 without overlaps)."""
            total = 1.0
            for length, side in zip((nz, ny, nx), box):
                t = axis(length, side)
                n = 1 if length <= t else math.ceil((length - overlap) / (t - overlap))
                total *= n * t / length
            return total

        if self.tile is not None:
            sides = (self.tile,) * 3 if isinstance(self.tile, int) else tuple(self.tile)
            box = tuple(max(multiple, int(s) // multiple * multiple) for s in sides)
        else:
            depth_cap = self._slab_bytes() / ((channels + 1) * 4.0 * ny * nx)
            voxels = budget / batch / per_voxel
            deepest = min(depth_cap, -(-nz // multiple) * multiple, voxels / smallest**2)
            depths = range(smallest, max(smallest, int(deepest)) + 1, multiple)
            candidates = []
            for depth in depths:
                width = max(smallest, int(math.sqrt(voxels / depth)) // multiple * multiple)
                candidates.append((depth, width, width))
            box = min(candidates, key=lambda b: (work(b), -math.prod(b)))
        tile = (axis(nz, box[0]), axis(ny, box[1]), axis(nx, box[2]))
        overlap = min(overlap, (min(tile) - 1) // 2)
        if margin is not None:
            margin = min(margin, max(0, (overlap - 1) // 2))
        if self.batch is None and self.device.type != "cpu":
            batch = int(max(1, min(16, budget // (per_voxel * math.prod(tile)))))
        return VolumePlan(tile=tile, overlap=overlap, batch=batch, margin=margin)

    # -- prediction

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def predict_normalized(self, boxes: torch.Tensor) -> torch.Tensor:
        """The network on normalised boxes ``(B, C, tz, ty, tx)``, each channel (a half)
        predicted on its own and the predictions averaged: ``(B, 1, tz, ty, tx)``."""
        with torch.inference_mode(), self._autocast():
            total: torch.Tensor | None = None
            for c in range(int(boxes.shape[1])):
                x = boxes[:, c : c + 1].to(self.device, non_blocking=True)
                y = self.network(x.contiguous(memory_format=self.memory_format)).float()
                total = y if total is None else total + y
            assert total is not None  # at least one channel
            return total / float(boxes.shape[1])

    def normalization(self, volumes: Sequence[Volume]) -> RobustNormalization:
        """The model's normalisation fitted on a voxel sample of all ``volumes`` together."""
        sample = np.concatenate([volume.voxel_sample() for volume in volumes])
        return self.model.config.normalization.fit(sample)

    def denoise_volumes(
        self,
        volumes: Sequence[Volume],
        write: Callable[[int, np.ndarray], None],
        *,
        normalization: RobustNormalization | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Denoise ``volumes`` (one volume, or the two halves of one, averaged) and hand the
        result to ``write(start, sections)`` slab by slab, in the input's scale.

        ``normalization`` is fitted on the volumes (:meth:`normalization`) unless given (as for
        a crop of a larger volume, which should be normalised as the whole one is).

        Raises
        ------
        ParameterError
            For no volumes, more than two, or halves of different shapes.
        InputFileError
            For a file section with NaN or infinite values (an in-memory volume raises
            :class:`ParameterError`).
        """
        if not 1 <= len(volumes) <= 2:
            raise ParameterError(f"give one volume or two halves, got {len(volumes)}")
        shape = volumes[0].shape
        for other in volumes[1:]:
            if other.shape != shape:
                raise ParameterError(
                    f"the halves differ in shape: {_name(volumes[0])} is {shape}, "
                    f"{_name(other)} is {other.shape}"
                )
        norm = normalization or self.normalization(volumes)
        center, scale, clip = norm.center, norm.scale, norm.clip

        def read(indices: np.ndarray) -> np.ndarray:
            out = np.empty((len(volumes), len(indices), shape[1], shape[2]), dtype=np.float32)
            for c, volume in enumerate(volumes):
                # a few sections at a time: no second copy of the row's sections
                for start in range(0, len(indices), _READ_SECTIONS):
                    part = out[c, start : start + _READ_SECTIONS]
                    sections = volume.take_sections(indices[start : start + _READ_SECTIONS])
                    if not np.isfinite(sections).all():
                        _refuse_non_finite(volume)
                    np.subtract(sections, center, out=part)
                    part /= scale
                    if clip is not None:
                        np.clip(part, -clip, clip, out=part)
            return out

        def write_scaled(start: int, sections: np.ndarray) -> None:
            sections *= scale
            sections += center
            write(start, sections)

        with torch_threads(self.threads):
            plan = self.plan(shape, channels=len(volumes))
            logger.info(
                "denoising %s voxels in boxes of %s (overlap %d)",
                "x".join(map(str, shape)), "x".join(map(str, plan.tile)), plan.overlap,
            )  # fmt: skip
            predict_tiled_volume(
                self.predict_normalized, read, shape, write_scaled,
                tile=plan.tile, overlap=plan.overlap, batch=plan.batch,
                align=int(self.config.size_multiple), margin=plan.margin, progress=progress,
            )  # fmt: skip

    def __call__(
        self,
        volume: np.ndarray | Sequence[np.ndarray],
        *,
        normalization: RobustNormalization | None = None,
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        """Denoise a volume ``(Z, Y, X)`` in memory, or a list of its two halves (averaged);
        returns float32 of the input's shape and scale (``normalization``: see
        :meth:`denoise_volumes`)."""
        arrays = [volume] if isinstance(volume, np.ndarray) else list(volume)
        sources = []
        for i, array in enumerate(arrays):
            data = np.asarray(array)
            if data.ndim != 3:
                raise ParameterError(
                    f"expected a volume (Z, Y, X) for a 3D model, got shape {data.shape}"
                )
            sources.append(ArrayVolume(data, name=f"half {i + 1}" if len(arrays) > 1 else "volume"))
        out = np.empty(sources[0].shape, dtype=np.float32)

        def keep(start: int, sections: np.ndarray) -> None:
            out[start : start + sections.shape[0]] = sections

        self.denoise_volumes(sources, keep, normalization=normalization, progress=progress)
        return out

    def denoise_files(
        self,
        readers: Sequence[VolumeReader],
        writer: SlabWriter,
        *,
        normalization: RobustNormalization | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Denoise one volume file (or two halves, averaged) into an open :class:`SlabWriter`
        (whose shape must be the volume's); ``normalization`` as for :meth:`denoise_volumes`."""
        if readers and writer.shape != readers[0].shape:
            raise ParameterError(f"output shape {writer.shape} is not the input's")
        self.denoise_volumes(readers, writer.write, normalization=normalization, progress=progress)


def _name(volume: Volume) -> str:
    return str(volume.path) if isinstance(volume, VolumeReader) else volume.name


def _refuse_non_finite(volume: Volume) -> None:
    if isinstance(volume, VolumeReader):
        raise InputFileError(volume.path, "contains NaN or infinite values")
    raise ParameterError(f"{volume.name} contains NaN or infinite values")
