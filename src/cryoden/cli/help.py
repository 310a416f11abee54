"""How ``--help`` looks: boolean flags shown without a value, and each command's module docstring
(with its ``Example:`` block) as its help text.

Help text is rendered with rich markup (``rich_markup_mode="rich"``): single line breaks after the
first paragraph survive, so example command lines stay one per line, and a literal bracket must
be written ``\\[`` (as in ``pip install 'cryoden\\[onnx]'``) or rich takes it for a style tag.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any, Literal

from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

#: typer's rendering of help text (rich markup; see the module docstring).
MARKUP_MODE: Literal["rich"] = "rich"


def _flags_without_value(params: list[Any]) -> list[Any]:
    """``params`` with every boolean flag (``--resume``, ``--polyphase/--no-polyphase``,
    ``--help``) given an empty value label, so that help shows ``--resume``, not
    ``--resume <bool>``; other options keep theirs."""
    for param in params:
        # typer's options are its own (vendored click) classes: test the attribute itself.
        if getattr(param, "is_flag", False) and getattr(param, "metavar", "") is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A typer command whose help shows boolean flags as flags."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_value(super().get_params(ctx))


class Group(TyperGroup):
    """A typer group whose help shows boolean flags as flags."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_value(super().get_params(ctx))


def help_text(docstring: str | None) -> str:
    """A docstring as help text: reST literal markers (``::``, double backquotes) dropped,
    brackets escaped from rich markup, prose paragraphs joined into one line each (the terminal
    wraps them) and indented blocks (examples) kept line by line."""
    text = inspect.cleandoc(docstring or "").replace("::\n", ":\n").replace("``", "")
    paragraphs = [
        block if block.startswith((" ", "\t")) else " ".join(block.split())
        for block in text.split("\n\n")
    ]
    return escape("\n\n".join(paragraphs))


def command_help(docstring: str | None) -> dict[str, Any]:
    """The keyword arguments of ``app.command`` that make ``docstring`` (summary line,
    ``Example:`` block, details) the command's help and show its flags as flags."""
    return {"help": help_text(docstring), "cls": Command}


def module_help(module: ModuleType) -> dict[str, Any]:
    """:func:`command_help` of ``module``'s docstring."""
    return command_help(module.__doc__)
