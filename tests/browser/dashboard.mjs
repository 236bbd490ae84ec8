// Walks the dashboard in Debian's headless Chromium the way a person would
// and checks what they would see. Run by tests/dashboard.rs:
//   node dashboard.mjs BASE_URL SCREENSHOT_DIR HOSTNAME
// Prints one JSON line of figures on success; exits 1 naming the failed check.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, shots, hostname] = process.argv.slice(2);
if (!base || !shots || !hostname) {
  console.error("usage: node dashboard.mjs BASE_URL SCREENSHOT_DIR HOSTNAME");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const figures = {};
let step = "start";
const check = (ok, what) => {
  if (!ok) throw new Error(`${step}: ${what}`);
};

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});
const timeout = 20000;
try {
  const context = await browser.newContext({
    viewport: { width: 1400, height: 1000 },
    deviceScaleFactor: 2,
    colorScheme: "light",
  });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  step = "overview";
  await page.goto(`${base}/#/`);
  await page.locator("#nodes-table .node-name", { hasText: hostname }).waitFor();
  await page.locator("#pods-table", { hasText: "default/web-1" }).waitFor();
  await page.waitForFunction(() => {
    const v = document.querySelector("#card-firing .card-value");
    return v && Number(v.textContent) >= 1;
  });
  await page.locator("#firing-alerts", { hasText: "DashboardTestAlert" }).waitFor();
  const cpu = await page.locator("#nodes-table .node-row").first().locator("td").nth(1).textContent();
  check(/%$/.test(cpu.trim()), `node CPU cell shows a percentage, got ${cpu}`);
  await page.locator("#etcd-table", { hasText: "yes" }).waitFor();
  await page.locator("#ingest-chart[data-render-ms]").waitFor();
  await page.screenshot({ path: `${shots}/overview.png`, fullPage: true });
  // A node links to its dashboard, with the node picked.
  await page.locator("#nodes-table .node-name", { hasText: hostname }).click();
  await page.waitForFunction(() => location.hash.startsWith("#/d/node") && location.hash.includes("var-instance="));
  await page.locator("#panel-0 .stat-value", { hasText: "%" }).waitFor();
  check(
    (await page.locator("#var-instance").evaluate((s) => [...s.selectedOptions].map((o) => o.value))).join() === hostname,
    "the node dashboard opens on this node",
  );

  step = "explore graph";
  await page.goto(`${base}/#/explore?q=perf_series&range=1h`);
  const canvas = page.locator("#explore-chart[data-render-ms]");
  await canvas.waitFor();
  figures.points = Number(await canvas.getAttribute("data-points"));
  check(figures.points >= 49000, `50 series x ~1000 points drawn, got ${figures.points}`);
  // The figure is the draw of 50 x 1000 points; redraw a few times (legend
  // clicks) and keep the median so one slow frame does not decide it.
  figures.render_ms = [Number(await canvas.getAttribute("data-render-ms"))];
  const painted = await page.evaluate(() => {
    const c = document.querySelector("#explore-chart");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4 * 97) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return seen.size;
  });
  check(painted > 20, `the canvas has drawn colours, saw ${painted}`);
  const box = await canvas.boundingBox();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.4);
  const tip = page.locator(".tooltip .tooltip-value");
  await tip.waitFor();
  const tipText = (await tip.textContent()).trim();
  check(/\d/.test(tipText), `the tooltip shows a value, got ${tipText}`);
  figures.tooltip = `${(await page.locator(".tooltip .tooltip-name").textContent()).trim()}: ${tipText}`;
  await page.screenshot({ path: `${shots}/explore.png` });
  const legend = page.locator(".legend-item");
  check((await legend.count()) === 50, "one legend entry per series");
  await legend.nth(3).click();
  await page.waitForFunction(() => document.querySelectorAll(".legend-item.off").length === 49);
  await legend.nth(3).click();
  await page.waitForFunction(() => document.querySelectorAll(".legend-item.off").length === 0);
  for (let i = 0; i < 4; i++) {
    await page.evaluate(() => document.querySelector("#explore-chart").removeAttribute("data-render-ms"));
    await legend.nth(i).click({ modifiers: ["Control"] });
    await page.locator("#explore-chart[data-render-ms]").waitFor();
    figures.render_ms.push(Number(await page.locator("#explore-chart").getAttribute("data-render-ms")));
  }
  const sorted = [...figures.render_ms].sort((a, b) => a - b);
  figures.render_ms_median = sorted[Math.floor(sorted.length / 2)];

  step = "explore zoom";
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => location.hash.includes("from=") && location.hash.includes("to="));

  step = "explore table";
  await page.goto(`${base}/#/explore?q=${encodeURIComponent('perf_series{i="7"}')}&tab=table`);
  await page.locator("#result-table", { hasText: 'i="7"' }).waitFor();
  await page.locator("#query-stats", { hasText: "Samples loaded" }).waitFor();

  step = "explore error";
  await page.goto(`${base}/#/explore?q=${encodeURIComponent("sum(rate(perf_series[5m])")}`);
  await page.locator("#query-error").waitFor();
  const err = await page.locator("#query-error").textContent();
  check(/parse error/.test(err), `the server's parse error is shown, got ${err}`);
  check(/\^/.test(err), `the error points at its position, got ${err}`);

  check((await page.locator("#open-in-logs").count()) === 0, "a PromQL error is not taken for LogQL");
  await page.goto(`${base}/#/explore?q=${encodeURIComponent('{namespace="default"} |= "ERROR"')}`);
  await page.locator("#open-in-logs").click();
  await page.waitForFunction(() => location.hash.startsWith("#/logs?q="));
  await page.locator("#log-results .log-entry", { hasText: "ERROR database timeout" }).first().waitFor();

  step = "explore completion";
  await page.goto(`${base}/#/explore`);
  await page.locator("#query").click();
  await page.keyboard.type("perf_se");
  await page.locator("#query-completions", { hasText: "perf_series" }).waitFor();
  await page.keyboard.press("Tab");
  check((await page.locator("#query").inputValue()) === "perf_series", "Tab accepts the completion");
  await page.keyboard.type('{i="1');
  await page.locator("#query-completions", { hasText: "10" }).waitFor();
  await page.keyboard.press("Escape");
  await page.keyboard.type('"}');
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => decodeURIComponent(location.hash).includes('q=perf_series{i="1"}'));
  await page.locator("#explore-chart[data-render-ms]").waitFor();
  check((await page.locator(".legend-item").count()) === 1, "one series for i=1");

  step = "dashboards list";
  await page.goto(`${base}/#/dashboards`);
  await page.locator("#dashboard-list", { hasText: "Kubernetes pods and containers" }).waitFor();
  await page.locator("#dashboard-list a", { hasText: "Kubernetes pods and containers" }).click();
  await page.waitForFunction(() => location.hash.startsWith("#/d/pods"));

  step = "dashboard variables";
  const cpuLegend = page.locator("#panel-0 .legend-item");
  await page.waitForFunction(() => document.querySelectorAll("#panel-0 .legend-item").length === 3);
  await page.locator("#panel-6 .log-line", { hasText: "ERROR database timeout" }).first().waitFor();
  await page.screenshot({ path: `${shots}/dashboard-pods.png`, fullPage: true });
  await page.selectOption("#var-namespace", ["kube-system"]);
  await page.waitForFunction(() => location.hash.includes("var-namespace=kube-system"));
  await page.waitForFunction(() => document.querySelectorAll("#panel-0 .legend-item").length === 1);
  check((await cpuLegend.first().textContent()).includes("kube-system/coredns-x"), "the variable narrows the panel");
  await page.locator("#panel-6", { hasText: "No log lines" }).waitFor();
  // The link reproduces the view.
  await page.reload();
  await page.waitForFunction(() => document.querySelectorAll("#panel-0 .legend-item").length === 1);

  step = "node dashboard";
  await page.goto(`${base}/#/d/node`);
  await page.locator("#panel-0 .stat-value", { hasText: "%" }).waitFor();
  await page.locator("#panel-6 canvas[data-render-ms]").waitFor();
  await page.locator("#panel-1 .gauge").waitFor();
  await page.locator("#panel-10 .bar-row").first().waitFor();
  await page.locator("#panel-11 table").waitFor();
  await page.screenshot({ path: `${shots}/dashboard-node.png`, fullPage: true });
  // A panel's query opens in Explore with the variables filled in.
  const exploreHref = await page.locator("#panel-6 .panel-explore").getAttribute("href");
  check(decodeURIComponent(exploreHref).includes('instance=~"('), `explore link has the variable filled in: ${exploreHref}`);

  step = "etcd dashboard";
  await page.goto(`${base}/#/d/etcd`);
  await page.locator("#panel-0 .stat-value", { hasText: "1" }).waitFor();
  await page.waitForFunction(() => {
    const c = document.querySelector("#panel-5-heatmap");
    return c && Number(c.getAttribute("data-cells")) > 0;
  });
  await page.screenshot({ path: `${shots}/dashboard-etcd.png`, fullPage: true });

  step = "create a dashboard";
  await page.goto(`${base}/#/dashboards`);
  await page.locator("#new-dashboard-title").fill("Team A");
  await page.locator("#new-dashboard").click();
  await page.waitForFunction(() => location.hash.startsWith("#/d/team-a") && location.hash.includes("edit=1"));
  await page.locator("#panel-title").fill("Perf 7");
  await page.selectOption("#panel-type", "stat");
  await page.locator("#panel-expr").fill('perf_series{i="7"}');
  await page.locator("#panel-add").click();
  await page.locator("#panel-0 .stat-value").waitFor();
  check(/\d/.test(await page.locator("#panel-0 .stat-value").textContent()), "the new stat panel shows a value");

  step = "grafana import";
  await page.goto(`${base}/#/import`);
  await page.locator("#import-json").fill(JSON.stringify({
    title: "Community", uid: "community", time: { from: "now-1h", to: "now" },
    templating: { list: [{ name: "series", type: "query", query: { query: "label_values(perf_series, i)" }, multi: true, includeAll: true }] },
    panels: [
      { type: "timeseries", title: "Perf $series", gridPos: { w: 24, h: 8 },
        fieldConfig: { defaults: { unit: "short" } },
        targets: [{ expr: 'perf_series{i=~"$series"}', legendFormat: "i={{i}}", refId: "A" }] },
      { type: "text", title: "Read me", options: { content: "hello" } },
    ],
  }));
  await page.locator("#import-convert").click();
  await page.locator("#import-unsupported", { hasText: "panel type text" }).waitFor();
  await page.locator("#import-save").click();
  await page.waitForFunction(() => location.hash.startsWith("#/d/community"));
  await page.locator("#panel-0 canvas[data-render-ms]").waitFor();
  await page.waitForFunction(() => document.querySelectorAll("#panel-0 .legend-item").length === 50);

  step = "logs search";
  await page.goto(`${base}/#/logs?q=${encodeURIComponent('{namespace="default"} |= "ERROR"')}`);
  const entries = page.locator("#log-results .log-entry");
  await entries.filter({ hasText: "ERROR database timeout" }).first().waitFor();
  check((await entries.filter({ hasText: "GET /health" }).count()) === 0, "the line filter keeps only ERROR lines");
  await page.locator("#log-volume[data-render-ms]").waitFor();
  await entries.first().locator(".context-button").click();
  await page.locator("#log-context", { hasText: "GET /health 200" }).waitFor();
  await page.screenshot({ path: `${shots}/logs.png`, fullPage: true });

  step = "logs label pickers";
  await page.goto(`${base}/#/logs`);
  await page.locator("#label-pickers .label-name", { hasText: "pod" }).click();
  await page.locator("#label-values .label-value", { hasText: "web-1" }).click();
  await page.waitForFunction(() => decodeURIComponent(location.hash).includes('pod="web-1"'));
  await entries.filter({ hasText: "GET /health 200" }).first().waitFor();

  step = "logs live tail";
  await page.locator("#live-toggle").click();
  await page.locator("#live-status").waitFor();
  await page.waitForTimeout(1500);
  await page.evaluate(async () => {
    const ns = String(Date.now()) + "000000";
    const r = await fetch("/loki/api/v1/push", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ streams: [{ stream: { namespace: "default", pod: "web-1", container: "app" }, values: [[ns, "LIVE line from the browser test"]] }] }),
    });
    if (r.status !== 204) throw new Error(`push answered ${r.status}`);
  });
  await page.locator("#live-lines", { hasText: "LIVE line from the browser test" }).waitFor();
  await page.locator("#live-toggle").click();

  step = "alerts";
  await page.goto(`${base}/#/alerts`);
  const alert = page.locator('.alert-item[data-alertname="DashboardTestAlert"]');
  await alert.waitFor();
  check(
    (await alert.locator(".badge-silenced").count()) === 0,
    "the alert is not silenced before the test silences it",
  );
  await alert.locator(".silence-button").click();
  const matchers = await page.locator("#silence-matchers").inputValue();
  check(matchers.includes('alertname="DashboardTestAlert"'), `matchers prefilled from the alert: ${matchers}`);
  await page.locator("#silence-comment").fill("silenced by the browser test");
  await page.locator("#silence-create").click();
  await alert.locator(".badge-silenced").waitFor();
  await page.locator("#silences-table .silence-active", { hasText: "DashboardTestAlert" }).waitFor();
  await page.locator("#rule-groups .rule-row", { hasText: "job:up:count" }).waitFor();
  await page.screenshot({ path: `${shots}/alerts.png`, fullPage: true });

  step = "targets";
  await page.goto(`${base}/#/targets`);
  await page.locator("#targets .target-row").first().waitFor();
  check((await page.locator("#targets summary").first().textContent()).includes("·"), "targets are grouped by agent");

  step = "status";
  await page.goto(`${base}/#/status`);
  await page.locator("#cardinality-metrics", { hasText: "perf_series" }).waitFor();
  await page.locator("#build-info").waitFor();
  await page.locator("#configuration", { hasText: "storage.tsdb" }).waitFor();

  step = "dark theme";
  await page.goto(`${base}/#/`);
  await page.locator("#nodes-table").waitFor();
  await page.locator("#theme-toggle").click();
  check((await page.locator("html").getAttribute("data-theme")) === "dark", "the toggle switches to dark");
  await page.reload();
  check((await page.locator("html").getAttribute("data-theme")) === "dark", "the theme is remembered");
  await page.locator("#ingest-chart[data-render-ms]").waitFor();
  await page.screenshot({ path: `${shots}/overview-dark.png`, fullPage: true });

  step = "keyboard";
  await page.goto(`${base}/#/`);
  await page.locator("#nodes-table").waitFor();
  // Tab through the navigation to Explore, then follow it with Enter.
  for (let i = 0; i < 10; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(() => document.activeElement && document.activeElement.id === "nav-explore")) break;
  }
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => location.hash.startsWith("#/explore"));

  check(errors.length === 0, `no page errors: ${errors.join("; ")}`);
  console.log(JSON.stringify(figures));
} catch (e) {
  console.error(String(e && e.stack ? e.stack : e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
