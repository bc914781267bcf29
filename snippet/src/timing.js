// When to show a decided widget: `now`, `5s` into the page view, at `50%` scroll depth,
// or on exit intent (see intent.js).

import { exitIntent } from './intent.js';

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
