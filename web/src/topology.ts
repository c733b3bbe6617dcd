// A query's stages drawn from EXPLAIN's execution plan: sources at the top, flowing down
// through repartitions, aggregations and joins to the sink.

import { h } from "./dom";

export interface Stage {
  kind: string;
  details: string[];
  inputs: Stage[];
}

/**
 * Parses ksqlDB's execution plan text (` > [ SINK ] | Schema: ... | Name: X`, each input
 * indented one level deeper than the stage it feeds) into a tree rooted at the last stage.
 */
export function parsePlan(plan: string): Stage | null {
  const roots: Stage[] = [];
  const stack: { depth: number; stage: Stage }[] = [];
  for (const raw of plan.split("\n")) {
    const m = /^(\s*)>\s*\[\s*([^\]]+?)\s*\]\s*(.*)$/.exec(raw);
    if (!m) continue;
    const depth = m[1].replace(/ /g, "").length;
    const details = m[3]
      .split("|")
      .map((d) => d.trim())
      .filter(Boolean);
    const stage: Stage = { kind: m[2], details, inputs: [] };
    while (stack.length && stack[stack.length - 1].depth >= depth) stack.pop();
    if (stack.length) stack[stack.length - 1].stage.inputs.push(stage);
    else roots.push(stage);
    stack.push({ depth, stage });
  }
  return roots[0] ?? null;
}

/** The stage kinds a plan goes through, sources first (for a one-line summary). */
export function stageKinds(root: Stage): string[] {
  const out: string[] = [];
  const walk = (s: Stage) => {
    s.inputs.forEach(walk);
    out.push(s.kind);
  };
  walk(root);
  return out;
}

function stageBox(s: Stage): HTMLElement {
  const kind = s.kind.toLowerCase().replace(/[^a-z]+/g, "-");
  const repartition = s.details.some((d) => /^REPARTITION/i.test(d)) || s.kind === "GROUP BY";
  return h(
    "div",
    { class: `stage stage-${kind}`, tabindex: 0, title: s.details.join("\n") },
    h("div", { class: "stage-kind" }, s.kind, repartition ? h("span", { class: "stage-tag" }, "repartition") : null),
    ...s.details.map((d) => h("div", { class: "stage-detail" }, d)),
  );
}

/** Draws a stage with its inputs above it, side by side. */
export function renderTopology(root: Stage): HTMLElement {
  const node = (s: Stage): HTMLElement =>
    h(
      "div",
      { class: "topo-node" },
      s.inputs.length ? h("div", { class: "topo-inputs" }, ...s.inputs.map(node)) : null,
      s.inputs.length ? h("div", { class: "topo-arrow", "aria-hidden": "true" }, "↓") : null,
      stageBox(s),
    );
  return h("div", { class: "topology", role: "img", "aria-label": `Stages: ${stageKinds(root).join(" → ")}` }, node(root));
}
