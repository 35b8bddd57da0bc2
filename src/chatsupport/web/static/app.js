// The page: one connection, the frames it brings, resume without loss or duplicates, and
// the message box. Rendering lives in view.js, the dialogs in panels.js.

import { Connection } from "./connection.js";
import { installConversation, onDeleted, onTyping, renamePartner, stopTyping } from "./conversation.js";
import { $, charCount, el, normalise } from "./dom.js";
import { installDrafts } from "./drafts.js";
import { configureExit, installExitShortcut } from "./exit.js";
import { installStaffAlerts, staffEvent, staffSignedIn } from "./listener.js";
import { afterEnd, askFeedback, confirmEnd, handedOver, offerHandoff, offered } from "./oneone.js";
import { Budget, cost } from "./pace.js";
import {
  addAlert,
  addReport,
  confirmAction,
  installPanels,
  menuOpen,
  openDialog,
  showResources,
  showRoomList,
  signedIn,
  tellRegion,
} from "./panels.js";
import { clientId, forgetStored, nextRef, request, restore, save, send, setSender, state } from "./state.js";
import {
  activate,
  addMessage,
  announce,
  announceMissed,
  block,
  endRoom,
  ensureRoom,
  hereText,
  pendingNode,
  removeRoom,
  seeActive,
  setCount,
  setMembers,
  system,
  updateTitle,
} from "./view.js";
import { hideWaiting, installWaiting, showWaiting } from "./waiting.js";
import { leaveWelcome, renderWelcome, showWelcome } from "./welcome.js";

const STOP_REASONS = new Set(["quit", "forgotten", "resumed_elsewhere", "kicked", "banned"]);

let conn = null;
let resuming = false; // between sending `resume` and receiving `resumed`
let welcomed = null; // this socket's welcome while resuming: {back, room, rooms}
let gap = null; // a resume cut short: {room: newest id before what it could not bring}
let talkWhenBack = false; // asked for a listener while delivery was interrupted: ask again after
let pending = []; // our messages not yet confirmed: {ref, room, text, state, node}
let reconnects = 0;
const budget = new Budget(); // the server's message budget for us (pace.js)
let paceTimer = null; // the next message's turn, when it has to wait for the budget
let farewell = null; // why a moderator ended our session (their notice), for the bye after it

