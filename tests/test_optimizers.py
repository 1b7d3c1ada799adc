import numpy as np
import pytest
from numpy.testing import assert_allclose

from nnscratch import SGD, Adam, AdamW, NnscratchError, RMSprop
from nnscratch.nn.optimizers import FLUSH_EVERY, get_optimizer
from nnscratch.nn.schedules import Constant, CosineDecay, ExponentialDecay, StepDecay


def step(optimizer, p, g, times=1):
    params, grads = {"w": p}, {"w": g}
    for _ in range(times):
        optimizer.step(params, grads)
    return p


def test_sgd_plain_step():
    p = step(SGD(lr=0.1), np.array([1.0, -2.0]), np.array([0.5, 0.5]))
    assert_allclose(p, [0.95, -2.05])


def test_sgd_momentum_two_steps():
    # v1 = g = 1 -> p = 1 - 0.1 = 0.9; v2 = 0.9 * 1 + 1 = 1.9 -> p = 0.9 - 0.19 = 0.71
    p = step(SGD(lr=0.1, momentum=0.9), np.array([1.0]), np.array([1.0]), times=2)
    assert_allclose(p, [0.71])


def test_sgd_nesterov_two_steps():
    # v1 = 1, p -= 0.1 * (1 + 0.9 * 1) -> 0.81; v2 = 1.9, p -= 0.1 * (1 + 0.9 * 1.9) -> 0.539
    p = step(
        SGD(lr=0.1, momentum=0.9, nesterov=True), np.array([1.0]), np.array([1.0]), 2
    )
    assert_allclose(p, [0.539])


def test_sgd_weight_decay_is_added_to_the_gradient():
    p = step(SGD(lr=0.1, weight_decay=0.5), np.array([2.0]), np.array([0.0]))
    assert_allclose(p, [2.0 - 0.1 * 0.5 * 2.0])


def test_rmsprop_first_step():
    # s = 0.01 * 4 = 0.04; p -= 0.01 * 2 / (0.2 + 1e-8)
    p = step(RMSprop(lr=0.01, rho=0.99), np.array([1.0]), np.array([2.0]))
    assert_allclose(p, [1.0 - 0.01 * 2 / (0.2 + 1e-8)])


def test_adam_two_steps_by_hand():
    g1, g2, lr, b1, b2, eps = 0.5, -0.25, 0.01, 0.9, 0.999, 1e-8
    p = np.array([1.0])
    opt = Adam(lr=lr)
    params, grads = {"w": p}, {"w": np.array([g1])}
    opt.step(params, grads)
    # step 1: mhat = g1, vhat = g1^2 -> p -= lr * g1 / (|g1| + eps)
    expected = 1.0 - lr * g1 / (abs(g1) + eps)
    assert_allclose(p, [expected])
    grads["w"][:] = g2
    opt.step(params, grads)
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    mhat, vhat = m / (1 - b1**2), v / (1 - b2**2)
    expected -= lr * mhat / (np.sqrt(vhat) + eps)
    assert_allclose(p, [expected], rtol=1e-12)


def test_adam_weight_decay_is_added_to_the_gradient():
    # g' = g + wd p = 0.5 + 0.1 * 2 = 0.7; after bias correction m = 0.7, v = 0.49,
    # so the first step is lr * 0.7 / (sqrt(0.49) + eps)
    p = np.array([2.0])
    Adam(lr=0.1, weight_decay=0.1).step({"w": p}, {"w": np.array([0.5])})
    assert_allclose(p, [2.0 - 0.1 * 0.7 / (0.7 + 1e-8)])


def test_adamw_decays_the_weights_decoupled():
    p = step(AdamW(lr=0.1, weight_decay=0.1), np.array([2.0]), np.array([0.0]))
    assert_allclose(
        p, [2.0 * (1 - 0.1 * 0.1)]
    )  # zero gradient: only the decay moves it


def test_float32_stays_float32():
    p = np.ones(4, dtype=np.float32)
    for opt in [SGD(0.1, momentum=0.9), RMSprop(), Adam(), AdamW()]:
        step(opt, p, np.full(4, 0.1, dtype=np.float32), times=2)
        assert p.dtype == np.float32
        assert all(s.dtype == np.float32 for s in opt.state["w"].values())


def test_subnormal_moments_are_flushed_to_zero():
    opt = Adam()
    p, g = np.ones(3, dtype=np.float32), np.array([1e-3, 0.0, 0.0], dtype=np.float32)
    opt.step({"w": p}, {"w": g})
    opt.state["w"]["m"][1] = 1e-39  # a float32 subnormal, as decaying moments become
    g[0] = 0.0
    step(opt, p, g, times=FLUSH_EVERY - 1)
    tiny = np.finfo(np.float32).tiny
    for state in opt.state["w"].values():
        assert np.all((state == 0) | (np.abs(state) >= tiny))


def test_get_optimizer_by_name_and_bad_values():
    assert isinstance(get_optimizer("AdamW", lr=0.1), AdamW)
    with pytest.raises(NnscratchError, match="optimizer"):
        get_optimizer("adagrad")
    with pytest.raises(NnscratchError, match="lr"):
        SGD(lr=0)


def test_schedules():
    assert Constant(0.1)(5.5) == 0.1
    assert_allclose(StepDecay(1.0, step_epochs=2, gamma=0.5)(4.9), 0.25)
    assert_allclose(ExponentialDecay(1.0, gamma=0.5)(2), 0.25)
    cosine = CosineDecay(1.0, epochs=10, warmup_epochs=2)
    assert_allclose(
        [cosine(1.0), cosine(2.0), cosine(6.0), cosine(10.0)], [0.5, 1.0, 0.5, 0.0]
    )
    assert cosine(0.0) > 0  # the first warm-up step still moves
    with pytest.raises(NnscratchError, match="at least the warm-up"):
        CosineDecay(1.0, epochs=2, warmup_epochs=3)
    # a run as long as its warm-up is all warm-up (--epochs 1 with 1 warm-up epoch)
    all_warmup = CosineDecay(1.0, epochs=1, warmup_epochs=1)
    assert_allclose([all_warmup(0.5), all_warmup(1.0)], [0.5, 0.0])


@pytest.mark.parametrize(
    "epochs, last_rates", [(9, [1.0, 0.1, 0.01]), (10, [0.1, 0.01, 0.001])]
)
def test_step_schedule_for_a_run_drops_every_third_of_it(epochs, last_rates):
    """As its docstring says: E // 3 epochs per rate, so a run of 10 epochs has a
    fourth rate in its last epoch."""
    schedule = StepDecay.for_run(1.0, epochs)
    rates = [schedule(e + 0.5) for e in range(epochs)]
    assert_allclose(sorted(set(rates), reverse=True)[-3:], last_rates)
    assert_allclose(rates[-1], last_rates[-1])
