// numlink's pages work without this script; it only adds a countdown before another code may be
// asked for, and a button that copies the proof of tenure.
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
