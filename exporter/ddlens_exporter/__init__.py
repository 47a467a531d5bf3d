"""ddlens-exporter: turn a PyTorch classifier into a ddlens bundle.

A bundle is a folder of ONNX graphs (one per *role*: forward, grad, grad_vjp, features_vjp,
loss_jvp) whose inputs include the model parameters, plus a ``manifest.json``; see
``docs/bundle-format.md`` in the ddlens repository.
"""

__version__ = "0.1.0"
