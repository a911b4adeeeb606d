"""RTF embedded objects for :mod:`kinfile.formats.rtf`: ``\\objdata`` decoding and OLE 1.0 parsing.

``\\objdata`` is read the way oletools' rtfobj (and, as far as it knows, Word) reads it, but only
from each ``\\objdata`` to the end of its group instead of tokenising the whole document:

* text goes to the object data, whitespace and non-hex characters are dropped afterwards and an
  odd trailing digit is trimmed;
* a nested group that opens a destination (``{\\*\\x ...}`` or a known destination word) is
  skipped (rtfobj only skips known destination words; Word also ignores ``{\\*\\unknown}``);
  plain nested groups keep feeding the data; other control words are ignored;
* a destination word at the level of ``\\objdata`` itself ends the object data;
* ``\\binN`` appends N raw bytes (hex-encoded, as rtfobj does); ``\\'hh`` skips two characters
  and, when an odd number of hex digits was read, drops the last one (Word's parser quirk).
"""

from __future__ import annotations

import binascii
import logging
import re
import struct
from dataclasses import dataclass

from kinfile.formats.common import NO_DEADLINE, Deadline

logger = logging.getLogger(__name__)

MAX_STRING = 1024
_TOKEN_RE = re.compile(rb"[{}]|\\([a-zA-Z]{1,250})(-?\d+)?|\\'|\\[^a-zA-Z]?|[^{}\\]+")
_NON_HEX_RE = re.compile(rb"[^0-9A-Fa-f]")
_GROUP_TOKEN_RE = re.compile(rb"\\bin(-?\d{1,250})? ?|\\'(?s:.{0,2})|\\[{}\\]|[{}]")

# rtfobj's DESTINATION_CONTROL_WORDS (RTF 1.9.1 destinations), the ones that end or skip objdata.
DESTINATIONS = frozenset(
    b"""aftncn aftnsep aftnsepc annotation atnauthor atndate atnid atnparent atnref atrfend atrfstart
    author background bkmkend bkmkstart blipuid buptim category colorschememapping colortbl comment
    company creatim datafield datastore defchp defpap do doccomm docvar dptxbxtext ebcend ebcstart
    factoidname falt fchars ffdeftext ffentrymcr ffexitmcr ffformat ffhelptext ffl ffname ffstattext
    field file filetbl fldinst fldrslt fldtype fontemb fonttbl footer footerf footerl footerr footnote
    formfield ftncn ftnsep ftnsepc g generator gridtbl header headerf headerl headerr hl hlfr hlinkbase
    hlloc hlsrc hsv info keywords latentstyles lchars levelnumbers leveltext lfolevel linkval list
    listlevel listname listoverride listoverridetable listpicture liststylename listtable listtext
    lsdlockedexcept macc maccPr mailmerge malnScr manager margPr mbar mbarPr mbaseJc mbegChr mborderBox
    mborderBoxPr mbox mboxPr mchr mcount mctrlPr md mdeg mdegHide mden mdiff mdPr me mendChr meqArr
    meqArrPr mf mfName mfPr mfunc mfuncPr mgroupChr mgroupChrPr mgrow mhideBot mhideLeft mhideRight
    mhideTop mlim mlimLoc mlimLow mlimLowPr mlimUpp mlimUppPr mm mmaddfieldname mmathPict mmaxDist mmc
    mmcJc mmconnectstr mmconnectstrdata mmcPr mmcs mmdatasource mmheadersource mmmailsubject mmodso
    mmodsofilter mmodsofldmpdata mmodsomappedname mmodsoname mmodsorecipdata mmodsosort mmodsosrc
    mmodsotable mmodsoudl mmodsoudldata mmodsouniquetag mmPr mmquery mmr mnary mnaryPr mnoBreak mnum
    mobjDist moMath moMathPara moMathParaPr mopEmu mphant mphantPr mplcHide mpos mr mrad mradPr mrPr
    msepChr mshow mshp msPre msPrePr msSub msSubPr msSubSup msSubSupPr msSup msSupPr mstrikeBLTR
    mstrikeH mstrikeTLBR mstrikeV msub msubHide msup msupHide mtransp mtype mvertJc mvfmf mvfml mvtof
    mvtol mzeroAsc mzeroDesc mzeroWid nesttableprops nonesttables objalias objclass objdata object
    objname objsect oldcprops oldpprops oldsprops oldtprops oleclsid operator panose password
    passwordhash pgp pgptbl picprop pict pn pnseclvl pntext pntxta pntxtb printim propname protend
    protstart protusertbl result revtbl revtim rxe shp shpgrp shpinst shppict shprslt shptxt sn sp
    staticval stylesheet subject sv svb tc template themedata title txe ud upr userprops
    wgrffmtfilter windowcaption writereservation writereservhash xe xform xmlattrname xmlattrvalue
    xmlclose xmlname xmlnstbl xmlopen margSz pnaiu pnaiud""".split()
)


