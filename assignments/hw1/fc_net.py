"""A fully-connected network of any depth, built from the layers in layers.py."""
import numpy as np

from layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    mse_loss,
    relu_backward,
    relu_forward,
    softmax_loss,
)


class FullyConnectedNet:
    """A fully-connected network with ReLU hidden units.

    For L = len(hidden_dims) + 1 affine layers the architecture is

        {affine - [batchnorm] - relu - [dropout]} x (L - 1) - affine - loss

    where batchnorm is used when normalization == 'batchnorm', dropout when
    dropout_keep_ratio < 1, and the loss is softmax cross-entropy (classification) or the
    squared error of mse_loss (regression, e.g. num_classes=1).

    Parameters live in self.params, keyed by layer number i = 1 .. L:
    - 'W{i}' of shape (d_{i-1}, d_i) and 'b{i}' of shape (d_i,), where d_0 = input_dim,
      d_1 .. d_{L-1} = hidden_dims and d_L = num_classes;
    - with batchnorm, 'gamma{i}' and 'beta{i}' of shape (d_i,) for each hidden layer i < L.
    """

    def __init__(
        self,
        hidden_dims,
        input_dim=3 * 32 * 32,
        num_classes=10,
        dropout_keep_ratio=1,
        normalization=None,
        reg=0.0,
        weight_scale=1e-2,
        dtype=np.float32,
        seed=None,
        loss_type="softmax",
    ):
        """Create the parameters of a new network.

        Inputs:
        - hidden_dims: list of the sizes of the hidden layers (may be empty)
        - input_dim: size D of one (flattened) input
        - num_classes: number of scores per example (1 for a scalar regression)
        - dropout_keep_ratio: probability of keeping a unit in dropout; 1 means no dropout
        - normalization: None or 'batchnorm'
        - reg: strength of the L2 penalty 0.5 * reg * sum(W**2) over all weight matrices
        - weight_scale: standard deviation of the normal initial weights
        - dtype: numpy float type of every parameter and of the computation
        - seed: when not None, np.random.seed(seed) is called before the weights are drawn,
          and dropout uses it as its 'seed'
        - loss_type: 'softmax' (softmax_loss) or 'mse' (mse_loss)

        Initialization (in this exact order, so that nets with the same seed are identical):
        for i = 1 .. L, W{i} = weight_scale * np.random.randn(d_{i-1}, d_i) and b{i} = zeros;
        with batchnorm, gamma{i} = ones and beta{i} = zeros for i < L. All cast to dtype.
        """
        if normalization not in (None, "batchnorm"):
            raise ValueError(f"normalization must be None or 'batchnorm', got {normalization!r}")
        if loss_type not in ("softmax", "mse"):
            raise ValueError(f"loss_type must be 'softmax' or 'mse', got {loss_type!r}")
        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype
        self.loss_type = loss_type
        self.params = {}

        if seed is not None:
            np.random.seed(seed)
        # YOUR CODE HERE
        raise NotImplementedError

        # Dropout and batchnorm keep state between calls (mode, seed, running averages).
        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed
        self.bn_params = []
        if self.normalization == "batchnorm":
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]

        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, X, y=None):
        """Scores, or loss and gradients, for a minibatch.

        Inputs:
        - X: input data, of shape (N, d_1, ..., d_k) with d_1 * ... * d_k = input_dim
        - y: None, or targets: labels of shape (N,) for 'softmax'; values of shape (N,) or
          (N, num_classes) for 'mse'

        Returns:
        - when y is None (test mode: dropout off, batchnorm on running averages):
          scores, of shape (N, num_classes)
        - otherwise (training mode): a tuple (loss, grads), where loss is a float (the data
          loss plus 0.5 * reg * sum of W{i}**2 over all i) and grads is a dict with the same
          keys as self.params, each gradient of the shape of its parameter
        """
        X = X.astype(self.dtype)
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        for bn_param in self.bn_params:
            bn_param["mode"] = mode

        scores = None
        # YOUR CODE HERE
        raise NotImplementedError

        if mode == "test":
            return scores

        loss, grads = 0.0, {}
        # YOUR CODE HERE
        raise NotImplementedError

        return float(loss), grads
