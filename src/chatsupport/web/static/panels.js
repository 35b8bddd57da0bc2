// The dialogs: get help now, rooms, settings (name, ignore list, staff sign-in, privacy),
// one message (ignore, report, moderate) and the staff panel (availability, alerts, reports).

import { $, clear, clock, el } from "./dom.js";
import { quickExit } from "./exit.js";
import { guessRegion } from "./region.js";
import { request, save, state } from "./state.js";
import { activate, announce, hideFrom, onMessageAction, unhideFrom } from "./view.js";

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
  installHelp();
  installRooms();
  installSettings();
  installMessage();
  installStaff();
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
  });
  $("nick-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("nick-input").value.trim();
    if (!name || name === state.name) return;
    request(
      { type: "nick", name },
      {
        reply: (f) => setStatus("settings-status", f.text || `You are now ${name}.`),
        error: (f) => setStatus("settings-status", f.message, true),
      },
    );
  });
  $("auth-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("auth-input").value.trim();
    if (!token) return;
    request(
      { type: "auth", token },
      {
        reply: (f) => {
          $("auth-input").value = "";
          setStatus("settings-status", f.text || "Signed in.");
        },
        error: (f) => setStatus("settings-status", f.message, true),
      },
    );
  });
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
        el("span", { text: name }),
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
    $("message-title").textContent = `Message from ${frame.name}`;
    const quote = $("message-quote");
    clear(quote);
    quote.append(el("p", { text: frame.kind === "me" ? `* ${frame.name} ${frame.text}` : frame.text }));
    quote.append(el("footer", { class: "hint", text: `${frame.name}, ${clock(frame.ts).text}` }));
    $("ignore-btn").textContent = `Ignore ${frame.name}`;
    $("mod-actions").hidden = state.role !== "mod";
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
                "Reports cannot be sent on this server right now. You can still ignore this person or leave the room.",
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

export function moderate(action, target, status = "message-status") {
  const frames = {
    mute: { type: "mute", uid: target.uid, minutes: 10 },
    kick: { type: "kick", uid: target.uid },
    ban: { type: "ban", uid: target.uid, minutes: 60 },
  };
  request(frames[action], {
    reply: (f) => setStatus(status, f.text || "Done."),
    error: (f) => setStatus(status, f.message, true),
  });
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
          setStatus("staff-status", f.code === "unavailable" ? "One-to-one chats are not available on this server yet." : f.message, true);
        },
      },
    );
  });
  $("reports-load").addEventListener("click", () =>
    request({ type: "reports" }, { many: true, error: (f) => setStatus("staff-status", f.message, true) }),
  );
}

export function signedIn(role) {
  state.role = role;
  $("staff-btn").hidden = false;
  $("staff-role").textContent = `Signed in as ${role === "mod" ? "a moderator" : "a listener"}.`;
  $("reports-load").hidden = role !== "mod";
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
      el("p", {}, frame.name ? el("span", { class: "msg-name", text: frame.name }) : null, frame.name ? ": " : "", frame.text),
      open,
    ),
  );
  bump();
  announce(`${title}${where}${frame.name ? ` about ${frame.name}` : ""}.`);
}

export function addReport(frame) {
  $("reports-empty").hidden = true;
  const evidence = el("ul", { class: "evidence", "aria-label": "Reported messages" });
  for (const message of frame.evidence || []) {
    evidence.append(el("li", {}, el("span", { class: "msg-name", text: message.name }), ": ", message.text));
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
    for (const [action, label] of [["mute", "Mute 10 min"], ["kick", "Kick"], ["ban", "Ban 1 hour"]]) {
      actions.append(
        el("button", {
          type: "button",
          class: "btn small",
          text: label,
          "aria-label": `${label}: ${frame.name}`,
          onclick: () => moderate(action, frame, "staff-status"),
        }),
      );
    }
    item.append(actions);
  }
  $("reports").prepend(item);
  bump();
}

function openRoom(name) {
  closeDialog("dlg-staff");
  if (state.rooms.has(name)) activate(name, true);
  else joinRoom(name);
}
