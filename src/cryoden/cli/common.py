"""Shared CLI plumbing: logging handlers, progress bars, provenance files, option checks and
error reporting.

Only the CLI layer configures logging handlers and draws progress bars; libraries report
progress through a ``progress(done, total)`` callback. Library errors name parameters
(``tile``); :func:`flag_names` rewords them with the command's flags (``--tile``). Numeric
options are checked as they are parsed (:func:`number`, :func:`device_option`), before any work.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import logging
import math
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
from cryoden.errors import CryodenError, InputFileError, OutputFileError, ParameterError
from cryoden.io.atomic import atomic_output, make_output_folder

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
        raise ParameterError(with_flags(str(exc), flags)) from exc


def with_flags(text: str, flags: dict[str, str]) -> str:
    """``text`` with each parameter name of ``flags`` (a whole word) replaced by its flag, as
    :func:`flag_names` does for errors (for a library's warnings, say)."""
    names = sorted(flags, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])")
    return pattern.sub(lambda m: flags[m.group(1)], text)


def _earlier_runs(path: Path) -> list[Any]:
    """The records of earlier runs kept in the provenance file ``path`` (oldest first)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise OutputFileError(path, f"cannot read the earlier provenance record ({exc})") from None
    try:
        record = json.loads(text)
    except ValueError:
        return [{"unreadable_record": text}]  # kept as it was, never dropped
    if not isinstance(record, dict):
        return [record]
    earlier = record.pop("earlier_runs", [])
    return [*(earlier if isinstance(earlier, list) else [earlier]), record]


def write_provenance(out_dir: Path, command: str, parameters: dict[str, Any]) -> Path:
    """Write ``cryoden_provenance.json`` into ``out_dir``, atomically.

    The file holds this run's record at its top level and, under ``"earlier_runs"`` (oldest
    first), the records of earlier runs into the same folder, so that a second run into a
    folder does not lose the first run's provenance.
    """
    path = Path(out_dir) / PROVENANCE_NAME
    record = provenance(command, parameters)
    earlier = _earlier_runs(path)
    if earlier:
        record["earlier_runs"] = earlier
    write_json_atomic(path, record)
    return path


def output_folder(folder: Path) -> Path:
    """Create the output folder ``folder`` (and its parents); one-line
    :class:`~cryoden.errors.OutputFileError` when it is a file, lies under one or cannot be
    made."""
    return make_output_folder(folder)


def check_output_folder(folder: Path) -> None:
    """Refuse, without creating anything, an output folder that is a file or lies under one
    (the one-line :class:`~cryoden.errors.OutputFileError` of :func:`output_folder`), so that
    a command can say so before it starts any work."""
    path = Path(folder)
    for candidate in (path, *path.parents):
        try:
            is_dir = candidate.is_dir()
            exists = is_dir or candidate.exists()
        except OSError:
            continue
        if not exists:
            continue
        if not is_dir:
            where = "is a file" if candidate == path else f"lies under the file {str(candidate)!r}"
            raise OutputFileError(path, f"output folder {where}")
        return


def _real(path: Path) -> str:
    """The canonical path of ``path``; never raises (a symlink loop stays as it is)."""
    return os.path.realpath(path)


def output_paths(inputs: Sequence[Path], out_dir: Path, suffix: str = ".mrc") -> list[Path]:
    """``OUTDIR/<input basename><suffix>``; refuses two inputs with the same basename and any
    output that would land on an input."""
    outs: list[Path] = []
    seen: dict[str, Path] = {}
    resolved_inputs = {_real(Path(p)) for p in inputs}
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
        if _real(out) in resolved_inputs:
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


class StdoutError(CryodenError):
    """Standard output could not be written (a closed pipe, a full disk)."""

    def __init__(self, exc: OSError) -> None:
        self.errno = exc.errno
        problem = exc.strerror or str(exc) or type(exc).__name__
        super().__init__(f"standard output: cannot write: {problem}")


def echo(text: str = "") -> None:
    """Print ``text`` on stdout; a failed write (closed pipe, full disk) becomes
    :class:`StdoutError`, which :func:`cryoden.cli.main.main` reports in one line."""
    try:
        sys.stdout.write(f"{text}\n")
        sys.stdout.flush()
    except OSError as exc:
        raise StdoutError(exc) from None


def silence_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's last flush of a broken
    stdout cannot print a traceback on the way out."""
    with _suppress_os_error():
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


