"""The library, errors, runtime, handles, bundles, parameters, datasets and distilled sets."""

from __future__ import annotations

import gc
import json
import os

import numpy as np
import pytest

import ddlens
from ddlens import _core, errors
from conftest import ROOT, TINY, banded, run_python


def test_the_library_is_the_checkout_build_and_agrees_with_the_header():
    assert ddlens.version() == ddlens._lib.HEADER_VERSION
    # DDLENS_LIB when set (scripts/test sets it), else the checkout's own build
    assert ddlens.LIBRARY_PATH == os.environ.get("DDLENS_LIB", ddlens.LIBRARY_PATH)
    assert os.environ.get("DDLENS_LIB") or ddlens.LIBRARY_PATH.startswith(str(ROOT / "target"))
    header = (ROOT / "include" / "ddlens.h").read_text()
    assert f'#define DDL_VERSION_STRING "{ddlens.version()}"' in header


def test_ddlens_lib_points_at_another_library_and_a_bad_one_names_the_fix():
    r = run_python("import ddlens", env={"DDLENS_LIB": "/nonexistent/libddlens.so"})
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "/nonexistent/libddlens.so" in r.stderr
    assert "DDLENS_LIB" in r.stderr
    r = run_python("import ddlens; print(ddlens.LIBRARY_PATH)", env={"DDLENS_LIB": ddlens.LIBRARY_PATH})
    assert r.returncode == 0 and r.stdout.strip() == ddlens.LIBRARY_PATH


def test_every_status_has_its_exception_class_and_name():
    assert len(errors.ERROR_CLASSES) == 16
    for status, cls in errors.ERROR_CLASSES.items():
        e = errors.error_for(status, "boom")
        assert type(e) is cls and isinstance(e, ddlens.DdlError)
        assert e.status == status and e.message == "boom"
        assert e.status_name == ddlens.status_name(status) != "DDL_STATUS_UNKNOWN"
        assert str(e) == f"{e.status_name}: boom"
    assert ddlens.status_name(12345) == "DDL_STATUS_UNKNOWN"
    assert ddlens.status_name(-1) == "DDL_STATUS_UNKNOWN"
    unknown = errors.error_for(99, "new")
    assert type(unknown) is ddlens.DdlError and unknown.status_name == "DDL_STATUS_UNKNOWN"
    assert issubclass(ddlens.InvalidArgumentError, ValueError)


def test_calls_before_set_up_are_refused_with_the_fix():
    r = run_python(
        "import ddlens, sys\n"
        "assert not ddlens.runtime_initialized()\n"
        f"try:\n    ddlens.Bundle({TINY!r})\n"
        "except ddlens.RuntimeNotInitializedError as e:\n"
        "    print(e.status_name, e.message)\n"
        "d = ddlens.Dataset.from_memory([[[[0.0]]]], [0])\n"  # no runtime needed
        "print(len(d))\n"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("DDL_STATUS_RUNTIME_NOT_INITIALIZED ")
    assert "ddl_runtime_init" in r.stdout and r.stdout.strip().endswith("1")


def test_runtime_set_up_is_idempotent_and_other_settings_are_refused(runtime):
    assert ddlens.runtime_initialized()
    ddlens.init_runtime(provider="cpu", threads=1)  # same settings: no-op
    with pytest.raises(ddlens.RuntimeConfigError) as e:
        ddlens.init_runtime(provider="cpu", threads=2)
    assert e.value.status_name == "DDL_STATUS_RUNTIME_CONFIG" and "already" in e.value.message
    with pytest.raises(ddlens.InvalidArgumentError, match="`provider`"):
        ddlens.init_runtime(provider="gpu")
    info = ddlens.runtime_info()
    assert info["provider"] == "cpu" and info["threads"] == 1
    assert info["ddlens_version"] == ddlens.version()


def test_errors_carry_status_name_and_message(runtime):
    with pytest.raises(ddlens.NotFoundError) as e:
        ddlens.Bundle("/nonexistent/bundle")
    assert e.value.status == errors.DDL_STATUS_NOT_FOUND
    assert e.value.status_name == "DDL_STATUS_NOT_FOUND"
    assert "/nonexistent/bundle" in e.value.message and "ddl_bundle_open" in e.value.message
    assert ddlens.last_error() == e.value.message
    with pytest.raises(ddlens.NotFoundError, match="does not exist"):
        ddlens.DistilledSet.read("/nonexistent/set.safetensors")
    with pytest.raises(ddlens.NotFoundError, match="`dir`"):
        ddlens.load_dataset("fashion-mnist", "/nonexistent/data")


def test_bundle_describes_itself(bundle):
    assert bundle.input_shape == (1, 8, 8)
    assert bundle.num_classes == 3
    d = bundle.describe()
    assert d["name"] == "tiny-1x8x8" and d["num_parameters"] == bundle.num_parameters
    assert sum(int(np.prod(p["shape"])) for p in d["params"]) == bundle.num_parameters
    assert bundle.feature_dim == d["feature_dim"]
    mean, std = bundle.normalization()
    assert mean.dtype == np.float32 and mean.shape == (1,)
    assert np.allclose(mean, d["normalization"]["mean"]) and np.allclose(std, d["normalization"]["std"])


def test_handles_close_once_and_refuse_use_after_close(runtime):
    b = ddlens.Bundle(TINY)
    p = ddlens.Params.init(b, 0)
    b.close()
    b.close()  # a second close does nothing
    assert b.closed and "closed" in repr(b)
    with pytest.raises(ddlens.InvalidArgumentError, match="Bundle was closed"):
        b.num_classes
    assert p.numel > 0  # parameters do not depend on the bundle
    with ddlens.Params.init(ddlens.Bundle(TINY), 1) as q:
        assert not q.closed
    assert q.closed
    del p
    gc.collect()


def test_params_are_seeded_round_trip_and_name_bad_lengths(bundle, tmp_path):
    a, b, c = ddlens.Params.init(bundle, 3), ddlens.Params.init(bundle, 3), ddlens.Params.init(bundle, 4)
    assert np.array_equal(a.flat(), b.flat()) and not np.array_equal(a.flat(), c.flat())
    flat = a.flat()
    assert flat.dtype == np.float32 and flat.shape == (bundle.num_parameters,) == (len(a),)
    d = ddlens.Params.from_flat(bundle, flat * 2)
    assert np.array_equal(d.flat(), flat * 2)
    with pytest.raises(ddlens.InvalidArgumentError, match="`len`"):
        d.set_flat(flat[:-1])
    with pytest.raises(ddlens.InvalidArgumentError, match="`values`"):
        d.set_flat(np.array(["a"]))
    # tensors by name, in the flat order
    names = [p["name"] for p in a.describe()["params"]]
    first = names[0]
    t = a.tensor(first)
    assert t.shape == a.tensor_shape(first) == tuple(bundle.describe()["params"][0]["shape"])
    assert np.array_equal(t.ravel(), flat[: t.size])
    e = a.clone()
    e.set_tensor(first, np.zeros_like(t))
    assert not e.tensor(first).any() and a.tensor(first).any()  # the clone is independent
    assert list(a.tensors()) == names
    with pytest.raises(ddlens.InvalidArgumentError, match="nope"):
        a.tensor("nope")
    path = tmp_path / "p.safetensors"
    e.save(bundle, path)
    assert np.array_equal(ddlens.Params.load(bundle, path).flat(), e.flat())


def _cross_entropy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]


