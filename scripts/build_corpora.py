#!/usr/bin/env python3
"""Build the two text corpora shipped in ``separ_eval/corpora/``.

Outputs (gzip'd JSON Lines, one ``{"text": ..., "source": ...}`` object a line):

* ``code.jsonl.gz``  -- real Python source: a deterministic subset of the
  standard library (``Lib/``) of the CPython interpreter running this script
  (the shipped file was built with CPython 3.11.7).  Tests, generated files
  (codec tables, ``_sysconfigdata``), files over 200 KB and files that are
  not valid UTF-8 are left out.  Files longer than ``--max-doc-chars``
  characters are cut at top-level ``def``/``class`` boundaries (or, failing
  that, at line boundaries) into several documents whose ``source`` carries a
  ``#partN`` suffix; the parts of a file concatenate back to the file.
* ``prose.jsonl.gz`` -- public-domain English prose from two Debian packages:
  Jane Austen's six novels (``r-cran-janeaustenr``, an R lazy-load database,
  decoded here by a small R XDR unserializer), one document per chapter, and
  chapters of a fixed list of books of the World English Bible
  (``sword-text-web``, a SWORD zText module, OSIS markup stripped), one
  document per chapter.

Everything uses the Python standard library only and the output is
byte-for-byte deterministic for the same inputs and Python/zlib version
(gzip header mtime is 0, documents are in a fixed order).

How to rebuild (from the repository root)::

    mkdir -p /tmp/debs && cd /tmp/debs
    apt-get update && apt-get download r-cran-janeaustenr sword-text-web
    # optional: the script reads the .deb files directly, or extracted trees:
    #   dpkg -x r-cran-janeaustenr_*.deb x && dpkg -x sword-text-web_*.deb x
    cd -
    python3.11 scripts/build_corpora.py \\
        --janeaustenr /tmp/debs/r-cran-janeaustenr_1.0.0-1_all.deb \\
        --sword /tmp/debs/sword-text-web_426.0-1_all.deb

``--janeaustenr`` / ``--sword`` accept either the ``.deb`` file or a
directory into which it was extracted (the directory that contains ``usr/``;
both may be the same directory).  ``--stdlib`` defaults to the running
interpreter's ``Lib`` directory; use CPython 3.11.7 to reproduce the shipped
file exactly.  ``--out`` defaults to ``separ_eval/corpora`` next to this
script.  The script prints document/character counts and the sha256 of each
output, which ``separ_eval/corpora/README.md`` records.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import io
import json
import lzma
import os
import re
import struct
import sys
import sysconfig
import tarfile
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "separ_eval" / "corpora"

# --------------------------------------------------------------------------
# Reading .deb packages or extracted trees
# --------------------------------------------------------------------------


class PackageFiles:
    """Read files of a Debian package, given the .deb or an extracted tree."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._members: dict[str, bytes] | None = None
        if self.path.is_file():
            self._members = self._read_deb(self.path.read_bytes())
        elif not self.path.is_dir():
            raise FileNotFoundError(f"no such .deb or directory: {self.path}")

    @staticmethod
    def _read_deb(data: bytes) -> dict[str, bytes]:
        if not data.startswith(b"!<arch>\n"):
            raise ValueError("not a Debian package (ar archive)")
        pos = 8
        payload = None
        name = ""
        while pos + 60 <= len(data):
            header = data[pos : pos + 60]
            name = header[:16].decode("ascii").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip())
            body = data[pos + 60 : pos + 60 + size]
            pos += 60 + size + (size & 1)
            if name.startswith("data.tar"):
                payload = body
                break
        if payload is None:
            raise ValueError("no data.tar.* member in .deb")
        if name.endswith(".zst"):
            raise ValueError(
                "data.tar.zst needs zstd: extract with `dpkg -x` and pass the directory"
            )
        if name.endswith(".xz"):
            payload = lzma.decompress(payload)
        elif name.endswith(".gz"):
            payload = gzip.decompress(payload)
        members = {}
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:") as tar:
            for m in tar.getmembers():
                if m.isfile():
                    members[m.name.lstrip("./")] = tar.extractfile(m).read()
        return members

    def read(self, relpath: str) -> bytes:
        if self._members is not None:
            try:
                return self._members[relpath]
            except KeyError:
                raise FileNotFoundError(f"{relpath} not in {self.path}") from None
        return (self.path / relpath).read_bytes()


