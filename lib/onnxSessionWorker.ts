// Worker-thread side of lib/onnxSession.ts: loads one onnxruntime session from the first message, then runs the
// batches the main thread sends, one at a time (onnxruntime-node's run() blocks this thread, which is the point of
// being here), until asked to release it.
import { parentPort } from "node:worker_threads";
import { outputValues, sessionOptions, type FromWorker, type ToWorker } from "./onnxSession";

type Ort = typeof import("onnxruntime-node");
type Port = NonNullable<typeof parentPort>;

/** What a loaded worker keeps: the session and its tensor names, not the model bytes it was made from. */
interface Loaded {
  session: import("onnxruntime-node").InferenceSession;
  inputName: string;
  outputName: string;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0];
}

function serve(port: Port): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ort = require("onnxruntime-node") as Ort;
  const reply = (msg: FromWorker) => port.postMessage(msg);
  let loaded: Promise<Loaded> | null = null;

  port.on("message", async (msg: ToWorker) => {
    if (msg.kind === "init") {
      const { model, provider, threads, inputName, outputName } = msg.spec;
      loaded = ort.InferenceSession.create(model, sessionOptions(provider, threads))
        .then((session) => ({ session, inputName, outputName }));
      try {
        await loaded;
        reply({ kind: "ready" });
      } catch (err) {
        reply({ kind: "failed", message: firstLine(err) });
        port.close();
      }
      return;
    }
    if (loaded === null) throw new Error(`onnxruntime worker got "${msg.kind}" before "init"`);
    const { session, inputName, outputName } = await loaded;
    if (msg.kind === "release") {
      await session.release();
      port.close(); // nothing else keeps this thread alive: it exits
      return;
    }
    try {
      const outputs = await session.run({ [inputName]: new ort.Tensor("float32", msg.input, msg.dims) });
      reply({ kind: "result", id: msg.id, values: outputValues(outputs[outputName], outputName) });
    } catch (err) {
      reply({ kind: "error", id: msg.id, message: firstLine(err) });
    }
  });
}

if (parentPort === null) throw new Error("onnxSessionWorker.js runs as a worker thread (lib/onnxSession.ts starts it)");
serve(parentPort);
