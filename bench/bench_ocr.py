"""VTI OCR speed and accuracy (run by hand: python bench/bench_ocr.py [--fields N]).

Speed: fields/s for 720x576 interlaced frames in memory, whole pipeline frames -> times
(calibration included, and the calibration alone), against a same-run baseline that
only cuts the OSD band out of every frame and splits it into fields.
Accuracy: >= 2,000 fields per VTI type over noise levels and grabber offsets/widths.
"""
import argparse
import time

import numpy as np
from astropy.time import Time

from occcore.model import FrameSeries
from occcore.synthetic.osd import render_osd_video
from occplugins.timesources import _vti_api as api
from occplugins.timesources import _vti_ocr as ocr
from occplugins.timesources._vti_decode import VTI_TYPES


def series(frames):
    return FrameSeries.from_arrays(frames, times=Time("2024-03-05T00:00:00"),
                                   offsets_s=np.arange(len(frames)) * 0.04, exposure_s=0.04,
                                   time_instant="start")


def speed(n_frames):
    frames, _ = render_osd_video(n_frames=n_frames, noise_adu=8, seed=1)
    s = series(frames)
    t = time.perf_counter()
    band = np.ascontiguousarray(frames[:, -116:])
    f = np.stack([band[:, 0::2], band[:, 1::2]], 1).reshape(-1, 58, band.shape[2])
    base = time.perf_counter() - t
    t = time.perf_counter()
    fields, fo, par, _, _ = api.series_fields(s)
    res = api.read_fields(fields, fo, par, vti="iota-vti")
    full = time.perf_counter() - t
    ink, _ = ocr.to_ink(fields)
    w = ink.shape[2]
    spec = VTI_TYPES["iota-vti"]
    t = time.perf_counter()
    ocr.calibrate(ink, par, fo, (w * spec["pitch_range"][0], w * spec["pitch_range"][1]))
    cal = time.perf_counter() - t
    n = 2 * n_frames
    print(f"{n} fields: baseline band cut {n / base:,.0f} fields/s; OCR {n / full:,.0f} fields/s "
          f"(ratio {base / full:.4f}); calibration alone {cal:.2f} s; OCR without it "
          f"{n / max(full - cal, 1e-9):,.0f} fields/s; read {int((res['checked']['status'] == 'read').sum())}")
    del f


def accuracy(vti, n_fields, seed0=100):
    total = right = wrong = flagged = 0
    events_found = events = 0
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
        frames, truth = render_osd_video(n_frames=150, **kw)
        recs = api.ocr_series(series(frames))
        res = 10 if vti == "kiwi-osd" else 1
        want = {n: api.time_text(t - t % res, res) for fr in truth["fields"] for t, n in fr}
        for r in recs:
            total += 1
            if r["flagged"]:
                flagged += 1
            elif want.get(r["field_number"]) == r["time_utc"]:
                right += 1
            else:
                wrong += 1
        s = recs[0]["summary"]
        events += len(truth["duplicated"]) + len(truth["dropped_before"])
        events_found += len(set(s["duplicated_frames"]) & set(truth["duplicated"])) + \
            len({(d["before_frame"], d["missing"]) for d in s["dropped_frames"]} &
                set(map(tuple, truth["dropped_before"])))
        seed += 1
    print(f"{vti}: {total} fields: right {right} ({100 * right / total:.2f} %), flagged "
          f"{flagged}, wrong {wrong}; drop/duplicate events found {events_found}/{events}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--fields", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=1000)
    a = ap.parse_args()
    speed(a.frames)
    for v in ("iota-vti", "kiwi-osd"):
        accuracy(v, a.fields)