# --------------------------------------------------------------------------
# Minimal R serialization (XDR) reader
# --------------------------------------------------------------------------

NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
CHARSXP, LGLSXP, INTSXP, REALSXP, CPLXSXP, STRSXP = 9, 10, 13, 14, 15, 16
DOTSXP, VECSXP, EXPRSXP, RAWSXP = 17, 19, 20, 24
REFSXP, NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP = 255, 254, 253, 252
MISSINGARG_SXP, BASENAMESPACE_SXP, EMPTYENV_SXP, BASEENV_SXP = 251, 250, 242, 241
ALTREP_SXP = 238
NA_INTEGER = -(2**31)


class RSymbol(str):
    """An R symbol (name)."""


class RVector(list):
    """An R vector or list with its attributes (``attrs``: name -> value)."""

    def __init__(self, items=(), rtype=VECSXP, attrs=None):
        super().__init__(items)
        self.rtype = rtype
        self.attrs = attrs or {}

    def names(self):
        return self.attrs.get("names")

    def as_dict(self):
        return dict(zip(self.names(), self))


class RUnserializer:
    """Enough of R's ``unserialize()`` for data sets: vectors, lists,
    pairlists, symbols and references (XDR format, versions 2 and 3)."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0
        self.refs: list = []

    def _int(self) -> int:
        (v,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return v

    def _ints(self, n: int):
        v = struct.unpack_from(f">{n}i", self.data, self.pos)
        self.pos += 4 * n
        return list(v)

    def _doubles(self, n: int):
        v = struct.unpack_from(f">{n}d", self.data, self.pos)
        self.pos += 8 * n
        return list(v)

    def _length(self) -> int:
        n = self._int()
        if n == -1:  # long vector
            hi, lo = self._int(), self._int()
            n = (hi << 32) + lo
        return n

    def unserialize(self):
        if self.data[:2] != b"X\n":
            raise ValueError("only R XDR serialization ('X\\n') is supported")
        self.pos = 2
        version = self._int()
        self._int()  # writer's R version
        self._int()  # minimal reader version
        if version == 3:
            n = self._int()
            self.pos += n  # native encoding name
        elif version != 2:
            raise ValueError(f"unsupported serialization version {version}")
        return self.item()

    def _pairlist_attrs(self):
        attrs = self.item()
        out = {}
        node = attrs
        while isinstance(node, dict) and node.get("_pairlist"):
            out[str(node["tag"])] = node["car"]
            node = node["cdr"]
        return out

    def item(self):
        flags = self._int()
        t = flags & 0xFF
        levels = flags >> 12
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))

        if t == NILVALUE_SXP:
            return None
        if t in (EMPTYENV_SXP, BASEENV_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP,
                 MISSINGARG_SXP, BASENAMESPACE_SXP):
            return {"_special": t}
        if t == REFSXP:
            idx = flags >> 8
            if idx == 0:
                idx = self._int()
            return self.refs[idx - 1]
        if t == SYMSXP:
            sym = RSymbol(self.item())
            self.refs.append(sym)
            return sym
        if t in (LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP):
            attrs = self._pairlist_attrs() if has_attr else {}
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            return {"_pairlist": True, "type": t, "tag": tag, "car": car,
                    "cdr": cdr, "attrs": attrs}
        if t == CHARSXP:
            n = self._int()
            if n == -1:
                return None  # NA_character_
            raw = self.data[self.pos : self.pos + n]
            self.pos += n
            latin1 = bool(levels & (1 << 2)) and not (levels & (1 << 3))
            return raw.decode("latin-1" if latin1 else "utf-8")
        if t == ALTREP_SXP:
            info = self.item()
            state = self.item()
            attr = self.item()
            cls = str(info["car"]) if isinstance(info, dict) else ""
            if cls.startswith("wrap_") and isinstance(state, dict):
                value = state["car"]
            elif cls == "compact_intseq":
                n, start, step = (int(x) for x in state)
                value = RVector(range(start, start + n * step, step), INTSXP)
            elif cls == "compact_realseq":
                n, start, step = state
                value = RVector([start + i * step for i in range(int(n))], REALSXP)
            elif cls == "deferred_string":
                value = RVector([str(x) for x in state["car"]], STRSXP)
            else:
                raise ValueError(f"unsupported ALTREP class {cls!r}")
            node = attr
            while isinstance(node, dict) and node.get("_pairlist"):
                value.attrs[str(node["tag"])] = node["car"]
                node = node["cdr"]
            return value

        if t in (LGLSXP, INTSXP):
            n = self._length()
            vec = RVector(self._ints(n), t)
        elif t == REALSXP:
            n = self._length()
            vec = RVector(self._doubles(n), t)
        elif t == STRSXP:
            n = self._length()
            vec = RVector([self.item() for _ in range(n)], t)
        elif t in (VECSXP, EXPRSXP):
            n = self._length()
            vec = RVector([self.item() for _ in range(n)], t)
        elif t == RAWSXP:
            n = self._length()
            vec = RVector(self.data[self.pos : self.pos + n], t)
            self.pos += n
        elif t == NILSXP:
            return None
        else:
            raise ValueError(f"unsupported SEXPTYPE {t} at byte {self.pos - 4}")
        if has_attr:
            vec.attrs = self._pairlist_attrs()
        return vec


def r_unserialize(data: bytes):
    return RUnserializer(data).unserialize()


def _decompress_r(blob: bytes) -> bytes:
    """R lazy-load/RDS payload: gzip file, or 4-byte BE length + zlib stream
    (bzip2/xz variants carry a type byte after the length)."""
    if blob[:2] == b"\x1f\x8b":
        return gzip.decompress(blob)
    (n,) = struct.unpack(">I", blob[:4])
    if blob[4:5] == b"Z":
        out = lzma.decompress(blob[5:])
    elif blob[4:5] == b"2":
        import bz2

        out = bz2.decompress(blob[5:])
    elif blob[4:5] == b"0":
        out = blob[5:]
    else:
        out = zlib.decompress(blob[4:])
    if len(out) != n:
        raise ValueError(f"bad R payload length {len(out)} != {n}")
    return out


def read_r_lazyload(rdx: bytes, rdb: bytes) -> dict:
    """Return {name: R object} of an R lazy-load database (.rdx + .rdb)."""
    index = r_unserialize(_decompress_r(rdx)).as_dict()
    out = {}
    variables = index["variables"]
    for name, pos in zip(variables.names(), variables):
        off, length = int(pos[0]), int(pos[1])
        out[name] = r_unserialize(_decompress_r(rdb[off : off + length]))
    return out


# --------------------------------------------------------------------------
# Jane Austen
# --------------------------------------------------------------------------

AUSTEN_NOVELS = ["emma", "mansfieldpark", "northangerabbey", "persuasion",
                 "prideprejudice", "sensesensibility"]
_CHAPTER_RE = re.compile(r"^\s*chapter\s+([ivxlc]+|\d+)\s*\.?\s*$", re.I)
_VOLUME_RE = re.compile(r"^\s*volume\s+([ivxlc]+|\d+)\s*\.?\s*$", re.I)


_END_RE = re.compile(r"^\s*(THE END|FINIS|A NOTE ON THE TEXT)\s*$")
_SEPARATOR_RE = re.compile(r"^\s*\*[\s*]*$")  # "* * * * *" section breaks


def _drop_editorial(lines: list[str]) -> list[str]:
    """Drop the e-text editors' bracketed notes such as "[At this point in
    the first and second editions, Volume 1 ends.]" (may span lines)."""
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip().startswith("["):
            j = i
            while j < len(lines) and "]" not in lines[j]:
                j += 1
            block = " ".join(lines[i : j + 1])
            if re.search(r"edition", block, re.I):
                i = j + 1
                continue
        out.append(lines[i])
        i += 1
    return out


