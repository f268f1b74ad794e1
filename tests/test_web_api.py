"""The JSON API of `energy-complexity serve`: answers equal to the CLI's JSON, one-line errors, uploads.

The CLI runs in-process (energy_complexity.cli.main with stdout/stderr captured) on the same input, and the
API's answer must be exactly what it prints.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from pathlib import Path

import onnx
import pytest

with warnings.catch_warnings():  # starlette asks for httpx2, which is not needed for these tests
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from complexity.layer import Layer
from complexity.onnx_import import load_onnx
from complexity.zoo import network_names
from energy_complexity.cli import main
from energy_complexity.web.app import create_app, plotly_js_path
from energy_complexity.web.cli_bridge import CLI_LOCK, error_field
from energy_complexity.web.uploads import layers_to_onnx, safe_name
from test_onnx_import import EXPECTED as TINY_LAYERS
from test_onnx_import import build_model

LAYER = {"c": 64, "d": 64, "h": 56, "w": 56, "kh": 3, "kw": 3, "ph": 1, "pw": 1}
LAYER_ARGV = ["--c", "64", "--d", "64", "--h", "56", "--w", "56", "--kh", "3", "--kw", "3", "--ph", "1", "--pw", "1"]


def cli(argv: list[str]) -> tuple[int, str, str]:
    """(status, stdout, stderr) of `energy-complexity ARGV` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with CLI_LOCK, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def cli_error(argv: list[str]) -> str:
    code, _, err = cli(argv)
    assert code == 2
    return err.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("uploads")
    with TestClient(create_app(max_upload_bytes=200_000, upload_root=root)) as c:
        c.upload_root = root
        yield c


def test_page_and_assets_are_served_from_the_packages(client):
    page = client.get("/")
    assert page.status_code == 200
    for name in network_names():
        assert f'<option value="{name}"' in page.text
    for ref in ("/static/app.js", "/static/style.css", "/vendor/plotly.min.js"):
        assert ref in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    js = client.get("/vendor/plotly.min.js")
    assert js.status_code == 200 and js.content == plotly_js_path().read_bytes()
    assert client.get("/static/app.js").text.startswith("// The page of `energy-complexity serve`")
    assert client.get("/docs").status_code == 404  # FastAPI's docs page would load Swagger UI from a CDN
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/networks", "/api/architectures", "/api/bounds", "/api/estimate", "/api/derive",
            "/api/upload"} <= set(paths)


def test_networks_and_architectures(client):
    assert client.get("/api/networks").json() == list(network_names())
    assert client.get("/api/architectures").json() == ["eyeriss_like", "tpu_like", "edge_tpu_like", "simba_like"]


def test_bounds_of_a_layer_is_the_cli_json(client):
    r = client.post("/api/bounds", json={"layer": LAYER, "M": 65536})
    code, out, _ = cli(["bounds", *LAYER_ARGV, "--M", "65536", "--json"])
    assert r.status_code == 200 and code == 0
    assert r.text == out
    assert r.json()["lower_bound"]["F"] == Layer(**LAYER).F


def test_bounds_of_resnet50_with_costs_and_totals_is_the_cli_json(client):
    body = {"network": "resnet50", "M": "64K", "eD": 100, "eB": 3.5, "eM": 0.5, "bits": 8, "json_totals": True}
    r = client.post("/api/bounds", json=body)
    code, out, _ = cli(["bounds", "--network", "resnet50", "--M", "64K", "--eD", "100", "--eB", "3.5", "--eM", "0.5",
                        "--bits", "8", "--json", "--json-totals"])
    assert r.status_code == 200 and code == 0
    assert r.text == out
    doc = r.json()
    assert len(doc["layers"]) == 54 and doc["layers"][0]["machine"]["M"] == 65536
    assert doc["totals"]["lower_bound"]["E"] == pytest.approx(sum(x["lower_bound"]["E"] for x in doc["layers"]))


