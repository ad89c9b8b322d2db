"""Believable Japanese B2B demo data (fictional companies and people)."""

from __future__ import annotations

DEMO_PASSWORD = "leadflow-demo"

# username, last name, first name, role group (None = superuser), is_staff
USERS = [
    # No family name: the admin greets with the given name ("ようこそ 管理者").
    ("admin", "", "管理者", None, True),
    ("marketer", "山本", "さくら", "Marketing", True),
    ("manager", "高橋", "健一", "Sales manager", True),
    ("rep1", "佐藤", "大輔", "Sales rep", False),
    ("rep2", "鈴木", "美咲", "Sales rep", False),
    ("rep3", "田中", "翔", "Sales rep", False),
]

# name, kana, domain, employees, revenue band, industry, prefecture
COMPANIES = [
    (
        "株式会社サクラ精機",
        "サクラセイキ",
        "sakura-seiki.example.jp",
        850,
        "10b_100b",
        "manufacturing",
        "愛知県",
    ),
    (
        "みどり物流株式会社",
        "ミドリブツリュウ",
        "midori-logi.example.jp",
        420,
        "1b_10b",
        "logistics",
        "埼玉県",
    ),
    (
        "株式会社ひかりシステムズ",
        "ヒカリシステムズ",
        "hikari-sys.example.jp",
        230,
        "1b_10b",
        "it",
        "東京都",
    ),
    (
        "青空フィナンシャル株式会社",
        "アオゾラフィナンシャル",
        "aozora-fin.example.jp",
        1800,
        "over_100b",
        "finance",
        "東京都",
    ),
    (
        "株式会社なにわ商事",
        "ナニワショウジ",
        "naniwa-shoji.example.jp",
        95,
        "100m_1b",
        "retail",
        "大阪府",
    ),
    (
        "北斗建設株式会社",
        "ホクトケンセツ",
        "hokuto-kensetsu.example.jp",
        640,
        "10b_100b",
        "construction",
        "北海道",
    ),
    (
        "株式会社博多メディカル",
        "ハカタメディカル",
        "hakata-med.example.jp",
        310,
        "1b_10b",
        "healthcare",
        "福岡県",
    ),
    (
        "株式会社みなとテック",
        "ミナトテック",
        "minato-tech.example.jp",
        58,
        "100m_1b",
        "it",
        "神奈川県",
    ),
    (
        "瀬戸内マテリアル株式会社",
        "セトウチマテリアル",
        "setouchi-mat.example.jp",
        1200,
        "10b_100b",
        "manufacturing",
        "広島県",
    ),
    (
        "株式会社杜の都ソリューションズ",
        "モリノミヤコソリューションズ",
        "morinomiyako.example.jp",
        140,
        "1b_10b",
        "services",
        "宮城県",
    ),
    (
        "京都文化教育株式会社",
        "キョウトブンカキョウイク",
        "kyoto-edu.example.jp",
        75,
        "100m_1b",
        "education",
        "京都府",
    ),
    (
        "株式会社富士ロジスティクス",
        "フジロジスティクス",
        "fuji-logistics.example.jp",
        2600,
        "over_100b",
        "logistics",
        "静岡県",
    ),
    (
        "株式会社アルプス電工",
        "アルプスデンコウ",
        "alps-denko.example.jp",
        520,
        "10b_100b",
        "manufacturing",
        "長野県",
    ),
    (
        "四国ヘルスケア株式会社",
        "シコクヘルスケア",
        "shikoku-hc.example.jp",
        180,
        "1b_10b",
        "healthcare",
        "香川県",
    ),
    (
        "株式会社なごみデザイン",
        "ナゴミデザイン",
        "nagomi-design.example.jp",
        22,
        "under_100m",
        "services",
        "東京都",
    ),
    (
        "株式会社ちくし銀行サービス",
        "チクシギンコウサービス",
        "chikushi-bs.example.jp",
        900,
        "10b_100b",
        "finance",
        "福岡県",
    ),
    (
        "株式会社ほくりく製薬",
        "ホクリクセイヤク",
        "hokuriku-pharma.example.jp",
        330,
        "1b_10b",
        "healthcare",
        "富山県",
    ),
    (
        "株式会社横浜クラウド",
        "ヨコハマクラウド",
        "yokohama-cloud.example.jp",
        160,
        "1b_10b",
        "it",
        "神奈川県",
    ),
    (
        "沖縄リゾート開発株式会社",
        "オキナワリゾートカイハツ",
        "okinawa-resort.example.jp",
        270,
        "1b_10b",
        "construction",
        "沖縄県",
    ),
    (
        "株式会社千葉フードサービス",
        "チバフードサービス",
        "chiba-food.example.jp",
        1100,
        "10b_100b",
        "retail",
        "千葉県",
    ),
]

