"""Models for activation comparisons; every one takes an activation factory, never a name.

Interface: ``MODEL_OPTIONS[name]`` (the `model:` keys each model accepts and their defaults),
``build_model(name, act, input_shape, num_classes, **options) -> nn.Module`` where
``act(channels: int) -> nn.Module`` builds one activation layer, and ``INITIALISERS``.
"""

from __future__ import annotations

COMMON_OPTIONS: dict[str, object] = {"init": "default", "init_std": 0.02}

# model name -> accepted `model:` options (besides name and COMMON_OPTIONS) and their defaults
MODEL_OPTIONS: dict[str, dict[str, object]] = {
    "mlp": {"depth": 3, "width": 256, "dropout": 0.0, "batchnorm": False},
    "cnn": {"conv_layers": 2, "width": 32, "hidden": 128, "dropout": 0.0, "batchnorm": True},
    "deep_fc": {"depth": 10, "width": 500, "dropout": 0.25, "stem_channels": 32},
    "resnet": {"depth": 20, "version": "v1", "width_mult": 1.0},
    "cnn1d": {"depth": 3, "width": 32, "hidden": 256, "dropout": 0.0, "batchnorm": False},
}

INITIALISERS = ("default", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform",
                "orthogonal", "normal")
