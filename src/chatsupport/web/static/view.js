// Rooms as tabs, each with its message log; messages, presence and notices as list items.
// Everything a person wrote is set with textContent (see dom.js): never parsed as HTML.
// What is unread: a message from someone else that arrived while its room was not on
// screen, the page was hidden or the log was scrolled up. It counts in the tab, the
// "Jump to latest" button and the page title, and a "New messages" line marks the first.

import { $, clear, clock, el } from "./dom.js";
import { save, state } from "./state.js";

const MAX_SHOWN = 500; // items kept on screen per room; older ones scroll away for good
const GROUP_SECONDS = 300; // one person's messages this close together share one name line
const ROLE_LABEL = { mod: "moderator", listener: "listener" };
const TITLE = "ChatSupport";
const DISCREET_TITLE = "Notes";
const DISCREET_ICON =
  "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E" +
  "%3Crect x='2.5' y='1.5' width='11' height='13' rx='1.5' fill='%23f2f2f2' stroke='%23888'/%3E" +
  "%3Cpath d='M5 5h6M5 8h6M5 11h4' stroke='%23888'/%3E%3C/svg%3E";
const messageOf = new WeakMap(); // action button -> message frame
let openMessage = () => {};
let switched = () => {}; // (from, to, carry): the room shown changes (drafts.js keeps each one's box)

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
    unread: 0, // messages from others not yet seen (see the top of this file)
    missed: 0, // messages replayed by a resume, announced as one number
    divider: null, // the "New messages" line, before the first unread message
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
    el("span", { class: "tab-label", dir: "auto", text: label }),
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
  room.log.addEventListener("scroll", () => onScroll(room), { passive: true });
  room.jumpCount = el("span");
  room.jump = el(
    "button",
    { type: "button", class: "btn small jump", hidden: true, onclick: () => jumpToLatest(room) },
    "Jump to latest",
    room.jumpCount,
  );
  room.pane = el(
    "section",
    { role: "tabpanel", class: "pane", id: `pane-${name}`, "aria-labelledby": `tab-${name}`, hidden: true },
    el("div", { class: "pane-head" }, el("h1", { class: "pane-title", dir: "auto", text: label }), room.countNode, room.leaveBtn),
    room.log,
    room.jump,
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
  updateTitle();
  if (state.active === name) {
    const next = [...state.rooms.keys()].pop();
    state.active = null;
    if (next) activate(next);
    else showPeople(null);
  }
  save();
}

// `carry`: the person is typing on through the switch (the reply to a /join they typed), so
// the words in the box stay there rather than staying behind as the old room's draft.
export function activate(name, focusTab = false, carry = false) {
  const room = state.rooms.get(name);
  if (!room) return;
  const before = state.rooms.get(state.active);
  if (before && before !== room && !before.unread) dropDivider(before); // read: no longer new
  for (const other of state.rooms.values()) {
    const on = other === room;
    other.tab.setAttribute("aria-selected", String(on));
    other.tab.tabIndex = on ? 0 : -1;
    other.pane.hidden = !on;
  }
  const from = state.active;
  state.active = name;
  if (from !== name) switched(from, name, carry);
  $("composer-label").textContent = `Message ${room.label}`;
  $("composer-input").placeholder = room.ended ? "This conversation has ended" : `Message ${room.label}`;
  if (focusTab) room.tab.focus();
  room.tab.scrollIntoView({ block: "nearest", inline: "nearest" }); // many rooms: the strip scrolls
  showPeople(room);
  // Back to a room with news: start at the first new message; otherwise at the newest.
  if (room.unread && room.divider?.isConnected) room.log.scrollTop = room.divider.offsetTop - 8;
  else scrollDown(room, true);
  onScroll(room);
  showUnread(room);
  save();
}

// ---- unread: tabs, the jump button, the page title ------------------------------------------
function onScreen() {
  return document.visibilityState !== "hidden" && !document.documentElement.hasAttribute("data-welcome");
}

function isSeen(room) {
  return state.active === room.name && onScreen() && nearBottom(room.log);
}

function onScroll(room) {
  room.jump.hidden = nearBottom(room.log);
  if (room.unread && isSeen(room)) markRead(room);
}

function jumpToLatest(room) {
  scrollDown(room, true);
  markRead(room);
  $("composer-input").focus();
}

export function markRead(room) {
  room.unread = 0;
  showUnread(room);
}

// The shown room, now that the page is back in front (or the welcome was left).
export function seeActive() {
  const room = state.rooms.get(state.active);
  if (room) onScroll(room);
}

