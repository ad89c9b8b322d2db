"""Fit rules: every operator, category limits and negative points, in Python (the
incremental path) and in SQL (the bulk path) alike."""

import pytest

from scoring import engine
from scoring.selectors import lead_score_explain
from tests.factories import CompanyFactory, LeadFactory
from tests.scoring.conftest import T0, make_model, sql_score

CASES = [
    # (field, operator, value, min, max, lead kwargs, company kwargs, matches)
    ("role", "equals", "executive", None, None, {"role": "executive"}, {}, True),
    ("role", "equals", "executive", None, None, {"role": "manager"}, {}, False),
    ("job_title", "equals", "ceo", None, None, {"job_title": "CEO"}, {}, True),
    ("company.industry", "one_of", "it\nfinance", None, None, {}, {"industry": "finance"}, True),
    ("company.industry", "one_of", "it\nfinance", None, None, {}, {"industry": "retail"}, False),
    ("job_title", "contains", "部長", None, None, {"job_title": "営業部長"}, {}, True),
    ("job_title", "contains", "部長", None, None, {"job_title": "営業課長"}, {}, False),
    ("job_title", "contains", "50%", None, None, {"job_title": "50% off"}, {}, True),
    ("job_title", "contains", "50%", None, None, {"job_title": "500 off"}, {}, False),
    ("job_title", "contains", "a_b", None, None, {"job_title": "axb"}, {}, False),
    ("company.employee_count", "between", "", 100, 999, {}, {"employee_count": 100}, True),
    ("company.employee_count", "between", "", 100, 999, {}, {"employee_count": 999}, True),
    ("company.employee_count", "between", "", 100, 999, {}, {"employee_count": 1000}, False),
    ("company.employee_count", "between", "", 100, 999, {}, {"employee_count": 99}, False),
    ("company.employee_count", "between", "", 1000, None, {}, {"employee_count": 5000}, True),
    ("company.employee_count", "between", "", None, 29, {}, {"employee_count": None}, False),
    ("attributes.budget", "between", "", 100, 500, {"attributes": {"budget": "300"}}, {}, True),
    ("attributes.budget", "between", "", 100, 500, {"attributes": {"budget": 300}}, {}, True),
    ("attributes.budget", "between", "", 100, 500, {"attributes": {"budget": 250.5}}, {}, True),
    ("attributes.budget", "between", "", 100, 500, {"attributes": {"budget": "abc"}}, {}, False),
    ("attributes.budget", "between", "", 100, 500, {"attributes": {}}, {}, False),
    ("attributes.budget", "is_set", "", None, None, {"attributes": {"budget": 0}}, {}, True),
    ("attributes.budget", "is_set", "", None, None, {"attributes": {"budget": ""}}, {}, False),
    ("attributes.budget", "is_set", "", None, None, {"attributes": {"budget": None}}, {}, False),
    ("attributes.budget", "is_empty", "", None, None, {"attributes": {}}, {}, True),
    ("attributes.vip", "equals", "TRUE", None, None, {"attributes": {"vip": True}}, {}, True),
    ("attributes.vip", "equals", "true", None, None, {"attributes": {"vip": False}}, {}, False),
    # Letter case is ASCII's alone, in Python and both SQLs: É and Ｍ keep theirs.
    ("job_title", "equals", "ÉMILE", None, None, {"job_title": "Émile"}, {}, True),
    ("job_title", "equals", "ÉMILE", None, None, {"job_title": "émile"}, {}, False),
    ("job_title", "contains", "ｍ", None, None, {"job_title": "ＭＧＲ"}, {}, False),
    ("job_title", "is_empty", "", None, None, {"job_title": ""}, {}, True),
    ("job_title", "is_set", "", None, None, {"job_title": "部長"}, {}, True),
    ("company.region", "one_of", "kanto\nkinki", None, None, {}, {"prefecture": "東京都"}, True),
    ("company.prefecture", "equals", "大阪府", None, None, {}, {"prefecture": "東京都"}, False),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "operator", "value", "low", "high", "lead_kwargs", "company_kwargs", "matches"),
    CASES,
)
def test_each_operator_matches_the_same_in_python_and_sql(
    field, operator, value, low, high, lead_kwargs, company_kwargs, matches
):
    model = make_model(
        fit=[
            {
                "field": field,
                "operator": operator,
                "value": value,
                "min_value": low,
                "max_value": high,
                "points": 7,
            }
        ]
    )
    lead = LeadFactory(company=CompanyFactory(**company_kwargs), **lead_kwargs)

    in_python, matched = engine.compiled(model).fit(lead)
    in_sql = sql_score(model, lead, T0)

    expected = 7 if matches else 0
    assert in_python == expected
    assert in_sql.fit == expected
    assert in_sql.fit_rules == matched


