"""The documentation tells the truth: generated pages are up to date, results carry their
provenance, and the README's Python example runs."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from cryoden.models import ModelConfig, save_model
from cryoden.nets import NetworkConfig, build_network

REPO = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_results_doc", REPO / "scripts" / "make_results_doc.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator():
    return _generator()


def test_results_page_is_what_the_json_files_generate(generator):
    runs = generator.load_runs()
    assert (REPO / "docs" / "results.md").read_text(encoding="utf-8") == generator.results_page(
        runs
    ), "docs/results.md is out of date: run python scripts/make_results_doc.py"


def test_readme_results_table_is_what_the_json_files_generate(generator):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme == generator.readme_with_headline(readme, generator.load_runs()), (
        "README.md's results table is out of date: run python scripts/make_results_doc.py"
    )


def test_every_result_file_records_version_commit_machine_and_command(generator):
    runs = generator.load_runs()  # raises when a file lacks one of the four
    assert runs
    for name, run in runs.items():
        provenance = run["provenance"]
        for key in generator.REQUIRED:
            assert isinstance(provenance[key], str) and provenance[key].strip(), (name, key)
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", provenance["git_commit"]), name
        reconstructed = set(provenance.get("reconstructed", []))
        assert reconstructed <= {*provenance, "results"}, name
        if reconstructed:
            assert provenance.get("reconstruction_note"), name


def test_generator_refuses_a_result_without_provenance(generator, tmp_path):
    (tmp_path / "bare.json").write_text('{"rows": []}')
    with pytest.raises(ValueError, match="provenance lacks"):
        generator.load_runs(tmp_path)


def _readme_python_example() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_python_example_denoises_an_array(tmp_path, one_thread):
    code = _readme_python_example()
    assert len(code.strip().splitlines()) <= 5
    config = NetworkConfig(depth=2, base_channels=4)
    model = save_model(tmp_path / "model", build_network(config), ModelConfig(network=config))
    noisy = np.random.default_rng(0).normal(size=(40, 36)).astype(np.float32)
    np.save(tmp_path / "noisy.npy", noisy)
    code = code.replace('"model/"', repr(str(model))).replace(
        '"noisy.npy"', repr(str(tmp_path / "noisy.npy"))
    )
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    clean = namespace["clean"]
    assert clean.shape == noisy.shape and clean.dtype == np.float32
    assert np.isfinite(clean).all()