function noteUnread(room, node) {
  if (isSeen(room)) return;
  room.unread += 1;
  if (room.unread === 1) {
    dropDivider(room);
    node.classList.remove("cont"); // the first new message shows its author
    room.divider = el("li", { class: "line divider" }, el("span", { text: "New messages" }));
    node.before(room.divider);
  }
  showUnread(room);
}

function dropDivider(room) {
  room.divider?.remove();
  room.divider = null;
}

function showUnread(room) {
  const n = room.unread;
  const count = n > 99 ? "99+" : String(n);
  room.unreadNode.replaceChildren(count, el("span", { class: "sr-only", text: " new" }));
  room.unreadNode.hidden = !n || state.active === room.name;
  room.jumpCount.textContent = n ? ` (${count} new)` : "";
  updateTitle();
}

// What a staff alert puts in the title until it is dealt with (listener.js), or null.
let titleMark = null;

export function markTitle(text) {
  titleMark = text;
  updateTitle();
}

// "(3) ChatSupport" (with a staff alert: "● Someone is waiting · ChatSupport"), or a
// neutral title and icon in discreet mode (no count: a number in a tab says "chat" as
// plainly as a name).
export function updateTitle() {
  if (document.documentElement.classList.contains("leaving")) return;
  let unread = 0;
  for (const room of state.rooms.values()) unread += room.unread;
  const title = titleMark ? `● ${titleMark} · ${TITLE}` : TITLE;
  document.title = state.discreet ? DISCREET_TITLE : unread ? `(${unread > 99 ? "99+" : unread}) ${title}` : title;
  $("icon").href = state.discreet ? DISCREET_ICON : "data:,";
}

// "3 here", or "2 here, 1 away": someone whose connection dropped may come back any moment.
export function hereText(count, away = 0) {
  return away > 0 ? `${count - away} here, ${away} away` : `${count} here`;
}

