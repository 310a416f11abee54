"""List the models shipped with cryoden: name, description, trained range, status.

Example::

    cryoden models list
    cryoden models list --json
    cryoden models info general

A shipped model denoises with no training (``cryoden denoise IN.mrc -o OUT/`` uses ``general``)
and is the recommended start for a model of your own data (``cryoden train n2n ... --init
general``). Each comes with a card, shown by ``cryoden models info NAME``: what it was trained
on, its trained range of pixel sizes and noise levels, the command that trained it, where its
measured quality is, and where not to trust it. Each model's files are checked against the
digests its card records before it is listed or used.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from cryoden.cli.common import echo
from cryoden.models.registry import ShippedModel, list_shipped


def _span(values: Any, unit: str = "") -> str:
    if isinstance(values, (list, tuple)) and len(values) == 2:
        return f"{values[0]:g}-{values[1]:g}{unit}"
    return "not recorded"


def range_line(model: ShippedModel) -> str:
    """The trained range in words: pixel sizes, SNRs and dimensions."""
    trained = model.trained_range
    dims = "2D images and stacks" if trained.dims == 2 else "3D volumes"
    return (
        f"pixel size {_span(trained.pixel_size_angstrom, ' Å')}, SNR {_span(trained.snr)}, {dims}"
    )


def card_lines(model: ShippedModel) -> list[str]:
    """A shipped model's card in a few lines (for ``cryoden models info NAME``)."""
    card = model.card
    data = card.get("training_data") or {}
    training = card.get("training") or {}
    sources = ", ".join(data.get("sources") or []) or "not recorded"
    count = data.get("n_pairs")
    size = data.get("image_size_px")
    amount = f"; {count} pairs of {size}² px" if count and size else ""
    noise = ", ".join(data.get("noise_models") or {}) or "not recorded"
    quality = f"docs/models/{model.name}.md (from benchmarks/results/ files of these weights)"
    lines = [
        f"shipped model:    {model.name}: {model.description}",
        f"status:           {card.get('status', 'not recorded')}",
        f"trained range:    {range_line(model)}",
        f"trained on:       {sources}{amount}",
        f"CTF, noise:       defocus {_span(data.get('defocus_um'), ' µm')}; {noise}",
        f"trained by:       {training.get('command', 'not recorded')}",
        f"measured quality: {quality}",
    ]
    lines += [f"do not trust it:  {item}" for item in card.get("not_to_trust") or []]
    return lines


def command(
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List the models shipped with cryoden: name, description, trained range, status."""
    models = list_shipped()
    if as_json:
        echo(
            json.dumps(
                [
                    {
                        "name": m.name,
                        "description": m.description,
                        "folder": str(m.folder),
                        "status": m.card.get("status"),
                        "trained_range": m.trained_range.to_dict(),
                    }
                    for m in models
                ],
                indent=2,
            )
        )
        return
    for m in models:
        echo(f"{m.name}: {m.description}")
        echo(f"    trained range: {range_line(m)}")
        echo(f"    status: {m.card.get('status', 'not recorded')}")
        echo(f"    use: cryoden denoise IN.mrc -o OUT/ --model {m.name}")
