"""From read characters to checked field times: layouts, grammar, consistency, correction.

Times are integers in units of 0.1 ms (``UNITS_PER_S``) so that the printed digits are
compared exactly. Every field ends as ``read`` (as printed and consistent with its
neighbours), ``corrected`` (its reading broke the field-period/counter rule and the
expected value differs from what was read in at most ``max_fix_chars`` characters)
or ``flagged`` (with the reason; no time is given for it). Nothing is guessed.
"""
from __future__ import annotations

import numpy as np

from ._vti_ocr import BLANK, UNSURE, OsdNotFound

UNITS_PER_S = 10_000
DAY_UNITS = 86_400 * UNITS_PER_S
PAL_FIELD_UNITS = 200.0                   # 20.000 ms
NTSC_FIELD_UNITS = 10_000 * 1001 / 60_000  # 16.6833 ms

# VTI types: pitch range as a fraction of the line width (from the measured layouts of
# video-and-time.md §2.4: 24 px at 720, ~22 at 640), the groups read from the right
# (name, digits), and what the printed time means (§2.5).
VTI_TYPES = {
    "iota-vti": {
        "pitch_range": (1 / 33.5, 1 / 27.0),
        "groups": [("counter", None), ("f2", 4), ("f1", 4), ("ss", 2), ("mm", 2), ("hh", 2)],
        "resolution_units": 1,
        "stamp": "end of field (IOTA-VTI prints the 0.1 ms time of the field's end; "
                 "videotimers.com example, video-and-time.md §2.5)",
        "max_shift": 0,
    },
    "kiwi-osd": {
        "pitch_range": (1 / 33.5, 1 / 27.0),
        "groups": [("counter", None), ("msb", 3), ("msa", 3), ("ss", 2), ("mm", 2), ("hh", 2)],
        "resolution_units": 10,
        "stamp": "trailing Vsync of the field, rounded down to the ms (KIWI-OSD prints the ms "
                 "of the leading and trailing Vsync; Hitchcox, video-and-time.md §2.5)",
        "max_shift": 14,
    },
    # No field counter: the digits are learned from the tenths of a second (the clock
    # itself). Layouts from PyMovie's boxes (video-and-time.md §2.4): BoxSprite 3 prints
    # HH:MM:SS.ffff (0.1 ms) on a 12 px pitch at 720 px (11x15 px cells); GHS prints
    # HH:MM:SS fff (ms) on a 20 px pitch at 720 px (21x17 px cells).
    # GPS-BoxSprite: a date, HH:MM:SS and two 0.1 ms values (video-and-time.md §2.2,
    # §2.5: Tangra takes the first value as the end of normal odd fields). We read the
    # two values as the Vsyncs bracketing the field, one field period apart, and take
    # the later as the field's end (the first in odd fields); the date left of the
    # time is not read (the date comes from the series). Tried before BoxSprite 3,
    # whose one fraction group could otherwise be matched to the first of the two.
    "gps-boxsprite": {
        "pitch_range": (1 / 68.0, 1 / 52.0),
        "groups": [("f2", 4), ("f1", 4), ("ss", 2), ("mm", 2), ("hh", 2)],
        "tenths_group": 1,        # learn the digits from the first value's tenths digit
        "resolution_units": 1,
        "stamp": "end of field: the later of the two 0.1 ms values (the first in odd fields, "
                 "as Tangra reads GPS-BoxSprite, video-and-time.md §2.2); that the two values "
                 "are the field's leading and trailing Vsync is our reading, not documented",
        "max_shift": 0,
    },
    "boxsprite": {
        "pitch_range": (1 / 68.0, 1 / 52.0),
        "groups": [("frac", 4), ("ss", 2), ("mm", 2), ("hh", 2)],
        "frac_digits": 4,
        "resolution_units": 1,
        "stamp": "ASSUMED end of field: what BoxSprite 3's single 0.1 ms time marks is not "
                 "documented in video-and-time.md (GPS-BoxSprite: Tangra takes the first of "
                 "its two values as the end of odd fields)",
        "max_shift": 0,
    },
    "ghs": {
        "pitch_range": (1 / 40.0, 1 / 32.5),
        "groups": [("frac", 3), ("ss", 2), ("mm", 2), ("hh", 2)],
        "frac_digits": 3,
        "resolution_units": 10,
        "stamp": "ASSUMED end of field, rounded down to the ms: what the GHS time marks is "
                 "not documented in video-and-time.md",
        "max_shift": 0,
    },
}


