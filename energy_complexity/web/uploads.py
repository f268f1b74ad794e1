"""Uploaded ONNX models and CSVs of layers, kept in one temporary folder of the server.

Each upload gets a folder named by a random hex id under the server's temporary root; the file is written
there under a sanitized name (never a path the client chose).  A CSV of layers (columns named as the layer
flags, read by the same reader as ``energy-complexity reference --csv``) is turned into an equivalent ONNX
model of one convolution per row, so that the page runs ``bounds --onnx`` and ``estimate --onnx`` on it and
gets the CLI's own answers.
"""

from __future__ import annotations

import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from complexity.layer import Layer, LayerError, out_size
from energy_complexity.errors import CLIError

#: Default size limit of one upload (bytes).
MAX_UPLOAD_BYTES = 32 * 2**20
#: Uploads kept at once; older ones are deleted.
MAX_UPLOADS = 32
_ID_RE = re.compile(r"^[0-9a-f]{32}$")


class UploadError(ValueError):
    """An upload that cannot be used: wrong kind, too large, unreadable; one line naming the file."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Upload:
    """A stored upload: its id, the uploaded file name, its kind and the ONNX model the CLI reads."""

    id: str
    filename: str
    kind: str  # "onnx" or "csv"
    onnx_path: Path
    layers: int


def safe_name(filename: str) -> str:
    """The last path component of ``filename`` with only letters, digits, '.', '-' and '_' kept."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    return base[:100] or "upload"


def layers_to_onnx(layers: list[Layer]):
    """An ONNX model with one Conv per layer (independent inputs, weights as shaped graph inputs).

    ``complexity.onnx_import.layers_from_onnx`` reads it back to the same layers (names included).
    """
    import onnx
    from onnx import TensorProto, helper

    nodes, inputs, outputs = [], [], []
    for i, L in enumerate(layers):
        name = L.name or f"row{i + 1}"
        x, w, y = f"x{i}", f"w{i}", f"y{i}"
        inputs.append(helper.make_tensor_value_info(x, TensorProto.FLOAT, [L.b, L.c, L.h, L.w]))
        inputs.append(helper.make_tensor_value_info(w, TensorProto.FLOAT, [L.d, L.c // L.groups, L.kh, L.kw]))
        nh, nw = out_size(L.h, L.kh, L.sh, L.ph), out_size(L.w, L.kw, L.sw, L.pw)
        outputs.append(helper.make_tensor_value_info(y, TensorProto.FLOAT, [L.b, L.d, nh, nw]))
        nodes.append(helper.make_node("Conv", [x, w], [y], name=name, kernel_shape=[L.kh, L.kw],
                                      strides=[L.sh, L.sw], pads=[L.ph, L.pw, L.ph, L.pw], group=L.groups))
    graph = helper.make_graph(nodes, "layers_csv", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


class UploadStore:
    """The uploads of one server, under ``root`` (a temporary folder the server owns)."""

    def __init__(self, root: Path, max_bytes: int = MAX_UPLOAD_BYTES, max_uploads: int = MAX_UPLOADS):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.max_uploads = max_uploads
        self._uploads: dict[str, Upload] = {}

    def add(self, filename: str, data: bytes) -> Upload:
        """Store ``data`` (an .onnx model or a .csv of layers) and check that the CLI can read it."""
        name = safe_name(filename)
        kind = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if kind not in ("onnx", "csv"):
            raise UploadError(f"upload: {name}: expected an .onnx model or a .csv of layers")
        if len(data) > self.max_bytes:
            raise UploadError(f"upload: {name}: {len(data):,} bytes is over the limit of {self.max_bytes:,} bytes",
                              status=413)
        if not data:
            raise UploadError(f"upload: {name}: the file is empty")
        uid = secrets.token_hex(16)
        folder = self.root / uid
        folder.mkdir(parents=True)
        try:
            path = folder / name
            path.write_bytes(data)
            if kind == "csv":
                layers = self._csv_layers(path, name)
                onnx_path = folder / (name[:-4] + ".onnx")
                import onnx
                onnx.save(layers_to_onnx(layers), str(onnx_path))
            else:
                onnx_path = path
                layers = self._onnx_layers(path, name)
        except UploadError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        except Exception as exc:  # noqa: BLE001 - an unusable file must not stop the server
            shutil.rmtree(folder, ignore_errors=True)
            first = (str(exc).splitlines() or [""])[0]
            raise UploadError(f"upload: {name}: cannot be used: {type(exc).__name__}: {first}") from None
        up = Upload(id=uid, filename=name, kind=kind, onnx_path=onnx_path, layers=len(layers))
        self._uploads[uid] = up
        while len(self._uploads) > self.max_uploads:
            old = next(iter(self._uploads))
            shutil.rmtree(self.root / old, ignore_errors=True)
            del self._uploads[old]
        return up

    def _strip(self, message: str, folder: Path) -> str:
        return message.replace(f"{folder}/", "").replace(str(folder), "")

    def _csv_layers(self, path: Path, name: str) -> list[Layer]:
        from energy_complexity.commands.reference import _layers_from_csv
        try:
            rows = _layers_from_csv(str(path))
        except (CLIError, LayerError) as exc:
            raise UploadError(self._strip(str(exc), path.parent)) from None
        return [layer for _, layer in rows]

    def _onnx_layers(self, path: Path, name: str) -> list[Layer]:
        """The layers of an uploaded model; when it cannot be used, the CLI's own line for it."""
        import warnings

        from complexity.onnx_import import load_onnx
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                layers = load_onnx(path)
        except LayerError:
            layers = []
        if not layers:  # the CLI fails on this file before computing anything: take its line
            from energy_complexity.web.cli_bridge import run_cli
            run = run_cli(["bounds", "--onnx", str(path), "--M", "1", "--json"])
            raise UploadError(self.strip_paths(run.error or f"--onnx: {name}: cannot be read"))
        return layers

    def get(self, uid) -> Upload | None:
        """The upload with id ``uid``, or None (ids are checked before any path is built)."""
        if not isinstance(uid, str) or not _ID_RE.match(uid):
            return None
        return self._uploads.get(uid)

    def strip_paths(self, message: str) -> str:
        """``message`` with the server's temporary folders removed (file names stay)."""
        return re.sub(re.escape(str(self.root)) + r"/[0-9a-f]{32}/", "", message)
