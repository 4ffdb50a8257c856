"""One metric table (mmer_jax.metric_table): selection, the config schema, the per-run report, the
reproduction reports and the README generator take every score's name, direction, label and format
from it, and no other module defines one."""

import ast
import pathlib

import pytest

from mmer_jax import metric_table as mt

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_selection_follows_the_tables_direction_for_every_metric():
    from mmer_jax.train.regression import improved

    for name, m in mt.METRICS.items():
        assert improved(name, 0.5, None)
        assert improved(name, 0.4, 0.5) is (not m.higher_is_better), name
        assert improved(name, 0.6, 0.5) is m.higher_is_better, name
        assert not improved(name, 0.5, 0.5), name  # a tie keeps the earlier epoch
    assert mt.LOWER_IS_BETTER == ("mae",)


def test_the_schema_and_the_reports_read_the_table():
    from mmer_jax import schema
    from mmer_jax.reproduce import harness, readme
    from mmer_jax.reproduce import report as repro_report
    from mmer_jax.train import regression
    from mmer_jax.train import report as run_report

    assert schema.SELECT_METRICS == mt.CLASSIFICATION + mt.REGRESSION
    assert schema.LOWER_IS_BETTER == mt.LOWER_IS_BETTER
    assert regression.REGRESSION_KEYS == mt.REGRESSION
    assert harness.METRICS == mt.CLASSIFICATION
    assert sorted(harness.REGRESSION_METRICS) == sorted(mt.REGRESSION)
    assert harness.SCORE_UNITS == mt.NOT_PERCENT == ("mae", "corr")
    for name, m in mt.METRICS.items():
        assert repro_report._NAMES[name] == m.label
        assert repro_report._value(0.61749, name) == m.format(0.61749)
    assert dict(run_report._HEADLINE)["weighted_f1"] == "Weighted F1"
    assert {k: label for k, label, _ in run_report._REGRESSION} == {
        k: mt.METRICS[k].label for k in mt.REGRESSION}
    assert readme._score({"mean": 0.81234, "std": None}, "corr") == "0.812"
    assert readme._score({"mean": 0.61749, "std": None}, "acc7") == "61.7"


@pytest.mark.parametrize("value, name, shown", [(0.61749, "accuracy", "61.7"),
                                                (0.8123, "corr", "0.812"),
                                                (1.23456, "mae", "1.235"),
                                                (None, "uar", "—")])
def test_formats(value, name, shown):
    assert mt.METRICS[name].format(value) == shown


def test_an_unknown_task_is_an_error():
    with pytest.raises(ValueError, match="task 'ranking'"):
        mt.names("ranking")


def test_no_other_module_defines_a_metrics_direction_or_units():
    """A module-level tuple of metric-name literals outside the table that names a direction or
    units (``LOWER_IS_BETTER``, ``*SCORE_UNITS``) or spells a task's whole list is a second
    definition (a subset chosen for display, e.g. the headline scores, is not)."""
    names = set(mt.METRICS)
    whole = (set(mt.CLASSIFICATION), set(mt.REGRESSION))
    offenders = []
    for path in (REPO / "mmer_jax").rglob("*.py"):
        if path.name == "metric_table.py":
            continue
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Tuple):
                continue
            target = ast.unparse(node.targets[0])
            literals = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
            if literals and set(literals) <= names and (
                    any(k in target for k in ("LOWER_IS_BETTER", "UNITS"))
                    or set(literals) in whole):
                offenders.append(f"{path.relative_to(REPO)}: {target}")
    assert not offenders, offenders
