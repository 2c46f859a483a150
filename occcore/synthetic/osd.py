"""Synthetic VTI on-screen displays (OSD) in interlaced video frames, with the truth.

Unlimited labelled data for the VTI OCR: the digit bitmaps are this project's own
(a 5x7 design, scaled to the documented cell sizes of video-and-time.md §2.4), drawn
white with a black outline like the inserters, per field (each field of a frame shows
its own time), then interlaced, blurred and noised, at grabber widths 640/720/768 and
horizontal offsets, with dropped and duplicated frames. Seeded: same arguments, same
frames.

``render_osd_video(...)`` returns ``(frames, truth)``: frames ``(n, h, w)`` uint8 with
the OSD band in the bottom rows, and a dict with per output frame and field the printed
time (0.1 ms units of the day, end of field), the field counter, the field order, and
the output frame numbers of dropped (``dropped_before``) and duplicated frames.
"""
from __future__ import annotations

import numpy as np

# Our own 5x7 digit design (1 = ink); rows top to bottom.
_FONT_5X7 = {
    "0": ["01110", "10001", "10011", "10101", "11001", "10001", "01110"],
    "1": ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
    "2": ["01110", "10001", "00001", "00110", "01000", "10000", "11111"],
    "3": ["11110", "00001", "00001", "01110", "00001", "00001", "11110"],
    "4": ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
    "5": ["11111", "10000", "11110", "00001", "00001", "10001", "01110"],
    "6": ["00110", "01000", "10000", "11110", "10001", "10001", "01110"],
    "7": ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
    "8": ["01110", "10001", "10001", "01110", "10001", "10001", "01110"],
    "9": ["01110", "10001", "10001", "01111", "00001", "00010", "01100"],
    ":": ["00000", "01100", "01100", "00000", "01100", "01100", "00000"],
    "P": ["11110", "10001", "10001", "11110", "10000", "10000", "10000"],
    ".": ["00000", "00000", "00000", "00000", "00000", "01100", "01100"],
}

NTSC_FIELD_UNITS = 10_000 * 1001 / 60_000
PAL_FIELD_UNITS = 200.0

# Layouts at 720 px (cell index -> content), from the measured positions of §2.4.
# IOTA-VTI: one 24-px grid; HH at cells 3-4, MM 6-7, SS 9-10, F1 12-15, F2 17-20,
# counter right-aligned on cell 28 (Tangra's index map), grid origin 4 px (OccuRec).
# Kiwi: groups with their own origins (PyMovie's Kiwi PAL/NTSC boxes).
_KIWI_X = {"PAL": {"hh": 47, "mm": 118, "ss": 189, "msa": 283, "msb": 402, "counter": 520},
           "NTSC": {"hh": 59, "mm": 130, "ss": 200, "msa": 295, "msb": 414, "counter": 532}}


# VTIs that print no field counter, one cell per character (separators included), at
# 720 px, from PyMovie's box origins (video-and-time.md §2.4):
# BoxSprite 3: boxes at 180, 192 | 216, 228 | 252, 264 | 288 ... 324 (HH MM SS ffff),
#   11x15 px, so a 12 px pitch with ':' and '.' in the skipped cells. PyMovie lists an
#   11th box at 348; what it holds is not documented, so it is left empty here.
# GHS: boxes at 391 + {0, 20, 60, 80, 120, 140, 180, 200, 220} (HH MM SS fff), 21x17 px:
#   a 20 px pitch, ':' in the skipped cells; the fraction is in ms.
# Both glyph sizes are our choice inside the documented boxes (8x14 and 13x16 px).
CLOCK_LAYOUTS = {
    "boxsprite": {"x0_px": 180, "pitch_px": 12, "frac_digits": 4, "frac_sep": ".",
                  "glyph_w": 8, "glyph_h": 14, "band_top": 202},
    "ghs": {"x0_px": 391, "pitch_px": 20, "frac_digits": 3, "frac_sep": " ",
            "glyph_w": 13, "glyph_h": 16, "band_top": 193},
}


