"""Simulated datasets: clean projections and pairs of independently noisy copies (Noise2Noise).

The entry points: :func:`simulate_images` (in memory) and :func:`simulate_dataset` (on disk).
Both take a :class:`~cryoden.simulation.config.SimulationConfig`, or its fields as keyword
arguments. The parts: :mod:`~cryoden.simulation.sources` (what is projected),
:mod:`~cryoden.simulation.simulator` (clean images), :mod:`~cryoden.simulation.noise_streams`
(noise levels, seeding, noisy pairs) and :mod:`~cryoden.simulation.layout` (folders and
manifest).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryoden.errors import ParameterError
from cryoden.simulation.config import SimulationConfig
from cryoden.simulation.layout import check_output_folder, snr_dirname, write_dataset
from cryoden.simulation.noise_streams import NoiseLevel, noise_levels
from cryoden.simulation.simulator import SimulatedImage, Simulator, generate
from cryoden.simulation.sources import Source, load_source

__all__ = ["SimulationConfig", "simulate_dataset", "simulate_images", "snr_dirname"]

logger = logging.getLogger(__name__)


def _config(config: SimulationConfig | None, overrides: dict[str, Any]) -> SimulationConfig:
    if config is None:
        return SimulationConfig(**overrides)
    if not isinstance(config, SimulationConfig):
        raise ParameterError(f"config must be a SimulationConfig, got {type(config).__name__}")
    return dataclasses.replace(config, **overrides) if overrides else config


def _prepare(config: SimulationConfig) -> tuple[Simulator, list[NoiseLevel], Source]:
    """Load the source, check what depends on it, and build the simulator."""
    source = load_source(config.structure, config.phantom)
    if config.dose_e_per_a2 is not None and source.atoms is None:
        raise ParameterError(
            "Poisson noise at a dose (dose_e_per_a2) needs atoms, not a map: a map's values "
            "have no known potential scale; give snr_levels with a map"
        )
    width = config.size * config.pixel_size_angstrom
    diameter = 2 * source.radius_angstrom
    if config.field and width < diameter:
        raise ParameterError(
            f"an image of size * pixel_size_angstrom = {width:.0f} Å cannot hold one particle "
            f"(diameter {diameter:.0f} Å); use a larger size or pixel_size_angstrom"
        )
    if not config.field and width < diameter + 2 * config.max_shift_angstrom:
        logger.warning(
            "the particle (diameter %.0f Å) does not fit in the image (%.0f Å): its edges are cut",
            diameter,
            width,
        )
    return Simulator(source, config), noise_levels(config), source


def simulate_images(
    config: SimulationConfig | None = None, /, **overrides: Any
) -> Iterator[SimulatedImage]:
    """Simulate images in memory: clean images and pairs of noisy copies at each level.

    Parameters
    ----------
    config
        The run's settings; None builds one from ``overrides``.
    **overrides
        Fields of :class:`~cryoden.simulation.config.SimulationConfig` (replacing those of
        ``config``), e.g. ``n_images=4, size=64, snr_levels=[0.1]``.

    Returns
    -------
    Iterator[SimulatedImage]
        One image per index ``first_index, ..., first_index + n_images - 1``, with
        ``image.clean`` and ``image.pairs[snr] == (a, b)``. All parameters are checked and the
        source is loaded before this returns.

    Examples
    --------
    >>> from cryoden.simulation import simulate_images
    >>> [img] = simulate_images(n_images=1, size=32, pixel_size_angstrom=8.0, snr_levels=[0.1])
    >>> a, b = img.pairs[0.1]
    >>> a.shape, a.dtype.name
    ((32, 32), 'float32')
    """
    simulator, levels, _ = _prepare(_config(config, overrides))
    return generate(simulator, levels)


def simulate_dataset(
    out_dir: str | os.PathLike[str],
    config: SimulationConfig | None = None,
    /,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Simulate a dataset on disk: clean images, noisy pairs per level, and a manifest.

    Parameters
    ----------
    out_dir
        Output folder (created if needed); the layout is described in
        :mod:`cryoden.simulation.layout`.
    config
        The run's settings; None builds one from ``overrides``.
    overwrite
        Allow writing into a folder that already holds a ``manifest.json``.
    progress
        Called as ``progress(done, total)`` after each image.
    **overrides
        Fields of :class:`~cryoden.simulation.config.SimulationConfig` (replacing those of
        ``config``).

    Returns
    -------
    dict
        The manifest (also written to ``out_dir/manifest.json``).

    Raises
    ------
    ParameterError
        Invalid parameter (non-positive pixel size, size < 16, n_images < 1, SNR <= 0, unknown
        phantom or noise model); nothing is written.
    InputFileError
        Unreadable structure or map file, or an existing dataset in ``out_dir``.
    """
    config = _config(config, overrides)
    simulator, levels, source = _prepare(config)
    out = Path(out_dir)
    check_output_folder(out, overwrite=overwrite)
    images = generate(simulator, levels)
    return write_dataset(out, config, source.description, levels, images, progress=progress)
