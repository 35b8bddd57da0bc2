// What the page knows, in memory; only the resume essentials go to sessionStorage.

const STORE = "chatsupport.session";
const CLIENT = "chatsupport.client";
let clientInMemory = null;

export const state = {
  token: null, // secret resume token (sessionStorage only; cleared by quick exit)
  uid: null,
  name: null,
  role: null, // null | "listener" | "mod" after auth
  rooms: new Map(), // name -> room (see view.js ensureRoom), in tab order
  active: null, // name of the room shown
  ignored: new Map(), // uid -> name
  limits: { max_text: 2000, max_name: 24 },
  talk: "idle", // idle | queued
  discreet: false, // a neutral tab title and icon (view.js updateTitle)
  replaying: false, // a resume is replaying missed messages: announce their number, not each
  filling: null, // a resume filling a gap an earlier one left: room name -> newest id before it
  sharedAway: false, // the server said delivery is interrupted (`notice unavailable`) and not yet back
  seq: 0,
  replies: new Map(), // ref -> {reply, error, many}
};

let sender = () => false;

export function setSender(fn) {
  sender = fn;
}

export function nextRef(prefix) {
  state.seq += 1;
  return `${prefix}${state.seq}`;
}

// Sends `frame` with a fresh ref; `handlers.reply(frame)` / `handlers.error(frame)` get the answer.
export function request(frame, handlers = {}) {
  const ref = nextRef("u");
  if (!sender({ ...frame, ref })) {
    handlers.error?.({ code: "offline", message: "Not connected right now. Try again in a moment." });
    return null;
  }
  state.replies.set(ref, handlers);
  return ref;
}

export function send(frame) {
  return sender(frame);
}

export function save() {
  const rooms = [...state.rooms.values()]
    .filter((room) => !room.ended)
    .map((room) => [room.name, { floor: room.floor, partner: room.partner }]);
  const data = { token: state.token, uid: state.uid, name: state.name, rooms, active: state.active, discreet: state.discreet };
  try {
    sessionStorage.setItem(STORE, JSON.stringify(data));
  } catch {
    // private modes may refuse storage: the session then lasts as long as the page
  }
}

export function restore() {
  try {
    const data = JSON.parse(sessionStorage.getItem(STORE) || "null");
    if (data && typeof data.token === "string") return data;
  } catch {
    // a damaged entry is as good as none
  }
  return null;
}

export function forgetStored() {
  try {
    sessionStorage.removeItem(STORE);
  } catch {
    // nothing stored
  }
}

// A random id for this tab's session, sent as /ws?client=: a moderator's ban then stops this
// person (this tab), not everyone who shares their network (a school, an office, a mobile
// carrier). sessionStorage only, never a cookie: gone when the tab closes or the quick exit
// clears storage. The server keeps only a keyed hash of it, and only while it holds the
// session or a ban.
export function clientId() {
  try {
    const kept = sessionStorage.getItem(CLIENT);
    if (kept && /^[A-Za-z0-9_-]{16,64}$/.test(kept)) return kept;
  } catch {
    // storage refused (a private mode): the id lasts as long as the page
  }
  if (!clientInMemory) {
    const bytes = crypto.getRandomValues(new Uint8Array(18));
    clientInMemory = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  try {
    sessionStorage.setItem(CLIENT, clientInMemory);
  } catch {
    // as above
  }
  return clientInMemory;
}