// ---- connection -----------------------------------------------------------------------------
// With a session to come back to, the socket asks the server (?resume=1) to wait for our
// `resume` before making anyone up: we return as ourselves, nobody sees a stranger come and
// go, and the server sends welcome, joined, the missed messages in order, then `resumed`.
function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws?client=${clientId()}${state.token ? "&resume=1" : ""}`;
}

function onopen() {
  if (!state.token) return; // a new person: the welcome will tell us who we are
  resuming = true;
  state.replaying = true;
  welcomed = null;
  conn.send({ type: "resume", session: state.token, last: newestIds(), ref: "resume" });
}

function onclose() {
  resuming = false;
  state.replaying = false;
  state.filling = null; // a gap being filled stays in `gap`: filled after the next resume
  for (const item of pending) if (item.state === "sent") item.state = "unsure";
}

function onstatus(status, delay) {
  document.documentElement.dataset.conn = status;
  const box = $("conn");
  const text = {
    connecting: "Connecting…",
    reconnecting: "Connection lost. Reconnecting…",
    online: "",
  }[status];
  if (text === undefined) return;
  box.classList.toggle("shown", status !== "online");
  $("conn-text").textContent = text;
  $("conn-retry").hidden = status !== "reconnecting" || !delay || delay < 2000;
  $("conn-retry").textContent = "Try now";
}

function stopped(text, action = null, label = "") {
  document.documentElement.dataset.conn = "stopped";
  $("conn").classList.add("shown");
  $("conn-text").textContent = text;
  const retry = $("conn-retry");
  retry.textContent = label;
  retry.hidden = !action;
  retry.onclick = action;
}

function onframe(frame) {
  const handler = HANDLERS[frame.type];
  if (handler) handler(frame);
  const replies = frame.ref && state.replies.get(frame.ref);
  if (replies) {
    if (!replies.many) state.replies.delete(frame.ref);
    if (frame.type === "error") replies.error?.(frame);
    else replies.reply?.(frame);
  }
}

// ---- resume ---------------------------------------------------------------------------------
// Nothing to hold or sort here: the server sends the replay before any live event for us, and
// a message at or below a room's last id is dropped as a repeat (view.js addMessage).
function finishResume(frame) {
  if (!resuming || !welcomed) return;
  resuming = false;
  state.replaying = false;
  announceMissed();
  if (!welcomed.back) {
    lost();
    return;
  }
  // Rooms the server no longer has us in (a private chat that ended while we were away, and
  // whose `ended` did not reach us) close here; a gap is only worth a word when none did.
  const gone = [...state.rooms.values()].filter((room) => !room.ended && !welcomed.rooms.includes(room.name));
  for (const room of gone) endRoom(room, `You were away too long and are no longer in ${room.label}.`);
  settle();
  if (!frame.complete && !gone.length) announceGap(frame.reason);
  if (frame.reason === "unavailable" && !gap) gap = newestIds();
  // Filled once the server is back: now, if it said so during the replay.
  if (gap && (frame.complete || !state.sharedAway)) fillGap();
  refresh();
}

function newestIds() {
  const ids = {};
  for (const room of state.rooms.values()) if (!room.ended) ids[room.name] = Math.max(room.last, room.floor);
  return ids;
}

// The messages a resume could not bring (the server's shared state was away), asked for
// again once it is back: the same resume from before the gap, on this connection. What we
// have is skipped; what was missing goes in its place (view.js fillGap).
function fillGap() {
  const after = gap;
  if (!conn.send({ type: "resume", session: state.token, last: after, ref: "fill" })) return;
  state.filling = new Map(Object.entries(after));
  state.replaying = true;
  const done = (frame) => {
    state.filling = null;
    state.replaying = false;
    gap = frame.reason === "unavailable" ? after : null; // away again: the next `available`
    announceMissed();
    const room = state.rooms.get(state.active);
    if (room && !gap) system(room, frame.complete ? FILLED : GAPS[frame.reason || "none"], "info");
    refresh();
  };
  state.replies.set("fill", { reply: done, error: () => done({ reason: "unavailable" }) });
}

function settle() {
  reconnects += 1;
  document.documentElement.dataset.reconnects = String(reconnects);
  conn.settled();
  flush();
}

// Why a resume could not catch up on everything (`resumed.reason`): only the first means the
// messages are gone for good.
const GAPS = {
  none: "You were away for a while: some earlier messages are no longer kept.",
  overtaken: "A lot was said while you were away: some earlier messages are not shown.",
  unavailable: "Some earlier messages could not be loaded just now.",
};
const FILLED = "The earlier messages that could not be loaded are shown now.";

function announceGap(reason) {
  const room = state.rooms.get(state.active);
  if (room) system(room, GAPS[reason || "none"] || GAPS.none, "info");
}

// The old session had expired: this socket's welcome made us someone new, in its room.
function lost() {
  const home = welcomed.room;
  for (const room of state.rooms.values()) {
    if (room.name !== home && !room.ended) endRoom(room, `You were away too long and are no longer in ${room.label}.`);
  }
  activate(home);
  system(state.rooms.get(home), `You were away too long, so this is a new session: you are now ${state.name}.`, "info");
  settle();
}

function adopt(welcome) {
  state.token = welcome.session;
  state.uid = welcome.uid;
  state.name = welcome.name;
  state.role = null;
  showName();
  save();
}

function refresh() {
  request({ type: "rooms" }, { reply: (f) => $("dlg-rooms").open && showRoomList(f.rooms || []) });
  for (const room of state.rooms.values()) {
    if (!room.ended) request({ type: "who", room: room.name }, { error: () => {} });
  }
}

// ---- our own messages -----------------------------------------------------------------------
function settleOwn(message) {
  if (message.uid !== state.uid) return;
  const byRef = message.ref && pending.find((p) => p.ref === message.ref);
  // After a lost connection the replay has no ref: the first unsure message with this text is it.
  const found = byRef || pending.find((p) => p.state === "unsure" && p.room === message.room && normalise(p.text) === message.text);
  if (!found) return;
  found.node.remove();
  pending = pending.filter((p) => p !== found);
}

// Each pending message is bound to the room it was typed in: it goes there, or nowhere. A room
// gone by the time we can send (the server restarted and we are someone new, a private chat
// ended while we were away) gets nothing: the words come back to the box, with a note.
// The rest go in the order they were typed, each when the budget allows (pace.js).
function flush() {
  for (const item of [...pending]) {
    if (item.state === "sent") continue; // on its way: the server's answer settles it
    const room = state.rooms.get(item.room);
    if (!room || room.ended) fail(item, notSentWhy(item, room));
  }
  for (const item of pending) {
    if (item.state !== "sent" && !transmit(item)) break;
  }
}

function notSentWhy(item, room) {
  const gone = !room ? `you are no longer in #${item.room}` : room.private ? "the private conversation ended" : `you are no longer in ${room.label}`;
  const here = state.rooms.get(state.active);
  const next = here && !here.ended ? `send them to ${here.label}` : "choose a room to send them to";
  return `Not sent: ${gone}. Your words are back in the box: ${next}, or clear the box.`;
}

