// Reads PyTorch's zip checkpoint format (torch.save since 1.6) without Python: a zip holding
// `<archive>/data.pkl` (a pickle of the state_dict whose tensors point at storages by persistent id) and
// `<archive>/data/<key>` (each storage's raw little-endian bytes). Only what a state_dict needs is accepted:
// an OrderedDict of tensors. Any other pickled global is refused, so a checkpoint cannot make us run code.
import * as fs from "node:fs";
import * as os from "node:os";
import AdmZip from "adm-zip";
import { Parser } from "pickleparser";

export type TorchDType = "float32" | "float64" | "float16" | "int64" | "int32" | "int16" | "int8" | "uint8" | "bool";

/** float16 comes back as its raw bits (Uint16Array); bool as one byte per value (Uint8Array). */
export type TensorData =
  | Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

export interface TorchTensor {
  readonly dtype: TorchDType;
  /** Row-major dimensions; [] for a scalar. */
  readonly shape: readonly number[];
  /** The tensor's own values (a copy, not a view on its storage), row-major. */
  readonly data: TensorData;
}

/** A state_dict in file order. */
export type TorchStateDict = Map<string, TorchTensor>;

interface DTypeInfo {
  readonly dtype: TorchDType;
  readonly bytesPerElement: number;
  readonly view: (buffer: ArrayBuffer) => TensorData;
}

// torch.save names a storage's element type by its legacy storage class, e.g. `torch.FloatStorage`.
const STORAGE_TYPES: ReadonlyMap<string, DTypeInfo> = new Map<string, DTypeInfo>([
  ["FloatStorage", { dtype: "float32", bytesPerElement: 4, view: (b) => new Float32Array(b) }],
  ["DoubleStorage", { dtype: "float64", bytesPerElement: 8, view: (b) => new Float64Array(b) }],
  ["HalfStorage", { dtype: "float16", bytesPerElement: 2, view: (b) => new Uint16Array(b) }],
  ["LongStorage", { dtype: "int64", bytesPerElement: 8, view: (b) => new BigInt64Array(b) }],
  ["IntStorage", { dtype: "int32", bytesPerElement: 4, view: (b) => new Int32Array(b) }],
  ["ShortStorage", { dtype: "int16", bytesPerElement: 2, view: (b) => new Int16Array(b) }],
  ["CharStorage", { dtype: "int8", bytesPerElement: 1, view: (b) => new Int8Array(b) }],
  ["ByteStorage", { dtype: "uint8", bytesPerElement: 1, view: (b) => new Uint8Array(b) }],
  ["BoolStorage", { dtype: "bool", bytesPerElement: 1, view: (b) => new Uint8Array(b) }],
]);

/** A problem with the checkpoint's content; the caller prefixes the file name. */
class CheckpointFormatError extends Error {}

/** One `data/<key>` record: `numel` elements of `type`, shared by every tensor that views it. */
class Storage {
  constructor(
    readonly entry: string,
    readonly type: DTypeInfo,
    readonly numel: number,
    readonly bytes: Uint8Array,
  ) {}
}

/** What `torch._utils._rebuild_tensor_v2` receives; turned into a TorchTensor once its name is known. */
class TensorRecord {
  constructor(
    readonly storage: unknown,
    readonly storageOffset: unknown,
    readonly size: unknown,
    readonly stride: unknown,
  ) {}
}

export function readTorchCheckpoint(file: string): TorchStateDict {
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  return parseTorchCheckpoint(fs.readFileSync(file), file);
}

/** Parse checkpoint bytes already in memory; `file` only names the source in errors. */
export function parseTorchCheckpoint(bytes: Buffer, file: string): TorchStateDict {
  try {
    if (os.endianness() !== "LE") throw new CheckpointFormatError("reading checkpoints needs a little-endian host");
    const zip = openZip(bytes);
    const archive = archivePrefix(zip);
    requireLittleEndian(zip, archive);
    const root = unpickle(zip, archive);
    return toStateDict(root);
  } catch (err) {
    if (err instanceof CheckpointFormatError) throw new Error(`${file}: ${err.message}`);
    throw new Error(`${file}: cannot read data.pkl: ${(err as Error).message}`);
  }
}

function openZip(bytes: Buffer): AdmZip {
  try {
    return new AdmZip(bytes);
  } catch (err) {
    // torch.save wrote a bare pickle before 1.6; that legacy format is not read here.
    throw new CheckpointFormatError(`not a zip (${(err as Error).message}); expected torch.save's zip format (PyTorch >= 1.6)`);
  }
}

/** "<archive>/" of the one `<archive>/data.pkl` at the top of the zip. */
function archivePrefix(zip: AdmZip): string {
  const pickles = zip.getEntries().map((e) => e.entryName).filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length === 0) throw new CheckpointFormatError("no data.pkl: not a torch.save checkpoint");
  if (pickles.length > 1) throw new CheckpointFormatError(`several data.pkl records (${pickles.join(", ")})`);
  return pickles[0].slice(0, -"data.pkl".length);
}

// torch >= 2.1 records the byte order; older files have no record and are always little-endian.
function requireLittleEndian(zip: AdmZip, archive: string): void {
  const record = zip.getEntry(`${archive}byteorder`);
  const order = record ? record.getData().toString("utf8").trim() : "little";
  if (order !== "little") throw new CheckpointFormatError(`storages are ${order}-endian; only little-endian is read`);
}

