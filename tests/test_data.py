"""The bundled digits and the fixed split."""

import numpy as np

import matgrad as mg


def test_load_digits():
    x, y = mg.data.load_digits()
    assert x.shape == (1797, 64) and y.shape == (1797,)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    counts = np.bincount(y, minlength=10)
    assert len(counts) == 10 and counts.min() >= 174 and counts.max() <= 183
    assert mg.data.load_digits(np.float64)[0].dtype == np.float64
    assert mg.data.DIGITS_PATH.parent.name == "data" and mg.data.DIGITS_PATH.exists()


def test_fixed_split_is_disjoint_and_deterministic():
    a = mg.data.load_digits_split()
    b = mg.data.load_digits_split()
    x_train, y_train, x_test, y_test = a
    assert len(x_train) == 1438 and len(x_test) == 359
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    idx = np.arange(1797)
    i_train, _, i_test, _ = mg.data.train_test_split(idx, idx)
    assert set(i_train).isdisjoint(i_test) and len(set(i_train) | set(i_test)) == 1797
    x, y = mg.data.load_digits()
    np.testing.assert_array_equal(x[i_test], x_test)
    np.testing.assert_array_equal(y[i_train], y_train)
    assert set(np.unique(y_test)) == set(range(10))
