// The SQL editor: CodeMirror 6 with a ksqlDB dialect, completion of keywords, functions and
// catalog names, Ctrl-Enter to run, errors marked where they are, and a run history.

import { basicSetup } from "codemirror";
import { EditorView, keymap } from "@codemirror/view";
import { Compartment, EditorState, Prec } from "@codemirror/state";
import { SQLDialect, sql, type SQLNamespace } from "@codemirror/lang-sql";
import { type Completion, type CompletionContext, type CompletionResult } from "@codemirror/autocomplete";
import { type Diagnostic, lintGutter, setDiagnostics } from "@codemirror/lint";

const KEYWORDS =
  "select from where group by having emit changes final window tumbling hopping session size advance grace period retention " +
  "create or replace stream table source sink connector type as with insert into values partition partitions " +
  "join left right full outer inner on within between and or not null is in like escape case when then else end cast " +
  "show list describe extended explain terminate drop delete topic topics streams tables queries functions properties " +
  "variables types connectors print limit interval pause resume alter add column assert exists timeout define undefine " +
  "set unset all key primary header headers true false if distinct struct array map seconds second minutes minute hours " +
  "hour days day milliseconds millisecond kafka_topic value_format key_format format value_schema_id key_schema_id " +
  "timestamp_format wrap_single_value replicas retention_ms cleanup_policy";

const TYPES = "boolean int integer bigint double decimal varchar string bytes date time timestamp struct array map";

export const KsqlDialect = SQLDialect.define({
  keywords: KEYWORDS,
  types: TYPES,
  identifierQuotes: "`",
  operatorChars: "*+-%<>!=/|",
});

/** What the editor completes besides keywords: the catalog, functions and topics. */
export interface CompletionNames {
  /** Streams and tables, each with its columns. */
  sources: Record<string, string[]>;
  functions: string[];
  topics: string[];
}

const HISTORY_KEY = "eddy.console.history";
const HISTORY_MAX = 100;

export function loadHistory(): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(HISTORY_KEY) ?? "[]");
    return Array.isArray(v) ? v.filter((s): s is string => typeof s === "string") : [];
  } catch {
    return [];
  }
}

export function remember(text: string): string[] {
  const list = [text, ...loadHistory().filter((t) => t !== text)].slice(0, HISTORY_MAX);
  try {
    localStorage.setItem(HISTORY_KEY, JSON.stringify(list));
  } catch {
    // Storage full or off (private windows): the history lasts this page only.
  }
  return list;
}

export class SqlEditor {
  readonly view: EditorView;
  private readonly language = new Compartment();
  private names: CompletionNames = { sources: {}, functions: [], topics: [] };
  private historyAt = -1;

  constructor(parent: HTMLElement, onRun: () => void, initial: string) {
    const run = () => {
      onRun();
      return true;
    };
    const fromHistory = (step: number) => () => {
      const list = loadHistory();
      if (list.length === 0) return false;
      this.historyAt = Math.max(-1, Math.min(list.length - 1, this.historyAt + step));
      this.setText(this.historyAt < 0 ? "" : list[this.historyAt]);
      return true;
    };
    this.view = new EditorView({
      parent,
      state: EditorState.create({
        doc: initial,
        extensions: [
          Prec.highest(
            keymap.of([
              { key: "Mod-Enter", run },
              { key: "Shift-Enter", run },
              { key: "Mod-ArrowUp", run: fromHistory(1) },
              { key: "Mod-ArrowDown", run: fromHistory(-1) },
            ]),
          ),
          basicSetup,
          this.language.of(this.languageSupport()),
          lintGutter(),
          EditorView.contentAttributes.of({ "aria-label": "SQL editor: Ctrl-Enter runs, Ctrl-Up and Ctrl-Down walk the history" }),
        ],
      }),
    });
  }

  private languageSupport() {
    const schema: SQLNamespace = Object.fromEntries(Object.entries(this.names.sources).map(([s, cols]) => [s, cols]));
    const support = sql({ dialect: KsqlDialect, schema, upperCaseKeywords: true });
    const functions: Completion[] = this.names.functions.map((f) => ({ label: f, type: "function", apply: `${f}(`, detail: "function" }));
    const topics: Completion[] = this.names.topics.map((t) => ({ label: t, type: "constant", detail: "topic" }));
    const extra = (ctx: CompletionContext): CompletionResult | null => {
      const word = ctx.matchBefore(/[\w$]+/);
      if (!word && !ctx.explicit) return null;
      // Topic names are what goes between quotes (kafka_topic='...', PRINT '...').
      const quoted = ctx.matchBefore(/'[^'\s]*/);
      if (quoted) return { from: quoted.from + 1, options: topics, validFor: /^[^'\s]*$/ };
      return { from: word ? word.from : ctx.pos, options: [...functions, ...topics], validFor: /^[\w$]*$/ };
    };
    return [support, support.language.data.of({ autocomplete: extra })];
  }

  /** New catalog names for completion. */
  setNames(names: CompletionNames): void {
    this.names = names;
    this.view.dispatch({ effects: this.language.reconfigure(this.languageSupport()) });
  }

  get text(): string {
    return this.view.state.doc.toString();
  }

  setText(text: string): void {
    this.view.dispatch({ changes: { from: 0, to: this.view.state.doc.length, insert: text }, selection: { anchor: text.length } });
  }

  /** The statements to run: the selection when there is one, else the whole text; and its offset. */
  runnable(): { text: string; offset: number } {
    const sel = this.view.state.selection.main;
    if (!sel.empty) return { text: this.view.state.sliceDoc(sel.from, sel.to), offset: sel.from };
    return { text: this.text, offset: 0 };
  }

  markError(from: number, to: number, message: string): void {
    const len = this.view.state.doc.length;
    const f = Math.max(0, Math.min(from, len));
    let t = Math.max(f, Math.min(to, len));
    if (t === f && f < len) t = f + 1;
    const diagnostic: Diagnostic = { from: f, to: t, severity: "error", message };
    this.view.dispatch(setDiagnostics(this.view.state, [diagnostic]));
    this.view.dispatch({ effects: EditorView.scrollIntoView(f, { y: "center" }) });
  }

  clearErrors(): void {
    this.view.dispatch(setDiagnostics(this.view.state, []));
  }

  focus(): void {
    this.view.focus();
  }

  resetHistoryWalk(): void {
    this.historyAt = -1;
  }
}
