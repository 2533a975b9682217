#!/usr/bin/python3
"""Reference values for lib/preprocess.ts, computed with PIL 9.4 and torchvision 0.14 (Debian /usr/bin/python3).

Writes test/fixtures/preprocess/:
  <name>.png            test inputs (8-bit grey of odd sizes, RGB, RGBA, palette, 16-bit grey)
  <name>.L.png          PIL's convert("L") of each colour input (what decodeGrey must produce)
  <name>.pil224.png     PIL's convert("L").resize((224, 224), BILINEAR) as uint8 (8-bit inputs)
  manifest.json         per image: size, mode, sha256 of the grey pixels, sha256 of torchvision's float32 tensor
                        ToTensor()(Resize((224, 224))(img.convert("L"))); for the 16-bit image, PIL's float-mode ("F")
                        and integer-mode ("I", the mode PIL opens a 16-bit PNG in) resizes as whole sampled rows and
                        columns (the full 224x224 float32 image would not fit the fixture budget); under "realData",
                        torchvision hashes for three shared BBBC021 crops (when ../shared is present).

Run from the repository root:  /usr/bin/python3 scripts/reference/preprocess_reference.py
"""
import base64
import hashlib
import json
import os

import numpy as np
import PIL
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

OUT = os.path.join("test", "fixtures", "preprocess")
SIZE = 224


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def structured_grey(width: int, height: int, seed: int) -> np.ndarray:
    """Smooth waves + a bright blob + hard-edged 0/255 bars + one noisy patch: fractional bilinear weights on
    every kind of neighbourhood, saturated values, while staying small as PNG."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = 120 + 70 * np.sin(xx / max(width / 6.3, 1.0) + yy / max(height / 4.7, 1.0))
    img += 90 * np.exp(-(((xx - width * 0.6) / (width * 0.15 + 1)) ** 2 + ((yy - height * 0.4) / (height * 0.15 + 1)) ** 2))
    img[:, width // 5: width // 5 + max(width // 12, 1)] = 255
    img[height // 3: height // 3 + max(height // 14, 1), :] = 0
    ph, pw = max(height // 4, 2), max(width // 4, 2)
    img[-ph:, -pw:] = rng.integers(0, 256, (ph, pw))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def torchvision_sha(img: Image.Image) -> tuple:
    """torchvision's own pipeline on a PIL image: Resize (PIL bilinear) then ToTensor; sha of float32 LE bytes."""
    tensor = T.ToTensor()(T.Resize((SIZE, SIZE))(img))
    array = tensor.numpy()
    return sha256(array.astype("<f4")), str(tensor.dtype)


def save(img: Image.Image, name: str) -> str:
    img.save(os.path.join(OUT, name))
    return name


def eight_bit_case(name: str, source: Image.Image) -> dict:
    """Save the input, then reload it from disk so the references come from exactly the bytes the test reads."""
    save(source, f"{name}.png")
    img = Image.open(os.path.join(OUT, f"{name}.png"))
    grey = img.convert("L")
    resized = grey.resize((SIZE, SIZE), Image.BILINEAR)
    tv_sha, tv_dtype = torchvision_sha(grey)
    # torchvision divides PIL's uint8 output by 255 in float32: check that the two references agree.
    tv = T.ToTensor()(T.Resize((SIZE, SIZE))(grey)).numpy()[0]
    assert np.array_equal(tv, np.asarray(resized).astype(np.float32) / np.float32(255)), name
    entry = {
        "file": f"{name}.png",
        "mode": img.mode,
        "width": img.width,
        "height": img.height,
        "maxValue": 255,
        "greySha256": sha256(np.asarray(grey, dtype=np.uint8)),
        "pil224": save(resized, f"{name}.pil224.png"),
        "torchvisionSha256": tv_sha,
        "torchvisionDtype": tv_dtype,
    }
    if img.mode != "L":
        entry["greyL"] = save(grey, f"{name}.L.png")
    return entry


# Whole output rows and whole output columns: the resize is separable, so these lines exercise every horizontal
# and every vertical coefficient set (borders included) at a fraction of the full image's fixture size.
SAMPLED_LINES = [0, 1, 57, 112, 170, 222, 223]


def sampled_lines(image: np.ndarray, dtype: str) -> dict:
    rows = image[SAMPLED_LINES, :]
    cols = image[:, SAMPLED_LINES].T
    encode = lambda a: base64.b64encode(np.ascontiguousarray(a).astype(dtype).tobytes()).decode()
    return {"lines": SAMPLED_LINES, "dtype": dtype, "rowsBase64": encode(rows), "colsBase64": encode(cols)}


