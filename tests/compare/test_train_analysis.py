"""compare_train on generated train frames with known answers: numbers against scipy on the same
values, the choice of test, Holm by hand, groups, errors, exclusions and directions."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from actbench.compare.train import bare_activation, compare_train, higher_is_better, sweep_columns
from actbench.errors import ActbenchError
from actbench.stats import (cohens_d, cohens_dz, mann_whitney_p, power_paired,
                            power_two_sample, runs_for_power)

RELU = [0.901, 0.894, 0.907, 0.899, 0.903]
GELU = [0.912, 0.903, 0.915, 0.905, 0.914]
MISH = [0.921, 0.915, 0.909, 0.926, 0.918]


def runs(activation, values, seeds=None, status="ok", **columns):
    """Train rows as load.py gives them: numbers as floats, text as text, a file column."""
    seeds = range(len(values)) if seeds is None else seeds
    return [{"file": "a", "suite": "s", "activation": activation, "impl": "native",
             "seed": float(seed), "status": status, "dataset": "mnist", "model": "mlp",
             "final_test_acc": float(value), "final_test_loss": 1 - float(value), **columns}
            for seed, value in zip(seeds, values)]


def frame(*parts):
    return pd.DataFrame([row for part in parts for row in part])


def row_of(result, activation, **keys):
    table = result.table
    hit = table["activation"] == activation
    for key, value in keys.items():
        hit &= table[key] == value
    assert hit.sum() == 1
    return table[hit].iloc[0]


def test_means_intervals_and_paired_p_values_are_scipys():
    result = compare_train(frame(runs("relu", RELU), runs("gelu", GELU)), confidence=0.9)
    gelu = row_of(result, "gelu")
    assert gelu["n"] == 5 and gelu["seeds"] == "0,1,2,3,4"
    assert gelu["mean"] == pytest.approx(np.mean(GELU))
    assert gelu["std"] == pytest.approx(np.std(GELU, ddof=1))
    low, high = sps.t.interval(0.9, 4, loc=np.mean(GELU), scale=sps.sem(GELU))
    assert (gelu["ci_low"], gelu["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert gelu["test"] == "paired t"
    reference = sps.ttest_rel(GELU, RELU)
    interval = reference.confidence_interval(0.9)
    assert gelu["p_value"] == pytest.approx(reference.pvalue)
    assert gelu["diff"] == pytest.approx(np.mean(GELU) - np.mean(RELU))
    assert (gelu["diff_ci_low"], gelu["diff_ci_high"]) == (pytest.approx(interval.low),
                                                           pytest.approx(interval.high))
    assert gelu["p_mannwhitney"] == pytest.approx(mann_whitney_p(GELU, RELU))  # 0.903 is a tie
    assert gelu["cohens_d"] == pytest.approx(cohens_d(GELU, RELU))
    assert gelu["seeds_needed"] == runs_for_power(cohens_dz(GELU, RELU), paired=True)
    assert result.table.columns.tolist()[:2] == ["activation", "n"]  # nothing varies: no group keys


def test_different_seeds_give_welchs_test_with_scipys_numbers():
    result = compare_train(frame(runs("relu", RELU), runs("gelu", GELU[:4], seeds=[5, 6, 7, 8])))
    gelu = row_of(result, "gelu")
    assert gelu["test"] == "welch"
    reference = sps.ttest_ind(GELU[:4], RELU, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert gelu["p_value"] == pytest.approx(reference.pvalue)
    assert (gelu["diff_ci_low"], gelu["diff_ci_high"]) == (pytest.approx(interval.low),
                                                           pytest.approx(interval.high))
    assert gelu["p_mannwhitney"] == pytest.approx(mann_whitney_p(GELU[:4], RELU))
    assert gelu["power"] == pytest.approx(power_two_sample(cohens_d(GELU[:4], RELU), 4))
    assert gelu["seeds_needed"] == runs_for_power(cohens_d(GELU[:4], RELU))


@pytest.mark.parametrize("gelu_seeds, test", [([0, 1, 2, 3], "paired t"), ([0, 1, 2, 3, 5], "paired t"),
                                              ([0, 0, 1, 2, 3], "welch"), ([0, 7, 8, 9], "welch")])
def test_pairing_needs_two_shared_seeds_each_run_once_per_side(gelu_seeds, test):
    relu = runs("relu", RELU[:4], seeds=[0, 1, 2, 3])
    result = compare_train(frame(relu, runs("gelu", GELU[:len(gelu_seeds)], seeds=gelu_seeds)))
    assert row_of(result, "gelu")["test"] == test


def test_pairing_on_the_shared_seeds_names_the_seeds_left_out():
    relu = runs("relu", RELU, seeds=[0, 1, 2, 3, 9])
    gelu = runs("gelu", GELU, seeds=[0, 1, 2, 3, 5])
    row = row_of(compare_train(frame(relu, gelu)), "gelu")
    pairs = sps.ttest_rel(GELU[:4], RELU[:4])
    assert row["test"] == "paired t" and row["p_value"] == pytest.approx(pairs.pvalue)
    assert row["diff"] == pytest.approx(np.mean(np.subtract(GELU[:4], RELU[:4])))
    interval = pairs.confidence_interval(0.95)
    assert (row["diff_ci_low"], row["diff_ci_high"]) == (pytest.approx(interval.low),
                                                         pytest.approx(interval.high))
    assert row["n"] == 5 and row["mean"] == pytest.approx(np.mean(GELU))  # all runs describe gelu
    assert row["note"].startswith("paired on the 4 seeds both ran (diff and p over those pairs); "
                                  "left out of the pairing: gelu seed 5, relu seed 9")


def test_pairs_are_matched_by_seed_not_by_row_order():
    relu = runs("relu", RELU, seeds=[4, 3, 2, 1, 0])
    result = compare_train(frame(relu, runs("gelu", GELU)))
    assert row_of(result, "gelu")["p_value"] == pytest.approx(
        sps.ttest_rel(GELU, RELU[::-1]).pvalue)


def test_holm_across_the_table_by_hand():
    data = frame(runs("relu", RELU), runs("gelu", GELU), runs("mish", MISH),
                 runs("silu", [0.902, 0.897, 0.905, 0.901, 0.906]))
    result = compare_train(data)
    p = {name: sps.ttest_rel(values, RELU).pvalue
         for name, values in (("gelu", GELU), ("mish", MISH), ("silu", [0.902, 0.897, 0.905, 0.901, 0.906]))}
    first, second, third = sorted(p, key=p.get)
    expected = {first: min(1, 3 * p[first])}
    expected[second] = min(1, max(expected[first], 2 * p[second]))
    expected[third] = min(1, max(expected[second], p[third]))
    for name in p:
        assert row_of(result, name)["p_holm"] == pytest.approx(expected[name])
        assert row_of(result, name)["significant"] == (expected[name] < 0.05)
    assert math.isnan(row_of(result, "relu")["p_holm"])
    assert any("Holm correction over the 3 comparisons" in note for note in result.notes)


def test_groups_by_sweep_key_compare_within_each_point():
    shallow = frame(runs("relu", RELU, **{"model.depth": "4"}), runs("gelu", GELU, **{"model.depth": "4"}))
    deep = frame(runs("relu", MISH, **{"model.depth": "8"}), runs("gelu", RELU, **{"model.depth": "8"}))
    result = compare_train(pd.concat([shallow, deep], ignore_index=True))
    assert result.group_keys == ["model.depth"]
    assert result.table.columns[0] == "model.depth"
    assert row_of(result, "gelu", **{"model.depth": "4"})["diff"] == pytest.approx(
        np.mean(GELU) - np.mean(RELU))
    assert row_of(result, "gelu", **{"model.depth": "8"})["diff"] == pytest.approx(
        np.mean(RELU) - np.mean(MISH))
    assert row_of(result, "gelu", **{"model.depth": "4"})["rank"] == 1
    assert row_of(result, "gelu", **{"model.depth": "8"})["rank"] == 2


def test_data_set_model_and_by_keys_join_the_groups_when_asked_or_varying():
    data = frame(runs("relu", RELU, file="a", model="mlp"), runs("gelu", GELU, file="a", model="mlp"),
                 runs("relu", RELU, file="b", model="cnn"), runs("gelu", MISH, file="b", model="cnn"))
    assert compare_train(data).group_keys == ["model"]
    assert compare_train(data, by=["file"]).group_keys == ["file"]  # file already separates models
    assert len(compare_train(data, by=["file"]).table) == 4


def test_by_impl_puts_the_implementation_in_the_label():
    data = frame(runs("relu", RELU), runs("gelu", GELU),
                 [{**row, "impl": "formula"} for row in runs("gelu", MISH)])
    result = compare_train(data, by=["impl"])
    assert set(result.table["activation"]) == {"relu[native]", "gelu[native]", "gelu[formula]"}
    assert result.baseline == "relu[native]"


def test_baseline_missing_names_it_and_the_activations_present():
    with pytest.raises(ActbenchError, match=r"baseline 'elu' .* present: relu, gelu"):
        compare_train(frame(runs("relu", RELU), runs("gelu", GELU)), baseline="elu")


def test_metric_missing_or_not_numeric_lists_the_numeric_metrics():
    data = frame(runs("relu", RELU), runs("gelu", GELU))
    with pytest.raises(ActbenchError, match=r"metric 'top5'.*final_test_acc, final_test_loss"):
        compare_train(data, metric="top5")
    with pytest.raises(ActbenchError, match=r"metric 'dataset' is not numeric.*final_test_acc"):
        compare_train(data, metric="dataset")


def test_failed_diverged_and_missing_values_are_left_out():
    data = frame(runs("relu", RELU), runs("gelu", GELU),
                 runs("gelu", [0.1], seeds=[7], status="failed"),
                 runs("gelu", [0.2], seeds=[8], status="diverged"),
                 runs("gelu", [math.nan], seeds=[9]))
    result = compare_train(data)
    gelu = row_of(result, "gelu")
    assert gelu["n"] == 5 and gelu["mean"] == pytest.approx(np.mean(GELU))
    assert gelu["test"] == "paired t"  # the left-out seeds do not break the pairing
    assert any(note.startswith("runs left out: 1 failed, 1 diverged, 1 without a finite")
               for note in result.notes)


def test_an_activation_without_finished_runs_keeps_its_row():
    data = frame(runs("relu", RELU), runs("gelu", [0.5, 0.5], status="diverged"))
    gelu = row_of(compare_train(data), "gelu")
    assert gelu["n"] == 0 and math.isnan(gelu["mean"]) and pd.isna(gelu["rank"])
    assert gelu["note"] == "no finished runs (2 failed or diverged)"


def test_a_loss_is_better_lower():
    data = frame(runs("relu", RELU), runs("gelu", GELU), runs("mish", MISH))
    result = compare_train(data, metric="final_test_loss")
    assert not result.higher_is_better
    assert row_of(result, "mish")["rank"] == 1 and row_of(result, "relu")["rank"] == 3
    assert result.notes[0].startswith("final_test_loss: lower is better")
    assert compare_train(data).table["activation"].tolist() == ["mish", "gelu", "relu"]


@pytest.mark.parametrize("metric, higher", [("final_test_acc", True), ("noise_0.5_acc", True),
                                             ("samples_per_s", True), ("final_test_loss", False),
                                             ("mean_epoch_s", False), ("peak_bytes", False)])
def test_direction_of_metrics(metric, higher):
    assert higher_is_better(metric) is higher


def test_ties_share_a_rank():
    result = compare_train(frame(runs("relu", RELU), runs("gelu", RELU), runs("mish", MISH)))
    assert row_of(result, "relu")["rank"] == row_of(result, "gelu")["rank"] == 2


def test_three_seeds_against_three_say_they_are_too_few():
    result = compare_train(frame(runs("relu", [0.900, 0.905, 0.895]),
                                 runs("gelu", [0.904, 0.899, 0.907])))
    gelu = row_of(result, "gelu")
    assert not gelu["significant"] and gelu["power"] < 0.8
    needed = int(gelu["seeds_needed"])
    assert gelu["note"] == (f"too few seeds: 3 vs 3 runs; about {needed} per activation for 80 % "
                            "power")
    assert math.isnan(gelu["p_mannwhitney"])
    assert "3 vs 3 runs cannot reach p < 0.05 with a rank test (smallest two-sided p = 0.1)" in result.notes


def test_one_run_cannot_be_tested():
    result = compare_train(frame(runs("relu", RELU[:3]), runs("gelu", [0.95])))
    gelu = row_of(result, "gelu")
    assert gelu["test"] == "" and math.isnan(gelu["p_value"]) and math.isnan(gelu["std"])
    assert gelu["note"].startswith("too few runs to test: 1 vs 3")
    assert result.notes[1].startswith("no comparison could be tested")


def test_a_group_without_the_baseline_has_no_difference():
    data = frame(runs("relu", RELU, **{"model.depth": "4"}), runs("gelu", GELU, **{"model.depth": "4"}),
                 runs("gelu", GELU, **{"model.depth": "8"}))
    result = compare_train(data)
    assert math.isnan(row_of(result, "gelu", **{"model.depth": "8"})["diff"])
    assert any("no finished relu runs in model.depth=8" in note for note in result.notes)


def test_sweep_columns_are_the_dotted_keys_not_noise_evaluations():
    data = pd.DataFrame(columns=["activation", "model.depth", "optim.lr", "noise_0.5_acc",
                                 "noise_0.5_loss", "final_test_acc", "file"])
    assert sweep_columns(data) == ["model.depth", "optim.lr"]


def test_unknown_group_key_and_bad_alpha_are_user_errors():
    data = frame(runs("relu", RELU), runs("gelu", GELU))
    with pytest.raises(ActbenchError, match="cannot group train runs by machine"):
        compare_train(data, by=["machine"])
    with pytest.raises(ActbenchError, match="alpha 5"):
        compare_train(data, alpha=5)


# -- power at the level Holm asks for -------------------------------------------------------------

RELU3 = [0.901, 0.894, 0.907]
GELU3 = [0.890, 0.882, 0.900]  # p = 0.023: below 0.05, not below 0.05 / 3


def test_power_and_seeds_needed_are_at_alpha_over_the_family_size():
    data = frame(runs("relu", RELU3), runs("gelu", GELU3), runs("mish", [0.903, 0.897, 0.905]),
                 runs("silu", [0.900, 0.896, 0.909]))
    result = compare_train(data)
    level = 0.05 / 3
    assert result.power_alpha == pytest.approx(level)
    for name in ("gelu", "mish", "silu"):
        row = row_of(result, name)
        values = {"gelu": GELU3, "mish": [0.903, 0.897, 0.905], "silu": [0.900, 0.896, 0.909]}[name]
        effect = cohens_dz(values, RELU3)
        assert row["power"] == pytest.approx(power_paired(effect, 3, level))
        assert row["seeds_needed"] == runs_for_power(effect, paired=True, alpha=level)
    gelu = row_of(result, "gelu")
    # well powered at 0.05 (0.88), but not at the 0.0167 Holm asks of the smallest p: the note says so
    assert power_paired(cohens_dz(GELU3, RELU3), 3, 0.05) >= 0.8
    assert not gelu["significant"] and gelu["power"] < 0.8
    assert gelu["note"] == (f"too few seeds: 3 vs 3 runs; about {int(gelu['seeds_needed'])} per "
                            "activation for 80 % power")
    assert any("α/k = 0.05/3 = 0.0167" in note and "if the observed effect were real" in note
               for note in result.notes)


def test_every_non_significant_underpowered_comparison_has_a_note():
    data = frame(runs("relu", RELU), runs("gelu", GELU), runs("mish", MISH),
                 runs("silu", [0.902, 0.897, 0.905, 0.901, 0.906]))
    for row in compare_train(data).table.to_dict("records"):
        underpowered = row["test"] != "" and not row["significant"] and row["power"] < 0.8
        assert ("80 % power" in row["note"]) == underpowered


def test_the_comparison_carries_its_confidence_level():
    assert compare_train(frame(runs("relu", RELU), runs("gelu", GELU)), confidence=0.9).confidence == 0.9


# -- duplicated runs ------------------------------------------------------------------------------

def _hashed(rows, file):
    return [{**row, "file": file, "config_hash": f"{row['activation']}{int(row['seed'])}"} for row in rows]


def test_a_report_given_twice_counts_each_run_once():
    once = _hashed(runs("relu", RELU) + runs("gelu", GELU), "a")
    twice = compare_train(pd.DataFrame(once + _hashed(runs("relu", RELU) + runs("gelu", GELU), "b")))
    gelu = row_of(twice, "gelu")
    assert gelu["n"] == 5 and gelu["test"] == "paired t"
    assert gelu["p_value"] == pytest.approx(sps.ttest_rel(GELU, RELU).pvalue)
    assert any(note.startswith("10 duplicated runs left out") and "in a, b" in note
               for note in twice.notes)
    assert len(compare_train(pd.DataFrame(once + _hashed(runs("relu", RELU), "b")),
                             by=["file"]).table) == 3  # by file: each file is its own group


def test_copies_of_a_run_that_disagree_are_refused_naming_the_run_and_files():
    changed = GELU[:2] + [0.5] + GELU[3:]
    data = pd.DataFrame(_hashed(runs("relu", RELU) + runs("gelu", GELU), "a")
                        + _hashed(runs("gelu", changed), "b"))
    with pytest.raises(ActbenchError, match=r"run gelu seed 2 \(config gelu2\) occurs 2 times in "
                                            r"a, b with different results") as error:
        compare_train(data)
    assert "\n" not in str(error.value)


# -- setups are never pooled ----------------------------------------------------------------------

@pytest.mark.parametrize("setting", [{"suite": ("quick", "full"), "epochs": (1.0, 50.0)},
                                     {"epochs": (1.0, 50.0)}, {"optimizer": ("sgd", "adamw")},
                                     {"batch_size": (64.0, 512.0)}, {"amp": ("False", "True")},
                                     {"device": ("cpu", "cuda:0")}])
def test_runs_of_different_training_setups_are_compared_apart(setting):
    quick = {key: values[0] for key, values in setting.items()}
    full = {key: values[1] for key, values in setting.items()}
    data = frame(runs("relu", [0.50, 0.52, 0.51], **quick), runs("mish", [0.52, 0.51, 0.53], **quick),
                 runs("relu", [0.95, 0.94, 0.96], **full), runs("mish", [0.94, 0.95, 0.93], **full))
    result = compare_train(data)
    assert result.group_keys == [next(iter(setting))]  # epochs goes with the suite: one key
    assert (result.table["n"] == 3).all() and len(result.table) == 4
    key = result.group_keys[0]
    mish = result.table[(result.table["activation"] == "mish") & (result.table[key] == quick[key])]
    assert mish["diff"].iloc[0] == pytest.approx(0.01)


def test_a_sweep_key_missing_in_one_report_is_its_own_group_shown_as_a_dash():
    data = pd.concat([frame(runs("relu", RELU, **{"model.depth": "4"}),
                            runs("gelu", GELU, **{"model.depth": "4"})),
                      frame(runs("relu", MISH), runs("gelu", RELU))], ignore_index=True)
    assert data["model.depth"].isna().any()
    result = compare_train(data)
    assert result.group_keys == ["model.depth"]
    assert set(result.table["model.depth"]) == {"4", "—"}
    assert row_of(result, "gelu", **{"model.depth": "—"})["diff"] == pytest.approx(
        np.mean(RELU) - np.mean(MISH))


# -- what can be compared -------------------------------------------------------------------------

@pytest.mark.parametrize("setting", ["seed", "run_index", "epochs", "batch_size"])
def test_settings_are_not_metrics(setting):
    data = frame(runs("relu", RELU, run_index=1.0, epochs=3.0, batch_size=64.0),
                 runs("gelu", GELU, run_index=2.0, epochs=3.0, batch_size=64.0))
    with pytest.raises(ActbenchError, match=rf"'{setting}' is a run key or setting, not a result.*"
                                            r"numeric metrics: final_test_acc, final_test_loss$"):
        compare_train(data, metric=setting)


def test_no_variation_in_the_differences_is_said_as_such():
    result = compare_train(frame(runs("relu", RELU), runs("gelu", RELU)))
    gelu = row_of(result, "gelu")
    assert gelu["test"] == "paired t" and math.isnan(gelu["p_value"])
    assert gelu["note"] == "no p-value: no variation in the differences"
    assert result.notes[1] == "no p-value: no variation in the differences"
    assert not any("too few" in note or "at least two" in note for note in result.notes)


def test_rows_without_an_activation_are_refused():
    data = frame(runs("relu", RELU), runs("gelu", GELU), runs("", [0.9]))
    with pytest.raises(ActbenchError, match=r"^1 train row has no activation in a; every run needs"):
        compare_train(data)
    data.loc[0, "activation"] = math.nan
    with pytest.raises(ActbenchError, match=r"^2 train rows have no activation"):
        compare_train(data)


# -- implementations ------------------------------------------------------------------------------

@pytest.mark.parametrize("label, bare", [("mish[fast]", "mish"), ("relu[native]", "relu"), ("relu", "relu"),
                                         ("gelu(approximate=tanh)[native]", "gelu(approximate=tanh)"),
                                         ("gelu[fast](approximate=tanh)", "gelu(approximate=tanh)")])
def test_bare_activation_strips_the_implementation(label, bare):
    assert bare_activation(label) == bare


def test_by_impl_compares_every_implementation_with_the_baselines_native_one():
    data = frame(runs("relu", RELU), [{**row, "impl": "fast"} for row in runs("relu", MISH)],
                 runs("gelu", GELU), [{**row, "activation": "mish[fast]", "impl": "fast"}
                                      for row in runs("mish", MISH)])
    result = compare_train(data, by=["impl"])
    assert result.baseline == "relu[native]" and result.labels_with_impl
    assert set(result.table["activation"]) == {"relu[native]", "relu[fast]", "gelu[native]",
                                               "mish[fast]"}
    assert row_of(result, "relu[fast]")["diff"] == pytest.approx(np.mean(MISH) - np.mean(RELU))
    assert "baseline relu[native] (of relu[fast], relu[native])" in result.notes
