"""``na-excel``: fill the user's own copy of the North American / RASNZ Excel asteroid
occultation report form (sheet ``DATA``, ``G1`` = "Asteroid Occultation Report Form").

The form is not shipped: give its path as ``[report.options.na-excel] template``. It is
read, filled at the cells the form documents (the map PyOTE and the form fillers use) and
saved under a new name; the template itself is never written. Needs openpyxl
(``pip install 'occcore[excel]'``). openpyxl keeps values, formulas, styles and data
validations, but not pictures or charts in the form.
"""
from __future__ import annotations

import math
from pathlib import Path

import attrs

from occcore.model import ReportInput
from occcore.plugin import InputError, NotApplicable, ReporterSpec, atomic_path, hookimpl
from occplugins.reporters import _common

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
TITLE = "Asteroid Occultation Report Form"
SIGMA_COLUMNS = (("1", "L"), ("2", "M"), ("3", "N"))   # 68, 95, 99.7 %


@attrs.frozen
class NaExcelOptions:
    template: str = ""


def _hms(seconds: float, decimals: int = 3) -> tuple[int, int, float]:
    h, m, s = _common.clock(seconds, decimals).split(":")
    return int(h), int(m), float(s)


def cells(run: ReportInput) -> dict[str, object]:
    """Cell -> value for this run."""
    lc = _common.require_lightcurve(run)
    event, observer = run.section("event"), run.section("observer")
    site, equipment = run.section("site"), run.section("equipment")
    positive = _common.outcome(run) == "positive"
    exposure = _common.exposure_s(lc)
    midnight, seconds = _common.seconds_of_day(lc, _common.start_offsets_s(lc))
    y, mo, d = (int(x) for x in midnight.utc.isot[:10].split("-"))
    out: dict[str, object] = {"D5": y, "K5": MONTHS[mo - 1], "P5": d}
    if event.get("predicted_utc"):
        from astropy.time import Time
        hh, mm, ss = Time(str(event["predicted_utc"]), scale="utc").isot[11:19].split(":")
        out.update({"Y5": int(hh), "AA5": int(mm), "AC5": int(ss)})
    star = str(event.get("star", "")).split(None, 1)
    out.update({"E7": event.get("asteroid_number"), "K7": event.get("asteroid"),
                "S7": star[0] if star else None, "X7": star[1] if len(star) > 1 else None,
                "D9": observer.get("name"), "S9": observer.get("email"),
                "D11": observer.get("address"), "D12": observer.get("phone"),
                "D13": site.get("nearest_city"), "D14": site.get("state"),
                "S14": site.get("country"), "E15": site.get("name")})
    if "latitude_deg" in site and "longitude_deg" in site:
        lat, lon = site["latitude_deg"], site["longitude_deg"]
        out.update({"E17": "deg.ddddd", "N17": "deg.ddddd",
                    "E18": round(abs(lat), 6), "J18": "N" if lat >= 0 else "S",
                    "N18": round(abs(lon), 6), "R18": "E" if lon >= 0 else "W"})
    if site.get("altitude_m") is not None:
        out.update({"V18": site["altitude_m"], "W18": "m"})
    out["AA18"] = site.get("datum", "WGS84")
    aperture, focal = equipment.get("aperture_cm"), equipment.get("focal_length_cm")
    out.update({"E20": aperture, "H20": "cm" if aperture else None,
                "L20": round(focal / aperture, 2) if aperture and focal else None,
                "T20": equipment.get("telescope"), "E22": equipment.get("time_source"),
                "E23": equipment.get("timing_device"), "O23": "occcore",
                "E25": equipment.get("camera"), "L25": equipment.get("video_format"),
                "P25": exposure})
    for row, value in (("31", seconds[0]), ("37", seconds[-1] + exposure)):
        out.update(zip((f"F{row}", f"H{row}", f"J{row}"), _hms(value), strict=True))
    if positive:
        for name, row, err_row in (("immersion", "32", "33"), ("emersion", "36", "35")):
            edge = _common.edge(run, name)
            if edge is None:
                continue
            out.update(zip((f"F{row}", f"H{row}", f"J{row}"), _hms(edge.offset_s(midnight), 4),
                           strict=True))
            for level, column in SIGMA_COLUMNS:
                accuracy = edge.largest_err_s(int(level))
                if accuracy is not None and math.isfinite(accuracy):   # open: left blank
                    out[f"{column}{err_row}"] = round(accuracy, 4)
        snr = run.timing.snr if run.timing is not None else float("nan")
        out["W40"] = round(snr, 1) if math.isfinite(snr) else None
    comments = str(run.section("conditions").get("comments", "")).strip()
    out["D43"] = (comments + " " if comments else "") + ("" if positive else "Miss (no event). ")
    out["D44"] = f"Produced by {run.produced_by()}"[:250]
    return {k: v for k, v in out.items() if v not in (None, "")}


def _write(run: ReportInput, destination, *, options, context):
    import openpyxl

    options = options or NaExcelOptions()
    if not options.template:
        raise NotApplicable("no form: set [report.options.na-excel] template to your copy of "
                            "the NA/RASNZ Excel report form")
    template = Path(options.template).expanduser()
    if not template.is_file():
        raise InputError(f"{template}: no such Excel form ([report.options.na-excel] template)")
    try:
        book = openpyxl.load_workbook(template, keep_vba=template.suffix.lower() == ".xlsm")
    except Exception as exc:
        raise InputError(f"{template}: not a readable Excel workbook: {exc}") from None
    if "DATA" not in book.sheetnames or TITLE.lower() not in str(book["DATA"]["G1"].value).lower():
        raise InputError(f"{template}: not the asteroid occultation report form (no sheet DATA "
                         f"with {TITLE!r} in G1)")
    sheet = book["DATA"]
    for cell, value in cells(run).items():
        sheet[cell] = value
    suffix = "POS" if _common.outcome(run) == "positive" else "NEG"
    path = Path(destination) / f"{_common.file_stem(run)}_{suffix}{template.suffix}"
    if path.resolve() == template.resolve():
        raise InputError(f"{path}: would overwrite the template; choose another output directory")
    with atomic_path(path) as tmp:
        book.save(tmp)
    return [path]


@hookimpl
def occcore_reporters():
    yield ReporterSpec(name="na-excel", summary="fill your copy of the NA/RASNZ Excel report "
                       "form (openpyxl)", options=NaExcelOptions, write=_write,
                       requires=("openpyxl",))
