#!/usr/bin/python3
"""The PyTorch peer of `npm run bench`: the same TEM pipeline, written the way a PyTorch user would write it.

PIL decode -> convert("L") -> torchvision Resize((224, 224)) -> ToTensor, two torchvision ResNet18 (one per channel)
loaded from the same .pth, conv1 = mean of its RGB weights (1 input channel), fc = Identity, eval mode, batch 64 under
torch.no_grad(), N intra-op threads; then L2 normalisation, the Ctrl -> TNFTGF axis and the 1st/99th-percentile
scaling in numpy. Runs with Debian's /usr/bin/python3 (torch 1.13, torchvision 0.14, PIL 9.4).

Input: a JSON file written by bench.ts, so that both sides read exactly the same images in the same order:
  {"pairs": [{"condition": "Ctrl", "actin": "/abs/a.png", "nucleus": "/abs/n.png"}, ...],
   "anchors": ["Ctrl", "TNFTGF"], "fusion": [0.5, 0.5]}
Output (stdout): one JSON object with the timings, in the field names bench.ts uses.

  /usr/bin/python3 bench/peer_torch.py --pairs pairs.json --weights ../shared/weights/resnet18-torchvision-seed0.pth
"""
import argparse
import json
import platform
import resource
import time

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

SIZE = 224
TRANSFORM = transforms.Compose([transforms.Resize((SIZE, SIZE)), transforms.ToTensor()])


def load_cell(path: str) -> torch.Tensor:
    with Image.open(path) as img:
        return TRANSFORM(img.convert("L"))


class Cells(Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return load_cell(self.paths[i])


def grey_resnet18(state_dict) -> torch.nn.Module:
    """torchvision ResNet18 taking one grey channel: conv1's RGB kernels averaged, classifier removed."""
    model = torchvision.models.resnet18()
    model.load_state_dict(state_dict)
    rgb = model.conv1.weight.data
    model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.conv1.weight.data = rgb.mean(dim=1, keepdim=True)
    model.fc = torch.nn.Identity()
    return model.eval()


def embed(model, paths, batch_size, workers) -> np.ndarray:
    loader = DataLoader(Cells(paths), batch_size=batch_size, shuffle=False, num_workers=workers)
    out = []
    with torch.no_grad():
        for batch in loader:
            out.append(model(batch).numpy())
    return np.concatenate(out)


def l2_normalise(z: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return z / np.where(norms > 0, norms, 1)


def tem_channel(z: np.ndarray, conditions: np.ndarray, anchors) -> np.ndarray:
    z = l2_normalise(z.astype(np.float64))
    mu_e = z[conditions == anchors[0]].mean(axis=0)
    mu_m = z[conditions == anchors[1]].mean(axis=0)
    s = (z - mu_e) @ (mu_m - mu_e)
    lo, hi = np.percentile(s, [1, 99])
    return np.clip((s - lo) / (hi - lo), 0, 1)


def whole_run(pairs, anchors, fusion, weights, batch_size, workers) -> dict:
    """Everything a `score` run does up to the scores: weights, two encoders, both channels, the axes."""
    state_dict = torch.load(weights, map_location="cpu")
    actin_model, nucleus_model = grey_resnet18(state_dict), grey_resnet18(state_dict)
    conditions = np.array([p["condition"] for p in pairs])
    actin = embed(actin_model, [p["actin"] for p in pairs], batch_size, workers)
    nucleus = embed(nucleus_model, [p["nucleus"] for p in pairs], batch_size, workers)
    tem_actin = tem_channel(actin, conditions, anchors)
    tem_nucleus = tem_channel(nucleus, conditions, anchors)
    fused = (fusion[0] * tem_actin + fusion[1] * tem_nucleus) / (fusion[0] + fusion[1])
    return {"tem_fused_mean": float(fused.mean())}


def timed(fn):
    """Wall seconds and CPU seconds of the whole process (every thread), as bench.ts reports them."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def stage(images: int, seconds: float, cpu_seconds: float, **extra) -> dict:
    return {"images": images, "seconds": seconds, "imagesPerSecond": images / seconds, "cpuSeconds": cpu_seconds,
            **extra}


def decode_and_inference(files, weights, batch, infer_images) -> dict:
    """Decode + resize alone over every image, then inference alone on already prepared cells."""
    cells, decode_s, decode_cpu = timed(lambda: [load_cell(f) for f in files])
    model = grey_resnet18(torch.load(weights, map_location="cpu"))
    infer_n = min(infer_images, len(cells))
    stack = torch.stack(cells[:infer_n])
    with torch.no_grad():
        model(stack[:batch])  # warm-up, not timed
        _, infer_s, infer_cpu = timed(lambda: [model(stack[i: i + batch]) for i in range(0, infer_n, batch)])
    return {"decode": stage(len(files), decode_s, decode_cpu),
            "inference": stage(infer_n, infer_s, infer_cpu, batchSize=batch)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", required=True, help="JSON list of pairs written by bench.ts")
    parser.add_argument("--weights", required=True, help="torchvision ResNet18 .pth")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--infer-images", type=int, default=256, help="images in the inference-alone timing")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes in the whole run")
    parser.add_argument("--whole-only", action="store_true", help="time the whole run only (bench.ts's paired rounds)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with open(args.pairs) as f:
        spec = json.load(f)
    pairs, anchors, fusion = spec["pairs"], spec["anchors"], spec["fusion"]
    files = [p[channel] for p in pairs for channel in ("actin", "nucleus")]

    # The whole run first, so that the peak RSS read after it is the whole run's own (ru_maxrss never goes down).
    summary, whole_s, whole_cpu = timed(lambda: whole_run(pairs, anchors, fusion, args.weights, args.batch, args.workers))
    result = {
        "engine": "pytorch",
        "backend": f"torch {torch.__version__} cpu, {args.threads} threads",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "pillow": PIL.__version__, "numpy": np.__version__},
        "pairs": len(pairs),
        "whole": stage(len(files), whole_s, whole_cpu, dataLoaderWorkers=args.workers, **summary),
        "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
    }
    if not args.whole_only:
        result.update(decode_and_inference(files, args.weights, args.batch, args.infer_images))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
