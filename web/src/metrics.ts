// Reads `GET /metrics` (Prometheus text format) into samples, and keeps a few minutes of
// them to chart rates (per second, from counters) and levels (gauges).

import { getText } from "./api";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function unescapeLabel(v: string): string {
  return v.replace(/\\(["\\n])/g, (_, c: string) => (c === "n" ? "\n" : c));
}

/** Parses the text exposition format (comments skipped; `# EOF` ends it). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[2]) for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = unescapeLabel(l[2]);
    const value = Number(m[3]);
    if (!Number.isNaN(value)) out.push({ name: m[1], labels, value });
  }
  return out;
}

/** One scrape, summed by a label: `sum(name) by (label)`. */
export function sumBy(samples: Sample[], name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) if (s.name === name && label in s.labels) out.set(s.labels[label], (out.get(s.labels[label]) ?? 0) + s.value);
  return out;
}

export interface Scrape {
  at: number;
  samples: Sample[];
}

/** The scrapes of the last `keepMs`, taken every `everyMs`. */
export class MetricsHistory {
  readonly scrapes: Scrape[] = [];
  private timer?: number;
  private listeners: ((h: MetricsHistory) => void)[] = [];
  lastError?: string;

  constructor(
    private readonly everyMs = 2000,
    private readonly keepMs = 5 * 60_000,
  ) {}

  onUpdate(f: (h: MetricsHistory) => void): void {
    this.listeners.push(f);
  }

  start(): void {
    if (this.timer !== undefined) return;
    const tick = async () => {
      try {
        const text = await getText("/metrics");
        const now = Date.now();
        this.scrapes.push({ at: now, samples: parseMetrics(text) });
        while (this.scrapes.length && this.scrapes[0].at < now - this.keepMs) this.scrapes.shift();
        this.lastError = undefined;
      } catch (e) {
        this.lastError = String(e instanceof Error ? e.message : e);
      }
      for (const f of this.listeners) f(this);
      this.timer = window.setTimeout(tick, this.everyMs);
    };
    void tick();
  }

  /** The times (seconds) the series below are drawn at: every scrape but the first. */
  times(): number[] {
    return this.scrapes.slice(1).map((s) => s.at / 1000);
  }

  /** A counter summed by `label` for one of its values, per second between scrapes. */
  rate(name: string, label: string, value: string): (number | null)[] {
    const out: (number | null)[] = [];
    for (let i = 1; i < this.scrapes.length; i++) {
      const a = this.scrapes[i - 1];
      const b = this.scrapes[i];
      const before = sumBy(a.samples, name, label).get(value);
      const after = sumBy(b.samples, name, label).get(value);
      if (after === undefined) {
        out.push(null);
        continue;
      }
      // A counter that went down was restarted (the server restarted): count from zero.
      const delta = before === undefined || after < before ? after : after - before;
      out.push(delta / Math.max((b.at - a.at) / 1000, 0.001));
    }
    return out;
  }

  /** A gauge summed by `label` for one of its values, at the same times as `rate`. */
  level(name: string, label: string, value: string): (number | null)[] {
    return this.scrapes.slice(1).map((s) => sumBy(s.samples, name, label).get(value) ?? null);
  }

  /** How much a counter grew over the whole history (what happened "in the last minutes"). */
  increase(name: string, label: string, value: string): number {
    let total = 0;
    for (const v of this.rate(name, label, value).map((r, i) => (r === null ? 0 : r * ((this.scrapes[i + 1].at - this.scrapes[i].at) / 1000)))) total += v;
    return Math.round(total);
  }

  latest(): Sample[] {
    return this.scrapes.length ? this.scrapes[this.scrapes.length - 1].samples : [];
  }
}
