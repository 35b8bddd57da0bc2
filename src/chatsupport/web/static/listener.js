// Staff who notice: a crisis alert, someone waiting for a listener, a report or a request
// for a debrief is a banner with an action at the top of the page, the page's title says
// so, an optional sound plays (made here with WebAudio: nothing is loaded), and a system
// notification appears while the tab is hidden (permission asked once, after a staff
// sign-in; never for seekers).

import { $, el } from "./dom.js";
import { openDialog } from "./panels.js";
import { request, state } from "./state.js";
import { activate, markTitle } from "./view.js";

let banner = null;
let sound = false;
let asked = false;

// What each staff event says, and what its button does.
function describe(frame) {
  if (frame.type === "report") {
    return { title: `New report about ${frame.name}`, text: `Reason: ${frame.reason}`, label: "Open reports", run: () => openDialog("dlg-staff") };
  }
  switch (frame.kind) {
    case "crisis":
      if (frame.room && state.rooms.has(frame.room) && state.rooms.get(frame.room).private) {
        return { title: `${frame.name} may need help`, text: "In your private conversation.", label: "Open the conversation", run: () => activate(frame.room, true) };
      }
      return {
        title: `${frame.name} may need help`,
        text: frame.room ? `In #${frame.room}: “${frame.text}”` : frame.text,
        label: "Offer a private chat",
        run: () => offer(frame),
      };
    case "waiting":
      return { title: "Someone is waiting for a listener", text: frame.text, label: "Be available", run: beAvailable };
    case "debrief":
      return { title: `${frame.name} asks for a debrief`, text: frame.text, label: "Open staff panel", run: () => openDialog("dlg-staff") };
    case "reports":
      return { title: `${frame.name} has been reported again`, text: frame.text, label: "Open reports", run: () => openDialog("dlg-staff") };
    default:
      return null; // e.g. an automatic flood mute: the staff panel lists it, no banner
  }
}

function offer(frame) {
  const sent = (f) => {
    $("listen-switch").checked = true; // offering makes them available
    show({ title: "Offer sent", text: f.text });
  };
  request({ type: "offer", uid: frame.uid }, { reply: sent, error: (f) => show({ title: "Could not offer a chat", text: f.message }) });
}

function beAvailable() {
  const toggle = $("listen-switch");
  if (toggle.checked) return;
  toggle.checked = true;
  toggle.dispatchEvent(new Event("change"));
}

// A staff event arrived (`alert` or `report`).
export function staffEvent(frame) {
  const what = describe(frame);
  if (!what) return;
  show(what);
  markTitle(what.title);
  if (sound) chime();
  if (document.hidden && "Notification" in window && Notification.permission === "granted") {
    try {
      const note = new Notification(what.title, { body: what.text || "", tag: "chatsupport-staff" });
      note.onclick = () => window.focus();
    } catch {
      // some browsers only notify from a service worker: the title and banner still tell
    }
  }
}

function show({ title, text, label, run }) {
  dismiss(false);
  const action = label && el("button", { type: "button", class: "btn small", text: label, onclick: () => { dismiss(); run(); } });
  banner = el(
    "div",
    { class: "alert-banner", id: "alert-banner", role: "alert" },
    el("p", {}, el("strong", { text: title }), text ? ` ${text}` : ""),
    action,
    el("button", { type: "button", class: "btn small", text: "Dismiss", onclick: () => dismiss() }),
  );
  document.querySelector("header.top").after(banner);
}

function dismiss(restore = true) {
  banner?.remove();
  banner = null;
  if (restore) markTitle(null);
}

// A short two-note chime, only when the person turned sound on.
function chime() {
  try {
    const audio = new AudioContext();
    for (const [at, hz] of [[0, 660], [0.18, 880]]) {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = hz;
      gain.gain.setValueAtTime(0.0001, audio.currentTime + at);
      gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + at + 0.16);
      tone.connect(gain).connect(audio.destination);
      tone.start(audio.currentTime + at);
      tone.stop(audio.currentTime + at + 0.18);
    }
    setTimeout(() => audio.close(), 600);
  } catch {
    // no audio here: the banner and the title still tell
  }
}

// After a staff sign-in: the sound switch in the staff panel, and notifications asked once.
export function staffSignedIn() {
  if (!$("sound-switch")) {
    const toggle = el("input", { type: "checkbox", id: "sound-switch" });
    toggle.addEventListener("change", () => (sound = toggle.checked));
    $("listen-switch").closest("label").after(el("label", { class: "switch" }, toggle, " Sound for alerts"));
  }
  if (asked || !("Notification" in window) || Notification.permission !== "default") return;
  asked = true;
  Notification.requestPermission().catch(() => {});
}

export function installStaffAlerts() {
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !banner) markTitle(null);
  });
}
