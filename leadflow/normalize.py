"""Normalisation of what people type, shared by intake, CSV import and the admin.

Values are stored as the sender gave them (after NFKC); the *keys* below are what
matching compares: two spellings of one e-mail, phone, company or person give one key.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import phonenumbers


def has_nul(value: Any) -> bool:
    """Whether a JSON value holds a NUL character in any string or key (PostgreSQL's text
    and jsonb refuse it)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(has_nul(key) or has_nul(item) for key, item in value.items())
    return False


def nfkc(value: str | None) -> str:
    """Full-width letters and digits to half-width, half-width kana to full-width,
    ㈱ to (株): the one Unicode form everything else starts from."""
    return unicodedata.normalize("NFKC", value or "")


def normalize_email(value: str | None) -> str:
    """`　Ｔａｒｏ@Example.CO.JP ` → `taro@example.co.jp`: the form e-mails are matched in."""
    return nfkc(value).strip().lower()


# ---- phones -------------------------------------------------------------------------

_EXTENSION = re.compile(r"(内線|ext\.?|x)\s*\d+\s*$", re.IGNORECASE)


def _parse_phone(value: str | None) -> phonenumbers.PhoneNumber | None:
    text = _EXTENSION.sub("", nfkc(value)).strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, "JP")
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def phone_key(value: str | None) -> str:
    """E.164 (`+81312345678`) for a valid number, else "" (nothing to match on)."""
    number = _parse_phone(value)
    if number is None:
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(value: str | None) -> str:
    """How a Japanese user writes the number (`03-1234-5678`; foreign numbers in
    international form); text that is not a valid number comes back as NFKC text."""
    number = _parse_phone(value)
    if number is None:
        return nfkc(value).strip()
    if number.country_code == 81:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


# ---- companies ----------------------------------------------------------------------

# Japanese legal forms, matched anywhere (after NFKC, so ㈱ and （株） are already (株)).
_JA_LEGAL_FORMS = re.compile(
    r"株式会社|有限会社|合同会社|合資会社|合名会社|一般社団法人|一般財団法人|"
    r"\((?:株|有|同|資|名|社|財)\)"
)
# Western legal forms, matched as whole words at the start or end of the name.
_EN_LEGAL_FORMS = re.compile(
    r"(?:^|[\s,])(?:co\.?,?\s*ltd\.?|company\s+limited|co\.?|inc\.?|incorporated|"
    r"k\.?\s?k\.?|g\.?\s?k\.?|corp\.?|corporation|ltd\.?|limited|llc|l\.l\.c\.?|plc)"
    r"(?=$|[\s,])"
)
_NOISE = re.compile(r"[\s,.・･\-‐―'\"&/()]+")


def company_key(name: str | None) -> str:
    """`株式会社サンプル`, `(株)サンプル`, `㈱サンプル`, `サンプル株式会社` → `サンプル`;
    `Sample Co., Ltd.`, `SAMPLE K.K.`, `Ｓａｍｐｌｅ Inc.` → `sample`."""
    text = nfkc(name).casefold().strip()
    text = _JA_LEGAL_FORMS.sub(" ", text)
    previous = None
    while previous != text:  # "Sample Co., Ltd. Inc." loses each form in turn
        previous = text
        text = _EN_LEGAL_FORMS.sub(" ", text).strip(" ,")
    return _NOISE.sub("", text)


# ---- people -------------------------------------------------------------------------


def name_key(last_name: str | None, first_name: str | None) -> str:
    """Width-, case- and space-insensitive full name for matching (kanji, kana or romaji
    are kept as given: 山田太郎 and ヤマダタロウ are different keys)."""
    return _NOISE.sub("", nfkc(f"{last_name or ''}{first_name or ''}").casefold())


# ---- search -------------------------------------------------------------------------

# Katakana (ァ U+30A1 … ヶ U+30F6) sit 0x60 above their hiragana; folding one onto the
# other makes やまだ find ヤマダ (and ﾔﾏﾀﾞ, which NFKC has already made ヤマダ).
_KATAKANA_TO_HIRAGANA = {code: code - 0x60 for code in range(0x30A1, 0x30F7)}


def search_fold(value: str | None) -> str:
    """What search compares: NFKC (full-width digits and letters to half-width), case-
    folded, katakana as hiragana, without spaces and punctuation (so 03-1234-5678 and
    ０３１２３４５６７８ read the same). Applied to the stored keys and to what is typed."""
    text = nfkc(value).casefold().translate(_KATAKANA_TO_HIRAGANA)
    return _NOISE.sub("", text)


def lead_search_key(
    *,
    last_name: str | None,
    first_name: str | None,
    last_name_kana: str | None,
    first_name_kana: str | None,
    email: str | None,
    phone: str | None,
) -> str:
    """The lead's stored search key: name, kana, e-mail and phone folded by search_fold,
    one word each, separated by spaces (a typed term has none, so it never matches across
    two fields). The phone is there as written and in E.164 digits (+81 3… as 813…)."""
    parts = [
        search_fold(f"{last_name or ''}{first_name or ''}"),
        search_fold(f"{last_name_kana or ''}{first_name_kana or ''}"),
        search_fold(email),
        search_fold(phone),
        phone_key(phone).lstrip("+"),
    ]
    return " ".join(part for part in parts if part)


def company_search_key(name: str | None, name_kana: str | None = None) -> str:
    """The company's stored search key: its name and kana reading, folded."""
    return " ".join(part for part in (search_fold(name), search_fold(name_kana)) if part)