@pytest.mark.django_db
def test_rules_on_company_fields_do_not_match_a_lead_without_company():
    model = make_model(
        fit=[
            {"field": "company.employee_count", "operator": "is_empty", "points": 4},
            {"field": "company.industry", "operator": "is_set", "points": 10},
        ]
    )
    lead = LeadFactory(company=None)

    assert engine.compiled(model).fit(lead)[0] == 4
    assert sql_score(model, lead, T0).fit == 4


SIZE = {"name": "size", "min_points": 0, "max_points": 20}


@pytest.mark.django_db
def test_a_category_holds_its_rules_to_its_maximum_and_explains_the_cut():
    model = make_model(
        categories=[SIZE],
        fit=[
            {
                "category": "size",
                "field": "company.employee_count",
                "operator": "between",
                "min_value": 100,
                "points": 15,
                "label": "100+",
            },
            {
                "category": "size",
                "field": "company.revenue_band",
                "operator": "equals",
                "value": "1b_10b",
                "points": 10,
                "label": "revenue",
            },
            {"field": "role", "operator": "equals", "value": "executive", "points": 20},
        ],
    )
    lead = LeadFactory(
        role="executive", company=CompanyFactory(employee_count=500, revenue_band="1b_10b")
    )

    score = sql_score(model, lead, T0)
    explained = lead_score_explain(score=score)

    assert score.fit == 40  # min(15 + 10, 20) + 20
    assert engine.compiled(model).fit(lead)[0] == 40
    assert [(line.label, line.points) for line in explained.fit_lines] == [
        ("100+", 15),
        ("revenue", 10),
        ("Category limit 0–20", -5),
        ("role equals Executive", 20),  # the label of the code, not the code,
    ]
    assert sum(line.points for line in explained.fit_lines) == score.fit == explained.fit


@pytest.mark.django_db
def test_negative_points_subtract_and_a_category_floor_stops_them():
    model = make_model(
        categories=[{"name": "role", "min_points": 0, "max_points": 20}],
        fit=[
            {
                "category": "role",
                "field": "job_title",
                "operator": "contains",
                "value": "学生",
                "points": -15,
            },
            {"field": "email", "operator": "contains", "value": "@gmail.com", "points": -10},
            {"field": "company.industry", "operator": "equals", "value": "it", "points": 15},
        ],
    )
    lead = LeadFactory(
        email="taro@gmail.com", job_title="学生", company=CompanyFactory(industry="it")
    )

    score = sql_score(model, lead, T0)
    explained = lead_score_explain(score=score)

    # role: -15 held at the floor 0; free mail -10; industry +15.
    assert score.fit == 5
    assert engine.compiled(model).fit(lead)[0] == 5
    assert [line.points for line in explained.fit_lines] == [-15, 15, -10, 15]
    assert sum(line.points for line in explained.fit_lines) == 5


@pytest.mark.django_db
def test_fit_can_go_below_zero_without_categories():
    model = make_model(
        fit=[{"field": "email", "operator": "contains", "value": "@gmail.com", "points": -10}]
    )
    lead = LeadFactory(email="a@gmail.com")

    assert sql_score(model, lead, T0).fit == -10
