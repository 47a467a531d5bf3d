"""Reading a bundle's ONNX files back: tensor names, element types and shapes."""

from pathlib import Path

import onnx

FLOAT, INT64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64


def signature(path: Path) -> tuple[list, list]:
    """``([(name, elem_type, dims)], [...])`` for inputs and outputs; a dynamic dim is ``None``."""
    model = onnx.load(str(path), load_external_data=False)

    def describe(values):
        out = []
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
            out.append((v.name, t.elem_type, dims))
        return out

    return describe(model.graph.input), describe(model.graph.output)


def expected_signature(manifest: dict, role: str) -> tuple[list, list]:
    """What docs/bundle-format.md prescribes for ``role`` of this manifest."""
    c, h, w = manifest["input_shape"]
    params = [(p["name"], p["shape"]) for p in manifest["params"]]
    state = [(s["name"], s["shape"]) for s in manifest.get("state", [])]

    def pre(prefix, entries=params):
        return [(prefix + n, FLOAT, s) for n, s in entries]

    x = ("x", FLOAT, [None, c, h, w])
    y = ("y", INT64, [None])
    wt = ("w", FLOAT, [None])
    x_grad = ("x_grad", FLOAT, [None, c, h, w])
    table = {
        "forward": (pre("") + pre("", state) + [x], [("logits", FLOAT, [None, manifest["num_classes"]]),
                                   ("features", FLOAT, [None, manifest["feature_dim"]])]),
        "grad": (pre("") + pre("", state) + [x, y, wt], [("loss", FLOAT, [])] + pre("g:") + pre("new:", state)),
        "grad_vjp": (pre("") + [x, y, wt] + pre("a:"), pre("hv:") + [x_grad]),
        "features_vjp": (pre("") + [x, ("c", FLOAT, [None, manifest["feature_dim"]])], [x_grad]),
        "loss_jvp": (pre("") + pre("v:") + [x, y], [("dloss", FLOAT, [None])]),
    }
    return table[role]


def check_files(bundle: Path, manifest: dict) -> None:
    """Every graph: the prescribed signature, self-contained (no external data), opset 18."""
    for role, spec in manifest["graphs"].items():
        path = bundle / spec["file"]
        assert signature(path) == expected_signature(manifest, role), f"{path}: signature"
        names_in, names_out = expected_signature(manifest, role)
        assert spec["inputs"] == [n for n, _, _ in names_in]
        assert spec["outputs"] == [n for n, _, _ in names_out]
        model = onnx.load(str(path), load_external_data=False)
        assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer), path
        assert {o.domain: o.version for o in model.opset_import}[""] == 18
    assert not list(bundle.glob("*.data")), "no external-data side files"
