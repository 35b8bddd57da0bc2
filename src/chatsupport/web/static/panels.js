// The dialogs: get help now, rooms, settings (name, discreet tab, ignore list, staff
// sign-in, privacy), one message (ignore, report, moderate), the staff panel (availability,
// room tools, alerts, reports), "are you sure?", and the menu that holds the chat controls
// on a phone.

import { offerDelete } from "./conversation.js";
import { $, clear, clock, el, onText } from "./dom.js";
import { quickExit } from "./exit.js";
import { guessRegion } from "./region.js";
import { request, save, state } from "./state.js";
import { activate, announce, hideFrom, onMessageAction, unhideFrom, updateTitle } from "./view.js";
import { leaveWelcome } from "./welcome.js";

const FALLBACK_RESOURCES = [
  {
    name: "Find A Helpline",
    contacts: [{ kind: "web", value: "https://findahelpline.com", label: "findahelpline.com" }],
    notes: "Free, confidential helplines in many countries, searchable by topic",
  },
];

export function setStatus(id, text, bad = false) {
  const node = $(id);
  node.textContent = text;
  node.classList.toggle("bad", bad);
}

export function openDialog(id) {
  const dialog = $(id);
  if (!dialog.open) dialog.showModal();
  dialog.dispatchEvent(new Event("opened"));
}

function closeDialog(id) {
  const dialog = $(id);
  if (dialog.open) dialog.close();
}

export function installPanels() {
  for (const button of document.querySelectorAll("[data-open]")) {
    button.addEventListener("click", () => openDialog(button.dataset.open));
  }
  for (const button of document.querySelectorAll("[data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
  for (const button of document.querySelectorAll("[data-exit]")) {
    button.addEventListener("click", quickExit);
  }
  for (const dialog of document.querySelectorAll("dialog")) {
    // A click on the backdrop (outside the box) closes, as people expect on a phone.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close();
    });
    dialog.addEventListener("close", () => {
      for (const status of dialog.querySelectorAll(".dlg-status")) status.textContent = "";
    });
  }
  installMenu();
  installConfirm();
  installHelp();
  installRooms();
  installSettings();
  installMessage();
  installStaff();
}

// ---- the menu (phones) ------------------------------------------------------------------------
// Below 640 px the chat controls fold into a menu under the header; wider, they are a row
// and the menu button is not shown.
export function menuOpen() {
  return $("toolbar").classList.contains("open");
}

function setMenu(open, focusButton = false) {
  $("toolbar").classList.toggle("open", open);
  $("menu-btn").setAttribute("aria-expanded", String(open));
  if (!open && focusButton) $("menu-btn").focus();
}

function installMenu() {
  $("menu-btn").addEventListener("click", () => {
    setMenu(!menuOpen());
    if (menuOpen()) $("toolbar").querySelector("button:not([hidden])").focus();
  });
  $("toolbar").addEventListener("click", (event) => {
    if (event.target.closest("button")) setMenu(false);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && menuOpen()) setMenu(false, true);
  });
  document.addEventListener("click", (event) => {
    if (menuOpen() && !event.target.closest("#toolbar, #menu-btn")) setMenu(false);
  });
}

// ---- are you sure? ----------------------------------------------------------------------------
let confirming = null; // what the confirm button does: ({minutes, reason}) => void

// Asks first; `minutes` shows a duration picker with that choice made, `reason` a reason box,
// `danger` paints the confirm button red (what it does to someone else is hard to undo).
export function confirmAction({ title, text, ok, minutes = null, reason = false, danger = false, run }) {
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = ok;
  $("confirm-ok").classList.toggle("danger", danger);
  $("confirm-duration-row").hidden = minutes === null;
  if (minutes !== null) $("confirm-duration").value = String(minutes);
  $("confirm-reason-row").hidden = !reason;
  $("confirm-reason").value = "";
  confirming = run;
  openDialog("dlg-confirm");
}

function installConfirm() {
  $("confirm-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const run = confirming;
    confirming = null;
    closeDialog("dlg-confirm");
    run?.({ minutes: Number($("confirm-duration").value), reason: $("confirm-reason").value.trim() });
  });
  $("dlg-confirm").addEventListener("close", () => {
    confirming = null;
  });
}

// ---- get help now --------------------------------------------------------------------------
function installHelp() {
  const region = $("region");
  const known = new Set([...region.options].map((option) => option.value));
  const guess = guessRegion(known); // the person's choice, when they make one, replaces it
  if (guess) region.value = guess;
  $("dlg-help").addEventListener("opened", loadResources);
  region.addEventListener("change", loadResources);
  $("region-form").addEventListener("submit", (event) => event.preventDefault());
}

