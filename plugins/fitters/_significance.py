"""False-positive probability calibrated on the light curve's own noise.

Real curves do not follow a Gaussian AR model: slow trends, scintillation, correlated noise and
outliers make a Gaussian noise-induced-event test call noise dips certain events. Here the
residuals of the fit (after the trend and the event model; readings inside the event rescaled
to the baseline noise) are resampled in blocks (Politis and Romano's stationary bootstrap,
mean block length from their autocorrelation), which keeps their non-Gaussian tails, their
outliers and their correlation up to the block length. The same scan statistic is run on every
resampled curve and on the observed one:

    T = max over widths w and positions of  (level_w - mean inside the window - m_w) / s_w

with level_w the curve's quantile (n + w) / 2n (see ``level_of``) and

m_w, s_w the mean and spread of that difference in the resampled noise (so short and long dips compete
on equal terms: the look-elsewhere effect over positions *and* durations is in the
calibration). The probability is the fraction of resampled curves with T at least the
observed one; when the observed T lies beyond the resampled ones, the tail is extrapolated
as an exponential (the tail of the Gumbel law of maxima) fitted above the 90th percentile,
only where the resampled tail is not heavier than that, and never below ``P_FLOOR``.

A drop is never significant when the event's own SNR, its drop over the standard deviation of
the mean of as many readings as it holds (the larger of the resampled estimate and the direct,
model-free one from non-overlapping means of the residuals, which sees every slow
correlation), is below a floor.

The AR model behind the resampled noise is fitted with part of the candidate's dip left in
(``partial_dip``: under the null hypothesis it is noise, and removing it all hides the slow
noise that made it), and each resampled curve draws its own AR coefficients from their
sampling distribution (``recolour``). An event too long for the curve to calibrate its slow
noise has its SNR against the scatter of single readings (``long_event_sd``).
"""
from __future__ import annotations

import math

import attrs
import numpy as np

from occplugins.fitters._filters import colour, whiten
from occplugins.fitters._noise import integrated_time

P_FLOOR = 1e-12            # smaller probabilities are not resolved by any tail model here
BLOCK_FACTOR = 4.0         # block length / integrated autocorrelation time
SYMMETRIC = False
SINGLETON_BLOCKS = "one"          # random block signs (see stationary_bootstrap)
MAX_CELLS = 2_000_000      # resampled readings held at once (trials x readings)
RESAMPLE_AR = True         # draw the AR coefficients of each resampled curve (see recolour)
KEEP_SD = 4.0              # the candidate's dip kept in the noise model (see partial_dip)


