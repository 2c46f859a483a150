"""A stand-in for the NA/RASNZ Excel report form (the real one is not redistributable):
sheet DATA with the form's title in G1 and a few of its labels, so a filled copy can be
told apart from the template."""
from pathlib import Path


def write_na_template(path: Path) -> Path:
    import openpyxl
    path.parent.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "DATA"
    sheet["G1"] = "Asteroid Occultation Report Form"
    sheet["A5"] = "Event date"
    sheet["A32"] = "Disappearance"
    sheet["A36"] = "Reappearance"
    book.create_sheet("Corrections Calculations")
    book.save(path)
    return path
