// Rooms as tabs, each with its message log; messages, presence and notices as list items.
// Everything a person wrote is set with textContent (see dom.js): never parsed as HTML.

import { $, clear, clock, el } from "./dom.js";
import { save, state } from "./state.js";

const MAX_SHOWN = 500; // items kept on screen per room; older ones scroll away for good
const ROLE_LABEL = { mod: "moderator", listener: "listener" };
const messageOf = new WeakMap(); // action button -> message frame
let openMessage = () => {};
let switched = () => {}; // (from, to): the room shown changes (drafts.js keeps each one's box)

export function onMessageAction(fn) {
  openMessage = fn;
}

export function onSwitch(fn) {
  switched = fn;
}

// ---- rooms and tabs -------------------------------------------------------------------------
export function ensureRoom(name, { floor = 0, partner = null } = {}) {
  let room = state.rooms.get(name);
  if (room) return room;
  const isPrivate = name.startsWith("dm-");
  room = {
    name,
    private: isPrivate,
    partner,
    floor, // the room's last id when we joined: a resume never goes further back
    last: 0, // highest message id shown: anything at or below it is a duplicate
    count: 0,
    members: new Map(),
    unread: 0,
    ended: false,
  };
  const label = isPrivate ? `Private: ${partner ? partner.name : "listener"}` : `#${name}`;
  room.label = label;
  room.tab = el(
    "button",
    {
      type: "button",
      role: "tab",
      class: "tab",
      id: `tab-${name}`,
      "aria-controls": `pane-${name}`,
      "aria-selected": "false",
      tabindex: "-1",
      onclick: () => activate(name),
    },
    el("span", { class: "tab-label", text: label }),
    (room.unreadNode = el("span", { class: "unread", hidden: true })),
  );
  room.countText = el("span");
  room.countNode = el(
    "button",
    { type: "button", class: "link-btn pane-count", hidden: true }, // shown once counted
    room.countText,
    el("span", { class: "sr-only", text: ": who is here?" }),
  );
  room.leaveBtn = el("button", {
    type: "button",
    class: "btn small",
    text: isPrivate ? "End conversation" : "Leave room",
    "aria-label": isPrivate ? null : `Leave room #${name}`, // the visible words, then which room
  });
  room.log = el("ol", { class: "log", "aria-label": `Messages in ${label}` });
  room.log.addEventListener("keydown", (event) => roveMessages(room, event));
  room.pane = el(
    "section",
    { role: "tabpanel", class: "pane", id: `pane-${name}`, "aria-labelledby": `tab-${name}`, hidden: true },
    el("div", { class: "pane-head" }, el("h1", { class: "pane-title", text: label }), room.countNode, room.leaveBtn),
    room.log,
  );
  if (isPrivate) {
    const who = partner ? partner.name : "a listener";
    system(room, `This is a private conversation with ${who}. Nobody else can read it.`, "info");
  }
  $("tabs").append(room.tab);
  $("panes").append(room.pane);
  state.rooms.set(name, room);
  save();
  return room;
}

export function removeRoom(name) {
  const room = state.rooms.get(name);
  if (!room) return;
  room.tab.remove();
  room.pane.remove();
  state.rooms.delete(name);
  if (state.active === name) {
    const next = [...state.rooms.keys()].pop();
    state.active = null;
    if (next) activate(next);
    else showPeople(null);
  }
  save();
}

export function activate(name, focusTab = false) {
  const room = state.rooms.get(name);
  if (!room) return;
  for (const other of state.rooms.values()) {
    const on = other === room;
    other.tab.setAttribute("aria-selected", String(on));
    other.tab.tabIndex = on ? 0 : -1;
    other.pane.hidden = !on;
  }
  const from = state.active;
  state.active = name;
  if (from !== name) switched(from, name);
  room.unread = 0;
  room.unreadNode.hidden = true;
  $("composer-label").textContent = `Message ${room.label}`;
  $("composer-input").placeholder = room.ended ? "This conversation has ended" : `Message ${room.label}`;
  if (focusTab) room.tab.focus();
  showPeople(room);
  scrollDown(room, true);
  save();
}

export function setCount(room, count) {
  room.count = count;
  room.countText.textContent = `${count} here`;
  room.countNode.hidden = false;
}

export function setMembers(room, members) {
  room.members = new Map(members.map((m) => [m.uid, m]));
  if (state.active === room.name) showPeople(room);
}

export function showPeople(room) {
  const list = $("people");
  clear(list);
  if (!room) return;
  const members = [...room.members.values()].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
  for (const member of members) {
    list.append(
      el(
        "li",
        {},
        el("span", { text: member.name }),
        member.uid === state.uid ? el("span", { class: "hint", text: " (you)" }) : null,
        badge(member.role),
      ),
    );
  }
}

function rank(member) {
  return member.role === "mod" ? 0 : member.role === "listener" ? 1 : 2;
}

export function endRoom(room, text) {
  room.ended = true;
  system(room, text, "info");
  room.leaveBtn.textContent = "Close";
  room.leaveBtn.setAttribute("aria-label", `Close ${room.label}`);
  if (state.active === room.name) activate(room.name);
  save();
}

// ---- lines in a log -------------------------------------------------------------------------
function badge(role) {
  const label = ROLE_LABEL[role];
  return label ? el("span", { class: `badge badge-${role}`, text: label }) : null;
}

function nearBottom(log) {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
}

