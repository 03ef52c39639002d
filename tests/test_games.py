"""Tests of the two-player games: the bilinear game's dynamics (the spiral, the orbit, negative momentum), the
protocol driven by optimlab optimizers through play(), and argument checking."""

import numpy as np
import pytest

import optimlab
from optimlab.problems import BilinearGame, GaussianMixtureGAN
from optimlab.problems.games import _mlp, play


def test_simultaneous_steps_spiral_outward_by_the_predicted_factor():
    game = BilinearGame(x0=0.6, y0=-0.8)
    x, y = game.trajectory(50, lr=0.3)
    radius = np.hypot(x, y)
    assert np.all(np.diff(radius) > 0)
    # |z_{t+1}|² = (1 + η²)|z_t|²: the rotation's matrix [[1, -η], [η, 1]] is √(1+η²) times a rotation
    np.testing.assert_allclose(radius[1:] / radius[:-1], np.sqrt(1 + 0.3 ** 2), rtol=1e-12)


def test_momentum_sign_decides_under_alternating_steps():
    """Gidel et al. (2019): alternating steps circle at β = 0, contract with β < 0, blow up with β > 0; simultaneous
    steps grow whatever β."""
    game = BilinearGame()
    betas = np.array([-0.5, -0.3, 0.0, 0.3])
    x, y = game.trajectory(300, lr=0.2, momentum=betas, alternating=True)
    radius = np.hypot(x, y)
    assert radius.shape == (301, 4)
    start = radius[0, 0]
    assert np.all(radius[-1, :2] < 0.5 * start)                          # negative momentum contracts
    assert 0.5 * start < radius[-1, 2] < 2 * start and radius[:, 2].max() < 2 * start  # a bounded orbit
    assert radius[-1, 3] > 100 * start                                   # positive momentum diverges
    x, y = game.trajectory(300, lr=0.2, momentum=betas, alternating=False)
    assert np.all(np.hypot(x, y)[-1] > start)


@pytest.mark.parametrize("alternating", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.4])
def test_play_with_optimlab_sgd_is_the_written_out_dynamics(alternating, momentum):
    """SGD (x) against SGD with maximize=True on x·y (y) is player 2 minimizing -x·y, and the closed form."""
    game = BilinearGame(x0=0.5, y0=1.5)
    x_start = np.array([0.5, -1.0])  # two runs at once
    y_start = np.array([1.5, 0.25])
    (x,), (y,) = [x_start.copy()], [y_start.copy()]
    opt_x = optimlab.SGD([x], lr=0.1, momentum=momentum)
    opt_y = optimlab.SGD([y], lr=0.1, momentum=momentum)
    losses_1, losses_2 = play(game, opt_x, opt_y, [x], [y], 40, alternating=alternating)
    xs, ys = game.trajectory(40, 0.1, momentum, alternating, x0=x_start, y0=y_start)
    np.testing.assert_allclose(x, xs[-1], rtol=1e-12)
    np.testing.assert_allclose(y, ys[-1], rtol=1e-12)
    assert losses_1.shape == (40, 2)
    np.testing.assert_allclose(losses_1, xs[:-1] * ys[:-1], rtol=1e-12)  # player 1 moves from (x_t, y_t)
    np.testing.assert_allclose(losses_2, -(xs[1:] if alternating else xs[:-1]) * ys[:-1], rtol=1e-12)
    # the same with maximize=True on player 1's gradient
    (x2,), (y2,) = [x_start.copy()], [y_start.copy()]
    opt_x, opt_y = optimlab.SGD([x2], lr=0.1, momentum=momentum), optimlab.SGD([y2], lr=0.1, momentum=momentum,
                                                                               maximize=True)
    for _ in range(40):
        g_x = game.loss_and_grads_1([x2], [y2])[1]
        if alternating:
            opt_x.step(g_x)
        g_y = [x2.copy()]  # ∂(x y)/∂y, ascended
        if not alternating:
            opt_x.step(g_x)
        opt_y.step(g_y)
    np.testing.assert_allclose(x2, x, rtol=1e-12)
    np.testing.assert_allclose(y2, y, rtol=1e-12)
    assert game.metric([x], [y]) == pytest.approx(np.hypot(x, y))


