"""The wire format (plain data only, no pickles) and the parent-side comparison."""

import base64
import io
import pickle

import numpy as np
import pytest

from course_lib.grading import wire
from course_lib.grading.judge import compare, flag_for, judge_outputs


def roundtrip(value):
    return wire.decode(wire.loads(wire.dumps({"type": "x", "v": wire.encode(value)}))["v"])


def test_plain_data_roundtrips():
    value = {"a": np.arange(6.0).reshape(2, 3), "b": [1, 2.5, True, None, "s"],
             "c": np.float32(1.5), "d": (np.int64(3), np.array([True, False]))}
    out = roundtrip(value)
    np.testing.assert_array_equal(out["a"], value["a"])
    assert out["b"] == [1, 2.5, True, None, "s"]
    assert out["c"].dtype == np.float32 and out["c"].shape == ()
    assert out["d"][1].dtype == bool
    assert np.isnan(roundtrip(float("nan")))


@pytest.mark.parametrize("bad", [
    object(), np.array(["a"]), np.array([object()]), np.ma.masked_array([1.0]),
    {1: "int key"}, type("F", (float,), {})(1.0), set(), b"bytes",
])
def test_non_plain_values_are_refused(bad):
    with pytest.raises(wire.WireError):
        wire.encode(bad)


def test_decoder_refuses_pickles_and_corrupt_arrays():
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    for payload in (base64.b64encode(buffer.getvalue()).decode(),
                    base64.b64encode(pickle.dumps([1, 2])).decode(), "not base64!"):
        with pytest.raises(wire.WireError):
            wire.decode({wire.ARRAY_KEY: payload})
    for line in (b"[1, 2]", b"{\"no_type\": 1}", b"\xff\xfe"):
        with pytest.raises(wire.WireError):
            wire.loads(line)


def test_compare_keys_shapes_dtypes_and_tolerance():
    ref = {"p": np.array([[0.5, 0.5]]), "n": 3}
    assert compare({"p": np.array([[0.5, 0.5]]), "n": 3, "extra": 1}, ref, 1e-6, 1e-8) is None
    assert compare({"n": 3}, ref, 1e-6, 1e-8) == "missing key 'p'"
    reason = compare({"p": np.array([0.5, 0.5]), "n": 3}, ref, 1e-6, 1e-8)
    assert reason.startswith("p: expected shape (1, 2), got shape (2,)") and flag_for(reason)
    reason = compare({"p": np.array([[0.5, 0.6]]), "n": 3}, ref, 1e-6, 1e-8)
    assert reason == "p: expected 0.5, got 0.6 at index (0, 1) (rtol=1e-06, atol=1e-08)"
    assert compare({"p": np.array([[0.5, np.nan]]), "n": 3}, ref, 1e-6, 1e-8).endswith(
        "NaN or inf where the expected values are finite")
    assert compare({"p": "0.5", "n": 3}, ref, 1e-6, 1e-8) == "p: expected numbers, got str"
    assert compare({"p": ref["p"], "n": 3.0000001}, ref, 1e-6, 1e-8) is None
    assert compare([1, 2], [1, 2, 3], 0, 0).startswith("output: expected a list of length 3")
    assert compare(np.array([1, 0]), np.array([True, False]), 0, 0) is None


def test_custom_judge_runs_in_the_parent_and_survives_bad_output():
    def judge(student, reference):
        return student["acc"] >= 0.9, f"accuracy {student['acc']}"

    assert judge_outputs({"acc": 0.95}, {}, 0, 0, judge) == (True, "accuracy 0.95")
    passed, reason = judge_outputs({}, {}, 0, 0, judge)
    assert not passed and reason.startswith("judge could not read the output: KeyError")