function scrollDown(room, force) {
  if (force || room.stick) room.log.scrollTop = room.log.scrollHeight;
}

function append(room, node) {
  room.stick = nearBottom(room.log);
  room.log.append(node);
  while (room.log.childElementCount > MAX_SHOWN) room.log.firstElementChild.remove();
  scrollDown(room, false);
}

export function system(room, text, kind = "sys") {
  const when = clock();
  append(room, el("li", { class: `line ${kind}` }, el("span", { class: "sys-text", text }), time(when)));
}

export function block(room, node) {
  append(room, el("li", { class: "line card" }, node));
}

function time(when) {
  return el("time", { datetime: when.iso, text: when.text });
}

// A message from the server; false when it was already shown (resume overlap).
export function addMessage(frame) {
  let room = state.rooms.get(frame.room);
  if (!room) room = ensureRoom(frame.room); // e.g. a private room matched while we were away
  if (!(frame.id > room.last)) return false;
  room.last = frame.id;
  if (state.ignored.has(frame.uid)) return true;
  const member = room.members.get(frame.uid);
  if (member && (member.role || null) !== (frame.role || null)) {
    setMembers(room, [...room.members.values()].map((m) => (m === member ? { ...m, role: frame.role } : m)));
  }
  const mine = frame.uid === state.uid;
  const node = messageNode(frame, mine);
  append(room, node);
  if (!mine) {
    if (state.active !== frame.room) {
      room.unread += 1;
      room.unreadNode.replaceChildren(
        room.unread > 99 ? "99+" : String(room.unread),
        el("span", { class: "sr-only", text: " new" }),
      );
      room.unreadNode.hidden = false;
    }
    const where = state.active === frame.room ? "" : ` in ${room.label}`;
    const said = frame.kind === "me" ? `${frame.name} ${frame.text}` : `${frame.name}${where}: ${frame.text}`;
    announce(frame.kind === "announce" ? `Announcement: ${frame.text}` : said);
  }
  return true;
}

function messageNode(frame, mine) {
  const when = clock(frame.ts);
  const classes = `line msg kind-${frame.kind}${mine ? " mine" : ""}`;
  const li = el("li", { class: classes, dataset: { uid: frame.uid, id: frame.id } });
  if (frame.kind === "announce") {
    const text = el("span", { class: "msg-text", text: frame.text });
    li.append(el("p", { class: "msg-head" }, el("strong", { text: "Announcement: " }), text, " ", time(when)));
    return li;
  }
  const name = el("span", { class: "msg-name", text: frame.name });
  if (frame.kind === "me") {
    const text = el("span", { class: "msg-text" }, "* ", name, badge(frame.role), " ", frame.text);
    li.append(el("p", { class: "msg-head" }, text, " ", time(when)));
  } else {
    li.append(el("p", { class: "msg-head" }, name, badge(frame.role), " ", time(when)));
    li.append(el("p", { class: "msg-text", text: frame.text }));
  }
  if (!mine) li.append(actionButton(frame));
  return li;
}

function actionButton(frame) {
  const button = el("button", {
    type: "button",
    class: "msg-act",
    tabindex: "-1",
    "aria-haspopup": "dialog",
    "aria-label": `Options for the message from ${frame.name}`,
    onclick: () => openMessage(frame, button),
    text: "⋯",
  });
  messageOf.set(button, frame);
  const room = state.rooms.get(frame.room);
  // One tab stop per log: the newest message's button, unless focus is already inside.
  if (!room.log.contains(document.activeElement)) {
    if (room.stop) room.stop.tabIndex = -1;
    button.tabIndex = 0;
    room.stop = button;
  }
  return button;
}

// Arrow keys move between the messages' option buttons (one tab stop for the whole log).
function roveMessages(room, event) {
  const keys = ["ArrowUp", "ArrowDown", "Home", "End"];
  if (!keys.includes(event.key) || !event.target.classList.contains("msg-act")) return;
  const buttons = [...room.log.querySelectorAll(".msg-act")].filter((b) => !b.closest("[hidden]"));
  const at = buttons.indexOf(event.target);
  const to = { ArrowUp: at - 1, ArrowDown: at + 1, Home: 0, End: buttons.length - 1 }[event.key];
  const next = buttons[Math.max(0, Math.min(buttons.length - 1, to))];
  if (!next) return;
  event.preventDefault();
  event.target.tabIndex = -1;
  next.tabIndex = 0;
  room.stop = next;
  next.focus();
}

export function hideFrom(uid) {
  for (const node of document.querySelectorAll(".msg")) {
    if (node.dataset.uid === uid) node.hidden = true;
  }
}

export function unhideFrom(uid) {
  for (const node of document.querySelectorAll(".msg")) {
    if (node.dataset.uid === uid) node.hidden = false;
  }
}

// Our own message on its way: shown at once, replaced by the server's copy when it comes back.
export function pendingNode(room, text) {
  const node = el(
    "li",
    { class: "line msg mine pending" },
    el("p", { class: "msg-head" }, el("span", { class: "msg-name", text: state.name || "You" }), " ",
      el("span", { class: "pending-note", text: "Sending…" })),
    el("p", { class: "msg-text", text }),
  );
  append(room, node);
  return node;
}

// ---- screen reader announcements -----------------------------------------------------------
export function announce(text) {
  const region = $("announcer");
  region.append(el("p", { text: text.length > 300 ? `${text.slice(0, 300)}…` : text }));
  while (region.childElementCount > 3) region.firstElementChild.remove();
}
