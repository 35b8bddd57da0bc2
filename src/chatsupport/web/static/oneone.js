// One-to-one without accidents: ending asks once; after the end the tab stays, saying so,
// with help lines and an anonymous "did this help?"; a listener hands over with a button and
// an optional note; the seeker's tab follows the new listener's name; an offer of a private
// chat from a listener is a button, never a command to type.

import { $, el } from "./dom.js";
import { showResources } from "./panels.js";
import { request, save, state } from "./state.js";
import { activate, announce, block, endRoom, system } from "./view.js";

let lastEnded = null; // the private room that ended most recently ("did this help?" goes there)

// The room's "End conversation" button: a confirmation first, in the room's own header.
export function confirmEnd(room, showError) {
  if (room.confirm) {
    room.confirm.querySelector("button").focus();
    return;
  }
  const close = () => {
    room.confirm.remove();
    room.confirm = null;
    room.leaveBtn.focus();
  };
  const end = (report) => {
    const frame = { type: "end", room: room.name };
    if (report) frame.report = "reported when ending the conversation";
    request(frame, { error: (f) => (f.code === "bad_request" ? endRoom(room, "This conversation has ended.") : showError(f.message)) });
    room.confirm.remove();
    room.confirm = null;
  };
  const staff = Boolean(state.role);
  room.confirm = el(
    "div",
    { class: "confirm", role: "group", "aria-label": "End this conversation?" },
    el("p", { text: "End this conversation? The other person will be told it has ended." }),
    el("button", { type: "button", class: "btn small", text: "Keep talking", onclick: close }),
    el("button", { type: "button", class: "btn small", text: "End it", onclick: () => end(false) }),
    staff ? el("button", { type: "button", class: "btn small", text: "End and report", onclick: () => end(true) }) : null,
  );
  room.pane.querySelector(".pane-head").after(room.confirm);
  room.confirm.querySelector("button").focus();
}

// The chat is over (either side ended it): the tab stays, with where to turn now.
export function afterEnd(room, text) {
  if (room.confirm) {
    room.confirm.remove();
    room.confirm = null;
  }
  room.handoffBtn?.remove();
  endRoom(room, text);
  lastEnded = room;
  if (state.role) return; // listeners know where help lines are
  const list = el("ul", { class: "resources" });
  request({ type: "resources" }, { reply: (f) => f.type === "notice" && showResources(f.resources || [], list), error: () => {} });
  block(room, el("div", { class: "after-end" }, el("p", { text: "If you need to talk to someone now, these people are there:" }), list));
}

// `notice {kind: "feedback"}`: one tap, anonymous (the server only counts it).
export function askFeedback() {
  const room = lastEnded || state.rooms.get(state.active);
  if (!room) return;
  const box = el("div", { class: "feedback", role: "group", "aria-label": "Did this conversation help?" });
  const answer = (value) => {
    request({ type: "feedback", answer: value }, { error: () => {} });
    box.replaceChildren(el("p", { text: value === "skip" ? "OK." : "Thank you for saying." }));
  };
  box.append(
    el("p", { text: "Did this conversation help? (Anonymous: only counted, never kept with you.)" }),
    el(
      "div",
      { class: "actions" },
      el("button", { type: "button", class: "btn small", text: "Helpful", onclick: () => answer("helpful") }),
      el("button", { type: "button", class: "btn small", text: "Not really", onclick: () => answer("not_really") }),
      el("button", { type: "button", class: "btn small", text: "Skip", onclick: () => answer("skip") }),
    ),
  );
  block(room, box);
}

// A listener's private room gets a "Hand over" button (with an optional note).
export function offerHandoff(room) {
  if (!state.role || room.handoffBtn) return;
  room.handoffBtn = el("button", { type: "button", class: "btn small", text: "Hand over", onclick: () => handoffForm(room) });
  room.leaveBtn.before(room.handoffBtn);
}

function handoffForm(room) {
  if (room.handoff) return;
  const note = el("input", { type: "text", maxlength: "300", id: `handoff-note-${room.name}`, autocomplete: "off" });
  const status = el("span", { class: "hint", role: "status" });
  room.handoff = el(
    "form",
    { class: "handoff-form" },
    el("label", { for: note.id, text: "A note for the next listener (the person you are talking with sees it too):" }),
    note,
    el("button", { type: "submit", class: "btn small", text: "Hand over now" }),
    el("button", { type: "button", class: "btn small", text: "Cancel", onclick: () => closeForm(room) }),
    status,
  );
  room.handoff.addEventListener("submit", (event) => {
    event.preventDefault();
    status.textContent = "Looking for a listener to take over…";
    request({ type: "handoff", room: room.name, note: note.value.trim() || null }, { reply: () => closeForm(room), error: (f) => (status.textContent = f.message) });
  });
  room.pane.querySelector(".pane-head").after(room.handoff);
  note.focus();
}

function closeForm(room) {
  room.handoff?.remove();
  room.handoff = null;
}

// `notice {kind: "handoff", name}` to a seeker: their tab now names the new listener.
export function handedOver(frame) {
  if (state.role || !frame.name) return;
  const room = [...state.rooms.values()].reverse().find((r) => r.private && !r.ended);
  if (!room) return;
  room.partner = { ...(room.partner || {}), name: frame.name };
  room.label = `Private: ${frame.name}`;
  room.tab.querySelector(".tab-label").textContent = room.label;
  room.pane.querySelector(".pane-title").textContent = room.label;
  room.log.setAttribute("aria-label", `Messages in ${room.label}`);
  if (state.active === room.name) activate(room.name);
  system(room, frame.text, "info");
  announce(frame.text);
  save();
}

// `notice {kind: "offer"}`: a listener is there for them; talking is one tap, and their choice.
export function offered(frame) {
  const room = state.rooms.get(state.active);
  if (!room) return;
  const talk = el("button", { type: "button", class: "btn talk small", text: "Talk one-to-one", onclick: () => $("talk-btn").click() });
  block(room, el("div", { class: "help-card" }, el("p", { text: frame.text }), talk));
  announce(frame.text);
}
