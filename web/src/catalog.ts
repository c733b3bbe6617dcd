// The catalog: streams, tables, persistent queries and topics in a side bar; each opens
// its DESCRIBE EXTENDED (or EXPLAIN, or the topic's partitions), with drop and terminate
// behind a confirmation.

import { type Entity, getJson, ksql } from "./api";
import { cellText, clear, h, objectTable } from "./dom";
import { queryDescription, renderEntity } from "./results";

type Obj = Record<string, unknown>;

export interface Source {
  name: string;
  type: "STREAM" | "TABLE";
  topic: string;
  columns: string[];
}

export interface QueryInfo {
  id: string;
  state: string;
  queryString: string;
  sinks: string[];
}

export interface CatalogSnapshot {
  sources: Source[];
  queries: QueryInfo[];
  topics: string[];
}

/** How a name is written in a statement: as is when it reads back the same unquoted. */
export function quoted(name: string): string {
  return /^[A-Z_][A-Z0-9_]*$/.test(name) ? name : `\`${name.replace(/`/g, "``")}\``;
}

const entityOf = (entities: Entity[], type: string): Entity | undefined => entities.find((e) => e["@type"] === type);

/** Reads the catalog through SHOW ... EXTENDED, SHOW QUERIES and LIST TOPICS. */
export async function readCatalog(): Promise<CatalogSnapshot> {
  const entities = await ksql("SHOW STREAMS EXTENDED; SHOW TABLES EXTENDED; SHOW QUERIES; LIST TOPICS;");
  const sources: Source[] = [];
  for (const e of entities.filter((e) => e["@type"] === "source_descriptions")) {
    for (const d of (e.sourceDescriptions as Obj[]) ?? []) {
      sources.push({
        name: String(d.name),
        type: d.type === "TABLE" ? "TABLE" : "STREAM",
        topic: String(d.topic ?? ""),
        columns: Array.isArray(d.fields) ? (d.fields as Obj[]).map((f) => String(f.name)) : [],
      });
    }
  }
  const queries = ((entityOf(entities, "queries")?.queries as Obj[]) ?? []).map((q) => ({
    id: String(q.id),
    state: String(q.state ?? ""),
    queryString: String(q.queryString ?? ""),
    sinks: Array.isArray(q.sinks) ? q.sinks.map(String) : [],
  }));
  const topics = ((entityOf(entities, "kafka_topics")?.topics as Obj[]) ?? []).map((t) => String(t.name));
  return { sources: sources.sort((a, b) => a.name.localeCompare(b.name)), queries, topics: topics.sort() };
}

export interface CatalogActions {
  /** Puts a statement in the editor (not run). */
  draft(sql: string): void;
  /** Opens a topic in the topic viewer. */
  tail(topic: string): void;
  /** Shows an element in the detail pane. */
  show(title: string, content: HTMLElement): void;
  /** The catalog changed (after a drop or terminate). */
  changed(): void;
}

/** Asks before something that cannot be undone; resolves true when confirmed. */
export function confirmDialog(question: string, action: string): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "confirm", "aria-label": "Confirm" }) as HTMLDialogElement;
    const done = (ok: boolean) => {
      dialog.close();
      dialog.remove();
      resolve(ok);
    };
    const cancel = h("button", { type: "button", onclick: () => done(false) }, "Cancel");
    dialog.append(
      h("p", {}, question),
      h("div", { class: "actions" }, cancel, h("button", { type: "button", class: "danger", onclick: () => done(true) }, action)),
    );
    dialog.addEventListener("cancel", () => done(false));
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

export class CatalogPanel {
  readonly element: HTMLElement;
  private readonly lists = {
    STREAM: h("ul", { class: "items", "aria-label": "Streams" }),
    TABLE: h("ul", { class: "items", "aria-label": "Tables" }),
    QUERY: h("ul", { class: "items", "aria-label": "Persistent queries" }),
    TOPIC: h("ul", { class: "items", "aria-label": "Topics" }),
  };
  private readonly counts = { STREAM: h("span"), TABLE: h("span"), QUERY: h("span"), TOPIC: h("span") };
  snapshot: CatalogSnapshot = { sources: [], queries: [], topics: [] };

  constructor(private readonly actions: CatalogActions) {
    const section = (title: string, kind: keyof CatalogPanel["lists"]) =>
      h("section", { class: `catalog-${kind.toLowerCase()}` }, h("h2", {}, title, " ", this.counts[kind]), this.lists[kind]);
    this.element = h(
      "nav",
      { class: "catalog", "aria-label": "Catalog" },
      section("Streams", "STREAM"),
      section("Tables", "TABLE"),
      section("Queries", "QUERY"),
      section("Topics", "TOPIC"),
    );
  }

