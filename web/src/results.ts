// Statement responses (ksqlDB's entities) drawn as tables: lists of streams, tables,
// queries and topics, source and query descriptions, statuses, and anything else as a
// table of its fields.

import type { Entity } from "./api";
import { cellText, h, objectTable, table } from "./dom";
import { parsePlan, renderTopology } from "./topology";

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function fieldsTable(fields: unknown): HTMLElement | null {
  if (!Array.isArray(fields)) return null;
  return table(
    ["Field", "Type", ""],
    fields.filter(isObj).map((f) => {
      const schema = isObj(f.schema) ? f.schema : {};
      return [f.name, schema.type, f.type === "KEY" ? "(key)" : f.type ?? ""];
    }),
    { class: "grid fields" },
  );
}

function keyValues(o: Obj, keys: string[]): HTMLElement {
  return h(
    "dl",
    { class: "kv" },
    ...keys.filter((k) => o[k] !== undefined && o[k] !== null && o[k] !== "").flatMap((k) => [h("dt", {}, k), h("dd", {}, cellText(o[k]))]),
  );
}

function queryList(title: string, qs: unknown): HTMLElement | null {
  if (!Array.isArray(qs) || qs.length === 0) return null;
  return h("section", {}, h("h4", {}, title), objectTable(qs.filter(isObj)));
}

function sourceDescription(d: Obj): HTMLElement {
  return h(
    "div",
    { class: "description" },
    keyValues(d, ["name", "type", "topic", "keyFormat", "valueFormat", "timestamp", "windowType", "partitions", "replication", "statistics", "errorStats"]),
    fieldsTable(d.fields),
    queryList("Queries that read from it", d.readQueries),
    queryList("Queries that write to it", d.writeQueries),
  );
}

/** A query's description: its stages drawn, then its fields, plan text and hosts. */
export function queryDescription(d: Obj): HTMLElement {
  const plan = typeof d.executionPlan === "string" ? parsePlan(d.executionPlan) : null;
  return h(
    "div",
    { class: "description" },
    keyValues(d, ["id", "queryType", "state", "statementText", "sources", "sinks", "windowType"]),
    plan ? renderTopology(plan) : null,
    fieldsTable(d.fields),
    typeof d.executionPlan === "string" ? h("details", {}, h("summary", {}, "Execution plan"), h("pre", {}, d.executionPlan)) : null,
    isObj(d.ksqlHostQueryStatus) && Object.keys(d.ksqlHostQueryStatus).length
      ? h("section", {}, h("h4", {}, "Hosts"), table(["Host", "State"], Object.entries(d.ksqlHostQueryStatus)))
      : null,
  );
}

/** Draws one entity of a `/ksql` response. */
export function renderEntity(e: Entity): HTMLElement {
  const type = e["@type"] ?? "";
  const body = h("div", { class: `entity entity-${type}` });
  switch (type) {
    case "currentStatus": {
      const status = isObj(e.commandStatus) ? e.commandStatus : {};
      body.append(h("p", { class: `status status-${String(status.status).toLowerCase()}` }, cellText(status.message ?? status.status)));
      break;
    }
    case "sourceDescription":
      if (isObj(e.sourceDescription)) body.append(sourceDescription(e.sourceDescription));
      break;
    case "source_descriptions":
      if (Array.isArray(e.sourceDescriptions)) for (const d of e.sourceDescriptions.filter(isObj)) body.append(h("h4", {}, cellText(d.name)), sourceDescription(d));
      break;
    case "queryDescription":
      if (isObj(e.queryDescription)) body.append(queryDescription(e.queryDescription));
      break;
    default:
      body.append(genericEntity(e));
  }
  if (Array.isArray(e.warnings)) for (const w of e.warnings) body.append(h("p", { class: "warning" }, `Warning: ${cellText(isObj(w) ? w.message : w)}`));
  return body;
}

/** Any other entity: its lists as tables, its objects as fields, its scalars as lines. */
function genericEntity(e: Entity): HTMLElement {
  const out = h("div");
  for (const [k, v] of Object.entries(e)) {
    if (k === "@type" || k === "statementText" || k === "warnings") continue;
    if (Array.isArray(v)) {
      if (v.length === 0) out.append(h("p", { class: "empty" }, `No ${k}.`));
      else if (v.every(isObj)) out.append(objectTable(v as Obj[]));
      else out.append(table([k], v.map((x) => [x])));
    } else if (isObj(v)) out.append(h("h4", {}, k), table(["Name", "Value"], Object.entries(v)));
    else out.append(h("p", {}, h("b", {}, `${k}: `), cellText(v)));
  }
  return out;
}
