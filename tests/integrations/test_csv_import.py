"""CSV import from Excel: encodings, Japanese and English headers, row report, re-import."""

from __future__ import annotations

import codecs
import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.cache import caches
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import translation

from integrations import services
from integrations.csv_previews import csv_preview_keep, csv_preview_take
from integrations.services import leads_import_csv
from leadflow.models import Company, Lead
from tests.factories import LeadFactory, UserFactory

pytestmark = pytest.mark.django_db

JAPANESE = (
    "メールアドレス,会社名,氏名,役職,部署,電話番号,従業員数,業種,住所,備考\r\n"
    "Taro.Yamada@Example.co.jp,株式会社サンプル,山田　太郎,営業部長,営業部,03-1234-5678,"
    '"1,200",製造業,東京都千代田区丸の内1-1-1,展示会\r\n'
    "hanako@example.jp,髙橋商事①,佐藤 花子,代表取締役,,06-0000-0000,約50名,卸売業,"
    "大阪市北区梅田1-1,\r\n"
)
ENGLISH = (
    "Email,Company,Last Name,First Name,Job Title,Department,Phone,Employees,Industry,"
    "Prefecture\n"
    "ken@example.com,Acme KK,Suzuki,Ken,IT Manager,IT,090-1111-2222,300,Software,神奈川県\n"
)


def test_utf8_with_bom_and_japanese_headers():
    report = leads_import_csv(data=codecs.BOM_UTF8 + JAPANESE.encode("utf-8"))

    assert report.encoding == "utf-8-sig"
    assert (report.rows, report.created, report.errors) == (2, 2, [])
    assert report.ignored_columns == ["備考"]
    taro = Lead.objects.get(email="taro.yamada@example.co.jp")
    assert (taro.last_name, taro.first_name, taro.job_title, taro.role) == (
        "山田",
        "太郎",
        "営業部長",
        "director",
    )
    assert (taro.department, taro.phone, taro.source) == ("営業部", "03-1234-5678", "csv")
    assert taro.attributes["address"] == "東京都千代田区丸の内1-1-1"
    company = taro.company
    assert (company.name, company.employee_count, company.industry) == (
        "株式会社サンプル",
        1200,
        "manufacturing",
    )
    assert (company.prefecture, company.region) == ("東京都", "kanto")
    hanako = Lead.objects.get(email="hanako@example.jp")
    assert (hanako.last_name, hanako.first_name, hanako.role) == ("佐藤", "花子", "executive")
    assert hanako.company.name == "髙橋商事1"  # NFKC: ① → 1
    assert (hanako.company.employee_count, hanako.company.industry) == (50, "retail")
    assert hanako.company.prefecture == "大阪府"


def test_cp932_from_excel_is_detected():
    data = JAPANESE.encode("cp932")  # 髙 and ① exist in CP932 only, not in Shift_JIS

    report = leads_import_csv(data=data)

    assert report.encoding == "cp932"
    assert report.created == 2
    assert Lead.objects.get(email="hanako@example.jp").company.name == "髙橋商事1"


def test_shift_jis_file_is_read():
    text = "メールアドレス,姓,名,セイ,メイ\r\nsato@example.jp,佐藤,一郎,サトウ,イチロウ\r\n"

    report = leads_import_csv(data=text.encode("shift_jis"))

    lead = Lead.objects.get(email="sato@example.jp")
    assert report.encoding == "cp932"  # tried first; decodes Shift_JIS identically
    assert (lead.last_name_kana, lead.first_name_kana) == ("サトウ", "イチロウ")


def test_utf8_without_bom_and_english_headers():
    report = leads_import_csv(data=ENGLISH.encode(), source="expo-2026")

    assert (report.encoding, report.created) == ("utf-8", 1)
    lead = Lead.objects.get(email="ken@example.com")
    assert (lead.last_name, lead.first_name, lead.role, lead.source) == (
        "Suzuki",
        "Ken",
        "manager",
        "expo-2026",
    )
    assert (lead.company.industry, lead.company.prefecture) == ("it", "神奈川県")


