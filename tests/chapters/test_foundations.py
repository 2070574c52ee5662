"""course_lib.foundations: the chapter 01 helpers (loss surface, optimizer paths, errata demos)."""

import numpy as np

from course_lib import foundations, nn


def test_gradient_descent_on_the_bowl_follows_the_closed_form():
    lr, steps = 0.05, 7
    path = foundations.trajectory(nn.SGD(learning_rate=lr), steps=steps)
    expected = foundations.START * (1 - lr * foundations.CURVATURE) ** np.arange(steps + 1)[:, None]
    assert path.shape == (steps + 1, 2)
    np.testing.assert_allclose(path, expected, rtol=1e-12)


def test_bowl_gradient_matches_central_differences():
    w = np.array([0.7, -1.3])
    numeric = nn.numerical_gradient(lambda: float(foundations.bowl_loss(w)), w)
    np.testing.assert_allclose(foundations.bowl_grad(w), numeric, rtol=1e-7)


def test_bowl_loss_works_on_grids():
    grid = np.zeros((4, 5, 2))
    assert foundations.bowl_loss(grid).shape == (4, 5)


def test_too_large_learning_rate_diverges_and_adam_converges():
    assert foundations.bowl_loss(foundations.trajectory(nn.SGD(learning_rate=0.105), 30)[-1]) > 1e3
    assert foundations.bowl_loss(foundations.trajectory(nn.Adam(learning_rate=0.3), 50)[-1]) < 0.5


def test_document_001_cross_entropy_breaks_on_hard_labels():
    terms = foundations.bce_terms_as_written_in_document_001(np.array([1.0, 0.0, 1.0]),
                                                             np.array([1.0, 0.0, 0.0]))
    assert np.isnan(terms[0]) and np.isnan(terms[1]) and np.isinf(terms[2])


def test_circles_shapes_and_both_classes():
    x, y = foundations.circles(n=50, seed=1)
    assert x.shape == (50, 2) and y.shape == (50,)
    assert set(np.unique(y)) == {0, 1}
