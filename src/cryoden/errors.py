"""Exceptions shared by every layer.

User errors (bad files, bad parameters) raise :class:`CryodenError` or a subclass. Their message
is one line that names the offending file or option and the problem; the CLI prints it as is
and exits non-zero, without a traceback.
"""

from __future__ import annotations

from os import PathLike


def one_line(text: str) -> str:
    """``text`` with line breaks shown as ``\\n`` / ``\\r``, so that a message stays one line."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class CryodenError(Exception):
    """A user-facing error: bad input, bad parameter, unreadable model file."""

    def __str__(self) -> str:
        # A file name or a quoted library message may hold a line break; the line must not.
        return one_line(super().__str__())


class InputFileError(CryodenError):
    """A file that cannot be used: missing, truncated, wrong format, empty or NaN data."""

    def __init__(self, path: str | PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class OutputFileError(CryodenError):
    """An output that cannot be written: its folder is missing or a file, the file system is
    read-only or full, or permission is denied."""

    def __init__(self, path: str | PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ParameterError(CryodenError, ValueError):
    """A parameter outside its valid range (for example a cutoff outside (0, 1])."""


class DegenerateModelError(CryodenError):
    """Training ended with a model that is no denoiser (no better than predicting each patch's
    mean, or an inverted output); it was kept aside, not saved as the model."""

    def __init__(
        self, path: str | PathLike[str], reason: str, kept: str | PathLike[str] | None
    ) -> None:
        self.path = str(path)
        self.reason = reason
        self.kept = None if kept is None else str(kept)
        where = "discarded" if kept is None else f"kept as {self.kept}"
        super().__init__(
            f"{self.path}: training ended with a degenerate model ({reason}); it was not saved "
            f"as the model ({where}); try more steps, a lower learning rate, another seed, or "
            "Noise2Noise pairs"
        )