export function setCount(room, count, away = 0) {
  room.count = count;
  room.away = Math.min(away, count);
  room.countText.textContent = hereText(count, room.away);
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
  const members = [...room.members.values()].sort(
    (a, b) => Number(Boolean(a.away)) - Number(Boolean(b.away)) || rank(a) - rank(b) || a.name.localeCompare(b.name),
  );
  for (const member of members) {
    list.append(
      el(
        "li",
        { class: member.away ? "away" : null },
        el("span", { dir: "auto", text: member.name }),
        member.uid === state.uid ? el("span", { class: "hint", text: " (you)" }) : null,
        member.away ? el("span", { class: "hint", text: " (away)" }) : null,
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

// Our own messages still on their way stay at the bottom, below what the server has sent.
function firstPending(room) {
  return room.log.querySelector(":scope > .pending");
}

function lastShown(room) {
  const pending = firstPending(room);
  return pending ? pending.previousElementSibling : room.log.lastElementChild;
}

function append(room, node) {
  room.stick = nearBottom(room.log);
  const pending = !node.classList.contains("pending") && firstPending(room);
  if (pending) pending.before(node);
  else room.log.append(node);
  while (room.log.childElementCount > MAX_SHOWN) room.log.firstElementChild.remove();
  scrollDown(room, false);
  room.jump.hidden = nearBottom(room.log);
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
  if (!(frame.id > room.last)) return fillGap(room, frame);
  room.last = frame.id;
  if (state.ignored.has(frame.uid)) return true;
  const member = room.members.get(frame.uid);
  if (member && (member.role || null) !== (frame.role || null)) {
    setMembers(room, [...room.members.values()].map((m) => (m === member ? { ...m, role: frame.role } : m)));
  }
  const mine = frame.uid === state.uid;
  const node = messageNode(frame, mine, lastShown(room));
  append(room, node);
  if (mine) return true;
  noteUnread(room, node);
  if (state.replaying) {
    room.missed += 1; // a resume's replay: one sentence for all of them, when it is done
    return true;
  }
  if (document.documentElement.hasAttribute("data-welcome")) return true; // read in peace
  const where = state.active === frame.room ? "" : ` in ${room.label}`;
  const said = frame.kind === "me" ? `${frame.name} ${frame.text}` : `${frame.name}${where}: ${frame.text}`;
  const mention = node.classList.contains("mention") ? " (mentions you)" : "";
  const spoken = announce(frame.kind === "announce" ? `Announcement: ${frame.text}` : `${said}${mention}`);
  spoken.dataset.message = `${frame.room} ${frame.id}`; // a deletion takes it back (conversation.js)
  return true;
}

// A message older than the newest we have is a repeat, unless it fills the gap an earlier
// resume left (`state.filling`): then it goes in its place, by id, among those around it.
function fillGap(room, frame) {
  const after = state.filling?.get(room.name);
  if (after === undefined || !(frame.id > after)) return false;
  const shown = [...room.log.querySelectorAll(":scope > li.msg[data-id]")];
  if (shown.some((li) => Number(li.dataset.id) === frame.id)) return false;
  if (state.ignored.has(frame.uid)) return true;
  const next = shown.find((li) => Number(li.dataset.id) > frame.id) || firstPending(room);
  const prev = next ? next.previousElementSibling : lastShown(room);
  const node = messageNode(frame, frame.uid === state.uid, prev);
  if (next) next.before(node);
  else append(room, node);
  if (next?.classList.contains("cont") && !continues(node, { uid: next.dataset.uid, kind: next.dataset.kind, ts: Number(next.dataset.ts) })) {
    next.classList.remove("cont"); // its author changed: their name shows again
    next.querySelector(".msg-head")?.classList.remove("sr-only");
  }
  if (frame.uid !== state.uid) room.missed += 1;
  return true;
}

// After a resume: "4 new messages in #lobby" instead of reading out each one.
export function announceMissed() {
  for (const room of state.rooms.values()) {
    if (room.missed) announce(`${room.missed} new message${room.missed === 1 ? "" : "s"} in ${room.label}.`);
    room.missed = 0;
  }
}

function messageNode(frame, mine, prev) {
  const when = clock(frame.ts);
  const classes = `line msg kind-${frame.kind}${mine ? " mine" : ""}`;
  const li = el("li", { class: classes, dataset: { uid: frame.uid, id: frame.id, kind: frame.kind, ts: frame.ts } });
  if (frame.kind === "announce") {
    const text = el("span", { class: "msg-text", dir: "auto", text: frame.text });
    li.append(el("p", { class: "msg-head" }, el("strong", { text: "Announcement: " }), text, " ", time(when)));
    return li;
  }
  const name = el("span", { class: "msg-name", dir: "auto", text: frame.name });
  const marked = mine ? null : withMentions(frame.text);
  const words = marked || [frame.text];
  if (marked) li.classList.add("mention");
  if (frame.kind === "me") {
    const text = el("span", { class: "msg-text", dir: "auto" }, "* ", name, badge(frame.role), " ", ...words);
    li.append(el("p", { class: "msg-head" }, text, " ", time(when)));
  } else {
    // The same person again, soon after: their name line is kept for screen readers only.
    const head = el("p", { class: "msg-head" }, name, badge(frame.role), " ", time(when));
    if (continues(prev, frame)) {
      li.classList.add("cont");
      head.classList.add("sr-only");
    }
    li.append(head, el("p", { class: "msg-text", dir: "auto" }, ...words));
  }
  li.append(actionButton(frame, mine)); // our own: to delete it (conversation.js)
  return li;
}

function continues(prev, frame) {
  if (!prev || !prev.classList.contains("msg") || prev.classList.contains("pending")) return false;
  const gap = frame.ts - Number(prev.dataset.ts);
  return prev.dataset.uid === frame.uid && prev.dataset.kind === "say" && frame.kind === "say" && gap >= 0 && gap < GROUP_SECONDS && clock(frame.ts).day === clock(Number(prev.dataset.ts)).day;
}

// The text with every mention of our name marked, or null when it has none.
function withMentions(text) {
  if (!state.name) return null;
  const name = state.name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}_])${name}(?![\\p{L}\\p{N}_])`, "giu");
  const parts = [];
  let at = 0;
  for (const found of text.matchAll(pattern)) {
    parts.push(text.slice(at, found.index), el("mark", { text: found[0] }));
    at = found.index + found[0].length;
  }
  if (!parts.length) return null;
  parts.push(text.slice(at));
  return parts;
}

function actionButton(frame, mine) {
  const button = el("button", {
    type: "button",
    class: "msg-act",
    tabindex: "-1",
    "aria-haspopup": "dialog",
    "aria-label": mine ? "Options for your message" : `Options for the message from ${frame.name}`,
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
    el("p", { class: "msg-head" }, el("span", { class: "msg-name", dir: "auto", text: state.name || "You" }), " ",
      el("span", { class: "pending-note", text: "Sending…" })),
    el("p", { class: "msg-text", dir: "auto", text }),
  );
  append(room, node);
  return node;
}

// ---- screen reader announcements -----------------------------------------------------------
export function announce(text) {
  const region = $("announcer");
  const spoken = el("p", { text: text.length > 300 ? `${text.slice(0, 300)}…` : text });
  region.append(spoken);
  while (region.childElementCount > 3) region.firstElementChild.remove();
  return spoken;
}
