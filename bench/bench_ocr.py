"""VTI OCR speed and accuracy (run by hand: python bench/bench_ocr.py [--fields N]).

Speed: fields/s for 720x576 interlaced frames in memory, whole pipeline frames -> times
(calibration included, and the calibration alone), against a same-run baseline that
only cuts the OSD band out of every frame and splits it into fields.
Accuracy: >= 2,000 fields per VTI type over noise levels, grabber offsets and widths, with
dropped and duplicated frames, as a table per type (right after correction, silently
wrong, drops/duplicates found, and the OCR's fields/s against the band-cut baseline of
the same videos, calibration included: 150-frame videos, so calibration weighs more
than in a long video).
"""
import argparse
import os
import time

# "on one core": a multi-threaded BLAS on a shared machine only adds spin-waiting
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from astropy.time import Time

from occcore.model import FrameSeries
from occcore.plugin import NotApplicable
from occcore.synthetic.osd import render_osd_video
from occplugins.timesources import _vti_api as api
from occplugins.timesources._vti_decode import VTI_TYPES


def series(frames):
    return FrameSeries.from_arrays(frames, times=Time("2024-03-05T00:00:00"),
                                   offsets_s=np.arange(len(frames)) * 0.04, exposure_s=0.04,
                                   time_instant="start")


def speed(n_frames, vti="iota-vti"):
    frames, _ = render_osd_video(vti, n_frames=n_frames, noise_adu=8, seed=1)
    s = series(frames)
    n = 2 * n_frames
    # baseline: cut the bottom 20 % of every frame out and split it into fields
    t = time.perf_counter()
    band = np.ascontiguousarray(frames[:, -116:])
    f = np.stack([band[:, 0::2], band[:, 1::2]], 1).reshape(-1, 58, band.shape[2])
    base = time.perf_counter() - t
    # whole pipeline, frames -> checked times, as the time source runs it ("auto")
    t = time.perf_counter()
    sample, blocks, fo, par, _ = api.series_fields(s)
    res = api.read_field_blocks(sample, blocks, fo, par, vti="auto")
    full = time.perf_counter() - t
    # calibration alone: what is learned on the sample
    t = time.perf_counter()
    sample, blocks, fo, par, _ = api.series_fields(s)
    api.read_field_blocks(sample, lambda lo, hi: iter([sample[:, lo:hi]]), fo[:len(sample)],
                          par[:len(sample)],
                          vti="auto")
    cal = time.perf_counter() - t
    print(f"{vti}: {n} fields 720x576: baseline band cut {n / base:,.0f} fields/s; OCR (auto) "
          f"{n / full:,.0f} fields/s (ratio to baseline {base / full:.3f}); calibration on "
          f"{len(sample)} fields {cal:.2f} s; OCR after calibration "
          f"{(n - len(sample)) / max(full - cal, 1e-9):,.0f} fields/s; "
          f"read {int((res['checked']['status'] == 'read').sum())}/{n} as {res['vti']}")
    del f


def decline(n_frames=2000):
    """How fast a video without OSD is declined (only the probe is read)."""
    rng = np.random.default_rng(0)
    frames = rng.normal(40, 5, (n_frames, 576, 720)).clip(0, 255).astype(np.uint8)
    t = time.perf_counter()
    try:
        api.stamp(series(frames), options=__import__("occplugins.timesources.vti",
                                                      fromlist=["x"]).VtiOcrOptions())
    except Exception as exc:       # NotApplicable expected
        kind = type(exc).__name__
    dt = time.perf_counter() - t
    print(f"no OSD, {n_frames} frames: declined ({kind}) in {dt:.3f} s")


COUNTERLESS = ("gps-boxsprite", "boxsprite", "ghs")   # no field counter: truth by position
TYPES = ("iota-vti", "kiwi-osd", "boxsprite", "gps-boxsprite", "ghs")


