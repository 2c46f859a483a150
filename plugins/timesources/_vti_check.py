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


def field_order(parsed, frame_of, parity, hint: str, option: str = "auto",
                has_counter: bool = True) -> str:
    """Which field of a frame is earlier, from the counters (or, for VTIs that print no
    counter, the times) of the frames read in full."""
    if option != "auto":
        return option
    frame_of, parity = np.asarray(frame_of), np.asarray(parity)
    lo = parity.min() if len(parity) else 0
    # pair each first-parity field with the second-parity field of its frame
    srt = np.lexsort((parity, frame_of))
    f, p = frame_of[srt], parity[srt]
    at = np.flatnonzero((f[1:] == f[:-1]) & (p[:-1] == lo) & (p[1:] != lo))
    if len(at) == 0:
        return hint
    a, b = srt[at], srt[at + 1]
    both = parsed["valid"][a] & parsed["valid"][b]
    if has_counter:
        d = parsed["counter"][b] - parsed["counter"][a]
        later, earlier = (d == 1), (d == -1)
    else:
        dt = (parsed["t_units"][b] - parsed["t_units"][a]) % DAY_UNITS
        dt = np.where(dt > DAY_UNITS / 2, dt - DAY_UNITS, dt)
        later = (dt > 100) & (dt < 250)
        earlier = (dt < -100) & (dt > -250)
    first_first = int((both & later).sum())
    second_first = int((both & earlier).sum())
    if first_first == second_first:
        return hint
    return "first-parity-first" if first_first > second_first else "second-parity-first"


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
    has_counter = any(g == "counter" for g, _ in VTI_TYPES[vti]["groups"])

    # field period from the two fields of frames read in full (consecutive by nature)
    same_frame = frames[1:] == frames[:-1]
    dt = (t[1:] - t[:-1]) % DAY_UNITS
    if has_counter:
        pair = same_frame & valid[1:] & valid[:-1] & (n[1:] - n[:-1] == 1)
    else:
        pair = same_frame & valid[1:] & valid[:-1] & (dt > 100) & (dt < 250)
    steps = dt[pair]
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
    t_unw = _unwrap_day(t, valid)
    if not has_counter:
        # a virtual counter from the time: fields elapsed since the first valid field
        ref = t_unw[np.flatnonzero(valid)[0]]
        n = np.where(valid, np.round((t_unw - ref) / nominal), 0.0)
    # refine the period on a long baseline of provisionally good fields
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
    if not has_counter:
        # the virtual counter agrees with the time by construction; what must hold is
        # that fields elapsed = position in the sequence, up to steps (drops and
        # duplicates) that persist: a field is good only if at least two of its four
        # nearest fields confirm its offset. A misread digit makes a lone offset.
        good &= _persistent_offset(n - np.arange(m), good)

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
    dropped, duplicated, frame_events = _frame_steps(frames, out_n)
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
    win = min(2 * half, len(idx))
    from numpy.lib.stride_tricks import sliding_window_view
    med_at = np.median(sliding_window_view(vals, win), axis=1)   # one window per start
    return med_at[np.minimum(lo, len(med_at) - 1)]


def _frame_steps(frames, out_n):
    """Dropped and duplicated frames from the field numbers, frame by frame (vectorised)."""
    starts = np.flatnonzero(np.concatenate([[True], frames[1:] != frames[:-1]]))
    sizes = np.diff(np.concatenate([starts, [len(frames)]]))
    within = np.arange(len(frames)) - np.repeat(starts, sizes)
    val = out_n - within                              # the frame's first field number
    fin = np.isfinite(val)
    frame_idx = np.repeat(np.arange(len(starts)), sizes)
    has = np.zeros(len(starts), bool)
    first_val = np.full(len(starts), np.nan)
    fi = np.flatnonzero(fin)
    uniq, where = np.unique(frame_idx[fi], return_index=True)
    has[uniq] = True
    first_val[uniq] = val[fi[where]]
    known = np.flatnonzero(has)
    dropped, duplicated, events = [], [], {}
    if len(known) < 2:
        return dropped, duplicated, events
    d = first_val[known[1:]] - first_val[known[:-1]]
    per = sizes[known[:-1]]
    for i in np.flatnonzero(d != per):                # events are rare: a short loop
        f = int(frames[starts[known[i + 1]]])
        step, fpf = d[i], int(per[i])
        if step == 0:
            duplicated.append(f)
            events[f] = "duplicate"
        elif step > fpf and (step - fpf) % fpf == 0:
            missing = int((step - fpf) // fpf)
            dropped.append((f, missing))
            events[f] = f"dropped {missing}"
        else:
            events[f] = f"counter step {int(step)} fields"
    return dropped, duplicated, events


def _persistent_offset(offset, ok):
    """Fields whose offset is shared by at least two of the four nearest fields."""
    m = len(offset)
    votes = np.zeros(m, np.int64)
    for lag in (-2, -1, 1, 2):
        j = np.arange(m) + lag
        inside = (j >= 0) & (j < m)
        jj = np.clip(j, 0, m - 1)
        votes += inside & ok[jj] & (offset[jj] == offset)
    return votes >= 2


def _unwrap_day(t, valid):
    """Times in units continuing through midnight."""
    out = t.copy()
    vi = np.flatnonzero(valid)
    if len(vi) == 0:
        return out
    d = np.diff(t[vi])
    wrap = np.cumsum(np.concatenate([[0], (d < -DAY_UNITS / 2).astype(float)]))
    # carry the wrap count of the last valid field forward to invalid fields
    last = np.maximum.accumulate(np.where(valid, np.arange(len(t)), -1))
    rank = np.searchsorted(vi, np.maximum(last, 0))
    jumps = np.where(last >= 0, wrap[np.minimum(rank, len(vi) - 1)], 0.0)
    return out + jumps * DAY_UNITS


def _all_flagged(seq, why):
    m = len(seq)
    return {"seq": seq, "status": np.full(m, FLAGGED, object), "reason": np.full(m, why, object),
            "t_units": np.full(m, np.nan), "counter": np.full(m, np.nan), "standard": None,
            "period_units": None, "dropped": [], "duplicated": [], "frame_events": {}}
