# Over ~450 lines on purpose: the four `cryoden train` subcommands share one table of options and
# one run function here; split, each subcommand's help would have to be assembled across modules.
"""Train a denoising model: ``n2n`` on noisy pairs, ``n2v`` and ``ne2ne`` on single images, ``care``
on noisy images with clean targets.

Examples::

    cryoden train n2n --a pairs/even --b pairs/odd --out model/ --steps 5000
    cryoden train n2v --images micrographs/ --out n2v.safetensors --steps 2000 --max-minutes 30
    cryoden train ne2ne --images micrographs/ --out ne2ne/ --arch unet
    cryoden train care --a sim/snr_0.1000/a --b sim/clean --out care/
    cryoden train n2n --star MotionCorr/job002/corrected_micrographs.star --out n2n/
    cryoden train n2v --images "Micrographs/*.mrc" --max-micrographs 100 --out n2v/

Noise2Noise pairs are files of the same name in ``--a`` and ``--b`` (for example the even and odd
frame sums from ``cryoden split-frames``), or the rlnMicrographNameEven/Odd columns of a RELION
STAR file (``n2n --star``). Inputs may be folders, files, quoted glob patterns, STAR or cryoSPARC
.cs files; they are read patch by patch from memory maps, so hundreds of micrographs train in
bounded memory, and ``--max-micrographs N`` keeps N of them, evenly spread.
The training budget is ``--steps`` optimiser steps (the
same seeded run gives the same model on any machine) or else ``--epochs``; ``--max-minutes`` caps
the wall time, and early stopping on the validation loss may end the run sooner. Training always
leaves a usable model at ``--out``: a folder (``config.json`` + ``weights.safetensors``) or a
single ``.safetensors`` file, with ``preview.png`` in the folder (``<out>.preview.png`` beside a
file) showing a training image raw and denoised on the same grey scale. A run that ends far short
of its plan is reported with a warning; a degenerate model (no better than predicting the mean,
or anti-correlated with its input) is not saved as the model and the command fails with what to
try. A checkpoint is written each epoch beside it; ``--resume`` continues the run from there.
``--init MODEL`` fine-tunes an existing model on new data: the network (architecture, width,
depth) and its weights come from ``MODEL``; ``--init general`` starts from cryoden's shipped
general model, the recommended start for a new dataset.

The subcommands are built from one list of shared options (:data:`SHARED`) plus each one's own
data options, so every option is declared once.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from cryoden.cli.common import (
    MAX_COUNT,
    MAX_SIDE_PX,
    choice,
    echo,
    flag_names,
    number,
    progress_bar,
    provenance,
    with_flags,
    write_json_atomic,
)
from cryoden.cli.options import DEVICE, THREADS, no_preview_option, option_parameter
from cryoden.cli.previews import write_training_preview
from cryoden.cli.sample_masks import with_sample_masks
from cryoden.cli.train_inputs import pair_inputs_of, single_inputs
from cryoden.cli.train_volumes import (
    volume_pair_inputs,
    volume_single_inputs,
    write_volume_preview,
)
from cryoden.errors import ParameterError
from cryoden.models import load_model
from cryoden.models.registry import resolve_model
from cryoden.nets.config import (
    ARCHITECTURES,
    MAX_BASE_CHANNELS,
    MAX_KERNEL_SIZE,
    MAX_UNET_DEPTH,
    NetworkConfig,
)
from cryoden.training import SCHEMES, TrainConfig, train
from cryoden.training.blind_spot import BLIND_SPOT_HELP, noise_check, parse_blind_spot
from cryoden.training.defaults import DEFAULT_UNET, FINE_TUNE_LR_FACTOR, default_network
from cryoden.training.losses import LOSSES
from cryoden.training.neighbor2neighbor import Neighbor2Neighbor
from cryoden.training.noise2void import (
    N2V2,
    VOLUME_N2V_MIN_SNR,
    Noise2Void,
    n2v2_network_config,
    volume_scheme,
)

logger = logging.getLogger("cryoden.cli.train")

# The library's defaults, shown in --help; the options themselves default to None, so that
# only the values a user gives are passed on and every default is set in one place.
_TRAIN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
_DEFAULT_ARCH = inspect.signature(default_network).parameters["arch"].default
_DEFAULT_KERNEL = next(
    f.default for f in dataclasses.fields(NetworkConfig) if f.name == "kernel_size"
)
_DEFAULT_INPUT_IMAGE = inspect.signature(Neighbor2Neighbor).parameters["input_image"].default

#: Command-line option -> TrainConfig field (``--steps`` where the library has ``max_steps``).
TRAIN_FIELDS: dict[str, str] = {
    option: field
    for option, field in {
        "epochs": "epochs",
        "steps": "max_steps",
        "max_minutes": "max_minutes",
        "patch": "patch",
        "batch": "batch_size",
        "steps_per_epoch": "steps_per_epoch",
        "lr": "learning_rate",
        "loss": "loss",
        "patience": "early_stopping_patience",
        "seed": "seed",
        "threads": "threads",
    }.items()
    if field in _TRAIN_DEFAULTS
}
#: Library parameters and the flags that set them (for error messages).
FLAGS: dict[str, str] = {
    "epochs": "--epochs",
    "max_steps": "--steps",
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
    "blind_spot": "--blind-spot",
}


def _given(**values: Any) -> dict[str, Any]:
    """The values that are not ``None`` (the options a user gave)."""
    return {k: v for k, v in values.items() if v is not None}


def _default(value: object) -> str:
    return f" (default: {value})"


def _network_scheme(scheme: str) -> str:
    """The scheme whose default network ``scheme`` trains (``care`` trains Noise2Noise's
    network when the library has no entry of its own for it)."""
    return scheme if scheme in DEFAULT_UNET else "n2n"


def _network_config(scheme: str, options: dict[str, Any]) -> NetworkConfig:
    """The scheme's default network (:func:`cryoden.training.defaults.default_network`) with
    the network options given on the command line on top."""
    arch = options["arch"]
    if arch is not None and arch not in ARCHITECTURES:
        raise ParameterError(f"unknown --arch {arch!r}; known: {', '.join(ARCHITECTURES)}")
    network = {
        "kernel_size": options["kernel"], "base_channels": options["base_channels"],
        "depth": options["depth"], "space_to_depth": options["space_to_depth"],
        "dims": options.get("dims"),  # 3 for volumes (cli.train_volumes)
    }  # fmt: skip
    with flag_names(FLAGS):
        return default_network(_network_scheme(scheme), **_given(arch=arch, **network))


def _train_config(options: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of the given options; ``options`` gets the values used (defaults
    included), for the training log."""
    given = {TRAIN_FIELDS[k]: options[k] for k in TRAIN_FIELDS if options.get(k) is not None}
    with flag_names(FLAGS):
        config = TrainConfig(**given)
    options.update({k: getattr(config, field) for k, field in TRAIN_FIELDS.items()})
    return config