// Sends `item` if it may go now; false when it (and whatever follows it) must wait.
function transmit(item) {
  if (resuming || !conn.open) return false;
  const frame = { type: "say", room: item.room, text: item.text, ref: item.ref };
  const wait = budget.wait(cost(frame));
  if (wait > 0) {
    clearTimeout(paceTimer);
    paceTimer = setTimeout(flush, wait);
    return false;
  }
  if (!sendFrame(frame)) return false;
  item.state = "sent";
  return true;
}

// Every frame the page sends goes through here, so the budget knows what was spent.
function sendFrame(frame) {
  if (!conn.send(frame)) return false;
  budget.spend(cost(frame));
  return true;
}

function fail(item, message) {
  item.node.remove();
  pending = pending.filter((p) => p !== item);
  const input = $("composer-input");
  // Give the words back, after anything already in the box, so nothing typed is lost.
  input.value = input.value ? `${input.value}\n${item.text}` : item.text;
  updateCounter();
  showError(message);
}

// ---- frames ---------------------------------------------------------------------------------
const HANDLERS = {
  welcome(frame) {
    state.limits = { ...state.limits, ...frame.limits };
    budget.configure(state.limits);
    updateCounter();
    renderWelcome();
    if (resuming) {
      // Our uid again: the same person, back; another: the session was gone, we are new.
      welcomed = { back: frame.uid === state.uid, room: frame.room, rooms: frame.rooms || [] };
      if (welcomed.back) {
        state.token = frame.session;
        state.name = frame.name;
        showName();
        save();
      } else {
        adopt(frame);
      }
      return;
    }
    adopt(frame);
    reconnects = 0;
    conn.settled();
    tellRegion(); // a new session: their region's help lines come first from now on
  },
  joined(frame) {
    const room = ensureRoom(frame.room, { floor: frame.last || 0 });
    setCount(room, frame.count, frame.away || 0);
    setMembers(room, frame.members || []);
    if (!state.active) activate(room.name);
    else if (frame.ref && frame.ref.startsWith("c")) activate(room.name, false, true); // their /join
    flush();
  },
  left(frame) {
    const room = state.rooms.get(frame.room);
    if (room && room.private) afterEnd(room, "You ended this conversation.");
    else removeRoom(frame.room);
  },
  message(frame) {
    settleOwn(frame);
    if (frame.uid !== state.uid) stopTyping(state.rooms.get(frame.room));
    addMessage(frame);
  },
  deleted: onDeleted,
  typing: onTyping,
  presence(frame) {
    const room = state.rooms.get(frame.room);
    if (!room) return;
    setCount(room, frame.count, frame.away || 0);
    const known = room.members.get(frame.uid);
    if (frame.event === "leave") room.members.delete(frame.uid);
    else {
      const away = frame.event === "away" || (frame.event === "nick" && Boolean(known?.away));
      room.members.set(frame.uid, { uid: frame.uid, name: frame.name, role: known?.role, away });
    }
    setMembers(room, [...room.members.values()]);
    if (frame.event === "away" || frame.event === "leave") stopTyping(room);
    renamePartner(room, frame);
    const text = {
      join: `${frame.name} joined (${hereText(frame.count, frame.away)})`,
      leave: `${frame.name} left (${hereText(frame.count, frame.away)})`,
      nick: `${frame.old || "Someone"} is now known as ${frame.name}`,
      away: `${frame.name} is away: their connection dropped`,
      back: `${frame.name} is back`,
    }[frame.event];
    if (text) system(room, text);
  },
  who(frame) {
    const room = state.rooms.get(frame.room);
    if (room) {
      const members = frame.members || [];
      setMembers(room, members);
      setCount(room, members.length, members.filter((m) => m.away).length);
    }
    if (isCommand(frame)) here(`In #${frame.room}: ${(frame.members || []).map((m) => m.name).join(", ")}`);
  },
  rooms(frame) {
    for (const info of frame.rooms || []) {
      const room = state.rooms.get(info.name);
      if (room) setCount(room, info.count);
    }
    if (isCommand(frame)) here(`Rooms: ${(frame.rooms || []).map((r) => `#${r.name} (${r.count})`).join(", ") || "none"}`);
  },
  resumed: finishResume,
  notice: onNotice,
  matched(frame) {
    state.talk = "idle";
    showQueue(null);
    hideWaiting();
    leaveWelcome();
    const room = ensureRoom(frame.room, { floor: 0, partner: frame.partner });
    offerHandoff(room);
    if (frame.note) system(room, `While waiting, they wrote: ${frame.note}`, "info");
    setCount(room, 2);
    setMembers(room, [{ uid: state.uid, name: state.name, role: state.role }, frame.partner]);
    activate(room.name); // focus stays where the person is typing; the announcement tells

    announce(`You are now talking privately with ${frame.partner.name}.`);
  },
  queue: showWaiting,
  ended(frame) {
    const room = state.rooms.get(frame.room);
    const why = {
      partner_left: "The other person has left. This conversation has ended.",
      partner_disconnected: "The other person's connection was lost. This conversation has ended.",
      handed_over: "You handed this conversation over to another listener.",
    }[frame.reason];
    stopTyping(room);
    if (room) afterEnd(room, why || "This conversation has ended.");
    announce("The private conversation has ended.");
  },
  alert(frame) {
    addAlert(frame);
    staffEvent(frame);
  },
  report(frame) {
    addReport(frame);
    staffEvent(frame);
  },
  error(frame) {
    if (frame.ref === "resume") {
      finishResume({ complete: false }); // e.g. delivery interrupted: what came, came once
      return;
    }
    if (frame.code === "rate_limited") budget.empty(); // the server knows our budget best
    if (frame.code === "banned") farewell = frame.message; // refused at the door
    const item = frame.ref && pending.find((p) => p.ref === frame.ref);
    if (item) fail(item, frame.message);
    else if (!frame.ref || !state.replies.has(frame.ref)) showError(frame.message);
  },
  bye(frame) {
    if (!STOP_REASONS.has(frame.reason)) return; // too slow, shutdown...: the socket comes back
    conn.close(true);
    if (frame.reason === "resumed_elsewhere") {
      stopped("This chat is now open in another tab or window.", () => conn.restart(), "Use it here");
      return;
    }
    endSession();
    if (frame.reason === "kicked" || frame.reason === "banned") {
      removed(frame.reason);
      return;
    }
    stopped("You have left the chat.", startAgain, "Start again");
  },
};

// A moderator's decision: say why and for how long, in their words, and offer no button that
// would undo it (after a kick, coming back as someone new is a choice for later).
function removed(reason) {
  const said = farewell ? `${farewell[0].toUpperCase()}${farewell.slice(1)}.` : "A moderator ended your session.";
  const next = reason === "banned" ? "You cannot chat here until the ban ends." : "You can come back later, as someone new.";
  farewell = null;
  stopped(`${said} ${next}`);
}

function onNotice(frame) {
  switch (frame.kind) {
    case "nick":
      state.name = frame.name;
      showName();
      save();
      renameMe();
      break;
    case "auth":
      signedIn(frame.name);
      staffSignedIn();
      break;
    case "handoff":
      if (!state.role) return handedOver(frame);
      break;
    case "feedback":
      return askFeedback();
    case "offer":
      return offered(frame);
    case "kicked":
    case "banned":
      farewell = frame.text; // the bye follows: it says this, where it stays on screen
      break;
    case "ignore":
    case "unignore":
      break; // the dialogs that asked update themselves
    case "listen":
      // Not an answer to the switch: a listener who asked for a listener is no longer offered chats.
      if (!frame.ref) $("listen-switch").checked = false;
      break;
    case "unavailable":
      state.sharedAway = true;
      break;
    case "available":
      state.sharedAway = false;
      if (gap && !resuming && !state.filling) fillGap(); // the answer follows these words
      if (talkWhenBack) askForListener();
      break;
    case "resources":
      if (frame.ref && state.replies.has(frame.ref)) break;
      offerHelp(frame);
      return;
    default:
      break;
  }
  if (isCommand(frame) || !frame.ref) here(frame.text, frame.kind === "announce" ? "announce" : "sys");
}

// The room tells the others of our new name; our own lists learn it here ("Here now").
function renameMe() {
  for (const room of state.rooms.values()) {
    const me = room.members.get(state.uid);
    if (me) setMembers(room, [...room.members.values()].map((m) => (m === me ? { ...m, name: state.name } : m)));
  }
}

// Resources the server sent on its own (a crisis phrase matched): gently, in the conversation.
function offerHelp(frame) {
  const room = state.rooms.get(state.active);
  const list = el("ul", { class: "resources" });
  showResources(frame.resources || [], list);
  const card = el(
    "div",
    { class: "help-card" },
    el("p", { text: frame.text || "You don't have to go through this alone. These people can help right now:" }),
    list,
    el("button", { type: "button", class: "btn help-now small", text: "More help lines", onclick: () => openDialog("dlg-help") }),
  );
  if (room) block(room, card);
  // The kind words first: on a small screen the card's top stays in view, not its end.
  if (room && state.active === room.name) card.scrollIntoView({ block: "nearest" });
  announce(frame.text || "Help lines are available: open Get help now.");
}

function isCommand(frame) {
  return typeof frame.ref === "string" && frame.ref.startsWith("c");
}

function here(text, kind = "sys") {
  const room = state.rooms.get(state.active);
  if (room) system(room, text, kind);
}

function endSession() {
  state.token = null;
  forgetStored();
  for (const item of pending) item.node.remove();
  pending = [];
  clearTimeout(paceTimer);
}

function startAgain() {
  for (const name of [...state.rooms.keys()]) removeRoom(name);
  state.active = null;
  conn.restart();
}

// ---- message box ----------------------------------------------------------------------------
function showError(text) {
  $("composer-error").textContent = text;
}

function updateCounter() {
  const input = $("composer-input");
  const max = state.limits.max_text || 2000;
  const used = charCount(input.value);
  const counter = $("counter");
  counter.textContent = `${used} / ${max}`;
  counter.classList.toggle("near", used > max * 0.9 && used <= max);
  counter.classList.toggle("over", used > max);
  const over = used > max;
  if (over !== counter.dataset.over) {
    if (over) showError(`Too long: messages are at most ${max} characters (${used - max} over).`);
    else if ($("composer-error").textContent.startsWith("Too long")) showError("");
  }
  counter.dataset.over = String(over);
}

function submit(event) {
  event.preventDefault();
  const input = $("composer-input");
  const text = input.value;
  if (!text.trim()) return;
  const max = state.limits.max_text || 2000;
  if (charCount(text) > max) {
    showError(`Too long: messages are at most ${max} characters.`);
    return;
  }
  const room = state.rooms.get(state.active);
  const command = text.startsWith("/") && !text.startsWith("//") && !/^\/me\s/i.test(text);
  if (!command && (!room || room.ended)) {
    showError(room ? "This conversation has ended. Close it or choose another room." : "Join a room first.");
    return;
  }
  showError("");
  if (command) {
    if (!send({ type: "say", room: state.active, text, ref: nextRef("c") })) {
      showError("Not connected right now. Try again in a moment.");
      return;
    }
  } else {
    const item = { ref: nextRef("m"), room: room.name, text, state: "new" };
    item.node = pendingNode(room, text.replace(/^\/me\s+/i, `* ${state.name} `));
    pending.push(item);
    flush(); // after any still waiting their turn
  }
  input.value = "";
  updateCounter();
}

function installComposer() {
  const input = $("composer-input");
  $("composer").addEventListener("submit", submit);
  input.addEventListener("input", updateCounter);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    } else if (event.key === "Escape" && input.value && !event.isComposing) {
      clearBox(input);
    }
  });
}

