"""How numbers read: rounded to the spread they were measured with, and a reason in words where a number
cannot be computed. Expected values worked by hand from the rules in bench/report/fmt.py."""

from __future__ import annotations

import numpy as np
import pytest

from bench.report.fmt import accuracy_decimals, time_decimals
from bench.report.sections import points
from bench.report.sentences import cost_phrase
from bench.report.table_cells import cost_cell, speedup_cell
from bench.report.table_cells import fmt_interval as _fmt_interval


@pytest.mark.parametrize(
    "lo,hi,expected",
    [
        (66.9, 72.9, 1),  # width 6 points: two significant digits of it is one decimal
        (41.0, 69.0, 0),  # width 28: whole points
        (95.0, 95.0, 1),  # seeds that all agreed: the test set's own step, 0.1 point
        (95.0, 95.04, 1),  # never finer than 0.1 point, however narrow
    ],
)
def test_accuracy_is_rounded_to_two_significant_digits_of_its_interval_width(lo, hi, expected):
    assert accuracy_decimals(lo, hi) == expected


@pytest.mark.parametrize(
    "median,lo,hi,expected",
    [
        (8.0, 7.4, 9.1, 0),  # width 1.7 s: the unit
        (0.29, 0.14, 0.45, 1),  # width 0.31 s: tenths
        (0.012, 0.011, 0.013, 3),  # width 2 ms, value 12 ms: milliseconds
        (0.0123, 0.0122, 0.0124, 3),  # width 0.2 ms would allow 4 decimals; two digits of the value allow 3
        (120.0, 100.0, 150.0, 0),
        (0.5, np.nan, np.nan, 2),  # no interval: two significant digits of the value, 0.50
    ],
)
def test_seconds_carry_one_digit_of_their_spread_and_at_most_two_of_their_value(median, lo, hi, expected):
    assert time_decimals(median, lo, hi) == expected


def test_an_interval_reads_at_its_kinds_precision_and_says_unbounded_in_words():
    assert _fmt_interval(8.04, 7.4, 9.1, "seconds", "") == "8 [7, 9]"
    assert _fmt_interval(0.0121, 0.0112, 0.0131, "seconds", "") == "0.012 [0.011, 0.013]"
    assert _fmt_interval(0.5, 0.3, np.inf, "seconds", "") == "0.50 [0.30, unbounded]"
    assert _fmt_interval(57.2, 41.3, 69.0, "accuracy", "") == "57 [41, 69]"
    assert _fmt_interval(np.inf, 300, np.inf, "steps", "> 500") == "> 500"


def test_an_effect_in_points_is_rounded_to_its_interval():
    assert points(0.037, 0.021, 0.054) == "+3.7 [+2.1, +5.4]"
    assert points(0.05, -0.104, 0.204) == "+5 [-10, +20]"


@pytest.mark.parametrize(
    "point,lo,hi,expected",
    [
        (1.72, 1.41, 1.93, "1.7x [1.4x, 1.9x]"),
        (2.0, 1.5, np.inf, "2x [1.5x, unbounded: in some resamples the baseline never reached]"),
        (np.inf, np.nan, np.nan, "not computed: the baseline did not reach the target in most seeds (this arm did)"),
        (0.0, 0.0, 0.0, "not computed: this arm did not reach the target in most seeds"),
        (np.nan, np.nan, np.nan, "not computed: neither the baseline nor this arm reached the target in most seeds"),
    ],
)
def test_a_speed_up_is_a_ratio_with_its_interval_or_the_reason_it_is_not(point, lo, hi, expected):
    assert speedup_cell(point, lo, hi) == expected


def test_a_cost_not_computed_says_how_many_seeds_it_needed_and_had():
    r = {"passes_ratio": np.nan, "passes_n": 2, "ae_reached": 2, "rival_reached": 2, "n_pairs": 2}
    assert cost_cell(r) == (
        "not computed: needs 3 seeds at which both arms reached the target; there were 2 "
        "(AE reached it at 2 seeds, the rival at 2, of 2 paired)"
    )
    assert cost_phrase({**r, "passes_n": np.nan}) == (
        "cost to the target not computed: not recorded in these results (no pass counts)"
    )


def test_cells_not_ok_are_counted_by_setting_before_their_list():
    import pandas as pd

    from bench.report.run_sections import problems_section

    base = {"dataset": "digits", "model": "mlp", "labeled_fraction": 1.0, "activation": "relu", "batchnorm": False}
    cells = pd.DataFrame(
        [
            {**base, "init": "lsuv", "lr": 0.3, "seed": 0, "status": "diverged", "error": "nan", "cell_id": "a"},
            {**base, "init": "lsuv", "lr": 0.3, "seed": 1, "status": "at_chance", "error": "", "cell_id": "b"},
            {**base, "init": "lsuv", "lr": 0.3, "seed": 2, "status": "diverged", "error": "nan", "cell_id": "c"},
            {**base, "init": "random", "lr": 0.1, "seed": 0, "status": "ok", "error": "", "cell_id": "d"},
        ]
    )
    sec = problems_section(cells, pd.DataFrame(), [])
    (title, counts), (_, listing) = sec.tables
    assert title.startswith("Cells not ok, counted by setting")
    assert counts[["init", "lr", "at_chance", "diverged"]].to_dict("records") == [
        {"init": "lsuv", "lr": 0.3, "at_chance": 1, "diverged": 2}
    ]
    assert list(listing["cell_id"]) == ["a", "b", "c"]