def planned_steps(config: TrainConfig) -> int:
    """The optimiser steps the run plans: ``max_steps`` when set, else every epoch's."""
    max_steps = getattr(config, "max_steps", None)
    return int(max_steps) if max_steps else config.epochs * config.steps_per_epoch


def _run(
    scheme: str | Neighbor2Neighbor | Noise2Void,
    dataset: Any,
    network: NetworkConfig,
    options: dict[str, Any],
    summary: dict[str, Any],
    first_image: Any,
) -> None:
    if options.get("init") is not None and options.get("lr") is None:
        options["lr"] = TrainConfig().learning_rate * FINE_TUNE_LR_FACTOR  # fine-tuning
    config = _train_config(options)
    out = Path(options["out"])
    initial = None
    if options.get("init") is not None:
        start = load_model(resolve_model(options["init"]))  # a shipped model's name, or a path
        if network != start.config.network:
            logger.info(
                "--init: training %s's network (%s)", options["init"], start.config.network.arch
            )
        network = start.config.network
        initial = start.network.state_dict()
    name = scheme if isinstance(scheme, str) else scheme.name
    with (
        progress_bar(f"train {name} (steps)", total=planned_steps(config)) as progress,
        flag_names(FLAGS),
    ):
        result = train(
            scheme, network, dataset, None, config,
            out=out, resume=options["resume"], progress=progress, data_summary=summary,
            device=options["device"], initial_weights=initial,
        )  # fmt: skip
    warnings = list(getattr(result, "warnings", None) or [])
    for warning in warnings:
        logger.warning("%s", with_flags(warning, FLAGS))
    record = provenance(f"train {name}", {**options, "network": network.to_dict()})
    record["result"] = {
        "stopped": result.stopped,
        "steps": getattr(result, "steps", None),
        "wall_seconds": getattr(result, "wall_seconds", None),
        "best_epoch": result.best_epoch,
        "best_validation_loss": result.best_validation_loss,
        "warnings": warnings,
        "history": [r.to_dict() for r in result.history],
    }
    log_path = out / "training_log.json" if out.is_dir() else Path(f"{out}.training_log.json")
    write_json_atomic(log_path, record)
    if not options["no_preview"]:  # a volume's preview shows its middle section
        preview = write_volume_preview if first_image.ndim == 3 else write_training_preview
        preview(out, first_image, options["device"])
    steps = getattr(result, "steps", None)
    done = f"{steps} of {planned_steps(config)} steps, " if steps is not None else ""
    echo(
        f"{out}: {done}best epoch {result.best_epoch} of {len(result.history)} "
        f"(validation loss {result.best_validation_loss:.5g}; stopped by {result.stopped})"
    )


