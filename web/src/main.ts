// The console's page: the catalog beside tabs for the SQL editor and its results, a
// catalog entry's details, live charts, the topic viewer and feature lookups. Everything
// goes through the server's public REST API.

import "./style.css";
import { ApiError, type Properties, Unreachable, ksql } from "./api";
import { CatalogPanel, readCatalog } from "./catalog";
import { ChartsView } from "./charts";
import { Connection } from "./connection";
import { h } from "./dom";
import { SqlEditor, remember } from "./editor";
import { FeaturePanel } from "./features";
import { LiveQuery } from "./live";
import { MetricsHistory } from "./metrics";
import { renderEntity } from "./results";
import { type Statement, offsetOf, parseSet, parseUnset, splitStatements } from "./statements";
import { TopicViewer } from "./topics";

const WELCOME = `-- Ctrl-Enter runs the editor's statements (or the selection). For example:
-- CREATE STREAM clicks (user_id VARCHAR KEY, page VARCHAR) WITH (kafka_topic='clicks', partitions=1, value_format='JSON');
-- SELECT * FROM clicks EMIT CHANGES;
SHOW STREAMS;
`;

type TabId = "sql" | "catalog" | "charts" | "topics" | "features";

class Tabs {
  readonly bar = h("div", { class: "tabs", role: "tablist", "aria-label": "Views" });
  readonly panels = h("div", { class: "panels" });
  private readonly tabs = new Map<TabId, { tab: HTMLButtonElement; panel: HTMLElement }>();

  add(id: TabId, label: string, content: HTMLElement): void {
    const tab = h("button", { type: "button", role: "tab", id: `tab-${id}`, "aria-controls": `panel-${id}`, tabindex: -1 }, label) as HTMLButtonElement;
    const panel = h("section", { role: "tabpanel", id: `panel-${id}`, "aria-labelledby": `tab-${id}`, hidden: true }, content);
    tab.addEventListener("click", () => this.select(id));
    tab.addEventListener("keydown", (e) => {
      const ids = [...this.tabs.keys()];
      const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      const next = ids[(ids.indexOf(id) + step + ids.length) % ids.length];
      this.select(next);
      this.tabs.get(next)?.tab.focus();
    });
    this.tabs.set(id, { tab, panel });
    this.bar.append(tab);
    this.panels.append(panel);
  }

  select(id: TabId): void {
    for (const [other, { tab, panel }] of this.tabs) {
      const on = other === id;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      panel.hidden = !on;
    }
  }
}

class Console {
  private readonly editor: SqlEditor;
  private readonly results = h("div", { class: "results", "aria-live": "polite" });
  private readonly properties: Properties = {};
  private readonly propertiesLine = h("span", { class: "properties" });
  private readonly tabs = new Tabs();
  private readonly detail = h("div", { class: "detail" }, h("p", { class: "empty" }, "Choose a stream, table, query or topic in the catalog."));
  private readonly catalog: CatalogPanel;
  private readonly topics = new TopicViewer();
  private readonly features = new FeaturePanel();
  private readonly live: LiveQuery[] = [];
  private functions: string[] = [];
  private catalogKey = "";

  constructor(root: HTMLElement) {
    const editorHost = h("div", { class: "editor" });
    this.editor = new SqlEditor(editorHost, () => void this.run(), localStorage.getItem("eddy.console.draft") ?? WELCOME);
    this.catalog = new CatalogPanel({
      draft: (sql) => {
        this.editor.setText(sql);
        this.tabs.select("sql");
        this.editor.focus();
      },
      tail: (topic) => {
        this.tabs.select("topics");
        this.topics.open(topic);
      },
      show: (title, content) => {
        this.detail.replaceChildren(h("h2", {}, title), content);
        this.tabs.select("catalog");
      },
      changed: () => void this.refreshCatalog(),
    });
    const history = new MetricsHistory();
    const sqlPanel = h(
      "div",
      { class: "sql" },
      editorHost,
      h(
        "div",
        { class: "toolbar" },
        h("button", { type: "button", class: "primary", id: "run", onclick: () => void this.run() }, "Run ", h("kbd", {}, "Ctrl-Enter")),
        h("button", { type: "button", onclick: () => this.stopAll() }, "Stop all queries"),
        h("button", { type: "button", onclick: () => this.results.replaceChildren() }, "Clear results"),
        this.propertiesLine,
      ),
      this.results,
    );
    this.tabs.add("sql", "SQL", sqlPanel);
    this.tabs.add("catalog", "Catalog", this.detail);
    this.tabs.add("charts", "Charts", new ChartsView(history).element);
    this.tabs.add("topics", "Topics", this.topics.element);
    this.tabs.add("features", "Feature lookup", this.features.element);
    this.tabs.select("sql");
    const connection = new Connection(() => void this.refreshCatalog());
    root.append(
      h("header", { class: "top" }, h("h1", {}, "Eddy"), h("span", { class: "subtitle" }, "streaming SQL console"), connection.element),
      h("div", { class: "layout" }, this.catalog.element, h("main", {}, this.tabs.bar, this.tabs.panels)),
    );
    connection.start();
    history.start();
    window.addEventListener("beforeunload", () => localStorage.setItem("eddy.console.draft", this.editor.text));
    void this.loadFunctions();
    void this.refreshCatalog().then(() => (document.body.dataset.ready = "true"));
    window.setInterval(() => void this.refreshCatalog(), 5000);
  }

