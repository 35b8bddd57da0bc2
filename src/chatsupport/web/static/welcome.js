// The welcome a new person sees first (never on a resume): what this place is, three
// choices, the house rules one tap away, and what is kept for how long. The words come
// from /static/welcome.json, which the operator may edit; "{retention}" there becomes the
// server's own retention time (welcome.limits). Without the file the choices still work.

import { $, clear, el } from "./dom.js";
import { state } from "./state.js";
import { seeActive } from "./view.js";

let words = null; // welcome.json, once loaded

export function showWelcome(choices) {
  document.documentElement.dataset.welcome = "";
  $("welcome").hidden = false;
  for (const button of document.querySelectorAll("[data-choice]")) {
    button.addEventListener("click", () => choices[button.dataset.choice]());
  }
  fetch("/static/welcome.json", { cache: "no-store", credentials: "omit" })
    .then((response) => (response.ok ? response.json() : null))
    .then((loaded) => {
      words = loaded;
      renderWelcome();
    })
    .catch(() => {}); // the built-in sentence and the choices stay
}

export function welcomeShown() {
  return document.documentElement.hasAttribute("data-welcome");
}

// The person chose: the conversation takes the screen.
export function leaveWelcome() {
  if (!welcomeShown()) return;
  delete document.documentElement.dataset.welcome;
  $("welcome").hidden = true;
  seeActive();
}

// Again when the server's limits arrive, for the retention time.
export function renderWelcome() {
  if (!words || !welcomeShown()) return;
  if (typeof words.intro === "string") $("welcome-intro").textContent = words.intro;
  const retention = minutes(state.limits.retention_seconds || 600);
  fill($("welcome-rules"), words.rules);
  fill($("welcome-kept"), (words.kept || []).map((line) => String(line).replaceAll("{retention}", retention)));
}

function fill(list, lines) {
  if (!Array.isArray(lines)) return;
  clear(list);
  for (const line of lines) list.append(el("li", { text: String(line) }));
}

function minutes(seconds) {
  const n = Math.max(1, Math.round(seconds / 60));
  return n === 1 ? "1 minute" : `${n} minutes`;
}