def _paragraphs(lines: list[str]) -> str:
    paras, cur = [], []
    for line in lines:
        line = line.strip()
        if not line:
            if cur:
                paras.append(" ".join(cur))
                cur = []
        else:
            cur.append(line)
    if cur:
        paras.append(" ".join(cur))
    text = "\n\n".join(paras)
    text = text.replace("_", "")  # Project Gutenberg italics markers
    return re.sub(r"[ \t]+", " ", text).strip()


def austen_documents(pkg: PackageFiles) -> list[dict]:
    base = "usr/lib/R/site-library/janeaustenr/data/"
    objs = read_r_lazyload(pkg.read(base + "Rdata.rdx"), pkg.read(base + "Rdata.rdb"))
    docs = []
    for novel in AUSTEN_NOVELS:
        lines = [ln if ln is not None else "" for ln in objs[novel]]
        lines = _drop_editorial(lines)
        chapters: list[list[str]] = []
        cur = None
        for ln in lines:
            if _END_RE.match(ln):
                break
            if _SEPARATOR_RE.match(ln):
                ln = ""
            if _CHAPTER_RE.match(ln):
                cur = []
                chapters.append(cur)
            elif _VOLUME_RE.match(ln):
                continue
            elif cur is not None:
                cur.append(ln)
        if len(chapters) < 20:
            raise ValueError(f"{novel}: only {len(chapters)} chapters found")
        for i, ch in enumerate(chapters, 1):
            text = _paragraphs(ch)
            if text:
                docs.append({"text": text, "source": f"janeaustenr/{novel}#chapter{i}"})
    return docs