# ------------------------------------------------------------------------------ options


def _network_options() -> dict[str, Any]:
    """--base-channels, --depth and --space-to-depth, with the default networks' values."""
    unet, seed = default_network("n2v"), default_network("n2v", "seed5")
    pairs = default_network("n2n")
    return {
        "base_channels": typer.Option(
            None, "--base-channels",
            help=f"Channels of the first level (default: U-Net {pairs.base_channels} for n2n and "
            f"care, {unet.base_channels} for n2v and ne2ne; seed nets {seed.base_channels}).",
            callback=number("--base-channels", minimum=1, maximum=MAX_BASE_CHANNELS),
        ),
        "depth": typer.Option(
            None, "--depth", help=f"U-Net levels (default: {unet.depth}; seed nets fixed).",
            callback=number("--depth", minimum=1, maximum=MAX_UNET_DEPTH),
        ),
        "space_to_depth": typer.Option(
            None, "--space-to-depth",
            help="U-Net only. 2: work on 2x2 pixel blocks at half size (a quarter of the FLOPs "
            "per pixel, in wider convolutions); 1: full-size first level (default: "
            f"{pairs.space_to_depth} for n2n and care, {unet.space_to_depth} otherwise).",
            callback=number("--space-to-depth", minimum=1, maximum=2),
        ),
    }  # fmt: skip


def _count(flag: str, help_text: str, field: str | None = None) -> Any:
    """A positive count option; ``field``'s library default is shown in the help."""
    default = _default(_TRAIN_DEFAULTS[field]) if field else ""
    return typer.Option(
        None, flag, help=f"{help_text}{default}.",
        callback=number(flag, minimum=1, maximum=MAX_COUNT),
    )  # fmt: skip


