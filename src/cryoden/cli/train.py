"""Train a denoising model: ``n2n`` on noisy pairs, ``n2v`` and ``ne2ne`` on single images.

Examples::

    cryoden train n2n --a pairs/even --b pairs/odd --out model/ --max-minutes 30
    cryoden train n2v --images micrographs/ --out n2v.safetensors --epochs 50
    cryoden train ne2ne --images micrographs/ --out ne2ne/ --arch unet

Noise2Noise pairs are files of the same name in ``--a`` and ``--b`` (for example the even and odd
frame sums from ``cryoden split-frames``). Training ends at whichever comes first of ``--epochs``,
``--max-minutes`` and early stopping on the validation loss (whole images held out), and always
leaves a usable model at ``--out``: a folder (``config.json`` + ``weights.safetensors``) or a
single ``.safetensors`` file. A checkpoint is written each epoch beside it; ``--resume``
continues the run from there. ``--init MODEL`` fine-tunes an existing model on new data: the
network (architecture, width, depth) and its weights come from ``MODEL``.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from pathlib import Path
from typing import Any

import typer

from cryoden.cli.common import (
    MAX_COUNT,
    MAX_SIDE_PX,
    choice,
    device_option,
    echo,
    flag_names,
    number,
    progress_bar,
    provenance,
    write_json_atomic,
)
from cryoden.errors import ParameterError
from cryoden.io.folders import read_images, read_pairs
from cryoden.models import load_model
from cryoden.nets.config import (
    ARCHITECTURES,
    MAX_BASE_CHANNELS,
    MAX_KERNEL_SIZE,
    MAX_UNET_DEPTH,
    NetworkConfig,
)
from cryoden.training import TrainConfig, train
from cryoden.training.data import PairDataset, SingleDataset
from cryoden.training.defaults import default_network
from cryoden.training.losses import LOSSES
from cryoden.training.neighbor2neighbor import Neighbor2Neighbor
from cryoden.training.noise2void import n2v2_network_config

logger = logging.getLogger("cryoden.cli.train")

OUT_HELP = "Model to write: a folder, or a file ending in .safetensors."

#: Command-line option -> TrainConfig field.
TRAIN_FIELDS: dict[str, str] = {
    "epochs": "epochs",
    "max_minutes": "max_minutes",
    "patch": "patch",
    "batch": "batch_size",
    "steps": "steps_per_epoch",
    "lr": "learning_rate",
    "loss": "loss",
    "patience": "early_stopping_patience",
    "seed": "seed",
    "threads": "threads",
}
#: Library parameters and the flags that set them (for error messages).
FLAGS: dict[str, str] = {
    "epochs": "--epochs",
    "max_minutes": "--max-minutes",
    "patch": "--patch",
    "batch_size": "--batch",
    "steps_per_epoch": "--steps-per-epoch",
    "learning_rate": "--lr",
    "loss": "--loss",
    "early_stopping_patience": "--patience",
    "seed": "--seed",
    "threads": "--threads",
    "arch": "--arch",
    "kernel_size": "--kernel",
    "base_channels": "--base-channels",
    "depth": "--depth",
    "space_to_depth": "--space-to-depth",
    "input_image": "--input-image",
}

# The library's defaults, shown in --help; the options themselves default to None, so that
# only the values a user gives are passed on and every default is set in one place.
_TRAIN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
_DEFAULT_ARCH = inspect.signature(default_network).parameters["arch"].default
_DEFAULT_KERNEL = next(
    f.default for f in dataclasses.fields(NetworkConfig) if f.name == "kernel_size"
)
_DEFAULT_INPUT_IMAGE = inspect.signature(Neighbor2Neighbor).parameters["input_image"].default


def _given(**values: Any) -> dict[str, Any]:
    """The values that are not ``None`` (the options a user gave)."""
    return {k: v for k, v in values.items() if v is not None}


def _network_config(scheme: str, arch: str | None, **options: int | None) -> NetworkConfig:
    """The scheme's default network (:func:`cryoden.training.defaults.default_network`) with
    the options given on the command line on top."""
    if arch is not None and arch not in ARCHITECTURES:
        raise ParameterError(f"unknown --arch {arch!r}; known: {', '.join(ARCHITECTURES)}")
    with flag_names(FLAGS):
        return default_network(scheme, **_given(arch=arch, **options))


def _train_config(options: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of the given options; ``options`` gets the values used (defaults
    included), for the training log."""
    given = {TRAIN_FIELDS[k]: options[k] for k in TRAIN_FIELDS if options[k] is not None}
    with flag_names(FLAGS):
        config = TrainConfig(**given)
    options.update({k: getattr(config, field) for k, field in TRAIN_FIELDS.items()})
    return config


