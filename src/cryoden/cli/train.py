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

import logging
from pathlib import Path
from typing import Any

import typer

from cryoden.cli.common import progress_bar, provenance, write_json_atomic
from cryoden.errors import ParameterError
from cryoden.io.folders import read_images, read_pairs
from cryoden.models.modelfile import load_model
from cryoden.nets.config import ARCHITECTURES, NetworkConfig
from cryoden.nets.polyphase import INPUT_IMAGES
from cryoden.training.data import PairDataset, SingleDataset
from cryoden.training.defaults import default_network
from cryoden.training.loop import TrainConfig, train
from cryoden.training.neighbor2neighbor import Neighbor2Neighbor
from cryoden.training.noise2void import n2v2_network_config

logger = logging.getLogger("cryoden.cli.train")

OUT_HELP = "Model to write: a folder, or a file ending in .safetensors."


def _network_config(
    scheme: str,
    arch: str,
    kernel: int,
    base_channels: int | None,
    depth: int | None,
    space_to_depth: int | None,
) -> NetworkConfig:
    """The scheme's default network (:func:`cryoden.training.defaults.default_network`) with
    the options given on the command line on top."""
    if arch not in ARCHITECTURES:
        raise ParameterError(f"unknown --arch {arch!r}; known: {', '.join(ARCHITECTURES)}")
    # NetworkConfig refuses space_to_depth != 1 for the seed architectures, naming the field.
    return default_network(
        scheme,
        arch,
        kernel_size=kernel,
        base_channels=base_channels,
        depth=depth,
        space_to_depth=space_to_depth,
    )


