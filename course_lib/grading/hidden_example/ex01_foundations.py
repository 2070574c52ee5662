"""An example of hidden checks for exercises/ex01_foundations.py (the instructor's own).

Instructors keep such files outside the students' reach and pass their folder with
``course grade --submissions DIR --out gradebook.csv --hidden-tests DIR``. A file is named
like the exercise it checks; its checks are added to the public ones. Students see a hidden
check's name and points only, never its code, inputs or expected values. As the public checks,
they draw their inputs from ``rng`` (fresh in every grading run), edge cases included.
"""

from course_lib.grading.spec import check


@check(points=1)
def sigmoid_extreme_inputs(module, rng):
    """sigmoid stays finite and exact for very large |z| on a 1-d input."""
    huge, large = rng.uniform(700.0, 900.0), rng.uniform(30.0, 50.0)
    z = rng.permutation([-huge, -large, 0.0, large, huge])
    return {"sigmoid": module.sigmoid(z)}


@check(points=1)
def relu_grad_at_zero(module, rng):
    """relu_grad is 0 at exactly z = 0."""
    z = rng.standard_normal((2, 3))
    z[rng.random((2, 3)) < 0.4] = 0.0
    z[0, 0] = 0.0
    return {"relu_grad": module.relu_grad(z)}


@check(points=1)
def softmax_single_row(module, rng):
    """softmax of a single row (1, classes) keeps its 2-d shape."""
    return {"softmax": module.softmax(rng.standard_normal((1, 6)))}
