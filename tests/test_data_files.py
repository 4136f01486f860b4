"""Users' tables: .csv/.npz loading, label mapping, the stratified split, standardisation, and
``python -m matgrad --data/--dataset`` runs (the rejected files are rows of docs/errors.md)."""

import re

import numpy as np
import pytest

from matgrad.__main__ import main
from matgrad.data.files import DataError, load_table, standardize, stratified_split


def _blobs(n=120, seed=0):
    """Three well-separated classes in 4-D."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.standard_normal((n, 4)) * 0.3 + np.eye(3, 4)[y] * 4 + 10.0
    return x, y


def test_csv_with_string_labels_in_a_named_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("kind,a,b\ncat,1,2.5\ndog,3,4\ncat,-1,1e3\nbird,0,0\n")
    table = load_table(str(path), target="kind")
    np.testing.assert_array_equal(table.x, [[1, 2.5], [3, 4], [-1, 1000], [0, 0]])
    assert table.classes == ["bird", "cat", "dog"]  # sorted
    np.testing.assert_array_equal(table.y, [1, 2, 1, 0])
    assert table.feature_names == ["a", "b"]


def test_csv_with_numeric_labels_in_the_last_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1,2,7\n3,4,3\n5,6,7\n")
    table = load_table(str(path))
    assert table.classes == [3, 7]
    np.testing.assert_array_equal(table.y, [1, 0, 1])


def test_npz_and_its_errors(tmp_path):
    x, y = _blobs()
    np.savez(tmp_path / "ok.npz", X=x, y=y)
    table = load_table(str(tmp_path / "ok.npz"))
    np.testing.assert_array_equal(table.x, x)
    np.testing.assert_array_equal(table.y, y)
    x[5, 2] = np.inf
    np.savez(tmp_path / "inf.npz", X=x, y=y)
    with pytest.raises(DataError, match=r"inf.npz: inf at row 6, column 'X\[:, 2\]'"):
        load_table(str(tmp_path / "inf.npz"))
    (tmp_path / "bad.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match="bad.npz: cannot read it as an .npz archive"):
        load_table(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "x1d.npz", X=np.zeros(3), y=np.zeros(3))
    with pytest.raises(DataError, match=r"X must be 2-D \(N, D\), got shape \(3,\)"):
        load_table(str(tmp_path / "x1d.npz"))
    np.savez(tmp_path / "yfloat.npz", X=np.zeros((2, 2)), y=np.array([0.5, 1.0]))
    with pytest.raises(DataError, match="labels must be classes .* row 1 has 0.5"):
        load_table(str(tmp_path / "yfloat.npz"))


def test_csv_errors_name_column_and_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1,2,x\n3,,y\n")
    with pytest.raises(DataError, match="feature column 'b' is not numeric: row 2 \\(line 3\\) is empty"):
        load_table(str(path))
    path.write_text("a,b,label\n1,2,x\n3,4\n")
    with pytest.raises(DataError, match="row 2 \\(line 3\\) has 2 fields, the header 3"):
        load_table(str(path))
    path.write_text("a,b,label\n1,2,x\n3,inf,y\n")
    with pytest.raises(DataError, match="inf at row 2, column 'b'"):
        load_table(str(path))
    with pytest.raises(DataError, match="--target names a CSV column"):
        np.savez(tmp_path / "z.npz", X=np.zeros((2, 1)), y=np.array([0, 1]))
        load_table(str(tmp_path / "z.npz"), target="y")


def test_stratified_split_keeps_the_class_shares_and_is_seeded():
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    train, test = stratified_split(y, 0.2, seed=3)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 100
    np.testing.assert_array_equal(np.bincount(y[test]), [10, 6, 4])
    again = stratified_split(y, 0.2, seed=3)
    np.testing.assert_array_equal(again[0], train)
    assert not np.array_equal(stratified_split(y, 0.2, seed=4)[1], test)


def test_standardize_uses_the_training_statistics_only():
    x_train = np.array([[1.0, 5.0], [3.0, 5.0]])
    x_test = np.array([[5.0, 7.0]])
    a, b = standardize(x_train, x_test)
    np.testing.assert_allclose(a, [[-1, 0], [1, 0]])  # a constant column is divided by 1
    np.testing.assert_allclose(b, [[3, 2]])  # (5 - 2) / 1 and (7 - 5) / 1: the test set's own stats unused


def test_cli_trains_on_a_csv_and_prints_the_class_mapping(tmp_path, capsys):
    x, y = _blobs()
    names = np.array(["low", "mid", "high"])[y]
    path = tmp_path / "blobs.csv"
    path.write_text("f1,f2,f3,f4,level\n" + "".join(
        ",".join(f"{v:.4f}" for v in row) + f",{n}\n" for row, n in zip(x, names)))
    assert main(["--data", str(path), "--target", "level", "--epochs", "10", "--test-size", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "classes: 0 = high, 1 = low, 2 = mid" in out
    assert f"MLP 4-128-3 on 90 training / 30 test rows of {path}" in out
    acc = float(re.search(r"test accuracy: (\d+\.\d\d)%", out).group(1))
    assert acc >= 95.0  # separable blobs; features far from 0, so this needs the standardisation


def test_cli_dataset_from_scikit_learn(capsys):
    pytest.importorskip("sklearn")
    assert main(["--dataset", "iris", "--epochs", "30"]) == 0
    out = capsys.readouterr().out
    assert "classes: 0 = setosa, 1 = versicolor, 2 = virginica" in out
    assert "on 120 training / 30 test rows of iris" in out
    assert float(re.search(r"test accuracy: (\d+\.\d\d)%", out).group(1)) >= 80.0  # chance: 33%


def test_cli_digits_with_a_stratified_split(capsys):
    assert main(["--dataset", "digits", "--test-size", "0.5", "--epochs", "2"]) == 0
    assert "MLP 64-128-10 on 899 training / 898 test digits" in capsys.readouterr().out
