// Splits an editor's text into statements (at semicolons outside quotes and comments),
// keeping where each starts so that an error can be marked at its place in the editor.

/** How a statement is run: queries and PRINT stream from /query-stream; SET/UNSET stay
 * in the console (as in ksqlDB's CLI); everything else goes to /ksql. */
export type StatementKind = "query" | "print" | "set" | "unset" | "statement";

export interface Statement {
  /** The statement's text, from its first word to its semicolon (included when there is one). */
  text: string;
  /** Offsets of `text` in the whole editor text. */
  from: number;
  to: number;
  kind: StatementKind;
}

/** Skips a comment or quoted run starting at `i`; the index after it, or `i` when there is none. */
function skipQuotedOrComment(s: string, i: number): number {
  const c = s[i];
  if (c === "-" && s[i + 1] === "-") {
    const end = s.indexOf("\n", i);
    return end < 0 ? s.length : end + 1;
  }
  if (c === "/" && s[i + 1] === "*") {
    const end = s.indexOf("*/", i + 2);
    return end < 0 ? s.length : end + 2;
  }
  if (c === "'" || c === '"' || c === "`") {
    let j = i + 1;
    while (j < s.length) {
      if (s[j] === c) {
        if (s[j + 1] === c) j += 2; // a doubled quote stays inside
        else return j + 1;
      } else j++;
    }
    return s.length;
  }
  return i;
}

/** The offset of the first character at or after `i` that is neither space nor comment. */
function skipBlank(s: string, i: number): number {
  for (;;) {
    while (i < s.length && /\s/.test(s[i])) i++;
    if ((s[i] === "-" && s[i + 1] === "-") || (s[i] === "/" && s[i + 1] === "*")) i = skipQuotedOrComment(s, i);
    else return i;
  }
}

export function classify(text: string): StatementKind {
  const first = /^\s*([A-Za-z]+)/.exec(text)?.[1]?.toUpperCase();
  switch (first) {
    case "SELECT":
      return "query";
    case "PRINT":
      return "print";
    case "SET":
      return "set";
    case "UNSET":
      return "unset";
    default:
      return "statement";
  }
}

export function splitStatements(source: string): Statement[] {
  const out: Statement[] = [];
  let start = skipBlank(source, 0);
  let i = start;
  const push = (end: number) => {
    const text = source.slice(start, end);
    if (text.trim() && text.trim() !== ";") out.push({ text, from: start, to: end, kind: classify(text) });
  };
  while (i < source.length) {
    const after = skipQuotedOrComment(source, i);
    if (after !== i) {
      i = after;
      continue;
    }
    if (source[i] === ";") {
      push(i + 1);
      start = skipBlank(source, i + 1);
      i = start;
      continue;
    }
    i++;
  }
  if (start < source.length) push(source.trimEnd().length);
  return out;
}

/** The offset in the whole text of a 1-based line and column of a statement. */
export function offsetOf(statement: Statement, line: number, column: number): number {
  let offset = 0;
  for (let l = 1; l < line; l++) {
    const nl = statement.text.indexOf("\n", offset);
    if (nl < 0) break;
    offset = nl + 1;
  }
  return Math.min(statement.from + offset + Math.max(column - 1, 0), statement.to);
}

/** `SET 'name' = 'value';` → [name, value]; null when the statement is not of that form. */
export function parseSet(text: string): [string, string] | null {
  const m = /^\s*SET\s+'([^']+)'\s*=\s*'([^']*)'\s*;?\s*$/i.exec(text);
  return m ? [m[1], m[2]] : null;
}

/** `UNSET 'name';` → name. */
export function parseUnset(text: string): string | null {
  const m = /^\s*UNSET\s+'([^']+)'\s*;?\s*$/i.exec(text);
  return m ? m[1] : null;
}