// Escape hides what is being typed at once; Ctrl+Z brings it back (the browser's own undo,
// kept by deleting through the editing commands rather than setting the value).
function clearBox(input) {
  input.select();
  if (!document.execCommand("delete")) input.value = "";
  updateCounter();
}

// An Escape that closes a dialog or the menu, or clears the box, is not half a quick exit.
function escapeUsedElsewhere() {
  const input = $("composer-input");
  return Boolean(document.querySelector("dialog[open]")) || menuOpen() || (document.activeElement === input && input.value !== "");
}

// ---- the rest of the chrome -----------------------------------------------------------------
function showName() {
  $("my-name").textContent = state.name || "…";
}

function showQueue(text, waiting = true) {
  $("queue").hidden = !text;
  $("queue-text").textContent = text || "";
  $("queue-cancel").textContent = waiting ? "Cancel" : "Dismiss";
  $("talk-btn").setAttribute("aria-pressed", String(Boolean(text) && waiting));
}

// Delivery interrupted (the server's shared state is away) is not "no listeners here": the
// person stays in line in spirit, and is put in line as soon as the server says it is back.
const TALK_WAITS = "Delivery is interrupted for a moment, so no listener can be reached yet. You will be put in line as soon as it is back.";

function askForListener() {
  talkWhenBack = false;
  showQueue("Looking for a listener…");
  request(
    { type: "talk" },
    {
      error: (f) => {
        state.talk = "idle";
        hideWaiting();
        talkWhenBack = f.code === "unavailable" && state.sharedAway;
        if (talkWhenBack) showQueue(TALK_WAITS);
        else showQueue(f.code === "unavailable" ? "One-to-one chats are not available on this server yet." : f.message, false);
      },
    },
  );
}

