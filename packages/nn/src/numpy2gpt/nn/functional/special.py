"""erf and erfc for float16, float32 and float64 arrays, without SciPy (exact GELU needs them), in the input's
dtype (float16 is computed in float32 and rounded, as PyTorch's CPU half kernels).

One idea: for a >= 0, erfc(a) = t * exp(S(y) - a^2) with t = 2 / (2 + a), y = 2t - 1, and S a short Chebyshev
series (Numerical Recipes, 3rd ed., 6.2.2); erfc(-a) = 2 - erfc(a); erf = 1 - erfc, or its Taylor series for
|x| < 0.5. How the coefficients were computed and the measured accuracy (within 4 ulps): the nn README.
GELU's float32 path has its own cheaper form, ``half_erfcx32`` (one polynomial; erfc then needs one exp).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from numpy2gpt.autograd import get_array_module

# Chebyshev coefficients of S(y) = log(erfcx(a) / t); the first one already halved (S = sum c_k T_k(y)).
_CHEB = (
    -0.6513268598908547,
    0.6419697923564902,
    0.019476473204185836,
    -0.009561514786808632,
    -0.0009465953444820369,
    0.00036683949785276145,
    4.252332480690777e-05,
    -2.0278578112534242e-05,
    -1.6242900046470256e-06,
    1.3036558355805232e-06,
    1.5626441722066142e-08,
    -8.523809591492654e-08,
    6.5290544390988515e-09,
    5.059343495551469e-09,
    -9.91364156493033e-10,
    -2.273651222931836e-10,
    9.646791102015527e-11,
    2.3940380830391146e-12,
    -6.886027526497553e-12,
    8.944879273090725e-13,
    3.130921399342958e-13,
    -1.1270822361367252e-13,
    3.810905255189232e-16,
    7.106097613609237e-15,
    -1.5230282014571041e-15,
    -9.457494571291254e-17,
    1.210237189224273e-16,
    -2.816663087746774e-17,
)
# float64 sums all 28 terms with Clenshaw's recurrence (stable for any length). float32 needs only 12
# (truncation error 1.3e-8, below its rounding): as monomials in y their coefficients stay below 0.7, so
# Horner's rule (2 array ops a term instead of Clenshaw's 3) loses nothing in float32.
_MONO32 = tuple(float(c) for c in np.polynomial.chebyshev.cheb2poly(_CHEB[:12])[::-1])  # highest power first

# erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)); 13 terms reach 1e-17 at |x| = 0.5.
_TAYLOR = tuple((-1) ** n / (math.factorial(n) * (2 * n + 1)) * 2.0 / math.sqrt(math.pi) for n in range(13))


# float32 only, for GELU: erfcx(a) / 2 = exp(a^2) erfc(a) / 2 as ONE polynomial in t = 2 / (2 + a), a in [0, inf)
# (t in (0, 1]), so that erfc(a) / 2 = P(t) * exp(-a^2) costs one exp, which GELU's derivative reuses. Degree 10:
# a Chebyshev least-squares fit, weighted for relative error, of erfcx(2/t - 2) / 2 at 6000 Chebyshev nodes of
# [0, 1] (math.erfc in float64), turned into monomials in t. Evaluated by Horner's rule in float32 its relative
# error is below 8e-7 for a <= 3.5, where GELU's Phi is not yet 1 or 0 to float32's precision (measured on a
# grid against math.erfc; beyond, the rounding of exp(-a^2) grows as a^2 ulps, as for any float32 erfc).
_HALF_ERFCX32 = (
    -0.012841673642751622,
    0.032652768389737005,
    0.014463891289098599,
    -0.09822136477703039,
    0.03903301329788826,
    0.029403067223388236,
    0.0901485701892834,
    0.12326242496687181,
    0.1410518512033141,
    0.14104737520136362,
    0.0,  # (fit: 3.3e-16) erfcx(a) -> 0 as a -> inf
)  # highest power first


def half_erfcx32(t: np.ndarray, out: np.ndarray) -> np.ndarray:
    """erfcx(a) / 2 = exp(a^2) erfc(a) / 2 into ``out``, for a float32 array ``t`` = 2 / (2 + a), a >= 0.

    One polynomial in t (``_HALF_ERFCX32``), 20 array passes: within 8e-7 relative for a <= 3.5 (see above).
    """
    np.multiply(t, _HALF_ERFCX32[0], out=out)
    out += _HALF_ERFCX32[1]
    for c in _HALF_ERFCX32[2:-1]:
        out *= t
        out += c
    out *= t  # the constant term is 0
    return out


def erfc_parts(a: np.ndarray, buffers: tuple[np.ndarray, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(S, t) with erfc(a) = t * exp(S - a**2) for a >= 0, so erfcx(a) = t * exp(S).

    ``buffers``: optional work arrays of a's shape and dtype to compute in (five for float64, three for
    float32; the first two come back as S and t), so that a caller looping over chunks allocates nothing.
    """
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"erf needs a float32 or float64 array, got dtype {a.dtype}")
    s, t, y, *rest = buffers or [get_array_module(a).empty_like(a) for _ in range(3 if a.dtype == np.float32 else 5)]
    np.add(a, 2.0, out=t)
    np.divide(2.0, t, out=t)  # t = 2 / (2 + a), in (0, 1]
    np.multiply(t, 2.0, out=y)
    y -= 1.0  # y = 2t - 1
    if a.dtype == np.float32:  # Horner
        s.fill(_MONO32[0])
        for c in _MONO32[1:]:
            s *= y
            s += c
        return s, t
    # Clenshaw: b_k = 2y b_(k+1) - b_(k+2) + c_k for k = n-1 .. 1, then S = c_0 + y b_1 - b_2.
    b1, b2 = rest
    b1.fill(_CHEB[-1])
    b2.fill(0.0)
    for c in _CHEB[-2:0:-1]:
        np.multiply(y, b1, out=s)
        s *= 2.0
        np.subtract(s, b2, out=b2)
        b2 += c
        b1, b2 = b2, b1
    np.multiply(y, b1, out=s)
    s -= b2
    s += _CHEB[0]
    return s, t


