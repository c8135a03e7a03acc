"""Throughput: `nodescope` training (Lightning module + preloaded tensors) vs a bare PyTorch loop, and inference
latency, PyTorch eager vs ONNX Runtime.

Same model (ClassifierNet), data (random uint8 images preloaded as one tensor), batch size, augmentation and optimiser
in both training loops; the figure is images/s over the timed epochs (the first epoch is a warm-up in both).

Usage:
    PYTHONPATH=src python bench/bench_throughput.py                      # defaults: lite0, 128 px, 256 images
    PYTHONPATH=src python bench/bench_throughput.py --n 64 --epochs 2 --size 64   # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="tf_efficientnet_lite0")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs (+1 warm-up)")
    ap.add_argument("--latency-runs", type=int, default=50)
    args = ap.parse_args()

    import lightning as L

    from nodescope.models import (
        BundleMeta,
        ClassifierNet,
        InferenceModel,
        InputSpec,
        OnnxPredictor,
        Predictor,
        export_onnx,
        load_bundle,
        save_bundle,
    )
    from nodescope.training import ClassifierModule, ImageDataModule, UltrasoundAugment

    torch.manual_seed(0)
    images = torch.randint(0, 256, (args.n, 3, args.size, args.size), dtype=torch.uint8)
    labels = torch.randint(0, 2, (args.n,))
    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    aug = UltrasoundAugment()
    print(f"threads={torch.get_num_threads()} backbone={args.backbone} size={args.size} n={args.n} "
          f"batch={args.batch_size}")

    # bare loop
    net = ClassifierNet(args.backbone, 2, image_size=args.size)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    m_t = torch.tensor(mean).view(1, -1, 1, 1)
    s_t = torch.tensor(std).view(1, -1, 1, 1)
    net.train()
    times = []
    for _ in range(args.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(args.n)
        for i in range(0, args.n, args.batch_size):
            j = perm[i:i + args.batch_size]
            x = (aug(images[j].float() / 255) - m_t) / s_t
            loss = F.cross_entropy(net(x), labels[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    bare = args.n * args.epochs / sum(times[1:])

    # nodescope (Lightning)
    class Timer(L.Callback):
        def __init__(self) -> None:
            self.t: list[float] = []

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self.t0 = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.t.append(time.perf_counter() - self.t0)

    net2 = ClassifierNet(args.backbone, 2, image_size=args.size)
    module = ClassifierModule(net2, mean, std, augment=aug, lr=1e-3, scheduler="none")
    dm = ImageDataModule(images, labels, np.arange(args.n), None, batch_size=args.batch_size)
    timer = Timer()
    trainer = L.Trainer(max_epochs=args.epochs + 1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
    trainer.fit(module, datamodule=dm)
    ours = args.n * args.epochs / sum(timer.t[1:])
    print(f"training: bare PyTorch {bare:.1f} img/s, nodescope/Lightning {ours:.1f} img/s, "
          f"overhead {100 * (bare - ours) / bare:+.1f}%")

    # inference
    with tempfile.TemporaryDirectory() as tmp:
        meta = BundleMeta(kind="classifier", architecture={"backbone": args.backbone, "num_classes": 2,
                                                           "image_size": args.size},
                          classes=("a", "b"), input=InputSpec(image_size=args.size, channels=3, mean=mean, std=std))
        b = load_bundle(save_bundle(Path(tmp) / "b", net2, meta))
        eager = InferenceModel.from_bundle(b)
        onnx = OnnxPredictor(export_onnx(b))
        x1 = images[:1].float() / 255

        def lat(fn) -> float:
            for _ in range(5):
                fn()
            ts = []
            for _ in range(args.latency_runs):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
            return statistics.median(ts) * 1000

        with torch.inference_mode():
            le = lat(lambda: eager(x1))
        lo = lat(lambda: onnx(x1.numpy()))
        xb = images[: args.batch_size].float() / 255
        with torch.inference_mode():
            t0 = time.perf_counter()
            for _ in range(3):
                eager(xb)
            te = 3 * args.batch_size / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(3):
            onnx(xb.numpy())
        to = 3 * args.batch_size / (time.perf_counter() - t0)
        print(f"inference batch 1 median latency: eager {le:.2f} ms, ONNX Runtime {lo:.2f} ms "
              f"(speed-up {le / lo:.2f}x)")
        print(f"inference batch {args.batch_size}: eager {te:.1f} img/s, ONNX Runtime {to:.1f} img/s")
        # the long-lived Predictor (what predict, the demo and the service use) over the same engines
        threads = torch.get_num_threads()
        p_t = Predictor(b, engine="torch", threads=threads)
        p_o = Predictor(b, engine="onnx", threads=threads)
        u1 = images[:1]
        lpt, lpo = lat(lambda: p_t.predict(u1, tta=False)), lat(lambda: p_o.predict(u1, tta=False))
        print(f"Predictor batch 1 median latency: torch {lpt:.2f} ms ({100 * (lpt - le) / le:+.1f}% vs eager), "
              f"onnx {lpo:.2f} ms ({100 * (lpo - lo) / lo:+.1f}% vs ONNX Runtime)")


if __name__ == "__main__":
    main()
