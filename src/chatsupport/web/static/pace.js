// The page keeps to the message budget the server announced in `welcome.limits`, so a
// burst waits its turn here, shown as "Sending…", instead of being refused there (and,
// refused often enough, the person muted for flooding). A copy of the server's token
// bucket (core/limits.py) and of what each frame costs (core/chat.py `_cost`).

// Leaving, help lines, one's region, feedback and liveness are free; reading costs a quarter
// token up front (the server charges a full page or a long replay after answering:
// core/handlers.py `READ`).
const FREE = new Set(["ping", "quit", "forget", "resources", "region", "feedback"]);
const READS = new Set(["who", "rooms", "help", "resume"]);
const FREE_COMMANDS = new Set(["resources", "region", "feedback", "quit", "forget"]);
const READ_COMMANDS = new Set(["help", "who", "rooms"]);
const READ = 0.25;
const MESSAGE_CHARS = 500; // each further 500 characters or part of them cost 1 more
// The page's frames reach the server unevenly spaced (network, event loop): aim a little
// under the announced rate so that two of them never arrive closer than it allows.
const MARGIN = 0.85;

export function cost(frame) {
  if (FREE.has(frame.type)) return 0;
  if (READS.has(frame.type)) return READ;
  if (frame.type !== "say" && frame.type !== "me") return 1;
  const text = frame.text || "";
  if (frame.type === "say" && text.startsWith("/") && !text.startsWith("//")) {
    const command = text.slice(1).split(" ", 1)[0].toLowerCase();
    if (FREE_COMMANDS.has(command)) return 0;
    return READ_COMMANDS.has(command) ? READ : 1;
  }
  const length = [...text].length;
  return 1 + Math.floor(Math.max(0, length - 1) / MESSAGE_CHARS);
}

export class Budget {
  constructor() {
    this.rate = 1;
    this.burst = 8;
    this.tokens = null; // full until the first frame
    this.stamp = 0;
  }

  // The server's numbers for this person (a newcomer's are smaller).
  configure(limits) {
    this.refill();
    if (limits.msg_rate > 0) this.rate = limits.msg_rate;
    if (limits.msg_burst > 0) this.burst = limits.msg_burst;
    this.tokens = Math.min(this.tokens, this.burst);
  }

  refill() {
    const now = performance.now() / 1000;
    this.tokens = this.tokens === null ? this.burst : Math.min(this.burst, this.tokens + (now - this.stamp) * this.rate * MARGIN);
    this.stamp = now;
  }

  // Milliseconds until `amount` fits.
  wait(amount) {
    this.refill();
    const missing = Math.min(amount, this.burst) - this.tokens;
    return missing <= 0 ? 0 : Math.ceil((missing / (this.rate * MARGIN)) * 1000);
  }

  spend(amount) {
    this.refill();
    this.tokens = Math.max(0, this.tokens - Math.min(amount, this.burst));
  }

  // The server said "slow down": it knows better than our copy.
  empty() {
    this.refill();
    this.tokens = 0;
  }
}
