// numlink's pages work without this script; it only adds a countdown before another code may be
// asked for, a button that copies the proof of tenure, and a job's page following the job's counts.
"use strict";
document.querySelectorAll("form[data-wait]").forEach((form) => {
  const button = form.querySelector("button");
  const out = form.querySelector("[data-countdown]");
  let left = Number(form.dataset.wait) || 0;
  const tick = () => {
    button.disabled = left > 0;
    out.textContent = left > 0 ? form.dataset.template.replace("{s}", String(left)) : "";
    if (left > 0) {
      left -= 1;
      setTimeout(tick, 1000);
    }
  };
  tick();
});
document.querySelectorAll("button[data-copy]").forEach((button) => {
  const field = document.getElementById(button.dataset.copy);
  const status = document.getElementById(button.dataset.status);
  button.hidden = false;
  button.addEventListener("click", async () => {
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
    } catch {
      document.execCommand("copy");
    }
    status.textContent = button.dataset.done;
  });
});
document.querySelectorAll("[data-job]:not([data-ended])").forEach((box) => {
  // Asks for the job's counts each second and shows them; once the job has ended, loads the page
  // again for its downloads.
  // Only what changed is written: a status region read out again and again says nothing new.
  const set = (field, value) => {
    box.querySelectorAll(`[data-field="${field}"]`).forEach((el) => {
      if (el.tagName === "PROGRESS") {
        if (el.value !== value) el.value = value;
      } else if (el.textContent !== String(value)) {
        el.textContent = String(value);
      }
    });
  };
  const look = async () => {
    try {
      const r = await fetch(box.dataset.job, { credentials: "same-origin", cache: "no-store" });
      if (!r.ok) throw new Error(String(r.status));
      const j = await r.json();
      if (j.ended) {
        window.location.reload();
        return;
      }
      ["stateWords", "rowsRead", "accepted", "duplicates", "pending", "rejected"].forEach((f) => set(f, j[f]));
      if (j.size) {
        const p = Math.floor((Math.min(j.done, j.size) * 100) / j.size);
        set("percent", p);
        set("percentText", `${p}%`);
      }
    } catch {
      // The next look tries again.
    }
    setTimeout(look, 1000);
  };
  setTimeout(look, 1000);
});
