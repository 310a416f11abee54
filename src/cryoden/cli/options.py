"""Option declarations shared by the commands, and factories for the common kinds of option.

Each factory returns a ``typer.Option`` whose value is checked as it is parsed (a one-line error
naming the flag before any work); options default to ``None`` so that the library fills in its
own defaults, which the help text states.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import typer

from cryoden.cli.common import MAX_COUNT, MAX_SIDE_PX, choice, device_option, number


def number_option(
    flag: str,
    help_text: str,
    *,
    default: Any = None,
    show_default: bool = True,
    **bounds: Any,
) -> Any:
    """A numeric option ``flag`` checked by :func:`cryoden.cli.common.number` with ``bounds``
    (``minimum``, ``above``, ``maximum``, ``odd``)."""
    return typer.Option(
        default, flag, help=help_text, show_default=show_default, callback=number(flag, **bounds)
    )


def count_option(flag: str, help_text: str, **kwargs: Any) -> Any:
    """A count option ``flag`` in ``[1, MAX_COUNT]``."""
    return number_option(flag, help_text, minimum=1, maximum=MAX_COUNT, **kwargs)


def side_option(flag: str, help_text: str, **kwargs: Any) -> Any:
    """A side length in pixels, in ``[1, MAX_SIDE_PX]`` (``odd=True``: odd only)."""
    return number_option(flag, help_text, minimum=1, maximum=MAX_SIDE_PX, **kwargs)


def choice_option(
    flag: str, help_text: str, choices: Sequence[str], *, default: Any = None, **kwargs: Any
) -> Any:
    """An option ``flag`` whose value must be one of ``choices``."""
    return typer.Option(
        default, flag, help=help_text, callback=choice(flag, tuple(choices)), **kwargs
    )


def no_preview_option(what: str) -> Any:
    """``--no-preview``: skip the small PNG of ``what`` (raw beside processed, same contrast)."""
    return typer.Option(
        False, "--no-preview", help=f"Do not write the preview PNG ({what}, same contrast)."
    )


def option_parameter(name: str, annotation: Any, option: Any) -> inspect.Parameter:
    """A keyword parameter ``name: annotation = option`` for a command signature built in code
    (typer reads options from the signature)."""
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation
    )


#: --threads: CPU threads for torch.
THREADS = number_option("--threads", "CPU threads for torch.", minimum=1, maximum=1024)
#: --device: a torch device this machine has.
DEVICE = typer.Option(
    None,
    "--device",
    help="cpu, cuda, cuda:1, mps; one this machine has (default: best available).",
    callback=device_option("--device"),
)
#: IN...: the MRC inputs of a batch command (denoise, filter).
INPUTS = typer.Argument(..., metavar="IN...", help="MRC images or stacks.")
#: -o/--output OUTDIR: the output folder of a batch command.
OUTPUT_DIR = typer.Option(..., "--output", "-o", metavar="OUTDIR", help="Output folder.")
