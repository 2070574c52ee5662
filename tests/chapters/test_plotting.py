"""course_lib.plotting: every helper draws without error."""

import numpy as np

from course_lib import foundations, plotting


def test_plotting_helpers_draw():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = plotting.plot_curves({"a": [3, 2, 1], "b": [3, 1, 0.5]}, logy=True)
    assert len(ax.lines) == 2
    ax = plotting.plot_paths_on_contour(foundations.bowl_loss, {"p": np.zeros((3, 2))})
    assert ax.get_xlabel() == "$w_1$"
    fig = plotting.image_grid(np.zeros((5, 28, 28)), [str(i) for i in range(5)], ncols=4)
    assert len(fig.axes) == 8
    ax = plotting.plot_confusion_matrix(np.eye(3, dtype=int) * 5)
    assert len(ax.texts) == 9
    plt.close("all")
