"""Speed of the web page's JSON API (`energy-complexity serve`): one layer and ResNet-50, over real HTTP.

Run: python benchmarks/bench_web.py [--n N]
Starts the server on a free loopback port (uvicorn in a thread), then times POST /api/bounds and
POST /api/estimate (wall clock per request, median of N) for:
  - one layer (64 -> 64 channels, 56 x 56, 3 x 3): the same request repeated, and a new layer each time
    (a different number of filters, so the estimator's mapping search is not cached); target < 50 ms;
  - ResNet-50 (54 layers): the first request (nothing cached: the Eyeriss-style mapping search runs for
    every layer) and the same request repeated; target < 1 s.
Exits 1 when a target is missed by the repeated requests.  Timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time

import httpx
import uvicorn

from energy_complexity.web.app import create_app

LAYER = {"c": 64, "d": 64, "h": 56, "w": 56, "kh": 3, "kw": 3, "ph": 1, "pw": 1}


def start_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    while not srv.started:
        time.sleep(0.02)
    return srv, th, f"http://127.0.0.1:{port}"


def timed(client: httpx.Client, path: str, body: dict) -> float:
    t = time.perf_counter()
    r = client.post(path, json=body)
    dt = time.perf_counter() - t
    if r.status_code != 200:
        raise SystemExit(f"{path} {body}: HTTP {r.status_code}: {r.text[:200]}")
    return dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="requests per measurement (default 20)")
    args = ap.parse_args(argv)
    srv, th, url = start_server()
    rows, ok = [], True
    try:
        with httpx.Client(base_url=url, timeout=600) as c:
            timed(c, "/api/bounds", {"layer": {**LAYER, "d": 3}, "M": 65536})  # imports, first-call set-up
            timed(c, "/api/estimate", {"layer": {**LAYER, "d": 3}})
            for ep, extra in (("bounds", {"M": 65536}), ("estimate", {})):
                rep = [timed(c, f"/api/{ep}", {"layer": LAYER, **extra}) for _ in range(args.n)]
                new = [timed(c, f"/api/{ep}", {"layer": {**LAYER, "d": 100 + i}, **extra}) for i in range(args.n)]
                rows.append((f"one layer, {ep}, repeated", statistics.median(rep), 0.050))
                rows.append((f"one layer, {ep}, new layer each time", statistics.median(new), 0.050))
            for ep, extra in (("bounds", {"M": 65536, "json_totals": True}), ("estimate", {})):
                first = timed(c, f"/api/{ep}", {"network": "resnet50", **extra})
                rep = [timed(c, f"/api/{ep}", {"network": "resnet50", **extra}) for _ in range(max(3, args.n // 4))]
                rows.append((f"ResNet-50, {ep}, first request", first, 1.0))
                rows.append((f"ResNet-50, {ep}, repeated", statistics.median(rep), 1.0))
    finally:
        srv.should_exit = True
        th.join()
    print(f"{'request':<44} {'time':>10} {'target':>8}")
    for name, t, target in rows:
        met = t < target
        if "repeated" in name:
            ok &= met
        print(f"{name:<44} {t * 1000:>8.1f}ms {target * 1000:>6.0f}ms  {'ok' if met else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
