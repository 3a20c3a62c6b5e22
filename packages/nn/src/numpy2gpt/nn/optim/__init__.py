"""numpy2gpt.nn.optim: optimizers (SGD, Adam, AdamW), learning-rate schedules and gradient clipping.

Each optimizer follows the matching ``torch.optim`` class formula for formula (the non-fused, single-tensor
code path), so that the same gradients give the same parameters as PyTorch to float32 rounding.

nanoGPT's training step with them::

    optimizer = optim.AdamW([{"params": matrices, "weight_decay": 0.1}, {"params": vectors, "weight_decay": 0.0}],
                            lr=6e-4, betas=(0.9, 0.95))
    scheduler = optim.lr_scheduler.CosineWarmupLR(optimizer, warmup_iters=100, max_iters=5000, min_lr=6e-5)
    for it in range(max_iters):
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()

Checkpoints: ``nn.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), ...}, path)``,
then ``load_state_dict`` on a freshly built optimizer and scheduler continues the run bit for bit.
"""

from numpy2gpt.nn.optim import lr_scheduler
from numpy2gpt.nn.optim.adam import Adam, AdamW
from numpy2gpt.nn.optim.optimizer import Optimizer
from numpy2gpt.nn.optim.sgd import SGD
from numpy2gpt.nn.utils import clip_grad_norm_

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm_", "lr_scheduler"]
