"""Denoising a batch of MRC files with one model: the recipe every process builds its job from.

A :class:`DenoiseRecipe` is plain data (the model file, its fingerprint, the
:class:`~cryoden.inference.denoise.Denoiser`'s settings, the output type), so it travels to
Dask workers as it is; :meth:`DenoiseRecipe.build` loads the model and makes the per-file job
(:class:`~cryoden.pipeline.mrc_job.MrcFileJob` around the denoiser) once per process.

:meth:`DenoiseRecipe.resolved` fixes every setting the denoiser would otherwise choose per
machine (device, precision, backend, polyphase inference and, for other processes, the CPU memory
budget that sets the tiles) from the submitting process, so that every worker computes exactly what one process
would with the same thread count. :meth:`DenoiseRecipe.key_recipe` holds what decides the
output (the model's fingerprint and those settings, not the thread count or the number of
workers): an output whose key matches was made by this model with these options.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cryoden.errors import InputFileError, ParameterError
from cryoden.inference.denoise import CPU_MEMORY_BUDGET_MB, Denoiser
from cryoden.inference.tiling import available_memory_bytes
from cryoden.models import LoadedModel, load_model
from cryoden.pipeline.completion import model_fingerprint
from cryoden.pipeline.mrc_job import MIN_SIDE_PX, MrcFileJob

logger = logging.getLogger(__name__)

#: The Denoiser's settings a recipe may hold (its keyword arguments).
SETTINGS: tuple[str, ...] = (
    "device", "tile", "batch", "threads", "overlap", "precision", "memory_mb", "polyphase",
    "backend",
)  # fmt: skip
#: Settings that do not change the output's values, left out of the key.
_NOT_IN_KEY = frozenset({"threads"})


@dataclass(frozen=True)
class DenoiseRecipe:
    """How to denoise one file, as plain data (picklable, JSON-ready).

    Attributes
    ----------
    model_path
        The model file or folder (absolute, so that workers find it on a shared file system).
    model_hash
        Its fingerprint (:func:`~cryoden.pipeline.completion.model_fingerprint`).
    settings
        Keyword arguments of :class:`~cryoden.inference.denoise.Denoiser` (names in
        :data:`SETTINGS`); missing ones take the denoiser's defaults.
    dtype
        Output type, ``"float32"`` or ``"float16"``.
    history_label
        The header label saying what made each output.
    """

    model_path: str
    model_hash: str
    settings: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float32"
    history_label: str = ""

    @classmethod
    def for_model(cls, model: LoadedModel, **fields: Any) -> DenoiseRecipe:
        """The recipe for ``model`` (loaded, so its files were checked: hashing never meets a
        FIFO or a hostile file): its absolute path and fingerprint, and ``fields``."""
        path = os.path.abspath(model.path)
        try:
            fingerprint = model_fingerprint(path)
        except OSError as exc:
            raise InputFileError(model.path, f"cannot be read ({exc.strerror or exc})") from None
        unknown = set(fields.get("settings", {})) - set(SETTINGS)
        if unknown:
            raise ParameterError(f"unknown denoiser settings: {', '.join(sorted(unknown))}")
        return cls(model_path=path, model_hash=fingerprint, **fields)

    def denoiser(self, model: LoadedModel | None = None) -> Denoiser:
        """The denoiser of this recipe (checks the settings), on ``model`` (this recipe's,
        loaded already) or on the model loaded here."""
        return Denoiser(model or load_model(self.model_path), **self.settings)

    def resolved(self, denoiser: Denoiser, *, pin_memory: bool = False) -> DenoiseRecipe:
        """This recipe with the choices ``denoiser`` made on this machine written in (device,
        precision, backend, polyphase), so that a rerun or another process computes the same.

        ``pin_memory``: on the CPU, also the memory budget that sets the tiles (by default
        taken from the memory available to each process), for recipes sent to other
        processes; left out of keys made before it is pinned, so that a rerun on a busier
        machine still finds its outputs complete."""
        settings = dict(self.settings)
        settings.update(
            device=str(denoiser.device),
            precision=denoiser.precision,
            backend=denoiser.backend,
            polyphase=denoiser.polyphase,
        )
        if pin_memory and settings.get("memory_mb") is None and denoiser.device.type == "cpu":
            available_mb = available_memory_bytes("cpu") / 2**20
            settings["memory_mb"] = float(min(CPU_MEMORY_BUDGET_MB, 0.25 * available_mb))
        return dataclasses.replace(self, settings=settings)

    def key_recipe(self) -> dict[str, Any]:
        """What decides the output's values (the key's recipe): the model's fingerprint, the
        settings given or resolved (not the thread count) and the output type."""
        settings = {k: v for k, v in sorted(self.settings.items()) if k not in _NOT_IN_KEY}
        return {
            "command": "denoise",
            "model": self.model_hash,
            "settings": settings,
            "dtype": self.dtype,
        }

    def build(self, denoiser: Denoiser | None = None) -> MrcFileJob:
        """The per-file job: read an MRC input, denoise it, write it (``denoiser``: one made
        already from this recipe, else it is made here)."""
        denoise = self.denoiser() if denoiser is None else denoiser
        if model_fingerprint(self.model_path) != self.model_hash:
            raise InputFileError(
                self.model_path, "changed while the batch ran (its fingerprint differs)"
            )

        def compute(source: Path, data: np.ndarray) -> np.ndarray:
            try:
                return denoise(data)
            except ParameterError as exc:  # about this image, not a setting
                raise InputFileError(source, str(exc)) from None

        return MrcFileJob(
            compute,
            dtype=self.dtype,
            history_label=self.history_label,
            protected=(Path(self.model_path),),
            min_side_px=MIN_SIDE_PX,
            verb="denoising",
        )
