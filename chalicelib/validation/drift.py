"""Drift statistics between a reference dataset and a new upload, in numpy and the standard library.

This module runs inside Lambda, whose package must stay small: it imports numpy and nothing else from
outside the standard library (no scipy). The tests check every statistic against scipy.

A *profile* summarises one dataset column by column while the validator streams its CSV::

    {"rows": 569,
     "columns": {
       "mean_radius": {"kind": "numeric", "count": 569, "nulls": 0, "invalid": 0, "sample": [...]},
       "region": {"kind": "categorical", "count": 569, "nulls": 3, "invalid": 0, "counts": {...}}}}

``count`` is the number of rows seen including nulls; ``invalid`` the values that were not empty
but not readable as the column's type; ``sample`` is a bounded uniform sample of the readable values
(a ``Reservoir``). ``compare`` turns two profiles into a drift report with a verdict per feature and
for the upload: ``stable``, ``drifted`` or ``insufficient_data`` (the rule is in its docstring and in
docs/contracts.md, the error rates in docs/BENCHMARKS.md).

Statistics and how they relate to scipy 1.18:

* ``ks_2samp(a, b)`` equals ``scipy.stats.ks_2samp(a, b)`` (method='auto', two-sided): the exact
  path (Hodges' lattice paths, Viehmann's recursion) when both samples hold at most 10,000 values,
  the ``kstwo`` distribution (Simard & L'Ecuyer) otherwise.
* ``js_distance`` equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
* ``chi_square`` equals ``scipy.stats.chi2_contingency(table, correction=False)`` on the 2 x k table;
  ``pooled_chi_square`` is the same on the table after merging sparse cells (``pool_sparse_cells``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from chalicelib.validation.contract import DriftThresholds

FloatArray = NDArray[np.float64]

__all__ = [
    "VERDICTS",
    "Reservoir",
    "bin_counts",
    "bin_fractions",
    "categorical_column_profile",
    "chi_square",
    "chi_square_sf",
    "compare",
    "gammaincc",
    "js_distance",
    "ks_2samp",
    "numeric_column_profile",
    "pool_sparse_cells",
    "pooled_chi_square",
    "psi",
    "quantile_edges",
]


# --- reservoir sampling ---------------------------------------------------------------------------


class Reservoir:
    """A uniform sample of at most ``capacity`` finite floats from a stream of chunks.

    Every value gets a uniform random key from a generator seeded with ``seed``; the reservoir keeps
    the ``capacity`` values with the smallest keys. That is an exact uniform sample without
    replacement, it vectorises over a chunk, and the result does not depend on how the stream was
    cut into chunks (the generator yields the same keys either way). NaN and infinities are skipped:
    the profile counts nulls itself, and a sample must stay JSON-serialisable.
    """

    def __init__(self, capacity: int = 5000, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be 1 or more, not {capacity}")
        self.capacity = capacity
        self.seen = 0  # finite values offered so far
        self._rng = np.random.default_rng(seed)
        self._values: FloatArray = np.empty(0)
        self._keys: FloatArray = np.empty(0)

    def add(self, values: ArrayLike) -> None:
        chunk = np.asarray(values, dtype=np.float64).ravel()
        chunk = chunk[np.isfinite(chunk)]
        if chunk.size == 0:
            return
        keys = self._rng.random(chunk.size)
        self.seen += int(chunk.size)
        if self._keys.size >= self.capacity:
            # Once full, only values keyed below the largest kept key can enter: filtering first keeps
            # the partition below small when most of a large chunk cannot make it.
            keep = keys < self._keys.max()
            chunk, keys = chunk[keep], keys[keep]
            if chunk.size == 0:
                return
        values_all = np.concatenate((self._values, chunk))
        keys_all = np.concatenate((self._keys, keys))
        if keys_all.size > self.capacity:
            smallest = np.argpartition(keys_all, self.capacity - 1)[: self.capacity]
            values_all, keys_all = values_all[smallest], keys_all[smallest]
        self._values, self._keys = values_all, keys_all

    def values(self) -> FloatArray:
        """The sample, in key order: the same list whatever the chunking of the stream."""
        return self._values[np.argsort(self._keys, kind="stable")]

    def __len__(self) -> int:
        return int(self._values.size)


# --- two-sample Kolmogorov-Smirnov ----------------------------------------------------------------

_KS_MAX_EXACT_N = 10000  # scipy's MAX_AUTO_N: above it, method='auto' uses the asymptotic distribution


def ks_2samp(a: ArrayLike, b: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test, two-sided: ``(statistic, p-value)``.

    Same result as ``scipy.stats.ks_2samp(a, b)`` with its defaults. Raises ValueError if a sample is
    empty or holds NaN (scipy would raise, or return NaN, respectively).
    """
    x = np.sort(np.asarray(a, dtype=np.float64).ravel())
    y = np.sort(np.asarray(b, dtype=np.float64).ravel())
    n1, n2 = int(x.size), int(y.size)
    if min(n1, n2) == 0:
        raise ValueError("ks_2samp needs two non-empty samples")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("ks_2samp samples must not contain NaN")
    pooled = np.concatenate((x, y))
    # scipy reads the ECDF heights from linspace, not k/n: index it the same way so the statistic is
    # the same float, not merely the same number to within an ulp.
    cdf1 = np.linspace(0.0, 1.0, n1 + 1)[np.searchsorted(x, pooled, side="right")]
    cdf2 = np.linspace(0.0, 1.0, n2 + 1)[np.searchsorted(y, pooled, side="right")]
    diffs = cdf1 - cdf2
    max_s = float(diffs.max())
    min_s = min(max(-float(diffs.min()), 0.0), 1.0)
    d = min_s if min_s > max_s else max_s
    return d, _ks_2samp_pvalue(d, n1, n2)


def _ks_2samp_pvalue(d: float, n1: int, n2: int) -> float:
    if max(n1, n2) <= _KS_MAX_EXACT_N:
        ok, prob = _ks_exact_pvalue(n1, n2, math.gcd(n1, n2), d)
        if ok:
            return _clip01(prob)
    big, small = sorted((float(n1), float(n2)), reverse=True)
    en = big * small / (big + small)
    return _clip01(_kstwo_sf(d, round(en)))


