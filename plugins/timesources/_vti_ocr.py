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


def ink_norm(sample: np.ndarray) -> dict:
    """Polarity, background per row and ink scale, learned from a sample of fields."""
    sample = np.asarray(sample)
    # statistics only: every other field and column is plenty (and 4x cheaper)
    ref = sample[::2, :, ::2] if sample.shape[0] >= 16 else sample
    if ref.dtype == np.uint8:     # histograms: exact order statistics without sorting
        return _ink_norm_u8(ref)
    ref = np.asarray(ref, dtype=np.float32)
    lo, med, hi = np.percentile(ref, [0.5, 50.0, 99.5])
    dark_ink = (hi - med) < (med - lo)
    sign = np.float32(-1.0 if dark_ink else 1.0)
    if dark_ink:
        lo, med, hi = -hi, -med, -lo
    # background per row (and parity) from the sample: the OSD band is mostly background
    bg_rows = np.median(ref, axis=(0, 2)).astype(np.float32)
    scale = float(hi - med)
    if scale <= 0:
        raise OsdNotFound("the OSD region is flat (no characters)")
    return {"dark_ink": bool(dark_ink), "sign": sign, "bg_rows": bg_rows, "scale": scale}


def _ink_norm_u8(ref: np.ndarray) -> dict:
    h = ref.shape[1]
    rows = np.broadcast_to(np.arange(h)[None, :, None], ref.shape)
    hist = np.bincount((rows * 256 + ref).ravel(), minlength=h * 256).reshape(h, 256)

    def quantile(counts, q):
        c = np.cumsum(counts, axis=-1)
        return np.argmax(c >= q * c[..., -1:], axis=-1).astype(np.float32)

    total = hist.sum(axis=0)
    lo, med, hi = (float(quantile(total, q)) for q in (0.005, 0.5, 0.995))
    dark_ink = (hi - med) < (med - lo)
    if dark_ink:
        lo, med, hi = -hi, -med, -lo
    scale = hi - med
    if scale <= 0:
        raise OsdNotFound("the OSD region is flat (no characters)")
    return {"dark_ink": bool(dark_ink), "sign": np.float32(-1.0 if dark_ink else 1.0),
            "bg_rows": quantile(hist, 0.5), "scale": float(scale)}


def apply_norm(a: np.ndarray, norm: dict, rows=slice(None)) -> np.ndarray:
    """Raw pixels (..., h, w) -> ink float32 with the learned background of ``rows``."""
    bg = norm["bg_rows"][rows]
    return (np.asarray(a, np.float32) - bg[:, None]) * np.float32(norm["sign"] / norm["scale"])


def to_ink(fields: np.ndarray, sample: int = 64) -> tuple[np.ndarray, dict]:
    """Fields (m, h, w) of any dtype -> ink float32 (glyph ~1, background ~0)."""
    norm = ink_norm(fields[: min(len(fields), sample)])
    return apply_norm(fields, norm), norm


def find_band(ink: np.ndarray, parity: np.ndarray, min_rows: int = 5) -> dict[int, tuple[int, int]]:
    """Rows ``(top, bottom)`` of the OSD band for each field parity present."""
    bands = {}
    for p in np.unique(parity):
        prof = ink[parity == p][:64].mean(axis=(0, 2))
        # a line of characters puts several % of glyph ink into its rows; noise or a
        # star field averages to ~0 along a row
        if prof.max() <= 0.02:
            raise OsdNotFound("no row of characters in the OSD region")
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
    return list(zip(starts.tolist(), stops.tolist(), strict=False))


def band_stack(ink: np.ndarray, parity: np.ndarray, bands: dict) -> np.ndarray:
    """All fields cut to a common band height (m, bh, w)."""
    height = max(b - t for t, b in bands.values())
    out = np.zeros((len(ink), height, ink.shape[2]), np.float32)
    for p, (t, _b) in bands.items():
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
    w = band.shape[2]

    def cut(b, c):               # columns outside the line: zero ink (the background)
        inside = (c >= 0) & (c < w)
        return np.take(b, np.clip(c, 0, w - 1), axis=2) * inside

    if shifts is None:
        out = cut(band, cols)                                            # (m, bh, n, cw)
    else:
        out = np.empty(band.shape[:2] + cols.shape, np.float32)
        for s in np.unique(shifts):
            sel = shifts == s
            out[sel] = cut(band[sel], cols + int(s))
    return np.ascontiguousarray(out.transpose(0, 2, 1, 3))


