"""Detection: PyOTE's square-wave maximum-likelihood search over every (D, R) pair, made fast
with running sums; the best event and the runners-up (by masking)."""
from __future__ import annotations

import math

import attrs
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from occplugins.fitters._readings import Readings


@attrs.frozen
class Candidate:
    d_index: int        # first reading inside the event
    r_index: int        # first reading after the event (len(y) when it runs to the end)
    score: float        # log-likelihood of the square wave
    relative_likelihood_flat: float   # exp(-dAICc/2) of a flat line against it
    drop: float

    def to_candidate(self, r: Readings):
        from occcore.model import EventCandidate
        n = len(r.start)
        return EventCandidate(
            immersion_s=float(r.start[self.d_index]) if self.d_index > 0 else None,
            emersion_s=float(r.start[self.r_index]) if self.r_index < n else None,
            readings=int(self.r_index - self.d_index), log_likelihood=float(self.score),
            relative_likelihood_flat=float(self.relative_likelihood_flat),
            drop=float(self.drop))

    def to_dict(self, r: Readings) -> dict:
        n = len(r.start)
        return {"immersion_s": float(r.start[self.d_index]) if self.d_index > 0 else None,
                "emersion_s": float(r.start[self.r_index]) if self.r_index < n else None,
                "readings": int(self.r_index - self.d_index), "log_likelihood": self.score,
                "relative_likelihood_flat": self.relative_likelihood_flat, "drop": self.drop}


def _aicc(log_l: float, k: int, n: int) -> float:
    return 2 * k - 2 * log_l + (2 * k * (k + 1) / max(n - k - 1, 1))


