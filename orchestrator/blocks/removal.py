"""Structural removal with an explicit contract.

A component is never "turned off". Its removal is one of four named contracts,
chosen by a config string so that a study YAML can state it as an override
(``model.residual: skip``):

``keep``
    The wrapped module, unchanged.
``identity``
    The module is replaced by the identity: the output *is* the input. Only valid
    when the module maps a shape to the same shape; anything else is an error,
    because an identity that silently reshapes would be a different model.
``zero``
    The module's output is replaced by zeros of the module's output shape and dtype,
    so downstream layers see a dead signal of the right shape (e.g. a zeroed
    branch inside a sum, or a zeroed feature block before a concatenation).
``skip``
    For a residual block ``f(x) + shortcut(x)``: only the residual path
    ``shortcut(x)`` (the identity, or a projection when the block changes shape).

Choices worth knowing:

* The removed part is *dropped from the module tree*: ``model.parameters()`` and the
  optimizer never see it, parameter counts are honest and the state dict holds no
  dead weights. Build the full model first (see :func:`build_then_remove`) so that
  the random initialisation of every kept part is identical across variants.
* ``zero`` and ``identity`` need the module's output shape. We infer it once per
  input shape by running a copy of the module on PyTorch's ``meta`` device: shape
  propagation only, no FLOPs, no memory, no gradients, and none of the side effects
  that a real forward pass under ``torch.no_grad()`` would have (BatchNorm running
  statistics updated, dropout consuming the global RNG stream and so changing every
  later random draw of the trial). Pass ``out_shape`` for a module whose operators
  have no meta kernels.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import torch
from torch import nn

MODES: tuple[str, ...] = ("keep", "identity", "zero", "skip")


def check_mode(mode: str, *, allowed: tuple[str, ...] = MODES, what: str = "removal mode") -> str:
    """Return ``mode`` if it is one of ``allowed``; raise a ValueError naming the choices."""
    if mode not in allowed:
        raise ValueError(f"unknown {what} {mode!r}; expected one of {', '.join(allowed)}")
    return mode


class ResidualBlock(nn.Module):
    """``body(x) + shortcut(x)``; the shortcut is the identity unless a projection is given."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None):
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class Removable(nn.Module):
    """A module whose presence is decided by a removal mode (see the module docstring).

    >>> block = Removable(nn.Linear(4, 4), mode="identity")
    >>> x = torch.randn(2, 4)
    >>> torch.equal(block(x), x)
    True
    """

    def __init__(
        self,
        module: nn.Module,
        mode: str = "keep",
        *,
        out_shape: Callable[[torch.Size], tuple[int, ...]] | None = None,
    ):
        super().__init__()
        self.mode = check_mode(mode)
        self.wrapped_name = type(module).__name__
        self.removed_parameters = 0
        self.body: nn.Module | None
        if self.mode == "keep":
            self.body = module
        elif self.mode == "skip":
            if not hasattr(module, "shortcut"):
                raise ValueError(
                    f"'skip' needs a residual block with a .shortcut path (e.g. ResidualBlock);"
                    f" {self.wrapped_name} has none: use 'identity' or 'zero' instead"
                )
            self.body = module.shortcut
            kept = {id(p) for p in self.body.parameters()}
            self.removed_parameters = sum(
                p.numel() for p in module.parameters() if id(p) not in kept
            )
        else:  # identity, zero: the module leaves the tree
            self.body = None
            self.removed_parameters = sum(p.numel() for p in module.parameters())
        self._out_shape_fn = out_shape
        # Unregistered (a plain list attribute), so the meta copy is not a submodule.
        self._probe: list[nn.Module] = []
        if self.mode in ("identity", "zero") and out_shape is None:
            self._probe.append(copy.deepcopy(module).to("meta"))
        self._shapes: dict[tuple, tuple[torch.Size, torch.dtype]] = {}

    def output_spec(self, x: torch.Tensor) -> tuple[torch.Size, torch.dtype]:
        """The wrapped module's output (shape, dtype) for an input like ``x``; cached per shape."""
        key = (tuple(x.shape), x.dtype)
        if key not in self._shapes:
            if self._out_shape_fn is not None:
                spec = (torch.Size(self._out_shape_fn(x.shape)), x.dtype)
            else:
                probe = self._probe[0]
                probe.train(self.training)
                try:
                    with torch.no_grad():
                        out = probe(torch.empty(x.shape, dtype=x.dtype, device="meta"))
                except (NotImplementedError, RuntimeError) as err:
                    raise RuntimeError(
                        f"could not infer the output shape of {self.wrapped_name} on the meta"
                        f" device ({err}); pass out_shape= to Removable"
                    ) from err
                if not isinstance(out, torch.Tensor):
                    raise TypeError(
                        f"{self.wrapped_name} returns {type(out).__name__}; 'zero' and"
                        " 'identity' support modules that return one tensor"
                    )
                spec = (out.shape, out.dtype)
            self._shapes[key] = spec
        return self._shapes[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode in ("keep", "skip"):
            return self.body(x)
        shape, dtype = self.output_spec(x)
        if self.mode == "identity":
            if shape != x.shape:
                raise ValueError(
                    f"'identity' removal of {self.wrapped_name} needs output shape == input"
                    f" shape, but {tuple(x.shape)} -> {tuple(shape)}; use 'zero' or 'skip'"
                )
            return x
        return torch.zeros(shape, dtype=dtype, device=x.device)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, wrapped={self.wrapped_name}"


def build_then_remove(
    factories: Mapping[str, Callable[[], nn.Module]], keep: Mapping[str, bool]
) -> dict[str, nn.Module]:
    """Build every part in the given order, then return only the kept ones.

    Building the removed parts too (and throwing them away) keeps the random-number
    stream identical across variants, so after ``torch.manual_seed(seed)`` each kept
    part starts from exactly the weights it has in the baseline: the comparison
    measures the removal, not a different initialisation.
    """
    unknown = set(keep) - set(factories)
    if unknown:
        raise KeyError(f"keep names unknown parts: {sorted(unknown)}")
    built = {name: factory() for name, factory in factories.items()}
    return {name: module for name, module in built.items() if keep.get(name, True)}


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters that require gradients (what an optimizer should be given)."""
    return [p for p in model.parameters() if p.requires_grad]
