// Building DOM without HTML strings: text from people only ever becomes textContent.

export function $(id) {
  return document.getElementById(id);
}

// el("li", {class: "msg", dataset: {id: 3}}, "text", child) -> element
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

// A form of one text field: on submit (never a page load), the field's trimmed text goes
// to `act`; an empty field does nothing.
export function onText(formId, inputId, act) {
  $(formId).addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $(inputId).value.trim();
    if (text) act(text);
  });
}

export function clear(node) {
  node.replaceChildren();
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });
const yearFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });

// "14:05" today; "Mon 3 Mar, 14:05" on another day; with the year in another year.
export function clock(ts) {
  const date = typeof ts === "number" && ts > 0 ? new Date(ts * 1000) : new Date();
  const now = new Date();
  const day = date.toDateString();
  let text = timeFormat.format(date);
  if (day !== now.toDateString()) {
    const which = date.getFullYear() === now.getFullYear() ? dayFormat : yearFormat;
    text = `${which.format(date)}, ${text}`;
  }
  return { text, iso: date.toISOString(), day };
}

// Code points, as the server counts them (a string's length counts UTF-16 units).
export function charCount(text) {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

// Roughly what the server does to text on the way in, to recognise our own message again.
export function normalise(text) {
  return text
    .replace(/[\p{Cc}\p{Cf}]/gu, (c) => (c === "\n" ? c : c === "\t" ? " " : ""))
    .replace(/[ ]+\n/g, "\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}