def digit_groups(digits_cal: np.ndarray, centres: np.ndarray, pitch: float,
                 min_rate: float = 0.3) -> list[list[int]]:
    """Runs of adjacent cells that hold a digit in at least ``min_rate`` of the fields."""
    rate = (digits_cal >= 0).mean(axis=0)
    groups, cur = [], []
    for j in range(len(centres)):
        if rate[j] < min_rate:
            if cur:
                groups.append(cur)
            cur = []
            continue
        if cur and centres[j] - centres[cur[-1]] > 1.5 * pitch:
            groups.append(cur)
            cur = []
        cur.append(j)
    if cur:
        groups.append(cur)
    return groups


def assign_roles(vti: str, digits_cal, centres, pitch, last_cell: int) -> dict[str, list[int]]:
    """Cell indices of each printed number, matched from the right of the line."""
    groups = digit_groups(digits_cal, centres, pitch)
    spec = VTI_TYPES[vti]["groups"]
    roles = {}
    gi = len(groups) - 1
    for name, n_digits in spec:
        if gi < 0:
            raise OsdNotFound(f"the line does not have the {vti} layout (no {name} group)")
        g = groups[gi]
        if name == "counter":
            if g[-1] != last_cell:
                raise OsdNotFound("the rightmost digit group does not end at the counter cell")
            roles[name] = g
        else:
            if len(g) < n_digits:
                raise OsdNotFound(f"the line does not have the {vti} layout ({name}: "
                                  f"{len(g)} digits, expected {n_digits})")
            roles[name] = g[-n_digits:]
        gi -= 1
    return roles


def _chars(d: np.ndarray) -> np.ndarray:
    """Digit codes -> characters ('0'-'9', ' ' blank, '?' unsure)."""
    table = np.array(list("0123456789") + ["?", " "])
    return table[np.where(d >= 0, d, np.where(d == BLANK, 11, 10))]


class FieldText:
    """The characters of each printed number of each field, built only when asked for
    (the correction step needs them for the few fields that break the rules)."""

    def __init__(self, digits: np.ndarray, roles: dict):
        self.digits, self.roles = digits, roles

    def __getitem__(self, i) -> dict:
        ch = _chars(np.asarray(self.digits[int(i)], np.int64))
        return {name: "".join(ch[cells]) for name, cells in self.roles.items()}


