"""Small formatters shared by the scripts that write docs/results.md (``make_results_doc.py``
and ``results_tomo.py``). Standard library only."""

from __future__ import annotations


def signed(x: float, digits: int = 2) -> str:
    """``x`` with its sign and a typographic minus: ``+1.20``, ``−0.35``."""
    return f"{x:+.{digits}f}".replace("-", "−")


def file_link(name: str, prefix: str = "../benchmarks/results/") -> str:
    """A Markdown link to the result file ``name``, labelled with its stem."""
    return f"[`{name.removesuffix('.json')}`]({prefix}{name})"
