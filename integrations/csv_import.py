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

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from leadflow.normalize import nfkc

ENCODINGS = ("utf-8", "cp932", "shift_jis")


class CsvProblem(ValueError):
    """The file as a whole cannot be read (encoding, no header, no e-mail column)."""


_HEADERS: dict[str, tuple[str, ...]] = {
    "email": ("email", "emailaddress", "mail", "mailaddress", "eメール", "eメールアドレス",
              "メール", "メールアドレス", "電子メール", "電子メールアドレス", "email1",
              "メール勤務先", "emailaddress1", "メールアドレス1"),
    "last_name": ("姓", "lastname", "familyname", "surname", "苗字", "名字"),
    "first_name": ("名", "firstname", "givenname"),
    "full_name": ("氏名", "名前", "お名前", "name", "fullname", "担当者名", "担当者", "氏名漢字"),
    "full_name_kana": ("氏名カナ", "氏名フリガナ", "フリガナ", "ふりがな", "氏名ふりがな",
                       "名前カナ", "名前フリガナ", "namekana", "fullnamekana"),
    "last_name_kana": ("セイ", "せい", "姓カナ", "姓ふりがな", "姓フリガナ", "lastnamekana"),
    "first_name_kana": ("メイ", "めい", "名カナ", "名ふりがな", "名フリガナ", "firstnamekana"),
    "company.name": ("会社名", "company", "companyname", "企業名", "法人名", "社名", "組織名",
                     "organization", "accountname", "会社", "会社名漢字"),
    "company.name_kana": ("会社名カナ", "会社名フリガナ", "企業名カナ", "companynamekana"),
    "department": ("部署", "部署名", "部門", "所属", "department", "division", "部署名1"),
    "job_title": ("役職", "役職名", "肩書き", "肩書", "title", "jobtitle", "position"),
    # Card scanners export several numbers. When a file has more than one of these
    # columns, each row takes the first non-empty one in this order: direct line,
    # department, general number, switchboard, mobile.
    "phone": ("tel直通", "直通電話", "tel部門", "電話番号", "電話", "tel", "phone",
              "phonenumber", "telephone", "tel会社", "会社電話", "電話勤務先", "電話番号会社",
              "携帯電話", "携帯", "携帯電話番号", "mobile"),
    "company.employee_count": ("従業員数", "社員数", "従業員規模", "employees", "employeecount",
                               "numberofemployees"),
    "company.industry": ("業種", "業界", "industry"),
    "company.revenue_band": ("売上高", "売上", "年商", "revenue", "annualrevenue"),
    "prefecture": ("都道府県", "prefecture", "state"),
    "address": ("住所", "所在地", "会社住所", "address", "住所勤務先", "会社所在地", "住所1"),
    "card_exchanged_on": ("名刺交換日", "交換日", "取り込み日", "登録日", "exchangedate"),
    "attributes.postal_code": ("郵便番号", "〒", "zip", "postalcode", "zipcode"),
    "attributes.fax": ("fax", "ファックス", "fax番号"),
    "company.domain": ("ドメイン", "domain", "website", "url", "ホームページ", "webサイト"),
}  # fmt: skip


# What each target is called on the import page (the targets are internal names).
TARGET_LABELS: dict[str, Promise] = {
    "email": _("email"),
    "last_name": _("last name"),
    "first_name": _("first name"),
    "full_name": _("full name"),
    "full_name_kana": _("full name (kana)"),
    "last_name_kana": _("last name (kana)"),
    "first_name_kana": _("first name (kana)"),
    "company.name": _("company name"),
    "company.name_kana": _("company name (kana)"),
    "department": _("department"),
    "job_title": _("job title"),
    "phone": _("phone"),
    "company.employee_count": _("employees"),
    "company.industry": _("industry"),
    "company.revenue_band": _("annual revenue"),
    "prefecture": _("prefecture"),
    "address": _("address"),
    "card_exchanged_on": _("date the card was exchanged"),
    "attributes.postal_code": _("postal code"),
    "attributes.fax": _("fax"),
    "company.domain": _("company domain"),
}


def target_label(target: str) -> str:
    return str(TARGET_LABELS.get(target, target))


def header_key(header: str) -> str:
    """`E-Mail ` / `ｅメール` / `姓（カナ）` → `email` / `eメール` / `姓カナ`."""
    return re.sub(r"[\s_\-・()\[\]【】:：]", "", nfkc(header).lower())


HEADER_TARGETS: dict[str, str] = {
    header_key(name): target for target, names in _HEADERS.items() for name in names
}
# How much a header is preferred for its target when a file has several (lower = better).
HEADER_RANK: dict[str, int] = {
    header_key(name): rank for names in _HEADERS.values() for rank, name in enumerate(names)
}


@dataclass
class Sheet:
    encoding: str
    columns: dict[str, str]  # header as written → mapping target
    ignored: list[str]
    # target → further headers for it, best first: used when the row's main one is empty
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
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
    try:
        return _read_rows(data)
    except csv.Error as error:
        # e.g. a cell over the csv module's field limit (128 KiB): a file-level problem
        # for the report, not an exception out of the upload page (it was a 500).
        raise CsvProblem(f"The file cannot be read as CSV: {error}.") from None


def _read_rows(data: bytes) -> Sheet:
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
    candidates: dict[str, list[str]] = {}
    ignored: list[str] = []
    for name in header:
        target = HEADER_TARGETS.get(header_key(name))
        if target is None or any(name in names for names in candidates.values()):
            if name.strip():
                ignored.append(name)
            continue
        candidates.setdefault(target, []).append(name)
    columns: dict[str, str] = {}
    fallbacks: dict[str, list[str]] = {}
    for target, names in candidates.items():
        names.sort(key=lambda n: HEADER_RANK[header_key(n)])
        columns[names[0]] = target
        if len(names) > 1:
            fallbacks[target] = names[1:]
    taken = set(columns.values())
    if "email" not in taken:
        raise CsvProblem(
            "No e-mail column: name one “メールアドレス” or “email”. Columns found: "
            + ", ".join(h for h in header if h.strip())
        )
    sheet = Sheet(encoding=encoding, columns=columns, ignored=ignored, fallbacks=fallbacks)
    position = {name: i for i, name in reversed(list(enumerate(header)))}
    main_header = {target: name for name, target in columns.items()}
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        row = {
            name: cells[i].strip()
            for i, name in enumerate(header)
            if name in columns and i < len(cells)
        }
        for target, others in fallbacks.items():
            main = main_header[target]
            for other in others:
                if row.get(main):
                    break
                i = position[other]
                if i < len(cells) and cells[i].strip():
                    row[main] = cells[i].strip()
        sheet.rows.append((reader.line_num, row))
    return sheet
