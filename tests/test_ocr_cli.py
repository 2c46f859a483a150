"""``occcore ocr`` on the real IOTA-VTI field strips (../shared/fixtures/avi): one record per
field with the time and field number PROVENANCE.md gives, and case 008's duplicated frame
and reversed field order in the summary."""
import json

from occcore.cli import main


def test_ocr_prints_one_record_per_field(shared_fixtures, capsys):
    folder = shared_fixtures / "avi" / "vti_osd_field_strips" / "001_tvsafe"
    assert main(["--no-plugins", "ocr", str(folder), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 22
    first = next(r for r in records if r["file"].endswith("0000000-even.bmp"))
    last = next(r for r in records if r["file"].endswith("0000010-odd.bmp"))
    # PROVENANCE.md: 0000000-even 11:20:40.5354 169433 ... 0000010-odd 11:20:40.9554 169454
    assert (first["time_utc"], first["field_number"]) == ("11:20:40.5354", 169433)
    assert (last["time_utc"], last["field_number"]) == ("11:20:40.9554", 169454)
    assert not any(r["flagged"] for r in records)


def test_ocr_reports_a_duplicated_frame_and_the_field_order(shared_fixtures, capsys):
    folder = shared_fixtures / "avi" / "vti_osd_field_strips" / "008"
    assert main(["--no-plugins", "ocr", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "duplicated_frames=['0000001']" in out
    assert "field_order=second-parity-first" in out
