"""The seed study in one call: every method at every SNR, scored, tabulated and reported.

``registry`` holds one record per compared method; ``study`` defines the settings
(:class:`StudyConfig`, presets ``tiny``/``quick``/``full``); ``runner`` runs the (method, SNR)
cells resumably and writes ``results.json``; ``figures``, ``findings`` and ``report`` turn
``results.json`` into PNG figures, a plain-language reading, ``report.html`` and ``report.md``.
"""

from cryoden.benchmark.registry import (
    LEARNED_METHODS,
    METHOD_NAMES,
    METHODS,
    StudyMethod,
    default_methods,
    get_method,
    parse_methods,
)
from cryoden.benchmark.study import PRESETS, StudyConfig, preset

__all__ = [
    "LEARNED_METHODS",
    "METHODS",
    "METHOD_NAMES",
    "PRESETS",
    "StudyConfig",
    "StudyMethod",
    "default_methods",
    "get_method",
    "parse_methods",
    "preset",
]
