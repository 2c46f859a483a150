"""VTI OCR from fields to checked times, and the entry points (strips, series, stamp)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from occcore.model import FrameFlag, FrameTimes, TimeStamps
from occcore.plugin import CorruptSource, InputError, NotApplicable

from . import _vti_ocr as ocr
from ._vti_check import CORRECTED, FLAGGED, READ, check_fields, field_order
from ._vti_decode import UNITS_PER_S, VTI_TYPES, assign_roles, parse_fields

# Camera delays (s) per (camera, integration mode) that can be cited from the design
# notes. video-and-time.md and formats.md name the sources (G. Dangl's measurements;
# T. George 2014 found those tables off by about a half for start-of-bin stamps) but
# quote no numbers, so the table is empty: an unknown camera gets no delay and the
# report says so. Give ``camera_delay_s`` to apply a measured delay.
CAMERA_DELAYS_S: dict[tuple[str, str], tuple[float, str]] = {}


def read_fields(fields: np.ndarray, frame_of: np.ndarray, parity: np.ndarray, *,
                vti: str = "auto", order: str = "auto", max_fix_chars: int = 2) -> dict:
    """OCR and check fields (m, h, w) of the OSD region; ``frame_of``/``parity`` per field.

    Raises :class:`~._vti_ocr.OsdNotFound` when no VTI display can be learned."""
    frame_of = np.asarray(frame_of)
    parity = np.asarray(parity)
    ink, _ = ocr.to_ink(fields)
    kinds = list(VTI_TYPES) if vti == "auto" else [vti]
    errors, best = [], None
    n_try = min(len(frame_of), 256)
    for kind in kinds:
        spec = VTI_TYPES[kind]
        w = ink.shape[2]
        try:
            cal = ocr.calibrate(ink, parity, frame_of,
                                (w * spec["pitch_range"][0], w * spec["pitch_range"][1]),
                                max_shift=spec["max_shift"])
        except ocr.OsdNotFound as exc:
            errors.append(f"{kind}: {exc}")
            continue
        band = ocr.band_stack(ink, parity, cal.bands)
        shifts = ocr.field_shifts(band, cal.max_shift) if cal.max_shift else None
        cells = ocr.extract_cells(band, cal.centres, cal.pitch_px, cal.margin, shifts)
        for cal_order, templates, ink_level in cal.candidates:
            # try each learned glyph set on the first fields; keep the one read best
            digits, _ = ocr.classify(cells[:n_try], templates, cal.margin, ink_level)
            try:
                roles = assign_roles(kind, digits, cal.centres, cal.pitch_px, cal.last_cell)
            except ocr.OsdNotFound as exc:
                errors.append(f"{kind} ({cal_order}): {exc}")
                continue
            parsed = parse_fields(kind, digits, roles)
            o = field_order(parsed, frame_of[:n_try], parity[:n_try], cal_order, order)
            checked = check_fields(kind, parsed, frame_of[:n_try], parity[:n_try], o, max_fix_chars)
            score = float((checked["status"] == READ).mean())
            if best is None or score > best[0]:
                best = (score, kind, cal, roles, cells, templates, ink_level, cal_order)
    if best is None or best[0] < 0.2:
        raise ocr.OsdNotFound("; ".join(errors) or "fewer than 20 % of the fields could be read "
                              "consistently")
    _, kind, cal, roles, cells, templates, ink_level, cal_order = best
    digits, _ = ocr.classify(cells, templates, cal.margin, ink_level)
    parsed = parse_fields(kind, digits, roles)
    chosen_order = field_order(parsed, frame_of, parity, cal_order, order)
    checked = check_fields(kind, parsed, frame_of, parity, chosen_order, max_fix_chars)
    layout = _layout_name(kind, roles, cal)
    return {"vti": kind, "layout": layout, "order": chosen_order, "parsed": parsed,
            "checked": checked, "calibration": cal, "roles": roles}


def _layout_name(kind, roles, cal) -> str:
    status = any(c < roles["hh"][0] for g in [range(len(cal.centres))] for c in g
                 if cal.centres[roles["hh"][0]] - cal.centres[c] > 1.5 * cal.pitch_px)
    return (f"{kind}: pitch {cal.pitch_px:.2f} px, {len(cal.centres)} cells, "
            f"{'status characters left of the time' if status else 'no status characters'}")


def time_text(t_units: float, resolution_units: int = 1) -> str:
    """Time of day as printed: 0.1 ms digits (IOTA-VTI) or ms digits (KIWI-OSD)."""
    t = int(round(t_units)) % (86_400 * UNITS_PER_S)
    sec, frac = divmod(t, UNITS_PER_S)
    hh, rem = divmod(sec, 3600)
    mm, ss = divmod(rem, 60)
    if resolution_units == 10:
        return f"{hh:02d}:{mm:02d}:{ss:02d}.{frac // 10:03d}"
    return f"{hh:02d}:{mm:02d}:{ss:02d}.{frac:04d}"


def field_records(result: dict, names: list[dict]) -> list[dict]:
    """One JSON-able record per field (in the input order)."""
    ch = result["checked"]
    out = [None] * len(names)
    dup_frames = set(ch["duplicated"])
    res = VTI_TYPES[result["vti"]]["resolution_units"]
    for k, i in enumerate(ch["seq"]):
        st = ch["status"][k]
        rec = dict(names[i])
        ok = st in (READ, CORRECTED)
        rec["time_utc"] = time_text(ch["t_units"][k], res) if ok else None
        rec["field_number"] = int(ch["counter"][k]) if ok else None
        rec["flagged"] = None if ok else (ch["reason"][k] or "unreadable")
        rec["corrected"] = st == CORRECTED
        if st == CORRECTED:
            rec["correction"] = ch["reason"][k]
        rec["duplicate_frame"] = result["frame_of"][i] in dup_frames
        out[i] = rec
    return out


# -- strips ---------------------------------------------------------------------------
_STRIP_RE = re.compile(r"^(?P<frame>.*?)[-_](?P<field>even|odd)$", re.IGNORECASE)


def load_strips(paths) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Path]]:
    """Greyscale field images from files or folders; formats sniffed by content."""
    from PIL import Image, UnidentifiedImageError

    files = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith(".")))
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    images, frames, parities, kept = [], [], [], []
    frame_ids: dict[str, int] = {}
    for f in files:
        try:
            with Image.open(f) as im:          # Pillow identifies the format by content
                a = np.asarray(im.convert("L"))
        except (UnidentifiedImageError, OSError) as exc:
            raise CorruptSource(f"{f}: not a readable image ({exc})") from exc
        m = _STRIP_RE.match(f.stem)
        key, par = (m.group("frame"), 0 if m.group("field").lower() == "even" else 1) if m \
            else (f.stem, 0)
        frames.append(frame_ids.setdefault(key, len(frame_ids)))
        parities.append(par)
        images.append(a)
        kept.append(f)
    if not images:
        raise InputError(f"no images in {', '.join(map(str, paths))}")
    shapes = {a.shape for a in images}
    if len(shapes) != 1:
        raise InputError(f"strip images differ in size: {sorted(shapes)}")
    return np.stack(images), np.asarray(frames), np.asarray(parities), kept


def ocr_strips(paths, *, vti: str = "auto", field_order: str = "auto") -> list[dict]:
    """OCR a folder (or list) of OSD strip images, one image per field.

    ``NNN-even``/``NNN-odd`` names pair the two fields of frame NNN. Returns one record
    per file: ``file``, ``time_utc`` (time of day; the VTI shows no date),
    ``field_number``, ``flagged`` (None or the reason), ``corrected``, and
    ``duplicate_frame``; the first record also carries ``summary``."""
    stack, frames, parity, files = load_strips(paths)
    try:
        result = read_fields(stack, frames, parity, vti=vti, order=field_order)
    except ocr.OsdNotFound as exc:
        raise NotApplicable(f"no VTI time display found in {len(files)} images: {exc}") from exc
    result["frame_of"] = frames
    names = [{"file": str(f)} for f in files]
    recs = field_records(result, names)
    recs[0]["summary"] = summary(result, frame_names=[f.stem.rsplit("-", 1)[0] for f in files],
                                 frames=frames)
    return recs


def summary(result: dict, frame_names=None, frames=None) -> dict:
    ch = result["checked"]
    st = ch["status"]

    def name(f):
        if frame_names is None:
            return int(f)
        i = int(np.flatnonzero(frames == f)[0])
        return frame_names[i]

    return {"vti": result["vti"], "layout": result["layout"], "field_order": result["order"],
            "standard": ch["standard"],
            "field_period_s": None if ch["period_units"] is None else ch["period_units"] / UNITS_PER_S,
            "fields": int(len(st)), "fields_read": int((st == READ).sum()),
            "fields_corrected": int((st == CORRECTED).sum()),
            "fields_flagged": int((st == FLAGGED).sum()),
            "duplicated_frames": [name(f) for f in ch["duplicated"]],
            "dropped_frames": [{"before_frame": name(f), "missing": k} for f, k in ch["dropped"]]}


# -- frame series ---------------------------------------------------------------------
def series_fields(series, osd_fraction: float = 0.2):
    """Fields of the OSD region of a series: (fields, frame_of, parity, split)."""
    rows = series.meta.get("osd_rows")
    parity_meta = series.frame_meta.get("field_parity")
    h = series.height
    if rows is not None:
        top, bottom = int(rows[0]), int(rows[1])
    else:
        top, bottom = h - max(8, int(round(osd_fraction * h))), h
    if not 0 <= top < bottom <= h:
        raise InputError(f"{series.source_name}: OSD rows {top}..{bottom} outside the "
                         f"{h}-row frame")
    parts = []
    for block_start in range(0, series.n_frames, 512):
        block = series.batch(block_start, min(series.n_frames, block_start + 512))
        parts.append(np.asarray(block[:, top:bottom]))
    region = np.concatenate(parts)
    n = len(region)
    if parity_meta is not None:      # already split fields: one field per frame
        parity = np.asarray(parity_meta, np.int64)
        # pair consecutive fields into frames: a new frame starts at each first parity
        frame_of = np.cumsum(np.concatenate([[1], (parity[1:] <= parity[:-1])])) - 1
        return region, frame_of, parity, True, top
    if (bottom - top) % 2:
        region = region[:, : (bottom - top) - 1]
    # row parity of the frame: even frame rows are field 0
    first = top % 2
    f0 = region[:, first::2] if first == 0 else region[:, 1::2]
    f1 = region[:, 1 - first::2] if first == 0 else region[:, 0::2]
    hh = min(f0.shape[1], f1.shape[1])
    fields = np.empty((2 * n,) + (hh, region.shape[2]), region.dtype)
    fields[0::2], fields[1::2] = f0[:, :hh], f1[:, :hh]
    frame_of = np.repeat(np.arange(n), 2)
    parity = np.tile([0, 1], n)
    return fields, frame_of, parity, False, top


def ocr_series(series, *, vti: str = "auto", field_order: str = "auto") -> list[dict]:
    """One record per field of a series: ``frame``, ``field`` (row parity), time, number."""
    fields, frame_of, parity, split, _ = series_fields(series)
    try:
        result = read_fields(fields, frame_of, parity, vti=vti, order=field_order)
    except ocr.OsdNotFound as exc:
        raise NotApplicable(f"{series.source_name}: no VTI time display found: {exc}") from exc
    result["frame_of"] = frame_of
    names = [{"frame": int(i) if split else int(frame_of[i]), "field": int(parity[i])}
             for i in range(len(fields))]
    recs = field_records(result, names)
    if recs:
        recs[0]["summary"] = summary(result)
    return recs


def stamp(series, *, options, context=None) -> TimeStamps:
    """Times of every frame of ``series`` from its burned-in VTI display."""
    fields, frame_of, parity, split, _ = series_fields(series)
    try:
        result = read_fields(fields, frame_of, parity, vti=options.vti, order=options.field_order,
                             max_fix_chars=options.max_fix_chars)
    except ocr.OsdNotFound as exc:
        raise NotApplicable(f"{series.source_name}: no VTI time display found: {exc}") from exc
    ch = result["checked"]
    if ch["period_units"] is None:
        raise NotApplicable(f"{series.source_name}: VTI display found but no field period "
                            f"could be established ({ch['reason'][0]})")
    period_s = ch["period_units"] / UNITS_PER_S
    n_frames = series.n_frames
    # end-of-field time (s of day, unwrapped) per field in input order
    end_s = np.full(len(fields), np.nan)
    ok_field = np.zeros(len(fields), bool)
    for k, i in enumerate(ch["seq"]):
        if ch["status"][k] in (READ, CORRECTED):
            end_s[i] = ch["t_units"][k] / UNITS_PER_S
            ok_field[i] = True
        if ch["status"][k] == CORRECTED:
            pass
    corrected_field = np.zeros(len(fields), bool)
    corrected_field[ch["seq"][ch["status"] == CORRECTED]] = True

    # per frame: earliest field start .. latest field end (AAV keeps first and last
    # field of an integration; interlaced video has two consecutive fields)
    flags = np.zeros(n_frames, np.uint32)
    start_s = np.full(n_frames, np.nan)
    stop_s = np.full(n_frames, np.nan)
    if split:
        idx_frame = np.arange(len(fields))     # each series frame is one field
    else:
        idx_frame = frame_of
    for fr in range(n_frames):
        ks = np.flatnonzero(idx_frame == fr)
        good = ks[ok_field[ks]]
        if len(good) == 0:
            flags[fr] |= FrameFlag.BAD_TIME
            continue
        ends = end_s[good]
        start_s[fr] = ends.min() - period_s
        stop_s[fr] = ends.max()
        if len(good) < len(ks):
            # the missing field is its partner's neighbour: one field period away
            stop_s[fr] = max(stop_s[fr], start_s[fr] + len(ks) * period_s)
            flags[fr] |= FrameFlag.TIME_CORRECTED
        if corrected_field[ks].any():
            flags[fr] |= FrameFlag.TIME_CORRECTED
    seq_frames = frame_of[ch["seq"]]
    for f in ch["duplicated"]:
        fr = int(f) if not split else int(np.flatnonzero(frame_of == f)[0])
        flags[fr] |= FrameFlag.DUPLICATE_TIME
    for f, _missing in ch["dropped"]:
        fr = int(f) if not split else int(np.flatnonzero(frame_of == f)[0])
        flags[fr] |= FrameFlag.DROPPED_BEFORE
    del seq_frames

    instant = options.instant
    position = {"start": 0.0, "mid": 0.5, "end": 1.0}[instant]
    t_s = start_s + position * (stop_s - start_s)
    bad = ~np.isfinite(t_s)
    if bad.all():
        raise NotApplicable(f"{series.source_name}: no frame time could be read")
    if bad.any():       # offsets must be finite: place flagged frames by index, flagged
        good_i = np.flatnonzero(~bad)
        t_s[bad] = np.interp(np.flatnonzero(bad), good_i, t_s[good_i])
        flags[bad] |= FrameFlag.BAD_TIME

    delay_s, delay_note = _camera_delay(options)
    t_s = t_s - delay_s

    from astropy import units as u
    from astropy.time import Time

    epoch_date = series.times.epoch.utc.strftime("%Y-%m-%d")
    midnight = Time(f"{epoch_date}T00:00:00", scale="utc")
    date_known = bool(series.meta.get("date_known", True))
    offsets = t_s - t_s[0]
    epoch = midnight + float(t_s[0]) * u.s
    spec = VTI_TYPES[result["vti"]]
    res_s = spec["resolution_units"] / UNITS_PER_S
    times = FrameTimes(epoch=epoch, offsets_s=offsets, instant=instant, source="ocr",
                       uncertainty_s=res_s,
                       note=f"{result['vti']} OCR; printed time = {spec['stamp']}; "
                            f"{delay_note}")
    report = summary(result)
    report.update({"date_known": date_known,
                   "date": epoch_date if date_known else None,
                   "date_source": "series epoch" if date_known else
                   "unknown: times placed on the series' epoch date",
                   "stamp_meaning": spec["stamp"], "instant": instant,
                   "camera_delay_s": delay_s, "camera_delay_source": delay_note,
                   "frames_bad_time": int(bad.sum()),
                   "frames_time_corrected": int(((flags & FrameFlag.TIME_CORRECTED) > 0).sum()),
                   "uncertainty_note": "printed resolution only; the camera/VTI offsets are "
                                       "not included"})
    if split:
        report["dropped_frames"] = [{"before_frame": int(np.flatnonzero(frame_of == f)[0]),
                                     "missing": k} for f, k in ch["dropped"]]
        report["duplicated_frames"] = [int(np.flatnonzero(frame_of == f)[0])
                                       for f in ch["duplicated"]]
    return TimeStamps(times=times, flags=flags, report=report)


def _camera_delay(options) -> tuple[float, str]:
    if options.camera_delay_s is not None:
        return float(options.camera_delay_s), \
            f"camera delay {options.camera_delay_s} s given by the user subtracted"
    if options.camera:
        key = (options.camera.lower(), options.integration_mode)
        if key in CAMERA_DELAYS_S:
            value, source = CAMERA_DELAYS_S[key]
            return value, f"camera delay {value} s from {source} subtracted"
        return 0.0, (f"camera {options.camera!r} not in the delay table (no cited values): "
                     "no camera delay applied")
    return 0.0, "no camera given: no camera delay applied"
