"""scikit-learn digits (8×8, ships with the package: nothing is downloaded) and
a seeded Brevitas training loop shared by the examples."""

import numpy as np

__all__ = ["load_digits_split", "train", "accuracy", "seed_everything"]


def seed_everything(seed):
    import random

    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def load_digits_split(seed=0, test_fraction=0.2):
    """(x_train, y_train, x_test, y_test): float32 images in [0, 1], shape (N, 64)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return xtr, ytr, xte, yte


def train(model, x, y, *, epochs=40, lr=1e-2, batch=64, seed=0, progress=None):
    """Plain seeded Adam + cross-entropy training; returns the model in eval mode."""
    import torch

    g = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for ep in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        total = 0.0
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            out = model(xt[idx])
            out = out.value if hasattr(out, "value") else out
            loss = loss_fn(out, yt[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        sched.step()
        if progress:
            progress(ep + 1, epochs, total / len(xt))
    return model.eval()


def accuracy(logits, y):
    return float((np.asarray(logits).argmax(axis=1) == np.asarray(y)).mean())
