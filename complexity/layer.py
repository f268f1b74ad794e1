"""A CNN layer: shape parameters, validation, and exact integer sizes.

A layer is a (possibly grouped, strided, padded, batched) 2-D convolution; a
fully-connected layer is the 1 x 1 case on a 1 x 1 input.  See docs/theory.md,
section "A layer", for the notation used throughout the project.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

__all__ = ["Layer", "LayerError", "out_size", "used_inputs_1d", "real_taps_1d"]


class LayerError(ValueError):
    """A layer that cannot exist; the message names the offending parameter."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"invalid layer: {parameter}: {message}")
        self.parameter = parameter


def show_value(v) -> str:
    """``repr`` of a value as a user typed it: numpy scalars as plain Python numbers (nan, not np.float64(nan))."""
    item = getattr(v, "item", None)
    if callable(item) and type(v).__module__ == "numpy":
        try:
            v = item()
        except (TypeError, ValueError):
            pass
    return repr(v)


def out_size(n: int, k: int, s: int, p: int) -> int:
    """Number of output positions along one axis: floor((n + 2p - k)/s) + 1."""
    return (n + 2 * p - k) // s + 1


def real_taps_1d(n: int, k: int, s: int, p: int) -> int:
    """Number of (output position, kernel tap) pairs along one axis whose input is real (not padding)."""
    m = out_size(n, k, s, p)
    return sum(max(0, min(n - 1, o * s - p + k - 1) - max(0, o * s - p) + 1) for o in range(m))


def used_inputs_1d(n: int, k: int, s: int, p: int) -> int:
    """Number of the n real input positions (padding excluded) read by some window.

    Window o covers [o*s - p, o*s - p + k - 1]; with p < k the union is contiguous
    when s <= k and a set of disjoint length-k runs when s > k.  Counted exactly by
    summing the clipped windows (s > k) or clipping the union (s <= k).
    """
    m = out_size(n, k, s, p)
    if s <= k:
        last = (m - 1) * s - p + k - 1
        return min(n - 1, last) + 1  # first window starts at -p < k, so row 0 is read
    # disjoint windows: each contributes its part inside [0, n)
    total = 0
    for o in range(m):
        lo = max(0, o * s - p)
        hi = min(n - 1, o * s - p + k - 1)
        total += max(0, hi - lo + 1)
    return total


#: Largest count (MACs or words) the bounds' int64 arithmetic takes: products of two such
#: counts' square roots and small factors stay below 2^63.
COUNT_LIMIT = 2 ** 60

_INT_FIELDS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")