#: The options every train subcommand has, in --help order (name, type, declaration).
SHARED: dict[str, tuple[type, Any]] = {
    "out": (Path, typer.Option(
        ..., "--out", metavar="MODEL", help="Model to write: a folder, or a file ending in "
        ".safetensors.")),
    "arch": (str, typer.Option(
        None, "--arch", help=f"Network: {', '.join(ARCHITECTURES)}{_default(_DEFAULT_ARCH)}.",
        callback=choice("--arch", tuple(ARCHITECTURES)))),
    "kernel": (int, typer.Option(
        None, "--kernel", help=f"Convolution kernel size, odd{_default(_DEFAULT_KERNEL)}.",
        callback=number("--kernel", minimum=1, maximum=MAX_KERNEL_SIZE, odd=True))),
    **{name: (int, option) for name, option in _network_options().items()},
    "steps": (int, _count(
        "--steps", "Training budget in optimiser steps (the same seeded run gives the same "
        "model on any machine); overrides --epochs")),
    "epochs": (int, _count("--epochs", "Budget in epochs when --steps is not given", "epochs")),
    "max_minutes": (float, typer.Option(
        None, "--max-minutes", help="Wall-clock cap on training, > 0 (the run stops there "
        "and warns if it is far short of its planned steps).",
        callback=number("--max-minutes", above=0))),
    "patch": (int, typer.Option(
        None, "--patch", help=f"Training patch side in pixels{_default(_TRAIN_DEFAULTS['patch'])}.",
        callback=number("--patch", minimum=1, maximum=MAX_SIDE_PX))),
    "batch": (int, _count("--batch", "Patches per optimiser step", "batch_size")),
    "steps_per_epoch": (int, _count(
        "--steps-per-epoch", "Optimiser steps per epoch (one validation each)",
        "steps_per_epoch")),
    "lr": (float, typer.Option(
        None, "--lr", help="Adam learning rate, with cosine decay"
        f"{_default(_TRAIN_DEFAULTS['learning_rate'])}. If the loss explodes, training goes "
        "back to its best weights at half the rate (with a warning).",
        callback=number("--lr", above=0, maximum=1e3))),
    "loss": (str, typer.Option(
        None, "--loss", help=f"l2 or l1{_default(_TRAIN_DEFAULTS['loss'])}.",
        callback=choice("--loss", LOSSES))),
    "patience": (int, _count(
        "--patience", "Early stopping: epochs without improvement", "early_stopping_patience")),
    "seed": (int, typer.Option(
        None, "--seed", help="Random seed of the weights, patches, masks and split"
        f"{_default(_TRAIN_DEFAULTS['seed'])}.", callback=number("--seed", minimum=0))),
    "resume": (bool, typer.Option(
        False, "--resume", help="Continue from the checkpoint beside --out.")),
    "threads": (int, THREADS),
    "device": (str, DEVICE),
    "init": (Path, typer.Option(
        None, "--init", metavar="MODEL", help="Fine-tune this model (a folder, a file, or a "
        "shipped model's name such as general): start from its network and weights (its "
        f"network wins over --arch), at {FINE_TUNE_LR_FACTOR:g} x the default --lr unless --lr "
        "is given.")),
    "no_preview": (bool, no_preview_option("a training image beside the model's output")),
    "max_micrographs": (int, _count(
        "--max-micrographs", "Train on this many input files (or pairs), evenly spread over "
        "the list: the same ones on every run (default: all)")),
}  # fmt: skip

_PAIRS = {
    "n2n": ("First noisy image of each pair.", "Second noisy image (same names)."),
    "care": ("Noisy images (the network's input).", "Clean images of the same names (targets)."),
}


#: What an input option takes (:mod:`cryoden.cli.train_inputs`).
_SPECS = "a folder, MRC file, quoted glob pattern, STAR or cryoSPARC .cs file"


def _pair_options(scheme: str) -> dict[str, tuple[type, Any]]:
    a_help, b_help = _PAIRS[scheme]
    required = ... if scheme == "care" else None  # n2n may take --star instead
    options: dict[str, tuple[type, Any]] = {
        "a": (Path, typer.Option(required, "--a", metavar="SPEC", help=f"{a_help} {_SPECS}.")),
        "b": (Path, typer.Option(required, "--b", metavar="SPEC", help=f"{b_help} {_SPECS}.")),
    }
    if scheme == "n2n":
        options["star"] = (Path, typer.Option(
            None, "--star", metavar="STAR", help="RELION micrographs STAR file: pairs from its "
            "rlnMicrographNameEven and rlnMicrographNameOdd columns (instead of --a/--b).",
        ))  # fmt: skip
    return options


IMAGES = {
    "images": (list[Path], typer.Option(
        ..., "--images", metavar="SPEC", help=f"Noisy images: {_SPECS}; repeat for more.",
    )),
    "mask": (str, typer.Option(
        None, "--mask", metavar="auto|none|MASK.mrc", help="Draw patches only from the sample: "
        "auto (carbon, contamination, hole edges and gold left out, from local intensity) or "
        "an MRC mask, 2D for all images or a stack with one per image (nonzero = sample); "
        "none: anywhere.",
    )),
}  # fmt: skip


def _subcommand(
    name: str, doc: str, own: dict[str, tuple[type, Any]], body: Callable[[dict[str, Any]], None]
) -> Callable[..., None]:
    """A typer command named ``name`` whose options are ``own`` then :data:`SHARED`, calling
    ``body`` with all of them as one dict."""

    def command(**options: Any) -> None:
        body(options)

    parameters = [option_parameter(n, t, o) for n, (t, o) in {**own, **SHARED}.items()]
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__name__ = command.__qualname__ = name
    command.__doc__ = doc
    return command


