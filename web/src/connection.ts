// Whether the server answers: polls GET /healthcheck, shows a banner while it does not,
// and says when it is back (the page's other parts retry on their own).

import { h } from "./dom";

const EVERY_MS = 3000;

export class Connection {
  readonly element = h("div", { class: "connection", role: "status", "aria-live": "assertive" });
  private up = true;
  private lastSeen = Date.now();

  constructor(private readonly onBack: () => void) {}

  start(): void {
    const tick = async () => {
      let ok = false;
      try {
        const res = await fetch("/healthcheck", { cache: "no-store" });
        ok = res.ok;
      } catch {
        ok = false;
      }
      this.set(ok);
      window.setTimeout(tick, EVERY_MS);
    };
    void tick();
  }

  private set(ok: boolean): void {
    if (ok) {
      this.lastSeen = Date.now();
      if (!this.up) {
        this.element.className = "connection back";
        this.element.textContent = "Reconnected to the server.";
        this.onBack();
        window.setTimeout(() => {
          if (this.up) {
            this.element.className = "connection";
            this.element.textContent = "";
          }
        }, 4000);
      }
      this.up = true;
      document.body.dataset.server = "up";
      return;
    }
    this.up = false;
    document.body.dataset.server = "down";
    this.element.className = "connection down";
    const seen = new Date(this.lastSeen).toLocaleTimeString();
    this.element.textContent =
      `Cannot reach the Eddy server at ${location.host} (last answer at ${seen}). ` +
      `Retrying every ${EVERY_MS / 1000} s; statements and live queries will fail until it is back — is it running?`;
  }
}
