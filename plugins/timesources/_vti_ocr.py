"""Character reading of a VTI on-screen display (OSD), learned from the video itself.

Pipeline (all numpy, vectorised over every field at once):

1. ``to_ink``: fields -> float32 "ink" (glyph positive, background ~0), whatever the
   polarity (bright VTI glyphs on a dark sky, or the dark-on-white strips Tangra saves).
2. ``find_band``: the OSD rows (rows whose mean ink is high), per field parity.
3. ``find_cells``: the character pitch (autocorrelation of the column ink profile within
   the VTI's pitch range) and the character cells (ink runs split at that pitch, so the
   boxes snap to the grid of each group; Kiwi groups keep their own phase).
4. ``calibrate``: the rightmost cell that changes every field is the last digit of the
   field counter. In time order it shows d0, d0+1, ... so the mean image of the fields
   k = r (mod 10) is the glyph of digit (d0 + r) mod 10; the field where the tens cell
   changes is digit 0 (self-calibration, no user boxes). The field order (which field
   of a frame is earlier) is the order in which the tens cell changes least often.
5. ``classify``: normalised cross-correlation of every cell of every field against the
   ten learned glyphs, over a few horizontal shifts, as one matrix product; cells with
   little ink are blank, poor or ambiguous matches are ``?`` (unreadable, never a guess).
"""
from __future__ import annotations

import numpy as np

BLANK = -1
UNSURE = -2


class OsdNotFound(Exception):
    """No VTI OSD could be found or learned in these fields (the reason is the message)."""


def to_ink(fields: np.ndarray, sample: int = 64) -> tuple[np.ndarray, dict]:
    """Fields (m, h, w) of any dtype -> ink float32 (glyph ~1, background ~0)."""
    a = np.asarray(fields, dtype=np.float32)
    ref = a[: min(len(a), sample)]
    lo, med, hi = np.percentile(ref, [0.5, 50.0, 99.5])
    dark_ink = (hi - med) < (med - lo)
    if dark_ink:
        a = -a
        ref = -ref
        lo, med, hi = -hi, -med, -lo
    # background per row (and parity) from the sample: the OSD band is mostly background
    bg_rows = np.median(ref, axis=(0, 2)).astype(np.float32)
    scale = float(hi - med)
    if scale <= 0:
        raise OsdNotFound("the OSD region is flat (no characters)")
    ink = (a - bg_rows[None, :, None]) / np.float32(scale)
    return ink, {"dark_ink": bool(dark_ink), "scale": scale}


def find_band(ink: np.ndarray, parity: np.ndarray, min_rows: int = 5) -> dict[int, tuple[int, int]]:
    """Rows ``(top, bottom)`` of the OSD band for each field parity present."""
    bands = {}
    for p in np.unique(parity):
        prof = ink[parity == p][:64].mean(axis=(0, 2))
        if prof.max() <= 0:
            raise OsdNotFound("no ink in the OSD region")
        on = prof > 0.2 * prof.max()
        runs = _runs(on)
        if not runs:
            raise OsdNotFound("no OSD rows found")
        # the band is the run with most ink
        best = max(runs, key=lambda r: prof[r[0]:r[1]].sum())
        top, bottom = max(0, best[0] - 1), min(len(prof), best[1] + 1)
        if bottom - top < min_rows:
            raise OsdNotFound(f"the OSD band is only {bottom - top} rows high")
        bands[int(p)] = (top, bottom)
    return bands


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges where ``mask`` is True."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.diff(m.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    stops = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), stops.tolist()))


def band_stack(ink: np.ndarray, parity: np.ndarray, bands: dict) -> np.ndarray:
    """All fields cut to a common band height (m, bh, w)."""
    height = max(b - t for t, b in bands.values())
    out = np.zeros((len(ink), height, ink.shape[2]), np.float32)
    for p, (t, b) in bands.items():
        sel = parity == p
        top = max(0, min(t, ink.shape[1] - height))
        out[sel] = ink[sel, top:top + height]
    return out


def find_cells(band: np.ndarray, pitch_range_px: tuple[float, float]) -> tuple[float, np.ndarray]:
    """The character pitch and the cell centres (x, px) along the band."""
    prof = band.mean(axis=(0, 1))
    prof = np.convolve(prof, np.ones(3) / 3, mode="same")
    centred = prof - prof.mean()
    lo, hi = pitch_range_px
    lags = np.arange(max(2, int(np.floor(lo))), int(np.ceil(hi)) + 1)
    ac = np.array([np.dot(centred[:-k], centred[k:]) / (len(centred) - k) for k in lags])
    i = int(np.argmax(ac))
    pitch = float(lags[i])
    if 0 < i < len(ac) - 1:   # parabolic refinement to a fractional pitch
        den = ac[i - 1] - 2 * ac[i] + ac[i + 1]
        if den < 0:
            pitch += 0.5 * (ac[i - 1] - ac[i + 1]) / den
    on = prof > 0.08 * prof.max()
    centres = []
    for a, b in _runs(on):
        length = b - a
        if length < 2:
            continue
        k = int(np.floor(length / pitch)) + 1
        mid = 0.5 * (a + b - 1)
        centres.extend(mid + (np.arange(k) - (k - 1) / 2) * pitch)
    if len(centres) < 4:
        raise OsdNotFound(f"only {len(centres)} character cells found")
    return pitch, np.asarray(centres)