def sixteen_bit_case(name: str, values: np.ndarray) -> dict:
    save(Image.fromarray(values), f"{name}.png")
    img = Image.open(os.path.join(OUT, f"{name}.png"))
    # PIL 9.4 opens a 16-bit grey PNG as mode "I" (int32), not "I;16".
    assert img.mode == "I", img.mode
    assert np.array_equal(np.asarray(img), values.astype(np.int32))
    # Integer path: PIL rounds to int after each pass (ImagingResample*_32bpc, INT32 case).
    as_int = np.asarray(img.resize((SIZE, SIZE), Image.BILINEAR))
    assert as_int.min() >= 0 and as_int.max() <= 65535
    # Float path: the same filter with double accumulation, float32 storage after each pass (FLOAT32 case).
    as_float = np.asarray(img.convert("F").resize((SIZE, SIZE), Image.BILINEAR), dtype=np.float32)
    # What torchvision itself would hand the network: ToTensor keeps mode "I" as an int32 tensor, NOT divided
    # by 65535 (it only divides uint8); the method's convert("L") would clip every value above 255 to 255.
    tv = T.ToTensor()(T.Resize((SIZE, SIZE))(img))
    assert tv.dtype == torch.int32 and np.array_equal(tv.numpy()[0], as_int)
    clipped_fraction = float(np.mean(np.asarray(img.convert("L")) == 255))
    return {
        "file": f"{name}.png",
        "mode": img.mode,
        "width": img.width,
        "height": img.height,
        "maxValue": 65535,
        "greySha256": sha256(values.astype("<u2")),
        # Little-endian binary in base64: exact values at a third of the size of JSON numbers.
        "pilI224Lines": sampled_lines(as_int, "<u2"),
        "pilF224Lines": sampled_lines(as_float, "<f4"),
        "torchvisionDtype": str(tv.dtype),
        "torchvisionMax": int(tv.max()),
        "convertLClippedFraction": clipped_fraction,
    }


# A few of the shared BBBC021 crops (never copied into the repo: only hashes of torchvision's output are kept).
SHARED_CROPS = os.path.join("..", "shared", "data", "bbbc021-mcf7")
REAL_SAMPLES = ["DMSO/Actine/DMSO1.png", "DMSO/Noyaux/DMSO1.png", "ProteinSynthesis/Actine/ProteinSynthesis777.png"]


def real_data_references() -> list:
    if not os.path.isdir(SHARED_CROPS):
        print(f"note: {SHARED_CROPS} not found, no real-data references written")
        return []
    out = []
    for rel in REAL_SAMPLES:
        tv_sha, _ = torchvision_sha(Image.open(os.path.join(SHARED_CROPS, rel)).convert("L"))
        out.append({"file": rel, "torchvisionSha256": tv_sha})
    return out


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240611)
    cases = []
    for name, (w, h), seed in [
        ("grey_68x68", (68, 68), 1),  # the real crops' size: upscale
        ("grey_300x150", (300, 150), 2),  # downscale x, upscale y
        ("grey_17x400", (17, 400), 3),  # upscale x, downscale y
        ("grey_224x224", (224, 224), 4),  # identity: PIL skips both passes
        ("grey_50x40", (50, 40), 5),  # upscale both
        ("grey_483x257", (483, 257), 6),  # strong downscale: filter support widens to ~2.9 px
    ]:
        cases.append(eight_bit_case(name, Image.fromarray(structured_grey(w, h, seed))))

    grey = structured_grey(90, 70, 7)
    rgb = np.stack([grey, np.roll(grey, 9, axis=1), 255 - grey], axis=-1)
    rgb[:10, :10] = rng.integers(0, 256, (10, 10, 3))
    cases.append(eight_bit_case("rgb_90x70", Image.fromarray(rgb, "RGB")))

    grey = structured_grey(60, 80, 8)
    alpha = np.where(grey > 128, 255, 40)  # must be ignored by convert("L"); structured to keep the PNG small
    rgba = np.stack([grey, 255 - grey, np.roll(grey, 5, axis=0), alpha], axis=-1)
    cases.append(eight_bit_case("rgba_60x80", Image.fromarray(rgba.astype(np.uint8), "RGBA")))

    grey = structured_grey(64, 48, 9)
    palette_rgb = np.stack([grey, np.roll(grey, 7, axis=1), grey // 2 + 60], axis=-1).astype(np.uint8)
    palette = Image.fromarray(palette_rgb, "RGB").quantize(colors=41, method=Image.MEDIANCUT)
    assert palette.mode == "P"
    cases.append(eight_bit_case("palette_64x48", palette))

    yy, xx = np.mgrid[0:90, 0:120].astype(np.float64)
    grey16 = 30000 + 25000 * np.sin(xx / 11.0) * np.cos(yy / 7.0)
    grey16[60:, 90:] += rng.integers(-3000, 3000, (30, 30))  # full 16-bit noise only in a patch: keeps PNGs small
    grey16[40:44, :] = 65535
    grey16[:, 60:63] = 0
    cases.append(sixteen_bit_case("grey16_120x90", np.clip(np.rint(grey16), 0, 65535).astype(np.uint16)))

    manifest = {
        "generator": "scripts/reference/preprocess_reference.py",
        "versions": {"PIL": PIL.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
                     "numpy": np.__version__},
        "size": SIZE,
        "cases": cases,
        "realData": real_data_references(),
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, separators=(",", ": "))
        f.write("\n")


if __name__ == "__main__":
    main()
