"""The EMA of a model's weights in a few multi-tensor launches.

mmengine's ``ExponentialMovingAverage`` updates each entry of the state dict with its own ``lerp_``: a classifier
with hundreds of tensors costs hundreds of kernel launches and as many trips through Python after every step,
time in which the GPU mostly waits. :class:`ForeachExponentialMovingAverage` computes the same update
(``torch._foreach_lerp_`` is ``lerp_`` on a list) with one launch per device and dtype, so it is a drop-in
``ema_type`` for mmengine's ``EMAHook``.
"""
from collections import defaultdict

import torch
from mmengine.model import ExponentialMovingAverage
from mmengine.registry import MODELS


@MODELS.register_module()
class ForeachExponentialMovingAverage(ExponentialMovingAverage):
    """mmengine's ``ExponentialMovingAverage`` (same arguments, same results, same checkpoints), updated with
    multi-tensor ops.

    As there, the first update copies the model, and later ones move every floating-point entry (the parameters,
    and the buffers with ``update_buffers=True``) towards the model by ``momentum``, every ``interval`` steps;
    integer buffers are left as they are, and without ``update_buffers`` the buffers are copied.
    """

    @torch.no_grad()
    def update_parameters(self, model):
        source = model.state_dict() if self.update_buffers else dict(model.named_parameters())
        steps = int(self.steps)
        if steps == 0:
            self._apply(torch._foreach_copy_, self.avg_parameters, source, floating_only=False)
        elif steps % self.interval == 0:
            self._apply(lambda averaged, current: torch._foreach_lerp_(averaged, current, self.momentum),
                        self.avg_parameters, source, floating_only=True)
        if not self.update_buffers:
            buffers = dict(model.named_buffers())
            self._apply(torch._foreach_copy_, dict(self.module.named_buffers()), buffers, floating_only=False)
        self.steps += 1

    @staticmethod
    def _apply(op, averaged, source, floating_only):
        """``op(averaged tensors, source tensors)`` per (device, dtype) group of the averaged entries."""
        groups = defaultdict(lambda: ([], []))
        for name, average in averaged.items():
            if floating_only and not average.dtype.is_floating_point:
                continue
            targets, sources = groups[average.device, average.dtype]
            targets.append(average.detach())
            sources.append(source[name].detach().to(device=average.device, dtype=average.dtype))
        for targets, sources in groups.values():
            op(targets, sources)
