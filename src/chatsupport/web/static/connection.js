// One WebSocket to /ws that comes back by itself: backoff with jitter, a liveness ping,
// and a retry as soon as the browser says it is online again. Which URL to open and what
// to say on a new socket (resume) are the app's business: `url()` is asked on each
// attempt, and the app gets onopen, onframe and onstatus.

const PING_EVERY = 25000; // ms of silence before we ask the server whether it is there
const PING_GRACE = 10000; // ms to answer before we treat the socket as dead
const BACKOFF_FIRST = 500;
const BACKOFF_MAX = 15000;

export class Connection {
  constructor(url, { onopen, onclose, onframe, onstatus }) {
    this.url = url;
    this.onopen = onopen;
    this.onclose = onclose;
    this.onframe = onframe;
    this.onstatus = onstatus;
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.deadTimer = null;
    this.stopped = false;
    this.retryAt = 0;
    window.addEventListener("online", () => this.retryNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.retryNow();
    });
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.stopped || this.ws) return;
    this.onstatus(this.attempt === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.alive();
      this.onopen();
    };
    ws.onmessage = (event) => {
      this.alive();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return; // the server only sends JSON; anything else is not ours to show
      }
      if (frame && typeof frame.type === "string") this.onframe(frame);
    };
    ws.onclose = () => this.drop(ws);
  }

  // This socket is finished (closed, or silent too long): forget it and plan the next one.
  drop(ws) {
    if (this.ws !== ws) return;
    this.ws = null;
    ws.onclose = ws.onmessage = ws.onopen = null;
    if (ws.readyState !== WebSocket.CLOSED) ws.close();
    this.quiet();
    this.onclose();
    if (!this.stopped) this.scheduleRetry();
  }

  // The app calls this once a session is (re)established.
  settled() {
    this.attempt = 0;
    this.onstatus("online");
  }

  scheduleRetry() {
    const base = Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** this.attempt);
    const delay = Math.round(base * (0.5 + Math.random() / 2));
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.onstatus("reconnecting", delay);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  retryNow() {
    if (!this.stopped && !this.ws && this.retryTimer) this.connect();
  }

  send(frame) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // A fresh start after a stop (the person asked to reconnect).
  restart() {
    this.stopped = false;
    this.attempt = 0;
    this.connect();
  }

  // Ends the socket; `stop` keeps it ended (quit, forget, taken over elsewhere).
  close(stop = false) {
    this.stopped = this.stopped || stop;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.ws) this.drop(this.ws);
    this.quiet();
  }

  alive() {
    clearTimeout(this.pingTimer);
    clearTimeout(this.deadTimer);
    this.deadTimer = null;
    this.pingTimer = setTimeout(() => this.probe(), PING_EVERY);
  }

  probe() {
    if (!this.send({ type: "ping" })) return;
    // A socket can look open long after the network went away (phones): no answer, new socket.
    const ws = this.ws;
    this.deadTimer = setTimeout(() => this.drop(ws), PING_GRACE);
  }

  quiet() {
    clearTimeout(this.pingTimer);
    clearTimeout(this.deadTimer);
  }
}
