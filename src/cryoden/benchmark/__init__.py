"""The seed study in one call: every method at every SNR, scored, tabulated and reported.

``study`` defines the settings (:class:`StudyConfig`, presets ``tiny``/``quick``/``full``) and
the method names; ``runner`` runs the (method, SNR) cells resumably and writes ``results.json``;
``figures``, ``findings`` and ``report`` turn ``results.json`` into PNG figures, a plain-language
reading, ``report.html`` and ``report.md``.
"""

from cryoden.benchmark.study import (
    LEARNED_METHODS,
    METHOD_NAMES,
    PRESETS,
    StudyConfig,
    default_methods,
    parse_methods,
    preset,
)

__all__ = [
    "LEARNED_METHODS",
    "METHOD_NAMES",
    "PRESETS",
    "StudyConfig",
    "default_methods",
    "parse_methods",
    "preset",
]
