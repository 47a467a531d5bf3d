"""Training, evaluation, distillation and the analyses: results, progress, cancellation, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ddlens
from conftest import ROOT, TINY, banded


def _config() -> ddlens.TrainConfig:
    return ddlens.TrainConfig.p_real(10, seed=3).configure(batch_size=16, lr=0.05)


def test_train_config_round_trips_and_names_refused_fields():
    c = ddlens.TrainConfig.standard_eval(epochs=300, lr=0.01, train_size=100, seed=0)
    j = c.to_json()
    assert j["epochs"] == 300 and j["batch_size"] == 256 and j["sgd"]["weight_decay"] == pytest.approx(5e-4)
    assert j["schedule"]["kind"] == "step"
    assert ddlens.TrainConfig.from_json(j).to_json() == j
    assert ddlens.TrainConfig.from_json(json.dumps(j)).to_json() == j
    assert c.total_steps(100) == 300 and c.total_steps(600) == 900
    c.configure(max_steps=10, schedule="constant", dsa="color_crop")
    j2 = c.to_json()
    assert j2["max_steps"] == 10 and j2["schedule"] == {"kind": "constant"} and j2["augment"]
    c.configure(schedule=([5, 8], 0.5))
    assert c.to_json()["schedule"]["milestones"] == [5, 8]
    with pytest.raises(ddlens.InvalidArgumentError, match="`momentum`"):
        c.set_momentum(1.5)
    assert c.to_json()["sgd"]["momentum"] == j["sgd"]["momentum"]  # unchanged after a refusal
    with pytest.raises(ddlens.InvalidArgumentError, match="`augment`"):
        c.set_dsa("wobble")
    with pytest.raises(ddlens.InvalidArgumentError, match="unknown training setting `momentun`"):
        c.configure(momentun=0.5)
    with pytest.raises(ddlens.InvalidArgumentError, match="`epochs` must be an integer"):
        c.set_epochs(1.5)
    with pytest.raises(ddlens.InvalidArgumentError, match="bogus"):
        ddlens.TrainConfig.from_json({**j, "bogus": 1})


def test_train_learns_reports_progress_and_is_deterministic(bundle, toy):
    train_set, test_set = toy
    init = ddlens.Params.init(bundle, 0)
    seen = []
    trained, report = ddlens.train(bundle, init, train_set, _config(), progress=lambda *a: seen.append(a))
    # 90 examples, batch 16 -> 6 steps per epoch, 10 epochs
    assert report["steps"] == report["total_steps"] == 60 and len(report["log"]) > 0
    assert seen[0] == ("train", 0, 60) and seen[-1] == ("train", 60, 60) and len(seen) == 61
    after = ddlens.evaluate(bundle, trained, test_set)
    before = ddlens.evaluate(bundle, init, test_set)
    assert after["accuracy"] > 0.9 and after["accuracy"] > before["accuracy"]
    assert np.asarray(after["confusion"]).sum() == len(test_set)
    again, _ = ddlens.train(bundle, init, train_set, _config())
    assert np.array_equal(again.flat(), trained.flat())
    # the same accuracy as the model's own logits
    logits = bundle.forward(trained, test_set.images())
    assert after["accuracy"] == pytest.approx((logits.argmax(1) == test_set.labels()).mean())


def test_a_false_return_cancels_and_an_exception_in_the_callback_is_re_raised(bundle, toy):
    train_set, _ = toy
    init = ddlens.Params.init(bundle, 0)
    calls = []

    def stop_at_2(stage, done, total):
        calls.append(done)
        return done < 2

    with pytest.raises(ddlens.CancelledError) as e:
        ddlens.train(bundle, init, train_set, _config(), progress=stop_at_2)
    assert e.value.status_name == "DDL_STATUS_CANCELLED" and "step 2" in e.value.message
    assert calls == [0, 1, 2]

    class Boom(Exception):
        pass

    calls.clear()

    def explode(stage, done, total):
        calls.append(done)
        if done == 3:
            raise Boom("from the callback")

    with pytest.raises(Boom, match="from the callback"):
        ddlens.train(bundle, init, train_set, _config(), progress=explode)
    assert calls == [0, 1, 2, 3]  # cancelled at once
    with pytest.raises(ddlens.InvalidArgumentError, match="`progress` must be callable"):
        ddlens.train(bundle, init, train_set, _config(), progress=42)


def test_threads_train_at_once_with_the_same_results(bundle, toy):
    train_set, _ = toy
    init = ddlens.Params.init(bundle, 0)
    want = ddlens.train(bundle, init, train_set, _config())[0].flat()
    got = [None, None]

    def work(i: int) -> None:
        got[i] = ddlens.train(bundle, init, train_set, _config())[0].flat()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(g, want) for g in got)


def test_standard_evaluation_uses_the_sets_learned_lr(bundle, toy):
    _, test_set = toy
    x, y = banded(9, 5)
    s = ddlens.DistilledSet.from_arrays(x, y, lr=0.05)
    seen = []
    r = ddlens.standard_evaluation(bundle, s, test_set, runs=2, epochs=6, progress=lambda *a: seen.append(a))
    assert r["train_size"] == 9 and len(r["accuracies"]) == 2
    assert r["mean"] == pytest.approx(np.mean(r["accuracies"]))
    assert seen[0] == ("evaluation", 0, 12) and seen[-1][1] == 12
    with s.data() as d:
        same = ddlens.standard_evaluation(bundle, d, test_set, runs=2, epochs=6, lr=0.05)
    assert same["accuracies"] == r["accuracies"]
    with pytest.raises(ddlens.InvalidArgumentError, match="`train_set`"):
        ddlens.standard_evaluation(bundle, x, test_set)


def test_standard_evaluation_with_dsa_is_each_run_trained_with_the_strategy(bundle, toy):
    train_set, test_set = toy
    r = ddlens.standard_evaluation(bundle, train_set, test_set, runs=2, epochs=3, seed=4, augment="flip_rotate")
    for run, acc in enumerate(r["accuracies"]):
        config = ddlens.TrainConfig.standard_eval(3, 0.01, len(train_set), 4 + run).set_dsa("flip_rotate")
        params, _ = ddlens.train(bundle, ddlens.Params.init(bundle, 4 + run), train_set, config)
        assert ddlens.evaluate(bundle, params, test_set)["accuracy"] == acc
    with pytest.raises(ddlens.InvalidArgumentError, match="augment"):
        ddlens.standard_evaluation(bundle, train_set, test_set, runs=1, epochs=1, augment="flip_sparkle")


def test_distill_dm_and_random_with_progress_and_named_refusals(bundle, toy):
    train_set, _ = toy
    config = ddlens.DistillConfig("dm", 2, iterations=3, seed=1, batch_real=8)
    assert config.describe()["iterations"] == 3 and config.describe()["method"] == "dm"
    seen = []
    s, report = ddlens.distill(bundle, train_set, config, progress=lambda *a: seen.append(a))
    assert len(s) == 6 and s.describe()["method"] == "dm"
    assert len(report["loss_per_iteration"]) == 3
    assert seen[0] == ("distill", 0, 3) and seen[-1] == ("distill", 3, 3)
    again, _ = ddlens.distill(bundle, train_set, config)
    with s.data() as a, again.data() as b:
        assert np.array_equal(a.images(), b.images())
    r, _ = ddlens.distill(bundle, train_set, ddlens.DistillConfig("random", 1))
    assert len(r) == 3
    with pytest.raises(ddlens.InvalidArgumentError, match="`method`"):
        ddlens.DistillConfig("dmx", 1)
    with pytest.raises(ddlens.InvalidArgumentError, match="window"):
        ddlens.DistillConfig("dm", 1, window=3)
    with pytest.raises(ddlens.InvalidArgumentError, match="unknown distillation setting `iters`"):
        ddlens.DistillConfig("dm", 1, iters=3)
    with pytest.raises(ddlens.CancelledError):
        ddlens.distill(bundle, train_set, config, progress=lambda st, d, t: d < 1)


def test_distill_resumes_from_a_checkpoint_to_the_same_set(bundle, toy, tmp_path):
    train_set, _ = toy
    ckpt = tmp_path / "dm.ckpt"
    full, _ = ddlens.distill(bundle, train_set, ddlens.DistillConfig("dm", 1, iterations=4, batch_real=8))
    config = ddlens.DistillConfig("dm", 1, iterations=4, batch_real=8, checkpoint=(str(ckpt), 1))
    with pytest.raises(ddlens.CancelledError):
        ddlens.distill(bundle, train_set, config, progress=lambda st, d, t: d < 2)
    assert ckpt.exists()
    resumed, report = ddlens.distill(bundle, train_set, config.configure(resume=True))
    assert report["resumed_from"] == 2
    with full.data() as a, resumed.data() as b:
        assert np.array_equal(a.images(), b.images())


def test_experts_then_mtt(bundle, toy, tmp_path):
    train_set, _ = toy
    seen = []
    index = ddlens.generate_experts(
        bundle, train_set, tmp_path / "experts", num_experts=1, epochs=3, lr=0.05, batch=30,
        dsa=False, progress=lambda *a: seen.append(a),
    )
    assert index["experts"] == 1 and index["epochs"] == 3
    assert seen[-1] == ("experts", 3, 3)
    config = ddlens.DistillConfig(
        "mtt", 1, iterations=2, experts=str(tmp_path / "experts"), syn_steps=2,
        expert_epochs_ahead=1, max_start_epoch=1, dsa=False, lr_img=100.0, lr_lr=1e-4,
    )
    s, report = ddlens.distill(bundle, train_set, config)
    assert len(s) == 3 and s.lr is not None and len(report["loss_per_iteration"]) == 2
    with pytest.raises(ddlens.InvalidArgumentError, match="`num_experts`"):
        ddlens.generate_experts(bundle, train_set, tmp_path / "e2", num_experts=0)


# The smoke budget made smaller still, as the Rust tests of the C ABI run them.
OPTIONS = {
    "mixing": {"ks": [0, 2], "runs": 1, "steps": 5},
    "sensitivity": {"epochs": 4, "lr_factors": [0.5]},
    "pixels": {"bins": 30, "real_images": 60},
    "recognition": {"train_epochs": 5, "train_max_steps": 3},
    "agreement": {"pool_a_fraction_min": 0.1, "pool_a_fraction_max": 0.2},
    "recognition-over-training": {"steps": 5, "every": 5},
    "curvature": {"steps": [0, 2, 4], "train_images": 30, "batch": 30, "spectrum_steps": [4]},
    "influence": {"steps": 8, "loo_images": 2, "test_images": 30, "cg_iters": 4, "feature_steps": 3},
}


def test_every_analysis_runs_and_writes_its_result(bundle, toy, tmp_path):
    train_set, test_set = toy
    listed = [a["name"] for a in ddlens.analysis_names()]
    assert listed == list(OPTIONS)
    x, y = banded(6, 3)
    s = ddlens.DistilledSet.from_arrays(x, y)
    for name in listed:
        stages = []
        out = tmp_path / name
        result = ddlens.analyze(
            name, bundle, train_set, test_set, [s], names=["toy"], budget="smoke",
            options=OPTIONS[name], seed=7, out_dir=out, progress=lambda *a: stages.append(a[0]),
        )
        assert result["verdict"]["state"] in ("supports", "contradicts", "inconclusive"), name
        assert "toy" in json.dumps(result), name
        written = json.loads((out / f"{name}.json").read_text())
        assert written["result"] == result and written["info"]["seed"] == 7
        assert stages and all(st.startswith(f"{name}:") for st in stages), (name, stages[:3])
    # a shorthand, a default set name, and an unknown setting named
    r = ddlens.analyze_pixels(bundle, train_set, test_set, [s], budget="smoke", options=OPTIONS["pixels"])
    assert [e["name"] for e in r["sets"]][1] == "set0"
    with pytest.raises(ddlens.InvalidArgumentError, match="bogus"):
        ddlens.analyze("pixels", bundle, train_set, test_set, [s], budget="smoke", options={"bogus": 1})
    with pytest.raises(ddlens.InvalidArgumentError, match="mixing"):
        ddlens.analyze("mixin", bundle, train_set, test_set, [s], budget="smoke")
    with pytest.raises(ddlens.InvalidArgumentError, match="`budget`"):
        ddlens.analyze("pixels", bundle, train_set, test_set, [s], budget="huge")
    with pytest.raises(ddlens.InvalidArgumentError, match="`names`"):
        ddlens.analyze("pixels", bundle, train_set, test_set, [s], names=["a", "b"])


# A call that would run for minutes, reporting progress; prints "started" from its first
# callback (or before the call when it has no callback).
_LONG_CALL = """
import sys, numpy as np, ddlens
sys.path.insert(0, {tests!r})
from conftest import banded
ddlens.init_runtime(provider="cpu", threads=1)
b = ddlens.Bundle({tiny!r})
d = ddlens.Dataset.from_memory(*banded(600, 1))
cfg = ddlens.TrainConfig.p_real(100000).configure(batch_size=16)
def progress(stage, done, total):
    if done == 0:
        print("started", flush=True)
with_callback = {with_callback}
if not with_callback:
    print("started", flush=True)
ddlens.train(b, ddlens.Params.init(b, 0), d, cfg, progress=progress if with_callback else None)
print("finished", flush=True)
"""


@pytest.mark.parametrize("with_callback", [True, False])
def test_ctrl_c_cancels_a_long_call_promptly(with_callback):
    code = _LONG_CALL.format(tests=str(ROOT / "bindings/python/tests"), tiny=TINY, with_callback=with_callback)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "bindings/python/src"))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "started"
        time.sleep(0.5)  # well inside the call
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
        elapsed = time.monotonic() - sent
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "finished" not in out
    assert p.returncode != 0
    assert "KeyboardInterrupt" in err and "ddlens train cancelled by Ctrl-C" in err, err
    assert "DDL_STATUS_CANCELLED" in err, err  # the CancelledError is the interrupt's cause
    assert elapsed < 5, f"took {elapsed:.1f} s to stop"
