"""Consistency of VTI readings over time: field order, field period, correction, drops.

A correct field satisfies ``t = c + N * T`` locally (printed time t, counter N, field
period T measured from the data); the printed rounding leaves a residual band of at
most one printed unit. A field outside the band, or unreadable, is predicted from its
nearest good neighbours (its partner field of the same frame first: the two fields of
one frame are always consecutive); the prediction replaces the reading only when the
two differ in at most ``max_fix_chars`` characters and no other candidate fits as well.
"""
from __future__ import annotations

import numpy as np

from ._vti_decode import (DAY_UNITS, NTSC_FIELD_UNITS, PAL_FIELD_UNITS, VTI_TYPES, char_diff,
                          format_expected)

READ, CORRECTED, FLAGGED = "read", "corrected", "flagged"


def field_order(parsed, frame_of, parity, hint: str, option: str = "auto") -> str:
    """Which field of a frame is earlier, from the counters of frames read in full."""
    if option != "auto":
        return option
    votes = {"first-parity-first": 0, "second-parity-first": 0}
    first = {}
    for i in np.argsort(parity, kind="stable"):
        f = frame_of[i]
        if parity[i] == parity.min():
            first[f] = i
        elif f in first:
            a, b = first[f], i
            if parsed["valid"][a] and parsed["valid"][b]:
                d = parsed["counter"][b] - parsed["counter"][a]
                if d == 1:
                    votes["first-parity-first"] += 1
                elif d == -1:
                    votes["second-parity-first"] += 1
    if votes["first-parity-first"] == votes["second-parity-first"]:
        return hint
    return max(votes, key=votes.get)


def time_sequence(frame_of, parity, order: str) -> np.ndarray:
    """Field indices in time order (frames in file order, fields by ``order``)."""
    key_parity = parity if order == "first-parity-first" else -parity
    return np.lexsort((key_parity, frame_of))


