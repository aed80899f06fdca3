"""Bytes to text: BOMs, strict UTF-8, then charset detection (charset-normalizer).

Shared by every source that reads text, so one rule decides what counts as undecodable.
"""

from __future__ import annotations

import codecs

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 first: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Share of C0 control characters (other than tab, newlines, form feed) above which decoded
# "text" is taken for binary data.
_MAX_CONTROL_SHARE = 0.05
_CONTROL = {c for c in range(32) if c not in (9, 10, 12, 13)} | {127}


class DecodeError(ValueError):
    """The bytes are not text we can read; ``reason`` is the reject reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def sniff_bom(data: bytes) -> tuple[str, int] | None:
    """The encoding a byte-order mark announces, and the mark's length."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, len(bom)
    return None


def decode_bytes(data: bytes, encoding: str = "auto") -> tuple[str, str]:
    """Decode ``data``; return the text and the encoding used.

    With ``encoding="auto"``: a BOM decides; else strict UTF-8; else charset-normalizer's
    best guess. Binary data (NUL bytes without a BOM, or many control characters) and bytes
    no encoding explains raise :class:`DecodeError`.
    """
    if encoding != "auto":
        try:
            text = data.decode(encoding)
        except LookupError:
            raise DecodeError("unknown encoding", encoding) from None
        except UnicodeDecodeError as exc:
            raise DecodeError(f"not valid {encoding}", str(exc)) from None
        return _check_text(text.removeprefix("\ufeff")), encoding
    bom = sniff_bom(data)
    if bom is not None:
        name, length = bom
        try:
            text = data[length:].decode(name.replace("-sig", ""))
        except UnicodeDecodeError as exc:
            raise DecodeError(f"not valid {name} after its byte-order mark", str(exc)) from None
        return _check_text(text), name
    if b"\x00" in data:
        raise DecodeError("binary file", "contains NUL bytes and no byte-order mark")
    try:
        return _check_text(data.decode("utf-8")), "utf-8"
    except (UnicodeDecodeError, DecodeError):
        # not UTF-8, or 7-bit text with escape sequences (ISO-2022): ask the detector
        pass
    return detect(data)


# Among candidates equally unchaotic and equally coherent (to two decimals), the web's common
# legacy encodings win: charset-normalizer alone picks cp775 for ISO-8859-1 French.
_PREFERRED = {"utf_8": 0, "cp1252": 1, "iso8859_1": 2, "iso8859_15": 3}
_CHAOS_TIE = 0.002


def detect(data: bytes) -> tuple[str, str]:
    """Decode ``data`` with the encoding charset-normalizer finds least chaotic."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise DecodeError("undecodable", "no encoding explains these bytes")
    least = min(m.chaos for m in matches)
    tied = [m for m in matches if m.chaos <= least + _CHAOS_TIE]
    best = min(tied, key=lambda m: (-round(m.coherence, 2), _rank(m)[0]))
    # encodings that decode these bytes identically are equivalent: name the common one
    return _check_text(str(best)), _rank(best)[1]


def _rank(match) -> tuple[int, str]:
    names = [match.encoding, *getattr(match, "could_be_from_charset", [])]
    return min((_PREFERRED.get(n, 99), n) for n in names)


def _check_text(text: str) -> str:
    if text:
        sample = text[:65536]
        controls = sum(1 for ch in sample if ord(ch) in _CONTROL)
        if controls / len(sample) > _MAX_CONTROL_SHARE:
            raise DecodeError(
                "binary file", f"{controls} control characters in the first {len(sample)}"
            )
    return text
