// The topic viewer: tails a topic like PRINT (partition, offset, timestamp, key, value,
// headers), from the beginning, the end or an offset, through Eddy's topic routes.

import { ApiError, Unreachable, getJson } from "./api";
import { cellText, h, time } from "./dom";

interface Header {
  key: string;
  value?: string | null;
  valueBase64?: string;
}

interface RecordJson {
  offset: number;
  timestamp: number;
  key?: string | null;
  keyBase64?: string;
  value?: string | null;
  valueBase64?: string;
  headers: Header[];
}

interface RecordsPage {
  records: RecordJson[];
  nextOffset: number;
  logStartOffset: number;
  logEndOffset: number;
}

interface TopicJson {
  name: string;
  partitions: { partition: number; logStartOffset: number; logEndOffset: number }[];
}

const MAX_ROWS = 2000;
const PAGE = 200;

const shown = (text: string | null | undefined, base64: string | undefined) => (base64 !== undefined ? `base64:${base64}` : text === null || text === undefined ? "<null>" : text);

export class TopicViewer {
  readonly element: HTMLElement;
  private readonly topic = h("select", { id: "tail-topic", "aria-label": "Topic" }) as HTMLSelectElement;
  private readonly from = h(
    "select",
    { id: "tail-from", "aria-label": "Start from" },
    h("option", { value: "beginning" }, "from the beginning"),
    h("option", { value: "end" }, "from the end (new records)"),
    h("option", { value: "offset" }, "from offset"),
  ) as HTMLSelectElement;
  private readonly offset = h("input", { id: "tail-offset", type: "number", min: 0, value: 0, "aria-label": "Offset", hidden: true }) as HTMLInputElement;
  private readonly startButton = h("button", { type: "button", class: "primary" }, "Tail") as HTMLButtonElement;
  private readonly stopButton = h("button", { type: "button", disabled: true }, "Stop") as HTMLButtonElement;
  private readonly status = h("span", { class: "live-status", role: "status" });
  private readonly rows = h("tbody");
  private generation = 0;
  private count = 0;

  constructor() {
    this.from.addEventListener("change", () => (this.offset.hidden = this.from.value !== "offset"));
    this.startButton.addEventListener("click", () => void this.tail());
    this.stopButton.addEventListener("click", () => this.stop());
    this.element = h(
      "div",
      { class: "topic-viewer" },
      h("div", { class: "toolbar" }, this.topic, this.from, this.offset, this.startButton, this.stopButton, this.status),
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "grid records" },
          h("thead", {}, h("tr", {}, ...["partition", "offset", "timestamp", "key", "value", "headers"].map((c) => h("th", { scope: "col" }, c)))),
          this.rows,
        ),
      ),
    );
  }

  setTopics(names: string[]): void {
    const current = this.topic.value;
    this.topic.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
    if (names.includes(current)) this.topic.value = current;
  }

  /** Starts tailing `name` (from the catalog's "view records"). */
  open(name: string): void {
    if (![...this.topic.options].some((o) => o.value === name)) this.topic.append(h("option", { value: name }, name));
    this.topic.value = name;
    void this.tail();
  }

  stop(): void {
    this.generation++;
    this.stopButton.disabled = true;
    this.startButton.disabled = false;
    this.status.textContent = `stopped: ${this.count} records`;
  }

  private async tail(): Promise<void> {
    const name = this.topic.value;
    if (!name) return;
    const generation = ++this.generation;
    this.count = 0;
    this.rows.replaceChildren();
    this.startButton.disabled = true;
    this.stopButton.disabled = false;
    this.status.textContent = `reading ${name}…`;
    const path = `/topics/${encodeURIComponent(name)}`;
    let positions: Map<number, number>;
    try {
      const topic = await getJson<TopicJson>(path);
      positions = new Map(
        topic.partitions.map((p) => {
          const at = this.from.value === "end" ? p.logEndOffset : this.from.value === "offset" ? Math.max(Number(this.offset.value) || 0, p.logStartOffset) : p.logStartOffset;
          return [p.partition, at];
        }),
      );
    } catch (e) {
      this.fail(e);
      return;
    }
    while (generation === this.generation) {
      let got = 0;
      for (const [partition, at] of positions) {
        if (generation !== this.generation) return;
        try {
          const page = await getJson<RecordsPage>(`${path}/partitions/${partition}/records?offset=${at}&limit=${PAGE}`);
          for (const r of page.records) this.add(partition, r);
          got += page.records.length;
          positions.set(partition, Math.max(page.nextOffset, page.logStartOffset));
        } catch (e) {
          if (e instanceof ApiError && e.status === 416) {
            positions.set(partition, 0); // the records were deleted (retention): go on from the start
            continue;
          }
          if (e instanceof Unreachable) {
            this.status.textContent = `the server does not answer; still trying… (${this.count} records)`;
            break;
          }
          this.fail(e);
          return;
        }
      }
      if (generation !== this.generation) return;
      if (got === 0 || this.count === 0) this.status.textContent = `tailing ${name}: ${this.count} records, waiting for more`;
      if (got < PAGE) await new Promise((r) => setTimeout(r, 700));
    }
  }

  private add(partition: number, r: RecordJson): void {
    this.count++;
    const headers = r.headers.map((x) => `${x.key}=${shown(x.value, x.valueBase64)}`).join(", ");
    this.rows.append(
      h(
        "tr",
        {},
        h("td", {}, partition),
        h("td", {}, r.offset),
        h("td", {}, time(r.timestamp)),
        h("td", {}, shown(r.key, r.keyBase64)),
        h("td", {}, shown(r.value, r.valueBase64)),
        h("td", {}, headers),
      ),
    );
    while (this.rows.rows.length > MAX_ROWS) this.rows.deleteRow(0);
  }

  private fail(e: unknown): void {
    this.generation++;
    this.startButton.disabled = false;
    this.stopButton.disabled = true;
    this.status.textContent = `cannot read: ${cellText(e instanceof Error ? e.message : e)}`;
  }
}
