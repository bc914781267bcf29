// Requests to sitecue. Bodies go as text/plain, which needs no CORS preflight.

export function post(url, body) {
  return fetch(url, {
    method: 'POST',
    credentials: 'include',
    headers: { 'content-type': 'text/plain' },
    body: JSON.stringify(body),
  }).then((r) => (r.ok ? r.json() : Promise.reject(r.status)));
}

// Fire and forget, surviving navigation: sendBeacon, or a keepalive fetch where it is refused.
export function beacon(url, body) {
  const data = JSON.stringify(body);
  if (!(navigator.sendBeacon && navigator.sendBeacon(url, data))) {
    fetch(url, { method: 'POST', credentials: 'include', body: data, keepalive: true }).catch(() => {});
  }
}
