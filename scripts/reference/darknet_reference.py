#!/usr/bin/python3
"""Independent PyTorch re-implementation of the shared Tiny Darknet (TF.js layers model) for test/tfjsModel.test.ts.

It reads model.json's Keras topology and the raw float32 shards with numpy (no TensorFlow.js code involved), rebuilds
every layer with torch, and writes the 1000-way softmax and the 128-d embedding (global average pool of the
classifier's input) for two scikit-image photos, both as RGB and as grey inputs, to test/fixtures/tfjsmodel/.

The photos are squashed to 224x224 with PIL bilinear and saved as PNG first; both implementations read those PNGs, so
the comparison is about the network alone, not about resampling. The network runs in float32, as TF.js does.

Run from the repository root:  /usr/bin/python3 scripts/reference/darknet_reference.py
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
import skimage.data

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_JSON = os.path.join(ROOT, "..", "shared", "weights", "darknet-tiny-imagenet", "model.json")
OUT_DIR = os.path.join(ROOT, "test", "fixtures", "tfjsmodel")
SIZE = 224
PHOTOS = {"chelsea": skimage.data.chelsea, "coffee": skimage.data.coffee}


def read_weights(model_json_path, manifest):
    """Name -> float32 array, reading each group's shards in manifest order (the TF.js weight layout)."""
    folder = os.path.dirname(model_json_path)
    weights = {}
    for group in manifest:
        blob = b"".join(open(os.path.join(folder, p), "rb").read() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            if spec["dtype"] != "float32" or "quantization" in spec:
                sys.exit(f"{spec['name']}: only plain float32 weights are handled by this reference")
            count = int(np.prod(spec["shape"])) if spec["shape"] else 1
            values = np.frombuffer(blob, dtype="<f4", count=count, offset=offset)
            weights[spec["name"]] = values.reshape(spec["shape"]).copy()
            offset += 4 * count
        if offset != len(blob):
            sys.exit(f"group {group['paths']}: {len(blob)} bytes, manifest says {offset}")
    return weights


def tf_same_padding(size, kernel, stride):
    """TensorFlow 'same' padding (before, after): the extra pixel, if any, goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x, kernel, stride, value):
    top, bottom = tf_same_padding(x.shape[2], kernel[0], stride[0])
    left, right = tf_same_padding(x.shape[3], kernel[1], stride[1])
    return F.pad(x, (left, right, top, bottom), value=value)


def run_layer(layer, x, weights):
    """One Keras layer on an NCHW float32 tensor."""
    kind, cfg, name = layer["class_name"], layer["config"], layer["name"]
    if kind == "Conv2D":
        assert cfg["dilation_rate"] == [1, 1] and cfg["activation"] == "linear", name
        kernel = torch.from_numpy(weights[f"{name}/kernel"]).permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
        bias = torch.from_numpy(weights[f"{name}/bias"]) if cfg["use_bias"] else None
        if cfg["padding"] == "same":
            x = pad_same(x, cfg["kernel_size"], cfg["strides"], 0.0)
        return F.conv2d(x, kernel, bias, stride=cfg["strides"])
    if kind == "BatchNormalization":
        assert cfg["axis"] in (-1, 3), name
        return F.batch_norm(x, torch.from_numpy(weights[f"{name}/moving_mean"]),
                            torch.from_numpy(weights[f"{name}/moving_variance"]),
                            torch.from_numpy(weights[f"{name}/gamma"]), torch.from_numpy(weights[f"{name}/beta"]),
                            training=False, eps=cfg["epsilon"])
    if kind == "LeakyReLU":
        return F.leaky_relu(x, cfg["alpha"])
    if kind == "MaxPooling2D":
        if cfg["padding"] == "same":
            x = pad_same(x, cfg["pool_size"], cfg["strides"], float("-inf"))
        return F.max_pool2d(x, cfg["pool_size"], cfg["strides"])
    if kind == "GlobalAveragePooling2D":
        return x.mean(dim=(2, 3))
    sys.exit(f"layer {name}: class {kind} not handled by this reference")


def forward(topology, weights, x):
    """Every layer's output by name, following inbound_nodes (single-input layers only)."""
    outputs = {}
    for layer in topology["layers"]:
        if layer["class_name"] == "InputLayer":
            outputs[layer["name"]] = x
            continue
        inbound = layer["inbound_nodes"][0]
        assert len(inbound) == 1, layer["name"]
        outputs[layer["name"]] = run_layer(layer, outputs[inbound[0][0]], weights)
    return outputs


def classifier_input(topology):
    """Name of the layer feeding the last Conv2D (the 1x1 1000-way classifier of Tiny Darknet)."""
    last_conv = [l for l in topology["layers"] if l["class_name"] == "Conv2D"][-1]
    return last_conv["inbound_nodes"][0][0][0]


def save_photo(name):
    """The photo squashed to SIZE x SIZE with PIL bilinear, as an RGB PNG and its PIL 'L' grey PNG."""
    rgb = Image.fromarray(PHOTOS[name]()).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
    rgb_path = os.path.join(OUT_DIR, f"{name}.png")
    grey_path = os.path.join(OUT_DIR, f"{name}-grey.png")
    rgb.save(rgb_path, optimize=True)
    rgb.convert("L").save(grey_path, optimize=True)
    return rgb_path, grey_path


def load_nchw(path, mode):
    """PNG -> 1 x C x SIZE x SIZE float32 in [0, 1], resized bilinear to SIZE (a no-op for the saved photos)."""
    img = Image.open(path).convert(mode).resize((SIZE, SIZE), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = arr[None, :, :, None] if arr.ndim == 2 else arr[None]
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def float32_list(values):
    """Shortest text that round-trips each value through float32: keeps the fixture small without losing bits."""
    return [float(np.format_float_positional(np.float32(v), unique=True)) for v in values]


def embedding(outputs, feature_layer):
    return float32_list(outputs[feature_layer].mean(dim=(2, 3))[0])


def classification(outputs, topology, feature_layer, labels):
    logits = outputs[topology["output_layers"][0][0]]
    probs = torch.softmax(logits, dim=1)[0]
    top = torch.argsort(probs, descending=True)[:5].tolist()
    return {
        "softmax": float32_list(probs),
        "embedding": embedding(outputs, feature_layer),
        "top5": [{"index": i, "label": labels[i], "p": round(float(probs[i]), 4)} for i in top],
    }


def main():
    torch.set_num_threads(2)
    model = json.load(open(MODEL_JSON))
    topology = model["modelTopology"]["model_config"]["config"]
    weights = read_weights(MODEL_JSON, model["weightsManifest"])
    labels = open(os.path.join(os.path.dirname(MODEL_JSON), "labels.txt")).read().splitlines()
    feature_layer = classifier_input(topology)
    os.makedirs(OUT_DIR, exist_ok=True)

    result = {"model": "darknet-tiny-imagenet/model.json", "inputSize": SIZE, "featureLayer": feature_layer,
              "script": "scripts/reference/darknet_reference.py",
              "torch": torch.__version__, "images": {}}
    with torch.no_grad():
        for name in PHOTOS:
            rgb_path, grey_path = save_photo(name)
            rgb = load_nchw(rgb_path, "RGB")
            grey = load_nchw(grey_path, "L")
            result["images"][name] = {
                "rgb": classification(forward(topology, weights, rgb), topology, feature_layer, labels),
                # 'third': each RGB channel = grey/3, the conv1-weights-averaged trick for a grey cell image.
                "greyThirdEmbedding": embedding(forward(topology, weights, grey.repeat(1, 3, 1, 1) / 3), feature_layer),
                "greyReplicateEmbedding": embedding(forward(topology, weights, grey.repeat(1, 3, 1, 1)), feature_layer),
            }
            print(name, [(t["label"], round(t["p"], 3)) for t in result["images"][name]["rgb"]["top5"][:3]])
    with open(os.path.join(OUT_DIR, "darknet-reference.json"), "w") as f:
        json.dump(result, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