# ------------------------------------------------------------------------------ commands


def _pairs(scheme: str) -> Callable[[dict[str, Any]], None]:
    def body(options: dict[str, Any]) -> None:
        network = _network_config(scheme, options)
        _train_config(dict(options))  # refuse bad options before reading any data
        # The scheme says on which images of a pair the normalisation is fitted (CARE: the
        # noisy input alone, so that outputs come back in the input's intensity scale).
        fit_on = getattr(SCHEMES.get(scheme), "pair_fit_on", None) or "both"
        volumes = volume_pair_inputs(
            options["a"], options["b"], star=options.get("star"), fit_on=fit_on, mask=None,
            max_files=options["max_micrographs"],
        )  # fmt: skip
        if volumes is not None:  # tomograms train a 3D network
            network = _network_config(scheme, {**options, "dims": 3})
            _run(scheme, volumes.dataset, network, options, volumes.summary, volumes.preview)
            return
        inputs = pair_inputs_of(
            options["a"], options["b"], star=options.get("star"), fit_on=fit_on,
            max_micrographs=options["max_micrographs"],
        )  # fmt: skip
        _run(scheme, inputs.dataset, network, options, inputs.summary, inputs.preview)

    return body


def _n2v(options: dict[str, Any]) -> None:
    chosen = options["variant"]
    variant = "n2v" if chosen == "auto" else chosen  # images; volumes choose again below
    network = _network_config("n2v", options)
    if variant == "n2v2":
        if network.arch != "unet":
            raise ParameterError("--variant n2v2 needs --arch unet (blur-pool, no top skip)")
        network = n2v2_network_config(network)
    _train_config(dict(options))
    with flag_names(FLAGS):
        parse_blind_spot(options["blind_spot"])  # refuse a bad value before reading data
    volumes = volume_single_inputs(
        options["images"], mask=options["mask"], max_files=options["max_micrographs"]
    )
    if volumes is not None:  # tomograms: a 3D network, the blind spot from their noise
        with flag_names(FLAGS):  # auto: the measured voxel SNR decides the variant
            scheme, snr = volume_scheme(
                volumes.dataset.volumes, variant=chosen,
                blind_spot=options["blind_spot"] or "auto", **_given(loss=options["loss"]),
            )  # fmt: skip
        if snr is not None:
            options["volume_snr"] = round(snr, 4)
        options["variant"] = scheme.name
        network = _network_config("n2v", {**options, "dims": 3}).replace(**scheme.network_tweaks)
        options["blind_spot"] = scheme.blind_spot.spec
        _run(scheme, volumes.dataset, network, options, volumes.summary, volumes.preview)
        return
    options["variant"] = variant
    inputs = single_inputs(options["images"], max_micrographs=options["max_micrographs"])
    inputs = with_sample_masks(inputs, options["mask"])
    with flag_names(FLAGS):  # the noise of the training images decides the blind spot
        scheme = (N2V2 if variant == "n2v2" else Noise2Void).for_images(
            inputs.dataset.images, blind_spot=options["blind_spot"], **_given(loss=options["loss"])
        )
    options["blind_spot"] = scheme.blind_spot.spec
    _run(scheme, inputs.dataset, network, options, inputs.summary, inputs.preview)


def _ne2ne(options: dict[str, Any]) -> None:
    network = _network_config("ne2ne", options)
    _train_config(dict(options))
    given = _given(loss=options["loss"], input_image=options["input_image"])
    with flag_names(FLAGS):
        Neighbor2Neighbor(**given)  # refuse bad options before reading data
    inputs = single_inputs(options["images"], max_micrographs=options["max_micrographs"])
    inputs = with_sample_masks(inputs, options["mask"])
    with flag_names(FLAGS):
        scheme = Neighbor2Neighbor(**given)
    options["input_image"] = scheme.input_image
    inputs.summary["noise_correlation"] = noise_check(inputs.dataset.images, "Neighbor2Neighbor")
    _run(scheme, inputs.dataset, network, options, inputs.summary, inputs.preview)