def field_shifts(band: np.ndarray, max_shift: int, ref: np.ndarray | None = None,
                 prof: np.ndarray | None = None) -> np.ndarray:
    """Integer horizontal shift of each field against the first few (Kiwi minute jump)."""
    if prof is None:
        prof = band.mean(axis=1)                                          # (m, w)
    if ref is None:
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
    d_px = bh * tw
    flat_t = _normalise(templates.reshape(len(templates), -1))
    flat_t -= flat_t.mean(axis=1, keepdims=True)       # exactly zero-mean templates:
    # patch @ t then needs no centring; a column of 1/D gives the patch mean for the norm
    tm = np.concatenate([flat_t.T, np.full((d_px, 1), 1.0 / d_px)], 1).astype(np.float32)
    best = None
    for s in range(0, 2 * margin + 1):
        patch = np.ascontiguousarray(cells[..., :, s:s + tw], np.float32).reshape(-1, d_px)
        g = patch @ tm
        sq = np.einsum("ij,ij->i", patch, patch)
        norm = np.sqrt(np.maximum(sq - d_px * g[:, -1] ** 2, 1e-12))
        sc = g[:, :-1] / norm[:, None]
        best = sc if best is None else np.maximum(best, sc)
    return best.reshape(*lead, len(templates))


MIN_SCORE, MIN_MARGIN = 0.6, 0.04


def classify(cells: np.ndarray, templates: np.ndarray, margin: int, ink_level: float,
             min_score: float = MIN_SCORE, min_margin: float = MIN_MARGIN
             ) -> tuple[np.ndarray, np.ndarray]:
    """Digits (…) with BLANK for empty cells and UNSURE for poor or ambiguous matches."""
    tw = templates.shape[-1]
    core = cells[..., :, margin:margin + tw]
    energy = np.clip(core, 0, None).mean(axis=(-1, -2))
    scores = match_scores(cells, templates, margin)
    return _decide(scores, energy, ink_level, min_score, min_margin)


def _decide(scores, energy, ink_level, min_score=MIN_SCORE, min_margin=MIN_MARGIN):
    """Digit codes from template scores (…, 10) and cell ink energy (…)."""
    part = np.partition(scores, -2, axis=-1)
    best, second = part[..., -1], part[..., -2]
    digit = np.argmax(scores, axis=-1).astype(np.int64)
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
    out = np.stack([c[:, s:s + tw] for c, s in zip(cells, best_s, strict=False)])
    return out.mean(axis=0).astype(np.float32)


def best_cell_shifts(cells: np.ndarray, templates: np.ndarray, margin: int,
                     digits: np.ndarray) -> np.ndarray:
    """Per cell (column), the window shift (0..2*margin) at which the read digits match
    best on the calibration fields: the grid is fixed, so one search per column."""
    m, n, bh, cw = cells.shape
    tw = templates.shape[-1]
    flat_t = _normalise(templates.reshape(len(templates), -1))              # (10, D)
    total = np.zeros((n, 2 * margin + 1))
    read = digits >= 0
    for s in range(2 * margin + 1):
        patch = _normalise(cells[..., s:s + tw].reshape(m, n, bh * tw))
        own = np.einsum("mnd,mnd->mn", patch, flat_t[np.clip(digits, 0, 9)])
        total[:, s] = np.where(read, own, 0.0).sum(axis=0)
    out = np.full(n, margin, np.int64)
    has = read.any(axis=0)
    out[has] = np.argmax(total[has], axis=1)
    return out


def _field_rows(raw, fi, top, bottom):
    """raw[fi, top:bottom], as a view when the fields are evenly spaced (they usually
    are: one parity of interlaced frames is every other field)."""
    if len(fi) > 1 and np.all(np.diff(fi) == fi[1] - fi[0]) and fi[1] > fi[0]:
        return raw[fi[0]:fi[-1] + 1:fi[1] - fi[0], top:bottom]
    return raw[fi, top:bottom]