@contextmanager
def _suppress_os_error() -> Iterator[None]:
    try:
        yield
    except (OSError, ValueError):
        pass


def is_broken_pipe(exc: StdoutError) -> bool:
    """Whether the reader of stdout went away (``| head``): Unix tools then exit quietly."""
    return exc.errno == errno.EPIPE


# ------------------------------------------------------------------------- option checks

#: Upper bound of a side in pixels (tile, patch, image size, window): beyond it an image of
#: float32 pixels alone would need tens of GiB, so such a value is a typo.
MAX_SIDE_PX = 65536
#: Upper bound of counts (batch, threads, images, epochs, steps).
MAX_COUNT = 10**7


def number(
    flag: str,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    odd: bool = False,
) -> Callable[[Any], Any]:
    """A typer option callback that refuses a value of ``flag`` that is NaN, infinite, below
    ``minimum``, not above ``above``, over ``maximum`` or (``odd``) even, with a one-line
    :class:`~cryoden.errors.ParameterError` before the command does any work. ``None`` (the
    option not given) passes."""

    def check(value: Any) -> Any:
        if value is None:
            return value
        check_number(flag, value, minimum=minimum, above=above, maximum=maximum, odd=odd)
        return value

    return check


def check_number(
    flag: str,
    value: float,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    odd: bool = False,
) -> None:
    """The check of :func:`number`, for a value already parsed."""
    low = minimum if above is None else above
    if low is not None and maximum is not None:
        allowed = f"in {'(' if above is not None else '['}{low:g}, {maximum:g}]"
    elif low is not None:
        allowed = f"{'>' if above is not None else '>='} {low:g}"
    elif maximum is not None:
        allowed = f"<= {maximum:g}"
    else:
        allowed = ""
    if odd:
        wanted = "an odd number" + (f" {allowed}" if allowed else "")
    else:
        wanted = allowed or "a finite number"
    if (
        not math.isfinite(value)
        or (minimum is not None and value < minimum)
        or (above is not None and not value > above)
        or (maximum is not None and value > maximum)
        or (odd and int(value) % 2 == 0)
    ):
        raise ParameterError(f"{flag} must be {wanted}, got {value!r}")


def available_devices() -> list[str]:
    """The torch devices this machine has: ``cpu``, and ``cuda``/``mps`` when present."""
    import torch

    names = ["cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def check_device(flag: str, value: str) -> str:
    """``value`` if it names a device this machine has; a one-line
    :class:`~cryoden.errors.ParameterError` listing the available ones otherwise."""
    import torch

    available = available_devices()
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError, TypeError):
        raise ParameterError(
            f"{flag}: unknown device {value!r}; available here: {', '.join(available)}"
        ) from None
    name = device.type if device.index is None else f"{device.type}:{device.index}"
    if name not in available or (device.type == "cpu" and device.index not in (None, 0)):
        raise ParameterError(
            f"{flag}: device {value!r} is not available on this machine; "
            f"available here: {', '.join(available)}"
        )
    return value


def device_option(flag: str = "--device") -> Callable[[Any], Any]:
    """A typer option callback for a device option (:func:`check_device`)."""

    def check(value: str | None) -> str | None:
        return None if value is None else check_device(flag, value)

    return check


def choice(flag: str, choices: Sequence[str]) -> Callable[[Any], Any]:
    """A typer option callback that refuses a value of ``flag`` outside ``choices``."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in choices:
            raise ParameterError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
        return value

    return check


def print_table(table: Any) -> None:
    """Print a rich table on stdout; a failed write becomes :class:`StdoutError`."""
    try:
        Console(file=sys.stdout).print(table)
        sys.stdout.flush()
    except OSError as exc:
        raise StdoutError(exc) from None