n2n = _subcommand(
    "n2n",
    """Noise2Noise: learn to predict one noisy image of a pair from the other.

Example:

    cryoden train n2n --a pairs/even --b pairs/odd --out model/ --steps 5000

Pairs are files of the same name in --a and --b, e.g. the even and odd frame sums of
cryoden split-frames, or the rlnMicrographNameEven/Odd columns of a RELION STAR file
(--star, paths relative to the folder it runs in, the RELION project). The model is written
to --out with a preview.png (raw | denoised).

Tomograms train a 3D network (the data decides): --a/--b folders of even and odd half
tomograms, or --star tomograms.star of RELION 5 (its rlnTomoReconstructedTomogramHalf1/Half2).
Patches come from inside the sample (local variance; never vacuum or the edges).""",
    _pair_options("n2n"),
    _pairs("n2n"),
)
care = _subcommand(
    "care",
    """CARE: supervised training on noisy images with clean targets (the reference).

Example:

    cryoden train care --a sim/snr_0.1000/a --b sim/clean --out care/ --steps 5000

The supervised ceiling that the self-supervised schemes are measured against: it needs clean
targets, which real micrographs do not have, so it is for simulated data (cryoden simulate
writes clean/ beside each SNR's a/ and b/). The intensity normalisation is fitted on the noisy
input only, so the output comes back in the input's intensity scale.""",
    _pair_options("care"),
    _pairs("care"),
)
n2v = _subcommand(
    "n2v",
    f"""Noise2Void: blind-spot training from single noisy images.

Example:

    cryoden train n2v --images micrographs/ --out n2v.safetensors --steps 2000
    cryoden train n2v --images micrographs/ --out n2v/ --blind-spot structured:1,1 --mask auto

A single micrograph trains too: validation then uses held-out patches of it.

The blind spot follows the noise: by default (--blind-spot auto) the noise correlation of the
training images is measured along x and y, and where adjacent pixels' noise correlates, the
blind spot masks a box around each masked pixel reaching as far along each axis as the noise
correlates (structured:X,Y), so that the network cannot learn to copy correlated noise; white
noise keeps the plain one-pixel blind spot. The choice and the measured correlation are stored
in the model (cryoden models info shows them).

Tomograms (--images of volumes, or a RELION 5 tomograms.star) train a 3D network with a blind
spot chosen from their noise correlation along x, y and z (structured:X,Y,Z). --variant auto
chooses from their voxel SNR, measured on xy sections: N2V2 below {VOLUME_N2V_MIN_SNR:g} (no top
skip, so the weak back-projected noise correlations beyond the blind spot do not pass straight
through), plain N2V from {VOLUME_N2V_MIN_SNR:g} (its top skip keeps the fine detail a less noisy
tomogram has). --mask auto (their default: local variance), none, or one MRC mask.""",
    {
        **IMAGES,
        "variant": (
            str,
            typer.Option(
                "auto",
                "--variant",
                help="n2v (Krull 2019), n2v2 (blur-pool, no top skip, median) or auto (n2v "
                "for images; for volumes, chosen from their measured SNR).",
                callback=choice("--variant", ("auto", "n2v", "n2v2")),
            ),
        ),
        "blind_spot": (
            str,
            typer.Option(
                "auto", "--blind-spot", metavar="SPOT", help=f"The blind spot: {BLIND_SPOT_HELP}.",
            ),
        ),
    },  # fmt: skip
    _n2v,
)
ne2ne = _subcommand(
    "ne2ne",
    """Neighbor2Neighbor: sub-sampled neighbour pairs from single noisy images.

Example:

    cryoden train ne2ne --images micrographs/ --out ne2ne/ --steps 2000

Pairs of neighbouring sub-images at half size (from the 2x2 cells of each image) carry
independent noise: the network learns to predict one from the other.""",
    {
        **IMAGES,
        "input_image": (
            str,
            typer.Option(
                None,
                "--input-image",
                help="What the network sees of each 2x2 cell: cell-mean (the mean of the three "
                "pixels other than the target's) or neighbour (one pixel, Huang et al. 2021)"
                + _default(_DEFAULT_INPUT_IMAGE)
                + ".",
            ),
        ),
    },  # fmt: skip
    _ne2ne,
)

#: The ``cryoden train`` subcommands, in --help order.
COMMANDS: dict[str, Callable[..., None]] = {"n2n": n2n, "n2v": n2v, "ne2ne": ne2ne, "care": care}
