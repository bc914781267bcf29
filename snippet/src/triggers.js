// Watch the triggers the server asks for and call `fire(name)` when one happens. Clicks,
// changes and video plays are delegated from the document, so elements added later count
// and each occurrence fires; the others fire at most once per page view (`reset()` starts
// a new one, as an SPA route change does).

import { exitIntent } from './intent.js';

export function watcher(fire) {
  const delegated = { click: new Map(), change: new Map(), video: new Map() };
  let specs = [];
  let stops = []; // undo the once-per-view watchers

  const on = (type, selectors, target = document) =>
    target.addEventListener(
      type,
      (e) => {
        const el = e.target;
        if (!el || !el.closest) return;
        // A click in a product (`data-sc-product` on it or around it) is about that product.
        const { scProduct } = (el.closest('[data-sc-product]') || el).dataset;
        for (const [name, selector] of selectors) if (el.closest(selector)) fire(name, undefined, scProduct);
      },
      true, // capture: a page that stops propagation still counts
    );
  on('click', delegated.click);
  on('change', delegated.change);
  on('play', delegated.video); // media events do not bubble, but they are captured

  // Call `f` once, at the first of `events` on `target` for which `test` holds.
  function once(target, events, test, f) {
    const handler = (e) => {
      if (!test(e)) return;
      stop();
      f();
    };
    const stop = () => events.forEach((t) => target.removeEventListener(t, handler));
    events.forEach((t) => target.addEventListener(t, handler, { passive: true }));
    stops.push(stop);
  }

  function timer(seconds, f, restartOn) {
    let id = setTimeout(f, seconds * 1000);
    const restart = () => {
      clearTimeout(id);
      id = setTimeout(f, seconds * 1000);
    };
    restartOn.forEach((t) => addEventListener(t, restart, { passive: true }));
    stops.push(() => {
      clearTimeout(id);
      restartOn.forEach((t) => removeEventListener(t, restart));
    });
  }

  function visible(name, selector) {
    if (!window.IntersectionObserver) return;
    const io = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) {
        io.disconnect();
        fire(name);
      }
    });
    document.querySelectorAll(selector).forEach((el) => io.observe(el));
    stops.push(() => io.disconnect());
  }

  function depth() {
    const page = document.documentElement;
    return ((scrollY + innerHeight) / Math.max(page.scrollHeight, 1)) * 100;
  }

  function watchOnce(t) {
    const go = () => fire(t.name);
    if (t.on === 'visible') visible(t.name, t.selector);
    else if (t.on === 'scroll') {
      if (depth() >= t.percent) go();
      else once(window, ['scroll'], () => depth() >= t.percent, go);
    } else if (t.on === 'time') timer(t.seconds, go, []);
    else if (t.on === 'inactivity') {
      timer(t.seconds, go, ['mousemove', 'keydown', 'scroll', 'touchstart', 'click']);
    } else if (t.on === 'exit') stops.push(exitIntent(go));
  }

  return {
    // The triggers to watch, as the server lists them with each decision.
    watch(list) {
      for (const t of list) {
        if (delegated[t.on]) delegated[t.on].set(t.name, t.selector || 'video,audio');
        else if (!specs.some((s) => s.name === t.name)) {
          specs.push(t);
          watchOnce(t);
        }
      }
    },
    // A new page view: the once-per-view triggers start over with the next answer.
    reset() {
      stops.forEach((stop) => stop());
      stops = [];
      specs = [];
    },
  };
}
