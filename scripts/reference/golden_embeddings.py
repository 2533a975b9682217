#!/usr/bin/python3
"""Golden ResNet18 embeddings for test/encoders.test.ts, computed with torchvision itself.

Makes a few synthetic grey "cells" (seeded numpy, different sizes), preprocesses them exactly like the method
(PIL .convert("L"), transforms.Resize((224, 224)) bilinear, ToTensor), and embeds them with
torchvision.models.resnet18 loaded from the shared seed0 test weights, conv1 reduced to one channel by averaging
its RGB weights, fc replaced by Identity, eval mode (BatchNorm uses running statistics).

Writes to test/fixtures/encoders/:
  cell_<k>.png          the synthetic image (8-bit grey)
  cell_<k>.input.f32    the 1x224x224 float32 little-endian tensor torchvision saw (so the engines test does not
                        depend on the TypeScript preprocessing)
  golden.json           per image: file names, original size, and the 512-d embedding (before any normalisation)

Run: /usr/bin/python3 scripts/reference/golden_embeddings.py [path/to/resnet18-torchvision-seed0.pth]
"""
import hashlib
import json
import os
import sys

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "encoders")
DEFAULT_WEIGHTS = os.path.join(ROOT, "..", "shared", "weights", "resnet18-torchvision-seed0.pth")

# (height, width): one smaller than 224, one larger and non-square, one wide and short, so resize is exercised
# up and down and with different aspect ratios.
SIZES = [(61, 83), (300, 257), (140, 412)]


def synthetic_cell(rng, height, width):
    """A bright elongated blob with fibre-like streaks on a noisy dark background, like an actin/nucleus crop."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    cy, cx = rng.uniform(0.35, 0.65) * height, rng.uniform(0.35, 0.65) * width
    angle = rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    su, sv = rng.uniform(0.2, 0.35) * width, rng.uniform(0.1, 0.2) * height
    body = np.exp(-0.5 * ((u / su) ** 2 + (v / sv) ** 2))
    fibres = 0.5 + 0.5 * np.sin(v * rng.uniform(0.3, 0.8) + rng.uniform(0, 2 * np.pi))
    image = 30 + 200 * body * (0.6 + 0.4 * fibres) + rng.normal(0, 8, size=(height, width))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def build_model(weights_path):
    model = torchvision.models.resnet18()
    model.load_state_dict(torch.load(weights_path, map_location="cpu"))
    rgb = model.conv1.weight.data
    model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.conv1.weight.data = rgb.mean(dim=1, keepdim=True)
    model.fc = torch.nn.Identity()
    return model.eval()


def main():
    weights_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_WEIGHTS
    with open(weights_path, "rb") as f:
        weights_sha256 = hashlib.sha256(f.read()).hexdigest()
    model = build_model(weights_path)
    preprocess = transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor()])
    rng = np.random.default_rng(20240601)
    os.makedirs(OUT, exist_ok=True)

    images = []
    for k, (height, width) in enumerate(SIZES):
        png = f"cell_{k}.png"
        Image.fromarray(synthetic_cell(rng, height, width), mode="L").save(os.path.join(OUT, png))
        # Read back from disk, as the method does, so the PNG round trip is part of what is checked.
        tensor = preprocess(Image.open(os.path.join(OUT, png)).convert("L"))
        assert tuple(tensor.shape) == (1, 224, 224)
        raw = f"cell_{k}.input.f32"
        tensor.numpy().astype("<f4").tofile(os.path.join(OUT, raw))
        with torch.no_grad():
            embedding = model(tensor.unsqueeze(0))[0].numpy().astype(np.float32)
        images.append({"png": png, "input": raw, "height": height, "width": width,
                       "embedding": [float(x) for x in embedding]})

    golden = {
        "generator": "scripts/reference/golden_embeddings.py",
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "weights": os.path.basename(weights_path), "weightsSha256": weights_sha256,
        "model": "resnet18, conv1 = mean of RGB weights (1 channel), fc = Identity, eval()",
        "preprocess": 'PIL convert("L") -> Resize((224,224)) bilinear -> ToTensor',
        "inputSize": 224, "dim": 512, "images": images,
    }
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print(f"wrote {len(images)} images and golden.json to {OUT}")


if __name__ == "__main__":
    main()
