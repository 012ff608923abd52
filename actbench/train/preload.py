"""Imported once by the fork server of the local executor, so that every worker forked from it
starts warm: the modules a run needs are loaded, and so is what torch loads on first use (building
an optimiser imports torch's compiler stack, about 2 s that each worker would otherwise pay).

Nothing here runs a parallel region: a process forked after torch's thread pools start is unsafe.
"""

from __future__ import annotations

import torch

from . import data, loop  # noqa: F401  (loaded for the workers)
from ..zoo import definitions  # noqa: F401

torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
