// Live charts from /metrics: per persistent query, records in and out per second, lag,
// processing errors and late records; per topic, partitions, offsets, size and produce rate.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { bytes, clear, h } from "./dom";
import { type MetricsHistory, sumBy } from "./metrics";

interface SeriesSpec {
  label: string;
  color: string;
  values: (h: MetricsHistory) => (number | null)[];
}

/** One chart over the history's times, redrawn on every scrape. */
class Chart {
  readonly element: HTMLElement;
  private plot?: uPlot;

  constructor(
    private readonly title: string,
    private readonly series: SeriesSpec[],
  ) {
    this.element = h("div", { class: "chart", role: "img", "aria-label": title });
    new ResizeObserver(() => {
      const width = this.element.clientWidth;
      if (this.plot && width > 0) this.plot.setSize({ width, height: 150 });
    }).observe(this.element);
  }

  update(history: MetricsHistory): void {
    const data: uPlot.AlignedData = [history.times(), ...this.series.map((s) => s.values(history))];
    if (!this.plot) {
      this.plot = new uPlot(
        {
          title: this.title,
          width: Math.max(this.element.clientWidth, 320),
          height: 150,
          series: [{}, ...this.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: true }))],
          axes: [{}, { size: 60 }],
          scales: { y: { range: (_u, _min, max) => [0, Math.max(max * 1.1, 1)] } },
          legend: { live: false },
        },
        data,
        this.element,
      );
    } else this.plot.setData(data);
  }
}

const last = (xs: (number | null)[]): number => {
  for (let i = xs.length - 1; i >= 0; i--) if (xs[i] !== null) return xs[i] as number;
  return 0;
};

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en") : n.toFixed(1));

function stat(label: string, cls: string, key: string): [HTMLElement, HTMLElement] {
  const value = h("span", { class: `stat-value ${cls}`, "data-key": key }, "–");
  return [h("div", { class: "stat" }, h("span", { class: "stat-label" }, label), value), value];
}

class QueryCard {
  readonly element: HTMLElement;
  private readonly charts: Chart[];
  private readonly values: Record<string, HTMLElement> = {};

  constructor(private readonly query: string) {
    const q = query;
    this.charts = [
      new Chart(`${q}: records per second`, [
        { label: "in/s", color: "#2f6fdf", values: (m) => m.rate("eddy_query_records_in_total", "query", q) },
        { label: "out/s", color: "#1a9a5a", values: (m) => m.rate("eddy_query_records_out_total", "query", q) },
      ]),
      new Chart(`${q}: consumer lag (records)`, [{ label: "lag", color: "#c0701a", values: (m) => m.level("eddy_query_partition_lag", "query", q) }]),
    ];
    const stats = h("div", { class: "stats" });
    for (const [label, cls] of [
      ["records in/s", "rate-in"],
      ["records out/s", "rate-out"],
      ["lag", "lag"],
      ["read/s", "bytes-in"],
      ["written/s", "bytes-out"],
      ["errors (5 min)", "errors"],
      ["late (5 min)", "late"],
    ]) {
      const [el, value] = stat(label, cls, q);
      this.values[cls] = value;
      stats.append(el);
    }
    this.element = h("section", { class: "card query-card", "data-query": q }, h("h3", {}, q), stats, ...this.charts.map((c) => c.element));
  }

  update(m: MetricsHistory): void {
    const q = this.query;
    this.values["rate-in"].textContent = fmt(last(m.rate("eddy_query_records_in_total", "query", q)));
    this.values["rate-out"].textContent = fmt(last(m.rate("eddy_query_records_out_total", "query", q)));
    this.values["lag"].textContent = fmt(last(m.level("eddy_query_partition_lag", "query", q)));
    this.values["bytes-in"].textContent = bytes(Math.round(last(m.rate("eddy_query_read_bytes_total", "query", q))));
    this.values["bytes-out"].textContent = bytes(Math.round(last(m.rate("eddy_query_written_bytes_total", "query", q))));
    this.values["errors"].textContent = String(m.increase("eddy_query_processing_errors_total", "query", q));
    this.values["late"].textContent = String(m.increase("eddy_query_late_records_total", "query", q));
    this.values["errors"].classList.toggle("bad", m.increase("eddy_query_processing_errors_total", "query", q) > 0);
    for (const c of this.charts) c.update(m);
  }
}

class TopicCard {
  readonly element: HTMLElement;
  private readonly chart: Chart;
  private readonly summary: HTMLElement;

