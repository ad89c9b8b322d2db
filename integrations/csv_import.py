"""Reading lead lists exported from Excel: encoding, header names, rows.

Excel in Japan saves "CSV" as CP932 (Shift_JIS with Microsoft's extensions) and
"CSV UTF-8" with a BOM; other tools write UTF-8 without one. Only these occur, so the
encoding is found by trying them strictly in that order instead of guessing with a
detector (which confuses short CP932 files with other legacy encodings). CP932 comes
before Shift_JIS because it decodes a superset (①, ㈱, 髙 …) the same way.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field

from leadflow.normalize import nfkc

ENCODINGS = ("utf-8", "cp932", "shift_jis")


class CsvProblem(ValueError):
    """The file as a whole cannot be read (encoding, no header, no e-mail column)."""


_HEADERS: dict[str, tuple[str, ...]] = {
    "email": ("email", "emailaddress", "mail", "mailaddress", "eメール", "eメールアドレス",
              "メール", "メールアドレス", "電子メール", "電子メールアドレス"),
    "last_name": ("姓", "lastname", "familyname", "surname", "苗字", "名字"),
    "first_name": ("名", "firstname", "givenname"),
    "full_name": ("氏名", "名前", "お名前", "name", "fullname", "担当者名", "担当者"),
    "last_name_kana": ("セイ", "せい", "姓カナ", "姓ふりがな", "姓フリガナ", "lastnamekana"),
    "first_name_kana": ("メイ", "めい", "名カナ", "名ふりがな", "名フリガナ", "firstnamekana"),
    "company.name": ("会社名", "company", "companyname", "企業名", "法人名", "社名", "組織名",
                     "organization", "accountname"),
    "company.name_kana": ("会社名カナ", "会社名フリガナ", "企業名カナ", "companynamekana"),
    "department": ("部署", "部署名", "部門", "所属", "department", "division"),
    "job_title": ("役職", "役職名", "肩書き", "肩書", "title", "jobtitle", "position"),
    "phone": ("電話番号", "電話", "tel", "phone", "phonenumber", "telephone"),
    "company.employee_count": ("従業員数", "社員数", "従業員規模", "employees", "employeecount",
                               "numberofemployees"),
    "company.industry": ("業種", "業界", "industry"),
    "company.revenue_band": ("売上高", "売上", "年商", "revenue", "annualrevenue"),
    "prefecture": ("都道府県", "prefecture", "state"),
    "address": ("住所", "所在地", "会社住所", "address"),
    "company.domain": ("ドメイン", "domain", "website", "url", "ホームページ", "webサイト"),
}  # fmt: skip


def header_key(header: str) -> str:
    """`E-Mail ` / `ｅメール` / `姓（カナ）` → `email` / `eメール` / `姓カナ`."""
    return re.sub(r"[\s_\-・()\[\]【】:：]", "", nfkc(header).lower())


HEADER_TARGETS: dict[str, str] = {
    header_key(name): target for target, names in _HEADERS.items() for name in names
}


@dataclass
class Sheet:
    encoding: str
    columns: dict[str, str]  # header as written → mapping target
    ignored: list[str]
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (line, row)


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding name). Raises CsvProblem when it is none of the expected ones."""
    if data.startswith(b"PK\x03\x04"):
        raise CsvProblem("This is an Excel workbook (.xlsx); save it as CSV first.")
    if data.startswith(codecs.BOM_UTF8):
        candidates: tuple[str, ...] = ("utf-8-sig",)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ("utf-16",)  # Excel's "Unicode text"
    elif b"\x00" in data[:4096]:
        # CP932 decodes almost any bytes; NULs are how binary files give themselves away.
        raise CsvProblem("This is not a text file; save it as CSV.")
    else:
        candidates = ENCODINGS
    for encoding in candidates:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise CsvProblem("The file is neither UTF-8 nor Shift_JIS (CP932); save it as CSV UTF-8.")


def read_rows(data: bytes) -> Sheet:
    text, encoding = decode(data)
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    header = next(reader, None)
    while header is not None and not any(cell.strip() for cell in header):
        header = next(reader, None)
    if header is None:
        raise CsvProblem("The file is empty.")
    columns: dict[str, str] = {}
    ignored: list[str] = []
    taken: set[str] = set()
    for name in header:
        target = HEADER_TARGETS.get(header_key(name))
        if target is None or target in taken or name in columns:
            if name.strip():
                ignored.append(name)
            continue
        columns[name] = target
        taken.add(target)
    if "email" not in taken:
        raise CsvProblem(
            "No e-mail column: name one “メールアドレス” or “email”. Columns found: "
            + ", ".join(h for h in header if h.strip())
        )
    sheet = Sheet(encoding=encoding, columns=columns, ignored=ignored)
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        row = {
            name: cells[i].strip()
            for i, name in enumerate(header)
            if name in columns and i < len(cells)
        }
        sheet.rows.append((reader.line_num, row))
    return sheet
