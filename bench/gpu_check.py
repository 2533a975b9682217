"""GPU check for a lent device machine (no Node there): runs the ONNX graph that lib/onnxEngine.ts builds on
onnxruntime's CUDA provider, checks it against the torchvision golden embeddings of test/fixtures/encoders, and times
it beside a PyTorch CUDA peer (same architecture, 1-channel conv1; timing does not depend on weight values).

Usage (on the device machine, from the repo root):
    python3 bench/gpu_check.py --onnx .gpu/resnet18_1ch.onnx --out $OUT/gpu_check.json
The .onnx file is exported here with `node -e` (see bench/README.md) from the seed0 test weights.
"""
import argparse
import json
import os
import platform
import subprocess
import time

import numpy as np


def golden_inputs(fixtures):
    meta = json.load(open(os.path.join(fixtures, "golden.json")))
    inputs, embeddings = [], []
    for image in meta["images"]:
        raw = np.fromfile(os.path.join(fixtures, image["input"]), dtype="<f4").reshape(1, 1, 224, 224)
        inputs.append(raw)
        embeddings.append(np.asarray(image["embedding"], dtype=np.float64))
    return np.concatenate(inputs), np.stack(embeddings)


def rel_l2(a, b):
    return float(np.max(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)))


def time_call(fn, repeats):
    fn()  # warm-up (cuDNN autotuning, allocations)
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--fixtures", default="test/fixtures/encoders")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    report = {"machine": platform.node(), "python": platform.python_version()}
    try:
        report["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as err:  # noqa: BLE001 - report whatever the machine says
        report["nvidia_smi"] = f"unavailable: {err}"

    import onnxruntime as ort
    report["onnxruntime"] = ort.__version__
    report["ort_providers"] = ort.get_available_providers()
    inputs, golden = golden_inputs(args.fixtures)
    batch = np.random.default_rng(0).random((args.batch, 1, 224, 224), dtype=np.float32)

    for provider in ["CUDAExecutionProvider", "CPUExecutionProvider"]:
        if provider not in report["ort_providers"]:
            report[provider] = "not available in this onnxruntime build"
            continue
        session = ort.InferenceSession(args.onnx, providers=[provider])
        name = session.get_inputs()[0].name
        out = session.run(None, {name: inputs})[0]
        seconds = time_call(lambda: session.run(None, {name: batch}), args.repeats)
        report[provider] = {
            "providers_in_use": session.get_providers(),
            "max_rel_l2_vs_torchvision_cpu": rel_l2(out.astype(np.float64), golden),
            "ms_per_image_batch": 1000 * seconds / args.batch,
        }

    import torch
    import torchvision
    report["torch"] = torch.__version__
    if torch.cuda.is_available():
        model = torchvision.models.resnet18()
        model.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
        model.fc = torch.nn.Identity()
        model = model.eval().cuda()
        x = torch.from_numpy(batch).cuda()

        def run_torch():
            with torch.no_grad():
                model(x)
            torch.cuda.synchronize()

        report["torch_cuda_fp32_ms_per_image"] = 1000 * time_call(run_torch, args.repeats) / args.batch
        report["torch_device"] = torch.cuda.get_device_name(0)
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