  constructor(private readonly topic: string) {
    const t = topic;
    this.chart = new Chart(`${t}: produced per second`, [
      { label: "records/s", color: "#7a3fd0", values: (m) => m.rate("eddy_topic_partition_end_offset", "topic", t) },
      { label: "KiB/s", color: "#999", values: (m) => m.rate("eddy_topic_partition_appended_bytes_total", "topic", t).map((v) => (v === null ? null : v / 1024)) },
    ]);
    this.summary = h("div", { class: "stats" });
    this.element = h("section", { class: "card topic-card", "data-topic": t }, h("h3", {}, t), this.summary, this.chart.element);
  }

  update(m: MetricsHistory): void {
    const latest = m.latest().filter((s) => s.labels.topic === this.topic);
    const partitions = new Set(latest.map((s) => s.labels.partition)).size;
    const end = latest.filter((s) => s.name === "eddy_topic_partition_end_offset").reduce((a, s) => a + s.value, 0);
    const start = latest.filter((s) => s.name === "eddy_topic_partition_start_offset").reduce((a, s) => a + s.value, 0);
    const size = latest.filter((s) => s.name === "eddy_topic_partition_size_bytes").reduce((a, s) => a + s.value, 0);
    const rate = last(m.rate("eddy_topic_partition_end_offset", "topic", this.topic));
    clear(this.summary);
    for (const [label, value, cls] of [
      ["partitions", String(partitions), "partitions"],
      ["records held", (end - start).toLocaleString("en"), "records"],
      ["end offsets (sum)", end.toLocaleString("en"), "end"],
      ["size", bytes(size), "size"],
      ["records/s", fmt(rate), "produce-rate"],
    ])
      this.summary.append(h("div", { class: "stat" }, h("span", { class: "stat-label" }, label), h("span", { class: `stat-value ${cls}` }, value)));
    this.chart.update(m);
  }
}

/** The charts tab: a card per running query, then one per topic (internal ones on request). */
export class ChartsView {
  readonly element: HTMLElement;
  private readonly queries = new Map<string, QueryCard>();
  private readonly topics = new Map<string, TopicCard>();
  private readonly queryList = h("div", { class: "cards" });
  private readonly topicList = h("div", { class: "cards" });
  private readonly note = h("p", { class: "note", role: "status" });
  private readonly showInternal = h("input", { type: "checkbox", id: "show-internal" }) as HTMLInputElement;

  constructor(history: MetricsHistory) {
    this.element = h(
      "div",
      { class: "charts" },
      this.note,
      h("h2", {}, "Persistent queries"),
      this.queryList,
      h("h2", {}, "Topics ", h("label", { class: "inline" }, this.showInternal, " internal topics too")),
      this.topicList,
    );
    this.showInternal.addEventListener("change", () => this.update(history));
    history.onUpdate((m) => this.update(m));
  }

  private update(m: MetricsHistory): void {
    this.note.textContent = m.lastError ? `Cannot read /metrics: ${m.lastError}` : `From GET /metrics every 2 s, the last 5 minutes.`;
    const latest = m.latest();
    const queries = [...sumBy(latest, "eddy_query_records_in_total", "query").keys()].sort();
    sync(this.queries, queries, this.queryList, (q) => new QueryCard(q));
    if (queries.length === 0) this.queryList.replaceChildren(h("p", { class: "empty" }, "No persistent query runs. CREATE ... AS SELECT starts one."));
    const topics = [...sumBy(latest, "eddy_topic_partition_end_offset", "topic").keys()]
      .filter((t) => this.showInternal.checked || !(t.startsWith("_") || t === "default_ksql_processing_log"))
      .sort();
    sync(this.topics, topics, this.topicList, (t) => new TopicCard(t));
    for (const c of this.queries.values()) c.update(m);
    for (const c of this.topics.values()) c.update(m);
  }
}

/** Keeps one card per name, in order, in `list`. */
function sync<C extends { element: HTMLElement }>(cards: Map<string, C>, names: string[], list: HTMLElement, make: (name: string) => C): void {
  for (const name of [...cards.keys()]) if (!names.includes(name)) cards.delete(name);
  for (const name of names) if (!cards.has(name)) cards.set(name, make(name));
  const wanted = names.map((n) => (cards.get(n) as C).element);
  // Moving a card that is already in place would lose the focus within it.
  if (wanted.length !== list.children.length || wanted.some((el, i) => list.children[i] !== el)) list.replaceChildren(...wanted);
}
