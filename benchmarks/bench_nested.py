"""Speed and quality of the nested-tiling upper bound (bounds/nested.py, best_nested).

For every bundled architecture (or --archs), runs best_nested on every layer of the
network (default ResNet-50) with empty caches and reports the CPU time per layer (the
target: a few ms per layer, so that `bounds --arch ... --network resnet50` takes less than
1.5x the time without --arch),
then the ratio of the upper bound to the hierarchy lower bound (bounds/hierarchy.py, when
present), and how much a 4x wider search (beam 6, grid 8000) would gain.
Run: python benchmarks/bench_nested.py [--network resnet50] [--archs eyeriss_like,...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bounds import nested
from complexity.zoo import get_network
from validation.architectures import architecture_names, get_architecture


def _clear() -> None:
    nested._clear_caches()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default="resnet50")
    ap.add_argument("--archs", default=",".join(architecture_names()))
    args = ap.parse_args()
    layers = get_network(args.network)
    try:
        from bounds.hierarchy import hierarchy_lower_bound
    except ImportError:                       # the lower bound is another module; report without it
        hierarchy_lower_bound = None
    print(f"{args.network}: {len(layers)} layers ({len({L.replace(name='') for L in layers})} distinct shapes)")
    print(f"{'architecture':14} {'levels':>6} {'cpu ms/layer':>12} {'wall s':>7} {'UB/LB med':>9} {'UB/LB max':>9} "
          f"{'UB/LB min':>9} {'wider search':>12}")
    for name in args.archs.split(","):
        arch = get_architecture(name)
        _clear()
        t0, w0 = time.process_time(), time.perf_counter()
        res = [nested.best_nested(L, arch) for L in layers]
        cpu, wall = time.process_time() - t0, time.perf_counter() - w0
        E = np.array([r.E_pJ for r in res])
        if hierarchy_lower_bound is not None:
            lb = np.array([hierarchy_lower_bound(L, arch).E_pJ for L in layers])
            g = E / lb
            gap = f"{np.median(g):9.3f} {g.max():9.3f} {g.min():9.3f}"
        else:
            gap = f"{'-':>9} {'-':>9} {'-':>9}"
        wide = np.array([nested.best_nested(L, arch, beam=6, grid=8000).E_pJ for L in layers])
        print(f"{name:14} {len(arch.levels):6d} {1000 * cpu / len(layers):12.1f} {wall:7.2f} {gap} "
              f"{E.sum() / wide.sum():12.4f}")


if __name__ == "__main__":
    main()