def test_each_bad_row_is_reported_with_its_line_and_the_rest_imported():
    text = (
        "email,company,employees\n"
        "ok@example.jp,A社,10\n"
        ",B社,20\n"
        "not-an-address,C社,30\n"
        "count@example.jp,D社,many\n"
        "\n"
        "last@example.jp,E社,40\n"
    )

    report = leads_import_csv(data=text.encode())

    assert report.errors == [
        (3, "No e-mail address."),
        (4, "“not-an-address” is not a valid e-mail address."),
        (5, "“many” is not a number."),
    ]
    assert (report.rows, report.created) == (5, 2)
    assert set(Lead.objects.values_list("email", flat=True)) == {"ok@example.jp", "last@example.jp"}


def test_the_row_report_is_in_the_users_language():
    # The admin's import page shows these lines to a Japanese marketer: no English in them.
    text = "メールアドレス,会社名,従業員数,売上\nnot-an-address,C社,30,\nok@example.jp,D社,多数,\n"
    text += "yen@example.jp,E社,10,よくわからない\n"

    with translation.override("ja"):
        report = leads_import_csv(data=text.encode("cp932"), dry_run=True)

    assert report.errors == [
        (2, "「not-an-address」は有効なメールアドレスではありません。"),
        (3, "「多数」は数値ではありません。"),
        (4, "「よくわからない」は金額ではありません。"),
    ]


def test_importing_the_same_file_again_changes_nothing():
    data = JAPANESE.encode("utf-8")
    leads_import_csv(data=data)

    again = leads_import_csv(data=data)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert Lead.objects.count() == 2
    assert Company.objects.count() == 2


def test_reimport_with_a_changed_cell_updates_the_lead():
    leads_import_csv(data=ENGLISH.encode())

    report = leads_import_csv(data=ENGLISH.replace("IT Manager", "CTO").encode())

    assert (report.created, report.updated) == (0, 1)
    assert Lead.objects.get().role == "executive"


def test_dry_run_writes_nothing_and_says_what_would_happen():
    LeadFactory(email="hanako@example.jp")
    companies = Company.objects.count()

    report = leads_import_csv(data=JAPANESE.encode("cp932"), dry_run=True)

    assert (report.dry_run, report.created, report.updated) == (True, 1, 1)
    assert list(Lead.objects.values_list("email", flat=True)) == ["hanako@example.jp"]
    assert Company.objects.count() == companies


def test_a_file_without_an_email_column_is_refused_whole():
    report = leads_import_csv(data="会社名,氏名\nA社,山田\n".encode())

    assert report.rows == 0
    assert report.errors[0][0] == 0
    assert report.errors[0][1].startswith("No e-mail column")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04rest-of-a-zip", "This is an Excel workbook (.xlsx); save it as CSV first."),
        (b"\x00\x01\x02", "This is not a text file; save it as CSV."),
        (b"", "The file is empty."),
    ],
)
def test_files_that_are_not_csv_are_refused(data, message):
    assert leads_import_csv(data=data).errors == [(0, message)]


def test_each_imported_lead_is_scored(monkeypatch):
    seen: list[tuple[str, list, bool, bool]] = []
    monkeypatch.setattr(
        services,
        "lead_score_changes",
        lambda *, lead, events, attributes_changed, lead_created, apply_policy: seen.append(
            (lead.email, list(events), lead_created, apply_policy)
        ),
    )

    leads_import_csv(data=ENGLISH.encode())

    # One row: its MQL (if any) follows in the row's transaction, not in a wave.
    assert seen == [("ken@example.com", [], True, True)]


