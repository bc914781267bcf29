// Active reading time: a moment counts while the tab is visible and the visitor gave input
// (scroll, key, pointer) within the last 30 s; loading or showing the page counts as input.
// Calls `hidden()` each time the page is hidden, and returns `take()`: the whole seconds
// counted and not yet taken (the rest is kept for the next).

export function reading(hidden) {
  let upto = Date.now(); // counted until then
  let input = document.hidden ? 0 : upto; // the last input; 0 while hidden
  let ms = 0;
  const count = () => {
    const now = Date.now();
    if (input) ms += Math.max(0, Math.min(now, input + 3e4) - upto);
    return (upto = now);
  };
  for (const t of ['scroll', 'keydown', 'pointerdown', 'pointermove']) {
    addEventListener(t, () => document.hidden || (input = count()), true); // capture: always heard
  }
  document.addEventListener('visibilitychange', () => {
    const now = count();
    input = document.hidden ? 0 : now;
    if (!input) hidden();
  });
  return () => {
    count();
    const s = (ms / 1000) | 0;
    ms -= s * 1000;
    return s;
  };
}
