// Bundles the console into dist/ (index.html, app.js, app.css), which the server embeds
// when it is built (build.rs). Run through `npm run build` (after `tsc --noEmit`).
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist");
await build({
  entryPoints: { app: "src/main.ts" },
  bundle: true,
  minify: true,
  sourcemap: false,
  format: "esm",
  target: ["chrome110", "firefox115"],
  outdir: "dist",
  loader: { ".css": "css" },
  legalComments: "linked",
  logLevel: "warning",
});
copyFileSync("index.html", "dist/index.html");
