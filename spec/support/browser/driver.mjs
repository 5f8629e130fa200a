// Drives a real Chromium for the browser specs (spec/support/browser.rb).
//
// It reads one JSON command per line on stdin and answers one JSON line per
// command on stdout: {"id": n, "ok": true, "value": ...} or
// {"id": n, "ok": false, "error": "..."}. It also serves the static pages of
// a directory (the first argument) on a free loopback port, so that pages
// have a real http origin apart from the Faye server's, as a Rails app's do.
//
// A page asked for with `no_unload=1` in its query is served with
// `Permissions-Policy: unload=()`, which keeps any script (Faye's client
// adds one) from listening to `unload`: a page with such a listener never
// enters the back/forward cache.
//
// Tabs have names; tabs opened with the same `user` share one browser
// context (one profile, as one person's browser window), other users get
// their own.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";
import core from "playwright-core/lib/coreBundle";

const pagesDir = process.argv[2];
const executablePath = process.env.FAYE_ONLINE_CHROMIUM || "/usr/bin/chromium";
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "application/javascript; charset=utf-8" };

let server = null; // the BrowserServer: owns the Chromium process
let browser = null;
const contexts = new Map(); // user -> BrowserContext
const tabs = new Map(); // name -> { page, dialogs: [], dialogAnswer }
let pageServer = null;

// Playwright keeps every page visible and focused: it turns on focus
// emulation on its own DevTools session of each page, and only that
// session can turn it off. The specs of the Page Visibility API need the
// browser's real visibility (a background tab is hidden), so the driver
// keeps Playwright's server-side page objects (it runs Playwright's server
// in this process, through launchServer) and turns focus emulation off on
// that session for the tabs a spec asks. Tied to playwright-core's
// internals, which package.json pins.
const serverPages = new Map(); // guid -> Playwright's server-side Page
const ServerPage = core.server && core.server.Page && core.server.Page.prototype;
if (ServerPage && typeof ServerPage._markInitialized === "function") {
  const markInitialized = ServerPage._markInitialized;
  ServerPage._markInitialized = function (...args) {
    serverPages.set(this.guid, this);
    return markInitialized.apply(this, args);
  };
}

async function focusEmulation(page, enabled) {
  const serverPage = serverPages.get(page._guid);
  const session = serverPage && serverPage.delegate && serverPage.delegate._mainFrameSession &&
    serverPage.delegate._mainFrameSession._client;
  if (!session) throw new Error("cannot reach Playwright's page session: the pinned playwright-core changed");
  await session.send("Emulation.setFocusEmulationEnabled", { enabled });
}

