"""mg.onnx.export: the model passes onnx.checker, and onnxruntime's outputs equal matgrad's (eval
mode) on a batch size other than the example's.

onnxruntime's CPU provider has float64 kernels for Gemm, the activations, MaxPool,
BatchNormalization and LayerNormalization but none for Conv and AveragePool: float64 models with
those layers are run with onnx's reference evaluator instead."""

import os
import subprocess
import sys

import numpy as np
import pytest

import matgrad as mg
from matgrad import nn

onnx = pytest.importorskip("onnx")

F32, F64 = np.float32, np.float64


def _ort(path, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    (y,) = session.run(["output"], {"input": x})
    return y


def _reference(path, x):
    from onnx.reference import ReferenceEvaluator
    (y,) = ReferenceEvaluator(onnx.load(os.fspath(path))).run(["output"], {"input": x})
    return y


def _randomize(model, rng):
    for _, p in model.named_parameters():
        p.data[...] = rng.standard_normal(p.data.shape) * 0.5
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b[...] = rng.standard_normal(b.shape)
        elif name.endswith("running_var"):
            b[...] = rng.uniform(0.5, 2.0, b.shape)
    return model


def _matgrad(model, x):
    model.eval()
    with mg.no_grad():
        return model(mg.tensor(x)).data


def _tol(dtype):
    # float64: ONNX's float attributes (LeakyRelu's alpha, the norms' epsilon) are float32, so
    # alpha=0.3 is 0.30000001...: a ~1e-9 relative difference, well inside these bounds.
    # float32: onnxruntime and matgrad sum in different orders (which order depends on the
    # CPU's kernels), so outputs of size ~3 from sums of hundreds of terms differ by a few
    # 1e-6 absolute (2.4e-6 seen on a Zen 1 with AVX2); a wrong layout or attribute is off by 1e-2 or more
    return dict(rtol=1e-5, atol=1e-5) if dtype == F32 else dict(rtol=1e-7, atol=1e-10)


def _check_file(path, dtype, input_shape):
    model = onnx.load(os.fspath(path))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "input" and out.name == "output"
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == list(input_shape[1:])
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    assert inp.type.tensor_type.elem_type == elem == out.type.tensor_type.elem_type
    for init in model.graph.initializer:
        if not init.name.endswith(".shape"):
            assert init.data_type == elem, init.name
    return model


def _mlp(dtype):
    return nn.MLP([6, 16, 8, 3], dtype=dtype)


def _cnn(dtype):
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, dtype=dtype), nn.BatchNorm2d(4, dtype=dtype), nn.ReLU(),
        nn.MaxPool2d(2),                                                       # (N,4,4,4)
        nn.Sequential(nn.Conv2d(4, 3, 3, stride=2, padding=1, bias=False, dtype=dtype), nn.LeakyReLU(0.1)),
        nn.AvgPool2d((2, 1), stride=(1, 1)),                                   # (N,3,1,2)
        nn.Flatten(), nn.Linear(6, 5, dtype=dtype), nn.BatchNorm1d(5, dtype=dtype),
        nn.Dropout(0.5), nn.LayerNorm(5, eps=1e-3, dtype=dtype), nn.Tanh(),
        nn.Linear(5, 2, bias=False, dtype=dtype), nn.Sigmoid())


def _ort_double(dtype):
    # float64 through the ops onnxruntime has double kernels for
    return nn.Sequential(
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 7, dtype=dtype), nn.BatchNorm1d(7, dtype=dtype),
        nn.ReLU(), nn.Sequential(nn.Linear(7, 6, dtype=dtype), nn.LayerNorm(6, dtype=dtype)), nn.Tanh(),
        nn.Dropout(), nn.LeakyReLU(0.3), nn.Linear(6, 3, bias=False, dtype=dtype), nn.Sigmoid())