function unpickle(zip: AdmZip, archive: string): unknown {
  const pickle = zip.getEntry(`${archive}data.pkl`)!.getData();
  const storages = new Map<string, Storage>();
  const storageTypes = new Map<unknown, DTypeInfo>();

  const resolveGlobal = (module: string, name: string): (...args: unknown[]) => unknown => {
    const qualified = `${module}.${name}`;
    if (qualified === "collections.OrderedDict") return () => new Map();
    if (qualified === "torch._utils._rebuild_tensor_v2") {
      return (storage, storageOffset, size, stride) => new TensorRecord(storage, storageOffset, size, stride);
    }
    if (qualified === "torch._utils._rebuild_parameter") return (tensor) => tensor; // nn.Parameter: keep the data
    const type = module === "torch" ? STORAGE_TYPES.get(name) : undefined;
    if (type) {
      // Only ever used as a token inside a storage's persistent id, never called.
      const token = () => { throw new CheckpointFormatError(`${qualified} cannot be called`); };
      storageTypes.set(token, type);
      return token;
    }
    throw new CheckpointFormatError(`data.pkl uses ${qualified}, which a state_dict of tensors does not need`);
  };

  const loadStorage = (pid: unknown): Storage => {
    // ("storage", <storage type>, key, location, number of elements)
    if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) {
      throw new CheckpointFormatError(`unexpected persistent id ${JSON.stringify(pid)}`);
    }
    const [, typeToken, key, , numel] = pid as [string, unknown, unknown, unknown, unknown];
    const type = storageTypes.get(typeToken);
    if (!type) throw new CheckpointFormatError(`storage ${String(key)} has an unsupported element type`);
    const entry = `data/${String(key)}`;
    const cached = storages.get(entry);
    if (cached) return cached;
    const storage = readStorage(zip, archive, entry, type, toCount(numel, `${entry} element count`));
    storages.set(entry, storage);
    return storage;
  };

  const parser = new Parser({
    nameResolver: { resolve: resolveGlobal },
    persistentResolver: { resolve: loadStorage },
    unpicklingTypeOfDictionary: "Map", // so OrderedDict (a Map) and SETITEMS agree
  });
  return parser.parse(pickle);
}

function readStorage(zip: AdmZip, archive: string, entry: string, type: DTypeInfo, numel: number): Storage {
  const record = zip.getEntry(archive + entry);
  if (!record) throw new CheckpointFormatError(`data.pkl refers to ${entry}, which the zip lacks`);
  const bytes = record.getData();
  const expected = numel * type.bytesPerElement;
  if (bytes.length !== expected) {
    const what = bytes.length < expected ? "truncated storage" : "storage of unexpected size";
    throw new CheckpointFormatError(`${what} ${entry}: expected ${expected} bytes, found ${bytes.length}`);
  }
  return new Storage(entry, type, numel, bytes);
}

function toStateDict(root: unknown): TorchStateDict {
  if (!(root instanceof Map)) throw new CheckpointFormatError("data.pkl does not hold a state_dict (a dict of tensors)");
  const tensors: TorchStateDict = new Map();
  for (const [name, value] of root) {
    if (typeof name !== "string") throw new CheckpointFormatError(`state_dict key ${String(name)} is not a string`);
    if (!(value instanceof TensorRecord)) throw new CheckpointFormatError(`state_dict entry ${name} is not a tensor`);
    tensors.set(name, materialise(name, value));
  }
  return tensors;
}

function materialise(name: string, record: TensorRecord): TorchTensor {
  const shape = toCounts(record.size, `${name} size`);
  const stride = toCounts(record.stride, `${name} stride`);
  const offset = toCount(record.storageOffset, `${name} storage offset`);
  if (stride.length !== shape.length) {
    throw new CheckpointFormatError(`${name}: size [${shape}] and stride [${stride}] differ in length`);
  }
  if (!isContiguous(shape, stride)) {
    throw new CheckpointFormatError(`${name}: non-contiguous tensor (size [${shape}], stride [${stride}]); ` +
      "save tensor.contiguous() instead");
  }
  const { storage } = record;
  if (!(storage instanceof Storage)) throw new CheckpointFormatError(`${name}: its storage is not a persistent storage`);
  const numel = shape.reduce((a, b) => a * b, 1);
  if (offset + numel > storage.numel) {
    throw new CheckpointFormatError(`${name}: elements ${offset}..${offset + numel - 1} lie beyond ` +
      `${storage.entry} (${storage.numel} elements)`);
  }
  const width = storage.type.bytesPerElement;
  // A fresh buffer: aligned for any typed array, and independent of storages shared with other tensors.
  const copy = new Uint8Array(numel * width);
  copy.set(storage.bytes.subarray(offset * width, (offset + numel) * width));
  return { dtype: storage.type.dtype, shape, data: storage.type.view(copy.buffer) };
}

/** Row-major contiguity as torch defines it: dimensions of size 1 may carry any stride. */
export function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return shape.includes(0);
    expected *= shape[d];
  }
  return true;
}

function toCount(value: unknown, what: string): number {
  const n = typeof value === "bigint" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    throw new CheckpointFormatError(`${what} is not a non-negative integer: ${String(value)}`);
  }
  return n;
}

function toCounts(value: unknown, what: string): number[] {
  if (!Array.isArray(value)) throw new CheckpointFormatError(`${what} is not a tuple`);
  return value.map((v, i) => toCount(v, `${what}[${i}]`));
}
