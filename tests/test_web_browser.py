"""The page of `energy-complexity serve` end to end in headless Chromium (Debian's package, driven by Playwright).

A server is started on a free loopback port in a thread of this process and stopped at the end.  The page's
numbers are compared with the CLI run in-process on the same input.  Set EC_WEB_SCREENSHOTS=DIR to save
screenshots of the page (docs/img/web_*.png are made this way).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run installs it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package (test extra) is missing")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn (the web extra) is missing")

from energy_complexity.cli import main  # noqa: E402
from energy_complexity.web.app import create_app  # noqa: E402
from energy_complexity.web.cli_bridge import CLI_LOCK  # noqa: E402
from test_onnx_import import EXPECTED as TINY_LAYERS  # noqa: E402
from test_onnx_import import build_model  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Cold Eyeriss-style searches of ResNet-50 take tens of seconds on a busy 2-core machine.
SLOW_MS = 240_000
SHOTS = os.environ.get("EC_WEB_SCREENSHOTS")


def cli(argv: list[str]) -> tuple[int, str, str]:
    """(status, stdout, stderr) of `energy-complexity ARGV` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with CLI_LOCK, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def cli_json(argv: list[str]):
    code, out, err = cli(argv)
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(max_upload_bytes=100_000)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    t0 = time.monotonic()
    while not srv.started:
        assert th.is_alive() and time.monotonic() - t0 < 30, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    th.join(timeout=30)
    assert not th.is_alive()


@pytest.fixture(scope="module")
def browser_context():
    profile = tempfile.mkdtemp(prefix="ec-chromium-")
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=FLAGS, headless=True,
                                                   accept_downloads=True, viewport={"width": 1400, "height": 1000})
        yield ctx
        ctx.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def open_page(server, browser_context):
    """open_page("/?mode=layer") -> a page of the server, idle; no script error may happen on it."""
    url, _ = server
    pages, errors = [], []

    def _open(path="/"):
        pg = browser_context.new_page()
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(url + path)
        wait_idle(pg)
        pages.append(pg)
        return pg

    yield _open
    for pg in pages:
        pg.close()
    assert errors == []


def wait_idle(page, timeout=SLOW_MS):
    page.wait_for_function("document.body.dataset.busy === '0'", timeout=timeout)


def shot(page, name, full=True):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"web_{name}.png"), full_page=full)


def card(page, cid) -> float:
    text = page.inner_text(f"#{cid} .card-value")
    return float(text.replace(",", "").replace("×", "").replace(" pJ", ""))


def download(page, button) -> str:
    with page.expect_download() as d:
        page.click(button)
    return Path(d.value.path()).read_text()


def check_csv(text: str, bounds: list, estimate: dict) -> list[dict]:
    """Every cell of the page's CSV equals the CLI's JSON value it shows."""
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(bounds) == len(estimate["layers"])
    for row, b, e in zip(rows, bounds, estimate["layers"]):
        assert row["name"] == b["name"]
        assert int(row["macs"]) == e["macs"] == b["F"]
        assert float(row["est_total"]) == e["total"]
        assert float(row["est_energy_per_mac"]) == e["energy_per_mac"]
        for lv in ("dram", "buffer", "array", "rf", "mac"):
            assert float(row[f"est_{lv}"]) == e["by_level"][lv]
        for dt in ("input", "weight", "psum"):
            assert float(row[f"est_{dt}"]) == e["by_data"][dt]
        for k, src in (("lb", "lower_bound"), ("os", "os"), ("ws", "ws")):
            for q in ("Q", "A", "E"):
                assert float(row[f"{k}_{q}"]) == b[src][q]
        assert row["best"] == b["best"]
        assert float(row["gap_Q"]) == b["gap_Q"] and float(row["gap_E"]) == b["gap_E"]
        if "hierarchy" in b:
            assert float(row["hierarchy_E_pJ"]) == b["hierarchy"]["lower_bound"]["E_pJ"]
    return rows


def test_resnet50_bitwidth_changes_the_totals_and_the_csv_is_the_cli_json(open_page):
    page = open_page("/?mode=layer")  # opens on one layer, then ResNet-50 is picked
    assert page.locator("#layers tbody tr").count() == 1
    page.check("input[name=mode][value=network]")
    page.select_option("#network", "resnet50")
    wait_idle(page)
    est16, lb16 = card(page, "total-estimate"), card(page, "total-lb")
    ref16 = cli_json(["estimate", "--network", "resnet50", "--json"])
    assert est16 == pytest.approx(ref16["total"]["total"], rel=1e-3)
    shot(page, "network")
    page.fill("#bits", "8")
    page.dispatch_event("#bits", "change")
    wait_idle(page)
    est8, lb8 = card(page, "total-estimate"), card(page, "total-lb")
    ref8 = cli_json(["estimate", "--network", "resnet50", "--bits", "8", "--json"])
    bref8 = cli_json(["bounds", "--network", "resnet50", "--M", "65536", "--bits", "8", "--json", "--json-totals"])
    assert est8 < est16 and lb8 < lb16  # narrower words cost less
    assert est8 == pytest.approx(ref8["total"]["total"], rel=1e-3)
    assert lb8 == pytest.approx(bref8["totals"]["lower_bound"]["E"], rel=1e-3)
    assert card(page, "total-per-mac") == pytest.approx(ref8["total"]["energy_per_mac"], rel=1e-3)
    assert page.locator("#layers tbody tr").count() == len(ref8["layers"]) == 54
    for chart in ("chart-level", "chart-data", "chart-bounds"):
        assert page.locator(f"#{chart} .main-svg").count() >= 1  # plotly drew it
    check_csv(download(page, "#download-csv"), bref8["layers"], ref8)
    doc = json.loads(download(page, "#download-json"))
    assert doc["estimate"] == ref8 and doc["bounds"] == bref8


