"""A gated activation in a suite: fine with gpt, refused (one problem, naming it) elsewhere."""

from __future__ import annotations

import pytest

from actbench.train.suite import suite_from_dict
from actbench.train.validation import SuiteError

GPT = {"model": {"name": "gpt", "depth": 1, "width": 16, "heads": 2},
       "data": {"name": "mad_recall", "seq_len": 16, "train_size": 8, "test_size": 8}}


def test_gated_activations_train_in_gpt():
    suite = suite_from_dict({"activations": ["gelu", "swiglu", "geglu"], "seeds": 1, **GPT})
    assert [entry.name for entry in suite.activations] == ["gelu", "swiglu", "geglu"]


def test_a_gated_activation_with_another_model_is_one_problem_naming_it():
    with pytest.raises(SuiteError) as raised:
        suite_from_dict({"activations": ["relu", "swiglu"], "seeds": 1})
    assert raised.value.problems == [
        "suite: activations[1]: swiglu is a gated activation ((..., 2h) -> (..., h)); only model "
        "gpt has a place for one, got model mlp"]


def test_a_sweep_that_leaves_gpt_is_refused_too():
    with pytest.raises(SuiteError) as raised:
        suite_from_dict({"activations": ["reglu"], "seeds": 1, **GPT,
                         "sweep": {"model.name": ["gpt", "cnn1d"]}})
    assert any("reglu is a gated activation" in p and "got model cnn1d" in p
               for p in raised.value.problems)
