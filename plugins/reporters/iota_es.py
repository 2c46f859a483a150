"""``iota-es``: the IOTA-ES asteroidal occultation report form 2.03 (plain text).

The form's own lines (header, section names, code hints) are kept as the form has them;
occcore fills the ``#Field: value`` lines in the form's order and formats. ``Acc_D`` and
``Acc_R`` are the larger side of the fit's two-sided interval at ``accuracy_sigma``
(default 3 sigma, as GoPyOTE fills this form); the comments say which. D and R carry as
many decimals as the accuracy supports (at least one, at most three).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import attrs

from occcore.model import ReportInput
from occcore.plugin import NotApplicable, ReporterSpec, hookimpl, write_text
from occplugins.reporters import _common

FIELD = re.compile(r"^#([A-Za-z0-9_/\-]+):(.*)$")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")

DATUMS = {"wgs84": "", "": "", "nad1927": "N", "nad27": "N", "ed1950": "E", "ed50": "E",
          "tokyo": "T", "gb1936": "G", "osgb36": "G"}
TELESCOPES = {"": "", "refractor": "1", "newtonian": "2", "sct": "3",
              "schmidt-cassegrain": "3", "dobsonian": "4", "binoculars": "5", "other": "6",
              "none": "7", "evscope": "8"}
METHODS = {"": "", "video": "a", "analogue-video": "a", "digital-video": "a",
           "dslr-video": "b", "photometer": "c", "sequential-images": "d", "drift-scan": "e",
           "visual": "f", "other": "g"}
TIME_SOURCES = {"": "", "gps": "a", "ntp": "b", "telephone": "c", "radio": "d",
                "internal-clock": "e", "stopwatch": "f", "other": "g"}

# the form, line by line: a literal line, or ("field", name) filled in order
FORM = (
    "#IOTA-ES ASTEROIDAL OCCULTATION - REPORT FORM 2.03",
    "#Event",
    ("Occultation",), ("DATE",), ("PREDICTTIME",), ("STAR",), ("ASTEROID",), ("Nr",),
    "#OBSERVER",
    ("Observer1",), ("Observer2",), ("moreObs",), ("E-mail",), ("Address",),
    "#OBSERVING_STATION",
    ("NearestCity",), ("Countrycode",),
    "#Coordinates LAT +/-DD MM SS.S  LON +/-DDD MM SS.S",
    ("Latitude",), ("Longitude",), ("Altitude",),
    "#Datum _blank=WGS84 N=NAD1927 E=ED1950 T=Tokyo G=GB1936 *=unspecified, or other",
    ("Datum",),
    "#Teleskop _=unstated 1=Refractor 2=Newtonian 3=SCT 4=Dobsonian 5=Binoculars 6=Other "
    "7=None 8=eVscope ",
    ("Telescope",),
    "#Aperture in cm",
    ("Aperture",),
    "#FocalLength in cm",
    ("FocalLength",),
    "#ObservingMethod   _=unspecified a=Analogue & digital video b=Digital SLR-camera video "
    "c=Photometer d=Sequential images e=Drift scan f=Visual g=Other ",
    ("ObservingMethod",),
    "#Observation",
    ("StartObs",),
    "#D D=Main Star d=second Star G=satellite main star g=satellite 2nd star N=ring "
    "M=non detection +time hh:mm:ss.s",
    ("D",), ("Acc_D",),
    "#R R=Main Star r=second Star B=satellite main star b=satellite 2nd star N=ring "
    "M=non detection +time hh:mm:ss.s",
    ("R",), ("Acc_R",), ("EndObs",), ("Duration",), ("Exp_Time",),
    "#Timesource  _=unspecified a=GPS b=NTP c=Telephone (fixed or mobile) d=Radio time signal "
    "e=Internal clock of recorder f=Stopwatch g=Other",
    ("Timesource",), ("Camera",), ("Signal/Noise",),
    "#Weatherconditions",
    ("Wind",), ("Temperature",),
    "#Transparency 1=Clear 2=Fog 3=Thin cloud <2 [mag loss <2 mag.] 4=Thick cloud >2 "
    "[mag loss >2 mag. 5=Broken opaque cloud [that is, observed thru gaps in the cloud] "
    "6=Star faint 7=By averted vision",
    ("Transparency",),
    "#Stability _=unstated 1=Steady 2=Slight flickering 3=Strong flickering ",
    ("Stability",),
    ("Comments",),
)
# the form aligns these values with two spaces
PADDED = {"Latitude", "Altitude"}


@attrs.frozen
class IotaEsOptions:
    accuracy_sigma: int = attrs.field(default=3, validator=attrs.validators.in_((1, 2, 3)))
    event_code_d: str = attrs.field(default="D", validator=attrs.validators.in_(tuple("DdGgN")))
    event_code_r: str = attrs.field(default="R", validator=attrs.validators.in_(tuple("RrBbN")))


def number(value, min_decimals: int = 1) -> str:
    """A number as the form writes it: no trailing zeros beyond ``min_decimals``
    (the samples: ``Aperture: 36``, ``Altitude: 37.4``, ``Exp_Time: 1.0``)."""
    if value is None or value == "":
        return ""
    text = f"{float(value):.4f}".rstrip("0").rstrip(".")
    whole, _, frac = text.partition(".")
    frac = frac.ljust(min_decimals, "0")
    return f"{whole}.{frac}" if frac else whole


def code(table: dict, value, what: str) -> str:
    """A form code from a name ('sct') or the code itself ('3')."""
    if value is None:
        return ""
    text = str(value).strip()
    if text in table.values() and text:
        return text
    key = text.lower().replace("_", "-").replace(" ", "-")
    if key not in table:
        raise ValueError(f"observer profile: {what} {value!r} is not one of "
                         f"{', '.join(k for k in table if k)} (or the form's code)")
    return table[key]


def _date(t) -> str:
    y, m, d = (int(x) for x in t.utc.isot[:10].split("-"))
    return f"{d} {MONTHS[m - 1]} {y}"


def _predict(text) -> str:
    if not text:
        return ""
    from astropy.time import Time
    t = Time(str(text), scale="utc")
    y, m, d = (int(x) for x in t.isot[:10].split("-"))
    return f"{d:02d} {MONTHS[m - 1][:3]}; {y} {t.isot[11:19]} UT"


def _decimals(accuracy_s: float) -> int:
    if not math.isfinite(accuracy_s) or accuracy_s <= 0:
        return 3
    return min(3, max(1, math.ceil(-math.log10(accuracy_s))))


def fields(run: ReportInput, options: IotaEsOptions) -> tuple[dict[str, str], list[str]]:
    lc = _common.require_lightcurve(run)
    event, observer = run.section("event"), run.section("observer")
    site, equipment = run.section("site"), run.section("equipment")
    conditions = run.section("conditions")
    positive = _common.outcome(run) == "positive"
    starts = _common.start_offsets_s(lc)
    exposure = _common.exposure_s(lc)
    midnight, start_of_day = _common.seconds_of_day(lc, starts)
    t = run.timing
    values: dict[str, str] = {
        "Occultation": "POSITIVE" if positive else "NEGATIVE",
        "DATE": _date(lc.times.epoch),
        "PREDICTTIME": _predict(event.get("predicted_utc")),
        "STAR": str(event.get("star", "")),
        "ASTEROID": str(event.get("asteroid", "")),
        "Nr": str(event.get("asteroid_number", "")),
        "Observer1": str(observer.get("name", "")),
        "Observer2": str(observer.get("second_observer", "")),
        "moreObs": str(observer.get("more_observers", "")),
        "E-mail": str(observer.get("email", "")),
        "Address": str(observer.get("address", "")),
        "NearestCity": str(site.get("nearest_city", site.get("name", ""))),
        "Countrycode": str(site.get("country_code", "")),
        "Latitude": "", "Longitude": "",
        "Altitude": number(site.get("altitude_m"), 0),
        "Datum": code(DATUMS, site.get("datum", "WGS84"), "datum") if "datum" in site else "",
        "Telescope": code(TELESCOPES, equipment.get("telescope"), "telescope"),
        "Aperture": number(equipment.get("aperture_cm"), 0),
        "FocalLength": number(equipment.get("focal_length_cm"), 0),
        "ObservingMethod": code(METHODS, equipment.get("method"), "method"),
        "StartObs": _common.clock(start_of_day[0], 2),
        "EndObs": _common.clock(start_of_day[-1] + exposure, 2),
        "D": "M", "Acc_D": "", "R": "M", "Acc_R": "", "Duration": "",
        "Exp_Time": number(exposure),
        "Timesource": code(TIME_SOURCES, equipment.get("time_source"), "time source"),
        "Camera": str(equipment.get("camera", "")),
        "Signal/Noise": f"{t.snr:.1f}" if positive and t is not None and math.isfinite(t.snr)
        else "",
        "Wind": "" if conditions.get("wind") is None else str(conditions["wind"]),
        "Temperature": number(conditions.get("temperature_c"), 0),
        "Transparency": str(conditions.get("transparency", "")),
        "Stability": str(conditions.get("stability", "")),
    }
    if "latitude_deg" in site:
        sign, d, m, s = _common.sexagesimal(site["latitude_deg"])
        values["Latitude"] = f"{sign}{d:02d} {m:02d} {s:04.1f}"
    if "longitude_deg" in site:
        sign, d, m, s = _common.sexagesimal(site["longitude_deg"])
        values["Longitude"] = f"{sign}{d:03d} {m:02d} {s:04.1f}"
    comments = []
    if positive:
        open_edges, unknown_edges = [], []
        for name, key, event_code in (("immersion", "D", options.event_code_d),
                                      ("emersion", "R", options.event_code_r)):
            edge = _common.edge(run, name)
            if edge is None:
                continue
            accuracy = edge.largest_err_s(options.accuracy_sigma)
            decimals = _decimals(accuracy) if accuracy is not None else 2
            values[key] = event_code + _common.clock(edge.offset_s(midnight), decimals)
            if accuracy is None:
                unknown_edges.append(key)   # the fitter gave no interval: never a made-up one
            elif math.isinf(accuracy):
                open_edges.append(key)      # the form has no word for an open bound
            else:
                values[f"Acc_{key}"] = f"{accuracy:.{decimals}f}"
        if t is not None and t.duration_s is not None:
            accuracy = t.immersion.largest_err_s(1) if t.immersion is not None else None
            values["Duration"] = f"{t.duration_s:.{_decimals(accuracy or 1.0)}f}"
        if t is not None:
            fit_text = f" (chi2 {t.chi2:.1f}/{t.dof})" if math.isfinite(t.chi2) else ""
            comments.append(f"Acc_D/Acc_R are {options.accuracy_sigma}-sigma; D/R from a "
                            f"{t.model} model fit{fit_text}.")
        for key in unknown_edges:
            comments.append(f"Acc_{key} left blank: the timing fit gave no "
                            f"{options.accuracy_sigma}-sigma interval for this edge.")
        for key in open_edges:
            comments.append(f"Acc_{key} left blank: the {options.accuracy_sigma}-sigma interval "
                            "of this edge does not close within the data.")
    user = str(conditions.get("comments", "")).strip()
    comments = ([user] if user else []) + comments + [f"Produced by {run.produced_by()}."]
    return values, comments


def form_text(run: ReportInput, options: IotaEsOptions) -> str:
    values, comments = fields(run, options)
    lines = []
    for item in FORM:
        if isinstance(item, str):
            lines.append(item)
            continue
        name = item[0]
        if name == "Comments":
            lines.append(f"#Comments: {comments[0]}")
            lines.extend(f"  {c}" for c in comments[1:])
            continue
        value = values[name]
        pad = "  " if name in PADDED else " "
        lines.append(f"#{name}:{pad}{value}" if value else f"#{name}:")
    return "\n".join(lines) + "\n"


def read_form(path) -> tuple[list[str], dict[str, str], list[str]]:
    """(every line that is not a field, in order; field -> value; comment lines) of a form."""
    literal, values, comments = [], {}, []
    in_comments = False
    for line in Path(path).read_text(errors="replace").splitlines():
        m = FIELD.match(line)
        if m:
            values[m.group(1)] = m.group(2).strip()
            in_comments = m.group(1) == "Comments"
            if in_comments and values["Comments"]:
                comments.append(values["Comments"])
            literal.append(f"#{m.group(1)}:")
        elif in_comments and not line.startswith("#"):
            comments.append(line.strip())
        else:
            literal.append(line.rstrip())
    return literal, values, comments


def _write(run: ReportInput, destination, *, options, context):
    options = options or IotaEsOptions()
    if run.lightcurve is None:
        raise NotApplicable("the IOTA-ES form needs the run's light curve")
    try:
        text = form_text(run, options)
    except ValueError as exc:
        raise NotApplicable(str(exc)) from None
    suffix = "POS" if _common.outcome(run) == "positive" else "NEG"
    return [write_text(Path(destination) / f"{_common.file_stem(run)}_IOTA-ES_{suffix}.txt", text)]


@hookimpl
def occcore_reporters():
    yield ReporterSpec(name="iota-es", summary="IOTA-ES asteroidal occultation report form 2.03",
                       options=IotaEsOptions, write=_write)
