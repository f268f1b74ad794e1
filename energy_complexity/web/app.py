"""The FastAPI application behind ``energy-complexity serve``: one page and a JSON API.

``POST /api/bounds`` and ``POST /api/estimate`` answer exactly what ``bounds --json`` / ``estimate --json``
print for the same input (the CLI runs in-process, see ``cli_bridge``); bad input answers 422 (the CLI
refused it) or 400 (the body or the upload is unusable) with the CLI's one-line message in ``detail`` and
the page field it concerns in ``field``.  Every script and style is served from the installed packages.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import shutil
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from complexity.machine import EYERISS_COSTS, REFERENCE_BITS
from energy_complexity.cli import build_parser
from energy_complexity.web.cli_bridge import (CLI_LOCK, RequestError, bounds_argv, derive_argv, error_field, estimate_argv,
                                              run_cli)
from energy_complexity.web.uploads import MAX_UPLOAD_BYTES, UploadError, UploadStore

HERE = Path(__file__).parent
#: Bundled architectures of ``bounds --arch`` (the hierarchy floor), offered by the page.
ARCHITECTURES = ("eyeriss_like", "tpu_like", "edge_tpu_like", "simba_like")
#: Buffer size the page starts with (words).
DEFAULT_M = 65536

_EXAMPLE_NET = {"network": "resnet50", "M": 65536}
_EXAMPLE_LAYER = {"layer": {"c": 64, "d": 64, "h": 56, "w": 56, "kh": 3, "kw": 3, "ph": 1, "pw": 1}, "M": 65536}


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the plotly Python package (no CDN)."""
    import plotly
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _size_text(n: int) -> str:
    """64 MiB, 100 kB or 512 bytes."""
    if n >= 2**20:
        return f"{n / 2**20:g} MiB"
    return f"{n / 1000:g} kB" if n >= 1000 else f"{n} bytes"


def _error(status: int, message: str, store: UploadStore | None = None, field: str | None = None) -> JSONResponse:
    msg = store.strip_paths(message) if store is not None else message
    return JSONResponse({"detail": msg, "field": field or error_field(msg)}, status_code=status)


def create_app(max_upload_bytes: int = MAX_UPLOAD_BYTES, upload_root: str | Path | None = None) -> FastAPI:
    """The application; uploads go to a fresh temporary folder (or ``upload_root``), removed at shutdown."""
    own_root = upload_root is None
    root = Path(tempfile.mkdtemp(prefix="energy-complexity-web-")) if own_root else Path(upload_root)
    store = UploadStore(root, max_bytes=max_upload_bytes)

    def cleanup() -> None:
        if own_root:
            shutil.rmtree(root, ignore_errors=True)

    atexit.register(cleanup)

    @asynccontextmanager
    async def lifespan(app):
        yield
        cleanup()

    app = FastAPI(title="energy-complexity", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Eyeriss-style energy estimate, energy lower bound and OS/WS dataflow bounds "
                              "of CNN layers; every answer is what the energy-complexity CLI prints.")
    app.state.uploads = store
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        first = errs[0] if errs else {}
        if first.get("type") == "json_invalid":
            return _error(400, "body: the request body is not valid JSON")
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or "body"
        return _error(400, f"{where}: {first.get('msg', 'invalid request')}")

    @app.get("/", include_in_schema=False)
    def index(request: Request):
        from complexity.zoo import network_names
        return templates.TemplateResponse(request, "index.html", {
            "networks": network_names(), "architectures": ARCHITECTURES, "M": DEFAULT_M,
            "costs": EYERISS_COSTS, "bits": REFERENCE_BITS, "max_upload": _size_text(max_upload_bytes)})

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js():
        return FileResponse(plotly_js_path(), media_type="text/javascript")

    @app.get("/api/networks", summary="bundled network names (for \"network\")")
    def networks() -> list[str]:
        from complexity.zoo import network_names
        return list(network_names())

    @app.get("/api/architectures", summary="bundled architecture names (for \"arch\" of /api/bounds)")
    def architectures() -> list[str]:
        return list(ARCHITECTURES)

    def _run(argv_of, body, upload_key=True):
        try:
            up = store.get(body.get("upload")) if upload_key and isinstance(body, dict) else None
            argv = argv_of(body, str(up.onnx_path) if up else None) if upload_key else argv_of(body)
        except RequestError as exc:
            return None, _error(400, str(exc))
        run = run_cli(argv)
        if run.code != 0:
            return None, _error(422 if run.code == 2 else 500, run.error or f"energy-complexity {argv[0]}: failed (status {run.code})", store)
        return run, None

    @app.post("/api/bounds", summary="what `energy-complexity bounds --json` prints")
    def bounds(body: dict[str, Any] = Body(..., examples=[_EXAMPLE_NET, _EXAMPLE_LAYER])):
        """Body keys: one of network / upload (an id from /api/upload) / layer {c, d, h, w, kh, kw, sh, sw,
        ph, pw, groups, b, hw, k, stride, pad}; M, eD, eB, eM, bits, arch; json_totals (true adds the totals)."""
        run, err = _run(bounds_argv, body)
        return err or Response(run.stdout, media_type="application/json")

    @app.post("/api/estimate", summary="what `energy-complexity estimate --json` prints")
    def estimate(body: dict[str, Any] = Body(..., examples=[{"network": "resnet50", "bits": 8}])):
        """Body keys: one of network / upload / layer (as for /api/bounds); bits, density_w, density_a."""
        run, err = _run(estimate_argv, body)
        return err or Response(run.stdout, media_type="application/json")

    @app.post("/api/derive", summary="closed forms of a typed layer as MathML (the forms `derive --json` prints)")
    def derive(body: dict[str, Any] = Body(..., examples=[_EXAMPLE_LAYER])):
        """Body: {"layer": {...}, "M": optional (symbolic when left out)}; answers {"substituted", "sections":
        [{"title", "rows": [{"name", "text" (as in `derive --json`), "mathml"}]}]}."""
        from energy_complexity.web.closed_forms import closed_forms_mathml
        try:
            argv = derive_argv(body)
        except RequestError as exc:
            return _error(400, str(exc))
        try:
            with CLI_LOCK, contextlib.redirect_stderr(io.StringIO()):  # argparse writes to stderr
                args = build_parser().parse_args(argv)
            return closed_forms_mathml(args)
        except (Exception, SystemExit):  # noqa: BLE001 - the CLI says what is wrong, in its own words
            pass
        run = run_cli(argv)
        if run.code != 0:
            return _error(422 if run.code == 2 else 500, run.error)
        return _error(500, "derive: the closed forms could not be rendered as MathML")

    @app.post("/api/upload", summary="store an .onnx model or a .csv of layers; answers its upload id")
    async def upload(request: Request, file: UploadFile = File(...)):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload_bytes + 64 * 1024:
            return _error(413, f"upload: {int(length):,} bytes is over the limit of {max_upload_bytes:,} bytes",
                          field="upload")
        data = await file.read(max_upload_bytes + 1)
        try:
            up = await run_in_threadpool(store.add, file.filename or "upload", data)
        except UploadError as exc:
            return _error(exc.status, str(exc), field="upload")
        return {"upload": up.id, "filename": up.filename, "kind": up.kind, "layers": up.layers,
                "path": str(up.onnx_path)}

    return app
