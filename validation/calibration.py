"""Per-platform calibration: E_ref ~ alpha_D Q + alpha_B A + alpha_M F with alpha >= 0.

The counts (Q, A, F) come from a bound or a dataflow's closed forms, so the fitted
model predicts a new layer's energy on that platform from closed forms alone.  The
fit minimises the squared *relative* error (rows divided by E_ref, then
scipy.optimize.nnls), because energies span many orders of magnitude.

Identifiability: in this model every execution has A = Q + 3F (each word moved
touches the Buffer once, each MAC touches it three times), so the three columns are
collinear and only two combinations are determined:
beta_Q = alpha_D + alpha_B and beta_F = 3 alpha_B + alpha_M.  The code detects any
exact relation A = u Q + v F in the data, fits the two identifiable coefficients and
reports them with the range of alpha_B they allow; when the columns are not
collinear it fits all three.  docs/validation.md, "Calibration", has the details.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import nnls

from validation.regression import InsufficientDataError

__all__ = ["Calibration", "fit_calibration", "detect_relation", "kfold_indices", "relative_errors"]

#: Relative tolerance under which A is taken as an exact linear function of Q and F.
RELATION_RTOL = 1e-9


def detect_relation(Q, A, F, rtol: float = RELATION_RTOL) -> tuple[float, float] | None:
    """(u, v) if A = u Q + v F holds on every row to ``rtol`` (relative), else None."""
    Q, A, F = (np.asarray(v, dtype=float) for v in (Q, A, F))
    D = np.column_stack([Q, F]) / A[:, None]
    coef, *_ = np.linalg.lstsq(D, np.ones_like(A), rcond=None)
    if np.max(np.abs(D @ coef - 1.0)) > rtol:
        return None
    u, v = (float(round(c, 9)) for c in coef)
    return u, v


def kfold_indices(n: int, k: int, seed: int = 0) -> list[np.ndarray]:
    """k shuffled, nearly equal test folds covering 0..n-1 once each."""
    if not 2 <= k <= n:
        raise ValueError(f"k-fold cross-validation needs 2 <= k <= n, got k={k}, n={n}")
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(f) for f in np.array_split(perm, k)]


def relative_errors(e_ref, pred) -> np.ndarray:
    """|pred - E_ref| / E_ref per row."""
    e = np.asarray(e_ref, dtype=float)
    return np.abs(np.asarray(pred, dtype=float) - e) / e


def _nnls_relative(design: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Non-negative coefficients minimising sum(((design @ x) - e) / e)^2), scale-safe."""
    D = design / e[:, None]
    scale = np.linalg.norm(D, axis=0)
    scale[scale == 0] = 1.0
    x, _ = nnls(D / scale, np.ones_like(e), maxiter=50 * D.shape[1] + 100)
    return x / scale


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration (see module docstring).

    ``coef_Q``/``coef_A``/``coef_F`` multiply the design columns actually fitted: with a
    relation A = u Q + v F (``relation`` = (u, v)), ``coef_A`` is 0 and ``coef_Q`` =
    alpha_D + u alpha_B, ``coef_F`` = alpha_M + v alpha_B are the identifiable
    combinations; any alpha_B in [0, ``alpha_B_max``] with alpha_D = coef_Q - u alpha_B
    and alpha_M = coef_F - v alpha_B gives the same predictions.  Without a relation
    all three are identified (``identifiable`` says which case holds).
    Errors are |pred - E_ref| / E_ref: in-sample and k-fold cross-validated.
    """

    n: int
    n_excluded: int
    relation: tuple[float, float] | None
    coef_Q: float
    coef_A: float
    coef_F: float
    alpha_B_max: float
    identifiable: str
    k: int
    fit_rel_median: float
    fit_rel_p90: float
    cv_rel_median: float
    cv_rel_p90: float
    cv_rel_max: float

    def predict(self, Q, A, F):
        """Predicted energy (the units of E_ref) from closed-form counts."""
        return (self.coef_Q * np.asarray(Q, dtype=float) + self.coef_A * np.asarray(A, dtype=float)
                + self.coef_F * np.asarray(F, dtype=float))

    @property
    def q_to_f_ratio(self) -> float:
        """coef_Q / coef_F: the platform's effective cost of a DRAM word per MAC-related cost."""
        return self.coef_Q / self.coef_F if self.coef_F > 0 else np.inf

    def to_dict(self) -> dict:
        d = asdict(self)
        d["relation"] = None if self.relation is None else list(self.relation)
        return d


def fit_calibration(e_ref, Q, A, F, *, k: int = 5, seed: int = 0, what: str = "calibration") -> Calibration:
    """Fit E_ref ~ alpha_D Q + alpha_B A + alpha_M F (alpha >= 0) on rows with finite counts.

    Rows where any count is infinite (an infeasible dataflow) are dropped and counted.
    ``k`` folds (at most the number of rows) give the cross-validated relative error.
    """
    e_all, Q_all, A_all, F_all = (np.asarray(v, dtype=float).ravel() for v in (e_ref, Q, A, F))
    with np.errstate(invalid="ignore"):
        keep = (np.isfinite(e_all) & (e_all > 0) & np.isfinite(Q_all) & np.isfinite(A_all)
                & np.isfinite(F_all) & (A_all > 0) & (Q_all >= 0) & (F_all >= 0))
    n = int(keep.sum())
    if n < 3:
        raise InsufficientDataError(f"{what}: {n} usable row(s) of {e_all.size}, calibration needs at least 3")
    e, q, a, f = e_all[keep], Q_all[keep], A_all[keep], F_all[keep]
    relation = detect_relation(q, a, f)
    if relation is not None:
        design = np.column_stack([q, f])
        u, v = relation
        ident = (f"A = {u:g} Q + {v:g} F on every row: only alpha_D + {u:g} alpha_B and "
                 f"alpha_M + {v:g} alpha_B are identifiable")
    else:
        design = np.column_stack([q, a, f])
        rank = np.linalg.matrix_rank(design / np.linalg.norm(design, axis=0).clip(min=1e-300))
        ident = "alpha_D, alpha_B, alpha_M all identifiable" if rank == 3 else \
            f"design of rank {rank} < 3: coefficients not all identifiable"

    def fit(idx):
        x = _nnls_relative(design[idx], e[idx])
        return x

    x = fit(np.arange(n))
    fit_err = relative_errors(e, design @ x)
    kk = min(k, n)
    cv_err = np.empty(n)
    for test in kfold_indices(n, kk, seed):
        train = np.setdiff1d(np.arange(n), test)
        xt = fit(train)
        cv_err[test] = relative_errors(e[test], design[test] @ xt)
    if relation is not None:
        cQ, cA, cF = float(x[0]), 0.0, float(x[1])
        u, v = relation
        lims = [c / m for c, m in ((cQ, u), (cF, v)) if m > 0]
        aB_max = float(min(lims)) if lims else np.inf
    else:
        cQ, cA, cF = (float(t) for t in x)
        aB_max = cA
    return Calibration(
        n=n, n_excluded=int(e_all.size - n), relation=relation, coef_Q=cQ, coef_A=cA, coef_F=cF,
        alpha_B_max=aB_max, identifiable=ident, k=kk,
        fit_rel_median=float(np.median(fit_err)), fit_rel_p90=float(np.percentile(fit_err, 90)),
        cv_rel_median=float(np.median(cv_err)), cv_rel_p90=float(np.percentile(cv_err, 90)),
        cv_rel_max=float(cv_err.max()),
    )
