"""compare_train on generated train frames with known answers: numbers against scipy on the same
values, the choice of test, Holm by hand, groups, errors, exclusions and directions."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from actbench.compare.train import compare_train, higher_is_better, sweep_columns
from actbench.errors import ActbenchError
from actbench.stats import cohens_d, cohens_dz, power_two_sample, runs_for_power

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
    assert gelu["p_mannwhitney"] == pytest.approx(
        sps.mannwhitneyu(GELU, RELU, alternative="two-sided").pvalue)
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
    assert gelu["p_mannwhitney"] == pytest.approx(
        sps.mannwhitneyu(GELU[:4], RELU, alternative="two-sided").pvalue)
    assert gelu["power"] == pytest.approx(power_two_sample(cohens_d(GELU[:4], RELU), 4))
    assert gelu["seeds_needed"] == runs_for_power(cohens_d(GELU[:4], RELU))


@pytest.mark.parametrize("gelu_seeds", [[0, 1, 2, 3], [0, 1, 2, 3, 5], [0, 0, 1, 2, 3]])
def test_pairing_needs_the_same_seeds_each_once(gelu_seeds):
    relu = runs("relu", RELU[:4], seeds=[0, 1, 2, 3])
    result = compare_train(frame(relu, runs("gelu", GELU[:len(gelu_seeds)], seeds=gelu_seeds)))
    assert row_of(result, "gelu")["test"] == ("paired t" if gelu_seeds == [0, 1, 2, 3] else "welch")


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
                            "power at the observed effect")
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
