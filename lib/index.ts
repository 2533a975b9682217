// The library's front door (package.json "main"): the steps of the method, in the order the notebook takes them.
// Each module stays importable on its own (e.g. "cellmorphotem/dist/lib/metrics") for everything else.
export { openCelltool, formatPairingReport, resolveCondition, type CelltoolDataset, type CellPair } from "./dataset";
export { decodeGrey, resizeBilinear, loadCell, CELL_SIZE } from "./preprocess";
export { convertWeights, loadWeights, resolveWeightsSource, localWeightsFile } from "./weights";
export { openBackbone, openBackbonePair, defaultBackboneForValidation } from "./backbones";
export { weightsWarning, type Encoder, type EncoderInfo } from "./encoder";
export { embedImages, embedPairs } from "./embedding";
export { l2Normalize, temAxis, project, robustScale, fuse, scoreTem, scoreWithAxis } from "./axis";
export { temMetrics, rocAuc, welchTTest, cohensD, overlap, pearson, spearman, histogram } from "./metrics";
export { validate } from "./validation";
export {
  openEncoders, closeEncoders, scorePairs, scoreDataset, writeScoreOutputs, DEFAULT_ANCHORS, DEFAULT_FUSION,
  type ScoreRun, type ScoreOptions,
} from "./pipeline";
export { compareEncoders, formatComparison } from "./compare";
export { generateSynthetic, defaultDataset, readTruth } from "./synth";
export { scoresFrame, statsFrame } from "./frame";
export { scoreHistogram, markCells, saveFigure } from "./plots";
export { compositeFromFiles, montage } from "./composite";
