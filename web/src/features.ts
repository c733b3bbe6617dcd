// The feature-lookup panel: keys in, a table's rows out with their event time (`rowtime`),
// when they last changed (`updatedAt`) and how old that is, through POST /features/{table}.

import { postJson } from "./api";
import { cellText, h, age, time } from "./dom";

interface FeatureResult {
  key: unknown;
  row?: Record<string, unknown>;
  rowtime?: number;
  updatedAt?: number;
  missing?: boolean;
}

export class FeaturePanel {
  readonly element: HTMLElement;
  private readonly table = h("select", { id: "feature-table", "aria-label": "Table" }) as HTMLSelectElement;
  private readonly keys = h("textarea", { id: "feature-keys", rows: 4, placeholder: "one key a line (a JSON object or array for a table with several key columns)", "aria-label": "Keys" }) as HTMLTextAreaElement;
  private readonly out = h("div", { class: "feature-results", role: "region", "aria-live": "polite" });

  constructor() {
    const run = h("button", { type: "button", class: "primary", onclick: () => void this.lookup() }, "Look up");
    this.keys.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        void this.lookup();
      }
    });
    this.element = h("div", { class: "features" }, h("div", { class: "toolbar" }, this.table, run), this.keys, this.out);
  }

  setTables(names: string[]): void {
    const current = this.table.value;
    this.table.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
    if (names.includes(current)) this.table.value = current;
  }

  private async lookup(): Promise<void> {
    const keys = this.keys.value
      .split("\n")
      .map((k) => k.trim())
      .filter(Boolean)
      .map((k) => {
        if (/^[[{]/.test(k)) {
          try {
            return JSON.parse(k) as unknown;
          } catch {
            return k;
          }
        }
        return k;
      });
    if (!this.table.value || keys.length === 0) {
      this.out.replaceChildren(h("p", { class: "error" }, "Choose a table and give at least one key."));
      return;
    }
    const started = performance.now();
    try {
      const res = await postJson<{ results: FeatureResult[] }>(`/features/${encodeURIComponent(this.table.value)}`, { keys });
      const took = performance.now() - started;
      const columns: string[] = [];
      for (const r of res.results) for (const c of Object.keys(r.row ?? {})) if (!columns.includes(c)) columns.push(c);
      const now = Date.now();
      const rows = res.results.map((r) =>
        h(
          "tr",
          { class: r.missing ? "missing" : "" },
          h("td", {}, cellText(r.key)),
          ...columns.map((c) => h("td", {}, r.missing ? "" : cellText(r.row?.[c]))),
          h("td", {}, r.rowtime === undefined ? "" : time(r.rowtime)),
          h("td", {}, r.updatedAt === undefined ? (r.missing ? "missing" : "") : time(r.updatedAt)),
          h("td", {}, r.updatedAt === undefined ? "" : age(now - r.updatedAt)),
        ),
      );
      this.out.replaceChildren(
        h("p", { class: "note" }, `${res.results.length} keys in ${took.toFixed(1)} ms (round trip from this browser)`),
        h(
          "table",
          { class: "grid" },
          h("thead", {}, h("tr", {}, ...["key", ...columns, "rowtime", "updatedAt", "age"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, ...rows),
        ),
      );
    } catch (e) {
      this.out.replaceChildren(h("p", { class: "error" }, e instanceof Error ? e.message : String(e)));
    }
  }
}
