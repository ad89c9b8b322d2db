"""Japanese reference data: the 47 prefectures (JIS X 0401 order) and their regions, and
how a Japanese list is written."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class Region(models.TextChoices):
    HOKKAIDO = "hokkaido", _("Hokkaido")
    TOHOKU = "tohoku", _("Tohoku")
    KANTO = "kanto", _("Kanto")
    CHUBU = "chubu", _("Chubu")
    KINKI = "kinki", _("Kinki")
    CHUGOKU = "chugoku", _("Chugoku")
    SHIKOKU = "shikoku", _("Shikoku")
    KYUSHU = "kyushu", _("Kyushu and Okinawa")


# (Japanese name, region). The stored value is the Japanese name because that is what
# people type, what CSV exports contain and what addresses start with.
PREFECTURES: list[tuple[str, str]] = [
    ("北海道", Region.HOKKAIDO),
    ("青森県", Region.TOHOKU),
    ("岩手県", Region.TOHOKU),
    ("宮城県", Region.TOHOKU),
    ("秋田県", Region.TOHOKU),
    ("山形県", Region.TOHOKU),
    ("福島県", Region.TOHOKU),
    ("茨城県", Region.KANTO),
    ("栃木県", Region.KANTO),
    ("群馬県", Region.KANTO),
    ("埼玉県", Region.KANTO),
    ("千葉県", Region.KANTO),
    ("東京都", Region.KANTO),
    ("神奈川県", Region.KANTO),
    ("新潟県", Region.CHUBU),
    ("富山県", Region.CHUBU),
    ("石川県", Region.CHUBU),
    ("福井県", Region.CHUBU),
    ("山梨県", Region.CHUBU),
    ("長野県", Region.CHUBU),
    ("岐阜県", Region.CHUBU),
    ("静岡県", Region.CHUBU),
    ("愛知県", Region.CHUBU),
    ("三重県", Region.KINKI),
    ("滋賀県", Region.KINKI),
    ("京都府", Region.KINKI),
    ("大阪府", Region.KINKI),
    ("兵庫県", Region.KINKI),
    ("奈良県", Region.KINKI),
    ("和歌山県", Region.KINKI),
    ("鳥取県", Region.CHUGOKU),
    ("島根県", Region.CHUGOKU),
    ("岡山県", Region.CHUGOKU),
    ("広島県", Region.CHUGOKU),
    ("山口県", Region.CHUGOKU),
    ("徳島県", Region.SHIKOKU),
    ("香川県", Region.SHIKOKU),
    ("愛媛県", Region.SHIKOKU),
    ("高知県", Region.SHIKOKU),
    ("福岡県", Region.KYUSHU),
    ("佐賀県", Region.KYUSHU),
    ("長崎県", Region.KYUSHU),
    ("熊本県", Region.KYUSHU),
    ("大分県", Region.KYUSHU),
    ("宮崎県", Region.KYUSHU),
    ("鹿児島県", Region.KYUSHU),
    ("沖縄県", Region.KYUSHU),
]
PREFECTURE_CHOICES = [(name, name) for name, _region in PREFECTURES]
REGION_BY_PREFECTURE: dict[str, str] = {name: str(region) for name, region in PREFECTURES}


def region_for(prefecture: str) -> str:
    """The region of a prefecture name, or "" when it is empty or unknown."""
    return REGION_BY_PREFECTURE.get(prefecture, "")


def prefecture_from_address(address: str) -> str:
    """The prefecture an address starts with (Japanese addresses lead with it), or ""."""
    text = address.strip().lstrip("〒0123456789-ー－ 　")
    for name, _region in PREFECTURES:
        if text.startswith(name):
            return name
    # People often drop 都/府/県 ("大阪市…" is rare, "東京" / "大阪府" common); match the stem.
    for name, _region in PREFECTURES:
        stem = name if name == "北海道" else name[:-1]
        if text.startswith(stem):
            return name
    return ""


def join_words(items: Iterable[object]) -> str:
    """A list as the UI language writes it: 「製造、IT」 in Japanese, "manufacturing, IT" in
    English. The separator is the msgid ", " that Django's own timesince uses too, so
    naturaltime reads 「1ヶ月、3週間前」 from the same one translation."""
    return gettext(", ").join(str(item) for item in items)