  private async loadFunctions(): Promise<void> {
    try {
      const [e] = await ksql("SHOW FUNCTIONS;");
      this.functions = ((e?.functions as { name: string }[]) ?? []).map((f) => f.name);
      this.catalogKey = "";
      await this.refreshCatalog();
    } catch {
      // Completion goes without function names until the next load.
    }
  }

  private async refreshCatalog(): Promise<void> {
    try {
      const snapshot = await readCatalog();
      this.catalog.render(snapshot);
      const key = JSON.stringify([snapshot.sources, snapshot.topics, this.functions.length]);
      if (key !== this.catalogKey) {
        this.catalogKey = key;
        this.editor.setNames({ sources: Object.fromEntries(snapshot.sources.map((s) => [s.name, s.columns])), functions: this.functions, topics: snapshot.topics });
        this.topics.setTopics(snapshot.topics);
        this.features.setTables(snapshot.sources.filter((s) => s.type === "TABLE").map((s) => s.name));
      }
    } catch {
      // The connection banner says when the server is away.
    }
  }

  private showProperties(): void {
    const entries = Object.entries(this.properties);
    this.propertiesLine.textContent = entries.length ? `SET: ${entries.map(([k, v]) => `${k}=${v}`).join(", ")}` : "";
  }

  private card(statement: string): { card: HTMLElement; body: HTMLElement } {
    const body = h("div", { class: "result-body" });
    const card = h("article", { class: "result" }, h("pre", { class: "statement" }, statement.trim()), body);
    this.results.prepend(card);
    return { card, body };
  }

  /** Runs the editor's statements in order; stops at the first that fails and marks it. */
  async run(): Promise<void> {
    const { text, offset } = this.editor.runnable();
    const statements = splitStatements(text).map((s) => ({ ...s, from: s.from + offset, to: s.to + offset }));
    if (statements.length === 0) return;
    remember(this.editor.text);
    this.editor.resetHistoryWalk();
    this.editor.clearErrors();
    for (const s of statements) {
      const { card, body } = this.card(s.text);
      try {
        await this.runOne(s, body);
      } catch (e) {
        this.fail(s, card, body, e);
        break;
      }
    }
    void this.refreshCatalog();
  }

  private async runOne(s: Statement, body: HTMLElement): Promise<void> {
    switch (s.kind) {
      case "set": {
        const kv = parseSet(s.text);
        if (!kv) throw new ApiError(400, "write SET as SET 'property' = 'value';", null, { line: 1, column: 1 });
        this.properties[kv[0]] = kv[1];
        body.append(h("p", { class: "status" }, `Property '${kv[0]}' set to '${kv[1]}' for the statements this console runs.`));
        this.showProperties();
        return;
      }
      case "unset": {
        const k = parseUnset(s.text);
        if (!k) throw new ApiError(400, "write UNSET as UNSET 'property';", null, { line: 1, column: 1 });
        delete this.properties[k];
        body.append(h("p", { class: "status" }, `Property '${k}' unset.`));
        this.showProperties();
        return;
      }
      case "query":
      case "print": {
        const live = new LiveQuery(s.text, { ...this.properties }, () => void this.refreshCatalog());
        this.live.push(live);
        body.append(live.element);
        // A refused query fails at once; PRINT of a quiet topic may print nothing for a
        // long time, and the statements after it should not wait for it.
        await Promise.race([live.started, new Promise((resolve) => setTimeout(resolve, 2000))]);
        return;
      }
      default: {
        const entities = await ksql(s.text, this.properties);
        for (const e of entities) body.append(renderEntity(e));
      }
    }
  }

  private fail(s: Statement, card: HTMLElement, body: HTMLElement, e: unknown): void {
    card.classList.add("failed");
    const message = e instanceof Error ? e.message : String(e);
    const where = e instanceof ApiError && e.position ? e.position : undefined;
    const at = where ? offsetOf(s, where.line, where.column) : s.from;
    // The server counts lines and columns from the statement's start; the editor's count
    // replaces its own.
    const line = this.editor.view.state.doc.lineAt(at);
    const shown = where ? message.replace(/^(Failed to prepare statement: )?line \d+:\d+: /i, "$1").replace(/^Line: \d+, Col: \d+: /, "") : message;
    const prefix = e instanceof Unreachable ? "Not run: " : where ? `Line ${line.number}, column ${at - line.from + 1}: ` : "";
    body.append(h("pre", { class: "error", role: "alert" }, prefix + shown));
    // The word the error points at (a name, a keyword), else the whole statement.
    const word = where ? /^[\w$`]+/.exec(this.editor.text.slice(at, s.to)) : null;
    this.editor.markError(at, where ? at + (word ? word[0].length : 1) : s.to, message);
  }

  private stopAll(): void {
    for (const q of this.live.splice(0)) q.stop();
  }
}

const root = document.getElementById("app");
if (root) new Console(root);