def _run(
    scheme: str | Neighbor2Neighbor,
    dataset: Any,
    network: NetworkConfig,
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
    config = TrainConfig(
        epochs=options["epochs"],
        max_minutes=options["max_minutes"],
        patch=options["patch"],
        batch_size=options["batch"],
        steps_per_epoch=options["steps"],
        learning_rate=options["lr"],
        loss=options["loss"],
        seed=options["seed"],
        threads=options["threads"],
        early_stopping_patience=options["patience"],
    )
    name = scheme if isinstance(scheme, str) else scheme.name
    with progress_bar(f"train {name}", total=config.epochs * config.steps_per_epoch) as progress:
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
    typer.echo(
        f"{out}: best epoch {result.best_epoch} of {len(result.history)} "
        f"(validation loss {result.best_validation_loss:.5g}; stopped by {result.stopped})"
    )


def _options(**kwargs: Any) -> dict[str, Any]:
    return kwargs


# Shared option declarations (typer reads them from each function's signature).
ARCH = typer.Option("unet", "--arch", help=f"Network: {', '.join(ARCHITECTURES)}.")
KERNEL = typer.Option(3, "--kernel", help="Convolution kernel size (odd).")
BASE = typer.Option(
    None,
    "--base-channels",
    help="Channels of the first level (default: U-Net 16 for n2n, 8 for n2v and ne2ne; "
    "seed nets 32).",
)
DEPTH = typer.Option(None, "--depth", help="U-Net levels (default 4; seed nets fixed).")
S2D = typer.Option(
    None,
    "--space-to-depth",
    help="U-Net only. 2: work on 2x2 pixel blocks at half size (the n2n default: 1.6x faster "
    "inference on CPU, 0.1 dB lower on the held-out check; see README); 1: full-size first "
    "level (the n2v and ne2ne default).",
)
EPOCHS = typer.Option(100, "--epochs", help="Maximum number of epochs.")
MINUTES = typer.Option(None, "--max-minutes", help="Wall-clock limit for training.")
PATCH = typer.Option(64, "--patch", help="Training patch side in pixels.")
BATCH = typer.Option(16, "--batch", help="Patches per optimiser step.")
STEPS = typer.Option(50, "--steps-per-epoch", help="Optimiser steps per epoch.")
LR = typer.Option(1e-3, "--lr", help="Adam learning rate (cosine decay).")
LOSS = typer.Option("l2", "--loss", help="l2 or l1.")
PATIENCE = typer.Option(20, "--patience", help="Early stopping: epochs without improvement.")
SEED = typer.Option(0, "--seed", help="Random seed (weights, patches, masks, split).")
RESUME = typer.Option(False, "--resume", help="Continue from the checkpoint beside --out.")
INIT = typer.Option(
    None,
    "--init",
    metavar="MODEL",
    help="Fine-tune this model: start from its network and weights (its network wins over --arch).",
)
THREADS = typer.Option(None, "--threads", help="CPU threads for torch.")
DEVICE = typer.Option(None, "--device", help="cpu, cuda, cuda:1, mps (default: best available).")


def n2n(
    a: Path = typer.Option(..., "--a", metavar="DIR", help="First noisy image of each pair."),
    b: Path = typer.Option(..., "--b", metavar="DIR", help="Second noisy image (same names)."),
    out: Path = typer.Option(..., "--out", metavar="MODEL", help=OUT_HELP),
    arch: str = ARCH, kernel: int = KERNEL, base_channels: int = BASE, depth: int = DEPTH,
    space_to_depth: int = S2D,
    epochs: int = EPOCHS, max_minutes: float = MINUTES, patch: int = PATCH, batch: int = BATCH,
    steps: int = STEPS, lr: float = LR, loss: str = LOSS, patience: int = PATIENCE,
    seed: int = SEED, resume: bool = RESUME, threads: int = THREADS, device: str = DEVICE,
    init: Path = INIT,
) -> None:  # fmt: skip
    """Noise2Noise: learn to predict one noisy image of a pair from the other."""
    network = _network_config("n2n", arch, kernel, base_channels, depth, space_to_depth)
    pairs, names = read_pairs(a, b)
    dataset = PairDataset(pairs, sources=names)
    options = _options(
        out=out, epochs=epochs, max_minutes=max_minutes, patch=patch, batch=batch, steps=steps,
        lr=lr, loss=loss, patience=patience, seed=seed, resume=resume, threads=threads,
        device=device, init=init, a=a, b=b,
    )  # fmt: skip
    _run("n2n", dataset, network, options, {"a": str(a), "b": str(b), "n_pairs": len(pairs)})


def n2v(
    images: list[Path] = typer.Option(..., "--images", metavar="DIR", help="Noisy images."),
    out: Path = typer.Option(..., "--out", metavar="MODEL", help=OUT_HELP),
    variant: str = typer.Option(
        "n2v", "--variant", help="n2v (Krull 2019) or n2v2 (blur-pool, no top skip, median)."
    ),
    arch: str = ARCH, kernel: int = KERNEL, base_channels: int = BASE, depth: int = DEPTH,
    space_to_depth: int = S2D,
    epochs: int = EPOCHS, max_minutes: float = MINUTES, patch: int = PATCH, batch: int = BATCH,
    steps: int = STEPS, lr: float = LR, loss: str = LOSS, patience: int = PATIENCE,
    seed: int = SEED, resume: bool = RESUME, threads: int = THREADS, device: str = DEVICE,
    init: Path = INIT,
) -> None:  # fmt: skip
    """Noise2Void: blind-spot training from single noisy images."""
    if variant not in ("n2v", "n2v2"):
        raise ParameterError(f"--variant must be n2v or n2v2, got {variant!r}")
    network = _network_config("n2v", arch, kernel, base_channels, depth, space_to_depth)
    if variant == "n2v2":
        if arch != "unet":
            raise ParameterError("--variant n2v2 needs --arch unet (blur-pool, no top skip)")
        network = n2v2_network_config(network)
    arrays, names = read_images(images)
    options = _options(
        out=out, epochs=epochs, max_minutes=max_minutes, patch=patch, batch=batch, steps=steps,
        lr=lr, loss=loss, patience=patience, seed=seed, resume=resume, threads=threads,
        device=device, init=init, images=images, variant=variant,
    )  # fmt: skip
    summary = {"images": [str(p) for p in images], "n_images": len(arrays)}
    _run(variant, SingleDataset(arrays, sources=names), network, options, summary)


def ne2ne(
    images: list[Path] = typer.Option(..., "--images", metavar="DIR", help="Noisy images."),
    out: Path = typer.Option(..., "--out", metavar="MODEL", help=OUT_HELP),
    arch: str = ARCH, kernel: int = KERNEL, base_channels: int = BASE, depth: int = DEPTH,
    space_to_depth: int = S2D,
    epochs: int = EPOCHS, max_minutes: float = MINUTES, patch: int = PATCH, batch: int = BATCH,
    steps: int = STEPS, lr: float = LR, loss: str = LOSS, patience: int = PATIENCE,
    seed: int = SEED, resume: bool = RESUME, threads: int = THREADS, device: str = DEVICE,
    init: Path = INIT,
    input_image: str = typer.Option(
        "cell-mean", "--input-image",
        help="What the network sees of each 2x2 cell: cell-mean (the mean of the three pixels "
        "other than the target's; default) or neighbour (one pixel, Huang et al. 2021).",
    ),
) -> None:  # fmt: skip
    """Neighbor2Neighbor: sub-sampled neighbour pairs from single noisy images."""
    if input_image not in INPUT_IMAGES:
        raise ParameterError(
            f"--input-image must be one of {', '.join(INPUT_IMAGES)}, got {input_image!r}"
        )
    network = _network_config("ne2ne", arch, kernel, base_channels, depth, space_to_depth)
    arrays, names = read_images(images)
    options = _options(
        out=out, epochs=epochs, max_minutes=max_minutes, patch=patch, batch=batch, steps=steps,
        lr=lr, loss=loss, patience=patience, seed=seed, resume=resume, threads=threads,
        device=device, init=init, images=images, input_image=input_image,
    )  # fmt: skip
    summary = {"images": [str(p) for p in images], "n_images": len(arrays)}
    scheme = Neighbor2Neighbor(loss=loss, input_image=input_image)
    _run(scheme, SingleDataset(arrays, sources=names), network, options, summary)
