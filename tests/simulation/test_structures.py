"""Reading atomic models (PDB / mmCIF, gzipped or not) with gemmi."""

from __future__ import annotations

import gzip
import shutil

import gemmi
import numpy as np
import pytest

from cryoden.errors import InputFileError
from cryoden.simulation.structures import Atoms, read_atoms

# (residue, het flag, atom name, element, x, y, z)
_ATOMS = [
    ("ALA", "A", "N", "N", 1.0, 2.0, 3.0),
    ("ALA", "A", "CA", "C", 2.4, 2.0, 3.0),
    ("ALA", "A", "C", "C", 3.0, 3.4, 3.0),
    ("ALA", "A", "O", "O", 2.3, 4.4, 3.1),
    ("ALA", "A", "CB", "C", 2.9, 1.2, 1.8),
    ("ALA", "A", "H", "H", 0.5, 2.5, 3.0),
    ("MG", "H", "MG", "Mg", 8.0, 8.0, 8.0),
    ("HOH", "H", "O", "O", -5.0, -5.0, -5.0),
]


def _structure() -> gemmi.Structure:
    st = gemmi.Structure()
    model = gemmi.Model("1")
    chain = gemmi.Chain("A")
    for seq, (res_name, het, name, element, x, y, z) in enumerate(_ATOMS, start=1):
        residue = gemmi.Residue()
        residue.name = res_name
        residue.seqid = gemmi.SeqId(seq, " ")
        residue.het_flag = het
        atom = gemmi.Atom()
        atom.name = name
        atom.element = gemmi.Element(element)
        atom.pos = gemmi.Position(x, y, z)
        atom.b_iso = 20.0 + seq
        atom.occ = 1.0
        residue.add_atom(atom)
        chain.add_residue(residue)
    model.add_chain(chain)
    st.add_model(model)
    st.setup_entities()
    return st


@pytest.fixture
def pdb_path(tmp_path):
    path = tmp_path / "tiny.pdb"
    _structure().write_pdb(str(path))
    return path


@pytest.fixture
def cif_path(tmp_path):
    path = tmp_path / "tiny.cif"
    _structure().make_mmcif_document().write_file(str(path))
    return path


def _gzip(path):
    out = path.with_name(path.name + ".gz")
    with path.open("rb") as src, gzip.open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


@pytest.mark.parametrize("fmt", ["pdb", "cif"])
@pytest.mark.parametrize("compressed", [False, True])
def test_reads_pdb_and_mmcif_plain_or_gzipped(fmt, compressed, pdb_path, cif_path):
    path = pdb_path if fmt == "pdb" else cif_path
    if compressed:
        path = _gzip(path)
    atoms = read_atoms(path)
    assert isinstance(atoms, Atoms)
    # waters and hydrogens skipped, the Mg ion (HETATM) kept
    assert atoms.elements.tolist() == ["N", "C", "C", "O", "C", "Mg"]
    np.testing.assert_allclose(atoms.coords_angstrom[0], [1.0, 2.0, 3.0], atol=1e-3)
    np.testing.assert_allclose(atoms.coords_angstrom[-1], [8.0, 8.0, 8.0], atol=1e-3)
    assert atoms.b_factors is not None and atoms.b_factors[0] == pytest.approx(21.0)
    assert atoms.source == str(path)


def test_selection_options(pdb_path):
    assert len(read_atoms(pdb_path, include_hetatm=False)) == 5
    assert len(read_atoms(pdb_path, skip_hydrogens=False)) == 7
    assert len(read_atoms(pdb_path, skip_waters=False)) == 7


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="file not found") as info:
        read_atoms(tmp_path / "nope.pdb")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("garbage.cif", b"\x00\x01binary junk\xff" * 20, "cannot read as a PDB or mmCIF model"),
        ("empty.pdb", b"", "no atoms"),
        ("text.pdb", b"hello\nthis is not a structure\n", "no atoms"),
        ("nomodel.cif", b"data_x\n_cell.length_a 10\n", "no atoms"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=message) as info:
        read_atoms(path)
    assert str(info.value).startswith(str(path) + ": ")
    assert "\n" not in str(info.value)


def test_reads_1aon(shared_data):
    path = shared_data / "groel" / "1AON.pdb.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    protein = read_atoms(path, include_hetatm=False)
    assert len(protein) == 58_674  # the ATOM records (SOURCES.md)
    everything = read_atoms(path)
    assert len(everything) == 58_674 + 196  # + HETATM: 7 ADP (189 atoms) and 7 Mg
    assert everything.element_counts()["Mg"] == 7
