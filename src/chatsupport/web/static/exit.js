// Quick exit: blank the page at once, ask the server to forget this person, clear what the
// page stored, and leave with location.replace so Back does not come back here.

export const DEFAULT_EXIT = "https://www.wikipedia.org/";
const DOUBLE_PRESS = 800; // ms between two Escape presses

let exitUrl = DEFAULT_EXIT;
let forget = () => {};
let leaving = false;

export function configureExit(url, forgetFn) {
  if (typeof url === "string" && /^https?:\/\//i.test(url)) exitUrl = url;
  if (forgetFn) forget = forgetFn;
}

export function quickExit() {
  if (leaving) return;
  leaving = true;
  document.documentElement.classList.add("leaving");
  document.title = "";
  document.body.replaceChildren(); // nothing of the chat stays on screen, even for a frame
  try {
    forget();
  } catch {
    // leaving matters more than telling the server
  }
  try {
    sessionStorage.clear();
    localStorage.clear();
  } catch {
    // storage may be disabled; there is then nothing to clear
  }
  location.replace(exitUrl);
}

// Escape twice within DOUBLE_PRESS leaves. A press that did something else first (closed a
// dialog or the menu, cleared the message box: `usedElsewhere()` says so, asked before that
// happens) does not count: closing a dialog with Escape then pressing Escape once more must
// not end the session by surprise.
export function installExitShortcut(usedElsewhere = () => false) {
  let last = -Infinity;
  // Capture phase: we look before a dialog or the box reacts to the key.
  window.addEventListener(
    "keydown",
    (event) => {
      if (event.key !== "Escape" || event.repeat || event.isComposing) return;
      if (usedElsewhere(event)) {
        last = -Infinity;
        return;
      }
      const now = performance.now(); // not event.timeStamp: synthetic events may carry 0
      if (now - last < DOUBLE_PRESS) quickExit();
      last = now;
    },
    true,
  );
}