def test_bilinear_gradients_match_finite_differences_and_runs_stack():
    game = BilinearGame()
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    h = 1e-6
    for _ in range(3):
        u, v = rng.standard_normal(3), rng.standard_normal(3)
        g_x = game.loss_and_grads_1([x], [y])[1][0]
        numeric = (game.loss_and_grads_1([x + h * u], [y])[0] - game.loss_and_grads_1([x - h * u], [y])[0]) / (2 * h)
        np.testing.assert_allclose(g_x * u, numeric, rtol=1e-6)
        g_y = game.loss_and_grads_2([x], [y])[1][0]
        numeric = (game.loss_and_grads_2([x], [y + h * v])[0] - game.loss_and_grads_2([x], [y - h * v])[0]) / (2 * h)
        np.testing.assert_allclose(g_y * v, numeric, rtol=1e-6)
    lrs, betas = np.array([0.1, 0.3]), np.array([-0.4, 0.2])
    xs, ys = game.trajectory(30, lrs[:, None], betas, alternating=True, x0=x[:2, None, None], y0=y[:2, None, None])
    assert xs.shape == (31, 2, 2, 2)
    for i in range(2):
        for j in range(2):
            for k in range(2):
                one = game.trajectory(30, lrs[j], betas[k], alternating=True, x0=x[i], y0=y[i])
                np.testing.assert_array_equal(xs[:, i, j, k], one[0])
                np.testing.assert_array_equal(ys[:, i, j, k], one[1])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BilinearGame(x0="a"), "x0 must be a real number, got 'a'"),
        (lambda: BilinearGame(y0=np.inf), "y0 must be finite, got inf"),
        (lambda: BilinearGame().trajectory(0, 0.1), "steps must be >= 1, got 0"),
        (lambda: BilinearGame().trajectory(5, -0.1), "lr must be > 0, got -0.1"),
        (lambda: BilinearGame().trajectory(5, 0.1, momentum=np.nan), "momentum must be finite, got nan"),
        (lambda: BilinearGame().trajectory(5, 0.1, alternating="yes"), "alternating must be True or False"),
        (lambda: BilinearGame().init_params(seed=-1), "seed must be >= 0, got -1"),
        (lambda: BilinearGame().loss_and_grads_1([1.0, 2.0], [1.0]), "params_1 must be a list of one array"),
        (lambda: BilinearGame().metric([np.zeros(2)], [np.zeros(3)]), "params_1.0. and params_2.0. must have"),
        (lambda: play(BilinearGame(), None, None, [0.0], [0.0], 0), "steps must be >= 1, got 0"),
        (lambda: play(BilinearGame(), None, None, [0.0], [0.0], 3), "opt_1 must be an optimizer"),
        (lambda: play(BilinearGame(), optimlab.SGD([np.zeros(1)]), optimlab.SGD([np.zeros(1)]), [np.zeros(1)],
                      [np.zeros(1)], 3, alternating=1), "alternating must be True or False, got 1"),
    ],
)
def test_bad_arguments_raise_value_error_naming_argument_and_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ----------------------------------------------------------------------------------------------------------------
# The GAN on a ring of Gaussians


def small_gan(dtype=np.float64):
    return GaussianMixtureGAN(modes=4, hidden=6, noise_dim=3, batch_size=20, n_eval=80, dtype=dtype)


def player_difference(loss_of, params, i, direction, h=1e-6):
    plus = [p.copy() for p in params]
    minus = [p.copy() for p in params]
    plus[i] += h * direction
    minus[i] -= h * direction
    return (loss_of(plus) - loss_of(minus)) / (2 * h)


@pytest.mark.parametrize("player", [1, 2])
def test_gan_gradients_match_finite_differences(player):
    gan = small_gan()
    D, G = gan.init_params(2)
    if player == 1:
        def loss_of(P):
            return gan.loss_and_grads_1(P, G)[0]
        loss, grads = gan.loss_and_grads_1(D, G)
        params = D
    else:
        def loss_of(P):
            return gan.loss_and_grads_2(D, P)[0]
        loss, grads = gan.loss_and_grads_2(D, G)
        params = G
    rng = np.random.default_rng(0)
    for i, p in enumerate(params):  # each array, several random directions
        for _ in range(3):
            direction = rng.standard_normal(p.shape)
            numeric = player_difference(loss_of, params, i, direction)
            assert abs(np.sum(grads[i] * direction) - numeric) <= 1e-6 * abs(numeric) + 1e-12, f"array {i}"
    # the losses are the ones written in the docstring, on the fixed batch
    a_fake = _mlp(D, gan.generate(G, gan.eval_noise[:20]))[0]
    if player == 1:
        a_real = _mlp(D, gan.eval_real[:20])[0]
        expected = np.mean(np.log1p(np.exp(-a_real))) + np.mean(np.log1p(np.exp(a_fake)))
    else:
        expected = np.mean(np.log1p(np.exp(-a_fake)))
    assert loss == pytest.approx(expected, rel=1e-12)


def test_gan_stacked_runs_equal_runs_one_by_one_and_are_seeded():
    gan = small_gan()
    starts = [gan.init_params(s) for s in range(3)]
    D = [np.stack(a) for a in zip(*(s[0] for s in starts))]
    G = [np.stack(a) for a in zip(*(s[1] for s in starts))]
    loss_1, grads_1 = gan.loss_and_grads_1(D, G, np.random.default_rng(5))
    loss_2, grads_2 = gan.loss_and_grads_2(D, G, np.random.default_rng(5))
    assert loss_1.shape == loss_2.shape == (3,) and gan.metric(D, G).shape == (3,)
    for run, (d, g) in enumerate(starts):
        one_1, g_1 = gan.loss_and_grads_1(d, g, np.random.default_rng(5))
        one_2, g_2 = gan.loss_and_grads_2(d, g, np.random.default_rng(5))
        assert loss_1[run] == pytest.approx(one_1, rel=1e-12) and loss_2[run] == pytest.approx(one_2, rel=1e-12)
        for a, b in zip(grads_1 + grads_2, g_1 + g_2):
            np.testing.assert_allclose(a[run], b, rtol=1e-10, atol=1e-15)
        assert gan.energy_distance(G)[run] == pytest.approx(gan.energy_distance(g), rel=1e-12)
        assert gan.modes_covered(G)[run] == gan.modes_covered(g)
    again = gan.init_params(0)
    for a, b in zip(again[0] + again[1], starts[0][0] + starts[0][1]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(small_gan().eval_real, gan.eval_real)


def test_gan_float32_stays_float32():
    gan = small_gan(np.float32)
    D, G = gan.init_params(0)
    assert all(p.dtype == np.float32 for p in D + G)
    for f in (gan.loss_and_grads_1, gan.loss_and_grads_2):
        loss, grads = f(D, G, np.random.default_rng(0))
        assert loss.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)


