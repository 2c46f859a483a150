"""A small, fast reader of FITS primary headers (cards only) for long frame series.

astropy's header parsing costs most of the time of opening a small FITS frame; a
series needs only a dozen keys from each file, so this module reads the 80-character
cards itself. It keeps every card (a header may hold two ``DATE-OBS`` cards after
IOTA's FitsReader inserted a GPS time) and repairs unquoted string values written by
old NINA releases.
"""
from __future__ import annotations

import math
import re

import attrs

from occcore.plugin import CorruptSource

BLOCK = 2880
CARD = 80
MAX_HEADER_BLOCKS = 200
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?$")


@attrs.frozen
class Card:
    key: str
    value: object
    comment: str
    repaired: bool = False


@attrs.frozen
class Header:
    """The cards of one header, its size in bytes, and first-occurrence lookups."""

    cards: tuple[Card, ...]
    size_bytes: int

    def get(self, key: str, default=None):
        for card in self.cards:
            if card.key == key:
                return card.value
        return default

    def all(self, key: str) -> list[Card]:
        return [c for c in self.cards if c.key == key]

    def __contains__(self, key: str) -> bool:
        return any(c.key == key for c in self.cards)

    # typed access: a wrong type or an absurd value is a CorruptSource naming the card
    def integer(self, key: str, name: str, *, lo: int | None = None, hi: int | None = None,
                default=None):
        value = self.get(key)
        if value is None and key not in self:
            if default is None:
                raise CorruptSource(f"{name}: header card {key} is missing (expected an integer)")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise CorruptSource(f"{name}: header card {key} = {value!r} is not an integer")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise CorruptSource(f"{name}: header card {key} = {value} is outside the sane "
                                f"range {lo}..{hi}")
        return value

    def number(self, key: str, name: str, *, default=None, lo: float | None = None,
               hi: float | None = None, nonzero: bool = False):
        """A finite int/float card; ``default`` when the card is absent or has no value."""
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CorruptSource(f"{name}: header card {key} = {value!r} is not a number")
        value = float(value)
        if not math.isfinite(value) or (nonzero and value == 0):
            raise CorruptSource(f"{name}: header card {key} = {value!r} is not a finite"
                                f"{' non-zero' if nonzero else ''} number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise CorruptSource(f"{name}: header card {key} = {value!r} is outside the sane "
                                f"range {lo:g}..{hi:g}")
        return value

    def text(self, key: str, name: str, default: str = "") -> str:
        """A string card (numbers are accepted as their text); never bool or complex."""
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            raise CorruptSource(f"{name}: header card {key} = {'T' if value else 'F'} is a "
                                "logical; expected a string")
        return str(value).strip()


def _parse_value(text: str) -> tuple[object, str, bool]:
    """Value, comment and whether an invalid (unquoted) string had to be repaired."""
    stripped = text.lstrip()
    if stripped.startswith("'"):
        out, i = [], 1
        while i < len(stripped):
            ch = stripped[i]
            if ch == "'":
                if stripped[i + 1:i + 2] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(ch)
            i += 1
        rest = stripped[i + 1:]
        comment = rest.split("/", 1)[1].strip() if "/" in rest else ""
        return "".join(out).rstrip(), comment, False
    # Dates written without quotes contain no '/', so splitting on '/' is safe for them.
    token, _, comment = stripped.partition("/")
    token = token.strip()
    comment = comment.strip()
    if token == "T":
        return True, comment, False
    if token == "F":
        return False, comment, False
    if token == "":
        return None, comment, False
    if _NUMBER.match(token):
        normal = token.replace("D", "E").replace("d", "e")
        try:
            return (int(normal) if re.fullmatch(r"[+-]?\d+", normal) else float(normal)), comment, False
        except ValueError:
            pass
    return token, comment, True


def read_header(fh, name: str) -> Header:
    """Read the primary header from an open binary file positioned at its start."""
    cards: list[Card] = []
    for block_index in range(MAX_HEADER_BLOCKS):
        block = fh.read(BLOCK)
        if len(block) < BLOCK:
            raise CorruptSource(f"{name}: FITS header ends after {block_index * BLOCK + len(block)} "
                                "bytes without an END card")
        if block_index == 0 and not block.startswith(b"SIMPLE  ="):
            raise CorruptSource(f"{name}: not a FITS file (no SIMPLE card at byte 0)")
        text = block.decode("ascii", errors="replace")
        for i in range(0, BLOCK, CARD):
            card = text[i:i + CARD]
            key = card[:8].strip()
            if key == "END":
                return Header(cards=tuple(cards), size_bytes=(block_index + 1) * BLOCK)
            if card[8:10] == "= ":
                value, comment, repaired = _parse_value(card[10:])
                cards.append(Card(key, value, comment, repaired))
            elif key:
                cards.append(Card(key, None, card[8:].strip()))
    raise CorruptSource(f"{name}: no END card in the first {MAX_HEADER_BLOCKS * BLOCK} bytes")