  render(snapshot: CatalogSnapshot): void {
    this.snapshot = snapshot;
    const item = (label: string, title: string, open: () => void, extra?: string) =>
      h("li", {}, h("button", { type: "button", class: "item", title, onclick: open }, label, extra ? h("span", { class: "item-extra" }, extra) : null));
    for (const kind of ["STREAM", "TABLE"] as const) {
      const list = snapshot.sources.filter((s) => s.type === kind);
      this.lists[kind].replaceChildren(...list.map((s) => item(s.name, `topic ${s.topic}`, () => void this.openSource(s))));
      this.counts[kind].textContent = `(${list.length})`;
    }
    this.lists.QUERY.replaceChildren(...snapshot.queries.map((q) => item(q.id, q.queryString, () => void this.openQuery(q), q.state)));
    this.counts.QUERY.textContent = `(${snapshot.queries.length})`;
    this.lists.TOPIC.replaceChildren(...snapshot.topics.map((t) => item(t, "partitions, offsets and records", () => void this.openTopic(t))));
    this.counts.TOPIC.textContent = `(${snapshot.topics.length})`;
  }

  private async describe(sql: string, title: string, buttons: HTMLElement[], draw = renderEntity): Promise<void> {
    const body = h("div", { class: "detail-body" }, "loading…");
    this.actions.show(title, h("div", {}, h("div", { class: "toolbar" }, ...buttons), body));
    try {
      const entities = await ksql(sql);
      clear(body);
      for (const e of entities) body.append(draw(e));
    } catch (e) {
      body.replaceChildren(h("p", { class: "error" }, e instanceof Error ? e.message : String(e)));
    }
  }

  async openSource(s: Source): Promise<void> {
    const kind = s.type === "TABLE" ? "TABLE" : "STREAM";
    const name = quoted(s.name);
    const buttons = [
      h("button", { type: "button", onclick: () => this.actions.draft(`SELECT * FROM ${name} EMIT CHANGES;`) }, "Push query"),
      h("button", { type: "button", onclick: () => this.actions.tail(s.topic) }, "Tail its topic"),
      h("button", { type: "button", class: "danger", onclick: () => void this.drop(kind, name) }, `Drop ${kind.toLowerCase()}`),
    ];
    await this.describe(`DESCRIBE ${name} EXTENDED;`, `${kind} ${s.name}`, buttons);
  }

  async openQuery(q: QueryInfo): Promise<void> {
    const buttons = [h("button", { type: "button", class: "danger", onclick: () => void this.terminate(q.id) }, "Terminate")];
    await this.describe(`EXPLAIN ${q.id};`, `Query ${q.id}`, buttons, (e) =>
      e["@type"] === "queryDescription" && e.queryDescription ? queryDescription(e.queryDescription as Obj) : renderEntity(e),
    );
  }

  async openTopic(name: string): Promise<void> {
    const body = h("div", { class: "detail-body" }, "loading…");
    const buttons = [
      h("button", { type: "button", onclick: () => this.actions.tail(name) }, "Tail records"),
      h("button", { type: "button", onclick: () => this.actions.draft(`PRINT '${name.replace(/'/g, "''")}' FROM BEGINNING LIMIT 20;`) }, "PRINT"),
    ];
    this.actions.show(`Topic ${name}`, h("div", {}, h("div", { class: "toolbar" }, ...buttons), body));
    try {
      const t = await getJson<Obj>(`/topics/${encodeURIComponent(name)}`);
      const groups = Array.isArray(t.consumerGroups) ? (t.consumerGroups as Obj[]) : [];
      body.replaceChildren(
        h("h4", {}, "Partitions"),
        objectTable((t.partitions as Obj[]) ?? []),
        h("h4", {}, "Configuration"),
        objectTable(Object.entries((t.config as Obj) ?? {}).map(([k, v]) => ({ name: k, value: cellText(v) }))),
        h("h4", {}, "Consumer groups"),
        groups.length ? objectTable(groups) : h("p", { class: "empty" }, "No group has read it."),
      );
    } catch (e) {
      body.replaceChildren(h("p", { class: "error" }, e instanceof Error ? e.message : String(e)));
    }
  }

  private async drop(kind: string, name: string): Promise<void> {
    if (!(await confirmDialog(`Drop ${kind} ${name}? Its topic stays (DROP ... DELETE TOPIC removes it too).`, `Drop ${kind.toLowerCase()}`))) return;
    await this.runAndShow(`DROP ${kind} ${name};`, `Dropped ${name}`);
  }

  private async terminate(id: string): Promise<void> {
    if (!(await confirmDialog(`Terminate ${id}? It stops writing its sink; the sink stays.`, "Terminate"))) return;
    await this.runAndShow(`TERMINATE ${id};`, `Terminated ${id}`);
  }

  private async runAndShow(sql: string, title: string): Promise<void> {
    try {
      const entities = await ksql(sql);
      this.actions.show(title, h("div", {}, ...entities.map(renderEntity)));
    } catch (e) {
      this.actions.show(`Cannot run ${sql}`, h("p", { class: "error" }, e instanceof Error ? e.message : String(e)));
    }
    this.actions.changed();
  }
}
