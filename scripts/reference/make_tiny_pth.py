"""Reference fixtures for test/weights.test.ts (run with Debian's /usr/bin/python3: torch 1.13, torchvision 0.14).

Writes to test/fixtures/weights/:
  tiny.pth, tiny_expected.json      a small state_dict saved by torch.save (zip format) and what it holds;
                                    covers float32 2-D/4-D, float64, an int64 scalar beyond 2**53 and negative,
                                    and two views sharing one storage at non-zero offsets.
  tiny_noncontiguous.pth            a transposed (non-contiguous) tensor the reader must refuse.
  seed0_expected.json               torchvision resnet18's state_dict names/shapes/dtypes, and values torch reads from
                                    ../shared/weights/resnet18-torchvision-seed0.pth (skipped when that file is absent).
"""
import collections
import hashlib
import json
import os

import torch
import torchvision

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "test", "fixtures", "weights")
SEED0 = os.path.join(ROOT, "..", "shared", "weights", "resnet18-torchvision-seed0.pth")
DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64"}


def flat_values(t):
    values = t.contiguous().flatten().tolist()
    # int64 goes through JSON as strings: JS numbers lose integers beyond 2**53.
    return [str(v) for v in values] if t.dtype == torch.int64 else values


def describe(t):
    return {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "values": flat_values(t)}


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_tiny():
    shared = torch.arange(12, dtype=torch.float32) * 0.5 - 1.25
    tiny = collections.OrderedDict()
    tiny["matrix"] = torch.tensor([[0.1, -2.5, 3.0], [1e-3, 7.25, -0.333]], dtype=torch.float32)
    tiny["kernel"] = (torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).reshape(2, 1, 2, 3) - 5.0) / 3.0
    tiny["precise"] = torch.tensor([1.0 / 3.0, -1e-300, 2.5e10], dtype=torch.float64)
    tiny["count"] = torch.tensor(-(2 ** 62) + 12345, dtype=torch.int64)
    tiny["window"] = shared[3:7]
    tiny["grid"] = shared[4:10].view(2, 3)
    assert tiny["window"].storage_offset() == 3 and tiny["grid"].storage_offset() == 4
    torch.save(tiny, os.path.join(OUT, "tiny.pth"))

    # Read back through torch itself, so the expectations are what torch.load gives for this file.
    loaded = torch.load(os.path.join(OUT, "tiny.pth"))
    assert loaded["window"].data_ptr() != loaded["grid"].data_ptr()
    expected = collections.OrderedDict((k, describe(v)) for k, v in loaded.items())
    with open(os.path.join(OUT, "tiny_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)

    transposed = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()
    assert not transposed.is_contiguous()
    torch.save(collections.OrderedDict(transposed=transposed), os.path.join(OUT, "tiny_noncontiguous.pth"))


def make_seed0():
    architecture = [
        {"name": k, "shape": list(v.shape), "dtype": DTYPE_NAMES[v.dtype]}
        for k, v in torchvision.models.resnet18().state_dict().items()
    ]
    result = {"architecture": architecture}
    if os.path.exists(SEED0):
        sd = torch.load(SEED0, map_location="cpu")
        kept = [k for k in sd if not k.endswith("num_batches_tracked") and not k.startswith("fc.")]
        result["seed0"] = {
            "file": os.path.basename(SEED0),
            "sha256": sha256_of(SEED0),
            "tensor_count": len(sd),
            "kept_tensor_count": len(kept),
            "kept_float_count": sum(sd[k].numel() for k in kept),
            "samples": {
                "conv1.weight[0,0,0,:]": {"name": "conv1.weight", "start": 0, "values": sd["conv1.weight"][0, 0, 0, :].tolist()},
                "bn1.running_var[:5]": {"name": "bn1.running_var", "start": 0, "values": sd["bn1.running_var"][:5].tolist()},
                "layer4.1.bn2.bias[-3:]": {"name": "layer4.1.bn2.bias", "start": 509, "values": sd["layer4.1.bn2.bias"][-3:].tolist()},
                "layer2.0.downsample.0.weight[127,63,0,0]": {
                    "name": "layer2.0.downsample.0.weight", "start": 127 * 64 + 63,
                    "values": [sd["layer2.0.downsample.0.weight"][127, 63, 0, 0].item()]},
            },
        }
        assert sd["layer4.1.bn2.bias"].numel() == 512
    with open(os.path.join(OUT, "seed0_expected.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    make_tiny()
    make_seed0()
