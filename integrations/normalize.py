"""Turning what senders and spreadsheets write into the values LeadFlow stores.

Shared by the webhook adapters and the CSV import: a 業種 column and a HubSpot
`industry` property end up as the same `Industry` value, a job title as a `Role`.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from leadflow.japan import REGION_BY_PREFECTURE, prefecture_from_address
from leadflow.models import Industry, RevenueBand, Role
from leadflow.normalize import nfkc, normalize_email


class ValueProblem(ValueError):
    """A value that cannot be stored; the message names the value for a row report, and
    `field` the sender's field it came from (set by integrations.mapping.lead_data_from_fields)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def clean_email(value: object) -> str:
    """Normalised address, or "" when empty. Raises ValueProblem when it is not one."""
    email = normalize_email(str(value or ""))
    if not email:
        return ""
    # "user@example.com." is the absolute form of the domain; mail works either way.
    email = email.rstrip(".")
    try:
        validate_email(email)
    except ValidationError:
        raise ValueProblem(
            _("“%(value)s” is not a valid e-mail address.") % {"value": value}
        ) from None
    return email


def _mentions(text: str, keywords: tuple[str, ...]) -> bool:
    words = set(re.split(r"[\s/・,、()()&.-]+", text))
    for keyword in keywords:
        # Short Latin keywords ("it", "cto", "vp") must be whole words, or "digital" is
        # IT and "director" contains "cto".
        if keyword.isascii() and len(keyword) <= 4:
            if keyword in words:
                return True
        elif keyword in text:
            return True
    return False


# Checked in order; the first keyword found in the text wins ("ITサービス" is IT).
_INDUSTRY_KEYWORDS: list[tuple[str, tuple[str, ...]]] = [
    (
        Industry.IT,
        ("情報通信", "ソフトウェア", "software", "saas", "it", "通信", "情報", "internet"),
    ),
    (Industry.MANUFACTURING, ("製造", "メーカー", "manufactur", "機械", "化学", "電機", "自動車")),
    (Industry.FINANCE, ("金融", "保険", "銀行", "証券", "financ", "insurance", "bank")),
    (Industry.RETAIL, ("小売", "卸", "流通", "商社", "retail", "wholesale", "ec")),
    (Industry.CONSTRUCTION, ("建設", "不動産", "建築", "construction", "real estate")),
    (
        Industry.HEALTHCARE,
        ("医療", "病院", "製薬", "ヘルスケア", "介護", "health", "medical", "pharma"),
    ),
    (Industry.LOGISTICS, ("物流", "運輸", "倉庫", "運送", "logistic", "transport")),
    (Industry.EDUCATION, ("教育", "学校", "大学", "education", "school", "university")),
    (Industry.PUBLIC, ("官公庁", "自治体", "公共", "government", "public")),
    (Industry.SERVICES, ("サービス", "コンサル", "人材", "広告", "士業", "service", "consult")),
]


def industry_from_text(value: object) -> str:
    """An `Industry` value for free text (製造業, "Manufacturing", "it"); "" when empty."""
    text = nfkc(str(value or "")).strip().lower()
    if not text:
        return ""
    if text in Industry.values:
        return text
    for industry, keywords in _INDUSTRY_KEYWORDS:
        if _mentions(text, keywords):
            return str(industry)
    return str(Industry.OTHER)


# Checked in order: 取締役部長 is an executive, 部長代理 a director, 課長 a manager.
_ROLE_KEYWORDS: list[tuple[str, tuple[str, ...]]] = [
    (
        Role.EXECUTIVE,
        (
            "社長",
            "代表",
            "取締役",
            "役員",
            "執行役",
            "会長",
            "専務",
            "常務",
            "ceo",
            "cto",
            "cfo",
            "coo",
            "cio",
            "cmo",
            "president",
            "chief",
            "owner",
            "founder",
        ),
    ),
    (
        Role.DIRECTOR,
        ("本部長", "事業部長", "部長", "局長", "director", "vp", "vice president", "head"),
    ),
    (
        Role.MANAGER,
        ("次長", "課長", "室長", "所長", "店長", "マネージャ", "マネジャ", "manager", "lead"),
    ),
    (Role.STAFF, ("係長", "主任", "担当", "社員", "スタッフ", "staff", "associate", "engineer")),
]