class FieldReader:
    """Reads the digit codes of raw fields with what calibration learned, block by block.

    Only the band rows and the character columns are touched; pixels stay in their raw
    dtype until the cells are cut; every cell is matched at its column's learned shift,
    and only cells that read poorly there are searched again over all shifts."""

    def __init__(self, cal: Calibration, templates: np.ndarray, ink_level: float,
                 norm: dict, cell_shift: np.ndarray, ref_profile: np.ndarray | None,
                 needed: np.ndarray | None = None):
        self.cal, self.norm, self.ink_level = cal, norm, ink_level
        # only the cells that hold a printed number are read (not separators, status)
        self.needed = np.arange(len(cal.centres)) if needed is None else np.asarray(needed)
        self.tw = templates.shape[-1]
        self.flat_t = _normalise(templates.reshape(len(templates), -1)).T.astype(np.float32)
        self.flat_t -= self.flat_t.mean(axis=0, keepdims=True)     # exactly zero-mean
        self.templates = templates
        width = int(round(cal.pitch_px))
        left = np.round(cal.centres - (width - 1) / 2).astype(np.int64) - cal.margin
        self.n_cells = len(left)
        left, cell_shift = left[self.needed], np.asarray(cell_shift)[self.needed]
        self.window_left = left                                            # (n,)
        self.core_cols = (left + cell_shift)[:, None] + np.arange(self.tw)[None, :]
        self.height = max(b - t for t, b in cal.bands.values())
        self.ref_profile = ref_profile

    def rows_needed(self, field_rows: int) -> tuple[int, int]:
        """Field rows [lo, hi) that hold the band of every parity."""
        spans = [self._rows(p, field_rows) for p in self.cal.bands]
        return min(a for a, _ in spans), max(b for _, b in spans)

    def _rows(self, p: int, field_rows: int) -> tuple[int, int]:
        t, _b = self.cal.bands[p]
        lo, hi = getattr(self.cal, "row_span", (0, field_rows))   # as band_stack cut it
        top = max(lo, min(t, hi - self.height))
        return top, top + self.height

    def digits(self, raw: np.ndarray, parity: np.ndarray, field_rows: int | None = None,
               row0: int = 0) -> np.ndarray:
        """Digit codes (m, n_cells) of raw fields (m, h, w) that start at field row ``row0``
        of fields ``field_rows`` high (the calibration's geometry)."""
        m, h, w = raw.shape
        field_rows = h if field_rows is None else field_rows
        n = len(self.window_left)
        out = np.full((m, self.n_cells), UNSURE, np.int8)
        sign = np.float32(self.norm["sign"])
        flat_t = np.concatenate([self.flat_t, np.full((self.flat_t.shape[0], 1),
                                                      1.0 / self.flat_t.shape[0], np.float32)], 1)
        d_px = self.flat_t.shape[0]
        for p in np.unique(parity):
            sel = np.flatnonzero(parity == p)
            if int(p) not in self.cal.bands:
                continue
            top, bottom = self._rows(int(p), field_rows)
            bg = self.norm["bg_rows"][top:bottom].astype(np.float32)
            top, bottom = top - row0, bottom - row0
            shifts = np.zeros(len(sel), np.int64)
            if self.cal.max_shift:
                prof = (raw[sel, top:bottom].mean(axis=1, dtype=np.float32) - bg.mean()) * \
                    np.float32(sign / self.norm["scale"])
                shifts = field_shifts(None, self.cal.max_shift, self.ref_profile, prof)
            bg_cell = np.repeat(bg, self.tw)                               # (bh*tw,)
            for s in np.unique(shifts):
                fi = sel[shifts == s]
                cols = np.clip(self.core_cols + int(s), 0, w - 1)          # (n, tw)
                # one gather straight into (k, n, bh, tw), still raw dtype
                cells = np.take(_field_rows(raw, fi, top, bottom), cols, axis=2)  # (k,bh,n,tw)
                x = np.empty((len(fi), n, self.height, self.tw), np.float32)
                x[...] = cells.transpose(0, 2, 1, 3)
                x = x.reshape(len(fi) * n, -1)
                x -= bg_cell
                # templates are zero-mean and unit-norm: x @ t needs no centring; the
                # last column gives the mean, x.x the norm of the centred cell
                g = x @ flat_t
                mean = g[:, -1]
                sq = np.einsum("ij,ij->i", x, x)
                norm = np.sqrt(np.maximum(sq - d_px * mean * mean, 1e-12))
                scores = (sign * g[:, :-1] / norm[:, None]).reshape(len(fi), n, -1)
                energy = (np.maximum(sign * x, 0).mean(axis=1) / self.norm["scale"]
                          ).reshape(len(fi), n)
                d, _ = _decide(scores, energy, self.ink_level)
                redo = np.argwhere(d == UNSURE)
                if len(redo):
                    rows = raw[fi[redo[:, 0]], top:bottom]
                    d[redo[:, 0], redo[:, 1]] = self._search(
                        rows, redo[:, 1], int(s), bg, np.float32(sign / self.norm["scale"]), w)
                out[np.ix_(fi, self.needed)] = d
        return out

    def _search(self, rows, cell_idx, shift, bg, scale, w):
        """Cells that read poorly at their column's shift, matched over every shift."""
        margin = self.cal.margin
        cw = self.tw + 2 * margin
        cols = np.clip(self.window_left[cell_idx][:, None] + shift + np.arange(cw)[None, :],
                       0, w - 1)                                           # (r, cw)
        win = rows[np.arange(len(rows))[:, None, None], np.arange(rows.shape[1])[None, :, None],
                   cols[:, None, :]]                                       # (r, bh, cw)
        ink = (win.astype(np.float32) - bg[None, :, None]) * scale
        d, _ = classify(ink, self.templates, margin, self.ink_level)
        return d


