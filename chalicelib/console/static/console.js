/* serverless-mlops console: one small vanilla-JS app, hash-routed, no build step.
 *
 * Every figure comes from the JSON API with the bearer token the person signed in with (kept in this
 * tab's sessionStorage). Nothing from the API is ever parsed as HTML: elements are built with
 * createElement and filled with textContent (the `h` helper), so a value cannot inject markup.
 */
"use strict";

(function () {
  const BASE = location.pathname.replace(/console\/?$/, "");
  const TOKEN_KEY = "mlops-console-token";
  const main = document.getElementById("main");
  const charts = []; // Chart.js instances of the current page (destroyed on navigation)
  let session = null; // {name, role, roles}

  // --- elements ------------------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = String(value);
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const fmt = {
    num(v, digits) {
      if (v === null || v === undefined || v === "") return "–";
      const n = Number(v);
      if (!Number.isFinite(n)) return String(v);
      return digits === undefined ? n.toLocaleString("en") : n.toFixed(digits);
    },
    time(v) {
      if (!v) return "–";
      return String(v).replace("T", " ").replace(/(\.\d+)?(\+00:00|Z)$/, "").slice(0, 19);
    },
    short(v) {
      return v ? String(v).replace("T", " ").slice(5, 16) : "–";
    },
    list(v) {
      return Array.isArray(v) && v.length ? v.join(", ") : "–";
    },
  };

  // A verdict as a symbol and a word (never colour alone); the class only adds colour.
  const VERDICTS = {
    valid: ["ok", "✓"], stable: ["ok", "✓"], reference: ["info", "◆"], champion: ["ok", "★"],
    succeeded: ["ok", "✓"], promoted: ["ok", "✓"], approved: ["ok", "✓"], completed: ["ok", "✓"],
    invalid: ["bad", "✗"], drifted: ["warn", "⚠"], failed: ["bad", "✗"], rejected: ["bad", "✗"],
    duplicate: ["info", "="], unroutable: ["bad", "✗"], ignored: ["warn", "∅"], missing: ["bad", "✗"], revoked: ["bad", "⊘"],
    pending_approval: ["warn", "◷"], insufficient_data: ["info", "…"], superseded: ["info", "↷"],
    running: ["info", "▶"], submitted: ["info", "▶"], queued: ["info", "…"], active: ["info", "▶"],
    paused: ["warn", "‖"], aborted: ["bad", "■"], ALARM: ["bad", "⚠"], OK: ["ok", "✓"],
    INSUFFICIENT_DATA: ["info", "…"], tainted: ["bad", "⊘"], passed: ["ok", "✓"], promote: ["ok", "✓"],
    reject: ["bad", "✗"],
  };

  function verdict(word) {
    if (word === null || word === undefined || word === "") return h("span", { class: "verdict info", text: "–" });
    const [kind, symbol] = VERDICTS[word] || ["info", "•"];
    return h("span", { class: `verdict ${kind}` }, h("span", { "aria-hidden": "true", text: symbol + " " }), String(word).replace(/_/g, " "));
  }

  function table(caption, head, rows, opts) {
    const numeric = (opts && opts.numeric) || [];
    const t = h("table", {},
      caption ? h("caption", { class: "muted", text: caption }) : null,
      h("thead", {}, h("tr", {}, head.map((c, i) => h("th", { scope: "col", class: numeric.includes(i) ? "num" : null, text: c })))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: numeric.includes(i) ? "num" : null }, c))))));
    if (!rows.length) return h("p", { class: "muted", text: (opts && opts.empty) || "Nothing yet." });
    return t;
  }

  function link(href, text) {
    return h("a", { href, text });
  }

  function facts(pairs) {
    return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]));
  }

  function say(text) {
    document.getElementById("status").textContent = text || "";
  }

  // --- the API --------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  async function api(path, options) {
    const init = Object.assign({ method: "GET" }, options || {});
    init.headers = Object.assign({ Accept: "application/json" }, init.headers || {});
    const t = (options && options.token) || token();
    if (t) init.headers.Authorization = `Bearer ${t}`;
    if (init.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(init.body);
    }
    delete init.token;
    const response = await fetch(BASE + path.replace(/^\//, ""), init);
    let doc = null;
    try {
      doc = await response.json();
    } catch (e) {
      doc = null;
    }
    if (!response.ok) {
      const message = (doc && (doc.Message || doc.message)) || response.statusText;
      throw new ApiError(response.status, `${response.status}: ${message}`);
    }
    return doc;
  }

  function enc(part) {
    return encodeURIComponent(String(part));
  }

  // --- charts ---------------------------------------------------------------------------------------

  const PALETTE = ["#0b5cad", "#b42318", "#1a7f37", "#8a5a00", "#6e40c9", "#0e7490", "#be185d", "#4d7c0f", "#57606a", "#c2410c"];
  const DASHES = [[], [6, 3], [2, 2], [8, 3, 2, 3], [1, 3], [10, 4]];
  const POINTS = ["circle", "triangle", "rect", "rectRot", "star", "crossRot", "cross", "rectRounded"];

  function chart(id, label, config, tall) {
    const canvas = h("canvas", { id, role: "img", "aria-label": label });
    const box = h("div", { class: tall ? "chart tall" : "chart" }, canvas);
    if (typeof tall === "number") box.style.height = `${tall}px`; // CSSOM: allowed by the page's CSP
    const figure = h("figure", { class: "panel", style: null }, h("figcaption", { text: label }), box);
    requestAnimationFrame(() => {
      if (typeof window.Chart !== "function") {
        box.replaceChildren(h("p", { class: "error", text: "Chart.js did not load." }));
        return;
      }
      config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
      charts.push(new window.Chart(canvas, config));
    });
    return figure;
  }

  // Series told apart by dash and point style too, not colour alone.
  function series(i, label, data, extra) {
    return Object.assign({
      label, data, borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length],
      borderDash: DASHES[i % DASHES.length], pointStyle: POINTS[i % POINTS.length], pointRadius: 4, borderWidth: 2,
    }, extra || {});
  }

  function clearCharts() {
    while (charts.length) charts.pop().destroy();
  }

  // --- approvers' actions ---------------------------------------------------------------------------

  function isApprover() {
    return !!(session && session.roles && session.roles.includes("approver"));
  }

  // Ask a reason and a confirmation, then POST; refreshes the page on success.
  function action(label, question, path, extraBody) {
    return h("button", {
      type: "button",
      class: label.startsWith("Approve") || label.startsWith("Resume") ? "primary" : "danger",
      onclick: () => confirmThen(label, question, path, extraBody),
      text: label,
    });
  }

  function confirmThen(label, question, path, extraBody) {
    const dialog = document.getElementById("confirm");
    const form = document.getElementById("confirm-form");
    const reason = document.getElementById("confirm-reason");
    const error = document.getElementById("confirm-error");
    const ok = document.getElementById("confirm-ok");
    document.getElementById("confirm-title").textContent = label;
    document.getElementById("confirm-text").textContent = question;
    reason.value = "";
    error.textContent = "";
    ok.textContent = label;
    ok.disabled = false;
    const opener = document.activeElement;
    form.onsubmit = async (event) => {
      event.preventDefault();
      const why = reason.value.trim();
      if (why.length < 3) {
        error.textContent = "Give a reason of at least 3 characters.";
        reason.focus();
        return;
      }
      ok.disabled = true;
      try {
        await api(path, { method: "POST", body: Object.assign({ reason: why }, extraBody || {}) });
        dialog.close();
        say(`${label}: done.`);
        await render();
      } catch (e) {
        error.textContent = e.message;
        ok.disabled = false;
      }
    };
    document.getElementById("confirm-cancel").onclick = () => dialog.close();
    dialog.onclose = () => opener && opener.focus && document.contains(opener) && opener.focus();
    dialog.showModal();
    reason.focus();
  }

  // --- pages ----------------------------------------------------------------------------------------

  function warnings(list) {
    if (!list || !list.length) return null;
    return h("section", { class: "warnings", role: "alert", "aria-label": "Warnings" },
      h("strong", {}, h("span", { "aria-hidden": "true", text: "⚠ " }), "Needs a look"),
      h("ul", {}, list.map((w) => h("li", { text: w }))));
  }

  async function overviewPage() {
    const o = await api("overview");
    const datasets = o.datasets.map((d) => d.dataset);
    const statuses = ["valid", "invalid", "duplicate", "revoked", "unroutable", "missing"];
    const byStatus = statuses
      .map((s, i) => series(i, s, o.datasets.map((d) => d.by_status[s] || 0), { borderDash: [] }))
      .filter((s) => s.data.some((v) => v));
    const pending = o.models.reduce((n, m) => n + m.pending_approval.length, 0);
    const dlq = o.queues.reduce((n, q) => n + (q.dlq_depth || 0), 0);
    return [
      h("h1", { text: "Overview" }),
      warnings(o.warnings),
      h("div", { class: "cards" },
        h("div", { class: "card" }, h("b", { text: o.datasets.length }), "datasets"),
        h("div", { class: "card" }, h("b", { text: o.uploads_total }), "uploads"),
        h("div", { class: "card" }, h("b", { text: o.models.length }), "models"),
        h("div", { class: "card" }, h("b", { text: pending }), "waiting for approval"),
        h("div", { class: "card" }, h("b", { text: o.runs_in_flight.length }), "runs in flight"),
        h("div", { class: "card" }, h("b", { text: dlq }), "messages in DLQs")),
      h("div", { class: "grid" },
        h("section", {},
          h("h2", { text: "Datasets" }),
          table(null, ["dataset", "contract", "uploads", "by status", "last upload"], o.datasets.map((d) => [
            link(`#/datasets/${enc(d.dataset)}`, d.dataset), d.contract ? "yes" : "no", fmt.num(d.uploads),
            Object.entries(d.by_status).map(([k, v]) => `${k} ${v}`).join(", ") || "–", fmt.time(d.last_upload_at),
          ]), { numeric: [2], empty: "No dataset yet: store a contract (mlops contract put)." }),
          h("h2", { text: "Models" }),
          table(null, ["model", "champion", "versions", "waiting for approval"], o.models.map((m) => [
            link(`#/models/${enc(m.model)}`, m.model), m.champion ? `★ v${m.champion}` : "none",
            fmt.num(m.versions),
            m.pending_approval.length ? h("span", {}, verdict("pending_approval"), " ", m.pending_approval.map((v) => `v${v}`).join(", ")) : "–",
          ]), { numeric: [2], empty: "No model yet." })),
        byStatus.length ? chart("chart-uploads", "Uploads per dataset, by status", {
          type: "bar",
          data: { labels: datasets, datasets: byStatus },
          options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
        }) : h("p", { class: "muted", text: "No uploads to chart yet." })),
      h("h2", { text: "Recent uploads" }),
      uploadsTable(o.uploads, true),
      h("h2", { text: "Runs in flight" }),
      runsTable(o.runs_in_flight, "No run in flight."),
      h("div", { class: "grid" },
        h("section", {},
          h("h2", { text: "Queues and dead-letter queues" }),
          table(null, ["queue", "visible", "in flight", "DLQ depth"], o.queues.map((q) => [
            h("code", { text: q.queue }), fmt.num(q.visible), fmt.num(q.in_flight),
            q.dlq_depth ? h("span", { class: "verdict bad" }, `⚠ ${q.dlq_depth} (not empty)`) : h("span", { class: "verdict ok", text: "✓ 0" }),
          ]), { numeric: [1, 2] })),
        h("section", {},
          h("h2", { text: "Alarms" }),
          table(null, ["alarm", "state", "since"], o.alarms.map((a) => [
            h("span", { title: a.description || "" }, h("code", { text: a.name })), verdict(a.state), fmt.time(a.since),
          ]), { empty: "No alarm is defined for this stage." }))),
    ];
  }

  function uploadsTable(rows, withDataset) {
    const head = ["recorded", ...(withDataset ? ["dataset"] : []), "upload", "file", "status", "rows", "new", "drift", "issue codes"];
    return table(null, head, rows.map((u) => [
      fmt.time(u.recorded_at),
      ...(withDataset ? [u.dataset ? link(`#/datasets/${enc(u.dataset)}`, u.dataset) : "–"] : []),
      link(`#/uploads/${enc(u.upload_id)}`, u.upload_id),
      h("span", { class: "mono", text: String(u.key || "").split("/").pop() }),
      verdict(u.revoked_at ? "revoked" : u.status),
      fmt.num(u.rows), fmt.num(u.new_rows), verdict(u.drift), fmt.list(u.issue_codes),
    ]), { numeric: withDataset ? [5, 6] : [4, 5], empty: "No upload yet." });
  }

  function runsTable(runs, empty) {
    return table(null, ["run", "dataset", "status", "trigger", "started", "seconds", "model", "metric", "capacity"], runs.map((r) => [
      h("code", { text: r.run_id }), r.dataset || "–", verdict(r.status),
      (r.trigger && r.trigger.kind) || "–", fmt.time(r.created_at), fmt.num(r.seconds, 1),
      r.family || "–", r.primary_value !== undefined && r.primary_value !== null ? `${r.primary_metric} ${fmt.num(r.primary_value, 4)}` : "–",
      r.capacity || "–",
    ]), { numeric: [5], empty });
  }

  async function datasetPage(name) {
    const [doc, contract] = await Promise.all([
      api(`datasets/${enc(name)}/uploads`),
      api(`datasets/${enc(name)}/contract`).catch((e) => (e.status === 404 ? null : Promise.reject(e))),
    ]);
    const drift = doc.drift;
    const names = Object.keys(drift.features);
    // The features that moved most (largest PSI seen), so the chart stays readable.
    const top = names
      .map((f) => [f, Math.max(...drift.features[f].map((v) => (v === null ? 0 : v)))])
      .sort((a, b) => b[1] - a[1]).slice(0, 8).map(([f]) => f);
    const labels = drift.uploads.map((u) => `${fmt.short(u.recorded_at)} ${u.upload_id.slice(0, 6)}`);
    return [
      h("p", { class: "crumbs" }, link("#/", "Overview"), " › dataset"),
      h("h1", { text: `Dataset ${doc.dataset}` }),
      h("h2", { text: "Per-feature drift over time" }),
      drift.uploads.length
        ? chart("chart-drift", `PSI of the ${top.length} features that moved most, per upload (oldest first)`, {
          type: "line",
          data: { labels, datasets: top.map((f, i) => series(i, f, drift.features[f])) },
          options: { scales: { y: { beginAtZero: true, title: { display: true, text: "PSI (0.25 and more: drifted by the default rule)" } } } },
        }, true)
        : h("p", { class: "muted", text: "No upload with a drift report yet (the first valid upload is the reference)." }),
      drift.uploads.length
        ? table("Drifted features per upload", ["upload", "verdict", "drifted features"], drift.uploads.map((u, i) => [
          link(`#/uploads/${enc(u.upload_id)}`, u.upload_id), verdict(u.verdict),
          names.filter((f) => drift.drifted[f][i]).join(", ") || "none",
        ]))
        : null,
      h("h2", { text: `Uploads (${doc.total})` }),
      uploadsTable(doc.uploads, false),
      h("h2", { text: "Contract" }),
      contract ? contractView(contract) : h("p", { class: "muted", text: "No contract stored." }),
    ];
  }

  function contractView(c) {
    const training = c.training || {};
    return [
      facts([
        ["version", String(c.version)], ["target", c.target || "–"], ["task", c.task || "–"], ["row id", c.row_id || "–"],
        c.description ? ["description", c.description] : null,
        ["model", training.model ? `${training.model.family} ${JSON.stringify(training.model.params || {})}` : "–"],
        ["primary metric", training.primary_metric || "–"],
        ["promotion", c.promotion ? JSON.stringify(c.promotion) : "–"],
        ["drift thresholds", c.drift ? JSON.stringify(c.drift) : "–"],
      ]),
      table(null, ["column", "type", "classification", "nullable", "range / allowed"], (c.columns || []).map((col) => [
        h("code", { text: col.name }), col.type, col.classification || "–", col.nullable ? "yes" : "no",
        col.allowed ? col.allowed.join(", ") : [col.min, col.max].some((v) => v !== undefined && v !== null) ? `${col.min ?? "–"} … ${col.max ?? "–"}` : "–",
      ])),
    ];
  }

  async function uploadPage(id) {
    const [doc, lineage] = await Promise.all([
      api(`uploads/${enc(id)}/report`),
      api(`uploads/${enc(id)}/models`).catch(() => null),
    ]);
    const u = doc.upload;
    const r = doc.report;
    const drift = r.drift || {};
    const features = Object.entries(drift.features || {});
    const columns = Object.entries(r.column_statistics || {});
    return [
      h("p", { class: "crumbs" }, link("#/", "Overview"), " › ", u.dataset ? link(`#/datasets/${enc(u.dataset)}`, `dataset ${u.dataset}`) : "dataset", " › upload"),
      h("h1", { text: `Upload ${u.upload_id}` }),
      facts([
        ["file", h("code", { text: `s3://${u.bucket}/${u.key}` })],
        ["status", verdict(u.revoked_at ? "revoked" : u.status)],
        ["rows", `${fmt.num(u.rows)} (${fmt.num(u.new_rows)} new, ${fmt.num(u.repeated_rows)} seen before)`],
        ["drift", verdict(u.drift)],
        ["recorded", fmt.time(u.recorded_at)],
        ["sha256", h("code", { text: u.sha256 || "–" })],
        u.output_key ? ["copy", h("code", { text: u.output_key })] : null,
        u.revoked_at ? ["revoked", `${fmt.time(u.revoked_at)} by ${u.revoked_by}: ${u.revoked_reason}`] : null,
      ]),
      h("h2", { text: `Issues (${(r.issues || []).length})` }),
      table(null, ["code", "column", "count", "first row", "what", "fix"], (r.issues || []).map((i) => [
        h("code", { text: i.code }), i.column ?? "–", fmt.num(i.count), fmt.num(i.row), i.message, i.fix || "–",
      ]), { numeric: [2, 3], empty: "No issue: every check passed." }),
      h("h2", { text: "Drift per column" }),
      features.length
        ? [
          chart("chart-upload-drift", `PSI per feature against the reference (verdict: ${drift.verdict})`, {
            type: "bar",
            data: {
              labels: features.map(([f]) => f),
              datasets: [
                series(1, "drifted", features.map(([, v]) => (v.drifted ? v.psi : null)), { borderDash: [] }),
                series(0, "stable", features.map(([, v]) => (v.drifted ? null : v.psi)), { borderDash: [] }),
              ],
            },
            options: {
              indexAxis: "y",
              scales: { x: { stacked: true, beginAtZero: true, title: { display: true, text: "PSI" } }, y: { stacked: true, ticks: { autoSkip: false } } },
            },
          }, Math.max(280, 22 * features.length + 80)),
          table(null, ["feature", "verdict", "PSI", "KS p-value", "why"], features.map(([f, v]) => [
            h("code", { text: f }), verdict(v.verdict || (v.drifted ? "drifted" : "stable")),
            fmt.num(v.psi, 3), v.ks_pvalue === undefined || v.ks_pvalue === null ? "–" : Number(v.ks_pvalue).toExponential(1),
            (v.reasons || []).join("; ") || "–",
          ]), { numeric: [2, 3] }),
        ]
        : h("p", { class: "muted" }, `No per-column drift: ${drift.verdict ? String(drift.verdict).replace(/_/g, " ") : "not computed"}. `, (drift.reasons || []).join("; ")),
      h("h2", { text: "Column statistics" }),
      columnStats(columns),
      h("h2", { text: "Model versions trained or evaluated on it" }),
      lineage && (lineage.versions || []).length
        ? table(null, ["model", "version", "status", "trained on it", "evaluated on it"], lineage.versions.map((v) => [
          link(`#/models/${enc(lineage.model)}`, lineage.model), `v${v.version}`, verdict(v.tainted ? "tainted" : v.status),
          v.trained ? "yes" : "no", v.evaluated ? "yes" : "no",
        ]))
        : h("p", { class: "muted", text: "None yet." }),
    ];
  }

  function columnStats(columns) {
    if (!columns.length) return h("p", { class: "muted", text: "No statistics (the file could not be read as a table)." });
    const keys = ["type", "classification", "count", "nulls", "null_fraction", "distinct", "min", "max", "mean", "std"];
    const present = keys.filter((k) => columns.some(([, s]) => s && s[k] !== undefined));
    return table(null, ["column", ...present], columns.map(([name, s]) => [
      h("code", { text: name }),
      ...present.map((k) => (typeof s[k] === "number" && !Number.isInteger(s[k]) ? fmt.num(s[k], 4) : s[k] ?? "–")),
    ]), { numeric: present.map((_, i) => i + 1).filter((i) => !["type", "classification"].includes(present[i - 1])) });
  }

  async function modelPage(name) {
    const model = await api(`models/${enc(name)}`);
    const [audit, rollout, monitoring, versions] = await Promise.all([
      api(`models/${enc(name)}/audit`),
      api(`models/${enc(name)}/rollout`).catch(() => null),
      api(`models/${enc(name)}/monitoring`).catch(() => null),
      Promise.all(model.versions.map((v) => api(`models/${enc(name)}/versions/${enc(v.version)}`).catch(() => null))),
    ]);
    const approver = isApprover();
    const summaries = model.versions;
    const champion = model.champion;
    const metricName = (summaries.find((v) => v.compared) || {}).compared?.metric || "primary metric";
    const entries = audit.entries || [];
    const timeline = entries.filter((e) => e.to_version !== undefined && e.to_version !== null);
    const parts = [
      h("p", { class: "crumbs" }, link("#/", "Overview"), " › model"),
      h("h1", { text: `Model ${model.model}` }),
      facts([
        ["champion", champion ? `★ v${champion}` : "none"],
        ["challenger", model.challenger ? `v${model.challenger}` : "none"],
        ["versions", String(summaries.length)],
      ]),
      approver && champion
        ? h("div", { class: "actions", style: null }, action("Roll back", `Bring back the champion before v${champion} of ${name}.`, `models/${enc(name)}/rollback`))
        : null,
      h("h2", { text: "Versions" }),
      table(null, ["version", "status", "model", metricName, "champion on the same rows", "gate decision", "reason", ...(approver ? ["actions"] : [])],
        summaries.slice().reverse().map((v) => [
          h("strong", { text: `v${v.version}${v.version === champion ? " ★" : ""}` }),
          verdict(v.tainted ? "tainted" : v.version === champion ? "champion" : v.status),
          v.family || "–",
          metricOf(v, "candidate"),
          metricOf(v, "champion"),
          verdict(v.decision),
          h("span", {}, v.reason || "–", v.status_reason && v.status_reason !== v.reason ? h("span", { class: "muted" }, ` (${v.status_by}: ${v.status_reason})`) : null),
          ...(approver ? [v.status === "pending_approval"
            ? h("div", { class: "actions" },
              action(`Approve v${v.version}`, `Approve v${v.version} of ${name}: it becomes the champion (or starts a rollout, if the contract says so).`, `models/${enc(name)}/versions/${enc(v.version)}/approve`),
              action(`Reject v${v.version}`, `Reject v${v.version} of ${name}.`, `models/${enc(name)}/versions/${enc(v.version)}/reject`))
            : "–"] : []),
        ])),
      metricsChart(summaries, metricName),
      h("h2", { text: "Gate decisions" }),
      versions.filter(Boolean).slice().reverse().map((v) => gatesView(v)),
      h("h2", { text: "Champion timeline" }),
      timeline.length
        ? chart("chart-champions", "Champion version over time (from the audit trail)", {
          type: "line",
          data: {
            labels: timeline.map((e) => fmt.short(e.at || e.recorded_at)),
            datasets: [series(0, "champion version", timeline.map((e) => e.to_version), { stepped: true })],
          },
          options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "version" } } } },
        })
        : h("p", { class: "muted", text: "No champion yet." }),
      h("h2", { text: "Audit trail" }),
      table(null, ["#", "when", "who", "action", "from", "to", "reason"], entries.slice().reverse().map((e) => [
        fmt.num(e.seq), fmt.time(e.at || e.recorded_at), e.who || "–", e.action || "–",
        e.from_version ? `v${e.from_version}` : "–", e.to_version ? `v${e.to_version}` : "–", e.reason || "–",
      ]), { numeric: [0], empty: "No entry yet." }),
      h("h2", { text: "Lineage: the data each version was trained on" }),
      lineageTable(versions.filter(Boolean)),
      h("h2", { text: "Rollout" }),
      rolloutView(name, rollout, approver),
      h("h2", { text: "Monitoring (last 24 hours)" }),
      monitoringView(monitoring),
    ];
    return parts;
  }

  function gatesView(v) {
    const g = v.gates || {};
    return h("details", { class: "panel" },
      h("summary", {}, `v${v.version}: `, verdict(g.decision), ` ${g.reason || ""}`),
      table(null, ["gate", "result", "why"], (g.gates || []).map((gate) => [
        gate.name, verdict(gate.passed ? "passed" : "failed"), gate.reason || "–",
      ]), { empty: "No gate recorded yet." }));
  }

  function metricOf(summary, side) {
    const c = summary.compared;
    if (c && c[side] !== undefined && c[side] !== null) return fmt.num(typeof c[side] === "object" ? c[side].value : c[side], 4);
    if (side === "candidate" && summary.primary_value !== undefined && summary.primary_value !== null) return fmt.num(summary.primary_value, 4);
    return "–";
  }

  function metricsChart(summaries, metricName) {
    const labels = summaries.map((v) => `v${v.version}`);
    const own = summaries.map((v) => Number(metricOf(v, "candidate")) || null);
    const champ = summaries.map((v) => Number(metricOf(v, "champion")) || null);
    if (!own.some((v) => v !== null)) return null;
    return chart("chart-metrics", `${metricName}: each version and the champion it was compared with, on the same holdout rows`, {
      type: "bar",
      data: { labels, datasets: [series(0, "version", own, { borderDash: [] }), series(1, "champion at the time", champ, { borderDash: [] })] },
      options: { scales: { y: { title: { display: true, text: metricName } } } },
    });
  }

  function lineageTable(versions) {
    const rows = versions.map((v) => {
      const uploads = uploadsOf(v);
      return [
        `v${v.version}`, h("code", { text: v.run_id || "–" }),
        uploads.length ? h("span", {}, uploads.map((id, i) => [i ? ", " : "", link(`#/uploads/${enc(id)}`, id.slice(0, 10))])) : "–",
        h("code", { text: (v.data_hash || (v.manifest && v.manifest.data_hash) || "–").slice(0, 16) }),
      ];
    });
    return table(null, ["version", "run", "uploads", "data hash"], rows);
  }

  // The upload ids a version's recorded training data names (wherever the registry keeps them).
  function uploadsOf(v) {
    const found = new Set();
    const walk = (x, depth) => {
      if (!x || depth > 5) return;
      if (Array.isArray(x)) return x.forEach((y) => walk(y, depth + 1));
      if (typeof x === "object") {
        for (const [k, y] of Object.entries(x)) {
          if ((k === "upload_id" || k === "upload") && typeof y === "string" && /^[0-9a-f]{24}$/.test(y)) found.add(y);
          else if (k === "uploads" && Array.isArray(y)) y.forEach((id) => typeof id === "string" && /^[0-9a-f]{24}$/.test(id) && found.add(id));
          else walk(y, depth + 1);
        }
      }
    };
    (v.trained_on || []).forEach((id) => found.add(id));
    if (!found.size) walk(v.lineage || v, 0);
    return [...found];
  }

  function rolloutView(name, doc, approver) {
    const r = doc && doc.rollout;
    if (!r) return h("p", { class: "muted", text: "No rollout yet (a contract's promotion.rollout, or mlops models rollout, starts one)." });
    const steps = (r.schedule && r.schedule.steps) || [];
    const share = Number(r.share || 0);
    const live = r.status === "active" || r.status === "paused";
    return [
      facts([
        ["rollout", `${r.id} of v${r.candidate}`], ["status", verdict(r.status)],
        ["step", `${Number(r.step || 0) + 1} of ${steps.length}`],
        ["share", h("span", {}, shareBar(share), ` ${share}% of the traffic`)],
        live ? ["since", fmt.time(r.step_started_at)] : ["ended", `${fmt.time(r.ended_at)}: ${r.end_reason || "–"}`],
      ]),
      approver && live
        ? h("div", { class: "actions" },
          r.status === "active" ? action("Pause rollout", `Hold the rollout of v${r.candidate} at ${share}%.`, `models/${enc(name)}/rollout/pause`) : null,
          r.status === "paused" ? action("Resume rollout", `Let the rollout of v${r.candidate} step again.`, `models/${enc(name)}/rollout/resume`) : null,
          action("Abort rollout", `End the rollout of v${r.candidate}: all traffic back to the champion.`, `models/${enc(name)}/rollout/abort`))
        : null,
      table(null, ["when", "event", "who", "detail"], ((doc && doc.events) || []).slice(-20).reverse().map((e) => [
        fmt.time(e.at), e.kind || e.action || "–", e.who || "–", e.reason || e.detail || "–",
      ])),
    ];
  }

  function shareBar(share) {
    const fill = h("span", {});
    fill.style.width = `${Math.max(0, Math.min(100, share))}%`; // CSSOM: allowed by the page's CSP
    return h("span", { class: "bar", role: "img", "aria-label": `${share}% of the traffic` }, fill);
  }

  function monitoringView(doc) {
    const windows = (doc && doc.windows) || [];
    if (!windows.length) return h("p", { class: "muted", text: "No monitoring window in the last 24 hours (the hourly monitor reports closed windows of captured predictions)." });
    const labels = windows.map((w) => fmt.short(w.start || w.window_start));
    const volume = windows.map((w) => (w.volume && (w.volume.requests ?? w.volume.count)) ?? w.requests ?? null);
    return [
      chart("chart-monitoring", "Predictions per window", {
        type: "bar", data: { labels, datasets: [series(0, "requests", volume, { borderDash: [] })] },
        options: { plugins: { legend: { display: false } } },
      }),
      table(null, ["breach", "when", "what"], ((doc && doc.breaches) || []).map((b) => [b.kind || b.check || "–", fmt.time(b.start || b.at), b.reason || b.message || "–"]), { empty: "No breach." }),
    ];
  }

  async function runsPage() {
    const doc = await api("runs");
    const runs = (doc.runs || []).slice().sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    const done = runs.filter((r) => r.seconds !== undefined && r.seconds !== null).slice().reverse();
    return [
      h("p", { class: "crumbs" }, link("#/", "Overview"), " › runs"),
      h("h1", { text: "Runs and batch jobs" }),
      done.length
        ? chart("chart-runs", "Training time per run, seconds (oldest first)", {
          type: "bar",
          data: { labels: done.map((r) => `${fmt.short(r.created_at)} ${r.run_id.slice(0, 6)}`), datasets: [series(0, "seconds", done.map((r) => r.seconds), { borderDash: [] })] },
          options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, title: { display: true, text: "seconds" } } } },
        })
        : null,
      h("h2", { text: `Training runs (${runs.length})` }),
      runsTable(runs, "No run yet."),
      h("h2", { text: "A batch job" }),
      batchLookup(),
    ];
  }

  function batchLookup() {
    const out = h("div", {});
    const input = h("input", { id: "batch-id", name: "job", required: true, autocomplete: "off", size: 40 });
    const form = h("form", {
      class: "panel",
      onsubmit: async (event) => {
        event.preventDefault();
        out.replaceChildren(h("p", { class: "muted", text: "Loading…" }));
        try {
          out.replaceChildren(batchView(await api(`batch-jobs/${enc(input.value.trim())}`)));
        } catch (e) {
          out.replaceChildren(h("p", { class: "error", text: e.message }));
        }
      },
    }, h("label", { for: "batch-id", text: "Batch job id (printed by mlops batch submit)" }), " ", input, " ", h("button", { type: "submit", text: "Show" }));
    return [form, out];
  }

  function batchView(job) {
    const total = Number(job.shards_total || job.shards || 0);
    const done = Number(job.shards_done || 0);
    return facts(Object.entries(job).filter(([, v]) => typeof v !== "object" || v === null).map(([k, v]) => [k, k === "status" ? verdict(v) : String(v)])
      .concat(total ? [["progress", `${done} of ${total} shards (${Math.round((100 * done) / total)}%)`]] : []));
  }

  // --- sign-in, routing -----------------------------------------------------------------------------

  function signInPage(message) {
    const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, "aria-describedby": "token-help" });
    const error = h("p", { class: "error", role: "alert", id: "signin-error", text: message || "" });
    const form = h("form", {
      class: "signin panel",
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        const t = input.value.trim();
        try {
          session = await api("session", { token: t });
          sessionStorage.setItem(TOKEN_KEY, t);
          await render();
        } catch (e) {
          error.textContent = e.status === 401 || e.status === 403 ? "That token was refused (unknown, revoked or expired)." : e.message;
          input.focus();
        }
      },
    },
    h("h1", { text: "Sign in" }),
    h("label", { for: "token", text: "API token" }),
    input,
    h("p", { id: "token-help", class: "muted" }, "A token from ", h("code", { text: "mlops tokens create NAME --role viewer" }),
      " (viewers read; approvers can also approve, reject, roll back and steer rollouts). It is kept in this tab only."),
    error,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: "Sign in" })));
    return [form];
  }

  function showSession() {
    const signedIn = !!session;
    document.getElementById("nav").hidden = !signedIn;
    document.getElementById("sign-out").hidden = !signedIn;
    document.getElementById("who").textContent = signedIn ? `Signed in as ${session.name} (${session.role})` : "";
  }

  let generation = 0; // the newest render wins: an older one that finishes later is dropped

  async function render() {
    const mine = ++generation;
    clearCharts();
    if (!token()) session = null;
    if (token() && !session) {
      try {
        session = await api("session");
      } catch (e) {
        sessionStorage.removeItem(TOKEN_KEY);
        session = null;
      }
    }
    showSession();
    if (!session) {
      main.replaceChildren(...signInPage());
      document.getElementById("token").focus();
      return;
    }
    const route = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    const pages = {
      "": () => overviewPage(),
      datasets: () => datasetPage(route[1]),
      uploads: () => uploadPage(route[1]),
      models: () => modelPage(route[1]),
      runs: () => runsPage(),
    };
    const page = pages[route[0]] || pages[""];
    main.replaceChildren(h("p", { class: "loading", text: "Loading…" }));
    main.setAttribute("aria-busy", "true");
    try {
      const content = await page();
      if (mine !== generation) return;
      main.replaceChildren(...[content].flat(Infinity).filter(Boolean));
      document.title = `${(main.querySelector("h1") || {}).textContent || "Console"} · serverless-mlops`;
    } catch (e) {
      if (mine !== generation) return;
      if (e.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        session = null;
        main.replaceChildren(...signInPage("Your token is no longer accepted: sign in again."));
      } else {
        main.replaceChildren(h("h1", { text: "Could not load this page" }), h("p", { class: "error", role: "alert", text: e.message }), link("#/", "Back to the overview"));
      }
    } finally {
      if (mine !== generation) return; // eslint-disable-line no-unsafe-finally
      main.removeAttribute("aria-busy");
      main.dataset.page = route[0] || "overview";
      main.dataset.ready = String(Date.now());
    }
  }

  document.getElementById("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    session = null;
    location.hash = "#/";
    render();
  });
  window.addEventListener("hashchange", () => {
    render().then(() => {
      main.focus({ preventScroll: true }); // a screen reader starts at the new page
      window.scrollTo(0, 0);
    });
  });
  render();
})();
