"""The default scoring model, from the article's tables (属性スコア / 行動スコア / MQL閾値).

Plain data, read by the data migration that creates published version 1; keep it free
of model imports so the migration stays valid when the models change.

Fit (属性スコア): company size 0–20 (employees or revenue), industry 0–15 (target
industries), role/title 0–20 (decision maker or influencer), region 0–5 (areas we serve).
Engagement (行動スコア): page view 1–5 per view (product pages higher), pricing page 15,
document download 10–20 (case studies higher), seminar 15–25 (individual consultation
highest), e-mail open 1 / click 3. Page views are capped per day so a crawler-like
session cannot make an MQL alone; behaviour loses half its weight after 90 days.
MQL: fit ≥ 30 AND engagement ≥ 50; a consultation request with fit ≥ 20 is an MQL at once.
"""

MODEL = {
    "name": "記事の標準モデル / Article default",
    "notes": "Created from the scoring tables of the lead handoff article.",
    "fit_threshold": 30,
    "engagement_threshold": 50,
    "hand_raiser_kind": "consultation",
    "hand_raiser_min_fit": 20,
    "recycle_cooldown_days": 30,
}

# (key, name, min, max)
CATEGORIES = [
    ("size", "企業規模 / Company size", 0, 20),
    ("industry", "業種 / Industry", 0, 15),
    ("role", "役職・部門 / Role", 0, 20),
    ("region", "地域 / Region", 0, 5),
]

# (category key or None, label, field, operator, value, min, max, points)
FIT_RULES = [
    ("size", "従業員1,000名以上", "company.employee_count", "between", "", 1000, None, 20),
    ("size", "従業員300〜999名", "company.employee_count", "between", "", 300, 999, 15),
    ("size", "従業員100〜299名", "company.employee_count", "between", "", 100, 299, 10),
    ("size", "従業員30〜99名", "company.employee_count", "between", "", 30, 99, 5),
    (
        "size",
        "売上100億円以上",
        "company.revenue_band",
        "one_of",
        "10b_100b\nover_100b",
        None,
        None,
        10,
    ),
    ("size", "売上10億〜100億円", "company.revenue_band", "equals", "1b_10b", None, None, 5),
    (
        "industry",
        "重点業種 (製造・IT)",
        "company.industry",
        "one_of",
        "manufacturing\nit",
        None,
        None,
        15,
    ),
    (
        "industry",
        "準重点業種",
        "company.industry",
        "one_of",
        "finance\nlogistics\nhealthcare",
        None,
        None,
        10,
    ),
    (
        "industry",
        "その他の対象業種",
        "company.industry",
        "one_of",
        "retail\nconstruction\nservices",
        None,
        None,
        5,
    ),
    ("role", "経営層", "role", "equals", "executive", None, None, 20),
    ("role", "部長クラス", "role", "equals", "director", None, None, 15),
    ("role", "課長クラス", "role", "equals", "manager", None, None, 10),
    ("role", "担当者", "role", "equals", "staff", None, None, 3),
    ("role", "役職名に「取締役」", "job_title", "contains", "取締役", None, None, 20),
    ("role", "役職名に「部長」", "job_title", "contains", "部長", None, None, 15),
    ("role", "役職名に「課長」", "job_title", "contains", "課長", None, None, 10),
    (
        "region",
        "対応エリア (関東・中部・近畿)",
        "company.region",
        "one_of",
        "kanto\nchubu\nkinki",
        None,
        None,
        5,
    ),
    (None, "フリーメール (gmail.com)", "email", "contains", "@gmail.com", None, None, -10),
    (None, "フリーメール (yahoo.co.jp)", "email", "contains", "@yahoo.co.jp", None, None, -10),
]

HALF_LIFE_DAYS = 90

# (label, kind, property key, operator, value, points, cap, cap period, half-life days)
ENGAGEMENT_RULES = [
    ("料金ページ閲覧", "page_view", "url", "contains", "/pricing", 15, None, "day", HALF_LIFE_DAYS),
    ("製品ページ閲覧", "page_view", "url", "contains", "/product", 5, 10, "day", HALF_LIFE_DAYS),
    ("Webページ閲覧", "page_view", "", "equals", "", 1, 10, "day", HALF_LIFE_DAYS),
    ("料金ページ閲覧", "pricing_page_view", "", "equals", "", 15, None, "day", HALF_LIFE_DAYS),
    (
        "導入事例ダウンロード",
        "case_study_download",
        "",
        "equals",
        "",
        20,
        None,
        "day",
        HALF_LIFE_DAYS,
    ),
    ("資料ダウンロード", "document_download", "", "equals", "", 10, None, "day", HALF_LIFE_DAYS),
    ("個別相談会", "consultation", "", "equals", "", 25, None, "day", HALF_LIFE_DAYS),
    ("セミナー参加", "seminar_attendance", "", "equals", "", 15, None, "day", HALF_LIFE_DAYS),
    # A card exchanged at a trade show (展示会) is a seminar-like touch in Japanese B2B.
    ("展示会で名刺交換", "trade_show_visit", "", "equals", "", 15, None, "day", HALF_LIFE_DAYS),
    ("メールクリック", "email_click", "", "equals", "", 3, None, "day", HALF_LIFE_DAYS),
    ("メール開封", "email_open", "", "equals", "", 1, 3, "day", HALF_LIFE_DAYS),
    ("フォーム送信", "form_submit", "", "equals", "", 5, None, "day", HALF_LIFE_DAYS),
    ("配信停止", "unsubscribe", "", "equals", "", -20, None, "day", None),
]