function installTalk() {
  $("talk-btn").addEventListener("click", () => {
    leaveWelcome();
    if (state.talk === "queued") return;
    askForListener();
  });
  $("queue-cancel").addEventListener("click", () => {
    talkWhenBack = false;
    if (state.talk === "queued") request({ type: "talk" }, { error: () => {} }); // again = cancel
    state.talk = "idle";
    hideWaiting();
    showQueue(null);
  });
}

function installTabs() {
  $("tabs").addEventListener("keydown", (event) => {
    const names = [...state.rooms.keys()];
    const at = names.indexOf(state.active);
    const to = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: names.length - 1 }[event.key];
    if (to === undefined || !names.length) return;
    event.preventDefault();
    activate(names[(to + names.length) % names.length], true);
  });
  $("panes").addEventListener("click", (event) => {
    const counted = [...state.rooms.values()].find((r) => r.countNode.contains(event.target));
    if (counted) send({ type: "who", room: counted.name, ref: nextRef("c") }); // listed in the log
    const room = [...state.rooms.values()].find((r) => r.leaveBtn === event.target);
    if (!room) return;
    if (room.ended) removeRoom(room.name);
    else askToLeave(room);
  });
}

// Leaving a room (or ending a private conversation, oneone.js) is one click too far from
// the message box to happen by accident: it asks first.
function askToLeave(room) {
  if (room.private) return confirmEnd(room, showError);
  const leave = () =>
    request({ type: "leave", room: room.name }, { error: (f) => (f.code === "not_in_room" ? removeRoom(room.name) : showError(f.message)) });
  confirmAction({
    title: `Leave ${room.label}?`,
    text: "Its messages will stop coming to you. You can join again from Rooms.",
    ok: "Leave room",
    run: leave,
  });
}

