// Progress for long loops: a redrawn bar on a terminal, a few plain lines otherwise (notebooks, CI logs).

export interface Progress {
  tick(done: number): void;
  finish(): void;
}

export function progressReporter(label: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  const started = Date.now();
  const tty = Boolean(stream.isTTY);
  let lastPlainDecile = -1;
  const line = (done: number): string => {
    const seconds = (Date.now() - started) / 1000;
    const rate = done > 0 ? done / Math.max(seconds, 1e-3) : 0;
    return `${label} ${done}/${total} (${rate.toFixed(1)}/s, ${seconds.toFixed(1)} s)`;
  };
  return {
    tick(done: number) {
      if (tty) {
        const width = 30;
        const filled = total > 0 ? Math.round((done / total) * width) : width;
        stream.write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${line(done)}`);
        return;
      }
      // Without a terminal, a line every 10 % keeps logs readable.
      const decile = total > 0 ? Math.floor((done / total) * 10) : 10;
      if (decile > lastPlainDecile) {
        lastPlainDecile = decile;
        stream.write(line(done) + "\n");
      }
    },
    finish() {
      if (tty) stream.write("\n");
    },
  };
}