@pytest.mark.parametrize("build, shape, dtype", [
    (_mlp, (3, 6), F32),
    (_mlp, (3, 6), F64),
    (_cnn, (3, 2, 8, 8), F32),
    (_ort_double, (3, 2, 4, 4), F32),
    (_ort_double, (3, 2, 4, 4), F64),
], ids=["mlp-f32", "mlp-f64", "cnn-f32", "bn-ln-pool-f32", "bn-ln-pool-f64"])
def test_onnxruntime_matches(build, shape, dtype, tmp_path, rng):
    model = _randomize(build(dtype), rng)
    path = tmp_path / "model.onnx"
    proto = mg.onnx.export(model, path, rng.standard_normal(shape).astype(dtype))
    assert isinstance(proto, onnx.ModelProto)
    _check_file(path, dtype, shape)
    x = rng.standard_normal((7,) + shape[1:]).astype(dtype)  # another batch size
    y = _ort(path, x)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, _matgrad(model, x), **_tol(dtype))


def test_cnn_float64_reference_evaluator(tmp_path, rng):
    # onnxruntime has no float64 Conv or AveragePool: onnx's reference implementation checks the model
    model = _randomize(_cnn(F64), rng)
    path = tmp_path / "cnn64.onnx"
    mg.onnx.export(model, str(path), mg.tensor(rng.standard_normal((2, 2, 8, 8))))
    _check_file(path, F64, (2, 2, 8, 8))
    x = rng.standard_normal((5, 2, 8, 8))
    y = _reference(path, x)
    assert y.dtype == F64
    np.testing.assert_allclose(y, _matgrad(model, x), **_tol(F64))


def test_ops_and_attributes(tmp_path):
    model = _cnn(F32)
    proto = mg.onnx.export(model, tmp_path / "m.onnx", np.zeros((1, 2, 8, 8), F32))
    ops = [n.op_type for n in proto.graph.node]
    assert ops == ["Conv", "BatchNormalization", "Relu", "MaxPool", "Conv", "LeakyRelu", "AveragePool", "Flatten",
                   "Gemm", "BatchNormalization", "Identity", "LayerNormalization", "Tanh", "Gemm", "Sigmoid"]
    attrs = {n.name: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in proto.graph.node}
    nodes = {n.op_type + str(i): attrs[n.name] for i, n in enumerate(proto.graph.node)}
    assert nodes["Conv4"]["strides"] == [2, 2] and nodes["Conv4"]["pads"] == [1, 1, 1, 1]
    assert nodes["AveragePool6"]["kernel_shape"] == [2, 1] and nodes["AveragePool6"]["strides"] == [1, 1]
    assert nodes["MaxPool3"]["strides"] == [2, 2]  # stride defaults to the kernel
    assert nodes["Gemm8"]["transB"] == 0
    assert nodes["LeakyRelu5"]["alpha"] == pytest.approx(0.1)
    assert nodes["LayerNormalization11"]["axis"] == -1
    assert nodes["LayerNormalization11"]["epsilon"] == pytest.approx(1e-3)
    assert len(proto.graph.node[13].input) == 2  # Linear(bias=False): Gemm without C
    names = {i.name for i in proto.graph.initializer}
    assert {"0.weight", "1.running_mean", "1.running_var", "4.0.weight", "7.weight", "12.weight"} <= names
    assert "1.num_batches_tracked" not in names


def test_export_uses_eval_mode_and_keeps_flags(tmp_path, rng):
    model = _randomize(_ort_double(F32), rng)
    model.train()
    model[5].eval()  # a mixed state, restored as it was
    path = tmp_path / "m.onnx"
    before = {k: v.copy() for k, v in model.state_dict().items()}
    mg.onnx.export(model, path, rng.standard_normal((4, 2, 4, 4)).astype(F32))
    assert model.training and model[3].training and not model[5].training and not model[5][0].training
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])  # running statistics untouched
    x = rng.standard_normal((9, 2, 4, 4)).astype(F32)
    np.testing.assert_allclose(_ort(path, x), _matgrad(model, x), **_tol(F32))