def band_cut(frames):
    """The baseline: cut the bottom 20 % of every frame out and split it into fields."""
    band = np.ascontiguousarray(frames[:, -2 * (frames.shape[1] // 10):])
    return np.stack([band[:, 0::2], band[:, 1::2]], 1)


def accuracy(vti, n_fields, seed0=100, n_frames=150):
    """Videos of ``n_frames`` frames, each with two dropped frames and one duplicated one
    at random places (inside the calibration sample or after it), random standard,
    grabber width (640/720/768), horizontal offset (+-6 px), noise (2-24 ADU), field
    order and time of day, until ``n_fields`` fields were read ("auto": the VTI type
    is found, not given). Returns one row of the table."""
    total = right = corrected = wrong = flagged = declined = 0
    events_found = events = 0
    t_ocr = t_base = 0.0
    seed = seed0
    while total < n_fields:
        rng = np.random.default_rng(seed)
        std = rng.choice(["PAL", "NTSC"])
        kw = dict(vti=vti, standard=std, width=int(rng.choice([640, 720, 768])),
                  noise_adu=float(rng.uniform(2, 24)), x_offset_px=float(rng.uniform(-6, 6)),
                  field_order=str(rng.choice(["first-parity-first", "second-parity-first"])),
                  drop_before=tuple(int(x) for x in rng.choice(np.arange(20, 90), 2, replace=False)),
                  duplicate_after=(int(rng.integers(95, 140)),), seed=seed,
                  start_time_s=float(rng.uniform(0, 86000)))
        if vti == "iota-vti":
            kw["mode"] = str(rng.choice(["full-screen", "tv-safe"]))
        frames, truth = render_osd_video(n_frames=n_frames, **kw)
        t = time.perf_counter()
        band_cut(frames)
        t_base += time.perf_counter() - t
        t = time.perf_counter()
        try:
            recs = api.ocr_series(series(frames))
        except NotApplicable:                  # declined: every field counts as flagged
            t_ocr += time.perf_counter() - t
            total += 2 * len(frames)
            flagged += 2 * len(frames)
            declined += 1
            events += len(truth["duplicated"]) + len(truth["dropped_before"])
            seed += 1
            continue
        t_ocr += time.perf_counter() - t
        res = VTI_TYPES[vti]["resolution_units"]
        for r in recs:
            # truth by position (frame, field in time order): some VTIs print no counter
            j = r["field"] if truth["field_order"] == "first-parity-first" else 1 - r["field"]
            t_units, n = truth["fields"][r["frame"]][j]
            total += 1
            if r["flagged"]:
                flagged += 1
            elif r["time_utc"] == api.time_text(t_units - t_units % res, res) and (
                    vti in COUNTERLESS or r["field_number"] == n):
                right += 1
                corrected += bool(r["corrected"])
            else:
                wrong += 1
        s = recs[0]["summary"]
        events += len(truth["duplicated"]) + len(truth["dropped_before"])
        events_found += len(set(s["duplicated_frames"]) & set(truth["duplicated"])) + \
            len({(d["before_frame"], d["missing"]) for d in s["dropped_frames"]} &
                set(map(tuple, truth["dropped_before"])))
        seed += 1
    return {"vti": vti, "videos": seed - seed0, "fields": total, "right": right,
            "corrected": corrected, "flagged": flagged, "declined": declined, "wrong": wrong,
            "events": events, "events_found": events_found,
            "fields_per_s": total / t_ocr, "baseline_fields_per_s": total / t_base}


def print_table(rows):
    print("| VTI | videos | fields | right after correction | of them corrected | flagged "
          "(videos declined) | silently wrong | drops/duplicates found | OCR fields/s | "
          "baseline band cut fields/s | OCR/baseline speed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['vti']} | {r['videos']} | {r['fields']} | {r['right']} "
              f"({100 * r['right'] / r['fields']:.2f} %) | {r['corrected']} | {r['flagged']} "
              f"({r['declined']}) | {r['wrong']} | {r['events_found']}/{r['events']} | "
              f"{r['fields_per_s']:,.0f} | {r['baseline_fields_per_s']:,.0f} | "
              f"{r['fields_per_s'] / r['baseline_fields_per_s']:.4f} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--fields", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--vti", action="append", choices=TYPES, help="only these types")
    a = ap.parse_args()
    speed(a.frames)
    speed(a.frames // 2, "boxsprite")
    decline()
    if a.speed_only:
        raise SystemExit
    print_table([accuracy(v, a.fields) for v in (a.vti or TYPES)])