# --------------------------------------------------------------------------
# World English Bible (SWORD zText module)
# --------------------------------------------------------------------------

WEB_DIR = "usr/share/sword/modules/texts/ztext/engWEB2015eb/"

# OSIS book id -> English name (66-book Protestant canon, in order).
BIBLE_BOOKS = [
    ("Gen", "Genesis"), ("Exod", "Exodus"), ("Lev", "Leviticus"),
    ("Num", "Numbers"), ("Deut", "Deuteronomy"), ("Josh", "Joshua"),
    ("Judg", "Judges"), ("Ruth", "Ruth"), ("1Sam", "1 Samuel"),
    ("2Sam", "2 Samuel"), ("1Kgs", "1 Kings"), ("2Kgs", "2 Kings"),
    ("1Chr", "1 Chronicles"), ("2Chr", "2 Chronicles"), ("Ezra", "Ezra"),
    ("Neh", "Nehemiah"), ("Esth", "Esther"), ("Job", "Job"),
    ("Ps", "Psalms"), ("Prov", "Proverbs"), ("Eccl", "Ecclesiastes"),
    ("Song", "Song of Solomon"), ("Isa", "Isaiah"), ("Jer", "Jeremiah"),
    ("Lam", "Lamentations"), ("Ezek", "Ezekiel"), ("Dan", "Daniel"),
    ("Hos", "Hosea"), ("Joel", "Joel"), ("Amos", "Amos"), ("Obad", "Obadiah"),
    ("Jonah", "Jonah"), ("Mic", "Micah"), ("Nah", "Nahum"),
    ("Hab", "Habakkuk"), ("Zeph", "Zephaniah"), ("Hag", "Haggai"),
    ("Zech", "Zechariah"), ("Mal", "Malachi"),
    ("Matt", "Matthew"), ("Mark", "Mark"), ("Luke", "Luke"), ("John", "John"),
    ("Acts", "Acts"), ("Rom", "Romans"), ("1Cor", "1 Corinthians"),
    ("2Cor", "2 Corinthians"), ("Gal", "Galatians"), ("Eph", "Ephesians"),
    ("Phil", "Philippians"), ("Col", "Colossians"),
    ("1Thess", "1 Thessalonians"), ("2Thess", "2 Thessalonians"),
    ("1Tim", "1 Timothy"), ("2Tim", "2 Timothy"), ("Titus", "Titus"),
    ("Phlm", "Philemon"), ("Heb", "Hebrews"), ("Jas", "James"),
    ("1Pet", "1 Peter"), ("2Pet", "2 Peter"), ("1John", "1 John"),
    ("2John", "2 John"), ("3John", "3 John"), ("Jude", "Jude"),
    ("Rev", "Revelation"),
]
BOOK_NAMES = dict(BIBLE_BOOKS)