def test_estimate_of_a_layer_with_sparsity_and_bits_is_the_cli_json(client):
    body = {"layer": {**LAYER, "sh": 2, "sw": 2}, "bits": 8, "density_w": 0.5, "density_a": "0.7"}
    r = client.post("/api/estimate", json=body)
    code, out, _ = cli(["estimate", *LAYER_ARGV, "--sh", "2", "--sw", "2", "--bits", "8", "--density-w", "0.5",
                        "--density-a", "0.7", "--json"])
    assert r.status_code == 200 and code == 0
    assert r.text == out
    doc = r.json()
    assert (doc["bits"], doc["density_w"], doc["density_a"]) == (8, 0.5, 0.7)
    assert doc["total"]["total"] == pytest.approx(sum(doc["total"]["by_level"].values()))


def test_upload_onnx_then_bounds_and_estimate_are_the_cli_json(client, tmp_path):
    data = build_model().SerializeToString()
    r = client.post("/api/upload", files={"file": ("../../etc/tiny model.onnx", data)})
    assert r.status_code == 200, r.text
    up = r.json()
    assert (up["filename"], up["kind"], up["layers"]) == ("tiny_model.onnx", "onnx", 4)
    stored = Path(up["path"])
    assert stored.parent.parent == client.upload_root and stored.read_bytes() == data  # inside the temp folder
    for endpoint, argv in (("bounds", ["--M", "4096", "--json"]), ("estimate", ["--bits", "4", "--json"])):
        body = {"upload": up["upload"], **({"M": 4096} if endpoint == "bounds" else {"bits": 4})}
        r = client.post(f"/api/{endpoint}", json=body)
        code, out, _ = cli([endpoint, "--onnx", str(stored), *argv])
        assert r.status_code == 200 and code == 0
        assert r.text == out
    names = [x["name"] for x in client.post("/api/bounds", json={"upload": up["upload"], "M": 4096}).json()]
    assert names == [L.name for L in TINY_LAYERS]


def test_upload_csv_of_layers_becomes_the_same_layers(client, tmp_path):
    csv = "name,c,d,h,w,kh,kw,sh,sw,ph,pw,groups,b\nfirst,3,16,32,32,3,3,2,2,1,1,1,2\ndw,16,16,16,16,3,3,1,1,1,1,16,1\n" \
          "fc,256,10,1,1,1,1,1,1,0,0,1,1\n"
    r = client.post("/api/upload", files={"file": ("layers.csv", csv.encode())})
    assert r.status_code == 200, r.text
    up = r.json()
    assert (up["kind"], up["layers"]) == ("csv", 3)
    expected = [Layer(b=2, c=3, d=16, h=32, w=32, kh=3, kw=3, sh=2, sw=2, ph=1, pw=1, name="first"),
                Layer(c=16, d=16, h=16, w=16, kh=3, kw=3, ph=1, pw=1, groups=16, name="dw"),
                Layer.fc(256, 10, name="fc")]
    assert load_onnx(up["path"]) == expected
    r = client.post("/api/estimate", json={"upload": up["upload"]})
    code, out, _ = cli(["estimate", "--onnx", up["path"], "--json"])
    assert r.text == out and code == 0
    assert [x["macs"] for x in r.json()["layers"]] == [L.F for L in expected]


def test_layers_to_onnx_round_trips():
    layers = [Layer(c=8, d=4, h=9, w=7, kh=3, kw=1, sh=2, sw=1, ph=1, pw=0, b=3, name="a"),
              Layer(c=6, d=6, h=5, w=5, kh=5, kw=5, groups=3)]
    model = onnx.load_from_string(layers_to_onnx(layers).SerializeToString())
    from complexity.onnx_import import layers_from_onnx
    got = layers_from_onnx(model)
    assert got[0] == layers[0] and got[1] == Layer(c=6, d=6, h=5, w=5, kh=5, kw=5, groups=3, name="row2")


