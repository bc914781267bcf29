// Exit intent. Desktop: the pointer leaves through the top of the window, towards the tabs
// and the address bar. Touch screens have no pointer: a fast flick back up stands for it.
// Calls `go` once; returns a function that stops watching.

export function exitIntent(go) {
  let lastY = scrollY;
  let lastT = Date.now();
  const leave = (e) => {
    if (!e.relatedTarget && e.clientY <= 0) done();
  };
  const flick = () => {
    const now = Date.now();
    const speed = (lastY - scrollY) / Math.max(now - lastT, 1); // px/ms, upwards
    lastY = scrollY;
    lastT = now;
    if (speed > 2.5 && scrollY > 0) done();
  };
  const stop = () => {
    document.removeEventListener('mouseout', leave);
    removeEventListener('scroll', flick);
  };
  const done = () => {
    stop();
    go();
  };
  document.addEventListener('mouseout', leave);
  addEventListener('scroll', flick, { passive: true });
  return stop;
}