# (kanji, kana, romaji)
LAST_NAMES = [
    ("佐藤", "サトウ", "sato"),
    ("鈴木", "スズキ", "suzuki"),
    ("高橋", "タカハシ", "takahashi"),
    ("田中", "タナカ", "tanaka"),
    ("伊藤", "イトウ", "ito"),
    ("渡辺", "ワタナベ", "watanabe"),
    ("山本", "ヤマモト", "yamamoto"),
    ("中村", "ナカムラ", "nakamura"),
    ("小林", "コバヤシ", "kobayashi"),
    ("加藤", "カトウ", "kato"),
    ("吉田", "ヨシダ", "yoshida"),
    ("山田", "ヤマダ", "yamada"),
    ("佐々木", "ササキ", "sasaki"),
    ("松本", "マツモト", "matsumoto"),
    ("井上", "イノウエ", "inoue"),
    ("木村", "キムラ", "kimura"),
    ("林", "ハヤシ", "hayashi"),
    ("清水", "シミズ", "shimizu"),
    ("山口", "ヤマグチ", "yamaguchi"),
    ("森", "モリ", "mori"),
]
FIRST_NAMES = [
    ("大翔", "ヒロト", "hiroto"),
    ("蓮", "レン", "ren"),
    ("悠真", "ユウマ", "yuma"),
    ("陽菜", "ヒナ", "hina"),
    ("結衣", "ユイ", "yui"),
    ("美咲", "ミサキ", "misaki"),
    ("健太", "ケンタ", "kenta"),
    ("直樹", "ナオキ", "naoki"),
    ("由美", "ユミ", "yumi"),
    ("恵子", "ケイコ", "keiko"),
    ("拓也", "タクヤ", "takuya"),
    ("亮", "リョウ", "ryo"),
    ("彩", "アヤ", "aya"),
    ("誠", "マコト", "makoto"),
    ("真由美", "マユミ", "mayumi"),
    ("翔太", "ショウタ", "shota"),
    ("智子", "トモコ", "tomoko"),
    ("大輔", "ダイスケ", "daisuke"),
]

# (department, job title, role)
POSITIONS = [
    ("経営企画部", "代表取締役社長", "executive"),
    ("経営企画部", "取締役", "executive"),
    ("情報システム部", "部長", "director"),
    ("営業本部", "本部長", "director"),
    ("マーケティング部", "課長", "manager"),
    ("総務部", "課長", "manager"),
    ("情報システム部", "係長", "manager"),
    ("営業部", "主任", "staff"),
    ("総務部", "担当", "staff"),
    ("人事部", "担当", "staff"),
]

PAGES = [
    ("/products/leadflow", "製品紹介"),
    ("/products/features", "機能一覧"),
    ("/blog/mql-sql-handoff", "ブログ: MQLとSQLの違い"),
    ("/blog/bant", "ブログ: BANT条件とは"),
    ("/cases/manufacturing", "導入事例一覧"),
    ("/company/about", "会社概要"),
]
DOCUMENTS = ["サービス紹介資料.pdf", "MA×SFA連携ホワイトペーパー.pdf", "導入事例集_製造業.pdf"]
SEMINARS = ["MQL設計入門ウェビナー", "営業とマーケの連携セミナー（東京）", "個別相談会"]
EMAILS = ["11月メールマガジン", "セミナーご案内", "新機能のお知らせ"]

# (rejection reason code from handoff's seed, the rep's comment for marketing)
REJECTIONS = [
    ("not_reachable", "3回架電しましたが不在。メールも返信なし。"),
    ("no_budget", "今期は予算がないとのこと。来期の予算策定時期（2月）に再アプローチ希望。"),
    ("no_authority", "情報収集段階の担当者。決裁者の紹介は難しいとのこと。"),
    ("timing", "導入は来年度以降の検討。ナーチャリング継続をお願いします。"),
    ("competitor", "競合製品を昨年導入済み。契約更新は2年後。"),
]
ACTIVITY_NOTES = [
    "初回架電。担当者不在のため折り返し依頼。",
    "資料送付済み。来週に打ち合わせ候補日を提示。",
    "課題ヒアリング：MAとSFAの二重管理に困っている。",
    "オンライン商談を設定。",
    "メールでフォローアップ。",
]
LOST_REASONS = ["価格で競合に負けた", "社内稟議が通らなかった"]
