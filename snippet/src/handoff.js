// Analytics hand-off: what the tag did with a decision (impression, click, dismiss, convert,
// submit), told to the page's own analytics without a line of code on it. Pushed, in Google
// Tag Manager's style, to `dataLayer` (and Matomo Tag Manager's `_mtm`) when the page has one:
//   {event: 'sitecue_impression', sitecue: {rule, variant, decision}}
// and dispatched on `document` as the CustomEvent `sitecue:impression` with the same `detail`.
// A page's broken layer (not an array, a push or a getter that throws) never breaks the tag.

export function handoff(type, d) {
  // A fresh object for each: GTM writes its own keys into what it is given.
  const about = () => ({ rule: d.rule, variant: d.variant, decision: d.id });
  for (const name of ['dataLayer', '_mtm']) {
    try {
      const layer = window[name];
      if (Array.isArray(layer)) layer.push({ event: 'sitecue_' + type, sitecue: about() });
    } catch (e) {
      /* the page's layer is broken: the server still gets the event */
    }
  }
  try {
    document.dispatchEvent(new CustomEvent('sitecue:' + type, { detail: about() }));
  } catch (e) {
    /* never break the host page */
  }
}
