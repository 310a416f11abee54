"""The report is made from results.json (+ montage.npz) alone, is self-contained and renders."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from cryoden.benchmark.findings import findings
from cryoden.benchmark.report import read_results, write_report
from cryoden.errors import InputFileError


def test_report_files_and_figures(fake_report):
    out = fake_report["results"].parent
    assert fake_report["html"] == out / "report.html" and fake_report["md"] == out / "report.md"
    results = json.loads(fake_report["results"].read_text())
    expected = {"psnr_vs_snr.png", "cc_vs_snr.png", "ssim_vs_snr.png", "montage.png"}
    expected |= {f"frc_{m}.png" for m in results["methods"]}
    written = {p.name for p in (out / "figures").glob("*.png")}
    assert expected <= written
    for name in written:
        with Image.open(out / "figures" / name) as image:
            assert image.format == "PNG" and min(image.size) > 100


def test_html_is_self_contained(fake_report):
    html = fake_report["html"].read_text()
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html
    n_figures = len(list((fake_report["results"].parent / "figures").glob("*.png")))
    assert html.count("<img ") == n_figures  # every figure embedded once


def test_numbers_come_from_results(fake_report):
    results = json.loads(fake_report["results"].read_text())
    row = next(r for r in results["results"] if r["method"] == "n2n-seed5" and r["snr_index"] == 3)
    shown = f"{row['psnr']:.2f}"
    cc = f"{row['cc']:.3f}"
    for key in ("html", "md"):
        text = fake_report[key].read_text()
        assert shown in text and cc in text


def test_report_regenerates_from_results_json_alone(fake_report, tmp_path):
    """Only results.json in an empty folder: a complete report, less the montage."""
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(fake_report["results"], alone / "results.json")
    paths = write_report(alone / "results.json")
    html = paths["html"].read_text()
    assert "Reading of the results" in html and "frc_n2n-seed5.png" in html
    assert "montage.png" not in html
    assert html.count("<img ") == len(list((alone / "figures").glob("*.png")))


def test_markdown_tables_and_links(fake_report):
    md = fake_report["md"].read_text()
    assert "](figures/psnr_vs_snr.png)" in md
    assert "| method \\ SNR | 0.01 | 0.06444 |" in md
    assert "noisy (input)" in md


def test_findings_speak_about_the_study_questions(make_fake_results):
    text = " ".join(findings(make_fake_results()))
    assert "Best by PSNR" in text
    assert "Depth study: n2n-seed5" in text
    assert "correlates better with the clean image than the noisy image" in text
    assert "lowpass-0.001" in text
    assert "calibrated filter" in text
    assert "oracle-free filters" in text
    assert "n2n-seed5 beats lowpass-0.05" in text


def test_findings_follow_the_numbers(make_fake_results):
    results = make_fake_results()
    for row in results["results"]:
        if row["method"] == "n2n-seed4":
            row["psnr"] += 5.0
    text = " ".join(findings(results))
    assert "the 4-level network is clearly better" in text


def test_ceiling_gap_is_stated_per_method_and_snr(make_fake_results, tmp_path):
    results = make_fake_results()
    psnr = {(r["method"], r["snr_index"]): r["psnr"] for r in results["results"]}
    text = " ".join(findings(results))
    gap = psnr[("n2n-unet", 2)] - psnr[("supervised", 2)]
    assert f"n2n-unet is {abs(gap):.2f} dB below supervised at SNR 0.1189" in text
    assert "Best by PSNR (supervised aside)" in text and "self-supervised method beats" in text
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    md = write_report(path)["md"].read_text()
    assert "PSNR gap to the supervised ceiling" in md
    assert f"| n2n-unet | {psnr[('n2n-unet', 0)] - psnr[('supervised', 0)]:+.2f} |" in md


def test_cells_below_the_noisy_cc_are_flagged(make_fake_results, tmp_path):
    results = make_fake_results()
    row = next(r for r in results["results"] if r["method"] == "n2v" and r["snr_index"] == 0)
    row["cc"] = row["cc_noisy"] - 0.5  # an inverted output
    text = " ".join(findings(results))
    assert (
        "Warning: CC with the clean image below the noisy input's (learned method): n2v at SNR 0.01."
        in text
    )
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    paths = write_report(path)
    html, md = paths["html"].read_text(), paths["md"].read_text()
    assert '<div class="warnings" id="warnings"><h2>Warnings</h2>' in html
    assert html.index('id="warnings"') < html.index("Reading of the results")
    assert "## Warnings" in md and "n2v at SNR 0.01" in md
    assert f"| n2v | {row['cc']:.3f} ⚠ |" in md
    # and nothing is flagged when every cell beats the noisy input
    assert "Warning" not in " ".join(findings(make_fake_results()))


def test_bad_results_file(tmp_path):
    with pytest.raises(InputFileError, match="file not found"):
        read_results(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"results": []}')
    with pytest.raises(InputFileError, match="not a seed-study results file"):
        read_results(bad)


@pytest.fixture(scope="module")
def rendered(chromium, fake_report, tiny_study, tmp_path_factory):
    """The synthetic report, a copy with one corrupted figure and the tiny study's real report,
    rendered in one headless Chromium run shared by this module's browser tests."""
    folder = tmp_path_factory.mktemp("chromium")
    broken = folder / "broken.html"
    text = fake_report["html"].read_text()
    broken.write_text(text.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1))
    pages = {
        "fake": fake_report["html"],
        "broken": broken,
        "tiny": tiny_study["out"] / "report.html",
    }
    return chromium(pages, folder)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(fake_report, rendered):
    check = rendered.checks["fake"]
    n_images = len(list((fake_report["html"].parent / "figures").glob("*.png")))
    assert check["images"] == str(n_images), check
    assert check["loaded"] == check["images"], check
    assert check["status"] == "ok"
    with Image.open(rendered.screenshot) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.shape[0] > 500 and pixels.shape[1] > 500
    assert pixels.std() > 5.0  # not a blank page
    assert len(np.unique(pixels)) > 20


@pytest.mark.slow
def test_chromium_check_catches_a_broken_image(rendered):
    """The DOM check is not vacuous: a corrupted data URI is reported as not loaded."""
    check = rendered.checks["broken"]
    assert int(check["loaded"]) == int(check["images"]) - 1, check
    assert check["status"] == "broken"


@pytest.mark.slow
def test_real_report_renders_in_headless_chromium(tiny_study, rendered):
    """The report of a real (tiny) study run: every figure decodes in a browser."""
    check = rendered.checks["tiny"]
    n_images = len(list((tiny_study["out"] / "figures").glob("*.png")))
    assert check["images"] == str(n_images) and n_images >= 5 + len(tiny_study["config"].methods)
    assert check["loaded"] == check["images"] and check["status"] == "ok", check


def test_side_by_side_panels_share_the_row_scale():
    import io

    from cryoden.benchmark.figures import side_by_side_figure

    rng = np.random.default_rng(0)
    raw = rng.normal(size=(32, 32))
    flat = np.zeros((32, 32))  # on raw's scale: mid grey, not stretched to full contrast
    png = side_by_side_figure([(raw, flat), (raw, raw)], ("raw", "flat"), "title", dpi=50)
    image = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.shape[0] > image.shape[1]  # two rows of two panels
    # the flat panel is one grey level: no panel of it spans black to white
    top_right = image[: image.shape[0] // 2, image.shape[1] // 2 :]
    assert np.percentile(top_right, 50) > 60 and np.percentile(top_right, 50) < 200