def test_uploaded_onnx_model(open_page, tmp_path):
    model = tmp_path / "tiny.onnx"
    model.write_bytes(build_model().SerializeToString())
    page = open_page("/?mode=upload")
    assert page.is_checked("input[name=mode][value=upload]")
    page.set_input_files("#upload-file", str(model))
    wait_idle(page)
    assert page.inner_text("#upload-status") == "tiny.onnx: 4 layers"
    names = page.locator("#layers tbody tr td:first-child").all_inner_texts()
    assert names == [L.name for L in TINY_LAYERS]
    shot(page, "upload")
    bounds = cli_json(["bounds", "--onnx", str(model), "--M", "65536", "--json"])
    est = cli_json(["estimate", "--onnx", str(model), "--json"])
    rows = check_csv(download(page, "#download-csv"), bounds, est)
    assert [r["name"] for r in rows] == [L.name for L in TINY_LAYERS]
    # a corrupt model and an oversized one: the message next to the upload field; the server keeps serving
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07 not a model" * 5)
    page.set_input_files("#upload-file", str(bad))
    wait_idle(page)
    line = cli(["bounds", "--onnx", str(bad), "--M", "1", "--json"])[2].strip().splitlines()[-1]
    assert page.inner_text("#err-upload") == line.replace(str(bad), "broken.onnx")
    big = tmp_path / "big.onnx"
    big.write_bytes(b"\0" * 150_000)
    page.set_input_files("#upload-file", str(big))
    wait_idle(page)
    assert "over the limit of 100,000 bytes" in page.inner_text("#err-upload")
    page.set_input_files("#upload-file", str(model))
    wait_idle(page)
    assert page.inner_text("#err-upload") == "" and page.locator("#layers tbody tr").count() == 4


def test_impossible_layer_shows_the_cli_error_then_closed_forms(open_page):
    page = open_page("/?mode=layer")
    assert page.locator("#layers tbody tr").count() == 1
    page.fill("#layer-kh", "99")
    page.dispatch_event("#layer-kh", "change")
    wait_idle(page)
    line = cli(["bounds", "--c", "64", "--d", "64", "--h", "56", "--w", "56", "--kh", "99", "--kw", "3", "--sh", "1",
                "--sw", "1", "--ph", "1", "--pw", "1", "--groups", "1", "--b", "1", "--M", "65536"])[2].strip()
    assert line.startswith("energy-complexity bounds: error: invalid layer: kh:")
    assert page.inner_text("#err-layer") == line
    assert "invalid" in page.get_attribute("#layer-kh", "class")
    assert page.inner_text("#totals") == ""
    shot(page, "error", full=False)
    page.fill("#layer-kh", "3")  # the server kept serving: the fixed layer computes
    page.dispatch_event("#layer-kh", "change")
    wait_idle(page)
    assert page.inner_text("#err-layer") == ""
    ref = cli_json(["estimate", "--c", "64", "--d", "64", "--hw", "56", "--k", "3", "--pad", "1", "--json"])
    assert card(page, "total-estimate") == pytest.approx(ref["total"]["total"], rel=1e-3)
    page.click("#show-forms")
    page.wait_for_selector("#forms math", timeout=SLOW_MS)
    derived = cli_json(["derive", "--c", "64", "--d", "64", "--h", "56", "--w", "56", "--kh", "3", "--kw", "3",
                        "--sh", "1", "--sw", "1", "--ph", "1", "--pw", "1", "--groups", "1", "--b", "1", "--json"])
    assert page.locator("#forms math").count() == sum(len(s) for s in derived["sections"].values())
    # MathML is laid out by the browser: a fraction has height, not a line of raw tags
    assert page.locator("#forms mfrac").count() >= 1
    assert page.locator("#forms math").first.bounding_box()["height"] > 5
    shot(page, "layer")
    # an architecture: `bounds --arch NAME`; its hierarchy floor is shown, or the CLI's refusal next to the field
    page.select_option("#arch", "tpu_like")
    wait_idle(page)
    argv = ["bounds", "--c", "64", "--d", "64", "--hw", "56", "--k", "3", "--pad", "1", "--M", "65536",
            "--arch", "tpu_like", "--json"]
    code, out, err = cli(argv)
    if code == 0:
        floor = json.loads(out)["hierarchy"]["lower_bound"]["E_pJ"]
        assert card(page, "total-hierarchy") == pytest.approx(floor, rel=1e-3)
        bounds = [{"name": "layer", **json.loads(out)}]
        est = cli_json(["estimate", "--c", "64", "--d", "64", "--hw", "56", "--k", "3", "--pad", "1", "--json"])
        check_csv(download(page, "#download-csv"), bounds, est)
    else:
        assert page.inner_text("#err-arch") == err.strip().splitlines()[-1]
