"""Business cards from trade shows, exported as CSV by card-scanning services."""

import datetime as dt
import io

import pytest
from django.core.management import call_command

from integrations.services import leads_import_csv
from leadflow.models import EngagementEvent, Lead

# The column layout of a common card-scanning export (Eight-style), as Excel saves it.
EIGHT_STYLE = (
    "会社名,部署名,役職,姓,名,e-mail,郵便番号,住所,TEL会社,TEL部門,TEL直通,Fax,携帯電話,URL,名刺交換日\r\n"
    "株式会社サンプル,情報システム部,部長,山田,太郎,Taro.Yamada@sample.example.jp,100-0005,"
    "東京都千代田区丸の内1-1-1,03-1111-2222,03-1111-3333,,03-1111-4444,090-1234-5678,"
    "https://sample.example.jp,2026/11/05\r\n"
)
# Sansan-style: one name column with a kana column beside it.
SANSAN_STYLE = (
    "会社名,部署名,役職,氏名,氏名（カナ）,メールアドレス,住所,電話番号,携帯電話,名刺交換日\r\n"
    "㈱モミジ商事,営業本部,課長,佐藤 花子,サトウ ハナコ,hanako@momiji.example.jp,"
    "大阪府大阪市北区梅田1-1,06-6123-4567,,2026年11月6日\r\n"
)


@pytest.mark.django_db
def test_eight_style_cp932_export_with_a_trade_show():
    report = leads_import_csv(
        data=EIGHT_STYLE.encode("cp932"), source="展示会:CEATEC 2026", event="CEATEC 2026"
    )

    assert report.errors == []
    assert report.encoding == "cp932"
    assert report.created == 1
    lead = Lead.objects.get()
    assert lead.email == "taro.yamada@sample.example.jp"
    assert (lead.last_name, lead.first_name) == ("山田", "太郎")
    assert (lead.department, lead.job_title, lead.role) == ("情報システム部", "部長", "director")
    assert lead.phone == "03-1111-3333"  # the department line, listed before the switchboard
    assert lead.source == "展示会:CEATEC 2026"
    assert lead.company.name == "株式会社サンプル"
    assert lead.company.prefecture == "東京都"
    assert lead.company.region == "kanto"
    assert lead.attributes["postal_code"] == "100-0005"
    visit = EngagementEvent.objects.get(lead=lead)
    assert visit.kind == "trade_show_visit"
    assert visit.properties == {"event": "CEATEC 2026"}
    assert visit.occurred_at == dt.datetime(2026, 11, 5, 3, 0, tzinfo=dt.UTC)  # 12:00 JST


@pytest.mark.django_db
def test_sansan_style_utf8_splits_name_and_kana_and_finds_the_prefecture():
    report = leads_import_csv(data=SANSAN_STYLE.encode("utf-8-sig"), event="関西DXフェア")

    assert report.errors == []
    lead = Lead.objects.get()
    assert (lead.last_name, lead.first_name) == ("佐藤", "花子")
    assert (lead.last_name_kana, lead.first_name_kana) == ("サトウ", "ハナコ")
    assert lead.company.name == "(株)モミジ商事"
    assert lead.company.prefecture == "大阪府"
    assert lead.phone == "06-6123-4567"
    assert EngagementEvent.objects.get().occurred_at.date() == dt.date(2026, 11, 6)


@pytest.mark.django_db
def test_reimporting_the_same_cards_records_each_visit_once():
    data = EIGHT_STYLE.encode("cp932")
    leads_import_csv(data=data, event="CEATEC 2026")
    again = leads_import_csv(data=data, event="CEATEC 2026")

    assert again.created == 0
    assert Lead.objects.count() == 1
    assert EngagementEvent.objects.count() == 1


@pytest.mark.django_db
def test_card_of_a_company_we_know_under_another_spelling_joins_that_company():
    leads_import_csv(data=EIGHT_STYLE.encode("cp932"))
    other = EIGHT_STYLE.replace("株式会社サンプル", "(株)サンプル").replace("Taro.Yamada", "jiro")
    leads_import_csv(data=other.encode("cp932"))

    companies = {lead.company_id for lead in Lead.objects.all()}
    assert len(companies) == 1


@pytest.mark.django_db
def test_import_leads_command_with_event_tags_the_source(tmp_path):
    path = tmp_path / "cards.csv"
    path.write_bytes(EIGHT_STYLE.encode("cp932"))
    out = io.StringIO()

    call_command("import_leads", str(path), "--event", "CEATEC 2026", stdout=out)

    assert "created: 1" in out.getvalue()
    assert Lead.objects.get().source == "展示会:CEATEC 2026"
    assert EngagementEvent.objects.get().kind == "trade_show_visit"


@pytest.mark.django_db
def test_dry_run_with_event_writes_nothing():
    report = leads_import_csv(data=EIGHT_STYLE.encode("cp932"), event="X", dry_run=True)
    assert report.created == 1
    assert Lead.objects.count() == 0
    assert EngagementEvent.objects.count() == 0


@pytest.mark.django_db
def test_an_empty_direct_line_falls_back_to_the_next_number_on_the_card():
    data = (
        "会社名,姓,名,e-mail,TEL会社,TEL部門,TEL直通,携帯電話\r\n"
        "株式会社A,田中,一郎,a@a.example.jp,03-1000-0000,,,090-1000-0000\r\n"
        "株式会社B,田中,二郎,b@b.example.jp,,,,090-2000-0000\r\n"
        "株式会社C,田中,三郎,c@c.example.jp,03-3000-0000,03-3000-1111,03-3000-2222,\r\n"
    )
    report = leads_import_csv(data=data.encode("cp932"))

    assert report.errors == []
    phones = dict(Lead.objects.values_list("email", "phone"))
    assert phones == {
        "a@a.example.jp": "03-1000-0000",
        "b@b.example.jp": "090-2000-0000",
        "c@c.example.jp": "03-3000-2222",
    }
