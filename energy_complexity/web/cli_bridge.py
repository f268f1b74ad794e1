"""Run the ``energy-complexity`` CLI in-process for the web page, so that the page and the API answer exactly
what the command line prints.

A JSON request body uses the names of the CLI flags (``{"network": "resnet50", "M": 65536}``); it is turned
into the argv of the same command, which is run by ``energy_complexity.cli.main`` with stdout and stderr
captured.  Errors come back as the CLI's own one-line message.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import threading
from dataclasses import dataclass

from energy_complexity.cli import main

#: Layer keys of ``{"layer": {...}}``: the layer flags of the CLI (square shortcuts included).
LAYER_KEYS = ("b", "c", "d", "h", "w", "hw", "kh", "kw", "k", "sh", "sw", "stride", "ph", "pw", "pad", "groups")

#: Top-level body keys of each command -> the CLI flag they become.
BOUNDS_KEYS = {"M": "--M", "eD": "--eD", "eB": "--eB", "eM": "--eM", "bits": "--bits", "arch": "--arch"}
ESTIMATE_KEYS = {"bits": "--bits", "density_w": "--density-w", "density_a": "--density-a"}
DERIVE_KEYS = {"M": "--M"}

#: main() swaps sys.stdout/sys.stderr, which are process-wide: one CLI run at a time.
CLI_LOCK = threading.Lock()


class RequestError(ValueError):
    """A request body that cannot become a command line; the message names the key."""


@dataclass(frozen=True)
class CliRun:
    """Exit status, standard output and the one-line error (empty on success) of one CLI run."""

    code: int
    stdout: str
    error: str


def run_cli(argv: list[str]) -> CliRun:
    """Run ``energy-complexity ARGV`` in this process; argparse's exits become status 2 with its message."""
    out, err = io.StringIO(), io.StringIO()
    with CLI_LOCK, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: usage + one "prog: error: ..." line
            code = exc.code if isinstance(exc.code, int) else 2
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the server: report it in one line
            code = 1
            first = (str(exc).splitlines() or [""])[0]
            print(f"energy-complexity {argv[0] if argv else ''}: error: internal error: "
                  f"{type(exc).__name__}: {first}", file=sys.stderr)
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ": error: " in ln]
    error = (errors[-1] if errors else (lines[-1] if lines else "")) if code else ""
    return CliRun(code=code, stdout=out.getvalue(), error=error.strip())


def _value(key: str, v) -> str | None:
    """A body value as the text of its flag; None (or "") leaves the flag out."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise RequestError(f"{key}: expected a number or a string, got {type(v).__name__} {v!r}")
    return str(v).strip()


def _check_keys(body: dict, allowed: set, command: str) -> None:
    if not isinstance(body, dict):
        raise RequestError(f"the request body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise RequestError(f"unknown key {unknown[0]!r} for {command}; known: {', '.join(sorted(allowed))}")


def _source_argv(body: dict, upload_path: str | None) -> list[str]:
    """--network NAME, --onnx PATH (an upload) or the layer flags; exactly one of them."""
    given = [k for k in ("network", "upload", "layer") if body.get(k) not in (None, "", {})]
    if len(given) != 1:
        raise RequestError("give exactly one of network, upload or layer, got "
                           + (", ".join(given) if given else "none"))
    if given[0] == "network":
        return ["--network", _value("network", body["network"])]
    if given[0] == "upload":
        if upload_path is None:
            raise RequestError(f"upload: unknown upload {body['upload']!r} (upload the file again)")
        return ["--onnx", upload_path]
    return layer_argv(body["layer"])


def layer_argv(layer) -> list[str]:
    """The layer flags of ``{"c": 64, "d": 64, "hw": 56, ...}``."""
    if not isinstance(layer, dict):
        raise RequestError(f"layer: expected an object of layer flags, got {type(layer).__name__}")
    unknown = sorted(set(layer) - set(LAYER_KEYS))
    if unknown:
        raise RequestError(f"layer: unknown key {unknown[0]!r}; known: {', '.join(LAYER_KEYS)}")
    argv = []
    for k in LAYER_KEYS:
        v = _value(f"layer.{k}", layer.get(k))
        if v is not None:
            argv += [f"--{k}", v]
    return argv


def _flags(body: dict, keys: dict) -> list[str]:
    argv = []
    for key, flag in keys.items():
        v = _value(key, body.get(key))
        if v is not None:
            argv += [flag, v]
    return argv


def bounds_argv(body: dict, upload_path: str | None = None) -> list[str]:
    """argv of ``bounds --json`` for a body; ``json_totals: true`` adds --json-totals."""
    _check_keys(body, {"network", "upload", "layer", "json_totals", *BOUNDS_KEYS}, "bounds")
    argv = ["bounds", *_source_argv(body, upload_path), *_flags(body, BOUNDS_KEYS), "--json"]
    jt = body.get("json_totals", False)
    if not isinstance(jt, bool):
        raise RequestError(f"json_totals: expected true or false, got {jt!r}")
    return argv + (["--json-totals"] if jt else [])


def estimate_argv(body: dict, upload_path: str | None = None) -> list[str]:
    """argv of ``estimate --json`` for a body."""
    _check_keys(body, {"network", "upload", "layer", *ESTIMATE_KEYS}, "estimate")
    return ["estimate", *_source_argv(body, upload_path), *_flags(body, ESTIMATE_KEYS), "--json"]


def derive_argv(body: dict) -> list[str]:
    """argv of ``derive --json`` for ``{"layer": {...}, "M": ...}`` (M may be left out: symbolic)."""
    _check_keys(body, {"layer", *DERIVE_KEYS}, "derive")
    if body.get("layer") in (None, {}):
        raise RequestError("layer: the closed forms need a typed layer")
    return ["derive", *layer_argv(body["layer"]), *_flags(body, DERIVE_KEYS), "--json"]


#: (pattern in a one-line error, page field it belongs to), first match wins.
_FIELD_PATTERNS = (
    (r"--density-w\b|\bdensity_w\b", "density_w"), (r"--density-a\b|\bdensity_a\b", "density_a"),
    (r"--bits\b|\bbits\b", "bits"), (r"--arch\b|\barch(itecture)?\b", "arch"),
    (r"--eD\b|\beD\b", "eD"), (r"--eB\b|\beB\b", "eB"), (r"--eM\b|\beM\b", "eM"),
    (r"--M\b|invalid machine: M\b|\bBuffer\b", "M"),
    (r"--network\b|unknown network", "network"), (r"--onnx\b|--csv\b|\bonnx\b|\bupload\b", "upload"),
)


def error_field(message: str) -> str:
    """The page field a one-line error is about ("layer" for layer parameters, "source" when unknown)."""
    if message.startswith(("unknown key", "give exactly one of", "the request body", "body")):
        return "source"
    m = re.search(r"invalid layer: (\w+):", message)
    if m and "onnx" not in message:
        return "layer." + m.group(1)
    for pat, field in _FIELD_PATTERNS:
        if re.search(pat, message):
            return field
    m = re.search(r"(?:argument )?--(\w+)", message)
    if m and m.group(1) in LAYER_KEYS:
        return "layer." + m.group(1)
    return "source"