# The books taken into prose.jsonl.gz (whole books, in canonical order): the
# narrative, poetic and wisdom books and some prophets of the Old Testament
# and the whole New Testament, so that the corpus is about 2.5 MB gzip'd.
DEFAULT_BIBLE_BOOKS = [
    "Gen", "Exod", "Deut", "Josh", "Judg", "Ruth", "1Sam", "2Sam", "1Kgs",
    "2Kgs", "Ezra", "Neh", "Esth", "Job", "Ps", "Prov", "Eccl", "Song", "Isa",
    "Lam", "Dan", "Hos", "Amos", "Jonah", "Mic", "Mal",
] + [osis for osis, _ in BIBLE_BOOKS[39:]]  # ... and the whole New Testament

_TAG_RE = re.compile(r"<(/?)([A-Za-z]+)\b([^<>]*?)(/?)>")
_ATTR_RE = re.compile(r'(\w+)="([^"]*)"')
NOTE_MARK = "\x00"


def sword_entries(pkg: PackageFiles, testament: str) -> list[str]:
    """All index entries (verses, chapter/book headings) of one testament
    ('ot' or 'nt'), in versification order, as OSIS strings."""
    bzs = pkg.read(WEB_DIR + testament + ".bzs")
    bzv = pkg.read(WEB_DIR + testament + ".bzv")
    bzz = pkg.read(WEB_DIR + testament + ".bzz")
    blocks = [struct.unpack_from("<III", bzs, i) for i in range(0, len(bzs), 12)]
    cache: dict[int, bytes] = {}
    entries = []
    for i in range(0, len(bzv), 10):
        block, off, size = struct.unpack_from("<IIH", bzv, i)
        if size == 0:
            entries.append("")
            continue
        if block not in cache:
            boff, csize, usize = blocks[block]
            raw = zlib.decompress(bzz[boff : boff + csize])
            if len(raw) != usize:
                raise ValueError(f"{testament} block {block}: bad size")
            cache[block] = raw
        entries.append(cache[block][off : off + size].decode("utf-8"))
    return entries


def _text(chunk: str) -> str:
    # a stray "<..." is a tag cut off by a truncated entry (see bible_chapters)
    return html.unescape(re.sub(r"<[^>]*", "", chunk))


