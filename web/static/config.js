// The "Run backup now" button of the configuration pages: starts a backup through the REST API
// (the session's cookie plus the CSRF token every page carries) and follows the run until it ends,
// then offers to reload the page. Everything the page shows is still rendered by the server; this
// script only asks for a run and reports on it.
(function () {
  "use strict";
  const POLL_MS = 2000;
  const MAX_POLLS = 900; // 30 minutes: a whole-city run fits, a stuck one stops being followed
  const stringsEl = document.getElementById("config-strings");
  const strings = stringsEl ? JSON.parse(stringsEl.textContent) : {};
  const say = (key, params) => {
    let text = strings[key] || key;
    for (const [k, v] of Object.entries(params || {})) text = text.split("{" + k + "}").join(String(v));
    return text;
  };
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const state = { runId: null, status: "", polls: 0 };
  window.infraConfigs = state;

  async function follow(url, out, button) {
    state.polls += 1;
    let run;
    try {
      const resp = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!resp.ok) throw new Error(String(resp.status));
      run = await resp.json();
    } catch (err) {
      out.textContent = say("configs.run_lost");
      button.disabled = false;
      return;
    }
    if (!run.finished_at && state.polls < MAX_POLLS) {
      out.textContent = say("configs.run_running", { id: run.id });
      setTimeout(() => follow(url, out, button), POLL_MS);
      return;
    }
    state.status = run.status;
    out.textContent = say(run.status === "ok" ? "configs.run_done" : "configs.run_failed",
      { changed: run.changed, unchanged: run.unchanged, failed: run.failed });
    const again = document.createElement("a");
    again.href = window.location.pathname + window.location.search;
    again.className = "ms-2";
    again.textContent = say("configs.run_reload");
    out.appendChild(again);
    button.disabled = false;
  }

  async function start(button) {
    const out = document.getElementById(button.dataset.status || "config-run-status");
    button.disabled = true;
    state.polls = 0;
    out.textContent = say("configs.run_starting");
    let answer;
    try {
      const resp = await fetch("/api/v1/backup/run", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf() },
        body: button.dataset.scope || "{}",
      });
      answer = await resp.json().catch(() => ({}));
      if (resp.status !== 202) {
        out.textContent = say("configs.run_refused", { detail: typeof answer.detail === "string" ? answer.detail : resp.status });
        button.disabled = false;
        return;
      }
    } catch (err) {
      out.textContent = say("configs.run_lost");
      button.disabled = false;
      return;
    }
    state.runId = answer.run_id;
    follow(answer.url, out, button);
  }

  for (const button of document.querySelectorAll("button[data-run-backup]")) {
    button.addEventListener("click", () => start(button));
  }
})();