def _ks_exact_pvalue(n1: int, n2: int, g: int, d: float) -> tuple[bool, float]:
    lcm = (n1 // g) * n2
    # The statistic is a multiple of 1/lcm; recover the integer so the lattice count is exact.
    h = round(d * lcm)
    if h == 0:
        return True, 1.0
    prob = _ks_prob_outside_square(n1, h) if n1 == n2 else _ks_outer_prob_inside(n1, n2, g, h)
    if not 0.0 <= prob <= 1.0:
        return False, prob
    return True, prob


def _ks_prob_outside_square(n: int, h: int) -> float:
    # P(D_{n,n} >= h/n) = 2 * (C(2n, n-h) - C(2n, n-2h) + ...) / C(2n, n), evaluated Horner-style on
    # ratios of binomials because the alternating sum itself cancels catastrophically.
    p = 0.0
    k = n // h
    while k >= 0:
        p1 = 1.0
        for j in range(h):
            p1 = (n - k * h - j) * p1 / (n + k * h + j + 1)
        p = p1 * (1.0 - p)
        k -= 1
    return 2 * p


def _ks_outer_prob_inside(m: int, n: int, g: int, h: int) -> float:
    """Share of lattice paths (0,0)->(m,n) that touch |n*x/g - m*y/g| >= h: scipy's p-value, m != n.

    B(i, j) is the share of paths to (i, j) that have left the band; it is 1 outside the band, 0 on the
    in-band part of the first column, and B(i, j) = (i*B(i-1, j) + j*B(i, j-1)) / (i + j) inside
    (Viehmann's form of Hodges' recursion, whose values stay in [0, 1]). scipy fills it column by
    column with a Python loop per cell. Here one numpy step fills a whole anti-diagonal, or, when
    one sample is at least five times the other, a whole column of the smaller dimension: a few
    hundred steps instead of m + n, where a drift upload of 100 rows meets a reference of 5,000.
    """
    if m < n:
        m, n = n, m
    if 5 * n <= m:
        return _ks_outer_prob_columns(m, n, g, h)
    return _ks_outer_prob_diagonals(m, n, g, h)


def _ks_outer_prob_diagonals(m: int, n: int, g: int, h: int) -> float:
    """B(m, n) an anti-diagonal at a time (m >= n): each depends only on the previous one, and every
    cell gets the same floating-point operations as in scipy's loop."""
    mg, ng = m // g, n // g
    step = mg + ng
    idx = np.arange(m + 1, dtype=np.float64)
    prev = np.ones(m + 1)  # anti-diagonal s-1, indexed by i; 1.0 wherever the cell is outside the band
    cur = np.ones(m + 1)
    prev[0] = 0.0  # (0, 0) is inside the band since h > 0
    # The cells each buffer holds that are not 1.0 (written two anti-diagonals ago): resetting only
    # those, not the whole buffer, keeps the work per anti-diagonal proportional to the band's width.
    written = {id(prev): (0, 0), id(cur): (0, -1)}
    for s in range(1, m + n + 1):
        old_lo, old_hi = written[id(cur)]
        if old_lo <= old_hi:
            cur[old_lo : old_hi + 1] = 1.0
        # Cells (i, s-i) inside the band: |ng*i - mg*(s-i)| < h, i.e. mg*s - h < step*i < mg*s + h.
        lo = max(s - n, 0, (mg * s - h) // step + 1)
        hi = min(s, m, -(-(mg * s + h) // step) - 1)
        written[id(cur)] = (lo, hi)
        if lo <= hi:
            if lo == 0:
                cur[0] = 0.0
                lo = 1
            if lo <= hi:
                i = idx[lo : hi + 1]
                # For j == 0 the left neighbour does not exist; prev[i] is a finite filler times 0.
                # i + j is s exactly (small integers in floats), so dividing by s is the same operation.
                cur[lo : hi + 1] = (prev[lo - 1 : hi] * i + prev[lo : hi + 1] * (s - i)) / s
        prev, cur = cur, prev
    return float(prev[m])


_CHUNK_LOG = 600.0  # a running product below exp(-600) starts a new chunk (1 / it must stay finite)


def _ks_outer_prob_columns(m: int, n: int, g: int, h: int) -> float:
    """B(m, n) a column j of the smaller dimension at a time (m >= n).

    Down a column the recursion is linear, x_i = a_i x_(i-1) + c_i with a_i = i / (i+j) and
    c_i = j B(i, j-1) / (i+j), so x_i = P_i (x_start + sum_k c_k / P_k) with P_i the running product
    of the a: two cumulative sums of positive terms, no cancellation. Products are kept in logs and
    restarted in chunks before they underflow. The result agrees with the anti-diagonal form (and
    scipy) to about 1e-13 relative (the tests hold both to scipy).
    """
    mg, ng = m // g, n // g
    with np.errstate(divide="ignore"):
        log_int = np.log(np.arange(m + n + 1, dtype=np.float64))  # log(0) is never used
    prev = np.ones(m + 1)  # column j-1, indexed by i; 1.0 wherever the cell is outside the band
    cur = np.ones(m + 1)
    first_hi = min(m, -(-h // ng) - 1)  # column 0: cells with ng*i < h are inside, and 0
    prev[: first_hi + 1] = 0.0
    written = {id(prev): (0, first_hi), id(cur): (0, -1)}
    for j in range(1, n + 1):
        old_lo, old_hi = written[id(cur)]
        if old_lo <= old_hi:
            cur[old_lo : old_hi + 1] = 1.0
        # Cells (i, j) inside the band: mg*j - h < ng*i < mg*j + h.
        lo = max(0, (mg * j - h) // ng + 1)
        hi = min(m, -(-(mg * j + h) // ng) - 1)
        written[id(cur)] = (lo, hi)
        if lo > hi:
            return 1.0  # every path leaves the band in this column
        first = lo
        if lo == 0:
            cur[0] = prev[0]  # B(0, j) = B(0, j-1)
            first = 1
        if first <= hi:
            x_start = float(cur[first - 1]) if first > lo else 1.0  # above the band: 1
            log_a = log_int[first : hi + 1] - log_int[first + j : hi + 1 + j]
            log_weight = math.log(j) - log_int[first + j : hi + 1 + j]  # log(j / (i+j))
            cur[first : hi + 1] = _linear_recurrence(log_a, log_weight, prev[first : hi + 1], x_start)
        prev, cur = cur, prev
    return float(prev[m])


def _linear_recurrence(
    log_a: FloatArray, log_weight: FloatArray, y: FloatArray, x_start: float
) -> FloatArray:
    """x_k = a_k x_(k-1) + w_k y_k from x_start, for a_k in (0, 1), w_k > 0, y_k >= 0."""
    out = np.empty(log_a.size)
    start = 0
    while start < log_a.size:
        log_p = np.cumsum(log_a[start:])
        end = start + max(1, int(np.searchsorted(-log_p, _CHUNK_LOG, side="right")))
        log_p = log_p[: end - start]
        terms = y[start:end] * np.exp(log_weight[start:end] - log_p)
        # Shares of paths: rounding may carry one past 1.0, which the caller would take for an error.
        out[start:end] = np.minimum(np.exp(log_p) * (x_start + np.cumsum(terms)), 1.0)
        x_start, start = float(out[end - 1]), end
    return out


# The Kolmogorov distribution of D_n for n samples (scipy.stats.kstwo), survival function only.
# Port of scipy/stats/_ksstats.py (Simard & L'Ecuyer's choice of method by n and n*x^2).

_E128 = 128
_EP128 = 2.0**128
_EM128 = 2.0**-128
_SQRT2PI = math.sqrt(2 * math.pi)
_LOG_2PI = math.log(2 * math.pi)
_MIN_LOG = -708
_SQRT3 = math.sqrt(3)
_PI_SQUARED = math.pi**2
_PI_FOUR = math.pi**4
_PI_SIX = math.pi**6
# B_{2j} / (2j) / (2j-1) for j = 8..1 (Bernoulli numbers): the series of log(k!) beyond Stirling's formula.
_STIRLING_COEFFS = [
    -2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3, 8.4175084175084175084e-4,
    -5.952380952380952381e-4, 7.9365079365079365079e-4, -2.7777777777777777778e-3, 8.3333333333333333333e-2,
]  # fmt: skip


def _kstwo_sf(x: float, n: int) -> float:
    """P(D_n > x), as ``scipy.stats.kstwo.sf(x, n)``."""
    if n < 1:
        return math.nan
    if x <= 0.5 / n:
        return 1.0
    if x >= 1.0:
        return 0.0
    return _kolmogn_sf(n, x)


def _log_nfactorial_div_n_pow_n(n: int) -> float:
    # log(n! / n**n) by Stirling's series, with n*log(n) removed up front to avoid cancellation.
    rn = 1.0 / n
    return float(np.log(n) / 2 - n + _LOG_2PI / 2 + rn * np.polyval(_STIRLING_COEFFS, rn / n))


def _kolmogn_sf(n: int, x: float) -> float:
    t = n * x
    if t <= 1.0:  # Ruben-Gambino: 1/2n <= x <= 1/n
        if t <= 0.5:
            return 1.0
        if n <= 140:
            prob = float(np.prod(np.arange(1, n + 1) * (1.0 / n) * (2 * t - 1)))
        else:
            prob = float(np.exp(_log_nfactorial_div_n_pow_n(n) + n * np.log(2 * t - 1)))
        return _clip01(1.0 - prob)
    if t >= n - 1:  # Ruben-Gambino
        return _clip01(2 * (1.0 - x) ** n)
    if x >= 0.5:
        return _clip01(2 * _smirnov_sf(n, x))
    nxsquared = t * x
    if n <= 140:
        if nxsquared <= 0.754693:
            return _clip01(1.0 - _kolmogn_dmtw_cdf(n, x))
        if nxsquared <= 4:
            return _clip01(1.0 - _kolmogn_pomeranz_cdf(n, x))
        return _clip01(2 * _smirnov_sf(n, x))
    if nxsquared >= 370.0:
        return 0.0
    if nxsquared >= 2.2:
        return _clip01(2 * _smirnov_sf(n, x))
    small_x = n <= 100000 and n * x**1.5 <= 1.4
    cdf = _kolmogn_dmtw_cdf(n, x) if small_x else _kolmogn_pelz_good_cdf(n, x)
    return _clip01(1.0 - cdf)


def _kolmogn_dmtw_cdf(n: int, d: float) -> float:
    # Durbin's matrix algorithm as evaluated by Marsaglia, Tsang & Wang: the k-th diagonal entry of
    # (n!/n^n) H^n, with H^n by repeated squaring and power-of-two rescaling to stay in range.
    if d >= 1.0:
        return 1.0
    nd = n * d
    if nd <= 0.5:
        return 0.0
    k = math.ceil(nd)
    h = k - nd
    m = 2 * k - 1
    hm = np.zeros((m, m))
    intm = np.arange(1, m + 1)
    v = 1.0 - h**intm
    w = np.empty(m)
    fac = 1.0
    for j in intm:
        w[j - 1] = fac
        fac /= j  # may underflow, harmlessly
        v[j - 1] *= fac
    tt = max(2 * h - 1.0, 0) ** m - 2 * h**m
    v[-1] = (1.0 + tt) * fac
    for i in range(1, m):
        hm[i - 1 :, i] = w[: m - i + 1]
    hm[:, 0] = v
    hm[-1, :] = np.flip(v, axis=0)

    hpwr = np.eye(m)
    nn = n
    expnt = 0
    h_expnt = 0
    while nn > 0:
        if nn % 2:
            hpwr = np.matmul(hpwr, hm)
            expnt += h_expnt
        hm = np.matmul(hm, hm)
        h_expnt *= 2
        if abs(hm[k - 1, k - 1]) > _EP128:
            hm /= _EP128
            h_expnt += _E128
        nn //= 2
    p = float(hpwr[k - 1, k - 1])
    for i in range(1, n + 1):
        p = i * p / n
        if abs(p) < _EM128:
            p *= _EP128
            expnt -= _E128
    if expnt != 0:
        p = math.ldexp(p, expnt)
    return _clip01(p)


def _pomeranz_j1j2(i: int, n: int, ll: int, ceilf: int, roundf: int) -> tuple[int, int]:
    if i == 0:
        j1, j2 = -ll - ceilf - 1, ll + ceilf - 1
    else:
        ip1div2, ip1mod2 = divmod(i + 1, 2)
        if ip1mod2 == 0:
            if ip1div2 == n + 1:
                j1, j2 = n - ll - ceilf - 1, n + ll + ceilf - 1
            else:
                j1, j2 = ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1
        else:
            j1, j2 = ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1
    return max(j1 + 2, 0), min(j2, n)


def _kolmogn_pomeranz_cdf(n: int, x: float) -> float:
    # Pomeranz's recursion: each row is the previous one convolved with (unnormalised) Poisson terms;
    # only a sliding window of two rows is kept, rescaled by powers of two against underflow.
    t = n * x
    ll = math.floor(t)
    f = 1.0 * (t - ll)
    g = min(f, 1.0 - f)
    ceilf = 1 if f > 0 else 0
    roundf = 1 if f > 0.5 else 0
    npwrs = 2 * (ll + 1)
    gpower = np.empty(npwrs)
    twogpower = np.empty(npwrs)
    onem2gpower = np.empty(npwrs)
    gpower[0] = twogpower[0] = onem2gpower[0] = 1.0
    expnt = 0
    g_over_n, two_g_over_n, one_minus_two_g_over_n = g / n, 2 * g / n, (1 - 2 * g) / n
    for m in range(1, npwrs):
        gpower[m] = gpower[m - 1] * g_over_n / m
        twogpower[m] = twogpower[m - 1] * two_g_over_n / m
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / m

    v0 = np.zeros(npwrs)
    v1 = np.zeros(npwrs)
    v1[0] = 1
    v0s, v1s = 0, 0
    j1, j2 = _pomeranz_j1j2(0, n, ll, ceilf, roundf)
    for i in range(1, 2 * n + 2):
        k1 = j1
        v0, v1 = v1, v0
        v0s, v1s = v1s, v0s
        v1.fill(0.0)
        j1, j2 = _pomeranz_j1j2(i, n, ll, ceilf, roundf)
        pwrs = gpower if i in (1, 2 * n + 1) else (twogpower if i % 2 else onem2gpower)
        ln2 = j2 - k1 + 1
        if ln2 > 0:
            conv = np.convolve(v0[k1 - v0s : k1 - v0s + ln2], pwrs[:ln2])
            conv_start = j1 - k1
            conv_len = j2 - j1 + 1
            v1[:conv_len] = conv[conv_start : conv_start + conv_len]
            if 0 < np.max(v1) < _EM128:
                v1 *= _EP128
                expnt -= _E128
            v1s = v0s + j1 - k1
    ans = float(v1[n - v1s])
    for m in range(1, n + 1):
        if abs(ans) > _EP128:
            ans *= _EM128
            expnt += _E128
        ans *= m
    if expnt != 0:
        ans = math.ldexp(ans, expnt)
    return _clip01(ans)


def _kolmogn_pelz_good_cdf(n: int, x: float) -> float:
    # Pelz & Good: the Li-Chien/Korolyuk expansion in 1/sqrt(n), transformed with Jacobi theta
    # functions so that it converges quickly for small n*x^2.
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    z = math.sqrt(n) * x
    zsquared, zthree, zfour, zsix = z**2, z**3, z**4, z**6
    qlog = -_PI_SQUARED / 8 / zsquared
    if qlog < _MIN_LOG:
        return 0.0
    q = math.exp(qlog)
    k1a = -zsquared
    k1b = _PI_SQUARED / 4
    k2a = 6 * zsix + 2 * zfour
    k2b = (2 * zfour - 5 * zsquared) * _PI_SQUARED / 4
    k2c = _PI_FOUR * (1 - 2 * zsquared) / 16
    k3d = _PI_SIX * (5 - 30 * zsquared) / 64
    k3c = _PI_FOUR * (-60 * zsquared + 212 * zfour) / 16
    k3b = _PI_SQUARED * (135 * zfour - 96 * zsix) / 4
    k3a = -30 * zsix - 90 * z**8

    k0to3 = np.zeros(4)
    maxk = math.ceil(16 * z / math.pi)
    for k in range(maxk, 0, -1):
        m = 2 * k - 1
        msquared, mfour, msix = m**2, m**4, m**6
        qpower = np.power(q, 8 * k)
        coeffs = np.array(
            [
                1.0,
                k1a + k1b * msquared,
                k2a + k2b * msquared + k2c * mfour,
                k3a + k3b * msquared + k3c * mfour + k3d * msix,
            ]
        )
        k0to3 *= qpower
        k0to3 += coeffs
    k0to3 *= q
    k0to3 *= _SQRT2PI
    k0to3 /= np.array([z, 6 * zfour, 72 * z**7, 6480 * z**10])

    q = math.exp(-_PI_SQUARED / 2 / zsquared)
    ks = np.arange(maxk, 0, -1)
    ksquared = ks**2
    sqrt3z = _SQRT3 * z
    kspi = np.pi * ks
    qpwers = q**ksquared
    k2extra = np.sum(ksquared * qpwers)
    k2extra *= _PI_SQUARED * _SQRT2PI / (-36 * zthree)
    k0to3[2] += k2extra
    k3extra = np.sum((sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qpwers)
    k3extra *= _PI_SQUARED * _SQRT2PI / (216 * zsix)
    k0to3[3] += k3extra
    k0to3 /= np.power(n * 1.0, np.arange(len(k0to3)) / 2.0)
    return float(sum(k0to3))


_SMIRNOV_MAX_COMPUTE_N = 1000000
_MINLOG = -7.08396418532264106224e2  # log(2**-1022)


def _stirling_remainder(k: float) -> float:
    """log(k!) - (k*log(k) - k + log(2*pi*k)/2), also lgamma(k) - ((k - 1/2)*log(k) - k + log(2*pi)/2)."""
    if k < 10:
        return math.lgamma(k + 1) - (k * math.log(k) - k + 0.5 * math.log(2 * math.pi * k))
    rk = 1.0 / k
    rk2 = rk * rk
    series = 0.0
    for coeff in _STIRLING_COEFFS:  # Horner by hand: np.polyval costs microseconds per term here
        series = series * rk2 + coeff
    return rk * series


def _log1m_ratio(whole: int, alpha: float, denominator: int) -> float:
    """log((whole - alpha) / denominator) = log(1 - (denominator - whole + alpha) / denominator).

    log1p while the ratio subtracted is small; near 1, the difference from the exact integer part, as
    nxfl + alpha may round up to the next integer (then log1p(-1) would fail).
    """
    ratio = (denominator - whole + alpha) / denominator
    if ratio < 0.5:
        return math.log1p(-ratio)
    return math.log((whole - alpha) / denominator)


def _smirnov_sf(n: int, x: float) -> float:
    """P(D_n^+ > x), the one-sided statistic: ``scipy.special.smirnov(n, x)``.

    Birnbaum & Tingey's sum, every term positive. scipy evaluates it in double-double arithmetic; here
    each term is the exp of a logarithm arranged so that nothing large cancels (Stirling's formula for
    the binomial, log1p, the integer part of n*x taken exactly), which keeps the relative error below
    1e-13 up to n = 1e5 (the tests compare with scipy). Only the lower sum is implemented: scipy
    switches to its upper sum only when n*x^2 <= 1/4 or n*x < 1, which ``_kolmogn_sf`` never passes.
    """
    if not (n > 0 and 0.0 <= x <= 1.0):
        return math.nan
    if n == 1:
        return 1.0 - x
    if x == 0.0:
        return 1.0
    if x == 1.0:
        return 0.0
    exact_nx = Fraction(x) * n
    nxfl = math.floor(exact_nx)
    alpha = float(exact_nx - nxfl)  # n*x = nxfl + alpha, with 0 <= alpha < 1
    n1mxfl = n - nxfl - (0 if alpha == 0 else 1)
    if alpha == 0:
        n1mxfl -= 1
    if nxfl == 0 or (nxfl == 1 and alpha == 0):
        return 1.0 - x * (1.0 + x) ** (n - 1)
    if -2 * n * x * x < _MINLOG:
        return 0.0
    if nxfl >= n - 1:
        return (1.0 - x) ** n
    if n > _SMIRNOV_MAX_COMPUTE_N:
        logp = -((6.0 * n * x + 1) ** 2) / 18.0 / n
        return math.exp(logp) if logp < -math.log(2) else 1.0 - (-math.expm1(logp))
    n_terms = n1mxfl + 1
    vmid = n // 2
    # (1 - x)^n as exp(n*log1p(-x)): pow on the rounded 1 - x would carry n times its rounding error.
    total = math.exp(n * math.log1p(-x)) / x
    nx = nxfl + alpha
    eps = float(np.finfo(np.float64).eps)
    half_log_n_over_2pi = 0.5 * math.log(n / (2 * math.pi))
    stirling_n = _stirling_remainder(n)
    for v in range(1, n_terms):
        # log of C(n,v) (x+v/n)^(v-1) (1-x-v/n)^(n-v) with Stirling's formula for the binomial, so the
        # large n*log(n)-sized parts cancel algebraically (into the two log1p) instead of numerically.
        log_term = (
            v * math.log1p(nx / v)
            + (n - v) * _log1m_ratio(n - v - nxfl, alpha, n - v)
            - math.log((nx + v) / n)
            + half_log_n_over_2pi
            - 0.5 * math.log(v * (n - v))
            + stirling_n
            - _stirling_remainder(v)
            - _stirling_remainder(n - v)
        )
        term = math.exp(log_term)
        if term != 0.0:
            total += term
            if 4 * (n_terms - v) * term < eps * total and v != n_terms - 1:
                break
        elif v > vmid:
            break
    return _clip01(x * total)


# --- population stability index -----------------------------------------------------------------


def psi(expected_fractions: ArrayLike, actual_fractions: ArrayLike, eps: float = 1e-4) -> float:
    """Population stability index: sum over bins of (a - e) * ln(a / e).

    Each fraction is floored at ``eps`` first (no renormalisation): an empty bin would otherwise make
    the index infinite, and a bin holding under 0.01% of the rows should not dominate the score.
    """
    e = np.maximum(np.asarray(expected_fractions, dtype=np.float64), eps)
    a = np.maximum(np.asarray(actual_fractions, dtype=np.float64), eps)
    if e.shape != a.shape:
        raise ValueError(f"psi needs fractions over the same bins, got {e.shape} and {a.shape}")
    return float(np.sum((a - e) * np.log(a / e)))


def quantile_edges(sample: ArrayLike, bins: int) -> FloatArray:
    """Bin edges at the reference sample's quantiles, outer edges -inf and +inf.

    Repeated quantiles (ties, discrete or constant columns) collapse into one edge, so there may be
    fewer than ``bins`` bins; an empty sample gives a single bin. Bins are closed on the left.
    """
    if bins < 1:
        raise ValueError(f"bins must be 1 or more, not {bins}")
    values = np.asarray(sample, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0 or bins == 1:
        inner = np.empty(0)
    else:
        inner = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    return np.concatenate(([-np.inf], inner, [np.inf]))


def bin_counts(values: ArrayLike, edges: ArrayLike) -> FloatArray:
    """Number of the finite ``values`` in each bin [edges[i], edges[i+1])."""
    edge_array = np.asarray(edges, dtype=np.float64)
    data = np.asarray(values, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    n_bins = edge_array.size - 1
    if n_bins < 1:
        raise ValueError("bin_counts needs at least two edges")
    index = np.clip(np.searchsorted(edge_array, data, side="right") - 1, 0, n_bins - 1)
    return np.bincount(index, minlength=n_bins).astype(np.float64)


def bin_fractions(values: ArrayLike, edges: ArrayLike) -> FloatArray:
    """Share of the finite ``values`` in each bin [edges[i], edges[i+1]); all zeros when none are."""
    counts = bin_counts(values, edges)
    total = counts.sum()
    return counts / total if total else counts


# --- categorical statistics -----------------------------------------------------------------------


def js_distance(p_counts: ArrayLike, q_counts: ArrayLike) -> float:
    """Jensen-Shannon distance, base 2 (0 = same mix, 1 = disjoint), between two count vectors.

    Same as ``scipy.spatial.distance.jensenshannon(p, q, base=2)``, except that a divergence that
    rounds to a tiny negative number gives 0.0 where scipy gives NaN. Raises ValueError if either
    vector sums to zero.
    """
    p = np.asarray(p_counts, dtype=np.float64)
    q = np.asarray(q_counts, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"js_distance needs counts over the same categories, got {p.shape} and {q.shape}")
    p_total, q_total = float(p.sum()), float(q.sum())
    if p_total <= 0 or q_total <= 0:
        raise ValueError("js_distance needs two non-empty count vectors")
    p = p / p_total
    q = q / q_total
    m = (p + q) / 2.0
    js = _rel_entr_sum(p, m) + _rel_entr_sum(q, m)
    js /= np.log(2.0)
    return float(np.sqrt(max(js / 2.0, 0.0)))


def _rel_entr_sum(x: FloatArray, y: FloatArray) -> float:
    # scipy.special.rel_entr: x*log(x/y), and 0 where x == 0 (y > 0 wherever x > 0 here, as y = mean).
    positive = x > 0
    return float(np.sum(x[positive] * np.log(x[positive] / y[positive])))


def chi_square(ref_counts: ArrayLike, cur_counts: ArrayLike) -> tuple[float, float]:
    """Chi-square test of homogeneity of two count vectors: ``(statistic, p-value)``.

    The 2 x k contingency table without Yates' correction, as
    ``scipy.stats.chi2_contingency(table, correction=False)``; categories empty in both rows are
    dropped first (scipy would refuse them). One category left gives (0.0, 1.0), like scipy. Raises
    ValueError if a row sums to zero.
    """
    ref = np.asarray(ref_counts, dtype=np.float64).ravel()
    cur = np.asarray(cur_counts, dtype=np.float64).ravel()
    if ref.shape != cur.shape:
        raise ValueError(f"chi_square needs counts over the same categories, got {ref.shape} and {cur.shape}")
    if (ref < 0).any() or (cur < 0).any():
        raise ValueError("chi_square counts must be non-negative")
    keep = (ref + cur) > 0
    table = np.vstack((ref[keep], cur[keep]))
    if table.shape[1] == 0 or table[0].sum() == 0 or table[1].sum() == 0:
        raise ValueError("chi_square needs two non-empty count vectors")
    dof = table.shape[1] - 1
    if dof == 0:
        return 0.0, 1.0
    expected = np.multiply.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, chi_square_sf(statistic, dof)


def chi_square_sf(statistic: float, dof: int) -> float:
    """P(X > statistic) for X chi-square with ``dof`` degrees of freedom (``scipy.stats.chi2.sf``)."""
    return gammaincc(dof / 2.0, statistic / 2.0)


_GAMMA_EPS = 1e-16
_GAMMA_ITMAX = 100000
_GAMMA_FPMIN = 1e-300


def gammaincc(a: float, x: float) -> float:
    """Regularized upper incomplete gamma function Q(a, x) = Gamma(a, x) / Gamma(a).

    Numerical Recipes' method: the series for P(a, x) when x < a + 1 (Q = 1 - P is then not small, so
    subtracting loses nothing), else the continued fraction for Q by Lentz's method, which keeps full
    relative accuracy far into the tail. Both run to a relative term size of 1e-16.
    """
    if a <= 0 or x < 0 or math.isnan(x):
        raise ValueError(f"gammaincc needs a > 0 and x >= 0, got a={a}, x={x}")
    if x == 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    log_prefactor = _log_gamma_prefactor(a, x)
    if x < a + 1:
        term = 1.0 / a
        total = term
        ap = a
        for _ in range(_GAMMA_ITMAX):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * _GAMMA_EPS:
                break
        return _clip01(1.0 - total * math.exp(log_prefactor))
    b = x + 1 - a
    c = 1 / _GAMMA_FPMIN
    d = 1 / b
    h = d
    for i in range(1, _GAMMA_ITMAX + 1):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        if abs(d) < _GAMMA_FPMIN:
            d = _GAMMA_FPMIN
        c = b + an / c
        if abs(c) < _GAMMA_FPMIN:
            c = _GAMMA_FPMIN
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < _GAMMA_EPS:
            break
    return _clip01(math.exp(log_prefactor) * h)


# --- sparse cells --------------------------------------------------------------------------------

MIN_EXPECTED = 5.0  # the chi-square approximation needs about 5 expected rows per cell (Cochran)


def pool_sparse_cells(
    ref_counts: ArrayLike, cur_counts: ArrayLike, min_expected: float = MIN_EXPECTED
) -> tuple[FloatArray, FloatArray]:
    """Two count vectors with their sparse cells merged, so that a chi-square test on them holds.

    Cells empty in both rows are dropped. Every cell whose expected count in either row is below
    ``min_expected`` joins one pooled cell; if that cell is still below it, it is merged into the
    smallest of the others. The totals of both rows are kept; one cell may be all that is left.
    """
    ref = np.asarray(ref_counts, dtype=np.float64).ravel()
    cur = np.asarray(cur_counts, dtype=np.float64).ravel()
    if ref.shape != cur.shape:
        raise ValueError(
            f"pool_sparse_cells needs counts over the same cells, got {ref.shape} and {cur.shape}"
        )
    keep = (ref + cur) > 0
    ref, cur = ref[keep], cur[keep]
    total = float(ref.sum() + cur.sum())
    if total <= 0:
        return ref, cur
    smaller_row = min(float(ref.sum()), float(cur.sum()))  # its expected counts are the smaller ones

    def expected(cells: FloatArray) -> FloatArray:
        return cells * smaller_row / total

    sparse = expected(ref + cur) < min_expected
    if not sparse.any():
        return ref, cur
    pooled_ref, pooled_cur = float(ref[sparse].sum()), float(cur[sparse].sum())
    ref, cur = ref[~sparse], cur[~sparse]
    if ref.size and expected(np.array([pooled_ref + pooled_cur]))[0] < min_expected:
        smallest = int(np.argmin(ref + cur))
        ref[smallest] += pooled_ref
        cur[smallest] += pooled_cur
        return ref, cur
    return np.append(ref, pooled_ref), np.append(cur, pooled_cur)


def pooled_chi_square(ref_counts: ArrayLike, cur_counts: ArrayLike) -> tuple[float, float]:
    """``chi_square`` on the counts after ``pool_sparse_cells``: ``(statistic, p-value)``."""
    return chi_square(*pool_sparse_cells(ref_counts, cur_counts))


def _log_gamma_prefactor(a: float, x: float) -> float:
    """log(x^a e^-x / Gamma(a)).

    Evaluated directly, the three terms are each about a*log(a) and cancel, leaving a relative error
    of eps*a*log(a) in Q (1e-12 at a = 1000). With Stirling's formula for lgamma(a) the cancelling
    parts meet as a*log(x/a) + (a - x), or a*(log1p(t) - t) near x = a, which stays accurate.
    """
    if a < 10:
        return -x + a * math.log(x) - math.lgamma(a)
    t = (x - a) / a
    core = a * (math.log1p(t) - t) if abs(t) < 0.5 else a * math.log(x / a) + (a - x)
    return core + 0.5 * math.log(a / (2 * math.pi)) - _stirling_remainder(a)


# --- profiles and the drift report ---------------------------------------------------------------


def numeric_column_profile(count: int, nulls: int, reservoir: Reservoir, invalid: int = 0) -> dict[str, Any]:
    """Profile of a numeric column: rows seen (nulls included), nulls, unreadable values, and the
    reservoir's sample of the readable ones."""
    return {
        "kind": "numeric",
        "count": int(count),
        "nulls": int(nulls),
        "invalid": int(invalid),
        "sample": [float(v) for v in reservoir.values().tolist()],
    }


def categorical_column_profile(
    count: int, nulls: int, counts: Mapping[Any, int], invalid: int = 0
) -> dict[str, Any]:
    """Profile of a categorical column: rows seen (nulls included), nulls, unreadable values, and the
    count per readable value.

    Values become strings, as JSON object keys would make them anyway.
    """
    merged: dict[str, int] = {}
    for value, n in counts.items():
        merged[str(value)] = merged.get(str(value), 0) + int(n)
    return {
        "kind": "categorical",
        "count": int(count),
        "nulls": int(nulls),
        "invalid": int(invalid),
        "counts": dict(sorted(merged.items())),
    }


VERDICTS = ("stable", "drifted", "insufficient_data")
# The tests run on each feature, every one at the upload's level (ks_pvalue / all tests): a numeric
# feature's KS test, chi-square over its PSI bins, missing-rate test and "no usable value left"; a
# categorical feature's chi-square over its categories and the two missing-value tests.
NUMERIC_TESTS = 4
CATEGORICAL_TESTS = 3


def compare(
    reference: Mapping[str, Any],
    current: Mapping[str, Any],
    thresholds: DriftThresholds,
    columns: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Drift report of ``current`` against ``reference`` (two profiles), per feature and overall.

    Compares the columns present in both profiles (only those in ``columns`` if given). Every test
    of the upload runs at the level ``thresholds.ks_pvalue / m``, m the number of tests (Bonferroni),
    so that an upload drawn from the reference's distribution is called drifted with a chance of at
    most ``ks_pvalue``. A feature:

    * drifted when a test rejects at that level: a numeric feature's KS test; its PSI above
      ``thresholds.psi`` with the chi-square over the PSI bins rejecting; a categorical feature's PSI
      or Jensen-Shannon distance above their thresholds with the chi-square over the categories
      rejecting; the missing rate (empty or unreadable values) moved by more than
      ``thresholds.missing_rate_delta`` with its 2 x 2 chi-square rejecting; or no usable value left
      where the reference had some (unless that is likely at the reference's missing rate). A change
      of kind (numeric <-> categorical) is drift too;
    * is ``insufficient_data`` when it did not drift and either side has fewer than
      ``thresholds.min_values`` usable values;
    * is stable otherwise.

    The dataset drifted when any feature drifted (one badly shifted feature is enough); otherwise it
    is ``insufficient_data`` when the upload has fewer than ``min_values`` rows or no feature could
    be judged; otherwise stable. Statistics not computed are None; the report is plain JSON.
    """
    ref_columns: Mapping[str, Any] = reference.get("columns") or {}
    cur_columns: Mapping[str, Any] = current.get("columns") or {}
    wanted = list(columns) if columns is not None else sorted(set(ref_columns) | set(cur_columns))
    compared = [name for name in wanted if name in ref_columns and name in cur_columns]
    not_compared = sorted({name for name in wanted if name not in compared})

    kinds: dict[str, str] = {}
    for name in compared:
        ref_kind, cur_kind = ref_columns[name].get("kind"), cur_columns[name].get("kind")
        if ref_kind != cur_kind:
            kinds[name] = "changed"
        elif ref_kind in ("numeric", "categorical"):
            kinds[name] = str(ref_kind)
        else:
            not_compared.append(name)
    tests = sum(
        {"numeric": NUMERIC_TESTS, "categorical": CATEGORICAL_TESTS}.get(k, 0) for k in kinds.values()
    )
    level = thresholds.ks_pvalue / tests if tests else thresholds.ks_pvalue

    features: dict[str, dict[str, Any]] = {}
    for name, kind in kinds.items():
        ref_col, cur_col = ref_columns[name], cur_columns[name]
        if kind == "numeric":
            features[name] = _compare_numeric(ref_col, cur_col, thresholds, level)
        elif kind == "categorical":
            features[name] = _compare_categorical(ref_col, cur_col, thresholds, level)
        else:
            ref_kind, cur_kind = ref_col.get("kind"), cur_col.get("kind")
            features[name] = {
                "kind": cur_kind,
                "reference_kind": ref_kind,
                "verdict": "drifted",
                "drifted": True,
                "reasons": [
                    f"the column was {ref_kind} in the reference and is {cur_kind} now: check the producer"
                ],
            }
    drifted = [name for name, feature in features.items() if feature["verdict"] == "drifted"]
    insufficient = [name for name, feature in features.items() if feature["verdict"] == "insufficient_data"]
    rows = _as_int(current.get("rows"))
    reasons: list[str] = []
    if drifted:
        verdict = "drifted"
        reasons.append(f"{len(drifted)} of {len(features)} features drifted: one is enough")
    elif rows < thresholds.min_values:
        verdict = "insufficient_data"
        reasons.append(
            f"{rows} rows, fewer than drift.min_values {thresholds.min_values}: too few to judge drift"
        )
    elif features and len(insufficient) == len(features):
        verdict = "insufficient_data"
        reasons.append(f"no feature has drift.min_values {thresholds.min_values} usable values on both sides")
    else:
        verdict = "stable"
    return {
        "features": features,
        "drifted_features": drifted,
        "insufficient_features": insufficient,
        "drifted_fraction": float(len(drifted) / len(features)) if features else 0.0,
        "tests": tests,
        "test_level": float(level),
        "min_values": thresholds.min_values,
        "verdict": verdict,
        "reasons": reasons,
        "not_compared": sorted(set(not_compared)),
    }


class _Side:
    """One side of a feature: rows seen, and of them the empty and the unreadable values."""

    def __init__(self, column: Mapping[str, Any]) -> None:
        self.count = max(_as_int(column.get("count")), 0)
        self.nulls = min(max(_as_int(column.get("nulls")), 0), self.count)
        self.unreadable = min(max(_as_int(column.get("invalid")), 0), self.count - self.nulls)
        self.missing = self.nulls + self.unreadable
        self.usable = self.count - self.missing

    def rate(self, part: int) -> float | None:
        return float(part / self.count) if self.count > 0 else None


def _compare_numeric(
    ref_col: Mapping[str, Any], cur_col: Mapping[str, Any], th: DriftThresholds, level: float
) -> dict[str, Any]:
    ref_sample = _finite_sample(ref_col.get("sample"))
    cur_sample = _finite_sample(cur_col.get("sample"))
    ref, cur = _Side(ref_col), _Side(cur_col)
    report: dict[str, Any] = {
        "kind": "numeric",
        "psi": None,
        "psi_pvalue": None,
        "ks_statistic": None,
        "ks_pvalue": None,
        "reference_sample_size": int(ref_sample.size),
        "current_sample_size": int(cur_sample.size),
    }
    reasons = _missing_values(report, ref, cur, th, level)
    ref_n, cur_n = min(ref.usable, int(ref_sample.size)), min(cur.usable, int(cur_sample.size))
    judged = min(ref_n, cur_n) >= th.min_values
    if judged:
        edges = quantile_edges(ref_sample, th.bins)
        ref_bins, cur_bins = bin_counts(ref_sample, edges), bin_counts(cur_sample, edges)
        score = psi(ref_bins / ref_sample.size, cur_bins / cur_sample.size)
        _, psi_pvalue = pooled_chi_square(ref_bins, cur_bins)
        statistic, pvalue = ks_2samp(ref_sample, cur_sample)
        report.update(
            psi=_json_float(score),
            psi_pvalue=_json_float(psi_pvalue),
            ks_statistic=_json_float(statistic),
            ks_pvalue=_json_float(pvalue),
        )
        if pvalue < level:
            reasons.append(
                f"KS p-value {pvalue:.3g} < {level:.3g}: the values no longer look drawn from the "
                f"reference distribution (largest CDF gap {statistic:.3g})"
            )
        if score > th.psi and psi_pvalue < level:
            reasons.append(
                f"PSI {score:.3g} > {th.psi:g} (p-value {psi_pvalue:.3g} < {level:.3g}): the distribution shifted"
            )
    return _feature_verdict(report, reasons, judged, ref_n, cur_n, th)


def _compare_categorical(
    ref_col: Mapping[str, Any], cur_col: Mapping[str, Any], th: DriftThresholds, level: float
) -> dict[str, Any]:
    ref_counts = _positive_counts(ref_col.get("counts"))
    cur_counts = _positive_counts(cur_col.get("counts"))
    categories = sorted(set(ref_counts) | set(cur_counts))
    ref_values = np.array([ref_counts.get(c, 0) for c in categories], dtype=np.float64)
    cur_values = np.array([cur_counts.get(c, 0) for c in categories], dtype=np.float64)
    ref, cur = _Side(ref_col), _Side(cur_col)
    report: dict[str, Any] = {
        "kind": "categorical",
        "psi": None,
        "js_distance": None,
        "chi2": None,
        "chi2_pvalue": None,
        "new_categories": sorted(set(cur_counts) - set(ref_counts)),
        "missing_categories": sorted(set(ref_counts) - set(cur_counts)),
    }
    reasons = _missing_values(report, ref, cur, th, level)
    ref_n, cur_n = min(ref.usable, int(ref_values.sum())), min(cur.usable, int(cur_values.sum()))
    judged = min(ref_n, cur_n) >= th.min_values
    if judged:
        score = psi(ref_values / ref_values.sum(), cur_values / cur_values.sum())
        distance = js_distance(ref_values, cur_values)
        statistic, pvalue = pooled_chi_square(ref_values, cur_values)
        report.update(
            psi=_json_float(score),
            js_distance=_json_float(distance),
            chi2=_json_float(statistic),
            chi2_pvalue=_json_float(pvalue),
        )
        if pvalue < level:
            if score > th.psi:
                reasons.append(
                    f"PSI {score:.3g} > {th.psi:g} (chi-square p-value {pvalue:.3g} < {level:.3g}): "
                    "the share of the categories shifted"
                )
            if distance > th.js_distance:
                reasons.append(
                    f"Jensen-Shannon distance {distance:.3g} > {th.js_distance:g} (chi-square p-value "
                    f"{pvalue:.3g} < {level:.3g}): the category mix changed"
                )
    return _feature_verdict(report, reasons, judged, ref_n, cur_n, th)


def _feature_verdict(
    report: dict[str, Any], reasons: list[str], judged: bool, ref_n: int, cur_n: int, th: DriftThresholds
) -> dict[str, Any]:
    """Drifted with reasons; else insufficient_data, saying which side is short; else stable."""
    if reasons:
        verdict = "drifted"
    elif not judged:
        verdict = "insufficient_data"
        if cur_n < th.min_values:
            reasons.append(
                f"{cur_n} usable values, fewer than drift.min_values {th.min_values}: too few to judge"
            )
        if ref_n < th.min_values:
            reasons.append(
                f"the reference has {ref_n} usable values, fewer than drift.min_values {th.min_values}: "
                "too few to judge against (a new reference is taken when its profile is deleted)"
            )
    else:
        verdict = "stable"
    report["verdict"] = verdict
    report["drifted"] = verdict == "drifted"
    report["reasons"] = reasons
    return report


def _missing_values(
    report: dict[str, Any], ref: _Side, cur: _Side, th: DriftThresholds, level: float
) -> list[str]:
    """The missing-value tests (empty or unreadable values): the rate, and no usable value left."""
    ref_rate, cur_rate = ref.rate(ref.missing), cur.rate(cur.missing)
    delta = abs(cur_rate - ref_rate) if ref_rate is not None and cur_rate is not None else None
    report.update(
        missing_rate_reference=ref_rate,
        missing_rate_current=cur_rate,
        missing_rate_delta=delta,
        unreadable_rate_reference=ref.rate(ref.unreadable),
        unreadable_rate_current=cur.rate(cur.unreadable),
        missing_pvalue=None,
    )
    if ref_rate is None or cur_rate is None or delta is None:
        return []
    pvalue = None
    if min(ref.count, cur.count) >= th.min_values:
        _, pvalue = chi_square([ref.missing, ref.usable], [cur.missing, cur.usable])
        report["missing_pvalue"] = _json_float(pvalue)
    if cur.usable == 0 and ref.usable > 0:
        # Each of the n rows is missing with the reference's rate: all of them, with its n-th power.
        chance = ref_rate**cur.count
        if chance < level:
            return [
                f"no usable value left: {_missing_words(cur)}, where the reference had {1 - ref_rate:.1%} "
                f"usable (chance without a change {chance:.3g} < {level:.3g}): check the source and the "
                "column's format"
            ]
    if pvalue is not None and delta > th.missing_rate_delta and pvalue < level:
        direction = "rose" if cur_rate > ref_rate else "fell"
        unreadable = f", {cur.unreadable} of {cur.count} values unreadable" if cur.unreadable else ""
        return [
            f"missing rate {direction} from {ref_rate:.1%} to {cur_rate:.1%} (change {delta:.3g} > "
            f"{th.missing_rate_delta:g}, p-value {pvalue:.3g} < {level:.3g}{unreadable}): check the source "
            "for dropped, newly filled or malformed values"
        ]
    return []


def _missing_words(side: _Side) -> str:
    if side.unreadable == 0:
        return f"all {side.count} values are empty"
    if side.nulls == 0:
        return f"all {side.count} values are unreadable"
    return f"all {side.count} values are empty ({side.nulls}) or unreadable ({side.unreadable})"


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return int(value)


def _finite_sample(sample: Any) -> FloatArray:
    if not isinstance(sample, Iterable) or isinstance(sample, str | bytes | Mapping):
        return np.empty(0)
    numbers = [v for v in sample if isinstance(v, int | float) and not isinstance(v, bool)]
    values = np.asarray(numbers, dtype=np.float64)
    return values[np.isfinite(values)]


def _positive_counts(counts: Any) -> dict[str, int]:
    if not isinstance(counts, Mapping):
        return {}
    result: dict[str, int] = {}
    for key, value in counts.items():
        n = _as_int(value)
        if n > 0:
            result[str(key)] = result.get(str(key), 0) + n
    return result


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _clip01(p: float) -> float:
    return float(min(max(p, 0.0), 1.0))
