// The waiting room: where a seeker stands, how many listeners are on, what recent waits
// suggest (or, plainly, that nobody is on right now, with help lines first), calm words, and a
// box for what is on their mind that the listener sees first when they are matched.

import { $, onText } from "./dom.js";
import { showResources } from "./panels.js";
import { request, state } from "./state.js";

let linesShown = false;

function minutes(seconds) {
  const whole = Math.max(1, Math.round(seconds / 60));
  return `${whole} minute${whole === 1 ? "" : "s"}`;
}

export function outlookText(frame) {
  if (frame.listeners === 0) return "No listener is on right now. You keep your place: someone will be with you as soon as a listener comes on.";
  if (!frame.listeners) return "";
  const on = `${frame.listeners} listener${frame.listeners === 1 ? " is" : "s are"} on now`;
  return frame.wait ? `${on}. Recent waits suggest about ${minutes(frame.wait)}.` : `${on}.`;
}

// A `queue {position, listeners, wait}` frame.
export function showWaiting(frame) {
  state.talk = "queued";
  $("queue").hidden = false;
  $("waiting").hidden = false;
  $("queue-text").textContent = frame.position > 0 ? `You are number ${frame.position} in line for a listener.` : "Waiting for a listener…";
  $("queue-cancel").textContent = "Leave the queue";
  $("talk-btn").setAttribute("aria-pressed", "true");
  $("queue-outlook").textContent = outlookText(frame);
  const nobody = frame.listeners === 0;
  $("queue-help").hidden = !nobody;
  if (nobody && !linesShown) {
    linesShown = true; // the person's region first (the server knows it), asked once per wait
    request({ type: "resources" }, { reply: (f) => f.type === "notice" && showResources(f.resources || [], $("queue-lines")), error: () => (linesShown = false) });
  }
}

// Matched, cancelled or refused: the waiting room folds away (the note box is emptied).
export function hideWaiting() {
  $("waiting").hidden = true;
  $("queue-note").value = "";
  $("note-status").textContent = "";
  linesShown = false;
}

export function installWaiting() {
  onText("note-form", "queue-note", (note) =>
    request(
      { type: "talk", note },
      {
        reply: () => ($("note-status").textContent = "Shared: your listener will see it first."),
        error: (f) => ($("note-status").textContent = f.message),
      },
    ),
  );
}