def test_derive_rows_are_the_cli_json_and_render_as_mathml(client):
    r = client.post("/api/derive", json={"layer": LAYER})  # M symbolic: the forms are functions of M
    assert r.status_code == 200, r.text
    doc = r.json()
    code, out, _ = cli(["derive", *LAYER_ARGV, "--json"])
    assert code == 0
    ref = json.loads(out)
    assert doc["substituted"] == ref["substituted"]
    assert [s["title"] for s in doc["sections"]] == list(ref["sections"])
    for s in doc["sections"]:
        assert {row["name"]: row["text"] for row in s["rows"]} == ref["sections"][s["title"]]
        for row in s["rows"]:
            assert row["mathml"].startswith('<math display="block">') and row["mathml"].endswith("</math>")
    rows = {row["name"]: row for s in doc["sections"] for row in s["rows"]}
    assert rows["F"]["text"] == str(Layer(**LAYER).F)
    assert f"<mn>{Layer(**LAYER).F}</mn>" in rows["F"]["mathml"]
    assert "Piecewise" in rows["phi(T)"]["text"] and "<mtable" in rows["phi(T)"]["mathml"]  # a brace of cases
    assert "<mi>M</mi>" in rows["Q_LB"]["mathml"] or "<mi>M</mi>" in rows["Q_cap"]["mathml"]


@pytest.mark.parametrize("endpoint,body,argv", [
    ("bounds", {"layer": {**LAYER, "kh": 99}, "M": 65536},
     ["bounds", *LAYER_ARGV[:-6], "--kh", "99", "--kw", "3", "--ph", "1", "--pw", "1", "--M", "65536"]),
    ("bounds", {"network": "resnet5", "M": 1000}, ["bounds", "--network", "resnet5", "--M", "1000"]),
    ("bounds", {"network": "alexnet", "M": "lots"}, ["bounds", "--network", "alexnet", "--M", "lots"]),
    ("bounds", {"network": "alexnet", "M": 1000, "eD": "-1"}, ["bounds", "--network", "alexnet", "--M", "1000",
                                                                "--eD", "-1"]),
    ("estimate", {"layer": LAYER, "bits": 0}, ["estimate", *LAYER_ARGV, "--bits", "0"]),
    ("estimate", {"layer": LAYER, "density_w": 1.5}, ["estimate", *LAYER_ARGV, "--density-w", "1.5"]),
    ("estimate", {"layer": {"d": 8}}, ["estimate", "--d", "8"]),
])
def test_bad_input_answers_422_with_the_cli_line(client, endpoint, body, argv):
    r = client.post(f"/api/{endpoint}", json=body)
    assert r.status_code == 422
    line = cli_error(argv)
    assert r.json()["detail"] == line
    assert "\n" not in line


def test_error_fields_name_the_input():
    assert error_field(cli_error(["bounds", *LAYER_ARGV[:-6], "--kh", "99", "--kw", "3", "--M", "9"])) == "layer.kh"
    assert error_field(cli_error(["bounds", "--network", "nope", "--M", "9"])) == "network"
    assert error_field(cli_error(["bounds", "--network", "alexnet", "--M", "x"])) == "M"
    assert error_field(cli_error(["estimate", "--network", "alexnet", "--density-a", "0"])) == "density_a"
    assert error_field(cli_error(["estimate", "--network", "alexnet", "--bits", "99"])) == "bits"
    # argparse's refusal of --arch (an older CLI) belongs to the architecture field
    assert error_field("energy-complexity: error: unrecognized arguments: --arch tpu_like") == "arch"