def _array(x: Any) -> Any:
    """``x`` as an array: a GPU (CuPy) array as it is, anything else through np.asarray."""
    return x if get_array_module(x) is not np else np.asarray(x)


def erfc(x: np.ndarray) -> np.ndarray:
    """The complementary error function 1 - erf(x), accurate in the tail (erfc(10) = 2.1e-45 in float64)."""
    x = _array(x)
    if x.dtype == np.float16:
        return erfc(x.astype(np.float32)).astype(np.float16)
    if x.ndim == 0:  # ufuncs return scalars for 0-d arrays, and the in-place passes below need arrays
        return erfc(x.reshape(1)).reshape(())
    a = np.abs(x)
    s, t = erfc_parts(a)
    np.square(a, out=a)
    s -= a
    np.exp(s, out=s)
    s *= t  # erfc(|x|)
    # erfc(-a) = 2 - erfc(a): add [x < 0] (2 - 2 erfc(a)) (branch-free; exact for x >= 0)
    np.subtract(1.0, s, out=a)
    a *= 2.0
    a *= x < 0
    s += a
    return s


def erf(x: np.ndarray) -> np.ndarray:
    """The error function 2/sqrt(pi) * integral_0^x exp(-s**2) ds, elementwise, in x's dtype."""
    x = _array(x)
    if x.dtype == np.float16:
        return erf(x.astype(np.float32)).astype(np.float16)
    if x.ndim == 0:
        return erf(x.reshape(1)).reshape(())
    # |x| >= 0.5: erf = 1 - erfc, where erfc <= 0.48 and no digits are lost.
    out = erfc(x)
    np.subtract(1.0, out, out=out)
    small = np.abs(x) < 0.5
    if small.any():
        xs = x[small]
        x2 = xs * xs
        p = get_array_module(xs).full_like(xs, _TAYLOR[-1])
        for c in _TAYLOR[-2::-1]:
            p *= x2
            p += c
        p *= xs
        out[small] = p
    return out
