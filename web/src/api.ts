// The REST client: the console talks to the server through its public API only (the
// ksqlDB routes, Eddy's topic and feature routes, /metrics), as any script could.

/** Where an error is in the statement that was sent (1-based). */
export interface Position {
  line: number;
  column: number;
}

/** A refused request: the server's message, and where in the statement when it says. */
export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  readonly position?: Position;

  constructor(status: number, message: string, body: unknown, position?: Position) {
    super(message);
    this.status = status;
    this.body = body;
    this.position = position;
  }
}

/** The server could not be reached at all (down, restarting, network). */
export class Unreachable extends Error {}

/** Server properties set with SET in the editor, sent with every statement (as the CLI does). */
export type Properties = Record<string, string>;

const KSQL_JSON = "application/vnd.ksql.v1+json";
const DELIMITED = "application/vnd.ksqlapi.delimited.v1";

/** Where a ksqlDB error message says its statement went wrong: `line 2:5` or `Line: 2, Col: 5`. */
export function positionIn(message: string): Position | undefined {
  const m = /\bline (\d+):(\d+)/i.exec(message) ?? /\bLine: (\d+), Col: (\d+)/.exec(message);
  return m ? { line: Number(m[1]), column: Number(m[2]) } : undefined;
}

function errorFrom(status: number, body: unknown, fallback: string): ApiError {
  const b = body as { message?: unknown; position?: Position } | null;
  const message = typeof b?.message === "string" ? b.message : fallback;
  const position = b?.position ?? positionIn(message);
  return new ApiError(status, message, body, position);
}

async function send(path: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(path, init);
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new Unreachable(`cannot reach the server (${String(e)})`);
  }
}

async function parsed(res: Response): Promise<unknown> {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function checked(res: Response): Promise<unknown> {
  const body = await parsed(res);
  if (!res.ok) throw errorFrom(res.status, body, `${res.status} ${res.statusText}`);
  return body;
}

export async function getJson<T = unknown>(path: string): Promise<T> {
  return (await checked(await send(path, { headers: { Accept: "application/json" } }))) as T;
}

export async function getText(path: string): Promise<string> {
  const res = await send(path, {});
  if (!res.ok) throw errorFrom(res.status, await parsed(res), `${res.status} ${res.statusText}`);
  return res.text();
}

export async function postJson<T = unknown>(path: string, body: unknown): Promise<T> {
  const res = await send(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  return (await checked(res)) as T;
}

/** One entity of a `/ksql` response (`@type` says which). */
export type Entity = Record<string, unknown> & { "@type"?: string; statementText?: string; warnings?: { message: string }[] };

/** Runs statements through `POST /ksql`; the entities, one per statement. */
export async function ksql(sql: string, streamsProperties: Properties = {}): Promise<Entity[]> {
  const res = await send("/ksql", {
    method: "POST",
    headers: { "Content-Type": KSQL_JSON, Accept: KSQL_JSON },
    body: JSON.stringify({ ksql: sql, streamsProperties }),
  });
  return (await checked(res)) as Entity[];
}

/** The header line of a streamed query. */
export interface QueryHeader {
  queryId?: string;
  columnNames: string[];
  columnTypes: string[];
}

export interface QueryHandlers {
  onHeader(h: QueryHeader): void;
  onRow(row: unknown[]): void;
  /** PRINT's lines, and anything else the server streams that is not a row. */
  onText(line: string): void;
}

/**
 * Streams a query through `POST /query-stream` (delimited: a header, then a JSON array a
 * row) until it ends or `signal` aborts it. Pull queries end by themselves.
 */
export async function streamQuery(sql: string, properties: Properties, handlers: QueryHandlers, signal: AbortSignal): Promise<void> {
  const res = await send("/query-stream", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: DELIMITED },
    body: JSON.stringify({ sql, properties }),
    signal,
  });
  if (!res.ok) throw errorFrom(res.status, await parsed(res), `${res.status} ${res.statusText}`);
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  let headerSeen = false;
  const line = (text: string) => {
    if (!text.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      handlers.onText(text);
      return;
    }
    if (Array.isArray(value)) handlers.onRow(value);
    else if (!headerSeen && value && typeof value === "object" && "columnNames" in value) {
      headerSeen = true;
      handlers.onHeader(value as QueryHeader);
    } else if (value && typeof value === "object" && "message" in value && ("error_code" in value || "@type" in value)) {
      throw errorFrom(500, value, "the query failed");
    } else handlers.onText(text);
  };
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    pending += value;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      line(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  }
  line(pending);
}

/** Stops a push query the server runs for this client. */
export async function closeQuery(queryId: string): Promise<void> {
  await send("/close-query", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ queryId }) });
}
