// What a person types stays with the room they typed it in: each room keeps its own draft,
// so a tab that opens by itself (a one-to-one match) never takes over a half-typed message,
// and coming back to a room gives its words back. Drafts live in memory only.

import { $ } from "./dom.js";
import { onSwitch } from "./view.js";

const drafts = new Map(); // room name -> text not yet sent

export function installDrafts(changed) {
  onSwitch((from, to, carry) => {
    const input = $("composer-input");
    if (!from && !drafts.has(to)) return; // a room closed under the words: they stay in the box
    if (carry && input.value) return; // typing on after a /join: the words go with them
    if (from) {
      if (input.value) drafts.set(from, input.value);
      else drafts.delete(from);
    }
    input.value = drafts.get(to) || "";
    drafts.delete(to);
    changed();
  });
}