def _clean_bible_text(text: str) -> str:
    # a dropped footnote between two words stood for a space
    text = re.sub(r"(?<=[^\s\x00])\x00+(?=[\w“‘(])", " ", text)
    text = text.replace(NOTE_MARK, "")
    lines = [re.sub(r"[ \t\u00a0]+", " ", ln).strip() for ln in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    text = re.sub(r" +([,.;:!?])", r"\1", text)
    return text.strip()


def bible_chapters(pkg: PackageFiles) -> dict[tuple[str, int], str]:
    """{(osis book, chapter): clean text} for every chapter in the module.

    The verse entries of each testament are read as one OSIS stream and cut
    at the ``<chapter sID=.../>`` ... ``<chapter eID=.../>`` milestones, so
    no versification table is needed.  Footnotes, cross references,
    non-canonical titles (section/book headings) and speaker labels are
    dropped; canonical Psalm titles are kept as the chapter's first line.
    Paragraph starts become blank lines and poetry lines end with a newline.

    Quirk of this module: the 64 KiB+ entry holding the Greek additions to
    Daniel (mapped by osis2mod onto the heading of Hosea) is cut off because
    the .bzv size field is 16 bits, leaving a broken tag; those chapters
    ("DanGr") are not among the books taken.
    """
    chapters: dict[tuple[str, int], list[str]] = {}
    for testament in ("ot", "nt"):
        stream = " ".join(sword_entries(pkg, testament))
        cur: list[str] | None = None
        keep_stack = []  # open non-empty elements: True if content dropped
        pos = 0
        for m in _TAG_RE.finditer(stream):
            if cur is not None and not any(keep_stack):
                cur.append(_text(stream[pos : m.start()]))
            pos = m.end()
            closing, name, attrs_s, selfclose = m.groups()
            attrs = dict(_ATTR_RE.findall(attrs_s))
            if name == "chapter" and selfclose:
                if "sID" in attrs:
                    book, num = attrs.get("osisID", attrs["sID"]).rsplit(".", 1)
                    key = (book, int(num))
                    cur = chapters.setdefault(key, [])
                elif "eID" in attrs:
                    cur = None
                continue
            if selfclose:
                if cur is None or any(keep_stack):
                    continue
                if (name == "div" and attrs.get("type") == "x-p" and "sID" in attrs) or (
                    name == "lb" and attrs.get("type") == "x-p"
                ) or name == "lg":
                    cur.append("\n\n")
                elif name == "l" and "eID" in attrs:
                    cur.append("\n")
                continue
            if closing:
                if keep_stack:
                    dropped = keep_stack.pop()
                    if cur is not None and not any(keep_stack):
                        if dropped and name == "note":
                            cur.append(NOTE_MARK)
                        elif name == "title" and not dropped:
                            cur.append("\n")
                continue
            drop = name in ("note", "speaker", "catchWord", "rdg") or (
                name == "title" and attrs.get("canonical") != "true"
            )
            keep_stack.append(drop)
        if cur is not None and not any(keep_stack):
            cur.append(_text(stream[pos:]))
    return {k: _clean_bible_text("".join(v)) for k, v in chapters.items()}


def bible_documents(pkg: PackageFiles, books: list[str]) -> list[dict]:
    chapters = bible_chapters(pkg)
    docs = []
    for book in books:
        nums = sorted(n for (b, n) in chapters if b == book)
        if not nums or nums != list(range(1, len(nums) + 1)):
            raise ValueError(f"bad chapter list for {book}: {nums[:5]}...")
        for n in nums:
            text = chapters[(book, n)]
            if text:
                docs.append({"text": text,
                             "source": f"sword-engWEB2015eb/{BOOK_NAMES[book]} {n}"})
    return docs


# --------------------------------------------------------------------------
# CPython standard library
# --------------------------------------------------------------------------

EXCLUDED_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages",
                 "__pycache__", "lib-dynload"}
EXCLUDED_PREFIXES = ("config-",)  # config-3.11-x86_64-linux-gnu (build config)
MAX_FILE_BYTES = 200_000


def _excluded(rel: Path) -> bool:
    parts = rel.parts
    if any(p in EXCLUDED_DIRS or p.startswith(EXCLUDED_PREFIXES) for p in parts[:-1]):
        return True
    name = parts[-1]
    if name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
        return True
    if name.startswith("_sysconfigdata"):  # generated, machine specific
        return True
    return False


_GENERATED_RE = re.compile(
    r"gencodec\.py|auto-generated by|this file is generated by|do not edit", re.I)


def _generated(text: str) -> bool:
    """Machine-generated tables (codec maps, token/casefix/stringprep data)."""
    return bool(_GENERATED_RE.search(text[:2000]))


def stdlib_files(stdlib: Path) -> list[tuple[str, str]]:
    """Sorted (relpath, text) of the eligible .py files of ``stdlib``."""
    out = []
    for path in sorted(stdlib.rglob("*.py"), key=lambda p: p.relative_to(stdlib).as_posix()):
        rel = path.relative_to(stdlib)
        if _excluded(rel) or not path.is_file():
            continue
        raw = path.read_bytes()
        if len(raw) > MAX_FILE_BYTES or not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if "\x00" in text or _generated(text):
            continue
        out.append((rel.as_posix(), text))
    return out


_TOPLEVEL_RE = re.compile(r"(?:async\s+def|def|class)\s|@")