def _run(
    scheme: str | Neighbor2Neighbor,
    dataset: Any,
    network: NetworkConfig,
    config: TrainConfig,
    options: dict[str, Any],
    summary: dict[str, Any],
) -> None:
    out = Path(options["out"])
    initial = None
    if options.get("init") is not None:
        start = load_model(options["init"])
        if network != start.config.network:
            logger.info(
                "--init: training %s's network (%s)", options["init"], start.config.network.arch
            )
        network = start.config.network
        initial = start.network.state_dict()
    name = scheme if isinstance(scheme, str) else scheme.name
    with (
        progress_bar(f"train {name}", total=config.epochs * config.steps_per_epoch) as progress,
        flag_names(FLAGS),
    ):
        result = train(
            scheme, network, dataset, None, config,
            out=out, resume=options["resume"], progress=progress, data_summary=summary,
            device=options["device"], initial_weights=initial,
        )  # fmt: skip
    record = provenance(f"train {name}", {**options, "network": network.to_dict()})
    record["result"] = {
        "stopped": result.stopped,
        "best_epoch": result.best_epoch,
        "best_validation_loss": result.best_validation_loss,
        "history": [r.to_dict() for r in result.history],
    }
    log_path = out / "training_log.json" if out.is_dir() else Path(f"{out}.training_log.json")
    write_json_atomic(log_path, record)
    echo(
        f"{out}: best epoch {result.best_epoch} of {len(result.history)} "
        f"(validation loss {result.best_validation_loss:.5g}; stopped by {result.stopped})"
    )