# GPS-BoxSprite: video-and-time.md §2.2/§2.5 say only that it prints a date, HH:MM:SS and
# two 0.1 ms values, that "for normal odd fields the end timestamp is the first" value,
# and that the OSD is nominally 15 px tall at 576 rows. What is drawn here is our
# reading of that, not a documented layout: one cell per character on a 12 px grid at
# 720 px (as BoxSprite 3), "DD.MM.YY HH:MM:SS ffff ffff"; the two values are the 0.1 ms
# fractions of the Vsyncs that bracket the field (its start and its end); each field
# writes its end into its own slot (the first field of a frame into the first slot,
# the second field into the second), so the end is the first value in first fields and
# the second in second fields; HH:MM:SS and the date are those of the field's end.
GPS_BOXSPRITE_LAYOUT = {"x0_px": 150, "pitch_px": 12, "glyph_w": 8, "glyph_h": 15,
                        "band_top": 202}


def _glyph(ch: str, width: int, height: int, slant_px: float = 0.0) -> np.ndarray:
    """The character scaled to ``width`` x ``height`` (float ink 0/1), optionally slanted."""
    bits = np.array([[c == "1" for c in row] for row in _FONT_5X7[ch]], float)
    ys = (np.arange(height) * 7 // height)
    xs = (np.arange(width) * 5 // width)
    g = bits[ys][:, xs]
    if slant_px:
        out = np.zeros((height, width + int(np.ceil(abs(slant_px)))))
        for r in range(height):
            s = int(round(slant_px * (1 - r / max(1, height - 1))))
            out[r, s:s + width] = g[r]
        g = out
    return g


def _outline(ink: np.ndarray) -> np.ndarray:
    """Ink dilated by one pixel, minus the ink: the black border of VTI characters."""
    d = ink.copy()
    d[1:] = np.maximum(d[1:], ink[:-1])
    d[:-1] = np.maximum(d[:-1], ink[1:])
    d[:, 1:] = np.maximum(d[:, 1:], ink[:, :-1])
    d[:, :-1] = np.maximum(d[:, :-1], ink[:, 1:])
    return np.clip(d - ink, 0, 1)


def _line_items(vti, t_units, counter, standard, trailing_right, mode, version,
                first_field=True, start_units=None, date=None):
    """(x at 720 px, text) items of one field's OSD line."""
    sec, frac = divmod(int(t_units) % (86_400 * 10_000), 10_000)
    hh, rem = divmod(sec, 3600)
    mm, ss = divmod(rem, 60)
    items = []
    if vti == "iota-vti":
        x0 = 4 + (6 if version == 2 else 0)
        pitch = 24

        def put(cell, text):
            for k, c in enumerate(text):
                if c != " ":
                    items.append((x0 + (cell + k) * pitch, c))
        if mode == "full-screen":
            put(0, "P9")
        put(3, f"{hh:02d}:{mm:02d}:{ss:02d}")
        put(12 if counter % 2 == 0 else 17, f"{frac:04d}")
        text = str(counter)
        put(29 - len(text), text)
        return items, 24
    if vti == "kiwi-osd":
        pos = _KIWI_X[standard]
        pitch = 24
        trailing_ms = frac // 10
        period_ms = 20 if standard == "PAL" else NTSC_FIELD_UNITS / 10
        lead_ms = int(np.floor((t_units - period_ms * 10) / 10)) % 1000
        a, b = (lead_ms, trailing_ms) if trailing_right else (trailing_ms, lead_ms)
        for name, text in (("hh", f"{hh:02d}"), ("mm", f"{mm:02d}"), ("ss", f"{ss:02d}"),
                           ("msa", f"{a:03d}"), ("msb", f"{b:03d}")):
            for k, c in enumerate(text):
                items.append((pos[name] + k * pitch, c))
        for prev, name in (("hh", "mm"), ("mm", "ss")):
            items.append(((pos[prev] + 2 * pitch + pos[name]) / 2 - 6, ":"))
        text = str(counter)
        for k, c in enumerate(text):
            items.append((pos["counter"] + (k - len(text) + 6) * pitch, c))
        return items, 24
    if vti == "gps-boxsprite":
        lay = GPS_BOXSPRITE_LAYOUT
        start_frac = int(start_units) % 10_000
        end_text, start_text = f"{frac:04d}", f"{start_frac:04d}"
        a, b = (end_text, start_text) if first_field else (start_text, end_text)
        day = date + np.timedelta64(int(t_units // (86_400 * 10_000)), "D")
        yy, mo, dd = str(day).split("-")
        text = f"{dd}.{mo}.{yy[2:]} {hh:02d}:{mm:02d}:{ss:02d} {a} {b}"
        for k, c in enumerate(text):
            if c != " ":
                items.append((lay["x0_px"] + k * lay["pitch_px"], c))
        return items, lay["pitch_px"]
    if vti in CLOCK_LAYOUTS:
        lay = CLOCK_LAYOUTS[vti]
        pitch = lay["pitch_px"]
        digits = lay["frac_digits"]
        frac_text = f"{frac // (10 ** (4 - digits)):0{digits}d}"
        text = f"{hh:02d}:{mm:02d}:{ss:02d}{lay['frac_sep']}{frac_text}"
        for k, c in enumerate(text):
            if c != " ":
                items.append((lay["x0_px"] + k * pitch, c))
        return items, pitch
    raise ValueError(f"unknown VTI {vti!r}")


def render_osd_video(vti: str = "iota-vti", *, n_frames: int = 64, standard: str = "PAL",
                     width: int = 720, x_offset_px: float = 0.0, noise_adu: float = 6.0,
                     blur_px: float = 0.6, start_time_s: float = 3 * 3600 + 25 * 60 + 41.3,
                     start_counter: int = 123_456, field_order: str = "first-parity-first",
                     drop_before: tuple[int, ...] = (), duplicate_after: tuple[int, ...] = (),
                     mode: str = "full-screen", version: int = 3, kiwi_trailing_right=None,
                     date: str = "2024-03-05", seed: int = 0) -> tuple[np.ndarray, dict]:
    """Interlaced frames with a VTI OSD and the truth of every field.

    ``drop_before``: source frame numbers the capture chain loses (the frame is not in
    the output); ``duplicate_after``: source frame numbers written twice. The truth
    gives the *output* frame numbers: ``dropped_before`` (the first output frame after
    a loss, with how many were lost) and ``duplicated`` (the repeated copies)."""
    rng = np.random.default_rng(seed)
    height = 576 if standard == "PAL" else 480
    period = PAL_FIELD_UNITS if standard == "PAL" else NTSC_FIELD_UNITS
    scale = width / 720.0
    field_rows = height // 2
    glyph_h = 14
    band_top = (270 if standard == "PAL" else 216) - (18 if mode == "tv-safe" else 0)
    if vti == "kiwi-osd":
        band_top = (252 if standard == "PAL" else 204)
    glyph_w = int(round((16 if vti == "iota-vti" else 14) * scale))
    if vti in CLOCK_LAYOUTS:
        lay = CLOCK_LAYOUTS[vti]
        glyph_w, glyph_h = int(round(lay["glyph_w"] * scale)), lay["glyph_h"]
        # the documented rows are for 480-line video; PAL fields are 48 rows taller
        band_top = lay["band_top"] + (48 if standard == "PAL" else 0)
    if vti == "gps-boxsprite":
        lay = GPS_BOXSPRITE_LAYOUT
        glyph_w, glyph_h = int(round(lay["glyph_w"] * scale)), lay["glyph_h"]
        band_top = lay["band_top"] + (48 if standard == "PAL" else 0)
    day0 = np.datetime64(date, "D")
    slant = 6.0 if (vti == "kiwi-osd" and standard == "NTSC") else 0.0
    if kiwi_trailing_right is None:
        kiwi_trailing_right = bool(rng.integers(2))
    cache = {}

    def glyph(c):
        if c not in cache:
            g = _glyph(c, glyph_w if c not in ":." else max(3, glyph_w // 2), glyph_h, slant)
            cache[c] = (g, _outline(g))
        return cache[c]

    t0_units = start_time_s * 10_000
    out_frames, truth_fields, src_of_out = [], [], []
    dropped_before, duplicated = [], []
    pending_drop = 0
    n_src = n_frames + len(drop_before) - len(duplicate_after)
    for src in range(max(n_src, 1)):
        if src in drop_before:
            pending_drop += 1
            continue
        if len(out_frames) >= n_frames:
            break
        fields = []
        for j in range(2):
            idx = 2 * src + j
            t_true = t0_units + idx * period
            fields.append({"t_units": int(np.floor(t_true + 1e-6)), "counter": start_counter + idx,
                           "start_units": int(np.floor(t_true - period + 1e-6)),
                           "first_field": j == 0})
        if pending_drop:
            dropped_before.append((len(out_frames), pending_drop))
            pending_drop = 0
        copies = 2 if src in duplicate_after else 1
        for c in range(copies):
            if len(out_frames) >= n_frames:
                break
            if c:
                duplicated.append(len(out_frames))
                out_frames.append(out_frames[-1])
            else:
                out_frames.append(fields)
            src_of_out.append(src)
            truth_fields.append(fields)

    n_out = len(out_frames)
    frames = np.empty((n_out, height, width), np.uint8)
    base_sky = 28.0 + 6.0 * np.linspace(0, 1, width)[None, :]
    for o in range(n_out):
        src = src_of_out[o]
        if o in duplicated:
            frames[o] = frames[o - 1]
            continue
        img = np.empty((height, width))
        for j, fld in enumerate(out_frames[o]):
            field = np.broadcast_to(base_sky, (field_rows, width)).copy()
            white = np.zeros((field_rows, width))
            black = np.zeros((field_rows, width))
            minute = (fld["t_units"] // 600_000)
            shift = 11 * scale if (vti == "kiwi-osd" and minute % 2) else 0.0
            items, _ = _line_items(vti, fld["t_units"], fld["counter"], standard,
                                   kiwi_trailing_right, mode, version, fld["first_field"],
                                   fld["start_units"], day0)
            for x720, ch in items:
                g, edge = glyph(ch)
                x = int(round(x720 * scale + x_offset_px + shift))
                if ch in ":.":
                    x += glyph_w // 4
                h, w = g.shape
                if x < 0 or x + w > width:
                    continue
                white[band_top:band_top + h, x:x + w] = np.maximum(
                    white[band_top:band_top + h, x:x + w], g)
                black[band_top:band_top + h, x:x + w] = np.maximum(
                    black[band_top:band_top + h, x:x + w], edge)
            field = field * (1 - black) + 4.0 * black
            field = field * (1 - white) + 230.0 * white
            if blur_px > 0:
                field = _blur_rows(field, blur_px)
            field += rng.normal(0.0, noise_adu, field.shape)
            parity = j if field_order == "first-parity-first" else 1 - j
            img[parity::2] = field
        frames[o] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    truth = {
        "vti": vti, "standard": standard, "width": width, "field_order": field_order,
        "period_units": period, "n_frames": n_out,
        # fields of each output frame in time order: (t_units end of field, counter)
        "fields": [[(f["t_units"], f["counter"]) for f in fr] for fr in truth_fields],
        "dropped_before": dropped_before, "duplicated": duplicated,
        "kiwi_trailing_right": kiwi_trailing_right, "date": date,
    }
    return frames, truth


def _blur_rows(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Horizontal Gaussian blur (analogue video bandwidth) along each row."""
    half = max(1, int(np.ceil(3 * sigma_px)))
    x = np.arange(-half, half + 1)
    k = np.exp(-0.5 * (x / sigma_px) ** 2)
    k /= k.sum()
    padded = np.pad(img, ((0, 0), (half, half)), mode="edge")
    out = np.zeros_like(img)
    for i, w in enumerate(k):
        out += w * padded[:, i:i + img.shape[1]]
    return out