def _number(d: np.ndarray, leading_blanks: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(valid, value) of digit-code rows (m, k): all digits, or blanks then digits."""
    is_digit = d >= 0
    if leading_blanks:
        ok = (d != UNSURE).all(axis=1) & is_digit[:, -1] & \
            (is_digit[:, 1:] >= is_digit[:, :-1]).all(axis=1)
    else:
        ok = is_digit.all(axis=1)
    powers = 10 ** np.arange(d.shape[1] - 1, -1, -1, dtype=np.int64)
    return ok, (np.clip(d, 0, 9).astype(np.int64) * powers).sum(axis=1)


def parse_fields(vti: str, digits: np.ndarray, roles: dict) -> dict:
    """Per-field values from the digit codes (m, n_cells), all fields at once."""
    digits = np.asarray(digits)
    m = len(digits)
    g = {name: digits[:, cells] for name, cells in roles.items()}
    if "counter" in roles:
        ok_n, counter = _number(g["counter"], leading_blanks=True)
    else:                        # no counter printed: the checks derive one from the time
        ok_n, counter = np.ones(m, bool), np.zeros(m, np.int64)
    ok_h, hh = _number(g["hh"])
    ok_m, mm = _number(g["mm"])
    ok_s, ss = _number(g["ss"])
    ok = ok_n & ok_h & ok_m & ok_s & (hh <= 23) & (mm <= 59) & (ss <= 59)
    base = ((hh * 60 + mm) * 60 + ss) * UNITS_PER_S
    if vti == "iota-vti":
        ok1, f1 = _number(g["f1"])
        ok2, f2 = _number(g["f2"])
        blank1 = (g["f1"] == BLANK).all(axis=1)
        blank2 = (g["f2"] == BLANK).all(axis=1)
        left, right = ok1 & blank2, ok2 & blank1
        ok &= left | right
        t = base + np.where(left, f1, f2)
    elif vti == "kiwi-osd":
        oka, a = _number(g["msa"])
        okb, b = _number(g["msb"])
        end_ms = kiwi_trailing_ms_array(a, b)
        ok &= oka & okb & (end_ms >= 0)
        t = base + end_ms * 10
    elif vti == "gps-boxsprite":
        oka, a = _number(g["f1"])
        okb, b = _number(g["f2"])
        end = gps_boxsprite_end_array(a, b)
        ok &= oka & okb & (end >= 0)
        t = base + end
    else:                        # one fraction group of `frac_digits` digits
        okf, f = _number(g["frac"])
        scale_units = VTI_TYPES[vti]["resolution_units"]
        ok &= okf
        t = base + f * scale_units
    t = np.where(ok, t, 0)
    return {"valid": ok, "t_units": t.astype(np.int64), "counter": np.where(ok_n, counter, 0),
            "text": FieldText(digits, roles)}


def kiwi_trailing_ms_array(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`kiwi_trailing_ms` for arrays (-1 where neither is one field later)."""
    ba, ab = (b - a) % 1000, (a - b) % 1000
    return np.where((ba >= 10) & (ba <= 25), b, np.where((ab >= 10) & (ab <= 25), a, -1))


def gps_boxsprite_end_array(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The later of GPS-BoxSprite's two 0.1 ms values (one PAL or NTSC field period,
    200 or 166.8 units, apart, modulo the second), or -1 when they are not."""
    ba, ab = (b - a) % UNITS_PER_S, (a - b) % UNITS_PER_S
    return np.where((ba >= 160) & (ba <= 205), b, np.where((ab >= 160) & (ab <= 205), a, -1))


def kiwi_trailing_ms(a: int, b: int) -> int | None:
    """The later of the two Vsync ms values (they are one field period apart)."""
    if 10 <= (b - a) % 1000 <= 25:
        return b
    if 10 <= (a - b) % 1000 <= 25:
        return a
    return None


def format_expected(vti: str, t_units: int, counter: int, read: dict) -> dict:
    """The characters a field showing ``t_units`` and ``counter`` would have."""
    t = int(t_units) % DAY_UNITS
    sec, frac = divmod(t, UNITS_PER_S)
    hh, rem = divmod(sec, 3600)
    mm, ss = divmod(rem, 60)
    exp = {"hh": f"{hh:02d}", "mm": f"{mm:02d}", "ss": f"{ss:02d}"}
    if "counter" in read:
        width = len(read["counter"])
        exp["counter"] = f"{counter:>{width}d}"[-width:]
    if "frac" in read:
        k = len(read["frac"])
        exp["frac"] = f"{frac // VTI_TYPES[vti]['resolution_units']:0{k}d}"
    elif vti == "gps-boxsprite":
        # only the later value is predicted; the earlier one is kept as read
        f1, f2 = read["f1"], read["f2"]
        first_later = f1.isdigit() and f2.isdigit() and \
            int(gps_boxsprite_end_array(np.array([int(f1)]), np.array([int(f2)]))[0]) == int(f1)
        exp["f1"], exp["f2"] = (f"{frac:04d}", f2) if first_later else (f1, f"{frac:04d}")
    elif vti == "iota-vti":
        left = read["f2"].strip() == "" or (read["f1"].count(" ") < read["f2"].count(" "))
        exp["f1"], exp["f2"] = (f"{frac:04d}", "    ") if left else ("    ", f"{frac:04d}")
    else:
        # only the trailing value is predicted; the leading one is kept as read
        ms = frac // 10
        a, b = read["msa"], read["msb"]
        if a.isdigit() and b.isdigit() and kiwi_trailing_ms(int(a), int(b)) == int(a):
            exp["msa"], exp["msb"] = f"{ms:03d}", b
        else:
            exp["msa"], exp["msb"] = a, f"{ms:03d}"
    return exp


def char_diff(a: dict, b: dict) -> int:
    return sum(x != y for k in b if not k.startswith("_") for x, y in zip(a[k], b[k], strict=False))
