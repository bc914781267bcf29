// When to show a decided widget: `now`, `5s` into the page view, at `50%` scroll depth,
// or on exit intent (see intent.js).

import { exitIntent } from './intent.js';
import { sheet } from './sheet.js';

export function when(after, run) {
  if (after === 'now') return run();
  const n = parseInt(after, 10);
  if (after.endsWith('s')) return setTimeout(run, n * 1000);
  if (after.endsWith('%')) {
    const check = () => {
      const page = document.documentElement;
      if (((scrollY + innerHeight) / page.scrollHeight) * 100 >= n) {
        removeEventListener('scroll', check);
        run();
      }
    };
    addEventListener('scroll', check, { passive: true });
    return check();
  }
  if (after === 'exit') exitIntent(run);
}

// Anti-flicker: the elements a `replace` may take over stay hidden until the decision
// arrives, or for a second at most, so a visitor never sees the paywall flash before the
// FAQ. Which ones the server said last time (kept per site), plus the tag's `data-hide`.
// Returns `unhide(next)`: show them again, and remember `next` for the next page.
export function antiFlicker(site, declared) {
  const key = 'sc_hide_' + site;
  let known = [];
  try {
    known = JSON.parse(localStorage.getItem(key) || '[]');
  } catch (e) {
    /* storage blocked: hide only what the tag declares */
  }
  const selectors = known.concat(declared ? declared.split(',') : []).filter(Boolean);
  const remove = selectors.length
    ? sheet(selectors.join(',') + '{visibility:hidden!important}')
    : () => {};
  const timer = setTimeout(remove, 1000);
  return (next) => {
    clearTimeout(timer);
    remove();
    if (!next) return;
    try {
      localStorage.setItem(key, JSON.stringify(next));
    } catch (e) {
      /* storage blocked */
    }
  };
}