def detect(y: np.ndarray, min_readings: int = 1, max_readings: int | None = None,
           edges: str = "both", n_best: int = 5) -> list[Candidate]:
    """Every event position and size scored by the two-level Gaussian likelihood.

    ``edges``: ``both`` (the event lies inside the data), ``immersion`` (it runs to the end),
    ``emersion`` (it starts before the data) or ``any``.
    """
    y = np.asarray(y, float)
    n = len(y)
    if n < 5:
        return []
    floor = 1e-12 * max(np.var(y), 1e-300)
    c1 = np.concatenate([[0.0], np.cumsum(y)])
    c2 = np.concatenate([[0.0], np.cumsum(y * y)])
    total1, total2 = c1[-1], c2[-1]
    max_readings = min(max_readings or n - 2, n - 2)
    best: list[tuple[float, int, int, float]] = []
    if edges in ("immersion", "emersion"):
        w = np.arange(max(1, min_readings), max_readings + 1)
        d = n - w if edges == "immersion" else np.zeros_like(w)
        widths_at_once = [(w, d, d + w)]
    else:
        widths_at_once = []
    for w_all, d_all, r_all in widths_at_once:
        s1 = c1[r_all] - c1[d_all]
        s2 = c2[r_all] - c2[d_all]
        nb = n - w_all
        mean_a, mean_b = s1 / w_all, (total1 - s1) / nb
        var_a = np.maximum(s2 / w_all - mean_a ** 2, floor)
        var_b = np.maximum((total2 - s2) / nb - mean_b ** 2, floor)
        score = np.where(mean_b > mean_a, -0.5 * (nb * np.log(var_b) + w_all * np.log(var_a)),
                         -np.inf)
        for k in np.argsort(-score)[:50]:
            if np.isfinite(score[k]):
                best.append((float(score[k]), int(d_all[k]), int(r_all[k]),
                             float(mean_b[k] - mean_a[k])))
    if edges == "any":
        found = [c for mode in ("both", "immersion", "emersion")
                 for c in detect(y, min_readings, max_readings, mode, n_best)]
        return sorted(found, key=lambda c: -c.score)[:n_best]
    if not widths_at_once and edges == "both":
        # every width at once, in chunks: rows are widths, columns immersion indices d >= 1
        widths = np.arange(max(1, min_readings), max_readings + 1)
        # chunks of widths, each over the immersion indices its narrowest width allows (the
        # cells with R beyond the data are half a full grid: not computed at all)
        chunk = max(1, min(32, 2_000_000 // n))
        # the running sums at R = d + w, read through a sliding window (no gather):
        # row w, column d - 1 holds c[d + w]. R past the data reads the totals, as a
        # clipped index would, and is masked below
        c1_at = sliding_window_view(np.concatenate([c1, np.full(n + chunk + 2, total1)])[1:], n)
        c2_at = sliding_window_view(np.concatenate([c2, np.full(n + chunk + 2, total2)])[1:], n)
        for lo in range(0, len(widths), chunk):
            w = widths[lo:lo + chunk, None]
            w0 = int(w[0, 0])
            count = max(1, n - w0 - 1)                   # d = 1 .. count
            d = np.arange(1, count + 1)
            at_r1 = c1_at[w0:w0 + len(w), :count]
            at_r2 = c2_at[w0:w0 + len(w), :count]
            s1 = at_r1 - c1[1:count + 1]
            s2 = at_r2 - c2[1:count + 1]
            nb = n - w
            mean_a = s1 / w
            mean_b = (total1 - s1) / nb
            # -2 log L = nb log var_b + w log var_a, computed in place (the costly part)
            var_a = s2 / w
            var_a -= mean_a * mean_a
            np.maximum(var_a, floor, out=var_a)
            cost = np.log(var_a, out=var_a)
            cost *= w
            var_b = (total2 - s2) / nb
            var_b -= mean_b * mean_b
            np.maximum(var_b, floor, out=var_b)
            log_b = np.log(var_b, out=var_b)
            log_b *= nb
            cost += log_b
            cost[~((d < nb) & (mean_b > mean_a))] = np.inf      # R < n, and a dip
            k = np.argmin(cost, axis=1)     # other dips are found by runners_up (masking)
            rows = np.arange(len(w))
            top = -0.5 * cost[rows, k]
            found = np.isfinite(top)
            best.extend(zip(top[found].tolist(), d[k[found]].tolist(),
                            (d[k[found]] + w[found, 0]).tolist(),
                            (mean_b[rows[found], k[found]] - mean_a[rows[found], k[found]]).tolist(),
                            strict=True))
    if not best:
        return []
    var = max(np.var(y), floor)
    flat = -0.5 * n * math.log(var)
    out = []
    for score, d, r, drop in sorted(best, reverse=True):
        if any(not (r <= c.d_index or d >= c.r_index) for c in out):
            continue    # overlaps a better candidate: the same event at another size
        rel = math.exp(-0.5 * max(_aicc(flat, 2, n) - _aicc(score, 6, n), -700)) \
            if score > flat else 1.0
        rel = min(rel, 1.0) if _aicc(score, 6, n) < _aicc(flat, 2, n) else 1.0
        out.append(Candidate(d, r, score, rel, drop))
        if len(out) >= n_best:
            break
    return out


def detect_long(y: np.ndarray, edges: str = "both", target: int = 500):
    """Detection on long curves: block-average to about ``target`` readings, then refine the
    edges at full resolution around the block positions."""
    n = len(y)
    factor = max(1, int(math.ceil(n / target)))
    if factor == 1:
        return detect(y, edges=edges)
    m = n // factor
    coarse = detect(y[:m * factor].reshape(m, factor).mean(axis=1), edges=edges)
    out = []
    c1 = np.concatenate([[0.0], np.cumsum(y)])
    c2 = np.concatenate([[0.0], np.cumsum(y * y)])
    for c in coarse:
        ds = np.arange(max(0, (c.d_index - 1) * factor), min(n, (c.d_index + 1) * factor) + 1)
        rs = np.arange(max(0, (c.r_index - 1) * factor), min(n, (c.r_index + 1) * factor) + 1)
        dd, rr = np.meshgrid(ds, rs, indexing="ij")
        ok = (rr > dd) & (rr - dd < n)
        if not ok.any():
            continue
        dd, rr = dd[ok], rr[ok]
        w = rr - dd
        s1, s2 = c1[rr] - c1[dd], c2[rr] - c2[dd]
        nb = n - w
        mean_a, mean_b = s1 / w, (c1[-1] - s1) / nb
        var_a = np.maximum(s2 / w - mean_a ** 2, 1e-300)
        var_b = np.maximum((c2[-1] - s2) / nb - mean_b ** 2, 1e-300)
        score = -0.5 * (nb * np.log(var_b) + w * np.log(var_a))
        k = int(np.argmax(score))
        out.append(Candidate(int(dd[k]), int(rr[k]), float(score[k]), c.relative_likelihood_flat,
                             float(mean_b[k] - mean_a[k])))
    return out


def runners_up(y: np.ndarray, best: Candidate, edges: str, n: int = 2) -> list[Candidate]:
    """Other events: the best one's readings removed, the search run again (n times)."""
    keep = np.ones(len(y), bool)
    keep[best.d_index:best.r_index] = False
    out = []
    for _ in range(n):
        index = np.flatnonzero(keep)
        if len(index) < 10:
            break
        found = detect_long(y[index], edges="both")
        found = [c for c in found if c.relative_likelihood_flat < 0.1]
        if not found:
            break
        c = found[0]
        d, r = int(index[c.d_index]), int(index[min(c.r_index, len(index) - 1)])
        r = r + 1 if c.r_index >= len(index) else r
        out.append(Candidate(d, r, c.score, c.relative_likelihood_flat, c.drop))
        keep[d:r] = False
    return out
