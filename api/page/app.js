// Pom-Bolt status page: plain JS over the public API. Every text from the server is set with textContent.
"use strict";

const PHASES = ["preflight", "generate", "check", "store", "publish", "build", "deploy", "verify"];
const KEY = "pombolt-api-key";
const $ = (id) => document.getElementById(id);
let timer = null;

function key() { return sessionStorage.getItem(KEY); }

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + key() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    let detail = data && data.detail;
    if (Array.isArray(detail)) detail = detail.map((e) => e.loc[e.loc.length - 1] + ": " + e.msg).join("; ");
    throw new Error(detail || response.statusText || "request failed");
  }
  return data;
}

function say(text, isError) {
  const message = $("message");
  message.textContent = text;
  message.className = isError ? "bad" : "";
}

function showKeyState() {
  const have = Boolean(key());
  $("submit-section").hidden = !have;
  $("projects-section").hidden = !have;
  $("forget-key").hidden = !have;
  $("api-key").required = !have;
  if (have) { refresh(); if (!timer) timer = setInterval(refresh, 1000); }
  else if (timer) { clearInterval(timer); timer = null; }
}

function setLink(anchor, url) {
  if (url && /^https?:\/\//.test(url)) { anchor.href = url; anchor.hidden = false; }
  else { anchor.removeAttribute("href"); anchor.hidden = true; }
}

function render(project, node) {
  node.dataset.projectId = project.id;
  node.querySelector(".name").textContent = project.name;
  node.querySelector(".status").textContent = project.status || "";
  node.querySelector(".status").dataset.status = project.status || "";
  const run = project.latest_run;
  node.querySelector(".requirements").textContent = (run && run.requirements) || "";
  const phases = node.querySelector(".phases");
  if (!phases.children.length) {
    for (const name of PHASES) {
      const li = document.createElement("li");
      li.className = "phase";
      li.dataset.phase = name;
      li.textContent = name;
      phases.appendChild(li);
    }
  }
  const byName = new Map(((run && run.phases) || []).map((p) => [p.name, p]));
  for (const li of phases.children) {
    const p = byName.get(li.dataset.phase);
    li.className = "phase" + (p ? " " + p.status : "");
    li.dataset.status = p ? p.status : "pending";
    li.title = p ? p.status + (p.cached ? " (cached)" : "") + (p.seconds != null ? ", " + p.seconds + " s" : "") : "pending";
  }
  setLink(node.querySelector(".repository"), project.repository_url);
  setLink(node.querySelector(".live"), project.live_url);
  setLink(node.querySelector(".prefect"), run && run.prefect_url);
  const errorBox = node.querySelector(".error");
  const error = run && run.error;
  const failed = run && (run.status === "failed" || run.status === "cancelled");
  errorBox.hidden = !failed;
  node.querySelector(".error-text").textContent = error
    ? "Failed in " + (error.phase || "?") + " (" + error.code + "): " + (error.message || "")
    : (failed ? "The run was " + run.status + "." : "");
  renderVersions(project, node.querySelector(".versions"));
}

function renderVersions(project, list) {
  const versions = project.versions || [];
  const latest = versions.length ? versions[versions.length - 1].number : null;
  list.replaceChildren(...versions.map((v) => {
    const li = document.createElement("li");
    li.className = "version";
    li.dataset.version = String(v.number);
    const label = document.createElement("span");
    label.textContent = "v" + v.number + " · " + (v.commit_sha || "no commit").slice(0, 12) + " · " + v.created_at;
    li.appendChild(label);
    if (v.number !== latest) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "rollback";
      button.textContent = "Roll back to v" + v.number;
      button.addEventListener("click", () => rollback(project.id, v.number));
      li.appendChild(button);
    }
    return li;
  }));
}

async function rollback(projectId, number) {
  try {
    const accepted = await api("POST", "/api/projects/" + encodeURIComponent(projectId) + "/rollback", { version: number });
    say("Rollback to version " + number + " queued as run " + accepted.run_id.slice(0, 12) + ".", false);
    refresh();
  } catch (e) { say(e.message, true); }
}

async function refresh() {
  if (!key()) return;
  let page;
  try { page = await api("GET", "/api/projects?limit=50"); }
  catch (e) { say(e.message, true); return; }
  const list = $("projects");
  const existing = new Map([...list.children].map((n) => [n.dataset.projectId, n]));
  for (const summary of page.items) {
    let node = existing.get(summary.id);
    if (!node) {
      node = $("project-template").content.firstElementChild.cloneNode(true);
      node.querySelector(".retry").addEventListener("click", () => retry(summary.id));
      list.appendChild(node);
    }
    try { render(await api("GET", "/api/projects/" + encodeURIComponent(summary.id)), node); }
    catch (e) { say(e.message, true); }
  }
}

async function retry(projectId) {
  try {
    const accepted = await api("POST", "/api/projects/" + encodeURIComponent(projectId) + "/retry");
    say("Retry queued as run " + accepted.run_id.slice(0, 12) + ".", false);
    refresh();
  } catch (e) { say(e.message, true); }
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("api-key").value.trim();
  if (value) sessionStorage.setItem(KEY, value);
  $("api-key").value = "";
  showKeyState();
});

$("forget-key").addEventListener("click", () => { sessionStorage.removeItem(KEY); $("projects").replaceChildren(); showKeyState(); });

$("submit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { requirements: $("requirements").value };
  if ($("name").value) body.name = $("name").value;
  try {
    const accepted = await api("POST", "/api/requirements", body);
    say("Queued run " + accepted.run_id.slice(0, 12) + ".", false);
    $("requirements").value = "";
    refresh();
  } catch (e) { say(e.message, true); }
});

showKeyState();
