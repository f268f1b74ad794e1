"""``energy-complexity serve``: a local web page for the estimate and the bounds (docs/web.md).

The page and its JSON API answer what ``bounds --json`` / ``estimate --json`` print; every script and
style is served from the installed packages (no network needed).  Binds to 127.0.0.1 unless --host says
otherwise.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys

from energy_complexity.errors import CLIError

NAME = "serve"
HELP = "local web page (and JSON API) for the estimate and the bounds"
DESCRIPTION = ("Start a local web server: choose a bundled network, upload an ONNX model or a CSV of layers, "
               "or type one layer; see the Eyeriss-style estimate, the energy lower bound and the OS / WS "
               "dataflows per layer, with charts and CSV / JSON downloads (docs/web.md).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default %(default)s)")
    parser.add_argument("--max-upload-mb", type=float, default=32.0,
                        help="largest upload accepted, in MiB (default %(default)s)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be from 0 to 65535, got {args.port}")
    if not args.max_upload_mb > 0:
        raise CLIError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    try:
        import uvicorn

        from energy_complexity.web.app import create_app
    except ModuleNotFoundError as exc:
        raise CLIError(f"serve needs the web extra ({exc.name} is missing): "
                       "pip install 'energy-complexity[web]'") from None
    if not _is_loopback(args.host):
        print(f"energy-complexity serve: warning: --host {args.host} makes the page reachable from other machines",
              file=sys.stderr)
    app = create_app(max_upload_bytes=int(args.max_upload_mb * 2**20))
    print(f"energy-complexity serve: http://{args.host}:{args.port}/ (Ctrl-C stops)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
