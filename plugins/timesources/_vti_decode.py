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
                raise OsdNotFound(f"the rightmost digit group does not end at the counter cell")
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


def parse_fields(vti: str, digits: np.ndarray, roles: dict) -> dict:
    """Per-field values from the digit codes (m, n_cells); invalid fields are marked."""
    m = len(digits)
    out = {"valid": np.zeros(m, bool), "t_units": np.zeros(m, np.int64),
           "counter": np.zeros(m, np.int64), "text": np.empty(m, object)}
    ch = _chars(digits)
    text = {name: ["".join(r) for r in ch[:, cells]] for name, cells in roles.items()}
    for i in range(m):
        out["text"][i] = {k: v[i] for k, v in text.items()}
        ok, t, n = _parse_one(vti, out["text"][i])
        out["valid"][i], out["t_units"][i], out["counter"][i] = ok, t, n
    return out


def _parse_one(vti, tx) -> tuple[bool, int, int]:
    c = tx["counter"].lstrip(" ")
    if not c.isdigit():
        return False, 0, 0
    n = int(c)
    hms = tx["hh"] + tx["mm"] + tx["ss"]
    if not hms.isdigit():
        return False, 0, n
    hh, mm, ss = int(tx["hh"]), int(tx["mm"]), int(tx["ss"])
    if hh > 23 or mm > 59 or ss > 59:
        return False, 0, n
    base = ((hh * 60 + mm) * 60 + ss) * UNITS_PER_S
    if vti == "iota-vti":
        f1, f2 = tx["f1"], tx["f2"]
        if f1.isdigit() and f2 == "    ":
            return True, base + int(f1), n
        if f2.isdigit() and f1 == "    ":
            return True, base + int(f2), n
        return False, 0, n
    if vti == "kiwi-osd":
        a, b = tx["msa"], tx["msb"]
        if not (a.isdigit() and b.isdigit()):
            return False, 0, n
        end_ms = kiwi_trailing_ms(int(a), int(b))
        if end_ms is None:
            return False, 0, n
        return True, base + end_ms * 10, n
    raise ValueError(vti)


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
    width = len(read["counter"])
    exp = {"hh": f"{hh:02d}", "mm": f"{mm:02d}", "ss": f"{ss:02d}",
           "counter": f"{counter:>{width}d}"[-width:]}
    if vti == "iota-vti":
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
    return sum(x != y for k in b if not k.startswith("_") for x, y in zip(a[k], b[k]))
