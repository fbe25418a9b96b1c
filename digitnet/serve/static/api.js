// Talking to the server: every request the page makes goes through these three helpers.
//
// The server answers every route with JSON and every error as {"error": "..."}: a refusal
// rejects with ServerRefused carrying that message, a server out of reach with fetch's TypeError.

export class ServerRefused extends Error {}

async function answerOf(response) {
  let answer = {};
  try { answer = await response.json(); } catch { /* an empty or broken answer */ }
  if (!response.ok) throw new ServerRefused(answer.error || `the server answered ${response.status}`);
  return answer;
}

export async function getJSON(url) {
  return answerOf(await fetch(url));
}

export async function postJSON(url, body = {}) {
  return answerOf(await fetch(url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  }));
}

// An image file's bytes (a File or the pad's PNG) as the body.
export async function postImage(url, image) {
  return answerOf(await fetch(url, {
    method: "POST", body: image, headers: { "Content-Type": image.type || "application/octet-stream" },
  }));
}
