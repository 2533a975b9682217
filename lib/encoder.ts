// One small interface for every image encoder: a batch of grey cells in, one embedding per cell out.
// Engines (onnxruntime, TensorFlow.js) and backbones (ResNet18, any TF.js model) all sit behind it, so the
// scoring code never needs to know which one produced the numbers.

/** Where an encoder's weights come from, and whether they are the method's verified ImageNet file. */
export interface WeightsProvenance {
  /** Human-readable name, e.g. "torchvision ResNet18 IMAGENET1K_V1" or "resnet18-torchvision-seed0.pth (UNVERIFIED)". */
  label: string;
  /** sha256 (hex) of the source file the weights were converted from. */
  sha256: string;
  /** True only for torchvision's official IMAGENET1K_V1 ResNet18 file (sha256 prefix f37072fd). */
  verified: boolean;
}

export interface EncoderInfo {
  /** Backbone id: "resnet18" or "tfjs:<path/to/model.json>[#layer]". */
  encoder: string;
  engine: "onnx" | "tfjs";
  /** Backend or execution provider actually in use: "cpu", "cuda", "wasm", "tensorflow", ... */
  backend: string;
  device: "cpu" | "gpu";
  weights: WeightsProvenance;
  /**
   * How a grey cell in [0,1] becomes the network's input, e.g. "grey/3 x3, [0,1]" (the method's conv1 averaging,
   * whatever the backbone) or "grey x3, [0,1]". Set by lib/backbones.ts openBackbone. Two encoders with the same
   * weights but different input handling give different embeddings, so this belongs in the embedding cache key.
   */
  input?: string;
}

export interface Encoder {
  readonly info: EncoderInfo;
  /** Side of the square input image, e.g. 224. */
  readonly inputSize: number;
  /** Length of one embedding, e.g. 512. */
  readonly dim: number;
  /**
   * Embed n grey images given as one Float32Array of n*1*inputSize*inputSize values in [0,1] (NCHW, C = 1).
   * Returns n*dim values, row-major (one embedding per row).
   */
  embed(batch: Float32Array, n: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** The sentence every output carries when the weights are not the method's verified ImageNet file. */
export function weightsWarning(w: WeightsProvenance): string | null {
  if (w.verified) return null;
  return `WARNING: these scores were computed with ${w.label}, NOT torchvision's verified ImageNet ResNet18 ` +
    `(IMAGENET1K_V1, sha256 f37072fd...). They are not the method's results.`;
}
