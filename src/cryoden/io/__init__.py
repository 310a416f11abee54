"""File input/output: MRC/MRCS through mrcfile, PNG/TIFF previews, atomic writes."""

from cryoden.io.atomic import atomic_output
from cryoden.io.images import export_preview, to_uint8
from cryoden.io.mrc import (
    MrcData,
    check_not_protected,
    is_stack_path,
    probe_mrc,
    read_mrc,
    write_mrc,
)

__all__ = [
    "MrcData",
    "atomic_output",
    "check_not_protected",
    "export_preview",
    "is_stack_path",
    "probe_mrc",
    "read_mrc",
    "to_uint8",
    "write_mrc",
]