def extract_cells(band: np.ndarray, centres: np.ndarray, pitch: float, margin: int,
                  shifts: np.ndarray | None = None) -> np.ndarray:
    """Cell windows (m, n_cells, bh, width + 2*margin) around the cell centres.

    ``shifts`` (m,) integer px moves every cell of a field (Kiwi's jump at a minute
    roll-over, grabber jitter)."""
    width = int(round(pitch))
    left = np.round(centres - (width - 1) / 2).astype(np.int64) - margin
    cols = left[:, None] + np.arange(width + 2 * margin)[None, :]        # (n_cells, cw)
    pad = width + 2 * margin + 40
    padded = np.pad(band, ((0, 0), (0, 0), (pad, pad)))
    if shifts is None:
        out = padded[:, :, cols + pad]                                   # (m, bh, n, cw)
    else:
        out = np.empty(band.shape[:2] + cols.shape, np.float32)
        for s in np.unique(shifts):
            sel = shifts == s
            out[sel] = padded[sel][:, :, cols + pad + int(s)]
    return np.ascontiguousarray(out.transpose(0, 2, 1, 3))


def field_shifts(band: np.ndarray, max_shift: int) -> np.ndarray:
    """Integer horizontal shift of each field against the first few (Kiwi minute jump)."""
    prof = band.mean(axis=1)                                              # (m, w)
    ref = np.median(prof[:16], axis=0)
    w = prof.shape[1]
    best = np.zeros(len(prof), np.int64)
    score = np.full(len(prof), -np.inf)
    for s in range(-max_shift, max_shift + 1):
        a0, a1 = max(0, s), min(w, w + s)
        c = (prof[:, a0:a1] * ref[a0 - s:a1 - s]).sum(axis=1)
        better = c > score
        score[better] = c[better]
        best[better] = s
    return best


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-6)


def match_scores(cells: np.ndarray, templates: np.ndarray, margin: int) -> np.ndarray:
    """Best normalised correlation (…, 10) of each cell window with each template."""
    lead = cells.shape[:-2]
    bh, cw = cells.shape[-2:]
    tw = templates.shape[-1]
    flat_t = _normalise(templates.reshape(len(templates), -1)).T          # (D, 10)
    best = None
    for s in range(0, 2 * margin + 1):
        patch = cells[..., :, s:s + tw].reshape(-1, bh * tw)
        sc = _normalise(patch) @ flat_t
        best = sc if best is None else np.maximum(best, sc)
    return best.reshape(*lead, len(templates))


