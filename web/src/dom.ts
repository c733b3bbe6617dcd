// Small DOM helpers: building elements, and tables from rows.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

/** `h("button", {class: "x", onclick: f}, "text")`: an element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, ...children);
  return el;
}

export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** A value as a table cell shows it: strings as they are, the rest as JSON. */
export function cellText(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

/** A table of `rows` under `columns`. */
export function table(columns: string[], rows: unknown[][], attrs: Attrs = {}): HTMLTableElement {
  const t = h("table", { class: "grid", ...attrs });
  const head = h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, c))));
  const body = h("tbody");
  for (const r of rows) body.append(h("tr", {}, ...r.map((v) => h("td", {}, cellText(v)))));
  t.append(head, body);
  return t;
}

/** A table of objects: one column per key seen (in first-seen order). */
export function objectTable(items: Record<string, unknown>[]): HTMLTableElement {
  const columns: string[] = [];
  for (const it of items) for (const k of Object.keys(it)) if (!columns.includes(k)) columns.push(k);
  return table(
    columns,
    items.map((it) => columns.map((c) => it[c])),
  );
}

export function clear(el: Element): void {
  while (el.firstChild) el.firstChild.remove();
}

export function time(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "");
}

/** A short age: `850 ms`, `12.3 s`, `4 min`, `2 h`. */
export function age(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}