def _options(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def _default(value: object) -> str:
    return f" (default: {value})"


def _network_options(scheme: str) -> dict[str, Any]:
    """The --base-channels, --depth and --space-to-depth options, whose defaults (shown in the
    help) are the scheme's default network's."""
    unet, seed = default_network(scheme), default_network(scheme, "seed5")
    return {
        "base": typer.Option(
            None,
            "--base-channels",
            help=f"Channels of the first level (default: U-Net {unet.base_channels}, "
            f"seed nets {seed.base_channels}).",
            callback=number("--base-channels", minimum=1, maximum=MAX_BASE_CHANNELS),
        ),
        "depth": typer.Option(
            None,
            "--depth",
            help=f"U-Net levels (default: {unet.depth}; seed nets fixed).",
            callback=number("--depth", minimum=1, maximum=MAX_UNET_DEPTH),
        ),
        "s2d": typer.Option(
            None,
            "--space-to-depth",
            help="U-Net only. 2: work on 2x2 pixel blocks at half size (a quarter of the FLOPs "
            "per pixel, in wider convolutions); 1: full-size first level"
            + _default(unet.space_to_depth)
            + ".",
            callback=number("--space-to-depth", minimum=1, maximum=2),
        ),
    }


NET = {scheme: _network_options(scheme) for scheme in ("n2n", "n2v", "ne2ne")}

# Shared option declarations (typer reads them from each function's signature).
ARCH = typer.Option(
    None,
    "--arch",
    help=f"Network: {', '.join(ARCHITECTURES)}" + _default(_DEFAULT_ARCH) + ".",
    callback=choice("--arch", tuple(ARCHITECTURES)),
)
KERNEL = typer.Option(
    None,
    "--kernel",
    help="Convolution kernel size, odd" + _default(_DEFAULT_KERNEL) + ".",
    callback=number("--kernel", minimum=1, maximum=MAX_KERNEL_SIZE, odd=True),
)
EPOCHS = typer.Option(
    None,
    "--epochs",
    help="Maximum number of epochs" + _default(_TRAIN_DEFAULTS["epochs"]) + ".",
    callback=number("--epochs", minimum=1, maximum=MAX_COUNT),
)
MINUTES = typer.Option(
    None,
    "--max-minutes",
    help="Wall-clock limit for training, > 0.",
    callback=number("--max-minutes", above=0),
)
PATCH = typer.Option(
    None,
    "--patch",
    help="Training patch side in pixels" + _default(_TRAIN_DEFAULTS["patch"]) + ".",
    callback=number("--patch", minimum=1, maximum=MAX_SIDE_PX),
)
BATCH = typer.Option(
    None,
    "--batch",
    help="Patches per optimiser step" + _default(_TRAIN_DEFAULTS["batch_size"]) + ".",
    callback=number("--batch", minimum=1, maximum=MAX_COUNT),
)
STEPS = typer.Option(
    None,
    "--steps-per-epoch",
    help="Optimiser steps per epoch" + _default(_TRAIN_DEFAULTS["steps_per_epoch"]) + ".",
    callback=number("--steps-per-epoch", minimum=1, maximum=MAX_COUNT),
)
LR = typer.Option(
    None,
    "--lr",
    help="Adam learning rate, with cosine decay" + _default(_TRAIN_DEFAULTS["learning_rate"]) + ".",
    callback=number("--lr", above=0, maximum=1e3),
)
LOSS = typer.Option(
    None,
    "--loss",
    help="l2 or l1" + _default(_TRAIN_DEFAULTS["loss"]) + ".",
    callback=choice("--loss", LOSSES),
)
PATIENCE = typer.Option(
    None,
    "--patience",
    help="Early stopping: epochs without improvement"
    + _default(_TRAIN_DEFAULTS["early_stopping_patience"])
    + ".",
    callback=number("--patience", minimum=1, maximum=MAX_COUNT),
)
SEED = typer.Option(
    None,
    "--seed",
    help="Random seed of the weights, patches, masks and split"
    + _default(_TRAIN_DEFAULTS["seed"])
    + ".",
    callback=number("--seed", minimum=0),
)
RESUME = typer.Option(False, "--resume", help="Continue from the checkpoint beside --out.")
INIT = typer.Option(
    None,
    "--init",
    metavar="MODEL",
    help="Fine-tune this model: start from its network and weights (its network wins over --arch).",
)
THREADS = typer.Option(
    None,
    "--threads",
    help="CPU threads for torch.",
    callback=number("--threads", minimum=1, maximum=1024),
)
DEVICE = typer.Option(
    None,
    "--device",
    help="cpu, cuda, cuda:1, mps; one this machine has (default: best available).",
    callback=device_option("--device"),
)


def n2n(
    a: Path = typer.Option(..., "--a", metavar="DIR", help="First noisy image of each pair."),
    b: Path = typer.Option(..., "--b", metavar="DIR", help="Second noisy image (same names)."),
    out: Path = typer.Option(..., "--out", metavar="MODEL", help=OUT_HELP),
    arch: str = ARCH, kernel: int = KERNEL, base_channels: int = NET["n2n"]["base"],
    depth: int = NET["n2n"]["depth"], space_to_depth: int = NET["n2n"]["s2d"],
    epochs: int = EPOCHS, max_minutes: float = MINUTES, patch: int = PATCH, batch: int = BATCH,
    steps: int = STEPS, lr: float = LR, loss: str = LOSS, patience: int = PATIENCE,
    seed: int = SEED, resume: bool = RESUME, threads: int = THREADS, device: str = DEVICE,
    init: Path = INIT,
) -> None:  # fmt: skip
    """Noise2Noise: learn to predict one noisy image of a pair from the other."""
    network = _network_config(
        "n2n", arch, kernel_size=kernel, base_channels=base_channels, depth=depth,
        space_to_depth=space_to_depth,
    )  # fmt: skip
    options = _options(
        out=out, epochs=epochs, max_minutes=max_minutes, patch=patch, batch=batch, steps=steps,
        lr=lr, loss=loss, patience=patience, seed=seed, resume=resume, threads=threads,
        device=device, init=init, a=a, b=b,
    )  # fmt: skip
    config = _train_config(options)
    pairs, names = read_pairs(a, b)
    dataset = PairDataset(pairs, sources=names)
    summary = {"a": str(a), "b": str(b), "n_pairs": len(pairs)}
    _run("n2n", dataset, network, config, options, summary)


def n2v(
    images: list[Path] = typer.Option(..., "--images", metavar="DIR", help="Noisy images."),
    out: Path = typer.Option(..., "--out", metavar="MODEL", help=OUT_HELP),
    variant: str = typer.Option(
        "n2v",
        "--variant",
        help="n2v (Krull 2019) or n2v2 (blur-pool, no top skip, median).",
        callback=choice("--variant", ("n2v", "n2v2")),
    ),
    arch: str = ARCH, kernel: int = KERNEL, base_channels: int = NET["n2v"]["base"],
    depth: int = NET["n2v"]["depth"], space_to_depth: int = NET["n2v"]["s2d"],
    epochs: int = EPOCHS, max_minutes: float = MINUTES, patch: int = PATCH, batch: int = BATCH,
    steps: int = STEPS, lr: float = LR, loss: str = LOSS, patience: int = PATIENCE,
    seed: int = SEED, resume: bool = RESUME, threads: int = THREADS, device: str = DEVICE,
    init: Path = INIT,
) -> None:  # fmt: skip
    """Noise2Void: blind-spot training from single noisy images."""
    if variant not in ("n2v", "n2v2"):
        raise ParameterError(f"--variant must be n2v or n2v2, got {variant!r}")
    network = _network_config(
        "n2v", arch, kernel_size=kernel, base_channels=base_channels, depth=depth,
        space_to_depth=space_to_depth,
    )  # fmt: skip
    if variant == "n2v2":
        if network.arch != "unet":
            raise ParameterError("--variant n2v2 needs --arch unet (blur-pool, no top skip)")
        network = n2v2_network_config(network)
    options = _options(
        out=out, epochs=epochs, max_minutes=max_minutes, patch=patch, batch=batch, steps=steps,
        lr=lr, loss=loss, patience=patience, seed=seed, resume=resume, threads=threads,
        device=device, init=init, images=images, variant=variant,
    )  # fmt: skip
    config = _train_config(options)
    arrays, names = read_images(images)
    summary = {"images": [str(p) for p in images], "n_images": len(arrays)}
    _run(variant, SingleDataset(arrays, sources=names), network, config, options, summary)


def ne2ne(
    images: list[Path] = typer.Option(..., "--images", metavar="DIR", help="Noisy images."),
    out: Path = typer.Option(..., "--out", metavar="MODEL", help=OUT_HELP),
    arch: str = ARCH, kernel: int = KERNEL, base_channels: int = NET["ne2ne"]["base"],
    depth: int = NET["ne2ne"]["depth"], space_to_depth: int = NET["ne2ne"]["s2d"],
    epochs: int = EPOCHS, max_minutes: float = MINUTES, patch: int = PATCH, batch: int = BATCH,
    steps: int = STEPS, lr: float = LR, loss: str = LOSS, patience: int = PATIENCE,
    seed: int = SEED, resume: bool = RESUME, threads: int = THREADS, device: str = DEVICE,
    init: Path = INIT,
    input_image: str = typer.Option(
        None, "--input-image",
        help="What the network sees of each 2x2 cell: cell-mean (the mean of the three pixels "
        "other than the target's) or neighbour (one pixel, Huang et al. 2021)"
        + _default(_DEFAULT_INPUT_IMAGE) + ".",
    ),
) -> None:  # fmt: skip
    """Neighbor2Neighbor: sub-sampled neighbour pairs from single noisy images."""
    network = _network_config(
        "ne2ne", arch, kernel_size=kernel, base_channels=base_channels, depth=depth,
        space_to_depth=space_to_depth,
    )  # fmt: skip
    options = _options(
        out=out, epochs=epochs, max_minutes=max_minutes, patch=patch, batch=batch, steps=steps,
        lr=lr, loss=loss, patience=patience, seed=seed, resume=resume, threads=threads,
        device=device, init=init, images=images, input_image=input_image,
    )  # fmt: skip
    config = _train_config(options)
    with flag_names(FLAGS):
        scheme = Neighbor2Neighbor(**_given(loss=loss, input_image=input_image))
    options["input_image"] = scheme.input_image
    arrays, names = read_images(images)
    summary = {"images": [str(p) for p in images], "n_images": len(arrays)}
    _run(scheme, SingleDataset(arrays, sources=names), network, config, options, summary)
