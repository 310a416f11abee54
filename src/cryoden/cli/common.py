"""Shared CLI plumbing: logging handlers, progress bars, provenance files and error reporting.

Only the CLI layer configures logging handlers and draws progress bars; libraries report
progress through a ``progress(done, total)`` callback. Library errors name parameters
(``tile``); :func:`flag_names` rewords them with the command's flags (``--tile``).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cryoden import __version__
from cryoden.errors import CryodenError, InputFileError, ParameterError
from cryoden.io.atomic import atomic_output

#: Diagnostics go to stderr so stdout stays machine-readable (``evaluate --json``).
err_console = Console(stderr=True)

PROVENANCE_NAME = "cryoden_provenance.json"


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Send library log records to stderr through rich (the CLI owns the handlers)."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    root = logging.getLogger("cryoden")
    root.handlers.clear()
    handler = RichHandler(console=err_console, show_time=False, show_path=False, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


@contextmanager
def progress_bar(
    description: str, *, total: int | None = None, enabled: bool = True
) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr, yielded as a ``progress(done, total)`` callback."""
    if not enabled or not err_console.is_terminal and os.environ.get("CRYODEN_PROGRESS") != "1":
        # Non-interactive: log coarse progress instead of redrawing a bar.
        log = logging.getLogger("cryoden.cli")
        state = {"last": -1}

        def log_progress(done: int, total_: int) -> None:
            pct = int(100 * done / max(total_, 1))
            if pct // 10 != state["last"] // 10 or done == total_:
                state["last"] = pct
                log.info("%s: %d/%d", description, done, total_)

        yield log_progress
        return
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, total_: int) -> None:
            bar.update(task, completed=done, total=total_)

        yield update


def provenance(command: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Who made an output and how: version, argv, time, host, parameters."""
    import numpy
    import torch

    return {
        "cryoden_version": __version__,
        "command": command,
        "argv": list(sys.argv),
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "host": platform.node(),
        "parameters": {k: _jsonable(v) for k, v in parameters.items()},
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically
    (:func:`cryoden.io.atomic.atomic_output`)."""
    text = json.dumps(payload, indent=2) + "\n"
    with atomic_output(path) as tmp:
        tmp.write_text(text)


@contextmanager
def flag_names(flags: dict[str, str]) -> Iterator[None]:
    """Re-raise a :class:`ParameterError` from the block with each parameter name of ``flags``
    (a whole word, e.g. ``memory_mb``) replaced by its command-line flag (``--memory-mb``).

    Wrap only library calls whose errors are about those parameters (constructing a
    configuration), so that ordinary words in other messages stay as they are.
    """
    try:
        yield
    except ParameterError as exc:
        names = sorted(flags, key=len, reverse=True)
        pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])")
        raise ParameterError(pattern.sub(lambda m: flags[m.group(1)], str(exc))) from exc


def write_provenance(out_dir: Path, command: str, parameters: dict[str, Any]) -> Path:
    """Write ``cryoden_provenance.json`` into ``out_dir``."""
    path = Path(out_dir) / PROVENANCE_NAME
    write_json_atomic(path, provenance(command, parameters))
    return path


def output_paths(inputs: Sequence[Path], out_dir: Path, suffix: str = ".mrc") -> list[Path]:
    """``OUTDIR/<input basename><suffix>``; refuses two inputs with the same basename and any
    output that would land on an input."""
    outs: list[Path] = []
    seen: dict[str, Path] = {}
    resolved_inputs = {Path(p).resolve() for p in inputs}
    for path in inputs:
        stem = Path(path).name
        for ext in (".mrcs", ".mrc", ".map", ".tiff", ".tif"):
            if stem.lower().endswith(ext):
                stem = stem[: -len(ext)]
                break
        if stem in seen:
            raise InputFileError(
                path, f"has the same basename as {seen[stem]}; outputs would collide"
            )
        seen[stem] = Path(path)
        ext = ".mrcs" if Path(path).suffix.lower() == ".mrcs" and suffix == ".mrc" else suffix
        out = Path(out_dir) / f"{stem}{ext}"
        if out.resolve() in resolved_inputs:
            raise InputFileError(out, "is an input file; cryoden never overwrites its inputs")
        outs.append(out)
    return outs


def fail(message: str, code: int = 1) -> None:
    """Print one error line and exit."""
    # Plain write, not rich: the message must stay one line whatever the terminal width.
    sys.stderr.write(f"cryoden: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def run_guarded(func: Callable[[], Any]) -> Any:
    """Run ``func``; turn user errors into one line and a non-zero exit, without traceback."""
    try:
        return func()
    except CryodenError as exc:
        fail(str(exc).replace("\n", " "))
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    except MemoryError:
        fail("out of memory; try a smaller --tile or fewer images at once")
