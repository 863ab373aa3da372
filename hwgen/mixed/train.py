"""Seeded training for the search: scikit-learn digits and a plain Adam + cross-entropy loop.

The same loop trains the float model and fine-tunes its quantised twins (quantisation-aware
training with Brevitas, from the float weights, at a lower learning rate).
"""

import numpy as np

__all__ = ["seed_everything", "load_digits_split", "train", "logits", "accuracy"]


def seed_everything(seed):
    """Seed Python, numpy and torch, and ask torch for deterministic kernels."""
    import random

    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def load_digits_split(seed=0, test_fraction=0.2, input_shape=(64,)):
    """(x_train, y_train, x_test, y_test) of scikit-learn's 8×8 digits (shipped, nothing is downloaded):
    float32 images in [0, 1] reshaped to ``(N, *input_shape)``, stratified split seeded with ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32).reshape((-1,) + tuple(input_shape))
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return xtr, ytr, xte, yte


def train(model, x, y, *, epochs=40, lr=1e-2, batch=64, seed=0, progress=None):
    """Seeded Adam + cross-entropy with a cosine schedule; ``progress(epoch, epochs, loss)`` after each
    epoch.  Returns the model in eval mode."""
    import torch

    g = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(epochs, 1))
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for ep in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        total = 0.0
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(_value(model(xt[idx])), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        if progress:
            progress(ep + 1, epochs, total / len(xt))
    return model.eval()


def _value(out):
    """The float tensor of a model output (a Brevitas QuantTensor or a plain tensor)."""
    return out.value if hasattr(out, "value") else out


def logits(model, x):
    """The model's outputs on numpy inputs ``x`` as a numpy array (eval mode, no gradients)."""
    import torch
    model.eval()
    with torch.no_grad():
        return _value(model(torch.from_numpy(x))).numpy()


def accuracy(scores, y):
    """Fraction of rows of ``scores`` whose arg-max is the label."""
    return float((np.asarray(scores).argmax(axis=1) == np.asarray(y)).mean())