function installWelcome() {
  showWelcome({
    talk: () => $("talk-btn").click(),
    group: () => {
      leaveWelcome();
      $("composer-input").focus();
    },
    help: () => openDialog("dlg-help"),
  });
}

function boot() {
  const saved = restore();
  if (saved) {
    state.token = saved.token;
    state.uid = saved.uid;
    state.name = saved.name;
    state.discreet = Boolean(saved.discreet);
    for (const [name, info] of saved.rooms || []) ensureRoom(name, info);
    if (saved.active && state.rooms.has(saved.active)) activate(saved.active);
    else if (state.rooms.size) activate([...state.rooms.keys()][0]);
    showName();
  }
  conn = new Connection(socketUrl, { onopen, onclose, onframe, onstatus });
  // Requests may go out while resuming: the server answers them after the resume, in order.
  setSender(sendFrame);
  configureExit(null, () => conn.send({ type: "forget" }));
  fetch("/config.json", { cache: "no-store", credentials: "omit" })
    .then((response) => response.json())
    .then((config) => configureExit(config.exit_url))
    .catch(() => {}); // the default neutral page stays
  installExitShortcut(escapeUsedElsewhere);
  if (!saved) installWelcome(); // a person coming back (a resume) has seen it
  installPanels();
  installComposer();
  installDrafts(updateCounter);
  installWaiting();
  installStaffAlerts();
  installTalk();
  installTabs();
  installConversation();
  $("conn-retry").onclick = () => conn.retryNow();
  document.addEventListener("visibilitychange", seeActive);
  updateCounter();
  updateTitle();
  conn.start();
}

boot();