def test_a_generator_collapsed_on_one_mode_covers_one():
    gan = GaussianMixtureGAN(modes=8, n_eval=400)
    D, G = gan.init_params(0)
    G[-2][...] = 0.0
    G[-1][...] = gan.centres[3]  # every point at mode 3
    assert gan.modes_covered(G) == 1 and gan.high_quality(G) == 1.0
    G[-1][...] = 0.0             # every point at the centre of the ring: no mode
    assert gan.modes_covered(G) == 0 and gan.high_quality(G) == 0.0
    spread = GaussianMixtureGAN(modes=8, n_eval=400)
    assert spread.energy_distance(G) > 0.5


def test_gan_trains_with_alternating_adam_steps():
    """A short run: the generator's points move onto the ring (the energy distance falls)."""
    gan = GaussianMixtureGAN(hidden=16)
    D, G = gan.init_params(0)
    before = gan.energy_distance(G)
    opt_D, opt_G = optimlab.Adam(D, lr=1e-3, betas=(0.5, 0.999)), optimlab.Adam(G, lr=1e-3, betas=(0.5, 0.999))
    losses_D, losses_G = play(gan, opt_D, opt_G, D, G, 300, rng=np.random.default_rng(0))
    assert losses_D.shape == losses_G.shape == (300,)
    assert np.all(np.isfinite(losses_D)) and gan.energy_distance(G) < 0.5 * before


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: GaussianMixtureGAN(modes=0), "modes must be >= 1, got 0"),
        (lambda: GaussianMixtureGAN(radius=0), "radius must be > 0, got 0"),
        (lambda: GaussianMixtureGAN(std=-1.0), "std must be > 0, got -1.0"),
        (lambda: GaussianMixtureGAN(noise_dim=0), "noise_dim must be >= 1, got 0"),
        (lambda: GaussianMixtureGAN(hidden=2.5), "hidden must be an integer, got 2.5"),
        (lambda: GaussianMixtureGAN(batch_size=0), "batch_size must be >= 1, got 0"),
        (lambda: GaussianMixtureGAN(n_eval=0), "n_eval must be >= 1, got 0"),
        (lambda: GaussianMixtureGAN(seed=-3), "seed must be >= 0, got -3"),
        (lambda: GaussianMixtureGAN(dtype=np.float16), "dtype must be float32 or float64"),
        (lambda: GaussianMixtureGAN(dtype=-1), "dtype must be float32 or float64, got -1"),
        (lambda: small_gan().init_params(seed=-1), "seed must be >= 0, got -1"),
        (lambda: small_gan().loss_and_grads_1(*small_gan().init_params(), rng=3),
         "rng must be a numpy.random.Generator or None, got 3"),
        (lambda: small_gan().loss_and_grads_2(small_gan().init_params()[1], small_gan().init_params()[1]),
         r"params_1\[0\] must have shape \(2, 6\), got \(3, 6\)"),
        (lambda: small_gan().generate(small_gan().init_params()[1], np.zeros((4, 2))),
         r"noise must have shape \(n, 3\), got \(4, 2\)"),
        (lambda: small_gan().loss_and_grads_2(small_gan().init_params()[0], [1.0]),
         "params_2 must be a list of 6 arrays"),
        (lambda: small_gan().metric(small_gan().init_params()[0],
                                    [np.stack([p, p]) for p in small_gan().init_params()[1]]),
         "params_1 and params_2 must have the same run dimensions"),
    ],
)
def test_gan_bad_arguments_raise_value_error_naming_argument_and_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_play_runs_from_the_games_own_zero_dimensional_start():
    """init_params() gives 0-d arrays; both players' gradients must stay arrays, so play() runs from them."""
    game = BilinearGame(x0=0.5, y0=1.5)
    (x,), (y,) = game.init_params()
    opt_x, opt_y = optimlab.SGD([x], lr=0.1), optimlab.SGD([y], lr=0.1)
    play(game, opt_x, opt_y, [x], [y], 10, alternating=False)
    xs, ys = game.trajectory(10, 0.1, 0.0, False, x0=np.array(0.5), y0=np.array(1.5))
    np.testing.assert_allclose([x, y], [xs[-1], ys[-1]], rtol=1e-12)
