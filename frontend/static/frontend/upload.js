// Upload page: send the form with a progress bar, then follow the version's validation status.
"use strict";

const FINAL_STATUSES = ["valid", "invalid", "error"];
const form = document.getElementById("upload-form");

// Every subtask option the page was sent with; the menu offers only those of the chosen task. Options are
// removed rather than hidden: a hidden <option> stays selectable in some browsers (Safari) and by keyboard.
const allSubtaskOptions = form ? [...form.elements.subtask.options].map((option) => option.cloneNode(true)) : [];

function showSubtasksOf(task) {
  const known = JSON.parse(form.dataset.subtasks || "{}")[task] || [];
  const select = form.elements.subtask;
  const chosen = select.value;
  const offered = allSubtaskOptions.filter((option) => option.value === "" || known.includes(option.value));
  select.replaceChildren(...offered.map((option) => option.cloneNode(true)));
  select.value = offered.some((option) => option.value === chosen) ? chosen : "";
  // Without a task there is nothing to choose from; a task without subtasks has only "—".
  select.disabled = !task || known.length === 0;
}

function clearErrors() {
  for (const list of form.querySelectorAll("[data-errors-for]")) list.replaceChildren();
  for (const field of form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
}

function showErrors(errors) {
  let first = null;
  for (const [name, messages] of Object.entries(errors)) {
    const list = form.querySelector(`[data-errors-for="${name}"]`) || form.querySelector('[data-errors-for="__all__"]');
    for (const { message } of messages) {
      const item = document.createElement("li");
      item.textContent = message;
      list.append(item);
    }
    const field = form.elements[name];
    if (field && field.setAttribute) {
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", list.id);
      first = first || field;
    }
  }
  (first || form.querySelector('[data-errors-for="__all__"]')).focus?.();
}

function renderReport(version) {
  const container = document.getElementById("validation-report");
  container.replaceChildren();
  const report = version.report || {};
  if (report.summary) {
    const summary = document.createElement("p");
    summary.id = "validation-summary";
    summary.textContent = report.summary;
    container.append(summary);
  }
  const list = document.createElement("ul");
  list.className = "checks";
  for (const check of report.checks || []) {
    const item = document.createElement("li");
    const mark = check.result === "passed" ? "✓" : check.result === "failed" ? "✗" : "–";
    const name = document.createElement("span");
    name.className = check.result === "passed" ? "ok" : check.result === "failed" ? "fail" : "";
    name.textContent = `${mark} ${check.name}`;
    item.append(name, `: ${check.message}`);
    list.append(item);
  }
  if (list.children.length) container.append(list);
}

function setStatus(status) {
  const badge = document.getElementById("validation-status");
  badge.textContent = status;
  badge.className = `badge badge-${status}`;
  badge.dataset.status = status;
}

async function followStatus(statusUrl) {
  let delay = 500;
  for (;;) {
    let version;
    try {
      const response = await fetch(statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      version = await response.json();
    } catch (error) {
      document.getElementById("upload-message").textContent = `Could not read the status (${error.message}); retrying.`;
      await new Promise((resolve) => setTimeout(resolve, 3000));
      continue;
    }
    setStatus(version.status);
    if (FINAL_STATUSES.includes(version.status)) {
      renderReport(version);
      const message = {
        valid: "The adapter is valid: it resolves and can be downloaded.",
        invalid: "The adapter is invalid; the report says why.",
        error: "The hub could not finish the validation; the report says why.",
      }[version.status];
      document.getElementById("upload-message").textContent = message;
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 1.5, 4000);
  }
}

if (form) {
  showSubtasksOf(form.elements.task.value);
  form.elements.task.addEventListener("change", () => showSubtasksOf(form.elements.task.value));

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    const panel = document.getElementById("upload-status");
    const progress = document.getElementById("upload-progress");
    const message = document.getElementById("upload-message");
    const submit = document.getElementById("upload-submit");
    panel.hidden = false;
    progress.value = 0;
    setStatus("waiting for the upload");
    document.getElementById("validation-report").replaceChildren();
    message.textContent = "Uploading…";
    submit.disabled = true;

    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (progressEvent) => {
      if (!progressEvent.lengthComputable) return;
      const percent = Math.round((100 * progressEvent.loaded) / progressEvent.total);
      progress.value = percent;
      progress.textContent = `${percent}%`;
    });
    request.addEventListener("error", () => {
      submit.disabled = false;
      message.textContent = "The upload failed: the connection broke. Try again.";
    });
    request.addEventListener("load", () => {
      submit.disabled = false;
      let body = {};
      try {
        body = JSON.parse(request.responseText);
      } catch (error) {
        message.textContent = `The upload failed (HTTP ${request.status}).`;
        return;
      }
      if (request.status === 400) {
        panel.hidden = true;
        showErrors(body.errors || {});
        return;
      }
      if (request.status !== 200 && request.status !== 202) {
        message.textContent = body.detail || `The upload failed (HTTP ${request.status}).`;
        return;
      }
      progress.value = 100;
      message.textContent = body.created
        ? `Uploaded version ${body.version} of ${body.adapter}; validating…`
        : `Version ${body.version} of ${body.adapter} was already uploaded with these files.`;
      const link = document.getElementById("adapter-link");
      link.href = body.adapter_url;
      document.getElementById("upload-links").hidden = false;
      setStatus(body.status);
      followStatus(body.status_url);
    });
    request.send(new FormData(form));
  });
}