# -- VTIs that print no field counter (BoxSprite, GHS) ---------------------------------
def calibrate_by_time(ink: np.ndarray, parity: np.ndarray, frame_of: np.ndarray,
                      pitch_range_px: tuple[float, float], spec: dict, *, margin: int = 2,
                      window_frames: int = 48) -> Calibration:
    """Learn band, cells and digit glyphs from the tenths-of-a-second digit.

    With no counter on the line, the tenths digit is the clock: in time order it shows
    floor((phase + k * T) / 0.1 s) mod 10 for field k, T the field period (PAL 20 ms,
    NTSC 16.683 ms). For each period and each phase (0..100 ms) that labelling groups
    the cell images; the one whose groups are tightest is the true one, up to which
    group is digit 0. That is settled by the seconds digit, which changes exactly when
    the tenths digit goes 9 -> 0. The tenths cell is the one whose image varies a lot
    over the sample but little from one field to the next (it changes every 5-6
    fields); the fraction, seconds, minutes and hours groups are then read leftwards."""
    bands = find_band(ink, parity)
    band = band_stack(ink, parity, bands)
    pitch, centres = find_cells(band, pitch_range_px)
    cells = extract_cells(band, centres, pitch, margin)                   # (m, n, bh, cw)
    width = int(round(pitch))
    core = cells[..., margin:margin + width]
    frames = np.unique(frame_of)
    keep = [frames[0]]
    for f in frames[1:]:                   # drop capture-chain repeats of a frame
        if not np.array_equal(band[frame_of == keep[-1]], band[frame_of == f]):
            keep.append(f)
    keep = np.asarray(keep)
    starts = sorted({0, max(0, (len(keep) - window_frames) // 2), max(0, len(keep) - window_frames)})
    best = None
    for order in ("first-parity-first", "second-parity-first"):
        # windows for the clock labelling (a drop inside shifts its phase), and the whole
        # sample for the labelling by digit changes (which a drop or repeat does not upset)
        for w0 in [*starts, None]:
            frames_w = keep if w0 is None else keep[w0:w0 + window_frames]
            seq = _time_order(frame_of, parity, frames_w, order)
            if len(seq) < 50:
                raise OsdNotFound(f"only {len(seq)} distinct fields; at least 50 (1 s) are "
                                  "needed to learn the digits from the tenths of a second")
            x = core[seq].reshape(len(seq), core.shape[1], -1)            # (k, n, D)
            var = x.var(axis=0).sum(axis=-1)                              # (n,)
            step = ((x[1:] - x[:-1]) ** 2).mean(axis=0).sum(axis=-1)      # (n,)
            ratio = step / np.maximum(2 * var, 1e-9)
            # tenths: large variance, small field-to-field change (every ~5-6 fields)
            cand = np.flatnonzero((ratio > 0.06) & (ratio < 0.45) & (var > 0.3 * var.max()))
            if "tenths_group" in spec:    # several fractions: the tenths of the one named
                cand = _tenths_of_group(centres, pitch, spec["tenths_group"], cand)
            for j in cand:
                r = _label_by_runs(x[:, j]) if w0 is None else \
                    _label_by_clock(x[:, j], seq_len=len(seq))
                if r is None:
                    continue
                sse, labels, period_ms = r
                sse /= len(seq)             # per field: windows and sample compare fairly
                if best is None or sse < best[0]:
                    best = (sse, order, w0, int(j), labels, period_ms, seq)
    if best is None:
        raise OsdNotFound("no cell steps through ten digits like the tenths of a second")
    _sse, order, _w0, tenths, labels, period_ms, seq = best
    # which label is digit 0: the seconds digit(s) left of the tenths change on 9 -> 0
    left = [c for c in range(tenths) if centres[tenths] - centres[c] < 4.5 * pitch]
    if not left:
        raise OsdNotFound("no seconds digit left of the tenths digit")
    xs = core[seq][:, left].reshape(len(seq), -1)
    change = ((xs[1:] - xs[:-1]) ** 2).sum(axis=1)
    # a second's roll-over may show one field before or after the tenths digit's (GPS-
    # BoxSprite's first value changes once a frame, its seconds with every field)
    change = np.maximum(change, np.maximum(np.concatenate([[0.0], change[:-1]]),
                                           np.concatenate([change[1:], [0.0]])))
    into = labels[1:]
    moved = labels[1:] != labels[:-1]
    per_label = np.array([change[moved & (into == lab)].mean() if (moved & (into == lab)).any()
                          else -np.inf for lab in range(10)])
    zero = int(np.argmax(per_label))
    if not np.isfinite(per_label[zero]):
        raise OsdNotFound("no tenths-digit roll-over seen")
    x_t = core[seq, tenths]
    templates = np.empty((10,) + x_t.shape[1:], np.float32)
    for lab in range(10):
        sel = labels == lab
        if not sel.any():
            raise OsdNotFound("not all ten digits were seen in the tenths digit")
        templates[(lab - zero) % 10] = x_t[sel].mean(axis=0)
    # coherence: each field's tenths image is nearest its own digit's mean
    flat = _normalise(x_t.reshape(len(seq), -1))
    tm = _normalise(templates.reshape(10, -1))
    sims = flat @ tm.T
    own_digit = (labels - zero) % 10
    own = sims[np.arange(len(seq)), own_digit]
    other = np.where(np.eye(10, dtype=bool)[own_digit], -np.inf, sims).max(axis=1)
    if np.median(own - other) < 0.02:
        raise OsdNotFound("the tenths-digit glyphs are not coherent")
    ink_level = float(np.clip(templates, 0, None).mean())
    digits, score = classify(cells, templates, margin, ink_level)
    refined = templates.copy()
    for d in range(10):
        sel = (digits == d) & (score > 0.8)
        if sel.sum() >= 2:
            refined[d] = _aligned_mean(cells[sel], templates[d], margin)
    digits, _ = classify(cells, refined, margin, ink_level)
    # one fraction: its roles follow from the tenths digit; otherwise from the layout
    roles = _roles_from_tenths(digits, centres, pitch, tenths, spec) \
        if "frac_digits" in spec else None
    cal = Calibration(bands=bands, pitch_px=pitch, centres=centres, margin=margin,
                      candidates=[(order, refined, ink_level)], last_cell=tenths,
                      max_shift=0, calibration_score=float(np.median(own)), roles=roles,
                      clock_period_ms=period_ms)
    return cal


def _label_by_clock(x: np.ndarray, seq_len: int):
    """(sse, labels, period_ms) of the tightest tenths labelling of cell images x (k, D)."""
    k = np.arange(seq_len)
    total = float((x * x).sum())
    best = None
    for period_ms in (20.0, 1001 / 60):
        for phase_ms in np.arange(0.0, 100.0, 2.0):
            labels = (np.floor((phase_ms + k * period_ms) / 100.0).astype(np.int64)) % 10
            onehot = np.eye(10, dtype=np.float32)[labels]                 # (k, 10)
            counts = onehot.sum(axis=0)
            if (counts == 0).any():
                continue
            sums = onehot.T @ x                                            # (10, D)
            sse = total - float(((sums * sums).sum(axis=1) / counts).sum())
            if best is None or sse < best[0]:
                best = (sse, labels, period_ms)
    return best


def _tenths_of_group(centres, pitch, group_from_right: int, cand) -> np.ndarray:
    """The candidates that are the first cell of the given ink group, counted from the
    right (groups are split where a whole cell is blank, e.g. between two fractions)."""
    gaps = np.flatnonzero(np.diff(centres) > 1.5 * pitch)
    firsts = np.concatenate([[0], gaps + 1])
    if group_from_right >= len(firsts):
        return np.array([], np.int64)
    first = firsts[len(firsts) - 1 - group_from_right]
    return np.asarray([c for c in cand if c == first], np.int64)


def _label_by_runs(x: np.ndarray):
    """(sse, labels, None) of the tenths labelling by digit changes, for cell images x (k, D).

    The tenths digit shows one value for 5-6 fields, then the next: each change of the
    cell image is one step up. A dropped frame (40 ms or less at PAL) or a repeated one
    only shortens or lengthens a run, so this labelling holds across them; a drop of a
    whole tenth or more skips a label, and the glyph groups then fall apart (a large
    sse, and the coherence check refuses). Changes are told from noise by their size:
    most steps are no change (their median is the noise), changes are the top ~18 %."""
    d = ((x[1:] - x[:-1]) ** 2).sum(axis=1)
    noise = float(np.median(d))
    change = float(np.percentile(d, 95))
    if change <= 4 * noise:
        return None                       # no clear digit changes above the noise
    labels = np.concatenate([[0], np.cumsum(d > np.sqrt(noise * change))]) % 10
    counts = np.bincount(labels, minlength=10)
    if (counts == 0).any():
        return None
    onehot = np.eye(10, dtype=np.float32)[labels]
    sums = onehot.T @ x
    sse = float((x * x).sum()) - float(((sums * sums).sum(axis=1) / counts).sum())
    return sse, labels, None


def _roles_from_tenths(digits, centres, pitch, tenths, spec) -> dict:
    """Cells of the fraction (from the tenths digit rightwards) and of SS, MM, HH."""
    from ._vti_decode import digit_groups
    groups = digit_groups(digits, centres, pitch)
    gi = next((i for i, g in enumerate(groups) if tenths in g), None)
    if gi is None:
        raise OsdNotFound("the tenths digit is not in a digit group")
    g = groups[gi]
    k = g.index(tenths)
    frac = g[k:k + spec["frac_digits"]]
    if len(frac) != spec["frac_digits"]:
        raise OsdNotFound(f"the fraction has {len(frac)} digits, expected {spec['frac_digits']}")
    roles = {"frac": frac}
    if k >= 2:                  # no separator cell between seconds and fraction
        roles["ss"] = g[k - 2:k]
        left = groups[:gi]
    else:
        if gi < 1 or len(groups[gi - 1]) < 2:
            raise OsdNotFound("no seconds digits left of the fraction")
        roles["ss"] = groups[gi - 1][-2:]
        left = groups[:gi - 1]
    for name, g_left in zip(("mm", "hh"), (left[-1:], left[-2:-1]), strict=False):
        if not g_left or len(g_left[0]) < 2:
            raise OsdNotFound(f"no {name} digits on the line")
        roles[name] = g_left[0][-2:]
    return roles