def split_source(text: str, max_chars: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``max_chars`` characters (when
    possible) at top-level def/class starts (with their decorators and
    preceding comments), or at line boundaries; pieces concatenate to text."""
    if len(text) <= max_chars:
        return [text]
    lines = text.splitlines(keepends=True)
    # candidate cut points: index of a line starting a top-level block, moved
    # up over its decorators and the comment lines just above.
    cuts = {0}
    for i, ln in enumerate(lines):
        if _TOPLEVEL_RE.match(ln) and not (i > 0 and lines[i - 1].startswith("@")):
            j = i
            while j > 0 and lines[j - 1].startswith("#"):
                j -= 1
            cuts.add(j)
    cuts = sorted(cuts) + [len(lines)]
    segments = ["".join(lines[a:b]) for a, b in zip(cuts, cuts[1:]) if a < b]
    # segments too big on their own are cut at line (blank line if possible)
    fine: list[str] = []
    for seg in segments:
        if len(seg) <= max_chars:
            fine.append(seg)
            continue
        seg_lines = seg.splitlines(keepends=True)
        cur, size, last_blank = [], 0, -1
        for ln in seg_lines:
            if size + len(ln) > max_chars and cur:
                if last_blank > len(cur) // 2:
                    fine.append("".join(cur[: last_blank + 1]))
                    cur = cur[last_blank + 1 :]
                else:
                    fine.append("".join(cur))
                    cur = []
                size = sum(map(len, cur))
                last_blank = max((k for k, c in enumerate(cur) if not c.strip()), default=-1)
            cur.append(ln)
            size += len(ln)
            if not ln.strip():
                last_blank = len(cur) - 1
        if cur:
            fine.append("".join(cur))
    # greedy packing of consecutive segments
    pieces, cur = [], ""
    for seg in fine:
        if cur and len(cur) + len(seg) > max_chars:
            pieces.append(cur)
            cur = ""
        cur += seg
    if cur:
        pieces.append(cur)
    assert "".join(pieces) == text
    return pieces


def code_documents(stdlib: Path, target_chars: int, max_doc_chars: int,
                   label: str) -> list[dict]:
    files = stdlib_files(stdlib)
    total = sum(len(t) for _, t in files)
    frac = min(1.0, target_chars / total)
    docs = []
    # even stride over the sorted file list: file i is taken when
    # floor((i+1)*frac) > floor(i*frac), i.e. about frac of all files,
    # spread evenly over every package of the library.
    for i, (rel, text) in enumerate(files):
        if int((i + 1) * frac) <= int(i * frac):
            continue
        pieces = split_source(text, max_doc_chars)
        for k, piece in enumerate(pieces, 1):
            src = f"{label}/Lib/{rel}" + (f"#part{k}" if len(pieces) > 1 else "")
            docs.append({"text": piece, "source": src})
    return docs


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def write_jsonl_gz(path: Path, docs: list[dict]) -> dict:
    body = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(body)
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {
        "file": path.name,
        "documents": len(docs),
        "characters": sum(len(d["text"]) for d in docs),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--janeaustenr", required=True,
                    help="r-cran-janeaustenr .deb or directory it was extracted into")
    ap.add_argument("--sword", required=True,
                    help="sword-text-web .deb or directory it was extracted into")
    ap.add_argument("--stdlib", default=sysconfig.get_paths()["stdlib"],
                    help="CPython Lib directory (default: the running interpreter's)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="output directory")
    ap.add_argument("--code-target-chars", type=int, default=10_000_000,
                    help="approximate characters of source to take")
    ap.add_argument("--max-doc-chars", type=int, default=20_000,
                    help="split source files longer than this")
    ap.add_argument("--bible-books", default=",".join(DEFAULT_BIBLE_BOOKS),
                    help="comma-separated OSIS book ids to take, in order")
    args = ap.parse_args(argv)

    out = Path(args.out)
    vi = sys.version_info
    label = f"cpython-{vi.major}.{vi.minor}.{vi.micro}"
    if args.stdlib != sysconfig.get_paths()["stdlib"]:
        m = re.search(r"python(\d+\.\d+)", args.stdlib)
        label = f"cpython-{m.group(1)}" if m else "cpython"

    code = code_documents(Path(args.stdlib), args.code_target_chars,
                          args.max_doc_chars, label)
    books = [b.strip() for b in args.bible_books.split(",") if b.strip()]
    unknown = [b for b in books if b not in BOOK_NAMES]
    if unknown:
        ap.error(f"unknown book ids: {unknown}")
    prose = austen_documents(PackageFiles(args.janeaustenr)) + bible_documents(
        PackageFiles(args.sword), books)

    for name, docs in (("code.jsonl.gz", code), ("prose.jsonl.gz", prose)):
        info = write_jsonl_gz(out / name, docs)
        print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