def test_import_leads_command(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes(JAPANESE.encode("cp932"))
    out, err = StringIO(), StringIO()

    call_command("import_leads", str(path), "--source", "excel", stdout=out, stderr=err)

    assert "Encoding: cp932" in out.getvalue()
    assert "Rows: 2; created: 2; updated: 0; unchanged: 0; errors: 0" in out.getvalue()
    assert set(Lead.objects.values_list("source", flat=True)) == {"excel"}


def test_import_leads_command_dry_run(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes(ENGLISH.encode())
    out = StringIO()

    call_command("import_leads", str(path), "--dry-run", stdout=out)

    assert "would be created: 1" in out.getvalue()
    assert "Dry run: nothing was written." in out.getvalue()
    assert not Lead.objects.exists()


def test_import_leads_command_with_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_leads", str(tmp_path / "missing.csv"))


def test_admin_upload_page_imports_and_reports(client, admin_pages):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    upload = SimpleUploadedFile("leads.csv", JAPANESE.encode("cp932"), content_type="text/csv")

    response = client.post(
        "/admin/integrations/source/import-csv/",
        {"file": upload, "source": "excel", "dry_run": ""},
    )

    assert response.status_code == 200
    assert response.context["report"].created == 2
    assert Lead.objects.count() == 2
    assert "cp932" in response.content.decode()


def test_admin_upload_page_needs_lead_permissions(client):
    staff = UserFactory(is_staff=True)
    client.force_login(staff)

    response = client.get("/admin/integrations/source/import-csv/")

    assert response.status_code == 403


def test_a_count_too_large_for_the_database_is_a_row_error_not_a_500(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    data = (
        "メールアドレス,会社名,従業員数\r\n"
        "big@example.jp,株式会社ビッグ,99999999999999999999999\r\n"
        "ok@example.jp,株式会社オーケー,300\r\n"
    ).encode("cp932")

    response = client.post(
        "/admin/integrations/source/import-csv/",
        {"file": SimpleUploadedFile("cards.csv", data), "source": "csv"},
    )

    assert response.status_code == 200
    assert response.context["report"].errors == [
        (2, "“99999999999999999999999” is too large a number.")
    ]
    assert list(Lead.objects.values_list("email", flat=True)) == ["ok@example.jp"]


def test_a_card_exchanged_in_the_far_future_is_a_row_error_not_a_500():
    data = (
        "メールアドレス,名刺交換日\r\nlate@example.jp,9999/12/31\r\nok@example.jp,2026/11/05\r\n"
    ).encode("cp932")

    report = leads_import_csv(data=data, event="CEATEC 2026")

    assert report.errors == [(2, "The event time 9999-12-31 12:00 is in the future.")]
    assert sorted(Lead.objects.values_list("email", flat=True)) == ["ok@example.jp"]


def test_a_cell_past_the_csv_field_limit_is_a_file_problem_not_a_500(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    data = ("email,last_name\r\nhuge@example.jp," + "あ" * 200_000 + "\r\n").encode()

    response = client.post(
        "/admin/integrations/source/import-csv/",
        {"file": SimpleUploadedFile("huge.csv", data), "source": "csv", "dry_run": "on"},
    )

    assert response.status_code == 200
    assert response.context["report"].errors == [
        (0, "The file cannot be read as CSV: field larger than field limit (131072).")
    ]
    assert not Lead.objects.exists()


def _dry_run(client, data: bytes, *, source: str = "excel", event: str = "", language="en"):
    upload = SimpleUploadedFile("leads.csv", data, content_type="text/csv")
    return client.post(
        "/admin/integrations/source/import-csv/",
        {"file": upload, "source": source, "event": event, "dry_run": "on"},
        HTTP_ACCEPT_LANGUAGE=language,
    )


def test_a_dry_run_offers_to_import_the_previewed_file_without_choosing_it_again(
    client, admin_pages
):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    preview = _dry_run(client, JAPANESE.encode("cp932"), source="excel", event="展示会2026秋")
    token = preview.context["confirm_token"]
    assert token
    assert f'name="confirm" value="{token}"' in preview.content.decode()
    assert Lead.objects.count() == 0

    # The confirm step sends no file and no options: it imports what was checked.
    response = client.post(
        "/admin/integrations/source/import-csv/", {"confirm": token, "source": "other"}
    )

    assert response.status_code == 200
    report = response.context["report"]
    assert (report.dry_run, report.created, report.errors) == (False, 2, [])
    assert response.context["filename"] == "leads.csv"
    assert response.context["confirm_token"] == ""
    assert sorted(Lead.objects.values_list("email", "source")) == [
        ("hanako@example.jp", "excel"),
        ("taro.yamada@example.co.jp", "excel"),
    ]
    assert set(Lead.objects.values_list("events__properties__event", flat=True)) == {"展示会2026秋"}


def test_a_preview_is_imported_once(client, admin_pages):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    token = _dry_run(client, ENGLISH.encode()).context["confirm_token"]
    client.post("/admin/integrations/source/import-csv/", {"confirm": token})
    Lead.objects.all().delete()

    again = client.post("/admin/integrations/source/import-csv/", {"confirm": token}, follow=True)

    assert again.context["report"] is None
    assert "This preview has expired or was imported already" in again.content.decode()
    assert Lead.objects.count() == 0


def test_a_preview_belongs_to_the_user_who_made_it(client, admin_pages):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    token = _dry_run(client, ENGLISH.encode()).context["confirm_token"]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.post("/admin/integrations/source/import-csv/", {"confirm": token})

    assert response.context["report"] is None
    assert Lead.objects.count() == 0


def test_only_the_latest_preview_page_can_be_confirmed(client, admin_pages):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    first = _dry_run(client, ENGLISH.encode()).context["confirm_token"]
    second = _dry_run(client, JAPANESE.encode("utf-8")).context["confirm_token"]

    stale = client.post("/admin/integrations/source/import-csv/", {"confirm": first})
    assert stale.context["report"] is None
    assert Lead.objects.count() == 0
    client.post("/admin/integrations/source/import-csv/", {"confirm": second})
    assert Lead.objects.count() == 2


def test_a_preview_expires_after_30_minutes(client, admin_pages, settings):
    # The local-memory cache reads the (travelled) clock; Redis expires keys by its own.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    with time_machine.travel(dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC), tick=False):
        token = _dry_run(client, ENGLISH.encode()).context["confirm_token"]
    with time_machine.travel(dt.datetime(2026, 11, 2, 10, 31, tzinfo=dt.UTC), tick=False):
        response = client.post("/admin/integrations/source/import-csv/", {"confirm": token})

    assert response.context["report"] is None
    assert Lead.objects.count() == 0


def test_no_confirm_button_when_nothing_could_be_imported(client, admin_pages):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = _dry_run(client, "会社名,氏名\nA社,山田\n".encode())

    assert response.context["confirm_token"] == ""
    assert 'name="confirm"' not in response.content.decode()


def test_the_column_mapping_names_fields_in_the_users_language(client, admin_pages):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    text = "姓,名,メールアドレス,従業員数,郵便番号\n山田,太郎,t@example.jp,10,100-0001\n"

    response = _dry_run(client, text.encode("cp932"), language="ja")

    assert response.context["columns"] == [
        ("姓", "姓"),
        ("名", "名"),
        ("メールアドレス", "メールアドレス"),
        ("従業員数", "従業員数"),
        ("郵便番号", "郵便番号"),
    ]
    assert "employee_count" not in response.content.decode()


def test_of_two_confirms_racing_for_one_preview_only_one_gets_the_file(monkeypatch):
    # Both requests read the kept file before either removes it (a double click).
    token = csv_preview_keep(user_id=7, data=b"x", source="s", event="e", filename="f.csv")
    cache = caches["default"]
    kept = cache.get(f"csv-import-preview:{7}")
    monkeypatch.setattr(cache, "get", lambda key, default=None: kept)

    first = csv_preview_take(user_id=7, token=token)
    second = csv_preview_take(user_id=7, token=token)

    assert first is not None and first.data == b"x"
    assert second is None
