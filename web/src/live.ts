// A streamed query's result: a table that grows as rows arrive (push queries run until
// stopped; pull queries end by themselves), or PRINT's lines.

import { ApiError, type Properties, type QueryHeader, Unreachable, closeQuery, streamQuery } from "./api";
import { cellText, h } from "./dom";

/** Rows kept on screen; older ones are dropped (the count still says how many came). */
const MAX_ROWS = 1000;

export class LiveQuery {
  readonly element: HTMLElement;
  private readonly status: HTMLElement;
  private readonly stopButton: HTMLButtonElement;
  private readonly head: HTMLTableSectionElement;
  private readonly body: HTMLTableSectionElement;
  private readonly lines: HTMLPreElement;
  private readonly abort = new AbortController();
  private queryId?: string;
  private rows = 0;
  private running = true;
  private settle?: { resolve: () => void; reject: (e: Error) => void };
  /** Settles when the query has started (its header came) or failed before it could. */
  readonly started: Promise<void>;

  constructor(
    private readonly sql: string,
    private readonly properties: Properties,
    private readonly onEnd: (error?: Error) => void,
  ) {
    this.stopButton = h("button", { class: "stop", type: "button", onclick: () => this.stop() }, "Stop") as HTMLButtonElement;
    this.status = h("span", { class: "live-status", role: "status" }, "starting…");
    this.head = h("thead");
    this.body = h("tbody");
    this.lines = h("pre", { class: "print-lines", hidden: true });
    this.element = h(
      "div",
      { class: "live" },
      h("div", { class: "live-bar" }, this.stopButton, this.status),
      h("div", { class: "scroll" }, h("table", { class: "grid live-table" }, this.head, this.body)),
      this.lines,
    );
    this.started = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      await streamQuery(
        this.sql,
        this.properties,
        {
          onHeader: (header) => this.header(header),
          onRow: (row) => this.row(row),
          onText: (line) => this.text(line),
        },
        this.abort.signal,
      );
      this.finish(this.abort.signal.aborted ? "stopped" : "done");
      this.settle?.resolve();
      this.onEnd();
    } catch (e) {
      if (this.abort.signal.aborted) {
        this.finish("stopped");
        this.settle?.resolve();
        this.onEnd();
        return;
      }
      const error = e instanceof Error ? e : new Error(String(e));
      const why = e instanceof Unreachable ? "the server went away; run it again when it is back" : error.message;
      this.finish(`ended: ${why}`);
      this.settle?.reject(error);
      this.onEnd(e instanceof ApiError || e instanceof Unreachable ? error : new Error(why));
    }
  }

  private header(header: QueryHeader): void {
    this.queryId = header.queryId;
    this.settle?.resolve();
    this.head.replaceChildren(h("tr", {}, ...header.columnNames.map((c, i) => h("th", { scope: "col", title: header.columnTypes[i] ?? "" }, c))));
    this.status.textContent = `running${this.queryId ? ` (${this.queryId})` : ""}: 0 rows`;
  }

  private row(row: unknown[]): void {
    this.rows++;
    this.body.append(h("tr", {}, ...row.map((v) => h("td", {}, cellText(v)))));
    while (this.body.rows.length > MAX_ROWS) this.body.deleteRow(0);
    if (this.running) this.status.textContent = `running${this.queryId ? ` (${this.queryId})` : ""}: ${this.rows} rows`;
  }

  private text(line: string): void {
    this.lines.hidden = false;
    this.settle?.resolve();
    this.lines.append(line + "\n");
    this.rows++;
    if (this.running) this.status.textContent = `running: ${this.rows} lines`;
  }

  private finish(how: string): void {
    this.running = false;
    this.stopButton.disabled = true;
    this.status.textContent = `${how}: ${this.rows} ${this.lines.hidden ? "rows" : "lines"}`;
    this.element.classList.add("ended");
  }

  get isRunning(): boolean {
    return this.running;
  }

  stop(): void {
    if (!this.running) return;
    if (this.queryId) void closeQuery(this.queryId).catch(() => undefined);
    this.abort.abort();
  }
}
