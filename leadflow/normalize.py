"""Normalisation of what people type, shared by intake, CSV import and the admin."""

from __future__ import annotations

import unicodedata


def nfkc(value: str) -> str:
    """Full-width letters and digits to half-width, half-width kana to full-width."""
    return unicodedata.normalize("NFKC", value or "")


def normalize_email(value: str) -> str:
    """`　Ｔａｒｏ@Example.CO.JP ` → `taro@example.co.jp`: the form emails are matched in."""
    return nfkc(value).strip().lower()