// A new session: the server shows the region's lines first on a crisis card from now on.
export function tellRegion() {
  const code = $("region").value;
  if (code && code !== "INT") request({ type: "region", code }, { error: () => {} });
}

function loadResources() {
  setStatus("resources-status", "Loading help lines…");
  request(
    { type: "resources", region: $("region").value },
    {
      reply: (frame) => {
        if (frame.type !== "notice") return;
        setStatus("resources-status", frame.text || "");
        showResources(frame.resources || []);
      },
      error: () => {
        setStatus("resources-status", "This chat could not list help lines just now. This one works everywhere:");
        showResources(FALLBACK_RESOURCES);
        // The page of help lines needs no connection and no script: always reachable.
        $("resources").append(el("li", { class: "resource" }, el("a", { href: "/help", text: "All help lines, by country" })));
      },
    },
  );
}

export function showResources(resources, list = $("resources")) {
  clear(list);
  for (const entry of resources) list.append(resourceNode(entry));
}

// One button or link per contact, built from the contact's exact `value` (CONTRACT §8: help
// lines are exact). Never pick digits out of a label or any other text: "999 or 112" once
// became tel:999112 that way.
const DIALLABLE = /^(?:\+[1-9][0-9]{5,14}|[*#]?[0-9][0-9*#]{1,19})$/;

function resourceNode(entry) {
  const li = el("li", { class: "resource" }, el("strong", { text: entry.name || "Help line" }));
  const ways = el("p", { class: "ways" });
  for (const contact of entry.contacts || []) {
    const link = contactLink(entry, contact);
    if (!link) continue;
    const extra = [contact.hours, (contact.languages || []).join(", ")].filter(Boolean).join(", ");
    ways.append(extra ? el("span", { class: "way" }, link, el("span", { class: "hint", text: ` (${extra})` })) : link);
  }
  if (ways.childElementCount) li.append(ways);
  else if (entry.line) li.append(el("p", { text: entry.line })); // nothing safe to link: say it
  const details = [entry.hours, (entry.languages || []).join(", "), entry.notes].filter(Boolean).join(" · ");
  if (details) li.append(el("p", { class: "hint", text: details }));
  return li;
}

function contactLink(entry, { kind, value, label, body }) {
  const shown = label || value;
  if (kind === "call" || kind === "text") {
    if (!DIALLABLE.test(value || "")) return null;
    const number = value.replace(/#/g, "%23"); // a bare # would start a URL fragment
    const call = kind === "call";
    const text = call ? `Call ${shown}` : body ? `Text ${body} to ${shown}` : `Text ${shown}`;
    const href = call ? `tel:${number}` : `sms:${number}${body ? `?body=${encodeURIComponent(body)}` : ""}`;
    return el("a", { class: `btn ${kind}`, href, text, "aria-label": `${text} (${entry.name})` });
  }
  if ((kind === "web" || kind === "chat") && /^https?:\/\//i.test(value || "")) {
    return el("a", { class: kind, href: value, target: "_blank", rel: "noopener noreferrer", text: shown });
  }
  return null;
}

// ---- rooms ----------------------------------------------------------------------------------
function installRooms() {
  $("dlg-rooms").addEventListener("opened", () => {
    setStatus("rooms-status", "Loading rooms…");
    request({ type: "rooms" }, { reply: (f) => showRoomList(f.rooms || []), error: (f) => setStatus("rooms-status", f.message, true) });
  });
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("join-input").value.trim().toLowerCase().replace(/^#/, "");
    if (!/^[a-z0-9-]{1,32}$/.test(name)) {
      setStatus("rooms-status", "Room names are 1 to 32 lower-case letters, digits or dashes.", true);
      return;
    }
    joinRoom(name);
  });
}

export function showRoomList(rooms) {
  const list = $("room-list");
  clear(list);
  setStatus("rooms-status", rooms.length ? "" : "No open rooms yet: start one below.");
  for (const room of rooms) {
    const inside = state.rooms.has(room.name);
    list.append(
      el(
        "li",
        {},
        el("span", { class: "room-name", text: `#${room.name}` }),
        el("span", { class: "hint", text: `${room.count} here` }),
        el("button", {
          type: "button",
          class: "btn small",
          text: inside ? "Open" : "Join",
          "aria-label": `${inside ? "Open" : "Join"} #${room.name}`,
          onclick: () => joinRoom(room.name),
        }),
      ),
    );
  }
}

function joinRoom(name) {
  leaveWelcome();
  if (state.rooms.has(name)) {
    closeDialog("dlg-rooms");
    activate(name, true);
    return;
  }
  setStatus("rooms-status", `Joining #${name}…`);
  request(
    { type: "join", room: name },
    {
      reply: () => {
        $("join-input").value = "";
        closeDialog("dlg-rooms");
        activate(name, true);
      },
      error: (f) => setStatus("rooms-status", f.message, true),
    },
  );
}

// ---- settings -------------------------------------------------------------------------------
function installSettings() {
  $("dlg-settings").addEventListener("opened", () => {
    $("nick-input").value = state.name || "";
    $("nick-input").maxLength = state.limits.max_name || 24;
    $("discreet-switch").checked = state.discreet;
  });
  $("discreet-switch").addEventListener("change", (event) => {
    state.discreet = event.target.checked;
    updateTitle();
    save();
  });
  onText("nick-form", "nick-input", (name) => {
    if (name === state.name) return;
    request(
      { type: "nick", name },
      {
        reply: (f) => setStatus("settings-status", f.text || `You are now ${name}.`),
        error: (f) => setStatus("settings-status", f.message, true),
      },
    );
  });
  onText("auth-form", "auth-input", (token) =>
    request(
      { type: "auth", token },
      {
        reply: (f) => {
          $("auth-input").value = "";
          setStatus("settings-status", f.text || "Signed in.");
        },
        error: (f) => setStatus("settings-status", f.message, true),
      },
    ),
  );
}

export function showIgnored() {
  const list = $("ignored");
  clear(list);
  $("ignored-empty").hidden = state.ignored.size > 0;
  for (const [uid, name] of state.ignored) {
    const stop = () =>
      request(
        { type: "unignore", uid },
        {
          reply: () => setIgnored(uid, null),
          error: (f) => {
            // They are gone from the server: nothing is held back any more, just tidy up.
            if (f.code === "bad_request") setIgnored(uid, null);
            else setStatus("settings-status", f.message, true);
          },
        },
      );
    list.append(
      el(
        "li",
        {},
        el("span", { dir: "auto", text: name }),
        el("button", { type: "button", class: "btn small", text: "Stop ignoring", "aria-label": `Stop ignoring ${name}`, onclick: stop }),
      ),
    );
  }
}

export function setIgnored(uid, name) {
  if (name) {
    state.ignored.set(uid, name);
    hideFrom(uid);
  } else {
    state.ignored.delete(uid);
    unhideFrom(uid);
  }
  showIgnored();
  save();
}

// ---- one message ----------------------------------------------------------------------------
let current = null; // {frame, button}

function installMessage() {
  onMessageAction((frame, button) => {
    current = { frame, button };
    const mine = frame.uid === state.uid;
    $("message-title").textContent = mine ? "Your message" : `Message from ${frame.name}`;
    const quote = $("message-quote");
    clear(quote);
    quote.append(el("p", { dir: "auto", text: frame.kind === "me" ? `* ${frame.name} ${frame.text}` : frame.text }));
    quote.append(el("footer", { class: "hint", text: `${frame.name}, ${clock(frame.ts).text}` }));
    $("ignore-btn").textContent = `Ignore ${frame.name}`;
    $("ignore-btn").hidden = mine;
    $("report-form").hidden = mine;
    $("mod-actions").hidden = state.role !== "mod" || mine;
    offerDelete(frame);
    openDialog("dlg-message");
  });
  $("dlg-message").addEventListener("close", () => {
    const button = current && current.button;
    current = null;
    if (button && button.isConnected) button.focus();
  });
  $("ignore-btn").addEventListener("click", () => {
    const { frame } = current;
    request(
      { type: "ignore", uid: frame.uid },
      {
        reply: () => {
          setIgnored(frame.uid, frame.name);
          announce(`You will no longer see messages from ${frame.name}.`);
          closeDialog("dlg-message");
        },
        error: (f) => setStatus("message-status", f.message, true),
      },
    );
  });
  $("report-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const { frame } = current;
    const reason = $("report-reason").value;
    setStatus("message-status", "Sending your report…");
    request(
      { type: "report", id: frame.id, room: frame.room, reason },
      {
        reply: (f) => setStatus("message-status", f.text || "Thank you: the moderators will look at it."),
        error: (f) =>
          f.code === "unavailable"
            ? setStatus(
                "message-status",
                state.sharedAway
                  ? "Delivery is interrupted for a moment, so the report could not be sent: try again when it is back. You can still ignore this person or leave the room."
                  : "Reports cannot be sent on this server right now. You can still ignore this person or leave the room.",
                true,
              )
            : setStatus("message-status", f.message, true),
      },
    );
  });
  for (const button of document.querySelectorAll("[data-mod]")) {
    button.addEventListener("click", () => moderate(button.dataset.mod, current.frame));
  }
}

// What each action does, said before it is done (docs/moderation.md), and its usual length.
const MOD_ACTIONS = {
  mute: {
    label: "Mute",
    minutes: 10,
    says: (name) => `${name} is told, and can read but not write until the mute ends.`,
  },
  shadow: {
    label: "Shadow-mute",
    minutes: 60,
    says: (name) =>
      `${name}'s messages will reach only ${name}, who is not told. Never use this on someone in distress: they would believe they are heard.`,
  },
  kick: {
    label: "Kick",
    reason: true,
    says: (name) => `${name} is disconnected and told why. They can come back as someone new.`,
  },
  ban: {
    label: "Ban",
    minutes: 60,
    says: (name) =>
      `${name} is disconnected, and nobody can connect from their network until the ban ends: it may also keep out others who share that network.`,
  },
};

export function moderate(action, target, status = "message-status") {
  const spec = MOD_ACTIONS[action];
  confirmAction({
    title: `${spec.label} ${target.name}?`,
    text: spec.says(target.name),
    ok: `${spec.label} ${target.name}`,
    minutes: spec.minutes ?? null,
    reason: Boolean(spec.reason),
    danger: action !== "mute",
    run: ({ minutes, reason }) => {
      const frame = { type: action, uid: target.uid };
      if (spec.minutes) frame.minutes = minutes;
      if (spec.reason && reason) frame.reason = reason;
      setStatus(status, "…");
      request(frame, {
        reply: (f) => {
          setStatus(status, f.text || "Done.");
          if (action !== "kick") rememberAction(target, f.text || `${spec.label}: ${target.name}`);
        },
        error: (f) => setStatus(status, f.message, true),
      });
    },
  });
}

// Mutes, shadow-mutes and bans made from this page, each with a way to lift it.
function rememberAction(target, text) {
  $("actions-empty").hidden = true;
  const item = el(
    "li",
    {},
    el("span", { dir: "auto", text }),
    el("button", {
      type: "button",
      class: "btn small",
      text: "Lift",
      "aria-label": `Lift for ${target.name}`,
      onclick: () => lift({ uid: target.uid }, () => item.remove()),
    }),
  );
  $("mod-done").prepend(item);
}

function lift(who, done = () => {}) {
  request(
    { type: "unban", ...who },
    {
      reply: (f) => {
        setStatus("staff-status", f.text || "Lifted.");
        done();
      },
      error: (f) => setStatus("staff-status", f.message, true),
    },
  );
}

// ---- staff ----------------------------------------------------------------------------------
let unseen = 0;

function installStaff() {
  $("dlg-staff").addEventListener("opened", () => {
    unseen = 0;
    $("staff-count").hidden = true;
  });
  $("listen-switch").addEventListener("change", (event) => {
    const on = event.target.checked;
    request(
      { type: "listen", on },
      {
        reply: (f) => setStatus("staff-status", f.text || (on ? "You are available." : "You are not available.")),
        error: (f) => {
          event.target.checked = !on;
          const words = state.sharedAway ? "Delivery is interrupted for a moment: try again when it is back." : "One-to-one chats are not available on this server yet.";
          setStatus("staff-status", f.code === "unavailable" ? words : f.message, true);
        },
      },
    );
  });
  $("reports-load").addEventListener("click", () => loadReports({}));
  $("reports-more").addEventListener("click", () => loadReports({ before: $("reports-more").dataset.before }));
  installRoomTools();
}

// Slow mode, lock and unlock for a room the moderator is in; lifting a ban by name.
function installRoomTools() {
  $("dlg-staff").addEventListener("opened", () => {
    const select = $("tools-room");
    clear(select);
    for (const room of state.rooms.values()) {
      if (!room.private && !room.ended) select.append(el("option", { value: room.name, text: room.label }));
    }
    if (state.rooms.has(state.active) && !state.rooms.get(state.active).private) select.value = state.active;
  });
  const roomAction = (frame) => () => {
    const room = $("tools-room").value;
    if (!room) {
      setStatus("staff-status", "Join a room first.", true);
      return;
    }
    request({ ...frame, room }, { reply: (f) => setStatus("staff-status", f.text || "Done."), error: (f) => setStatus("staff-status", f.message, true) });
  };
  $("slow-set").addEventListener("click", () => roomAction({ type: "slow", seconds: Number($("slow-seconds").value) })());
  $("lock-btn").addEventListener("click", roomAction({ type: "lock" }));
  $("unlock-btn").addEventListener("click", roomAction({ type: "unlock" }));
  $("room-tools").addEventListener("submit", (event) => event.preventDefault());
  onText("unban-form", "unban-name", (name) => lift({ name }, () => ($("unban-name").value = "")));
}

export function signedIn(role) {
  state.role = role;
  $("staff-btn").hidden = false;
  $("staff-role").textContent = `Signed in as ${role === "mod" ? "a moderator" : "a listener"}.`;
  $("reports-load").hidden = role !== "mod";
  $("mod-tools").hidden = role !== "mod";
}

function bump() {
  if ($("dlg-staff").open) return;
  unseen += 1;
  const count = $("staff-count");
  count.textContent = String(unseen);
  count.hidden = false;
}

const ALERT_TITLES = { crisis: "Crisis", waiting: "Someone is waiting", debrief: "Debrief asked", reports: "Repeated reports" };

export function addAlert(frame) {
  $("alerts-empty").hidden = true;
  const title = ALERT_TITLES[frame.kind] || "Alert";
  const where = frame.room ? ` in #${frame.room}` : "";
  const open = frame.room && el("button", { type: "button", class: "btn small", text: `Open #${frame.room}`, onclick: () => openRoom(frame.room) });
  $("alerts").prepend(
    el(
      "li",
      { class: "card-item" },
      el("p", {}, el("strong", { text: `${title}${where}` }), " · ", clock().text),
      el(
        "p",
        {},
        frame.name ? el("span", { class: "msg-name", dir: "auto", text: frame.name }) : null,
        frame.name ? ": " : "",
        el("span", { dir: "auto", text: frame.text }),
      ),
      open,
    ),
  );
  bump();
  announce(`${title}${where}${frame.name ? ` about ${frame.name}` : ""}.`);
}

const reportsShown = new Set(); // report ids: live and listed again by "Load recent reports"

// One page of open reports, newest first (the server bounds its size); "Load older reports"
// asks for the page after the last one shown, while the server says there is one.
function loadReports(page) {
  const more = $("reports-more");
  const ref = request(
    { type: "reports", ...page },
    {
      many: true,
      reply: (f) => {
        if (f.type !== "notice") return;
        state.replies.delete(ref);
        more.hidden = !f.before;
        more.dataset.before = f.before || "";
      },
      error: (f) => setStatus("staff-status", f.message, true),
    },
  );
}

export function addReport(frame) {
  if (frame.id) {
    if (reportsShown.has(frame.id)) return;
    reportsShown.add(frame.id);
  }
  $("reports-empty").hidden = true;
  const evidence = el("ul", { class: "evidence", "aria-label": "Reported messages" });
  for (const message of frame.evidence || []) {
    const words = el("span", { dir: "auto", text: message.text });
    evidence.append(el("li", {}, el("span", { class: "msg-name", dir: "auto", text: message.name }), ": ", words));
  }
  const item = el(
    "li",
    { class: "card-item" },
    el("p", {}, el("strong", { text: `Report about ${frame.name}` }), ` in #${frame.room} · ${clock(frame.ts).text}`),
    el("p", { text: `Reason: ${frame.reason}` }),
    evidence,
  );
  if (state.role === "mod") {
    const actions = el("div", { class: "actions" });
    for (const [action, { label }] of Object.entries(MOD_ACTIONS)) {
      actions.append(
        el("button", {
          type: "button",
          class: "btn small",
          text: `${label}…`,
          "aria-label": `${label}: ${frame.name}`,
          onclick: () => moderate(action, frame, "staff-status"),
        }),
      );
    }
    item.append(actions);
  }
  if (frame.ref) $("reports").append(item); // a listed page: newest first, below the live ones
  else $("reports").prepend(item);
  bump();
}

function openRoom(name) {
  closeDialog("dlg-staff");
  if (state.rooms.has(name)) activate(name, true);
  else joinRoom(name);
}
