"""The demo's past: leads handed to sales months ago, with the events that made them MQLs
(all dated before their handoff) and sales' verdicts, so the scoring studio's calibration,
threshold explorer and suggestions have a real shape to show.

Plain data, read by `load_demo`. Each profile is a kind of lead marketing sees often; its
verdicts are fixed by the lead's index (mod 10), so the demo reads the same every time:
leads that only browsed product pages were mostly turned down for want of budget, which is
what the suggestions pick up.
"""

from __future__ import annotations

# profile: (leads, events before the handoff as (kind, properties, times), who moved the
# lead to MQL, why, only companies of at least this many employees)
PROFILES: dict[str, tuple[int, list[tuple[str, dict, int]], str, str, int]] = {
    "browser": (
        40,
        [
            ("page_view", {"url": "/products/leadflow", "title": "製品紹介"}, 8),
            ("page_view", {"url": "/products/features", "title": "機能一覧"}, 8),
            ("email_open", {"campaign": "11月メールマガジン"}, 2),
        ],
        "scoring",
        "fit ≥ 30 and engagement ≥ 50",
        100,
    ),
    "seminar": (
        40,
        [
            ("seminar_attendance", {"seminar": "MQL設計入門ウェビナー"}, 2),
            ("document_download", {"document": "サービス紹介資料.pdf"}, 2),
            ("page_view", {"url": "/blog/bant", "title": "ブログ: BANT条件とは"}, 3),
            ("email_click", {"campaign": "セミナーご案内", "url": "/products/leadflow"}, 2),
        ],
        "scoring",
        "fit ≥ 30 and engagement ≥ 50",
        100,
    ),
    "pricing": (
        30,
        [
            ("pricing_page_view", {"url": "/pricing", "title": "料金プラン"}, 2),
            ("case_study_download", {"document": "導入事例集_製造業.pdf"}, 1),
            ("email_click", {"campaign": "新機能のお知らせ", "url": "/pricing"}, 3),
        ],
        "scoring",
        "fit ≥ 30 and engagement ≥ 50",
        100,
    ),
    # Business cards from a trade show, handed to sales in one batch by marketing.
    "trade_show": (
        40,
        [
            ("trade_show_visit", {"event": "展示会2026"}, 1),
            ("email_open", {"campaign": "セミナーご案内"}, 2),
        ],
        "marketer-review",
        "展示会リードを一括で引き渡し",
        0,
    ),
    "hand_raiser": (
        20,
        [
            ("consultation", {"seminar": "個別相談会"}, 1),
            ("page_view", {"url": "/blog/mql-sql-handoff", "title": "ブログ: MQLとSQLの違い"}, 2),
        ],
        "scoring",
        "consultation with fit ≥ 20",
        100,
    ),
}

# Sales' verdict by the lead's index mod 10: "won" (SQL → opportunity → customer), "sql",
# "lost" (SQL, then lost), or the rejection reason's code.
VERDICTS: dict[str, list[str]] = {
    "browser": ["won", "sql", *["no_budget"] * 6, "timing", "not_target"],
    "seminar": [
        "won",
        "won",
        "won",
        "lost",
        "sql",
        "sql",
        "timing",
        "timing",
        "no_budget",
        "competitor",
    ],
    "pricing": [
        "won",
        "won",
        "sql",
        "sql",
        "lost",
        "timing",
        "timing",
        "no_authority",
        "no_budget",
        "competitor",
    ],
    "trade_show": [
        "sql",
        "timing",
        "timing",
        "not_target",
        "no_authority",
        "no_authority",
        "timing",
        "not_target",
        "competitor",
        "no_budget",
    ],
    "hand_raiser": [
        "won",
        "sql",
        "sql",
        "lost",
        "sql",
        "timing",
        "no_authority",
        "competitor",
        "timing",
        "not_target",
    ],
}

# The rep's comment for each rejection reason used above.
COMMENTS = {
    "no_budget": "製品ページは見ているが、今期は予算がないとのこと。",
    "timing": "導入は来年度以降の検討。ナーチャリング継続をお願いします。",
    "no_authority": "情報収集段階の担当者。決裁者の紹介は難しいとのこと。",
    "competitor": "競合製品を昨年導入済み。契約更新は2年後。",
    "not_target": "個人事業主で対象外。",
}

# Handoffs spread over this many days before today (the oldest first).
SPAN_DAYS = (40, 330)
# Events come within this many days before the handoff.
LEAD_UP_DAYS = 10
