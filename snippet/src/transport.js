// Requests to sitecue. Bodies go as text/plain, which needs no CORS preflight.

const request = (url, body, keepalive) =>
  fetch(url, {
    method: 'POST',
    credentials: 'include',
    headers: { 'content-type': 'text/plain' },
    body: JSON.stringify(body),
    keepalive,
  });

// A decision: `keepalive`, so that one asked for as the page is left (a click trigger on a
// link) still reaches the server.
export const post = (url, body) => request(url, body, true).then((r) => (r.ok ? r.json() : Promise.reject(r.status)));

// A form's answers: resolves to [status, answer] whatever the status, so the tag can show a
// 422's field problems; rejects only when the request did not get through.
export const submitForm = (url, body) =>
  request(url, body).then((r) => r.json().then((answer) => [r.status, answer], () => [r.status, {}]));

// Fire and forget, surviving navigation: sendBeacon, or a keepalive fetch where it is refused.
export function beacon(url, body) {
  if (!(navigator.sendBeacon && navigator.sendBeacon(url, JSON.stringify(body)))) request(url, body, true).catch(() => {});
}
