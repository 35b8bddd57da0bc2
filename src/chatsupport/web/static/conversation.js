// Deleting a message (your own; a moderator: anyone's) and "Sam is typing…" in a private
// chat. The server sends `deleted {room, id}` to every client in the room, and a resume gives
// the deletions made while we were away; `typing {room, uid, name}` comes from the other
// person of a one-to-one chat only (docs/protocol.md).

import { $, el } from "./dom.js";
import { confirmAction } from "./panels.js";
import { activate, announce } from "./view.js";
import { request, save, send, state } from "./state.js";

const TYPING_EVERY_MS = 3000; // we say we are typing at most this often, while the box changes
const TYPING_SHOWN_MS = 6000; // their "is typing" goes away after this without news

let offered = null; // the message whose options dialog is open: {frame}
let lastTyping = 0;

// ---- delete ---------------------------------------------------------------------------------
// The options dialog of a message: "Delete message" for our own, and for a moderator on any.
export function offerDelete(frame) {
  offered = frame;
  const mine = frame.uid === state.uid;
  $("delete-btn").hidden = !(mine || state.role === "mod") || frame.kind === "deleted";
  $("delete-btn").textContent = mine ? "Delete my message…" : "Delete this message…";
}

function askToDelete() {
  const frame = offered;
  if (!frame) return;
  const mine = frame.uid === state.uid;
  confirmAction({
    title: mine ? "Delete your message?" : `Delete ${frame.name}'s message?`,
    text: mine
      ? "It disappears for everyone here, and the server no longer keeps it. This cannot be undone."
      : `It disappears for everyone, and the server no longer keeps it. The moderators are told that you deleted a message by ${frame.name}, without its words.`,
    ok: "Delete message",
    danger: true,
    run: () =>
      request(
        { type: "delete", room: frame.room, id: frame.id },
        { reply: () => announce("Message deleted."), error: (f) => showStatus(f.message) },
      ),
  });
}

function showStatus(text) {
  $("composer-error").textContent = text;
}

// A message gone for everyone: its words leave the page, a quiet line keeps its place.
export function onDeleted(frame) {
  for (const spoken of [...$("announcer").children]) {
    if (spoken.dataset.message === `${frame.room} ${frame.id}`) spoken.remove();
  }
  const room = state.rooms.get(frame.room);
  const node = room?.log.querySelector(`:scope > .msg[data-id="${Number(frame.id)}"]`);
  if (!node) return; // never shown here (before we came, or already scrolled away)
  const by = frame.moderated ? "Message removed by a moderator" : "Message deleted";
  node.className = "line msg deleted";
  node.dataset.kind = "deleted";
  node.replaceChildren(el("p", { class: "msg-text" }, el("em", { text: by })));
  if (room.stop && !room.stop.isConnected) {
    // The log's one tab stop was on it: the newest message's options take it over.
    const buttons = room.log.querySelectorAll(".msg-act");
    room.stop = buttons[buttons.length - 1] || null;
    if (room.stop) room.stop.tabIndex = 0;
  }
  if (offered && offered.room === frame.room && offered.id === frame.id) {
    offered = null; // its options were open: its words leave the dialog too
    $("message-quote").replaceChildren();
    const dialog = $("dlg-message");
    if (dialog.open) dialog.close();
  }
}

// ---- typing ---------------------------------------------------------------------------------
function sayTyping() {
  const room = state.rooms.get(state.active);
  const box = $("composer-input");
  if (!room || !room.private || room.ended || !box.value.trim() || box.value.startsWith("/")) return;
  const now = Date.now();
  if (now - lastTyping < TYPING_EVERY_MS) return;
  if (send({ type: "typing", room: room.name })) lastTyping = now;
}

function typingLine(room) {
  if (!room.typingNode) {
    room.typingNode = el("p", { class: "typing", hidden: true });
    room.log.after(room.typingNode);
  }
  return room.typingNode;
}

export function onTyping(frame) {
  const room = state.rooms.get(frame.room);
  if (!room || !room.private || room.ended || frame.uid === state.uid) return;
  const line = typingLine(room);
  line.textContent = `${frame.name} is typing…`;
  line.hidden = false;
  clearTimeout(room.typingTimer);
  room.typingTimer = setTimeout(() => stopTyping(room), TYPING_SHOWN_MS);
}

// Their message arrived (or the chat ended): they are no longer typing it.
export function stopTyping(room) {
  if (!room || !room.typingNode) return;
  clearTimeout(room.typingTimer);
  room.typingNode.hidden = true;
}

export function installConversation() {
  $("delete-btn").addEventListener("click", askToDelete);
  $("composer-input").addEventListener("input", sayTyping);
  $("composer").addEventListener("submit", () => {
    lastTyping = 0; // the next words are a new message: say so at once
  });
}

// ---- names ------------------------------------------------------------------------------------
// The other person of a private chat took a new name: the tab and titles say it, not the old.
export function renamePartner(room, frame) {
  if (!room.private || room.partner?.uid !== frame.uid || frame.event !== "nick") return;
  room.partner = { ...room.partner, name: frame.name };
  room.label = `Private: ${frame.name}`;
  room.tab.querySelector(".tab-label").textContent = room.label;
  room.pane.querySelector(".pane-title").textContent = room.label;
  room.log.setAttribute("aria-label", `Messages in ${room.label}`);
  if (state.active === room.name) activate(room.name); // the message box's label
  save();
}
