"""Describe a model file: architecture, parameters, FLOPs per pixel, receptive field, training.

Example::

    cryoden models info model/
    cryoden models info n2v.safetensors --json
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cryoden.cli.common import echo
from cryoden.models import load_model


def command(
    model: Path = typer.Argument(..., metavar="MODEL", help="Model folder or .safetensors file."),
    as_json: bool = typer.Option(False, "--json", help="Print the description as JSON."),
) -> None:
    """Print a model's architecture, parameter count and FLOPs per pixel."""
    loaded = load_model(model)
    info = loaded.describe()
    if as_json:
        echo(json.dumps(info, indent=2))
        return
    net = info["network"]
    training = info.get("training", {})
    lines = [
        f"model:           {info['path']}",
        f"architecture:    {net['arch']} ("
        + ", ".join(f"{k}={v}" for k, v in net.items() if k != "arch")
        + ")",
        f"scheme:          {info['scheme']}"
        + "".join(f", {k}={v}" for k, v in info.get("scheme_options", {}).items()),
        f"parameters:      {info['parameters']:,}",
        f"FLOPs per pixel: {info['flops_per_pixel']:,.0f} "
        f"({info['flops_per_pixel'] * 4096**2 / 1e12:.2f} TFLOP for a 4096² micrograph)",
        f"receptive field: {info['receptive_field_px']} px",
        f"normalisation:   {info['normalization']}",
        f"cryoden version: {info['cryoden_version']} (format {info['format_version']})",
    ]
    for key in ("data", "stopped", "best_epoch", "best_validation_loss", "epochs_run"):
        if key in training:
            lines.append(f"training {key}: {training[key]}")
    echo("\n".join(lines))
    echo(f"\n{loaded.network}")