def test_forward_and_grad_agree_with_each_other_and_with_finite_differences(bundle):
    x, y = banded(12, 5)
    p = ddlens.Params.init(bundle, 0)
    logits, feats = bundle.forward(p, x, features=True)
    assert logits.shape == (12, 3) and feats.shape == (12, bundle.feature_dim)
    assert np.array_equal(bundle.forward(p, x), logits)
    loss, g = bundle.grad(p, x, y)
    assert g.shape == (bundle.num_parameters,)
    assert loss == pytest.approx(_cross_entropy(logits, y).mean(), rel=1e-4)
    # weights: only example 3 counts
    w = np.zeros(12, np.float32)
    w[3] = 1.0
    loss3, _ = bundle.grad(p, x, y, weights=w)
    assert loss3 == pytest.approx(_cross_entropy(logits, y)[3] / 12, rel=1e-4)
    # directional derivative vs central differences of the loss
    rng = np.random.default_rng(0)
    d = rng.standard_normal(g.size).astype(np.float32)
    d /= np.linalg.norm(d)
    eps = 1e-2
    flat = p.flat()
    plus, _ = bundle.grad(ddlens.Params.from_flat(bundle, flat + eps * d), x, y)
    minus, _ = bundle.grad(ddlens.Params.from_flat(bundle, flat - eps * d), x, y)
    assert (plus - minus) / (2 * eps) == pytest.approx(float(g @ d), rel=2e-2, abs=1e-4)
    with pytest.raises(ddlens.InvalidArgumentError, match=r"`x` must have shape \(N, 1, 8, 8\)"):
        bundle.forward(p, np.zeros((2, 1, 4, 16), np.float32))
    with pytest.raises(ddlens.InvalidArgumentError, match="`y` must hold 12 labels"):
        bundle.grad(p, x, y[:5])


