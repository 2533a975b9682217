#!/usr/bin/python3
"""Tiny images in every pixel format a user may hand in, and the grey levels each must decode to (PIL 9.4).

Writes test/fixtures/robustness/:
  rgb_6x4.png, rgba_6x4.png, palette_6x4.png   8-bit colour: expected grey = PIL's convert("L") (ITU-R 601-2 luma)
  grey16_6x4.png, grey16_6x4.tif                16-bit grey: expected grey = the stored uint16 values (the project
                                                keeps the 16-bit range, where PIL's convert("L") would clip at 255)
  float32_6x4.tif                               32-bit float grey: the project refuses it (its value range is not
                                                defined); PIL's convert("L") is recorded to show why: it truncates
                                                and clips, so a [0, 1] float image becomes almost all black
  grey_6x4.bmp                                  8-bit BMP: refused too (sharp's prebuilt libvips has no BMP decoder)
  expected.json                                 per file: PIL mode, size, expected grey levels (row-major)

Run from the repository root:  /usr/bin/python3 scripts/reference/robustness_images.py
"""
import json
import os

import numpy as np
import PIL
from PIL import Image

OUT = os.path.join("test", "fixtures", "robustness")
WIDTH, HEIGHT = 6, 4


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(6)
    cases = {}

    def record(name: str, img: Image.Image, grey: np.ndarray, max_value: int, **extra) -> None:
        cases[name] = {"mode": img.mode, "width": img.width, "height": img.height, "maxValue": max_value,
                       "grey": grey.reshape(-1).tolist(), **extra}

    rgb = rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    rgb[0, :3] = [[255, 0, 0], [0, 255, 0], [0, 0, 255]]  # pure primaries: the luma weights one by one
    img = Image.fromarray(rgb, "RGB")
    img.save(os.path.join(OUT, "rgb_6x4.png"))
    record("rgb_6x4.png", img, np.array(Image.open(os.path.join(OUT, "rgb_6x4.png")).convert("L")), 255)

    rgba = np.dstack([rgb[::-1], rng.integers(0, 256, size=(HEIGHT, WIDTH), dtype=np.uint8)])
    rgba[1, 0, 3] = 0  # a fully transparent pixel still has its colour's grey level: alpha is ignored
    img = Image.fromarray(rgba, "RGBA")
    img.save(os.path.join(OUT, "rgba_6x4.png"))
    record("rgba_6x4.png", img, np.array(Image.open(os.path.join(OUT, "rgba_6x4.png")).convert("L")), 255)

    img = Image.fromarray(rgb, "RGB").quantize(colors=5, method=Image.Quantize.MEDIANCUT)
    img.save(os.path.join(OUT, "palette_6x4.png"))
    reopened = Image.open(os.path.join(OUT, "palette_6x4.png"))
    assert reopened.mode == "P", reopened.mode
    record("palette_6x4.png", reopened, np.array(reopened.convert("L")), 255)

    grey16 = rng.integers(0, 65536, size=(HEIGHT, WIDTH), dtype=np.uint16)
    grey16[0, :4] = [0, 255, 256, 65535]  # around the 8-bit ceiling and at both ends
    for name in ("grey16_6x4.png", "grey16_6x4.tif"):
        Image.fromarray(grey16).save(os.path.join(OUT, name))  # uint16 arrays are saved as mode I;16
        reopened = Image.open(os.path.join(OUT, name))
        stored = np.array(reopened).astype(np.int64)
        assert (stored == grey16).all(), name
        record(name, reopened, stored, 65535,
               pilConvertL=np.array(reopened.convert("L")).reshape(-1).tolist())

    floats = rng.random(size=(HEIGHT, WIDTH)).astype(np.float32)
    floats[0, :4] = [0.0, 1.0, 254.9, 300.0]
    Image.fromarray(floats, "F").save(os.path.join(OUT, "float32_6x4.tif"))
    reopened = Image.open(os.path.join(OUT, "float32_6x4.tif"))
    cases["float32_6x4.tif"] = {"mode": reopened.mode, "width": reopened.width, "height": reopened.height,
                                "values": np.array(reopened).reshape(-1).astype(float).tolist(),
                                "pilConvertL": np.array(reopened.convert("L")).reshape(-1).tolist()}

    bmp = rng.integers(0, 256, size=(HEIGHT, WIDTH), dtype=np.uint8)
    Image.fromarray(bmp, "L").save(os.path.join(OUT, "grey_6x4.bmp"))
    reopened = Image.open(os.path.join(OUT, "grey_6x4.bmp"))
    cases["grey_6x4.bmp"] = {"mode": reopened.mode, "width": reopened.width, "height": reopened.height,
                             "pilGrey": np.array(reopened).reshape(-1).tolist()}

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"generator": "scripts/reference/robustness_images.py", "PIL": PIL.__version__,
                   "numpy": np.__version__, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