@attrs.frozen
class Significance:
    probability: float          # false-positive probability of the observed statistic
    statistic: float            # observed T
    critical_statistic: float   # T at the nominal significance (for detection limits)
    event_snr: float            # drop / sd of a mean of the event's width (never below floor)
    significant: bool
    method: str
    block_length: float
    trials: int
    reason: str


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelation at lags 0..max_lag (FFT, biased estimator)."""
    x = np.asarray(x, float) - np.mean(x)
    n = len(x)
    size = 1 << int(math.ceil(math.log2(2 * n)))
    f = np.fft.rfft(x, size)
    acov = np.fft.irfft(f * np.conj(f), size)[:max_lag + 1]
    return acov / acov[0] if acov[0] > 0 else np.zeros(max_lag + 1)


def block_length(residuals: np.ndarray, factor: float = BLOCK_FACTOR) -> float:
    """Mean block length of the stationary bootstrap: ``factor`` times the integrated
    autocorrelation time tau of the residuals (``_noise.integrated_time``), at least 1, at
    most n / 8. The resampled curves then keep the variance of long means: the stationary
    bootstrap weighs lag k by (1 - 1/L)^k, so L must be several tau."""
    n = len(residuals)
    if n < 16:
        return 1.0
    tau = integrated_time(residuals)
    return 1.0 if tau == 1.0 else float(min(max(1.0, factor * tau), n / 8))


def stationary_bootstrap(pool: np.ndarray, n: int, trials: int, mean_block: float,
                         rng: np.random.Generator, symmetric: bool = False,
                         singletons: np.ndarray | None = None) -> np.ndarray:
    """(trials, n) curves made of blocks of ``pool`` (circular), block lengths geometric with
    mean ``mean_block``, starts uniform. One stream of blocks is cut into the curves: the
    geometric law has no memory, so a block cut at a curve's start is still geometric.

    ``singletons``: readings drawn one at a time (in proportion to their number): the
    candidate event's own readings. Under the null hypothesis they are noise and must stay in
    the pool (a pool without its deepest dip or its one low outlier has too thin a tail);
    drawn singly they keep their values but not their contiguity, so a real event does not
    reappear whole in the resampled curves.
    ``symmetric``: each block gets a random sign."""
    m = len(pool)
    ms = 0 if singletons is None else len(singletons)
    total = trials * n
    if mean_block <= 1.0 and not ms and not symmetric:      # white: plain resampling
        return pool[rng.integers(0, m, total)].reshape(trials, n)
    p = min(1.0, 1.0 / mean_block)
    count = int(total / mean_block * 1.2) + 16
    lengths = np.empty(0, np.int64)
    single = np.empty(0, bool)
    while lengths.sum() < total:
        is_single = rng.random(count) < ms / (m + ms) if ms else np.zeros(count, bool)
        lengths = np.concatenate([lengths, np.where(is_single & (SINGLETON_BLOCKS == "one"), 1,
                                                    rng.geometric(p, count))])
        single = np.concatenate([single, is_single])
    ends = np.cumsum(lengths)
    keep = int(np.searchsorted(ends, total)) + 1
    lengths, single = lengths[:keep], single[:keep]
    starts = rng.integers(0, m, keep)
    first = ends[:keep] - lengths               # flat position of each block's first reading
    index = (np.arange(int(lengths.sum())) + np.repeat(starts - first, lengths))[:total] % m
    curves = pool[index]
    if ms:
        chosen = np.repeat(single, lengths)[:total]
        if SINGLETON_BLOCKS == "one":
            curves[chosen] = singletons[rng.integers(0, ms, int(chosen.sum()))]
        else:       # blocks too, circular within the candidate's readings
            start_c = rng.integers(0, ms, keep)
            offset = np.arange(total) - np.repeat(first, lengths)[:total]
            curves[chosen] = singletons[(np.repeat(start_c, lengths)[:total] + offset)[chosen]
                                        % ms]
    if symmetric:
        sign = np.where(rng.random(keep) < 0.5, -1.0, 1.0)
        curves *= np.repeat(sign, lengths)[:total]
    return curves.reshape(trials, n)


def width_grid(max_width: int, min_width: int = 1) -> np.ndarray:
    """Event widths in readings: every width up to 8, then steps of about 12 %."""
    max_width = max(min_width, int(max_width))
    small = np.arange(min_width, min(8, max_width) + 1)
    large = np.unique(np.round(np.geomspace(9, max_width, max(2, int(
        math.log(max(max_width, 9) / 9) / math.log(1.12)) + 1))).astype(int)) \
        if max_width > 8 else np.array([], int)
    return np.unique(np.concatenate([small, large[large <= max_width]])).astype(int)


def cumulative(curves: np.ndarray) -> np.ndarray:
    curves = np.atleast_2d(curves)
    return np.concatenate([np.zeros((len(curves), 1)), np.cumsum(curves, axis=1)], axis=1)


def levels(curves: np.ndarray) -> np.ndarray:
    """Sorted subsample (at most 513 readings) of each curve, for ``level_of``."""
    curves = np.atleast_2d(curves)
    step = max(1, curves.shape[1] // 512)
    return np.sort(curves[:, ::step], axis=1)


def level_of(sorted_sample: np.ndarray, width: int, n: int) -> np.ndarray:
    """The reference level of a window of ``width`` readings: the curve's quantile
    (n + w) / 2n, which is the median of the readings outside a dip that holds the w lowest
    ones; a bright fringe or a flare outside the window does not move it (a mean would), nor
    does an event longer than half the curve (a median would)."""
    q = (n + width) / (2.0 * n)
    k = int(round(q * (sorted_sample.shape[1] - 1)))
    return sorted_sample[:, k]


def window_drops(c: np.ndarray, width: int, level: np.ndarray) -> np.ndarray:
    """(level - mean inside) of every window of ``width`` readings (every stride-th start;
    stride width // 4: the maximum over positions barely changes), from the cumulative sums
    ``c`` (m, n + 1) of (m, n) curves and their levels (m,)."""
    n = c.shape[1] - 1
    stride = max(1, width // 4)
    inside = c[:, width::stride] - c[:, :n + 1 - width:stride]
    return level[:, None] - inside / width


SCALE_DROPS = 300_000       # window drops behind each width's (centre, spread)
SCAN_ROWS = 50              # curves scanned at once: their sums and a work row stay in cache


def scan(curves: np.ndarray, widths: np.ndarray, scales: np.ndarray | None = None):
    """T of each curve (see the module docstring), and the (centre, spread) of the window
    drops of each width used (computed from ``curves`` themselves when not given: from the
    first curves, about SCALE_DROPS drops per width).

    The drops of ``window_drops`` are never formed: a curve's largest drop is its level less
    its smallest window mean, and the spread needs only the sums of the window sums and of
    their squares. Curves go SCAN_ROWS at a time through every width, which keeps the work
    in cache (the whole batch at once is memory-bound and 2-3 times slower)."""
    curves = np.atleast_2d(np.asarray(curves, float))
    m, n = curves.shape
    sample = levels(curves)
    # a drop does not change when its curve is shifted: centred curves keep the sums of
    # squares below free of cancellation
    middle = sample[:, sample.shape[1] // 2].copy()
    sample -= middle[:, None]
    c = np.zeros((m, n + 1))
    np.cumsum(curves - middle[:, None], axis=1, out=c[:, 1:])
    widths = np.asarray(widths, int)
    strides = np.maximum(1, widths // 4)
    counts = (n - widths) // strides + 1                # windows per curve (see window_drops)
    level = np.stack([level_of(sample, int(w), n) for w in widths])     # (widths, curves)
    smallest = np.empty((len(widths), m))                # smallest window sum
    own_scales = scales is None
    rows = np.minimum(m, np.maximum(10, SCALE_DROPS // np.maximum(counts, 1)))
    total = np.zeros(len(widths))       # sum of the window sums over the scale rows
    squares = np.zeros(len(widths))     # ... of their squares
    weighted = np.zeros(len(widths))    # ... of each row's sum times its level
    work = np.empty(min(m, SCAN_ROWS) * n)
    for first in range(0, m, SCAN_ROWS):
        block = c[first:first + SCAN_ROWS]
        b = len(block)
        for i, (w, stride, k) in enumerate(zip(widths, strides, counts, strict=True)):
            sums = np.subtract(block[:, w::stride], block[:, :n + 1 - w:stride],
                               out=work[:b * k].reshape(b, k))
            sums.min(axis=1, out=smallest[i, first:first + b])
            used = min(b, rows[i] - first)
            if own_scales and used > 0:
                part = sums[:used]
                row_sums = part.sum(axis=1)
                total[i] += row_sums.sum()
                squares[i] += np.vdot(part, part)
                weighted[i] += level[i, first:first + used] @ row_sums
    if own_scales:
        # drop = level - sum / w over rows x counts windows: its mean and variance
        cells, wf = rows * counts, widths.astype(float)
        level_mean = np.array([level[i, :r].mean() for i, r in enumerate(rows)])
        level_square = np.array([level[i, :r] @ level[i, :r] / r for i, r in enumerate(rows)])
        centre = level_mean - total / (cells * wf)
        second = level_square - 2 * weighted / (cells * wf) + squares / (cells * wf * wf)
        variance = second - centre ** 2
        variance[variance <= 1e-12 * second] = 0.0      # rounding of a constant drop
        out_scales = np.column_stack([centre, np.sqrt(variance)])
    else:
        out_scales = np.array(scales, float)
    out_scales[~(out_scales[:, 1] > 0), 1] = 1e-300
    largest = level - smallest / widths[:, None]
    best = ((largest - out_scales[:, :1]) / out_scales[:, 1:]).max(axis=0)
    return best, out_scales


def _exponential_tail(null: np.ndarray):
    """Peaks over the 90th percentile: (threshold u, fraction above it, mean excess). The upper
    tail of a maximum of many nearly Gaussian windows (Gumbel domain) is exponential."""
    u = float(np.quantile(null, 0.9))
    excess = null[null > u] - u
    return u, len(excess) / len(null), max(float(np.mean(excess)) if len(excess) else 0.0,
                                            1e-300)


def tail_probability(null: np.ndarray, observed: float) -> tuple[float, str]:
    """P(T >= observed) from the resampled T: empirical when at least 10 exceed it, else an
    exponential tail fitted over the 90th percentile, if the resampled tail is not heavier
    than it (exceedance at the 98th percentile at most twice the model's, variance of the
    excesses at most twice their squared mean), else the empirical bound 1 / (trials + 1).
    Never below P_FLOOR."""
    # ties count as exceedances: a white pool's lowest reading, resampled, gives a T equal
    # to the observed one but for rounding, which must not decide the count
    k = int(np.count_nonzero(null >= observed - 1e-9 * max(1.0, abs(observed))))
    trials = len(null)
    empirical = (k + 1) / (trials + 1)
    if k >= 10:
        return float(empirical), "empirical"
    u, fraction, scale = _exponential_tail(null)
    check = float(np.quantile(null, 0.98))
    model_at_check = fraction * math.exp(-(check - u) / scale)
    excess = null[null > u] - u
    # an exponential's excesses have variance = mean^2; a heavier tail (outliers, a power
    # law) shows as a larger ratio, or as more exceedances at the 98th percentile
    ratio = float(np.var(excess)) / max(float(np.mean(excess)) ** 2, 1e-300) \
        if len(excess) >= 10 else 1.0
    if 0.02 > 2 * model_at_check or ratio > 2.0:
        return float(empirical), "empirical bound (the tail is heavier than exponential)"
    p = fraction * math.exp(-max(observed - u, 0.0) / scale)
    return float(min(max(p, P_FLOOR), empirical)), "exponential tail over the 90th percentile"


def critical_value(null: np.ndarray, alpha: float) -> float:
    """T exceeded by noise with probability ``alpha`` (Gumbel quantile beyond the data)."""
    if alpha * len(null) >= 10:
        return float(np.quantile(null, 1 - alpha))
    u, fraction, scale = _exponential_tail(null)
    return float(u + scale * math.log(fraction / alpha))


def direct_sd_of_mean(curve: np.ndarray, width: int, min_means: int = 8) -> float | None:
    """Robust spread (1.4826 MAD) of non-overlapping means of ``width`` readings of the
    residuals (the event model subtracted: an event holding half the means would otherwise
    pass for noise), at two offsets (None below ``min_means`` means). Model-free: it holds
    every correlation of the noise, however slow, and the MAD hardly notices that the
    candidate's own mean has been flattened by the fit. Beyond len / min_means readings, the spread
    of means of that length."""
    curve = np.asarray(curve, float)
    width = max(int(width), 1)
    if len(curve) // width < min_means:
        # longer events: the spread at the longest width that still gives enough means,
        # not scaled down further (slow noise may not average out beyond it)
        width = len(curve) // min_means
        if width < 1:
            return None
    means = [curve[o:o + (len(curve) - o) // width * width].reshape(-1, width).mean(axis=1)
             for o in {0, width // 2}]
    spread = [1.4826 * float(np.median(np.abs(v - np.median(v)))) for v in means]
    return float(np.mean(spread))


LONG_EVENT = 4      # the baseline must hold this many event lengths to calibrate slow noise


def too_long_to_calibrate(width: int, n: int) -> bool:
    """The readings outside an event of ``width`` hold fewer than LONG_EVENT of its lengths."""
    return n - width < LONG_EVENT * width


def long_event_sd(curve: np.ndarray, candidate: np.ndarray, clean: np.ndarray | None
                  ) -> float | None:
    """For an event too long for the curve to calibrate its slow noise (the readings outside
    hold fewer than LONG_EVENT lengths of it) in noise that is not white: the robust scatter
    of the single readings outside the event. A mean of readings of stationary noise never
    spreads more than one reading does, whatever the correlation, so a drop of several such
    scatters cannot be a wander; a shallower one cannot be told from one with this much
    baseline. None when the bound does not apply."""
    candidate = np.asarray(candidate, bool)
    width = int(np.count_nonzero(candidate))
    outside = np.asarray(curve, float)[~candidate]
    if width == 0 or not too_long_to_calibrate(width, len(candidate)) or len(outside) < 8:
        return None
    if clean is not None and looks_white(np.asarray(clean, float)):
        return None
    return 1.4826 * float(np.median(np.abs(outside - np.median(outside))))


@attrs.frozen
class NullModel:
    """The resampled noise of one curve, reused by the detection limits of a negative."""

    curves: np.ndarray          # (trials, n) resampled residual curves
    widths: np.ndarray
    scales: np.ndarray          # (widths, 2): centre and spread of the window drops
    statistics: np.ndarray      # T of each resampled curve
    block_length: float
    pool: np.ndarray
    symmetric: bool = SYMMETRIC
    singletons: np.ndarray | None = None
    ar: np.ndarray | None = None        # prewhitened: the pool holds innovations
    burn: int = 0
    ar_cov: np.ndarray | None = None    # sampling covariance of ``ar`` (see recolour)
    clean: np.ndarray | None = None     # residuals for the direct SNR estimate


def null_model(pool: np.ndarray, n: int, rng: np.random.Generator, *, trials: int = 200,
               max_width: int | None = None, scales: np.ndarray | None = None,
               block: float | None = None, symmetric: bool = SYMMETRIC,
               singletons: np.ndarray | None = None) -> NullModel:
    """Resample ``pool`` (the residuals, any length) into ``trials`` curves of ``n`` readings
    and scan them (with the scales ``scales`` of an earlier batch, if given). ``block``: the
    mean block length (by default from the pool's autocorrelation); ``singletons`` see
    ``stationary_bootstrap`` (on the same scale as ``pool``)."""
    pool = np.asarray(pool, float)
    centre = float(np.median(pool))
    pool = pool - centre
    if singletons is not None:
        singletons = np.asarray(singletons, float) - centre
    block = block_length(pool) if block is None else float(block)
    curves = stationary_bootstrap(pool, n, trials, block, rng, symmetric, singletons)
    widths = width_grid(max_width or max(1, n - max(8, n // 10)))
    statistics, scales = scan(curves, widths, scales)
    return NullModel(curves, widths, scales, statistics, block, pool, symmetric, singletons)


def ar_fit(x: np.ndarray, max_order: int = 10) -> np.ndarray:
    """AR coefficients of ``x`` by Yule-Walker, order 0..max_order by AIC; empty when white
    or when the fit is not stationary."""
    from scipy import linalg
    x = np.asarray(x, float) - np.mean(x)
    n = len(x)
    if n < 32:
        return np.array([])
    max_order = min(max_order, n // 10)
    acf = autocorrelation(x, max_order)
    best = (n * math.log(max(float(np.var(x)), 1e-300)), np.array([]))
    for p in range(1, max_order + 1):
        try:
            a = linalg.solve_toeplitz(acf[:p], acf[1:p + 1])
        except (linalg.LinAlgError, ValueError):
            break
        innovation_var = float(np.var(x)) * (1 - float(a @ acf[1:p + 1]))
        if not innovation_var > 0:
            break
        aic = n * math.log(innovation_var) + 2 * p
        if aic < best[0] - 2:
            best = (aic, a)
    a = best[1]
    if len(a) and np.any(np.abs(np.roots(np.concatenate([[1.0], -a]))) >= 0.995):
        return np.array([])
    return a


def sd_of_mean(ar: np.ndarray, sigma: float, width: int) -> float:
    """Standard deviation of a mean of ``width`` consecutive readings of an AR process with
    coefficients ``ar`` and marginal standard deviation ``sigma``."""
    width = max(int(width), 1)
    if not len(ar) or width == 1:
        return sigma / math.sqrt(width)
    # the autocovariance is the inverse transform of the spectrum 1 / |A(f)|^2 (aliased at
    # the transform's length, where a stationary AR's correlation has long died out)
    size = 1 << int(math.ceil(math.log2(2 * max(4 * width, 2000))))
    gain = np.abs(np.fft.rfft(np.concatenate([[1.0], -np.asarray(ar, float)]), size))
    if not np.min(gain) > 1e-6:            # (near) a unit root: from the impulse response
        impulse = np.zeros(size // 2)
        impulse[0] = 1.0
        f = np.fft.rfft(colour(impulse, ar), size)
        spectrum = (f * np.conj(f)).real
    else:
        spectrum = 1.0 / gain ** 2
    acov = np.fft.irfft(spectrum, size)[:width]
    lag = np.arange(1, width)
    factor = 1.0 + 2.0 * float(np.sum((1 - lag / width) * acov[1:] / acov[0]))
    return sigma * math.sqrt(max(factor, 1e-12) / width)


def looks_white(x: np.ndarray) -> bool:
    """Ljung-Box test of the first 10 autocorrelations: True unless white noise would give a
    larger statistic with probability below 1 % (23.21: chi-square with 10 degrees of
    freedom). The AIC order choice alone finds some AR order in about a third of white
    curves of a few hundred readings."""
    n = len(x)
    if n < 40:
        return True
    rho = autocorrelation(x, 10)[1:]
    q = n * (n + 2) * float(np.sum(rho ** 2 / (n - np.arange(1, 11))))
    return q <= 23.21


def partial_dip(resid: np.ndarray, candidate: np.ndarray, drop: float,
                keep_sd: float = KEEP_SD, otherwise: np.ndarray | None = None) -> np.ndarray:
    """The residuals of the event fit with part of the candidate's dip put back, for the AR
    model of the noise. Under the null hypothesis the candidate is noise: subtracting all of
    it takes away the very excursion whose rarity is in question, and the AR model then
    misses the slow noise that made it (noise wanders were called events several times too
    often). A real event is far deeper than the noise goes; so the dip is put back up to
    ``keep_sd`` standard deviations of a mean of its width (under the AR model of the
    residuals without it): a real event leaves an ordinary excursion, a slow wander keeps
    most of itself. When the residuals without the dip are white, nothing is put back: white
    noise makes no slow wanders, and the rest of the curve says the noise is white.
    ``otherwise``: returned (instead of ``resid``) when nothing is put back."""
    resid = np.asarray(resid, float)
    unchanged = resid if otherwise is None else otherwise
    width = int(np.count_nonzero(candidate))
    if width < 2 or not drop > 0 or not np.any(~candidate):
        return unchanged
    a = ar_fit(resid)
    if not len(a) or looks_white(resid):
        return unchanged
    sd = sd_of_mean(a, float(np.std(resid[~candidate])), width)
    return resid - np.where(candidate, min(drop, keep_sd * sd), 0.0)


def ar_covariance(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Asymptotic sampling covariance of Yule-Walker AR coefficients ``a`` fitted to ``x``:
    (1 - a . rho) / n times the inverse of the autocorrelation matrix."""
    p = len(a)
    if not p:
        return np.zeros((0, 0))
    from scipy import linalg
    rho = autocorrelation(x, p)
    innovation_fraction = max(1.0 - float(a @ rho[1:p + 1]), 1e-12)
    return innovation_fraction / len(x) * linalg.inv(linalg.toeplitz(rho[:p]))


def recolour(e: np.ndarray, a: np.ndarray, cov: np.ndarray | None, burn: int,
             rng: np.random.Generator) -> np.ndarray:
    """Innovation curves (trials, n + burn) through the AR filter, each with its own
    coefficients drawn from their sampling distribution (``cov``): the noise model is an
    estimate from one curve, and a null built on its point value alone is too narrow
    exactly where it matters, for slow noise (the long-run gain 1 / (1 - sum a) is most
    uncertain when the correlation is strong). Non-stationary draws keep the fitted value."""
    if not len(a):
        return e[:, burn:]
    if cov is None or not np.all(np.isfinite(cov)):
        return colour(e, a)[:, burn:]
    draws = rng.multivariate_normal(a, cov, size=len(e), check_valid="ignore")
    # stationary when every root of z^p - a1 z^(p-1) - ... - ap (the eigenvalues of the
    # companion matrix) lies inside the unit circle: all draws checked in one call
    p = len(a)
    companion = np.zeros((len(draws), p, p))
    companion[:, 0, :] = draws
    companion[:, np.arange(1, p), np.arange(p - 1)] = 1.0
    unstable = np.max(np.abs(np.linalg.eigvals(companion)), axis=1) >= 0.995
    draws[unstable] = a
    out = np.empty_like(e)
    for j, coefficients in enumerate(draws):    # lfilter takes one filter per call
        out[j] = colour(e[j], coefficients)
    return out[:, burn:]


def prewhitened_null(curve: np.ndarray, clean: np.ndarray, rng: np.random.Generator, *,
                     trials: int = 200, max_order: int = 10,
                     candidate: np.ndarray | None = None) -> NullModel:
    """Resampled noise for ``curve`` (the normalised readings, candidate included):
    an AR model fitted to the ``clean`` residuals (event model subtracted: the event's step
    must not pass for slow noise), the innovations of ``curve`` under that model resampled
    in blocks (block length from the autocorrelation of the clean innovations, 1 when
    white), recoloured by the
    AR filter. The candidate's readings stay in (under the null hypothesis they are noise,
    and a lone low outlier is kept), but a real event enters only through the two large
    innovations at its edges: it does not reappear whole in the resampled curves."""
    curve = np.asarray(curve, float)
    n = len(curve)
    a = ar_fit(clean, max_order)
    x = curve - np.median(curve)
    innovations = whiten(x, a)
    if candidate is not None and np.count_nonzero(candidate) >= 2 and \
            np.count_nonzero(~candidate) > 10:
        # the candidate's readings stay in the pool, but no deeper than the noise goes
        # anywhere else (either sign): a real short event must not fill the resampled curves
        # with copies of itself. A one-reading candidate is kept whole: it is what a lone
        # outlier looks like, and only the rest of the pool can say how rare it is
        cap = float(np.max(np.abs(innovations[~candidate] - np.median(innovations))))
        centre = float(np.median(innovations))
        innovations[candidate] = np.clip(innovations[candidate], centre - cap, centre + cap)
    innovations = innovations[len(a):]
    innovations = innovations - np.median(innovations)
    # the blocks follow the clean innovations: inside a real event the curve's innovations
    # are offset (by the drop times 1 - sum a), which is no correlation of the noise
    block = block_length(whiten(np.asarray(clean, float), a)[len(a):])
    burn = 0 if not len(a) else int(min(20 * len(a) + 50, 5 * n))
    e = stationary_bootstrap(innovations, n + burn, trials, block, rng)
    cov = ar_covariance(np.asarray(clean, float), a) if RESAMPLE_AR else None
    curves = recolour(e, a, cov, burn, rng)
    widths = width_grid(max(1, n - max(8, n // 10)))
    statistics, scales = scan(curves, widths)
    return NullModel(curves, widths, scales, statistics, block, innovations,
                     ar=a, burn=burn, clean=np.asarray(clean, float), ar_cov=cov)


def more_trials(null: NullModel, trials: int, rng: np.random.Generator) -> NullModel:
    """The same null model with ``trials`` more resampled curves (same scales)."""
    n = null.curves.shape[1]
    if null.ar is not None:
        e = stationary_bootstrap(null.pool, n + null.burn, trials, null.block_length, rng)
        curves = recolour(e, null.ar, null.ar_cov, null.burn, rng)
    else:
        curves = stationary_bootstrap(null.pool, n, trials, null.block_length, rng,
                                      null.symmetric, null.singletons)
    statistics, _ = scan(curves, null.widths, null.scales)
    return attrs.evolve(null, curves=np.concatenate([null.curves, curves]),
                        statistics=np.concatenate([null.statistics, statistics]))


def trial_budget(n: int) -> int:
    """Most resampled curves worth holding for ``n`` readings (MAX_CELLS, 200..1000)."""
    return int(np.clip(MAX_CELLS // max(n, 1), 200, 1000))


def significance(y_detrended: np.ndarray, null: NullModel, *, drop: float, width: int,
                 alpha: float, min_snr: float, rng: np.random.Generator | None = None,
                 candidate: np.ndarray | None = None) -> tuple[Significance, NullModel]:
    """Compare the observed curve with its resampled noise (see the module docstring).

    ``drop`` and ``width`` are those of the fitted event (same units as the residuals). With
    ``rng``, trials are added while the probability is within a factor 10 of ``alpha``.
    ``candidate``: the event's readings (for the bound on long events, see
    ``long_event_sd``). Returns the result and the (possibly extended) null model."""
    observed, _ = scan(np.asarray(y_detrended, float)[None, :], null.widths, null.scales)
    t_obs = float(observed[0])
    p, how = tail_probability(null.statistics, t_obs)
    budget = trial_budget(len(y_detrended)) if rng is not None else 0
    while len(null.statistics) < budget and alpha / 10 < p < alpha * 10:
        # near the threshold: more resampled curves until the decision is clear or the
        # budget is spent (a clear event or a clear non-event stops at the first batch)
        null = more_trials(null, min(budget - len(null.statistics), len(null.statistics)), rng)
        p, how = tail_probability(null.statistics, t_obs)
    t_crit = critical_value(null.statistics, alpha)
    width = int(max(1, width))
    i = int(np.argmin(np.abs(null.widths - width)))
    boot_sd = float(null.scales[i, 1]) if null.widths[i] == width else float(np.std(
        window_drops(cumulative(null.curves[:200]), width,
                        level_of(levels(null.curves[:200]), width, len(y_detrended)))))
    direct = direct_sd_of_mean(null.clean if null.clean is not None else y_detrended, width)
    if null.ar is not None and len(null.ar) and \
            len(y_detrended) // 8 < width <= len(y_detrended) // 4:
        # a long candidate in correlated noise: the clean residuals have lost the very
        # excursion in question; the curve's own long means (robust spread) must allow it
        # too. (Not beyond a quarter of the curve: there the event would hold too many of
        # the means for their MAD to ignore it.)
        raw = direct_sd_of_mean(y_detrended, width)
        direct = max(direct or 0.0, raw or 0.0)
    sd = max(boot_sd, direct or 0.0)
    worst = long_event_sd(y_detrended, candidate, null.clean) if candidate is not None else None
    if worst is not None and worst > sd:
        sd = worst
    snr = drop / sd if sd > 0 else math.inf
    if null.ar is not None:
        method = (f"AR({len(null.ar)})-prewhitened stationary block bootstrap of the "
                  f"normalised readings ({len(null.statistics)} curves, mean block "
                  f"{null.block_length:.3g} innovations), scan over {len(null.widths)} widths, "
                  f"{how}")
    else:
        method = (f"stationary block bootstrap of the residuals ({len(null.statistics)} "
                  f"curves, mean block {null.block_length:.3g} readings), scan over "
                  f"{len(null.widths)} widths, {how}")
    if worst is not None:
        method += ("; a long event in correlated noise: its SNR is against the readings' own "
                   "scatter, the most a slow wander of the noise can reach")
    elif direct is None:
        method += "; event SNR from the bootstrap only (too long for direct means)"
    if snr < min_snr:
        reason = f"event SNR {snr:.2f} below the floor {min_snr:g}"
        significant = False
    elif p > alpha:
        reason = f"noise alone makes such a dip with probability {p:.2g} > {alpha:g}"
        significant = False
    else:
        reason = f"probability {p:.2g} <= {alpha:g}, event SNR {snr:.1f}"
        significant = True
    return Significance(probability=p, statistic=t_obs, critical_statistic=t_crit,
                        event_snr=float(snr), significant=significant, method=method,
                        block_length=null.block_length, trials=len(null.statistics),
                        reason=reason), null