def test_arrays_and_tensors_go_in_without_a_copy():
    x = np.zeros((2, 1, 8, 8), np.float32)
    assert _core.as_array(x, "x", [np.float32]) is x
    u = np.zeros((2, 1, 8, 8), np.uint8)
    assert _core.as_array(u, "x", [np.float32, np.uint8]) is u
    converted = _core.as_array(x.astype(np.float64), "x", [np.float32])
    assert converted.dtype == np.float32  # converted (a copy) when it must be
    strided = x[:, :, ::2, :]
    assert _core.as_array(strided, "x", [np.float32]).flags.c_contiguous
    with pytest.raises(ddlens.InvalidArgumentError, match="`labels` must hold int64"):
        _core.as_array(np.array([0.5]), "labels", [np.int64])
    torch = pytest.importorskip("torch")
    t = torch.zeros(2, 1, 8, 8, requires_grad=True)
    arr = _core.as_array(t, "x", [np.float32])
    assert arr.ctypes.data == t.data_ptr()  # the tensor's own memory, through DLPack
    labels = torch.arange(3)
    assert _core.as_array(labels, "y", [np.int64]).ctypes.data == labels.data_ptr()
    assert _core.as_array(labels.to(torch.int32), "y", [np.int64]).dtype == np.int64


def test_datasets_from_memory_round_trip_normalise_and_subset(runtime):
    x, y = banded(30, 0)
    d = ddlens.Dataset.from_memory(x, y, num_classes=3, name="mine")
    assert len(d) == 30 and d.num_classes == 3 and d.input_shape == (1, 8, 8)
    assert np.array_equal(d.images(), x) and np.array_equal(d.labels(), y)
    assert d.describe() == {"name": "mine", "len": 30, "input_shape": [1, 8, 8], "num_classes": 3,
                            "class_counts": [10, 10, 10]}
    # uint8 pixels, normalised with per-channel constants
    px = np.arange(64, dtype=np.uint8).reshape(1, 1, 8, 8)
    n = ddlens.Dataset.from_memory(px, [0], num_classes=1, mean=[0.5], std=[0.25])
    assert np.allclose(n.images(), (px / 255.0 - 0.5) / 0.25, atol=1e-6)
    assert np.allclose(ddlens.Dataset.from_memory(px, [0]).images(), px / 255.0)
    # subsets
    sub = d.class_balanced(2, seed=1)
    assert sub.describe()["class_counts"] == [2, 2, 2]
    assert np.array_equal(sub.images(), d.class_balanced(2, seed=1).images())
    s = d.select([4, 4, 0])
    assert np.array_equal(s.labels(), y[[4, 4, 0]]) and np.array_equal(s.images(), x[[4, 4, 0]])
    with pytest.raises(ddlens.DataError):
        d.class_balanced(11)
    with pytest.raises(ddlens.InvalidArgumentError, match="`indices`"):
        d.select([-1])
    with pytest.raises(ddlens.InvalidArgumentError, match="`images` must have 4 dimensions"):
        ddlens.Dataset.from_memory(x[0], y[:1])
    with pytest.raises(ddlens.InvalidArgumentError, match="`num_labels`"):
        ddlens.Dataset.from_memory(x, y[:3], num_classes=3)
    with pytest.raises(ddlens.InvalidArgumentError, match="`mean` and `std` go together"):
        ddlens.Dataset.from_memory(x, y, mean=[0.5])


def test_torch_tensors_are_accepted(runtime):
    torch = pytest.importorskip("torch")
    x, y = banded(9, 3)
    d = ddlens.Dataset.from_memory(torch.from_numpy(x).requires_grad_(), torch.from_numpy(y))
    assert np.array_equal(d.images(), x) and d.num_classes == 3


def test_distilled_sets_create_write_read_and_carry_lr_and_metadata(runtime, tmp_path):
    x, y = banded(6, 4)
    s = ddlens.DistilledSet.from_arrays(x, y, num_classes=3, lr=0.05, meta={"method": "mine", "seed": 7})
    assert s.lr == pytest.approx(0.05) and len(s) == 6
    d = s.describe()
    assert d["method"] == "mine" and d["seed"] == 7 and d["ipc"] == 2
    path = tmp_path / "set.safetensors"
    s.write(path)
    back = ddlens.DistilledSet.read(str(path))
    assert back.describe() == d
    with back.data() as data:
        assert np.array_equal(data.images(), x) and np.array_equal(data.labels(), y)
    assert ddlens.DistilledSet.create(ddlens.Dataset.from_memory(x, y)).lr is None
    with pytest.raises(ddlens.InvalidArgumentError, match="`lr`"):
        ddlens.DistilledSet.from_arrays(x, y, lr=float("nan"))
    with pytest.raises(ddlens.InvalidArgumentError, match="bogus"):
        ddlens.DistilledSet.from_arrays(x, y, meta={"bogus": 1})


def test_a_zoo_set_reads_by_name(runtime):
    s = ddlens.DistilledSet.read("zoo:random-ipc1")
    d = s.describe()
    assert d["len"] == 10 and d["input_shape"] == [1, 28, 28] and d["num_classes"] == 10
    with pytest.raises(ddlens.InvalidArgumentError, match="random-ipc1"):
        ddlens.DistilledSet.read("zoo:no-such-set")


def test_json_results_are_plain_python(bundle):
    # Every describe() is parsed JSON, so it serialises back.
    assert json.loads(json.dumps(bundle.describe()))["name"] == "tiny-1x8x8"
