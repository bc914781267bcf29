// What the server needs to know about this page view, and the email token, if any.

export function pageContext() {
  const w = innerWidth;
  return {
    url: location.href,
    referrer: document.referrer,
    title: document.title,
    viewport: w < 768 ? 'mobile' : w < 1024 ? 'tablet' : 'desktop',
  };
}

// Read `sc_t` and remove it from the address bar at once, so it is never bookmarked,
// shared or sent on as a referrer.
export function takeToken() {
  const url = new URL(location.href);
  const token = url.searchParams.get('sc_t');
  if (token) {
    url.searchParams.delete('sc_t');
    history.replaceState(history.state, '', url.href);
  }
  return token;
}
