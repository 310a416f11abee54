"""RELION External jobs: the files through which a job talks to RELION's pipeline.

RELION (4 and 5) runs an External job as ``EXECUTABLE --o JOBDIR/ --in_mics STAR ... --j N``
from its project folder and then watches ``JOBDIR``:

- ``RELION_JOB_EXIT_SUCCESS``, ``RELION_JOB_EXIT_FAILURE`` or ``RELION_JOB_EXIT_ABORTED``
  (empty files) say how the job ended; RELION removes old ones before it starts a job, and so
  does :meth:`RelionJobDir.start`;
- ``RELION_JOB_ABORT_NOW`` appears when the user presses *Abort*: the job stops at the next
  safe point and answers with ``RELION_JOB_EXIT_ABORTED``;
- ``RELION_OUTPUT_NODES.star`` declares the job's outputs (``data_output_nodes``: each file's
  path from the project folder in ``_rlnPipeLineNodeName`` and its node type in
  ``_rlnPipeLineNodeTypeLabel``), so that later jobs can take them as inputs. The type's first
  word is RELION's kind of data (``MicrographGroupMetadata`` for a micrographs STAR file); the
  rest says what made it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import starfile

from cryoden.io.atomic import atomic_output, make_output_folder

logger = logging.getLogger(__name__)

EXIT_SUCCESS = "RELION_JOB_EXIT_SUCCESS"
EXIT_FAILURE = "RELION_JOB_EXIT_FAILURE"
EXIT_ABORTED = "RELION_JOB_EXIT_ABORTED"
ABORT_NOW = "RELION_JOB_ABORT_NOW"
OUTPUT_NODES = "RELION_OUTPUT_NODES.star"
#: The exit markers, by how the job ended.
EXIT_MARKERS = {"success": EXIT_SUCCESS, "failure": EXIT_FAILURE, "aborted": EXIT_ABORTED}

#: Node type of a micrographs STAR file made by cryoden (RELION's kind, then the maker).
MICROGRAPHS_NODE = "MicrographGroupMetadata.star.cryoden"
#: Node type of a cryoden model file (RELION's generic kind of data).
MODEL_NODE = "ProcessData.safetensors.cryoden.model"


@dataclass(frozen=True)
class RelionJobDir:
    """An External job's folder (``--o``), in the RELION project ``project_dir`` (where
    RELION runs the job; the current folder by default)."""

    path: Path
    project_dir: Path

    @classmethod
    def at(cls, path: str | os.PathLike[str], project_dir: Path | None = None) -> RelionJobDir:
        """The job folder ``path`` (created if needed)."""
        folder = make_output_folder(path)
        return cls(folder, Path(os.path.abspath(project_dir or Path.cwd())))

    def start(self) -> None:
        """Remove the exit markers of an earlier run of this job (a *Continue*)."""
        for name in EXIT_MARKERS.values():
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()

    def abort_requested(self) -> bool:
        """Whether RELION asked the job to stop (``RELION_JOB_ABORT_NOW`` exists)."""
        return (self.path / ABORT_NOW).exists()

    def finish(self, how: str) -> Path:
        """Write the exit marker for ``how`` (``success``, ``failure`` or ``aborted``)."""
        marker = self.path / EXIT_MARKERS[how]
        with atomic_output(marker):
            pass
        logger.debug("wrote %s", marker)
        return marker

    def node_name(self, path: str | os.PathLike[str]) -> str:
        """``path`` as RELION names nodes: relative to the project folder when inside it."""
        absolute = os.path.abspath(path)
        try:
            return str(Path(absolute).relative_to(self.project_dir))
        except ValueError:
            return absolute

    def write_output_nodes(self, nodes: Sequence[tuple[str | os.PathLike[str], str]]) -> Path:
        """``RELION_OUTPUT_NODES.star`` declaring ``nodes`` (path, node type label)."""
        table = pd.DataFrame(
            {
                "rlnPipeLineNodeName": [self.node_name(path) for path, _ in nodes],
                "rlnPipeLineNodeTypeLabel": [label for _, label in nodes],
            }
        )
        target = self.path / OUTPUT_NODES
        with atomic_output(target) as tmp:
            starfile.write({"output_nodes": table}, tmp)
        return target
