// A tiny, deterministic CSV writer (RFC 4180 quoting, "\n" line ends as pandas writes them).
// Numbers are written with String(x): the shortest text that reads back as the same float64, so the CSV loses
// nothing and the same numbers always give the same bytes. null/undefined become an empty field (pandas reads NaN).
// Non-finite numbers are refused: a NaN in an output file is a bug upstream, not a value.
import { writeFileAtomic } from "./atomic";

export type CsvValue = string | number | boolean | null | undefined;

function quoteField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function formatValue(value: unknown, where: string): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`toCsv: ${where} is ${value}; CSV output takes finite numbers only`);
    return String(value);
  }
  if (typeof value === "string") return quoteField(value);
  if (typeof value === "boolean") return String(value);
  throw new Error(`toCsv: ${where} is of type ${typeof value}, not a string, number, boolean or null`);
}

/**
 * CSV text with a header line and one line per row, in the given column order. Every row must have every column.
 * Preamble lines (e.g. "# WARNING: ...") go verbatim before the header; read such files with pandas' comment="#".
 */
export function toCsv<T extends object>(
  rows: readonly T[], columns: readonly (keyof T & string)[], preamble: readonly string[] = [],
): string {
  if (columns.length === 0) throw new Error("toCsv: no columns");
  const badLine = preamble.findIndex((line) => /[\r\n]/.test(line));
  if (badLine >= 0) throw new Error(`toCsv: preamble line ${badLine} contains a line break`);
  const lines = [...preamble, columns.map(quoteField).join(",")];
  rows.forEach((row, i) => {
    const record = row as Record<string, unknown>;
    lines.push(columns.map((column) => {
      if (!(column in record)) throw new Error(`toCsv: row ${i} has no column "${column}"`);
      return formatValue(record[column], `row ${i}, column "${column}"`);
    }).join(","));
  });
  return lines.join("\n") + "\n";
}

/** Write CSV text so that readers never see a half-written file. */
export function writeCsvAtomic(target: string, text: string): void {
  writeFileAtomic(target, text);
}
