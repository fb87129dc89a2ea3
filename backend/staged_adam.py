"""Adam over stages of parameters: the schedule the landmark-driven fits share (the landmark
fit tracker, the identity fit)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def minimise_in_stages(loss_fn: Callable[[], torch.Tensor],
                       stages: Sequence[tuple[list[torch.Tensor], int]], learning_rate: float,
                       constrain: Callable[[], None],
                       on_step: Callable[[int, int], None] | None = None) -> None:
    """Minimise loss_fn with Adam, one stage after another: (the parameters it moves, its
    steps). `constrain` projects the parameters back into their bounds after every step (it
    runs under no_grad); on_step(done, total) reports progress over all stages."""
    total = sum(steps for _, steps in stages)
    done = 0
    for params, steps in stages:
        optimizer = torch.optim.Adam(params, lr=learning_rate)
        # Adam's steps stay near the learning rate; decaying it to 1% lets the fit settle.
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i, n=steps: 0.01 ** (i / n))
        for _ in range(steps):
            optimizer.zero_grad()
            loss_fn().backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                constrain()
            done += 1
            if on_step:
                on_step(done, total)