function serve() {
  return new Promise((resolve) => {
    pageServer = createServer(async (req, res) => {
      const url = new URL(req.url, "http://x");
      const path = normalize(decodeURIComponent(url.pathname));
      if (path.includes("..") || !TYPES[extname(path)]) {
        res.writeHead(404).end("not found\n");
        return;
      }
      try {
        const body = await readFile(join(pagesDir, path));
        const headers = { "Content-Type": TYPES[extname(path)] };
        if (url.searchParams.get("no_unload") === "1") headers["Permissions-Policy"] = "unload=()";
        res.writeHead(200, headers).end(body);
      } catch {
        res.writeHead(404).end("not found\n");
      }
    });
    pageServer.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${pageServer.address().port}`));
  });
}

function tab(name) {
  const t = tabs.get(name);
  if (!t) throw new Error(`no tab named ${name}`);
  return t;
}

async function context(user) {
  if (!contexts.has(user)) contexts.set(user, await browser.newContext());
  return contexts.get(user);
}

const commands = {
  async launch() {
    const origin = await serve();
    server = await chromium.launchServer({
      executablePath,
      headless: true,
      // Playwright turns the back/forward cache off by default; the specs
      // need it, as real browsers have it.
      ignoreDefaultArgs: ["--disable-back-forward-cache"],
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    browser = await chromium.connect(server.wsEndpoint());
    return { origin, pid: server.process().pid, version: browser.version() };
  },

  // Opens a new tab for `user` at `url` and waits for its load event.
  async open({ name, user, url }) {
    const page = await (await context(user)).newPage();
    const t = { page, dialogs: [], dialogAnswer: "accept", console: [] };
    page.on("dialog", async (dialog) => {
      t.dialogs.push(dialog.type());
      if (t.dialogAnswer === "dismiss") await dialog.dismiss();
      else await dialog.accept();
    });
    page.on("console", (m) => t.console.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => t.console.push(`pageerror: ${e.message}`));
    tabs.set(name, t);
    page.on("close", () => serverPages.delete(page._guid));
    await page.goto(url, { waitUntil: "load" });
    return true;
  },

  // From now on the tab shows the browser's real visibility and focus: a
  // tab behind another tab of its window, or in a minimized window, is
  // hidden.
  async real_visibility({ name }) {
    await focusEmulation(tab(name).page, false);
    return true;
  },

  // The user brings the tab to the front of its window (the window's other
  // tabs go behind it).
  async front({ name }) {
    await tab(name).page.bringToFront();
    return true;
  },

  // The user minimizes the tab's window (every tab of its user), or
  // restores it.
  async minimize({ name, minimized }) {
    const page = tab(name).page;
    const { targetInfo } = await (await page.context().newCDPSession(page)).send("Target.getTargetInfo");
    const session = await browser.newBrowserCDPSession();
    const { windowId } = await session.send("Browser.getWindowForTarget", { targetId: targetInfo.targetId });
    await session.send("Browser.setWindowBounds", { windowId, bounds: { windowState: minimized ? "minimized" : "normal" } });
    await session.detach();
    return true;
  },

  // The value of a JavaScript expression in the tab (JSON-serialisable).
  async eval({ name, expression }) {
    return tab(name).page.evaluate(expression);
  },

  // A click on the page: the user has touched it (a page may only ask
  // "leave this site?" after that).
  async touch({ name }) {
    await tab(name).page.mouse.click(5, 5);
    return true;
  },

  // The user closes the tab. When the page asks to confirm, `confirm`
  // decides: true closes it, false cancels the close and the tab stays.
  async close({ name, confirm }) {
    const t = tab(name);
    t.dialogAnswer = confirm ? "accept" : "dismiss";
    const before = t.dialogs.length;
    const closed = new Promise((resolve) => t.page.once("close", () => resolve(true)));
    await t.page.close({ runBeforeUnload: true });
    if (confirm) {
      await closed;
      tabs.delete(name);
      return { asked: t.dialogs.length > before, closed: true };
    }
    // A cancelled close leaves the page open; wait until the dialog was
    // answered, then show that the page still runs script.
    const deadline = Date.now() + 5000;
    while (t.dialogs.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const alive = await t.page.evaluate("1 + 1");
    return { asked: t.dialogs.length > before, closed: t.page.isClosed(), alive: alive === 2 };
  },

  async goto({ name, url }) {
    tab(name).dialogAnswer = "accept";
    await tab(name).page.goto(url, { waitUntil: "load" });
    return true;
  },

  async back({ name }) {
    tab(name).dialogAnswer = "accept";
    // A page restored from the back/forward cache fires no load event.
    await tab(name).page.goBack({ waitUntil: "commit" });
    return true;
  },

  // A PNG of the tab at `width` × `height` CSS pixels, written to `path`.
  async screenshot({ name, path, width, height }) {
    const page = tab(name).page;
    await page.setViewportSize({ width: width || 1200, height: height || 800 });
    await page.screenshot({ path, fullPage: true });
    return true;
  },

  async log({ name }) {
    return tab(name).console;
  },

  // The browser process dies at once (kill -9), as in a crash.
  async kill() {
    const proc = server.process();
    proc.kill("SIGKILL");
    await new Promise((resolve) => (proc.exitCode !== null || proc.signalCode ? resolve() : proc.once("exit", resolve)));
    tabs.clear();
    contexts.clear();
    browser = null;
    server = null;
    return true;
  },

  async quit() {
    if (server) await server.close().catch(() => {});
    if (pageServer) pageServer.close();
    setTimeout(() => process.exit(0), 10);
    return true;
  },
};

const lines = createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  let id = null;
  try {
    const command = JSON.parse(line);
    id = command.id;
    const run = commands[command.cmd];
    if (!run) throw new Error(`unknown command ${command.cmd}`);
    const value = await run(command);
    process.stdout.write(`${JSON.stringify({ id, ok: true, value: value ?? null })}\n`);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ id, ok: false, error: String(error && error.stack || error) })}\n`);
  }
});
lines.on("close", async () => {
  if (server) await server.close().catch(() => {});
  process.exit(0);
});