def test_bad_bodies_answer_400_in_one_line(client):
    cases = [
        ({"network": "alexnet", "M": 1000, "foo": 1}, "unknown key 'foo' for bounds"),
        ({"network": "alexnet", "layer": LAYER, "M": 1000}, "give exactly one of network, upload or layer, got network, layer"),
        ({"M": 1000}, "give exactly one of network, upload or layer, got none"),
        ({"layer": {"c": 3, "q": 1}, "M": 1000}, "layer: unknown key 'q'"),
        ({"layer": {"c": [3]}, "M": 1000}, "layer.c: expected a number or a string, got list"),
        ({"network": "alexnet", "M": True}, "M: expected a number or a string, got bool"),
        ({"upload": "0" * 32, "M": 1000}, "upload: unknown upload"),
        ({"upload": "../../etc/passwd", "M": 1000}, "upload: unknown upload"),
        ({"network": "alexnet", "M": 1000, "json_totals": "yes"}, "json_totals: expected true or false"),
    ]
    for body, start in cases:
        r = client.post("/api/bounds", json=body)
        assert r.status_code == 400, body
        assert r.json()["detail"].startswith(start), r.json()
        assert "\n" not in r.json()["detail"]
    r = client.post("/api/estimate", json={"network": "alexnet", "M": 1000})
    assert r.status_code == 400 and r.json()["detail"].startswith("unknown key 'M' for estimate")
    r = client.post("/api/bounds", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"] == "body: the request body is not valid JSON"
    r = client.post("/api/bounds", json=[1, 2])
    assert r.status_code == 400 and r.json()["detail"].startswith("body:")


def test_corrupt_oversized_and_wrong_uploads(client, tmp_path):
    r = client.post("/api/upload", files={"file": ("broken.onnx", b"\x08\x07garbage" * 10)})
    assert r.status_code == 400 and r.json()["field"] == "upload"
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    line = cli_error(["bounds", "--onnx", str(bad), "--M", "1", "--json"])
    assert r.json()["detail"] == line.replace(str(bad), "broken.onnx")
    r = client.post("/api/upload", files={"file": ("big.onnx", b"\0" * 200_001)})
    assert r.status_code == 413 and "over the limit of 200,000 bytes" in r.json()["detail"]
    r = client.post("/api/upload", files={"file": ("notes.txt", b"c,d\n1,2\n")})
    assert r.status_code == 400 and r.json()["detail"] == "upload: notes.txt: expected an .onnx model or a .csv of layers"
    r = client.post("/api/upload", files={"file": ("l.csv", b"c,d,h,w,kh,kw\n3,8,3,3,9,9\n")})
    assert r.status_code == 400
    assert r.json()["detail"] == "--csv: l.csv: row 1: invalid layer: kh: kernel kh=9 is larger than the padded input h+2*ph=3"
    r = client.post("/api/upload", files={"file": ("empty.csv", b"")})
    assert r.status_code == 400 and r.json()["detail"] == "upload: empty.csv: the file is empty"
    # nothing of the refused uploads is left behind, and nothing was written outside the upload folder
    kept = [p for p in client.upload_root.rglob("*") if p.is_file()]
    assert all(p.suffix in (".onnx", ".csv") for p in kept)
    assert not any(p.name in ("broken.onnx", "big.onnx", "notes.txt", "l.csv", "empty.csv") for p in kept)
    # the server keeps serving
    assert client.post("/api/bounds", json={"layer": LAYER, "M": 65536}).status_code == 200


def test_safe_names():
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\x\\model v2.onnx") == "model_v2.onnx"
    assert safe_name("..onnx") == "onnx"
    assert safe_name("") == "upload"


def test_upload_folder_is_removed_at_shutdown(tmp_path):
    app = create_app()
    root = app.state.uploads.root
    with TestClient(app) as c:
        assert c.post("/api/upload", files={"file": ("m.onnx", build_model().SerializeToString())}).status_code == 200
        assert any(root.rglob("m.onnx"))
    assert not root.exists()
    assert os.path.basename(str(root)).startswith("energy-complexity-web-")


def test_serve_binds_loopback_by_default():
    from energy_complexity.cli import build_parser
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    assert cli_error(["serve", "--port", "70000"]) == "energy-complexity serve: error: --port must be from 0 to 65535, got 70000"


def test_serve_command_starts_on_loopback_and_stops(tmp_path):
    """`energy-complexity serve` as a process: answers on 127.0.0.1, stops on SIGTERM, removes its uploads."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "energy_complexity.cli", "serve", "--port", str(port)],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/networks", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert r.json() == list(network_names())
        assert len(list(tmp_path.glob("energy-complexity-web-*"))) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert f"energy-complexity serve: http://127.0.0.1:{port}/" in err
    assert list(tmp_path.glob("energy-complexity-web-*")) == []
