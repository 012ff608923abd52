"""The activation zoo: every built-in activation, its formula, source and implementations.

`ZOO` holds their specs in zoo order; the registry adds them on its first lookup. Families: classic,
ReLU family, exponential, Gaussian, self-gated, hard (piecewise), ACON and GLU (gated: the input's
last dim split into a value and a gate half, (..., 2h) -> (..., h)).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import torch
import torch.nn.functional as F

from . import fast, fast_gated, fast_squared, gated
from . import functional as fn
from .modules import ACON, Elementwise, Gated, MetaACON, PReLU, StarReLU, Swish
from .spec import ActivationSpec, TrainableParam

ZOO: list[ActivationSpec] = []


def _elementwise(name: str, family: str, formula: str, source: str, *, formula_fn, native=None,
                 memeff=None, fast_fn=None, options: dict | None = None,
                 aliases: tuple[str, ...] = ()) -> None:
    """A parameter-free pointwise activation: native / formula / memeff / compiled / fast as available."""
    routes = {"native": native, "formula": formula_fn, "memeff": memeff,
              "compiled": fn.compiled(formula_fn, name) if name != "identity" else None,
              "fast": fast_fn}

    def builder_for(impl, route):
        def build(channels=None, **opts):
            return Elementwise(name, impl, partial(route, **opts) if opts else route)
        return build

    builders = {impl: builder_for(impl, route) for impl, route in routes.items() if route is not None}
    defaults = dict(options or {})
    spec = ActivationSpec(name=name, family=family, formula=formula, source=source, builders=builders,
                          options=defaults, aliases=aliases)
    default_route = routes[spec.default_impl]
    function = partial(default_route, **defaults) if defaults else default_route
    ZOO.append(replace(spec, function=function))


def _trainable(name: str, family: str, formula: str, source: str, *, module, routes: dict,
               options: dict, trainable: tuple[TrainableParam, ...], channelwise: bool,
               pointwise: bool = True, aliases: tuple[str, ...] = (), **module_kwargs) -> None:
    """An activation with parameters: one module class, the math chosen per implementation."""

    def builder_for(impl, route):
        def build(channels=None, **opts):
            cls = module
            if module.takes_channels:
                opts["channels"] = channels
                if channels is None and module.lazy_class is not None:
                    cls = module.lazy_class  # channels from the first input
            return cls(name, impl, route, **module_kwargs, **opts)
        return build

    ZOO.append(ActivationSpec(name=name, family=family, formula=formula, source=source,
                              builders={impl: builder_for(impl, route) for impl, route in routes.items()},
                              options=options, trainable=trainable, channelwise=channelwise,
                              lazy_channels=channelwise and module.lazy_class is not None,
                              pointwise=pointwise, aliases=aliases))


def _gated(name: str, formula: str, source: str, *, formula_fn, memeff, fast_fn, native=None,
           aliases: tuple[str, ...] = ()) -> None:
    """A member of the GLU family: (..., 2h) -> (..., h), the order of the halves an option."""
    routes = {"native": native, "formula": formula_fn, "memeff": memeff,
              "compiled": fn.compiled(formula_fn, name), "fast": fast_fn}

    def builder_for(impl, route):
        def build(channels=None, gate_first=0):
            return Gated(name, impl, route, gate_first=gate_first)
        return build

    ZOO.append(ActivationSpec(name=name, family=GLU, formula=formula, source=source,
                              builders={impl: builder_for(impl, route)
                                        for impl, route in routes.items() if route is not None},
                              options={"gate_first": 0}, aliases=aliases, pointwise=False,
                              gated=True))


CLASSIC, RELU, EXP, GAUSS, GATED, HARD, ACON_FAMILY, GLU = (
    "classic", "ReLU family", "exponential", "Gaussian", "self-gated", "hard", "ACON", "GLU")

_elementwise("identity", CLASSIC, "x", "-", formula_fn=fn.identity_formula,
             native=fn.identity_formula, aliases=("linear", "none"))
_elementwise("relu", RELU, "max(0, x)", "Nair & Hinton 2010", formula_fn=fn.relu_formula,
             native=F.relu)
_elementwise("leaky_relu", RELU, "x if x >= 0 else negative_slope * x (0.01)", "Maas et al. 2013",
             formula_fn=fn.leaky_relu_formula, native=F.leaky_relu,
             options={"negative_slope": 0.01}, aliases=("leakyrelu", "lrelu"))
_trainable("prelu", RELU, "x if x >= 0 else a * x, a trainable", "He et al. 2015", module=PReLU,
           routes={"native": F.prelu, "formula": fn.prelu_formula,
                   "compiled": fn.compiled(fn.prelu_formula, "prelu")},
           options={"init": 0.25}, channelwise=False,
           trainable=(TrainableParam("a", "per channel if channels= is given, else one", "0.25"),))
_elementwise("relu6", RELU, "min(max(0, x), 6)", "Krizhevsky 2010", formula_fn=fn.relu6_formula,
             native=F.relu6)
_elementwise("relu2", RELU, "max(0, x)^2", "So et al. 2021 (Primer)", formula_fn=fn.relu2_formula,
             fast_fn=fast_squared.relu2_fast, aliases=("squared_relu", "relu_squared"))
# s and b whiten relu(x)^2 for x ~ N(0, 1): E = 1/2, Var = 5/4, so s = 1 / sqrt(5/4), b = -s / 2
STAR_RELU_SCALE, STAR_RELU_BIAS = 2.0 / 5.0 ** 0.5, -1.0 / 5.0 ** 0.5
_trainable("star_relu", RELU, "s * max(0, x)^2 + b, s and b trainable",
           "Yu et al. 2022 (MetaFormer Baselines)", module=StarReLU,
           routes={"formula": fn.star_relu_formula, "memeff": fn.star_relu_memeff,
                   "compiled": fn.compiled(fn.star_relu_formula, "star_relu"),
                   "fast": fast_squared.star_relu_fast},
           options={"scale": STAR_RELU_SCALE, "bias": STAR_RELU_BIAS}, channelwise=False,
           trainable=(TrainableParam("s (scale)", "scalar", "2/sqrt(5) = 0.8944"),
                      TrainableParam("b (bias)", "scalar", "-1/sqrt(5) = -0.4472")),
           aliases=("starrelu",))
_elementwise("elu", EXP, "x if x > 0 else alpha * (exp(x) - 1) (alpha 1)", "Clevert et al. 2015",
             formula_fn=fn.elu_formula, native=F.elu, options={"alpha": 1.0})
_elementwise("selu", EXP, "scale * (x if x > 0 else alpha * (exp(x) - 1))", "Klambauer et al. 2017",
             formula_fn=fn.selu_formula, native=F.selu)
_elementwise("celu", EXP, "x if x > 0 else alpha * (exp(x / alpha) - 1) (alpha 1)", "Barron 2017",
             formula_fn=fn.celu_formula, native=F.celu, options={"alpha": 1.0})
_elementwise("gelu", GAUSS, "x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))", "Hendrycks & Gimpel 2016",
             formula_fn=fn.gelu_formula, native=F.gelu, memeff=fn.gelu_memeff,
             fast_fn=fast.gelu_fast, aliases=("gelu_erf",))
_elementwise("gelu_tanh", GAUSS, "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
             "Hendrycks & Gimpel 2016", formula_fn=fn.gelu_tanh_formula,
             native=partial(F.gelu, approximate="tanh"), memeff=fn.gelu_tanh_memeff,
             fast_fn=fast.gelu_tanh_fast, aliases=("gelu_approx",))
_elementwise("quick_gelu", GAUSS, "x * sigmoid(1.702 x)", "Hendrycks & Gimpel 2016",
             formula_fn=fn.quick_gelu_formula, memeff=fn.quick_gelu_memeff,
             fast_fn=fast.quick_gelu_fast, aliases=("quickgelu",))
_elementwise("silu", GATED, "x * sigmoid(x)", "Elfwing et al. 2017", formula_fn=fn.silu_formula,
             native=F.silu, memeff=fn.silu_memeff, fast_fn=fast.silu_fast,
             aliases=("swish1", "swish_1"))
_trainable("swish", GATED, "x * sigmoid(beta x), beta trainable", "Ramachandran et al. 2017",
           module=Swish,
           routes={"formula": fn.swish_formula, "memeff": fn.swish_memeff,
                   "compiled": fn.compiled(fn.swish_formula, "swish"), "fast": fast.swish_fast},
           options={"beta": 1.0}, channelwise=False,
           trainable=(TrainableParam("beta", "scalar", "1.0"),))
_elementwise("mish", GATED, "x * tanh(softplus(x))", "Misra 2019", formula_fn=fn.mish_formula,
             native=F.mish, memeff=fn.mish_memeff, fast_fn=fast.mish_fast)
_elementwise("softplus", CLASSIC, "log(1 + exp(x))", "Dugas et al. 2001",
             formula_fn=fn.softplus_formula, native=F.softplus, fast_fn=fast.softplus_fast)
_elementwise("tanh", CLASSIC, "(exp(x) - exp(-x)) / (exp(x) + exp(-x))", "classical",
             formula_fn=fn.tanh_formula, native=torch.tanh)
_elementwise("sigmoid", CLASSIC, "1 / (1 + exp(-x))", "classical", formula_fn=fn.sigmoid_formula,
             native=torch.sigmoid, aliases=("logistic",))
_elementwise("hardswish", HARD, "x * relu6(x + 3) / 6", "Howard et al. 2019",
             formula_fn=fn.hardswish_formula, native=F.hardswish, fast_fn=fast.hardswish_fast,
             aliases=("hard_swish", "h_swish"))
_elementwise("hardsigmoid", HARD, "relu6(x + 3) / 6", "Howard et al. 2019",
             formula_fn=fn.hardsigmoid_formula, native=F.hardsigmoid,
             aliases=("hard_sigmoid", "h_sigmoid"))
_elementwise("hard_mish", HARD, "x * clamp(x + 2, 0, 2) / 2", "piecewise-quadratic Mish, 2020",
             formula_fn=fn.hard_mish_formula, fast_fn=fast.hard_mish_fast, aliases=("hardmish",))
_elementwise("tanhexp", GATED, "x * tanh(exp(x))", "Liu & Di 2020", formula_fn=fn.tanhexp_formula,
             memeff=fn.tanhexp_memeff, fast_fn=fast.tanhexp_fast, aliases=("tanh_exp",))
_elementwise("serf", GATED, "x * erf(softplus(x))", "Nag & Bhattacharyya 2021",
             formula_fn=fn.serf_formula, memeff=fn.serf_memeff, fast_fn=fast.serf_fast)
_elementwise("logish", GATED, "x * log(1 + sigmoid(x))", "Zhu et al. 2021",
             formula_fn=fn.logish_formula, memeff=fn.logish_memeff, fast_fn=fast.logish_fast)

_ACON_ROUTES = {"formula": fn.acon_formula, "memeff": fn.acon_memeff,
                "compiled": fn.compiled(fn.acon_formula, "acon"), "fast": fast.acon_fast}
_P1 = TrainableParam("p1", "per channel", "N(0, 1)")
_P2 = TrainableParam("p2", "per channel", "N(0, 1)")
_BETA = TrainableParam("beta", "per channel", "1.0")
_trainable("acon_a", ACON_FAMILY, "x * sigmoid(beta x) (Swish, learnable beta)", "Ma et al. 2021",
           module=ACON, routes=_ACON_ROUTES, options={"beta": 1.0}, channelwise=True,
           trainable=(_BETA,), variant="a", aliases=("acona",))
_trainable("acon_b", ACON_FAMILY, "(1 - p) x * sigmoid(beta (1 - p) x) + p x", "Ma et al. 2021",
           module=ACON, routes=_ACON_ROUTES, options={"beta": 1.0}, channelwise=True,
           trainable=(TrainableParam("p (stored as p2)", "per channel", "N(0, 1)"), _BETA),
           variant="b", aliases=("aconb",))
_trainable("acon_c", ACON_FAMILY, "(p1 - p2) x * sigmoid(beta (p1 - p2) x) + p2 x",
           "Ma et al. 2021", module=ACON, routes=_ACON_ROUTES, options={"beta": 1.0},
           channelwise=True, trainable=(_P1, _P2, _BETA), variant="c", aliases=("aconc", "acon"))
_trainable("meta_acon", ACON_FAMILY, "ACON-C with beta = sigmoid(switching net(channel means))",
           "Ma et al. 2021", module=MetaACON, routes=_ACON_ROUTES, options={"r": 16},
           channelwise=True, pointwise=False,
           trainable=(_P1, _P2, TrainableParam("switching net", "2 conv 1x1 + 2 BatchNorm",
                                               "PyTorch defaults")),
           aliases=("metaacon", "meta_acon_c"))

_HALVES = "[a, b] -> a * "  # the input's last dim is [a, b], the value a and the gate b
_gated("glu", _HALVES + "sigmoid(b)", "Dauphin et al. 2017; Shazeer 2020",
       formula_fn=gated.glu_formula, native=gated.glu_native, memeff=gated.glu_memeff,
       fast_fn=fast_gated.glu_fast)
_gated("reglu", _HALVES + "relu(b)", "Shazeer 2020", formula_fn=gated.reglu_formula,
       memeff=gated.reglu_memeff, fast_fn=fast_gated.reglu_fast)
_gated("geglu", _HALVES + "gelu(b), erf form", "Shazeer 2020", formula_fn=gated.geglu_formula,
       memeff=gated.geglu_memeff, fast_fn=fast_gated.geglu_fast)
_gated("geglu_tanh", _HALVES + "gelu_tanh(b), tanh approximation", "Shazeer 2020",
       formula_fn=gated.geglu_tanh_formula, memeff=gated.geglu_tanh_memeff,
       fast_fn=fast_gated.geglu_tanh_fast, aliases=("geglu_approx",))
_gated("swiglu", _HALVES + "silu(b)", "Shazeer 2020", formula_fn=gated.swiglu_formula,
       memeff=gated.swiglu_memeff, fast_fn=fast_gated.swiglu_fast)
_gated("bilinear", _HALVES + "b", "Shazeer 2020", formula_fn=gated.bilinear_formula,
       memeff=gated.bilinear_memeff, fast_fn=fast_gated.bilinear_fast)