def test_digits_cnn_fused_layers(tmp_path, rng):
    model = nn.digits_cnn()
    path = tmp_path / "digits.onnx"
    mg.onnx.export(model, path, np.zeros((1, 1, 8, 8), F32))
    x = rng.standard_normal((6, 1, 8, 8)).astype(F32)
    np.testing.assert_allclose(_ort(path, x), _matgrad(model, x), **_tol(F32))


@pytest.mark.parametrize("start_axis, shape", [(2, (7, 3, 9)), (-1, (7, 3, 9)), (1, (7, 27)), (0, (7 * 27,))])
def test_flatten_other_axes(start_axis, shape, tmp_path, rng):
    # ONNX's Flatten is always 2-D: another start_axis is a Reshape keeping the leading axes
    model = nn.Sequential(nn.Conv2d(1, 3, 3, dtype=F32), nn.Flatten(2), nn.Flatten(start_axis))
    path = tmp_path / "f.onnx"
    mg.onnx.export(model, path, np.zeros((2, 1, 5, 5), F32))
    x = rng.standard_normal((7, 1, 5, 5)).astype(F32)
    y = _ort(path, x)
    assert y.shape == shape
    np.testing.assert_allclose(y, _matgrad(model, x), **_tol(F32))


def test_single_layer_and_empty(tmp_path, rng):
    layer = nn.Linear(4, 3)
    mg.onnx.export(layer, tmp_path / "l.onnx", np.zeros((2, 4), F32))
    x = rng.standard_normal((5, 4)).astype(F32)
    np.testing.assert_allclose(_ort(tmp_path / "l.onnx", x), _matgrad(layer, x), **_tol(F32))
    mg.onnx.export(nn.Sequential(), tmp_path / "e.onnx", np.zeros((2, 4), F64))
    np.testing.assert_array_equal(_ort(tmp_path / "e.onnx", x.astype(F64)), x.astype(F64))


# ---- errors: no file ---------------------------------------------------------------------------


class Doubler(nn.Module):
    def forward(self, x):
        return x * 2


class MyReLU(nn.ReLU):
    def forward(self, x):
        return mg.relu(x) * 3


@pytest.mark.parametrize("model, where", [
    (nn.Sequential(nn.Linear(4, 4), nn.Sequential(Doubler(), nn.ReLU())), r"'1\.0' \(.*Doubler\)"),
    (nn.Sequential(nn.Linear(4, 4), MyReLU()), r"'1' \(.*MyReLU\)"),
    (Doubler(), r"<root> \(.*Doubler\)"),
])
def test_unsupported_layer_writes_no_file(model, where, tmp_path):
    path = tmp_path / "bad.onnx"
    with pytest.raises(TypeError, match=where):
        mg.onnx.export(model, path, np.zeros((2, 4), F32))
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_bad_example_input_writes_no_file(tmp_path):
    path = tmp_path / "bad.onnx"
    with pytest.raises(ValueError):
        mg.onnx.export(_mlp(F32), path, np.zeros((2, 5), F32))  # wrong feature count: matgrad refuses it
    with pytest.raises(TypeError):
        mg.onnx.export(_mlp(F32), path, np.zeros((2, 6), np.int64))
    assert not path.exists()


def test_missing_onnx_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    path = tmp_path / "m.onnx"
    with pytest.raises(ImportError, match=r"pip install 'matgrad\[onnx\]'"):
        mg.onnx.export(_mlp(F32), path, np.zeros((2, 6), F32))
    assert not path.exists()


def test_import_matgrad_does_not_import_onnx():
    code = "import sys, matgrad as mg; mg.onnx.export; assert 'onnx' not in sys.modules, 'onnx imported'"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(mg.__file__)), env.get("PYTHONPATH", "")])
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
