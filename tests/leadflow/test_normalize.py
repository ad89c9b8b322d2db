import pytest

from leadflow.normalize import company_key, format_phone, name_key, nfkc, normalize_email, phone_key
from leadflow.services import company_find_or_create, lead_upsert
from tests.factories import LeadFactory


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３", "ABC123"),
        ("ｻﾝﾌﾟﾙ", "サンプル"),
        ("㈱サンプル", "(株)サンプル"),
        ("（株）", "(株)"),
        ("　", " "),
        (None, ""),
    ],
)
def test_nfkc(raw, expected):
    assert nfkc(raw) == expected


def test_email():
    assert normalize_email("  Ｔａｒｏ@Example.CO.JP ") == "taro@example.co.jp"


@pytest.mark.parametrize(
    "raw",
    [
        "03-1234-5678",
        "0312345678",
        "03(1234)5678",
        "０３－１２３４－５６７８",
        "０３（１２３４）５６７８",
        "+81 3 1234 5678",
        "+81-3-1234-5678",
        "03-1234-5678 内線12",
        "03-1234-5678 ext. 3",
    ],
)
def test_tokyo_number_in_every_spelling_has_one_key(raw):
    assert phone_key(raw) == "+81312345678"
    assert format_phone(raw) == "03-1234-5678"


@pytest.mark.parametrize(
    ("raw", "key", "formatted"),
    [
        ("090-1234-5678", "+819012345678", "090-1234-5678"),
        ("0120-123-456", "+81120123456", "0120-123-456"),
        ("06-6123-4567", "+81661234567", "06-6123-4567"),
        ("+1 415 555 2671", "+14155552671", "+1 415-555-2671"),
        ("1234", "", "1234"),
        ("不明", "", "不明"),
        ("", "", ""),
    ],
)
def test_other_numbers(raw, key, formatted):
    assert phone_key(raw) == key
    assert format_phone(raw) == formatted


@pytest.mark.parametrize(
    "name",
    [
        "株式会社サンプル",
        "サンプル株式会社",
        "(株)サンプル",
        "（株）サンプル",
        "㈱サンプル",
        "サンプル㈱",
        "株式会社　サンプル",
        "ｻﾝﾌﾟﾙ株式会社",
        "有限会社サンプル",
        "(有)サンプル",
        "㈲サンプル",
        "合同会社サンプル",
    ],
)
def test_japanese_legal_forms_in_any_position_and_width(name):
    assert company_key(name) == "サンプル"


@pytest.mark.parametrize(
    "name",
    [
        "Sample Co., Ltd.",
        "Sample Co.,Ltd.",
        "SAMPLE CO., LTD.",
        "Sample Inc.",
        "Sample, Inc.",
        "Ｓａｍｐｌｅ　Ｉｎｃ．",
        "Sample K.K.",
        "Sample KK",
        "Sample Corporation",
        "Sample Corp.",
        "Sample Ltd",
        "Sample LLC",
        "Sample G.K.",
        "sample",
    ],
)
def test_western_legal_forms(name):
    assert company_key(name) == "sample"


def test_legal_form_words_inside_a_name_are_kept():
    assert company_key("Kakko Inc") == "kakko"
    assert company_key("Bookkeeping KK") == "bookkeeping"
    assert company_key("Incom Co., Ltd.") == "incom"
    assert company_key("サンプル・ホールディングス株式会社") == "サンプルホールディングス"


def test_name_key_ignores_width_case_and_spaces_but_not_script():
    assert name_key("山田", "太郎") == name_key(" 山田 ", "太郎") == "山田太郎"
    assert name_key("ﾔﾏﾀﾞ", "ﾀﾛｳ") == name_key("ヤマダ", "タロウ") == "ヤマダタロウ"
    assert name_key("YAMADA", "Taro") == name_key("ｙａｍａｄａ", "ｔａｒｏ") == "yamadataro"
    assert name_key("山田", "太郎") != name_key("ヤマダ", "タロウ")


@pytest.mark.django_db
def test_two_spellings_of_one_company_become_one():
    first = company_find_or_create(data={"name": "株式会社サンプル", "prefecture": "東京都"})
    second = company_find_or_create(data={"name": "(株)サンプル", "employee_count": 300})
    third = company_find_or_create(data={"name": "㈱サンプル"})

    assert first.pk == second.pk == third.pk
    first.refresh_from_db()
    assert first.name == "株式会社サンプル"
    assert first.employee_count == 300


@pytest.mark.django_db
def test_domain_wins_over_name_and_a_real_name_replaces_a_domain_placeholder():
    by_domain = company_find_or_create(data={"domain": "sample.co.jp"})
    assert by_domain.name == "sample.co.jp"
    named = company_find_or_create(data={"domain": "sample.co.jp", "name": "株式会社サンプル"})
    assert named.pk == by_domain.pk
    named.refresh_from_db()
    assert named.name == "株式会社サンプル"


@pytest.mark.django_db
def test_lead_keys_follow_the_fields():
    lead = LeadFactory(last_name="山田", first_name="太郎", phone="０３（１２３４）５６７８")
    assert (lead.name_key, lead.phone_key) == ("山田太郎", "+81312345678")
    lead.phone = "090-1111-2222"
    lead.save(update_fields=["phone"])
    lead.refresh_from_db()
    assert lead.phone_key == "+819011112222"


@pytest.mark.django_db
def test_upsert_stores_the_phone_as_a_japanese_user_writes_it():
    result = lead_upsert(email="p@example.jp", attributes={"phone": "+81 3 1234 5678"})
    assert result.lead.phone == "03-1234-5678"
    assert result.lead.phone_key == "+81312345678"
