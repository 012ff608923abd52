"""The zoo's table of contents without importing torch: what `actbench list` prints.

`actbench list` starts in a fraction of a second from these rows instead of the 1-2 s it takes to
import torch and build the zoo. They are generated from the registry (`write()`), and a test fails
when they differ from it, naming the command that brings them up to date. Activations registered
at run time (`actbench.register`) are the library's, not the command's, and are not listed here.
"""

from __future__ import annotations

from pathlib import Path

from .errors import UnknownNameError

COLUMNS = ("name", "family", "formula", "trainable", "implementations", "source")

ROWS = (('identity', 'classic', 'x', '-', 'native*, formula', '-'),
 ('relu', 'ReLU family', 'max(0, x)', '-', 'native*, formula, compiled', 'Nair & Hinton 2010'),
 ('leaky_relu',
  'ReLU family',
  'x if x >= 0 else negative_slope * x (0.01)',
  '-',
  'native*, formula, compiled',
  'Maas et al. 2013'),
 ('prelu',
  'ReLU family',
  'x if x >= 0 else a * x, a trainable',
  'a',
  'native*, formula, compiled',
  'He et al. 2015'),
 ('relu6',
  'ReLU family',
  'min(max(0, x), 6)',
  '-',
  'native*, formula, compiled',
  'Krizhevsky 2010'),
 ('elu',
  'exponential',
  'x if x > 0 else alpha * (exp(x) - 1) (alpha 1)',
  '-',
  'native*, formula, compiled',
  'Clevert et al. 2015'),
 ('selu',
  'exponential',
  'scale * (x if x > 0 else alpha * (exp(x) - 1))',
  '-',
  'native*, formula, compiled',
  'Klambauer et al. 2017'),
 ('celu',
  'exponential',
  'x if x > 0 else alpha * (exp(x / alpha) - 1) (alpha 1)',
  '-',
  'native*, formula, compiled',
  'Barron 2017'),
 ('gelu',
  'Gaussian',
  'x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))',
  '-',
  'native*, formula, memeff, compiled, fast',
  'Hendrycks & Gimpel 2016'),
 ('gelu_tanh',
  'Gaussian',
  '0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))',
  '-',
  'native*, formula, memeff, compiled, fast',
  'Hendrycks & Gimpel 2016'),
 ('quick_gelu',
  'Gaussian',
  'x * sigmoid(1.702 x)',
  '-',
  'formula*, memeff, compiled, fast',
  'Hendrycks & Gimpel 2016'),
 ('silu',
  'self-gated',
  'x * sigmoid(x)',
  '-',
  'native*, formula, memeff, compiled, fast',
  'Elfwing et al. 2017'),
 ('swish',
  'self-gated',
  'x * sigmoid(beta x), beta trainable',
  'beta',
  'formula*, memeff, compiled, fast',
  'Ramachandran et al. 2017'),
 ('mish',
  'self-gated',
  'x * tanh(softplus(x))',
  '-',
  'native*, formula, memeff, compiled, fast',
  'Misra 2019'),
 ('softplus',
  'classic',
  'log(1 + exp(x))',
  '-',
  'native*, formula, compiled, fast',
  'Dugas et al. 2001'),
 ('tanh',
  'classic',
  '(exp(x) - exp(-x)) / (exp(x) + exp(-x))',
  '-',
  'native*, formula, compiled',
  'classical'),
 ('sigmoid', 'classic', '1 / (1 + exp(-x))', '-', 'native*, formula, compiled', 'classical'),
 ('hardswish',
  'hard',
  'x * relu6(x + 3) / 6',
  '-',
  'native*, formula, compiled, fast',
  'Howard et al. 2019'),
 ('hardsigmoid',
  'hard',
  'relu6(x + 3) / 6',
  '-',
  'native*, formula, compiled',
  'Howard et al. 2019'),
 ('hard_mish',
  'hard',
  'x * clamp(x + 2, 0, 2) / 2',
  '-',
  'formula*, compiled, fast',
  'piecewise-quadratic Mish, 2020'),
 ('tanhexp',
  'self-gated',
  'x * tanh(exp(x))',
  '-',
  'formula*, memeff, compiled, fast',
  'Liu & Di 2020'),
 ('serf',
  'self-gated',
  'x * erf(softplus(x))',
  '-',
  'formula*, memeff, compiled, fast',
  'Nag & Bhattacharyya 2021'),
 ('logish',
  'self-gated',
  'x * log(1 + sigmoid(x))',
  '-',
  'formula*, memeff, compiled, fast',
  'Zhu et al. 2021'),
 ('acon_a',
  'ACON',
  'x * sigmoid(beta x) (Swish, learnable beta)',
  'beta',
  'formula*, memeff, compiled, fast',
  'Ma et al. 2021'),
 ('acon_b',
  'ACON',
  '(1 - p) x * sigmoid(beta (1 - p) x) + p x',
  'p (stored as p2), beta',
  'formula*, memeff, compiled, fast',
  'Ma et al. 2021'),
 ('acon_c',
  'ACON',
  '(p1 - p2) x * sigmoid(beta (p1 - p2) x) + p2 x',
  'p1, p2, beta',
  'formula*, memeff, compiled, fast',
  'Ma et al. 2021'),
 ('meta_acon',
  'ACON',
  'ACON-C with beta = sigmoid(switching net(channel means))',
  'p1, p2, switching net',
  'formula*, memeff, compiled, fast',
  'Ma et al. 2021'))


def rows_in_family(family: str | None = None) -> list[tuple[str, ...]]:
    """The rows, all or one family's (case-insensitive)."""
    if family is None:
        return list(ROWS)
    families = {row[1].lower(): row[1] for row in ROWS}
    if family.lower() not in families:
        raise UnknownNameError("family", family, families.values())
    return [row for row in ROWS if row[1].lower() == family.lower()]


def row_of(spec) -> tuple[str, ...]:
    """One activation spec as a row (the default implementation marked *)."""
    trainable = ", ".join(p.name for p in spec.trainable) or "-"
    impls = ", ".join(f"{i}*" if i == spec.default_impl else i for i in spec.implementations)
    return spec.name, spec.family, spec.formula, trainable, impls, spec.source


def current_rows() -> tuple[tuple[str, ...], ...]:
    """The rows as the registry has them now (imports torch)."""
    from .zoo.registry import specs

    return tuple(row_of(spec) for spec in specs())


def write(path: Path | None = None) -> Path:
    """Regenerate this file's ROWS from the registry: `python -c "import actbench.catalogue as c; c.write()"`."""
    path = Path(path or __file__)
    text = path.read_text()
    start, end = text.index("ROWS = ("), text.index("\n\n\ndef rows_in_family")
    path.write_text(text[:start] + "ROWS = " + _literal(current_rows()) + text[end:])
    return path


def _literal(rows: tuple[tuple[str, ...], ...]) -> str:
    import pprint

    return pprint.pformat(rows, width=100)