def check_fields(vti: str, parsed: dict, frame_of, parity, order: str,
                 max_fix_chars: int = 2) -> dict:
    seq = time_sequence(frame_of, parity, order)
    m = len(seq)
    valid = parsed["valid"][seq]
    t = parsed["t_units"][seq].astype(np.float64)
    n = parsed["counter"][seq].astype(np.float64)
    frames = frame_of[seq]
    res_units = VTI_TYPES[vti]["resolution_units"]

    # field period from the two fields of frames read in full (consecutive by nature)
    same_frame = frames[1:] == frames[:-1]
    pair = same_frame & valid[1:] & valid[:-1] & (n[1:] - n[:-1] == 1)
    steps = ((t[1:] - t[:-1]) % DAY_UNITS)[pair]
    if len(steps) == 0:
        return _all_flagged(seq, "no frame with both fields read; field period unknown")
    step = float(np.median(steps))
    if abs(step - PAL_FIELD_UNITS) < 3 * res_units:
        standard, nominal = "PAL", PAL_FIELD_UNITS
    elif abs(step - NTSC_FIELD_UNITS) < 3 * res_units:
        standard, nominal = "NTSC", NTSC_FIELD_UNITS
    else:
        return _all_flagged(seq, f"field step {step / 10:.2f} ms is neither PAL nor NTSC")
    period = nominal
    # refine the period on a long baseline of provisionally good fields
    t_unw = _unwrap_day(t, valid)
    r = t_unw - n * period
    ok = valid & (np.abs(r - _rolling_median(r, valid)) <= 0.5 * res_units + 0.2 + 3 * res_units)
    idx = np.flatnonzero(ok)
    if len(idx) >= 4 and n[idx[-1]] - n[idx[0]] > 50:
        half = len(idx) // 2
        a, b = idx[:half], idx[-half:]
        slopes = (t_unw[b] - t_unw[a]) / np.where(n[b] != n[a], n[b] - n[a], np.nan)
        est = np.nanmedian(slopes)
        if np.isfinite(est) and abs(est - nominal) < 0.01 * nominal:
            period = float(est)
    r = t_unw - n * period
    # printed rounding: PAL prints exact multiples; NTSC and Kiwi a band one unit wide
    band = 0.0 if (standard == "PAL" and res_units == 1) else 0.5 * res_units
    tol = band + 0.25 * res_units
    med = _rolling_median(r, valid)
    good = valid & (np.abs(r - med) <= tol)

    status = np.full(m, FLAGGED, object)
    reason = np.full(m, "", object)
    status[good] = READ
    out_t = np.where(good, t_unw, np.nan)
    out_n = np.where(good, n, np.nan)
    good_idx = np.flatnonzero(good)
    for k in np.flatnonzero(~good):
        pred = _predict(k, good_idx, n, frames)
        if pred is None:
            reason[k] = ("unreadable" if not valid[k] else "inconsistent with neighbours") + \
                "; no unambiguous prediction (neighbours disagree or absent)"
            continue
        n_pred = pred
        base = med[k] + n_pred * period
        cands = sorted({int(np.floor(base + d)) for d in (-band - 0.01, 0.0, band + 0.01)})
        cands = [c for c in cands if abs(c - base) <= tol + 1e-9] or [int(round(base))]
        read_text = parsed["text"][seq[k]]
        scored = [(char_diff(read_text, format_expected(vti, c, int(n_pred), read_text)), c)
                  for c in cands]
        scored.sort()
        best_diff = scored[0][0]
        ties = [c for d, c in scored if d == best_diff]
        if best_diff > max_fix_chars:
            reason[k] = f"reading differs from the expected value in {best_diff} characters"
            continue
        if len(ties) > 1 and best_diff > 0:
            reason[k] = "two expected values fit the reading equally well"
            continue
        status[k] = CORRECTED
        reason[k] = f"{best_diff} character(s) corrected" if best_diff else \
            "reading confirmed by its neighbours"
        out_t[k], out_n[k] = ties[0], n_pred

    # drops and duplicates, frame by frame, from counter and time together
    frame_ids = list(dict.fromkeys(frames.tolist()))
    pos = {f: np.flatnonzero(frames == f) for f in frame_ids}
    frame_n = {}
    for f, ks in pos.items():
        vals = [out_n[k] - j for j, k in enumerate(ks) if np.isfinite(out_n[k])]
        frame_n[f] = vals[0] if vals else None
    dropped, duplicated, frame_events = [], [], {}
    prev = None
    for f in frame_ids:
        cur = frame_n[f]
        if cur is not None and prev is not None:
            d = cur - frame_n[prev]
            fields_per_frame = len(pos[prev])
            if d == 0:
                duplicated.append(int(f))
                frame_events[f] = "duplicate"
            elif d > fields_per_frame and (d - fields_per_frame) % fields_per_frame == 0:
                missing = int((d - fields_per_frame) // fields_per_frame)
                dropped.append((int(f), missing))
                frame_events[f] = f"dropped {missing}"
            elif d != fields_per_frame:
                frame_events[f] = f"counter step {int(d)} fields"
        if cur is not None:
            prev = f
    return {"seq": seq, "status": status, "reason": reason, "t_units": out_t,
            "counter": out_n, "standard": standard, "period_units": period,
            "dropped": dropped, "duplicated": duplicated, "frame_events": frame_events}


def _predict(k, good_idx, n, frames):
    """Counter of field k from its nearest good neighbours, or None."""
    j = np.searchsorted(good_idx, k)
    before = good_idx[j - 1] if j > 0 else None
    after = good_idx[j] if j < len(good_idx) else None
    cands = []
    for g in (before, after):
        if g is not None and frames[g] == frames[k]:
            return n[g] + (k - g)          # partner field: always consecutive
    if before is not None:
        cands.append(n[before] + (k - before))
    if after is not None:
        cands.append(n[after] - (after - k))
    if len(cands) == 2 and cands[0] == cands[1]:
        return cands[0]
    return None


def _rolling_median(r, valid, half: int = 20):
    """Median residual of the valid fields around each field (robust to misreads)."""
    idx = np.flatnonzero(valid)
    out = np.full(len(r), np.nan)
    if len(idx) == 0:
        return out
    vals = r[idx]
    # block medians: cheap and robust; the residual drifts slowly if at all
    pos = np.searchsorted(idx, np.arange(len(r)))
    lo = np.clip(pos - half, 0, max(0, len(idx) - 2 * half))
    hi = np.minimum(lo + 2 * half, len(idx))
    starts = np.unique(lo)
    med_of = {s: np.median(vals[s:min(s + 2 * half, len(idx))]) for s in starts}
    return np.array([med_of[s] for s in lo])


def _unwrap_day(t, valid):
    """Times in units continuing through midnight."""
    out = t.copy()
    vi = np.flatnonzero(valid)
    if len(vi) == 0:
        return out
    jumps = np.zeros(len(t))
    d = np.diff(t[vi])
    wrap = np.cumsum(np.concatenate([[0], (d < -DAY_UNITS / 2).astype(float)]))
    jumps[vi] = wrap
    # carry the wrap count forward to invalid fields
    last = 0.0
    for k in range(len(t)):
        if valid[k]:
            last = jumps[k]
        jumps[k] = last
    return out + jumps * DAY_UNITS


def _all_flagged(seq, why):
    m = len(seq)
    return {"seq": seq, "status": np.full(m, FLAGGED, object), "reason": np.full(m, why, object),
            "t_units": np.full(m, np.nan), "counter": np.full(m, np.nan), "standard": None,
            "period_units": None, "dropped": [], "duplicated": [], "frame_events": {}}