def classify(cells: np.ndarray, templates: np.ndarray, margin: int, ink_level: float,
             min_score: float = 0.6, min_margin: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """Digits (…) with BLANK for empty cells and UNSURE for poor or ambiguous matches."""
    tw = templates.shape[-1]
    core = cells[..., :, margin:margin + tw]
    energy = np.clip(core, 0, None).mean(axis=(-1, -2))
    scores = match_scores(cells, templates, margin)
    order = np.argsort(scores, axis=-1)
    best = np.take_along_axis(scores, order[..., -1:], -1)[..., 0]
    second = np.take_along_axis(scores, order[..., -2:-1], -1)[..., 0]
    digit = order[..., -1].astype(np.int64)
    digit = np.where((best < min_score) | (best - second < min_margin), UNSURE, digit)
    digit = np.where(energy < 0.25 * ink_level, BLANK, digit)
    return digit, best


class Calibration:
    """What was learned from the video: band, pitch, cells, glyphs, field order."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def calibrate(ink: np.ndarray, parity: np.ndarray, frame_of: np.ndarray,
              pitch_range_px: tuple[float, float], *, max_shift: int = 0,
              margin: int = 2, window: int = 40) -> Calibration:
    """Learn band, cells, digit glyphs and field order from the fields (in file order)."""
    bands = find_band(ink, parity)
    band = band_stack(ink, parity, bands)
    shifts = field_shifts(band, max_shift) if max_shift else None
    sample = band if shifts is None else _unshift(band, shifts)
    pitch, centres = find_cells(sample[:256], pitch_range_px)
    cells = extract_cells(band, centres, pitch, margin, shifts)            # (m, n, bh, cw)
    width = int(round(pitch))
    core = np.clip(cells[..., margin:margin + width], 0, None).mean(axis=(-1, -2))  # (m, n)
    cell_ink = core.mean(axis=0)
    strong = np.flatnonzero(cell_ink > 0.3 * cell_ink.max())
    if len(strong) < 4:
        raise OsdNotFound("too few character cells with ink")

    frames = np.unique(frame_of)
    # drop exact duplicate frames (capture-chain repeats) from the calibration set
    keep_frames = [frames[0]]
    for f in frames[1:]:
        a, b = band[frame_of == keep_frames[-1]], band[frame_of == f]
        if not (a.shape == b.shape and np.array_equal(a, b)):
            keep_frames.append(f)
    keep_frames = np.asarray(keep_frames)
    win = max(12, window // 2)                      # frames per calibration window
    starts = list(range(0, max(1, len(keep_frames) - win + 1), max(1, win // 2)))[:12]

    best = None
    for last in strong[::-1][:3]:
        tens = last - 1
        if tens < 0:
            continue
        found = []
        for w0 in starts:
            frames_w = keep_frames[w0:w0 + win]
            for order in ("first-parity-first", "second-parity-first"):
                seq = _time_order(frame_of, parity, frames_w, order)
                if len(seq) < 12:
                    raise OsdNotFound(f"only {len(seq)} distinct fields; at least 12 are "
                                      "needed to learn the digits from the field counter")
                result = _label_by_counter(cells[seq, last], cells[seq, tens], margin, width)
                if result is not None:
                    found.append((w0, result[2], -result[0], order, result[1]))
        if found:
            # the most coherent window; both field orders are kept: the tens cell cannot
            # tell them apart when every decade starts a frame, the full reading can
            w_best = max(found, key=lambda c: -c[2])[0]
            pair = [c for c in found if c[0] == w_best]
            best = (int(last), pair)
            keep_frames = keep_frames[w_best:w_best + win]
            break
    if best is None:
        raise OsdNotFound("no cell steps through ten digits like a field counter")
    last, pair = best
    coherence = max(-c[2] for c in pair)
    if coherence < 0.5:
        raise OsdNotFound(f"the field-counter glyphs are not coherent (score {coherence:.2f})")
    cal_idx = np.flatnonzero(np.isin(frame_of, keep_frames))
    candidates = []
    for _w, _changes, _neg, order, templates in sorted(pair, key=lambda c: c[1]):
        ink_level = float(np.clip(templates, 0, None).mean())
        digits, score = classify(cells[cal_idx], templates, margin, ink_level)
        refined = templates.copy()
        for d in range(10):
            sel = (digits == d) & (score > 0.8)
            if sel.sum() >= 2:
                refined[d] = _aligned_mean(cells[cal_idx][sel], templates[d], margin)
        candidates.append((order, refined, ink_level))
    return Calibration(bands=bands, pitch_px=pitch, centres=centres, margin=margin,
                       candidates=candidates, last_cell=last, max_shift=max_shift,
                       calibration_score=coherence, cal_idx=cal_idx)


def _unshift(band: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    out = np.zeros_like(band)
    for s in np.unique(shifts):
        sel = shifts == s
        out[sel] = np.roll(band[sel], -int(s), axis=2)
    return out


def _time_order(frame_of, parity, frames, order) -> np.ndarray:
    """Field indices of ``frames`` in the assumed time order."""
    seq = []
    for f in frames:
        idx = np.flatnonzero(frame_of == f)
        idx = idx[np.argsort(parity[idx], kind="stable")]
        if order == "second-parity-first":
            idx = idx[::-1]
        seq.extend(idx.tolist())
    return np.asarray(seq, np.int64)


def _label_by_counter(last_cells, tens_cells, margin, width):
    """Glyphs 0-9 from a cell that advances by one every field, or None."""
    n = len(last_cells)
    core = last_cells[..., margin:margin + width]
    flat = _normalise(core.reshape(n, -1))
    residue = np.arange(n) % 10
    means = np.stack([core[residue == r].mean(axis=0) for r in range(10)])
    mflat = _normalise(means.reshape(10, -1))
    sims = flat @ mflat.T                                                  # (n, 10)
    own = sims[np.arange(n), residue]
    other = np.where(np.eye(10, dtype=bool)[residue], -np.inf, sims).max(axis=1)
    if np.median(own - other) < 0.02:
        return None
    score = float(np.median(own))
    tcore = tens_cells[..., margin:margin + width].reshape(n, -1)
    step = ((tcore[1:] - tcore[:-1]) ** 2).sum(axis=1)                    # change into k+1
    per_res = np.array([step[(np.arange(1, n) % 10) == r].mean() for r in range(10)])
    zero_res = int(np.argmax(per_res))
    # how often the tens cell changes (fewer in the true order: once per ten fields)
    # total change energy of the tens cell: noise adds the same to both orders, the
    # true order has one digit change per ten fields, the swapped order three
    tens_changes = float(step.sum())
    templates = np.empty((10,) + means.shape[1:], np.float32)
    for r in range(10):
        templates[(r - zero_res) % 10] = means[r]
    return score, templates, tens_changes


def _aligned_mean(cells, template, margin):
    """Mean of cell windows after moving each to its best-matching shift."""
    tw = template.shape[-1]
    t = _normalise(template.reshape(1, -1))[0]
    best_s = np.zeros(len(cells), np.int64)
    best_v = np.full(len(cells), -np.inf)
    for s in range(2 * margin + 1):
        v = _normalise(cells[:, :, s:s + tw].reshape(len(cells), -1)) @ t
        better = v > best_v
        best_v[better] = v[better]
        best_s[better] = s
    out = np.stack([c[:, s:s + tw] for c, s in zip(cells, best_s)])
    return out.mean(axis=0).astype(np.float32)
