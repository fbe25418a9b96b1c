// Following the run: Server-Sent Events from GET /api/train/events (the current status at once,
// then each change, so a page opened mid-run shows it where it is), with polling as the fallback.
//
// A proxy that buffers the event stream, or a browser without EventSource, would leave the panel
// frozen: while nothing has been heard for POLL_MS (before the first event, or during a run),
// ask GET /api/train for the same status.  The receiver drops answers older than what it shows.

import { getJSON } from "./api.js";

const POLL_MS = 3000;

// ``receive(status)`` gets every status heard; ``running()`` says whether a run is going.
export function follow(receive, running) {
  let lastHeard = 0;
  let polling = false;
  if ("EventSource" in window) {
    const source = new EventSource("/api/train/events");
    source.onmessage = (event) => { lastHeard = Date.now(); receive(JSON.parse(event.data)); };
    // EventSource reconnects by itself after a dropped connection; the first message is the status.
  }
  setInterval(async () => {
    const heard = lastHeard > 0;
    if (polling || Date.now() - lastHeard < POLL_MS || (heard && !running())) return;
    polling = true;                     // one request at a time, however slow the server is
    try {
      receive(await getJSON("/api/train"));
    } catch {
      // the server is gone for now: the next poll tries again
    } finally {
      polling = false;
    }
  }, POLL_MS);
}
