"""Answer metrics (match / exact match / token F1) with BERGEN's SQuAD-style normalization."""

from __future__ import annotations

import pytest

from embedbench.rag.metrics import exact_match, match, score_answer, token_f1, usable_golds


def test_normalization_ignores_case_punctuation_and_articles() -> None:
    assert exact_match("The Eiffel Tower!", ["eiffel tower"]) == 1.0
    assert exact_match("an apple, a pear", ["Apple pear"]) == 1.0
    assert exact_match("  Paris\n", ["paris."]) == 1.0
    assert exact_match("Theatre", ["the atre"]) == 0.0  # "the" is removed only as a whole word
    assert exact_match("U.S.A.", ["USA"]) == 1.0


def test_match_is_containment_of_the_gold_in_the_prediction() -> None:
    assert match("It was William Shakespeare, in 1600.", ["Shakespeare"]) == 1.0
    assert match("Shakespeare", ["William Shakespeare"]) == 0.0  # the prediction must contain the gold
    assert match("nothing useful", ["Paris", "Lutetia"]) == 0.0
    assert match("Lutetia, then Paris", ["Rome", "Paris"]) == 1.0


def test_token_f1_takes_the_best_gold() -> None:
    # prediction "capital is paris" vs gold "paris": precision 1/3, recall 1 -> F1 0.5
    assert token_f1("The capital is Paris.", ["Paris"]) == pytest.approx(0.5)
    # vs gold "capital paris": 2 common tokens, precision 2/3, recall 1 -> 0.8 (the better gold wins)
    assert token_f1("The capital is Paris.", ["Paris", "capital Paris"]) == pytest.approx(0.8)
    assert token_f1("paris paris", ["paris"]) == pytest.approx(2 * 0.5 * 1 / 1.5)  # repeated tokens count once
    assert token_f1("", ["Paris"]) == 0.0
    assert token_f1("London", ["Paris"]) == 0.0


def test_score_answer_bundles_the_three_metrics() -> None:
    assert score_answer("Barack Obama", ["Obama", "Barack Obama"]) == {"match": 1.0, "exact_match": 1.0, "f1": 1.0}
    assert score_answer("President Obama", ["Barack Obama"]) == {"match": 0.0, "exact_match": 0.0, "f1": 0.5}


def test_empty_golds_are_ignored_and_none_left_is_an_error() -> None:
    assert usable_golds(["The", "", "Paris", "paris!", " a "]) == ["paris"]
    assert match("anything at all", ["", "the", "Paris"]) == 0.0  # "" and "the" do not match everything
    with pytest.raises(ValueError, match="no non-empty gold"):
        match("Paris", ["", "a"])
    with pytest.raises(TypeError):
        exact_match("Paris", "Paris")  # one string, not a list of golds
