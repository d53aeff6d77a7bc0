/* 议事堂 联络员看板: sign in, read /api/v1/stats/overview, draw the figures. No libraries, no CDN. */
"use strict";

(function () {
  const API = "/api/v1";
  const KEY = { access: "yst.access", refresh: "yst.refresh", user: "yst.user" };
  const RATES = [
    { field: "response_rate", label: "答复率", num: ["responded_in_time"], den: "response_base", color: "#2563eb" },
    { field: "meeting_rate", label: "见面率", num: ["met"], den: "accepted", color: "#0d9488" },
    { field: "closure_rate", label: "办结率", num: ["closed"], den: "accepted", color: "#7c3aed" },
    { field: "satisfaction_rate", label: "满意率", num: ["satisfied", "basically_satisfied"], den: "rated", color: "#ea580c" },
  ];
  const GROUP_LABEL = { township: "镇街", studio: "委员工作室", category: "类别", month: "月份" };
  const STATUS = {
    submitted: "待受理", accepted: "已受理", scheduled: "待协商", consulted: "已协商", in_progress: "办理中",
    resolved: "已办结待评价", closed: "已关闭", rejected: "不予受理", withdrawn: "已撤回",
  };
  const ACTIVE = "submitted,accepted,scheduled,consulted,in_progress,resolved";
  const LEVEL = { grassroots: "村（社区）", township: "镇街", district: "区级" };
  const CATEGORY = {
    community_facilities: "社区设施", traffic: "交通出行", education: "教育", elderly_care: "养老服务",
    environment: "环境卫生", safety: "公共安全", health: "医疗卫生", employment: "就业创业", other: "其他",
  };
  const ACTION = {
    submit: "提交", accept: "受理", reject: "不予受理", escalate: "上报", start: "开始办理", resolve: "办结",
    withdraw: "撤回", supervise: "督办", comment: "留言", close: "关闭", approve: "审核通过", duplicate: "并案",
    feedback: "评价", schedule: "安排协商", unschedule: "取消协商", consult: "协商",
  };
  const RATING = { satisfied: "满意", basically_satisfied: "基本满意", unsatisfied: "不满意" };

  const state = { region: "", from: "", to: "", groupBy: "township", rank: "", data: null, trend: null, regionsFor: null };
  const $ = (id) => document.getElementById(id);

  // --- small DOM helpers (no innerHTML with data: text goes in as text) -------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }
  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Rates come as fractions with 4 decimals; shown as percent with one decimal, rounded half up.
  function percent(rate) {
    if (rate === null || rate === undefined) return "—";
    const tenThousandths = Math.round(rate * 10000);
    const tenths = Math.floor((tenThousandths + 5) / 10);
    return (tenths / 10).toFixed(1) + "%";
  }
  function fraction(row, rate) {
    const top = rate.num.reduce((sum, field) => sum + row[field], 0);
    return `${top}/${row[rate.den]}`;
  }
  function dateOnly(iso) { return iso ? iso.slice(0, 10) : "—"; }
  function dateTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }
  function monthLabel(month, first) {
    const [year, number] = month.split("-");
    return first || number === "01" ? `${year.slice(2)}年${Number(number)}月` : `${Number(number)}月`;
  }
  function shortName(name) { return name.replace(/委员工作室$/, ""); }

  // --- tokens and API -----------------------------------------------------------------------------
  function signedIn() { return Boolean(sessionStorage.getItem(KEY.access)); }
  function keep(pair) {
    sessionStorage.setItem(KEY.access, pair.access_token);
    sessionStorage.setItem(KEY.refresh, pair.refresh_token);
    sessionStorage.setItem(KEY.user, JSON.stringify(pair.user));
  }
  function forget() { Object.values(KEY).forEach((k) => sessionStorage.removeItem(k)); }
  function user() { try { return JSON.parse(sessionStorage.getItem(KEY.user)); } catch (e) { return null; } }

  async function refresh() {
    const token = sessionStorage.getItem(KEY.refresh);
    if (!token) return false;
    const res = await fetch(API + "/auth/refresh", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ refresh_token: token }),
    });
    if (!res.ok) return false;
    keep(await res.json());
    return true;
  }

  async function api(path, retry = true) {
    const res = await fetch(API + path, { headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY.access) } });
    if (res.status === 401 && retry && await refresh()) return api(path, false);
    if (res.status === 401) { forget(); route(); throw new Error("登录已过期，请重新登录"); }
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      throw new Error(body.message || `请求失败（${res.status}）`);
    }
    return res;
  }

  function query(extra) {
    const params = new URLSearchParams();
    if (state.region) params.set("region", state.region);
    if (state.from) params.set("from", state.from);
    if (state.to) params.set("to", state.to);
    for (const [key, value] of Object.entries(extra || {})) if (value) params.set(key, value);
    return params.toString();
  }

  // --- sign in ------------------------------------------------------------------------------------
  async function login(event) {
    event.preventDefault();
    const error = $("login-error");
    error.hidden = true;
    $("login-submit").disabled = true;
    try {
      const res = await fetch(API + "/auth/password-login", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: $("username").value.trim(), password: $("password").value }),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(body.message || "登录失败");
      if (!body.user.roles.some((r) => r === "coordinator" || r === "admin")) {
        throw new Error("该账号不是联络员或管理员，无法查看看板");
      }
      keep(body);
      $("password").value = "";
      route();
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    } finally {
      $("login-submit").disabled = false;
    }
  }

  // --- loading ------------------------------------------------------------------------------------
  function setStatus(text, isError) {
    const status = $("status");
    status.textContent = text || "";
    status.classList.toggle("error", Boolean(isError));
  }

  let loading = 0;  // only the latest request draws: answers to earlier ones are dropped

  async function load() {
    const ticket = ++loading;
    setStatus("正在加载……");
    try {
      const [overview, trend] = await Promise.all([
        api("/stats/overview?" + query({ group_by: state.groupBy, rank: state.rank })).then((r) => r.json()),
        api("/stats/overview?" + query({ group_by: "month" })).then((r) => r.json()),
      ]);
      if (ticket !== loading) return;
      state.data = overview;
      state.trend = trend;
      // the server's defaults (scope, this year to today) become the form's values
      state.region = state.region || overview.region.code;
      state.from = state.from || overview.from;
      state.to = state.to || overview.to;
      $("from").value = overview.from;
      $("to").value = overview.to;
      await regions(overview.region);
      render();
      setStatus(`数据截至 ${dateTime(overview.generated_at)}`);
      lists(ticket);
    } catch (e) {
      if (ticket === loading) setStatus(e.message, true);
    }
  }

  async function regions(region) {
    // The scope and the townships under it; a township coordinator gets only their own.
    if (state.regionsFor) return;
    const select = $("region");
    select.replaceChildren(el("option", { value: region.code, text: region.name }));
    state.regionsFor = region.code;
    if (region.kind !== "district") return;
    const children = await api(`/regions?parent=${encodeURIComponent(region.code)}&page_size=100`).then((r) => r.json());
    for (const child of children) select.append(el("option", { value: child.code, text: "　" + child.name }));
    select.value = state.region;
  }

  async function lists(ticket) {
    for (const [flag, listId, countId] of [["overdue", "overdue-list", "overdue-count"], ["supervised", "supervised-list", "supervised-count"]]) {
      const list = $(listId);
      try {
        // still being handled (督办 of a closed issue is history): newest first, the first ten
        const res = await api(`/issues?${flag}=1&status=${ACTIVE}&region=${encodeURIComponent(state.region)}&page_size=10`);
        const items = await res.json();
        if (ticket !== loading) return;
        const pages = JSON.parse(res.headers.get("X-Pagination") || "{}");
        $(countId).textContent = `共 ${pages.total ?? items.length} 件${items.length < (pages.total ?? 0) ? `，显示最新 ${items.length} 件` : ""}`;
        list.replaceChildren(...(items.length ? items.map(issueItem) : [el("li", { class: "empty", text: "暂无" })]));
      } catch (e) {
        list.replaceChildren(el("li", { class: "error", text: e.message }));
      }
    }
  }

  function issueItem(issue) {
    return el("li", {},
      el("a", { href: `#issue/${issue.id}` },
        el("span", { class: "num", text: issue.number }),
        el("span", { class: "title", text: issue.title })),
      el("span", { class: `tag s-${issue.status}`, text: STATUS[issue.status] || issue.status }),
      el("span", { class: "due", text: issue.due_at ? `期限 ${dateOnly(issue.due_at)}` : "" }));
  }

  // --- drawing ------------------------------------------------------------------------------------
  function render() {
    const data = state.data;
    $("scope-name").textContent = data.region.name;
    $("scope-period").textContent = ` ${data.from} 至 ${data.to}`;
    $("tz").textContent = data.time_zone;
    renderKpis(data.totals);
    renderRateCharts(data);
    renderTrend(state.trend);
    renderTable(data);
  }

  function renderKpis(totals) {
    const cards = [
      el("div", { class: "kpi", "data-field": "received" },
        el("span", { class: "label", text: "收到议题" }), el("span", { class: "value", text: totals.received }),
        el("span", { class: "detail", text: `待答复 ${totals.response_pending}` })),
      ...RATES.map((rate) => el("div", { class: "kpi rate", "data-field": rate.field },
        el("span", { class: "label", text: rate.label }),
        el("span", { class: "value", text: percent(totals[rate.field]) }),
        el("span", { class: "detail", text: fraction(totals, rate) }),
        meter(totals[rate.field], rate.color))),
      small("median_days_to_close", "办结天数中位数", totals.median_days_to_close === null ? "—" : totals.median_days_to_close.toFixed(1), "天"),
      small("overdue_open", "超期未办结", totals.overdue_open, "件", totals.overdue_open > 0 ? "warn" : ""),
      small("escalated", "上报", totals.escalated, "件"),
      small("supervised", "督办", totals.supervised, "件"),
    ];
    $("kpis").replaceChildren(...cards);
  }

  function small(field, label, value, unit, extra) {
    return el("div", { class: `kpi small ${extra || ""}`, "data-field": field },
      el("span", { class: "label", text: label }),
      el("span", { class: "value", text: value }, el("small", { text: " " + unit })));
  }

  function meter(rate, color) {
    const box = svg("svg", { class: "meter", viewBox: "0 0 100 6", preserveAspectRatio: "none", "aria-hidden": "true" });
    box.append(svg("rect", { x: 0, y: 0, width: 100, height: 6, rx: 3, fill: "#e5e7eb" }));
    if (rate !== null) box.append(svg("rect", { x: 0, y: 0, width: Math.max(rate * 100, 0.5), height: 6, rx: 3, fill: color }));
    return box;
  }

  function renderRateCharts(data) {
    const holder = $("rate-charts");
    holder.replaceChildren();
    const label = GROUP_LABEL[data.group_by];
    for (const rate of RATES) {
      const box = el("div", { class: "chart" });
      const card = el("section", { class: "card", "data-rate": rate.field },
        el("h3", {}, `${rate.label}`, el("small", { class: "muted", text: ` 按${label}` })), box);
      holder.append(card);
      barChart(box, data.rows, rate);
    }
  }

  function barChart(box, rows, rate) {
    const width = Math.max(box.clientWidth || 300, 260);
    const labelWidth = Math.min(120, Math.round(width * 0.34));
    const valueWidth = 58;
    const barHeight = 18, gap = 8, top = 4;
    const height = top + rows.length * (barHeight + gap) + 18;
    const plot = width - labelWidth - valueWidth;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": `${rate.label}分组柱状图` });
    for (const mark of [0, 0.5, 1]) {
      const x = labelWidth + plot * mark;
      chart.append(svg("line", { x1: x, x2: x, y1: top - 2, y2: height - 16, stroke: "#e5e7eb" }));
      chart.append(svg("text", { x, y: height - 4, "text-anchor": "middle", class: "axis" }, `${mark * 100}%`));
    }
    rows.forEach((row, i) => {
      const y = top + i * (barHeight + gap);
      const name = shortName(row.name);
      const shown = name.length > 8 && labelWidth < 110 ? name.slice(0, 7) + "…" : name;
      const text = svg("text", { x: labelWidth - 6, y: y + barHeight * 0.72, "text-anchor": "end", class: "label" }, shown);
      text.append(svg("title", {}, row.name));
      chart.append(text);
      const value = row[rate.field];
      if (value !== null) {
        chart.append(svg("rect", { x: labelWidth, y, width: Math.max(plot * value, 1.5), height: barHeight, rx: 3, fill: rate.color }));
      }
      const detail = value === null ? "—" : percent(value);
      chart.append(svg("text", { x: labelWidth + (value === null ? 4 : plot * value + 4), y: y + barHeight * 0.72, class: "value" }, detail));
    });
    box.replaceChildren(chart);
  }

  function renderTrend(trend) {
    const box = $("trend");
    const rows = trend.rows;
    const width = Math.max(box.clientWidth || 320, 300);
    const height = 220, left = 40, right = 40, top = 12, bottom = 26;
    const plotW = width - left - right, plotH = height - top - bottom;
    const step = plotW / Math.max(rows.length, 1);
    const maxReceived = Math.max(1, ...rows.map((r) => r.received));
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": "月度趋势图" });
    for (const mark of [0, 0.25, 0.5, 0.75, 1]) {
      const y = top + plotH * (1 - mark);
      chart.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, stroke: "#eef0f3" }));
      chart.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, `${mark * 100}%`));
      chart.append(svg("text", { x: width - right + 6, y: y + 4, class: "axis" }, String(Math.round(maxReceived * mark))));
    }
    rows.forEach((row, i) => {
      const h = plotH * row.received / maxReceived;
      chart.append(svg("rect", { x: left + i * step + step * 0.2, y: top + plotH - h, width: step * 0.6, height: h, fill: "#dbe3ee", rx: 2 }));
      const every = Math.ceil(rows.length / Math.max(1, Math.floor(plotW / 44)));
      if (i % every === 0) {
        chart.append(svg("text", { x: left + i * step + step / 2, y: height - bottom + 16, "text-anchor": "middle", class: "axis" },
          monthLabel(row.group, i === 0)));
      }
    });
    for (const rate of RATES) {
      let path = "";
      rows.forEach((row, i) => {
        const value = row[rate.field];
        if (value === null) return;
        const x = left + i * step + step / 2, y = top + plotH * (1 - value);
        path += (path && rows[i - 1] && rows[i - 1][rate.field] !== null ? "L" : "M") + `${x.toFixed(1)},${y.toFixed(1)}`;
        chart.append(svg("circle", { cx: x, cy: y, r: 2.6, fill: rate.color }));
      });
      if (path) chart.append(svg("path", { d: path, fill: "none", stroke: rate.color, "stroke-width": 2 }));
    }
    const legend = el("div", { class: "legend" }, [...RATES, { label: "收到议题", color: "#c8d3e1" }].map((item) => {
      const swatch = el("i");
      swatch.style.background = item.color;  // CSSOM, not an inline style attribute: the CSP allows it
      return el("span", {}, swatch, item.label);
    }));
    box.replaceChildren(chart, legend);
  }

  function renderTable(data) {
    const ranked = Boolean(data.rank);
    const head = [GROUP_LABEL[data.group_by], ...(ranked ? ["名次"] : []), "收到议题",
      ...RATES.map((r) => r.label), "办结天数中位数", "超期未办结", "上报", "督办"];
    const line = (row, tag) => el("tr", { "data-group": row.group ?? "total" },
      el(tag, { class: "name", "data-field": "name", text: row.name }),
      ...(ranked ? [el("td", { "data-field": "rank", text: row.rank ?? "—" })] : []),
      el("td", { "data-field": "received", text: row.received }),
      ...RATES.map((rate) => el("td", { "data-field": rate.field, title: fraction(row, rate) }, percent(row[rate.field]),
        el("small", { text: row[rate.field] === null ? "" : ` ${fraction(row, rate)}` }))),
      el("td", { "data-field": "median_days_to_close", text: row.median_days_to_close === null ? "—" : row.median_days_to_close.toFixed(1) }),
      el("td", { "data-field": "overdue_open", text: row.overdue_open }),
      el("td", { "data-field": "escalated", text: row.escalated }),
      el("td", { "data-field": "supervised", text: row.supervised }));
    $("rows-table").replaceChildren(
      el("thead", {}, el("tr", {}, head.map((h) => el("th", { text: h })))),
      el("tbody", {}, data.rows.map((row) => line(row, "td"))),
      el("tfoot", {}, line(data.totals, "th")));
    $("table-note").textContent = ranked ? `按${RATES.find((r) => r.field === data.rank).label}排名` : `按${GROUP_LABEL[data.group_by]}`;
    const excluded = $("excluded");
    excluded.hidden = !(ranked && data.excluded.length);
    excluded.textContent = ranked && data.excluded.length
      ? `议题少于 ${data.min_issues} 件、未参与排名：` + data.excluded.map((g) => `${g.name}（${g.received} 件）`).join("、")
      : "";
  }

  // --- exports ------------------------------------------------------------------------------------
  async function download(extension) {
    setStatus("正在导出……");
    try {
      const res = await api(`/stats/overview.${extension}?` + query({ group_by: state.groupBy, rank: state.rank }));
      const blob = await res.blob();
      const link = el("a", { href: URL.createObjectURL(blob), download: filenameOf(res, extension) });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
      setStatus("已导出 " + link.download);
    } catch (e) {
      setStatus(e.message, true);
    }
  }

  function filenameOf(res, extension) {
    const header = res.headers.get("Content-Disposition") || "";
    const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(header);
    if (utf8) return decodeURIComponent(utf8[1]);
    const plain = /filename="([^"]+)"/i.exec(header);
    return plain ? plain[1] : `议题统计.${extension}`;
  }

  // --- one issue ----------------------------------------------------------------------------------
  async function showIssue(id) {
    const box = $("issue");
    box.replaceChildren(el("p", { class: "muted", text: "正在加载……" }));
    try {
      const issue = await api(`/issues/${encodeURIComponent(id)}`).then((r) => r.json());
      const studio = await api(`/studios/${issue.studio_id}`).then((r) => r.json()).catch(() => null);
      const facts = [
        ["状态", STATUS[issue.status] || issue.status], ["办理层级", LEVEL[issue.level] || issue.level],
        ["类别", CATEGORY[issue.category] || issue.category], ["工作室", studio ? studio.name : issue.region_code],
        ["提交时间", dateTime(issue.created_at)], ["办理期限", dateTime(issue.due_at)],
        ["超期", issue.overdue ? "是" : "否"], ["督办", issue.supervised ? "是" : "否"],
        ["首次答复", dateTime(issue.first_response_at)], ["首次见面", dateTime(issue.met_at)],
        ["关闭时间", dateTime(issue.closed_at)], ["附议人数", issue.supporters_count],
        ["评价", issue.feedback ? RATING[issue.feedback.rating] || issue.feedback.rating : "—"],
        ["上报次数", issue.escalated_count],
      ];
      box.replaceChildren(...[
        el("p", { class: "muted", text: issue.number }),
        el("h2", { text: issue.title }),
        el("dl", { class: "facts" }, facts.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v })))),
        el("h3", { text: "问题描述" }), el("p", { class: "description", text: issue.description }),
        issue.resolution ? [el("h3", { text: "办理结果" }), el("p", { text: `${issue.resolution.summary}${issue.resolution.owner_unit ? "（" + issue.resolution.owner_unit + "）" : ""}` })] : null,
        el("h3", { text: "办理过程" }),
        el("ol", { class: "timeline" }, issue.timeline.map((entry) => el("li", {},
          el("time", { text: dateTime(entry.at) }),
          el("strong", { text: ` ${ACTION[entry.action] || entry.action}${entry.visit ? "（走访）" : ""}` }),
          el("span", { class: "muted", text: ` ${entry.actor.display_name}` }),
          entry.note ? el("div", { class: "note", text: entry.note }) : null))),
        el("details", {}, el("summary", { text: "原始数据（JSON）" }), el("pre", { text: JSON.stringify(issue, null, 2) })),
      ].flat().filter(Boolean));
    } catch (e) {
      box.replaceChildren(el("p", { class: "error", text: e.message }));
    }
  }

  // --- routing ------------------------------------------------------------------------------------
  function route() {
    const me = signedIn() ? user() : null;
    $("login-view").hidden = Boolean(me);
    $("who").hidden = !me;
    if (!me) {
      $("stats-view").hidden = true;
      $("issue-view").hidden = true;
      Object.assign(state, { data: null, regionsFor: null, region: "", from: "", to: "" });
      return;
    }
    $("who-name").textContent = `${me.display_name}（${me.roles.includes("admin") ? "管理员" : "联络员"}）`;
    const match = /^#issue\/([0-9a-f]{24})$/.exec(location.hash);
    $("issue-view").hidden = !match;
    $("stats-view").hidden = Boolean(match);
    if (match) showIssue(match[1]);
    else if (!state.data) load();
  }

  let resizeTimer = null;
  function redraw() {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (state.data && !$("stats-view").hidden) render(); }, 150);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", async () => {
      const token = sessionStorage.getItem(KEY.access);
      forget();
      route();
      fetch(API + "/auth/logout", { method: "POST", headers: { Authorization: "Bearer " + token } }).catch(() => {});
    });
    $("filters").addEventListener("submit", (e) => e.preventDefault());
    $("group-by").addEventListener("change", (e) => { state.groupBy = e.target.value; load(); });
    $("rank").addEventListener("change", (e) => { state.rank = e.target.value; load(); });
    $("region").addEventListener("change", (e) => { state.region = e.target.value; load(); });
    $("from").addEventListener("change", (e) => { if (e.target.value) { state.from = e.target.value; load(); } });
    $("to").addEventListener("change", (e) => { if (e.target.value) { state.to = e.target.value; load(); } });
    $("export-csv").addEventListener("click", () => download("csv"));
    $("export-xlsx").addEventListener("click", () => download("xlsx"));
    $("back").addEventListener("click", (e) => { e.preventDefault(); location.hash = ""; });
    window.addEventListener("hashchange", route);
    window.addEventListener("resize", redraw);
    route();
  });
})();