def group_end(data: bytes, start: int, deadline: Deadline = NO_DEADLINE, limit: int | None = None) -> int:
    """Index just past the ``}`` closing the group that contains ``start`` (or ``limit``/len(data))."""
    depth = 0
    pos = start
    n = len(data) if limit is None else min(limit, len(data))
    steps = 0
    while pos < n:
        match = _GROUP_TOKEN_RE.search(data, pos, n)
        if match is None:
            return n
        steps += 1
        if steps % 4096 == 0:
            deadline.check()
        token = match.group()
        pos = match.end()
        if token.startswith(b"\\bin"):
            pos += _bin_length(match.group(1))
        elif token == b"{":
            depth += 1
        elif token == b"}":
            depth -= 1
            if depth < 0:
                return pos
    return n


def read_objdata(
    data: bytes, start: int, deadline: Deadline = NO_DEADLINE, max_steps: int = 1 << 22
) -> tuple[bytes, int, int]:
    """Decode the object data that follows ``\\objdata`` at ``start``.

    Returns (bytes, end index, tokens read); stops after ``max_steps`` tokens.
    """
    digits = bytearray()  # hex digits read so far (non-hex characters dropped as they come)
    depth = 0
    skip_from = -1  # depth at which a skipped destination group was opened
    fresh_group = False  # the previous token was "{"
    pos = start
    n = len(data)
    steps = 0
    while pos < n and steps < max_steps:
        match = _TOKEN_RE.match(data, pos)
        if match is None:  # a control word longer than Word accepts: treat the backslash as text
            pos += 1
            continue
        steps += 1
        if steps % 4096 == 0:
            deadline.check()
        token = match.group()
        pos = match.end()
        first = token[0]
        was_fresh, fresh_group = fresh_group, first == 0x7B
        if first == 0x7B:  # {
            depth += 1
        elif first == 0x7D:  # }
            if skip_from == depth:
                skip_from = -1
            depth -= 1
            if depth < 0:
                break
        elif match.group(1) == b"bin":
            if data[pos : pos + 1] == b" ":
                pos += 1
            length = _bin_length(match.group(2))
            if skip_from < 0:
                digits += binascii.hexlify(data[pos : pos + length])
            pos += length
        elif token == b"\\'":
            pos += 2
            if skip_from < 0 and len(digits) & 1:
                del digits[-1]
        elif skip_from >= 0:
            continue
        elif match.group(1) is not None:
            if match.group(1) in DESTINATIONS:
                if depth == 0:
                    break
                skip_from = depth
        elif token == b"\\*" and was_fresh and depth > 0:
            skip_from = depth
        elif first != 0x5C:  # text
            digits += _NON_HEX_RE.sub(b"", token)
        # other control symbols (\*, \\, \~ ...) carry no object data
    if len(digits) & 1:
        del digits[-1]
    return binascii.unhexlify(digits), pos, steps


def _bin_length(param: bytes | None) -> int:
    if not param or param.startswith(b"-") or len(param) > 12:
        return 0
    return int(param)


@dataclass
class Ole1Object:
    """An OLE 1.0 object (MS-OLEDS 2.2): the content of ``\\objdata``."""

    format_id: int
    class_name: str
    topic: str
    item: str
    native: bytes | None
    native_size: int | None


def _length_prefixed(data: bytes, pos: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("<I", data, pos)
    pos += 4
    if length > MAX_STRING or pos + length > len(data):
        raise ValueError("bad string length")
    raw = data[pos : pos + length]
    return raw.split(b"\x00", 1)[0].decode("latin-1"), pos + length


def parse_ole1(data: bytes) -> Ole1Object | None:
    """OLE 1.0 ObjectHeader + EmbeddedObject/LinkedObject; None when not one."""
    try:
        _version, format_id = struct.unpack_from("<II", data, 0)
        if format_id not in (1, 2):
            return None
        class_name, pos = _length_prefixed(data, 8)
        topic, pos = _length_prefixed(data, pos)
        item, pos = _length_prefixed(data, pos)
        if format_id == 1:
            return Ole1Object(format_id, class_name, topic, item, None, None)
        (size,) = struct.unpack_from("<I", data, pos)
        pos += 4
        return Ole1Object(format_id, class_name, topic, item, data[pos : pos + size], size)
    except (struct.error, ValueError):
        return None


@dataclass
class PackageFile:
    """An OLE Package (Ole10Native without the size prefix): the file it carries."""

    filename: str
    source_path: str
    temp_path: str
    data: bytes


def _zstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\x00", pos, pos + MAX_STRING)
    return data[pos:end].decode("latin-1"), end + 1


def parse_package(native: bytes) -> PackageFile | None:
    try:
        pos = 2  # unknown u16 (2)
        filename, pos = _zstring(native, pos)
        source, pos = _zstring(native, pos)
        pos += 8  # two unknown u32
        temp, pos = _zstring(native, pos)
        (size,) = struct.unpack_from("<I", native, pos)
        pos += 4
        return PackageFile(filename, source, temp, native[pos : pos + size])
    except (struct.error, ValueError):
        return None
