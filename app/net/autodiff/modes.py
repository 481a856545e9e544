"""What each backprop mode changes: only the rules of rectifying activations (and, on request, LRN).

- ``grad``: the vanilla gradient (SaliNet in Mahendran & Vedaldi's terms); no override.
- ``deconv`` (Zeiler & Fergus' DeconvNet): a rectifier passes relu(top diff), ignoring the forward
  input.
- ``guided`` (Springenberg et al.'s guided backprop): a rectifier's own gradient applied to relu(top
  diff): Relu gives top * (x > 0) * (top > 0), ReLU6 top * (0 < x < 6) * (top > 0), LeakyRelu lets
  slope * relu(top) through where x < 0.
- ``desalinet`` (Mahendran & Vedaldi's DeSaliNet): DeconvNet's relu(top diff), masked by the forward
  switch of the unit (was its output positive?): relu(top) * (y > 0). For Relu this equals ``guided``;
  the two differ where a rectifier's slope is not 0/1: saturated ReLU6 units (x >= 6: desalinet passes,
  guided blocks), the negative side of LeakyRelu / PRelu / Elu / Selu / Celu (guided passes the scaled
  signal, desalinet blocks), HardSwish's curved part (guided scales by its slope).

Max pooling is the same in every mode: its gradient already routes each diff through the forward
switch (the window's first maximum), which is exactly DeconvNet's and DeSaliNet's switch unpooling.

Which op types are rectifiers is the table of op traits' (app/net/ops.py). A Clip is a rectifier
only when its lower bound is 0 (ReLU, ReLU6, ReLU-n); otherwise every mode uses its gradient.
"""
from functools import lru_cache, partial

import numpy as np

from app.net.autodiff import pooling
from app.net.autodiff.elementwise import clip_bounds, clip_mask, gated, relu_mask
from app.net.autodiff.op import Op
from app.net.autodiff.rules import RULES
from app.net.ops import op_types

RECTIFIERS = op_types(rectifier=True)  # the table of op traits says which ops rectify
MODES = ("grad", "deconv", "guided", "desalinet")
OPTIONS = ("lrn_passthrough", "seed_through_rectifier")
GATES = {"Relu": relu_mask, "Clip": clip_mask}  # rectifiers whose gradient is a 0/1 gate


def rectifies(op: Op) -> bool:
    """Whether a node of RECTIFIERS rectifies (a Clip only with its lower bound at 0)."""
    if op.node.op_type != "Clip":
        return True
    low = clip_bounds(op)[0]
    return bool(np.all(np.asarray(low) == 0))


def _positive(diff: np.ndarray) -> np.ndarray:
    return np.maximum(diff, 0)


def _deconv(rule, op: Op):
    return [_positive(op.dy)] if rectifies(op) else rule(op)


def _guided(rule, op: Op):
    if not rectifies(op):
        return rule(op)
    gate = GATES.get(op.node.op_type)
    if gate is None:
        return rule(op.with_dy(_positive(op.dy)))
    dx = _positive(op.dy)  # the same as the rule on relu(dy), in one buffer: these two run on every layer
    return [gated(dx, op.x, gate(op), in_place=True)]


def _desalinet(rule, op: Op):
    if not rectifies(op):
        return rule(op)
    dx = _positive(op.dy)
    dx *= op.y > 0
    return [dx]


_RECTIFIER_RULE = {"deconv": _deconv, "guided": _guided, "desalinet": _desalinet}


@lru_cache(maxsize=None)
def rules_for(mode: str, lrn_passthrough: bool = False) -> dict:
    """The rule table of a mode: the vanilla table with the mode's rows replaced."""
    return with_mode(RULES, _RECTIFIER_RULE, mode, pooling.lrn_passthrough if lrn_passthrough else None)


def with_mode(rules: dict, overrides: dict, mode: str, lrn=None) -> dict:
    """A copy of a rule table (NumPy's or the graph's) whose rectifier rows are ``overrides[mode]``
    bound to the table's own rule of that row (what a rectifier that does not rectify uses);
    lrn: LRN's row instead of the table's."""
    table = dict(rules)
    if mode in overrides:
        for op_type in RECTIFIERS:
            table[op_type] = partial(overrides[mode], rules.get(op_type))
    if lrn is not None:
        table["LRN"] = lrn
    return table