@dataclass(frozen=True, kw_only=True)
class Layer:
    """One convolution (or fully-connected) layer.

    Batch ``b``; ``c`` input channels of ``h`` x ``w``; ``d`` filters of
    ``c/groups`` x ``kh`` x ``kw``; stride (``sh``, ``sw``); zero padding
    (``ph``, ``pw``) on each side; ``groups`` channel groups (``groups == c`` is
    depthwise).  Validation happens at construction: a layer that exists is valid.
    """

    c: int
    d: int
    h: int = 1
    w: int = 1
    kh: int = 1
    kw: int = 1
    b: int = 1
    sh: int = 1
    sw: int = 1
    ph: int = 0
    pw: int = 0
    groups: int = 1
    name: str = ""

    def __post_init__(self) -> None:
        for f in _INT_FIELDS:
            v = getattr(self, f)
            if isinstance(v, bool):
                raise LayerError(f, f"must be an integer, got {show_value(v)}")
            if not isinstance(v, int):
                # accept integral floats/numpy ints, reject everything else
                try:
                    iv = int(v)
                except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
                    raise LayerError(f, f"must be an integer, got {show_value(v)}") from None
                if iv != v:
                    raise LayerError(f, f"must be an integer, got {show_value(v)}")
                object.__setattr__(self, f, iv)
        for f in ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "groups"):
            if getattr(self, f) < 1:
                raise LayerError(f, f"must be a positive integer, got {getattr(self, f)}")
        for f in ("ph", "pw"):
            if getattr(self, f) < 0:
                raise LayerError(f, f"must be a non-negative integer, got {getattr(self, f)}")
        if self.c % self.groups:
            raise LayerError("c", f"{self.c} input channels are not divisible by groups={self.groups}")
        if self.d % self.groups:
            raise LayerError("d", f"{self.d} filters are not divisible by groups={self.groups}")
        for k, n, p, kn, nn, pn in (
            (self.kh, self.h, self.ph, "kh", "h", "ph"),
            (self.kw, self.w, self.pw, "kw", "w", "pw"),
        ):
            if k > n + 2 * p:
                raise LayerError(kn, f"kernel {kn}={k} is larger than the padded input {nn}+2*{pn}={n + 2 * p}")
            if p >= k:
                raise LayerError(pn, f"padding {pn}={p} must be smaller than the kernel {kn}={k} "
                                     "(a window would read only padding zeros)")

    # ----- constructors -------------------------------------------------------
    @classmethod
    def conv(cls, c: int, d: int, hw: int, k: int, stride: int = 1, pad: int = 0,
             b: int = 1, groups: int = 1, name: str = "") -> "Layer":
        """Square convolution: h = w = hw, kh = kw = k, equal strides and paddings."""
        return cls(b=b, c=c, d=d, h=hw, w=hw, kh=k, kw=k, sh=stride, sw=stride,
                   ph=pad, pw=pad, groups=groups, name=name)

    @classmethod
    def fc(cls, n_in: int, n_out: int, b: int = 1, name: str = "") -> "Layer":
        """Fully-connected layer: an n_out x n_in matrix applied to b vectors."""
        return cls(b=b, c=n_in, d=n_out, name=name)

    @classmethod
    def from_dict(cls, data: dict) -> "Layer":
        """Build from a mapping; unknown keys are ignored, square shortcuts accepted."""
        d = dict(data)
        if "hw" in d:
            d.setdefault("h", d["hw"]); d.setdefault("w", d["hw"])
        if "k" in d:
            d.setdefault("kh", d["k"]); d.setdefault("kw", d["k"])
        if "stride" in d:
            d.setdefault("sh", d["stride"]); d.setdefault("sw", d["stride"])
        if "pad" in d:
            d.setdefault("ph", d["pad"]); d.setdefault("pw", d["pad"])
        if "g" in d:
            d.setdefault("groups", d["g"])
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)

    def symbols(self) -> dict:
        """{sympy symbol: value} for the layer symbols of bounds/symbols.py (b, c, d, h, w, k_h, ..., g).

        So ``lb_expressions()["Q"].subs(layer.symbols() | {M: 65536})`` evaluates a closed
        form for this layer (``subs(layer.to_dict())`` cannot: its string keys become new
        symbols without the integer assumptions, which match nothing).  sympy is imported
        only when this is called.
        """
        from bounds.symbols import LAYER_SYMBOLS  # lazy: complexity stays free of sympy
        return {sym: getattr(self, f) for f, sym in LAYER_SYMBOLS.items()}

    def replace(self, **changes) -> "Layer":
        d = self.to_dict(); d.update(changes)
        return Layer(**d)

    # ----- derived shape ------------------------------------------------------
    @property
    def nh(self) -> int:
        return out_size(self.h, self.kh, self.sh, self.ph)

    @property
    def nw(self) -> int:
        return out_size(self.w, self.kw, self.sw, self.pw)

    @property
    def cg(self) -> int:
        """Input channels per group (the depth of one filter)."""
        return self.c // self.groups

    @property
    def dg(self) -> int:
        """Filters per group."""
        return self.d // self.groups

    @property
    def is_fc(self) -> bool:
        return self.h == self.w == self.kh == self.kw == 1

    @property
    def is_depthwise(self) -> bool:
        return self.groups == self.c and self.groups > 1

    # ----- exact sizes (words) ------------------------------------------------
    @property
    def X(self) -> int:
        """|X| = b c h w input words (padding zeros are not stored)."""
        return self.b * self.c * self.h * self.w

    @property
    def X_used(self) -> int:
        """Input words read by at least one MAC (<= |X|; smaller when windows skip inputs)."""
        return (self.b * self.c * used_inputs_1d(self.h, self.kh, self.sh, self.ph)
                * used_inputs_1d(self.w, self.kw, self.sw, self.pw))

    @property
    def W(self) -> int:
        """|W| = d (c/g) kh kw weight words."""
        return self.d * self.cg * self.kh * self.kw

    @property
    def Y(self) -> int:
        """|Y| = b d nh nw output words."""
        return self.b * self.d * self.nh * self.nw

    @property
    def F(self) -> int:
        """Multiply-accumulates: every output sums (c/g) kh kw products (padding MACs included)."""
        return self.Y * self.cg * self.kh * self.kw

    def check_int64(self) -> "Layer":
        """Raise LayerError if a count (F, |X|, |W|, |Y|) exceeds COUNT_LIMIT, the range where the
        bounds' 64-bit numpy arithmetic is exact and cannot overflow; return the layer otherwise."""
        for what, v in (("F", self.F), ("X", self.X), ("W", self.W), ("Y", self.Y)):
            if v > COUNT_LIMIT:
                raise LayerError(what, f"{v:.3g} exceeds 2^60 = {COUNT_LIMIT:.3g}, the range of the "
                                       "64-bit bound computations; use a smaller layer")
        return self

    @property
    def F_real(self) -> int:
        """MACs whose input is a real word, not a padding zero (<= F; equal when unpadded)."""
        return (self.b * self.d * self.cg * real_taps_1d(self.h, self.kh, self.sh, self.ph)
                * real_taps_1d(self.w, self.kw, self.sw, self.pw))

    @property
    def q(self) -> int:
        """Max outputs one input position feeds per (batch, filter): ceil(kh/sh) ceil(kw/sw)."""
        return -(-self.kh // self.sh) * -(-self.kw // self.sw)

    def describe(self) -> str:
        s = (f"b={self.b} c={self.c} d={self.d} h={self.h} w={self.w} k={self.kh}x{self.kw} "
             f"s={self.sh}x{self.sw} p={self.ph}x{self.pw}")
        if self.groups > 1:
            s += f" g={self.groups}"
        return (self.name + ": " if self.name else "") + s