def role_from_title(value: object) -> str:
    """A `Role` for a job title (部長 → director, "Head of IT" → director); "" when empty."""
    text = nfkc(str(value or "")).strip().lower()
    if not text:
        return ""
    if text in Role.values:
        return text
    for role, keywords in _ROLE_KEYWORDS:
        if _mentions(text, keywords):
            return str(role)
    return str(Role.OTHER)


def prefecture_from_text(value: object) -> str:
    """東京 / 東京都 / an address starting with one → "東京都"; "" when none is named."""
    text = nfkc(str(value or "")).strip()
    if text in REGION_BY_PREFECTURE:
        return text
    return prefecture_from_address(text)


# The largest count the database's integer columns hold (employee counts): above it the
# INSERT failed with "integer out of range" (a 500 in the CSV upload).
MAX_COUNT = 2**31 - 1


def parse_count(value: object) -> int | None:
    """`1,200` / `約300名` / `100～499` (the lower bound) → int; None when empty."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        # Python's json reads Infinity and NaN; int() of them raised OverflowError (a
        # crash of the whole inbound event) or ValueError.
        raise ValueProblem(_("“%(value)s” is not a number.") % {"value": value})
    if isinstance(value, int | float):
        count = int(value) if value >= 0 else None
    else:
        text = nfkc(str(value)).replace(",", "").strip()
        if not text:
            return None
        match = re.search(r"\d+", text)
        if match is None:
            raise ValueProblem(_("“%(value)s” is not a number.") % {"value": value})
        count = int(match.group())
    if count is not None and count > MAX_COUNT:
        raise ValueProblem(_("“%(value)s” is too large a number.") % {"value": value})
    return count


_UNITS = {"兆": Decimal(10**12), "億": Decimal(10**8), "万": Decimal(10**4), "千": Decimal(10**3)}


def parse_yen(value: object) -> Decimal | None:
    """`12億5000万円` / `1,500,000,000` / 1.5e9 → yen; None when empty."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueProblem(_("“%(value)s” is not an amount of money.") % {"value": value})
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = nfkc(str(value)).replace(",", "").replace("円", "").replace("¥", "").strip()
    if not text:
        return None
    total = Decimal(0)
    rest = text
    for unit, factor in _UNITS.items():
        number, sep, rest_after = rest.partition(unit)
        if sep:
            try:
                total += Decimal(number.strip() or "0") * factor
            except InvalidOperation:
                raise ValueProblem(
                    _("“%(value)s” is not an amount of money.") % {"value": value}
                ) from None
            rest = rest_after
    rest = rest.strip()
    if rest:
        try:
            total += Decimal(rest)
        except InvalidOperation:
            raise ValueProblem(
                _("“%(value)s” is not an amount of money.") % {"value": value}
            ) from None
    return total


def revenue_band_from_amount(value: object) -> str:
    if isinstance(value, str) and value in RevenueBand.values:
        return value
    amount = parse_yen(value)
    if amount is None:
        return ""
    for limit, band in (
        (Decimal(10**8), RevenueBand.UNDER_100M),
        (Decimal(10**9), RevenueBand.FROM_100M),
        (Decimal(10**10), RevenueBand.FROM_1B),
        (Decimal(10**11), RevenueBand.FROM_10B),
    ):
        if amount < limit:
            return str(band)
    return str(RevenueBand.OVER_100B)


def domain_from_text(value: object) -> str:
    """`https://www.Example.co.jp/about` / `example.co.jp` → `example.co.jp`."""
    text = nfkc(str(value or "")).strip().lower()
    if not text:
        return ""
    if "@" in text and "/" not in text:
        text = text.rsplit("@", 1)[1]
    host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    return host.removeprefix("www.")


def split_full_name(value: object) -> tuple[str, str]:
    """(last, first). Japanese names are family name first; Latin ones given name first.

    A Japanese name without a space cannot be split reliably; it all goes to the family
    name rather than guessing.
    """
    text = " ".join(nfkc(str(value or "")).split())
    if not text:
        return "", ""
    parts = text.split(" ")
    if len(parts) == 1:
        return text, ""
    if text.isascii():
        return parts[-1], " ".join(parts[:-1])
    return parts[0], " ".join(parts[1:])
