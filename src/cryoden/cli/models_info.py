"""Summarise a model file: scheme, network, size, cost, training data and budget.

Example::

    cryoden models info model/
    cryoden models info general
    cryoden models info n2v.safetensors --verbose
    cryoden models info n2v.safetensors --json

The summary gives the training scheme; the network (architecture, widths, depth, space-to-depth,
padding); its parameters and size on disk; its cost in FLOP per pixel (one multiply-add counts
2) and receptive field in pixels; the training data (images, shapes, validation); the budget it
got (optimiser steps and epochs of those planned, why it stopped, wall seconds, CPU threads); and
its best validation loss beside the loss of predicting the mean. A blind-spot model (Noise2Void)
also shows its blind spot and the noise correlation of its training images (lags 1-3 along x and
y) that the blind spot was chosen from; a Neighbor2Neighbor model the measured correlation. ``--verbose`` adds the full
network (the module tree); ``--json`` prints everything as one JSON object. A shipped model's
name (``cryoden models list``) shows its card too: what it was trained on, its trained range, the
command that trained it and where not to trust it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from cryoden.cli.common import echo
from cryoden.cli.models_list import card_lines
from cryoden.models import load_model
from cryoden.models.files import CONFIG_NAME, WEIGHTS_NAME
from cryoden.models.registry import resolve_model, shipped_model_at
from cryoden.training.blind_spot import parse_blind_spot

#: Scheme options shown on lines of their own rather than beside the scheme.
OWN_LINES = ("blind_spot", "noise_correlation")

#: Network fields shown in the summary, in order, with their labels.
NETWORK_FIELDS = {
    "base_channels": "base channels",
    "depth": "depth",
    "kernel_size": "kernel",
    "space_to_depth": "space-to-depth",
    "padding": "padding",
}


def size_on_disk_bytes(path: Path) -> int:
    """Bytes of a single-file model, or of a model folder's config and weights (not its
    checkpoint, training log or preview)."""
    path = Path(path)
    if path.is_dir():
        files = [path / CONFIG_NAME, path / WEIGHTS_NAME]
        return sum(p.stat().st_size for p in files if p.is_file())
    return path.stat().st_size


def _bytes(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} B"


def _number(value: Any) -> str:
    return f"{value:.5g}" if isinstance(value, float) else str(value)


def _data_line(training: dict[str, Any]) -> str:
    data = training.get("data") or {}
    count = data.get("n_images", data.get("n_pairs"))
    what = "pairs" if "n_pairs" in data else "images"
    parts = [f"{count} {what}"] if count is not None else []
    if data.get("shapes"):
        parts.append("shapes " + ", ".join("x".join(map(str, s)) for s in data["shapes"]))
    if training.get("validation"):
        parts.append(f"validation: {training['validation']}")
    return "; ".join(parts) or "not recorded"


def _budget_line(training: dict[str, Any]) -> str:
    if "steps" not in training and "epochs_run" not in training and "epochs" not in training:
        return "not recorded"
    parts = []
    if training.get("steps") is not None:
        planned = training.get("planned_steps")
        parts.append(f"{training['steps']}" + (f" of {planned}" if planned else "") + " steps")
    epochs = training.get("epochs", training.get("epochs_run"))
    if epochs is not None:
        parts.append(f"{epochs} epochs")
    if training.get("stopped"):
        parts.append(f"stopped by {training['stopped']}")
    if training.get("wall_seconds") is not None:
        parts.append(f"{training['wall_seconds']:.0f} s")
    if training.get("threads") is not None:
        parts.append(f"{training['threads']} threads")
    return ", ".join(parts)


def blind_spot_lines(options: dict[str, Any], training: dict[str, Any]) -> list[str]:
    """The blind spot of a model's ``scheme_options`` and the measured noise correlation of its
    training images (from its scheme options, else its training data record); none for a model
    without them."""
    lines = []
    if "blind_spot" in options:
        text = str(options["blind_spot"])
        try:
            spot = parse_blind_spot(text)
            words = f"{text} ({spot.describe()})" if spot is not None else text
        except ValueError:  # a blind spot this cryoden does not know: shown as recorded
            words = text
        lines.append(f"blind spot:       {words}")
    correlation = options.get("noise_correlation")
    if correlation is None:
        correlation = (training.get("data") or {}).get("noise_correlation")
    if isinstance(correlation, dict):
        axes = "; ".join(
            f"{axis} " + ", ".join(f"{float(v):.3f}" for v in correlation.get(axis) or [])
            for axis in ("x", "y", "z")
            if axis in correlation
        )
        data = "training volumes" if "z" in correlation else "training images"
        lines.append(f"noise:            correlation {axes} (lags 1, 2, ...; {data})")
    return lines


def summary_lines(info: dict[str, Any], size_bytes: int) -> list[str]:
    """The summary of :meth:`cryoden.models.LoadedModel.describe`'s ``info``, one item a line."""
    net = info["network"]
    training = info.get("training") or {}
    parts = [f"{label} {net[key]}" for key, label in NETWORK_FIELDS.items() if key in net]
    parts += ["blur-pool"] * bool(net.get("blurpool")) + ["no top skip"] * (
        not net.get("top_skip", True)
    )
    layout = ", ".join(parts)
    scheme_options = info.get("scheme_options") or {}
    options = "".join(f", {k}={v}" for k, v in scheme_options.items() if k not in OWN_LINES)
    loss = training.get("best_validation_loss")
    baseline = training.get("baseline_validation_loss")
    loss_text = "not recorded" if loss is None else _number(loss)
    if loss is not None and baseline is not None:
        loss_text += f" (predicting the mean: {_number(baseline)})"
    flops = info["flops_per_pixel"]
    return [
        f"model:            {info['path']}",
        f"scheme:           {info['scheme']}{options}",
        *blind_spot_lines(scheme_options, training),
        f"network:          {net['arch']} ({layout})",
        f"parameters:       {info['parameters']:,} ({_bytes(size_bytes)} on disk)",
        f"FLOP per pixel:   {flops:,.0f} ({flops * 4096**2 / 1e12:.2f} TFLOP per 4096² image)",
        f"receptive field:  {info['receptive_field_px']} px",
        f"training data:    {_data_line(training)}",
        f"training budget:  {_budget_line(training)}",
        f"validation loss:  {loss_text}",
        f"cryoden version:  {info['cryoden_version']} (format {info['format_version']})",
    ] + [f"warning:          {w}" for w in training.get("warnings") or []]


def command(
    model: Path = typer.Argument(
        ..., metavar="MODEL", help="Model folder or .safetensors file, or a shipped model's name."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the description as JSON."),
    verbose: bool = typer.Option(
        False, "--verbose", help="Also print the full network (the module tree)."
    ),
) -> None:
    """Summarise a model: scheme, network, size, FLOP per pixel, training data and budget."""
    model = resolve_model(model)  # a shipped model's name -> its folder
    shipped = shipped_model_at(model)
    loaded = load_model(model)
    info = loaded.describe()
    info["size_on_disk_bytes"] = size_on_disk_bytes(model)
    if shipped is not None:
        info["card"] = shipped.card
    if as_json:
        echo(json.dumps(info, indent=2))
        return
    echo("\n".join(summary_lines(info, info["size_on_disk_bytes"])))
    if shipped is not None:
        echo("\n" + "\n".join(card_lines(shipped)))
    if verbose:
        echo(f"\n{loaded.network}")
